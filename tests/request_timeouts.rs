//! Slow clients cannot hold the hub's connections: a request body that trickles is answered 408 after
//! the body timeout (issue 11, fault 8), a request head that trickles gets 408 after the head timeout,
//! an idle keep-alive connection is closed, and while trickling requests are open everyone else is
//! served.

mod common;

use std::time::Duration;

use common::{event_args, start_hub, test_config, within, TestHub, WAIT_TIMEOUT};
use realtime_hub::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One byte of chunked body.
const CHUNK: &[u8] = b"1\r\n \r\n";

fn config(body_timeout: Duration) -> Config {
    Config {
        request_body_timeout: body_timeout,
        // Short only where a test needs it: a loaded machine must not time out the others' heads.
        request_head_timeout: Duration::from_secs(5),
        keep_alive: Duration::from_secs(5),
        // No heartbeat may end the healthy clients while they wait.
        ping_interval: Duration::from_secs(60),
        ..test_config()
    }
}

/// A chunked POST to `path` whose body starts with `first` and never ends.
async fn trickling_post(hub: &TestHub, path: &str, first: &str) -> TcpStream {
    let mut tcp = within(WAIT_TIMEOUT, "a connection", TcpStream::connect(hub.addr))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n",
        first.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp
}

/// Writes `step` every 100 ms (at most 100 times) until the answer's head arrives, then reads the
/// answer to its end (the hub closes the connection); returns the answer.
async fn trickle_until_answered(tcp: TcpStream, step: &'static [u8]) -> String {
    let (mut read, mut write) = tcp.into_split();
    let (answered, mut stop) = tokio::sync::oneshot::channel::<()>();
    let trickle = async move {
        for _ in 0..100 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = &mut stop => return write,
            }
            if write.write_all(step).await.is_err() {
                break;
            }
        }
        write
    };
    let answer = async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let mut answered = Some(answered);
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            if let Some(answered) = answered.take() {
                let _ = answered.send(());
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    };
    let trickling = tokio::spawn(trickle);
    let answer = within(
        WAIT_TIMEOUT,
        "the answer to a trickling request, and the close",
        answer,
    )
    .await;
    drop(trickling.await);
    answer
}

async fn metric(hub: &TestHub, name: &str) -> String {
    let (status, text, _) = hub.http("GET", "/metrics", "").await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find(|line| line.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
        .to_owned()
}

#[actix_web::test]
async fn a_trickling_notify_body_is_answered_408_with_a_json_error_and_counted() {
    let hub = start_hub(config(Duration::from_millis(500)));
    let tcp = trickling_post(&hub, "/notifications/notify", "{\"title\":").await;
    let answer = trickle_until_answered(tcp, CHUNK).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#"{"error":"request body not received within 500 ms","request_id":""#),
        "{answer}"
    );
    assert_eq!(
        metric(&hub, "hub_request_body_timeouts_total").await,
        "hub_request_body_timeouts_total 1"
    );
}

#[actix_web::test]
async fn a_trickling_polling_post_is_answered_408_and_ends_its_session_as_node_does() {
    let hub = start_hub(config(Duration::from_millis(500)));
    let sid = hub.polling_session("/socket.io/").await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let tcp = trickling_post(&hub, &path, "40").await;
    let answer = trickle_until_answered(tcp, CHUNK).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "an empty body: {answer}");
    let (status, body, _) = hub.http("GET", &path, "").await;
    assert_eq!(status, 400, "the session is gone: {body}");
}

#[actix_web::test]
async fn while_trickling_posts_are_open_a_normal_post_and_a_normal_client_are_served() {
    // The trickling requests stay open for the whole test: the body timeout is far away.
    let hub = start_hub(config(Duration::from_secs(60)));
    let mut trickling = Vec::new();
    for _ in 0..40 {
        trickling.push(trickling_post(&hub, "/notifications/notify", "{").await);
    }
    let sid = hub.polling_session("/socket.io/").await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    for _ in 0..10 {
        trickling.push(trickling_post(&hub, &path, "4").await);
    }
    let mut joined = hub.joined().await;
    let offset = hub.publish("served").await;
    let frame = joined.client.recv_text_answering_pings().await;
    let args = event_args(&frame).unwrap();
    assert_eq!(
        (args[1]["title"].as_str(), args[2].as_str()),
        (Some("served"), Some(offset.as_str()))
    );
    drop(trickling);
}

#[actix_web::test]
async fn a_trickling_request_head_is_answered_408_after_the_head_timeout() {
    let hub = start_hub(Config {
        request_head_timeout: Duration::from_millis(300),
        ..config(Duration::from_secs(60))
    });
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nx-slow: ")
        .await
        .unwrap();
    let answer = trickle_until_answered(tcp, b"a").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[actix_web::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let hub = start_hub(Config {
        keep_alive: Duration::from_millis(300),
        ..config(Duration::from_secs(60))
    });
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tcp.read_to_end(&mut answer);
    within(WAIT_TIMEOUT, "the idle connection to be closed", read)
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
