//! What the hub logs about publishers: never an API key (neither a right one nor a guess, nor one
//! put in a URL by mistake), and, in open mode, one warning at start saying anyone may publish.
//! Its own test binary: it installs the process's logger, which must happen before any hub starts.

mod common;

use std::sync::Mutex;

use common::{start_hub, test_config, within, TestHub, WAIT_TIMEOUT};
use realtime_hub::config::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let line = format!("{} {}", record.target(), record.args());
        LINES.lock().unwrap().push(line);
    }
    fn flush(&self) {}
}

fn lines_containing(text: &str) -> usize {
    LINES
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(text))
        .count()
}

/// `POST /notifications/notify<query>` with `headers`; the status.
async fn post(hub: &TestHub, query: &str, headers: &[&str]) -> u16 {
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
        let body = r#"{"title":"x"}"#;
        let mut request = format!(
            "POST /notifications/notify{query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n",
            hub.addr,
            body.len()
        );
        for header in headers {
            request.push_str(&format!("{header}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        answer
    };
    let answer = within(WAIT_TIMEOUT, "a notify answer", exchange).await;
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

#[actix_web::test]
async fn api_keys_are_never_logged_and_open_mode_warns_once_at_start() {
    log::set_boxed_logger(Box::new(Capture)).expect("the first logger of this binary");
    log::set_max_level(log::LevelFilter::Trace);

    let mut config = test_config();
    config.security.api_keys = vec![Secret::from("sekrit-k1"), Secret::from("sekrit-k2")];
    let hub = start_hub(config);
    assert_eq!(lines_containing("open mode"), 0, "keys are set");
    assert_eq!(
        lines_containing("requires an API key api_keys=2 (HUB_API_KEYS"),
        1
    );
    let cases: [(&str, &[&str], u16); 7] = [
        ("", &[], 401),
        ("", &["authorization: Bearer sekrit-guess"], 401),
        ("?api_key=sekrit-k1", &[], 401),
        ("?api_key=sekrit-k1", &["x-api-key: sekrit-k2"], 201),
        ("", &["authorization: Bearer sekrit-k1"], 201),
        // A browser sends the page's whole URL as Referer, query string included.
        (
            "",
            &[
                "x-api-key: sekrit-k2",
                "referer: http://hub.example/?api_key=sekrit-k1",
            ],
            201,
        ),
        (
            "",
            &["x-api-key: sekrit-k1", "origin: http://evil.example"],
            403,
        ),
    ];
    for (query, headers, status) in cases {
        assert_eq!(
            post(&hub, query, headers).await,
            status,
            "{query} {headers:?}"
        );
    }
    // Every request's access line is written (after its answer) before the check.
    within(WAIT_TIMEOUT, "every access log line", async {
        while lines_containing("request peer=") < cases.len() {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    let leaked: Vec<String> = LINES
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains("sekrit"))
        .cloned()
        .collect();
    assert!(leaked.is_empty(), "keys logged: {leaked:#?}");

    start_hub(test_config());
    assert_eq!(
        lines_containing("open mode: anyone who can reach this hub may publish"),
        1
    );
    assert_eq!(
        lines_containing("HUB_API_KEYS"),
        2,
        "the warning says how to set keys"
    );
    assert_eq!(
        lines_containing("disconnect any socket or user (POST /sockets/disconnect)"),
        1,
        "the warning says the disconnect endpoint is open too"
    );
}
