//! Who may publish over HTTP (`POST /notifications/notify`), on the wire: the cross-site requests a
//! page can make a visitor's browser send are refused in every mode (415 for what is not JSON, 403
//! for a foreign `Origin`) with nothing appended; with API keys set, a key is required (401 with
//! `WWW-Authenticate: Bearer`); past a publish rate, 429 with `Retry-After`, other clients served.

mod common;

use common::{event_args, start_hub, test_config, within, Joined, TestHub, WAIT_TIMEOUT};
use realtime_hub::config::{Config, Secret};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP answer read by hand: status, headers (names lowercase), JSON body (Null if not JSON).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    json: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `POST <path>` sent by hand from the loopback address `source` with `headers` (each `name:
/// value`) and `body`; the `Host` is the hub's address, as a browser on the hub's page sends it.
async fn post_from(
    hub: &TestHub,
    source: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> Answer {
    let exchange = async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let mut tcp = socket.connect(hub.addr).await.unwrap();
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\ncontent-length: {}\r\n",
            hub.addr,
            body.len()
        );
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        request.push_str(body);
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.unwrap();
        String::from_utf8(answer).unwrap()
    };
    let answer = within(WAIT_TIMEOUT, "an answer to a hand-made POST", exchange).await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        json: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

/// `POST /notifications/notify` from 127.0.0.1.
async fn notify(hub: &TestHub, headers: &[&str], body: &str) -> Answer {
    post_from(hub, "127.0.0.1", "/notifications/notify", headers, body).await
}

const JSON: &str = "content-type: application/json";
const BODY: &str = r#"{"title":"x"}"#;

/// The next notification `joined` receives is `title` (nothing was appended before it).
async fn next_received_is(joined: &mut Joined, title: &str) {
    let frame = joined.client.recv_text_answering_pings().await;
    let args = event_args(&frame).unwrap_or_else(|| panic!("expected an event, got {frame}"));
    assert_eq!(args[1]["title"].as_str(), Some(title), "{frame}");
}

fn restricted() -> Config {
    Config {
        cors_origins: vec!["http://good.example".into()],
        ..test_config()
    }
}

fn with_keys(config: Config) -> Config {
    let mut config = config;
    config.security.api_keys = vec![Secret::from("k1"), Secret::from("k2")];
    config
}

#[actix_web::test]
async fn cross_site_posts_are_refused_in_open_mode_and_nothing_is_appended() {
    for config in [test_config(), restricted()] {
        let hub = start_hub(config);
        let mut joined = hub.joined().await;
        let simple = [
            (Some("content-type: text/plain"), BODY),
            (Some("content-type: text/plain;charset=UTF-8"), BODY),
            (
                Some("content-type: application/x-www-form-urlencoded"),
                "title=x",
            ),
            (
                Some("content-type: multipart/form-data; boundary=b"),
                "--b\r\ncontent-disposition: form-data; name=\"title\"\r\n\r\nx\r\n--b--\r\n",
            ),
            (None, ""),
            (None, BODY),
        ];
        let mut refused = 0;
        for (content_type, body) in simple {
            for origin in [
                Some("origin: http://evil.example"),
                Some("origin: null"),
                None,
            ] {
                let headers: Vec<&str> = content_type.into_iter().chain(origin).collect();
                let answer = notify(&hub, &headers, body).await;
                let expected = if origin.is_some() { 403 } else { 415 };
                assert_eq!(
                    answer.status, expected,
                    "{headers:?} {body:?}: {}",
                    answer.json
                );
                assert!(answer.json["error"].is_string(), "{}", answer.json);
                refused += 1;
            }
        }
        // JSON from a foreign page is refused too: its Origin decides, not its content type.
        for origin in ["origin: http://evil.example", "origin: null"] {
            assert_eq!(notify(&hub, &[JSON, origin], BODY).await.status, 403);
            refused += 1;
        }
        assert_eq!(
            hub.metric("hub_origin_refused_total").await
                + hub.metric("hub_publish_unsupported_media_type_total").await,
            refused
        );
        // Nothing was appended: the first notification the client gets is the next one published.
        hub.publish("the first").await;
        next_received_is(&mut joined, "the first").await;
    }
}

#[actix_web::test]
async fn json_is_published_from_the_hubs_own_origin_an_allowed_one_or_none_and_no_other() {
    let hub = start_hub(restricted());
    let refused = notify(
        &hub,
        &[JSON, "origin: http://good.example.evil.example"],
        BODY,
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.json);
    let own = format!("origin: http://{}", hub.addr);
    let own_https = format!("origin: https://{}", hub.addr);
    for headers in [
        vec![JSON, own.as_str()],
        vec![JSON, own_https.as_str()],
        vec![JSON, "origin: http://good.example"],
        vec!["content-type: Application/JSON; charset=utf-8"],
        vec![JSON],
    ] {
        let answer = notify(&hub, &headers, BODY).await;
        assert_eq!(answer.status, 201, "{headers:?}: {}", answer.json);
    }
    // `*` allows any origin, `null` only when listed.
    let any = start_hub(Config {
        cors_origins: vec!["*".into()],
        ..test_config()
    });
    assert_eq!(
        notify(&any, &[JSON, "origin: http://evil.example"], BODY)
            .await
            .status,
        201
    );
    let null = start_hub(Config {
        cors_origins: vec!["null".into()],
        ..test_config()
    });
    assert_eq!(
        notify(&null, &[JSON, "origin: null"], BODY).await.status,
        201
    );
    assert_eq!(
        notify(&null, &[JSON, "origin: http://evil.example"], BODY)
            .await
            .status,
        403
    );
}

#[actix_web::test]
async fn with_api_keys_a_publish_needs_one_of_them_in_a_header() {
    let hub = start_hub(with_keys(test_config()));
    let mut joined = hub.joined().await;

    let none = notify(&hub, &[JSON], BODY).await;
    assert_eq!(none.status, 401, "{}", none.json);
    assert_eq!(
        none.header("www-authenticate"),
        Some(r#"Bearer realm="realtime-hub""#)
    );
    assert!(none.json["error"].is_string());
    for wrong in [
        "authorization: Bearer k3",
        "authorization: Bearer k1k2",
        "authorization: Basic azE6",
        "x-api-key: k",
    ] {
        let answer = notify(&hub, &[JSON, wrong], BODY).await;
        assert_eq!(answer.status, 401, "{wrong}");
        let challenge = answer.header("www-authenticate").unwrap_or("");
        assert!(
            challenge.starts_with("Bearer realm="),
            "{wrong}: {challenge}"
        );
    }
    let wrong = notify(&hub, &[JSON, "authorization: Bearer nope"], BODY).await;
    assert_eq!(
        wrong.header("www-authenticate"),
        Some(r#"Bearer realm="realtime-hub", error="invalid_token""#)
    );
    // Never from the URL.
    for query in ["api_key=k1", "key=k1", "access_token=k1", "apiKey=k1"] {
        let path = format!("/notifications/notify?{query}");
        assert_eq!(
            post_from(&hub, "127.0.0.1", &path, &[JSON], BODY)
                .await
                .status,
            401
        );
    }
    // Neither a key nor a right key makes a cross-site request acceptable.
    let foreign = notify(
        &hub,
        &[
            JSON,
            "authorization: Bearer k1",
            "origin: http://evil.example",
        ],
        BODY,
    );
    assert_eq!(foreign.await.status, 403);
    assert_eq!(
        notify(&hub, &["content-type: text/plain", "x-api-key: k1"], BODY)
            .await
            .status,
        415
    );
    assert_eq!(hub.metric("hub_publish_unauthorized_total").await, 10);

    for (key, title) in [
        ("authorization: Bearer k2", "with k2"),
        ("x-api-key: k1", "with k1"),
    ] {
        let body = json!({ "title": title }).to_string();
        let answer = notify(&hub, &[JSON, key], &body).await;
        assert_eq!(answer.status, 201, "{key}: {}", answer.json);
        next_received_is(&mut joined, title).await;
    }
    let answer = notify(&hub, &[JSON, "authorization: bearer k1"], BODY).await;
    assert_eq!(answer.status, 201, "the scheme is case-insensitive");
}

/// Publishes from `source` with `headers` until one is refused (at most `bound` tries): the refusal.
async fn publish_until_refused(
    hub: &TestHub,
    source: &str,
    headers: &[&str],
    bound: usize,
) -> Answer {
    for _ in 0..bound {
        let answer = post_from(hub, source, "/notifications/notify", headers, BODY).await;
        if answer.status != 201 {
            return answer;
        }
    }
    panic!("{bound} publishes from {source} all accepted");
}

fn assert_rate_limited(answer: &Answer) {
    assert_eq!(answer.status, 429, "{}", answer.json);
    let retry: u64 = answer
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(retry >= 1, "{retry}");
    assert!(answer.json["error"].is_string());
}

#[actix_web::test]
async fn past_the_publish_rate_of_an_address_429_with_retry_after_and_other_addresses_publish() {
    let mut config = test_config();
    config.security.publish_per_second_per_address = 2;
    let hub = start_hub(config);
    let mut joined = hub.joined().await;
    let refused = publish_until_refused(&hub, "127.0.0.1", &[JSON], 100).await;
    assert_rate_limited(&refused);
    assert_eq!(
        hub.metric("hub_publish_rate_limited_per_address_total")
            .await,
        1
    );

    let other = post_from(
        &hub,
        "127.0.0.2",
        "/notifications/notify",
        &[JSON],
        r#"{"title":"other"}"#,
    );
    assert_eq!(other.await.status, 201, "another address is unaffected");
    // The joined client still receives (what was accepted before, then the other address's).
    within(WAIT_TIMEOUT, "the other address's notification", async {
        loop {
            let frame = joined.client.recv_text_answering_pings().await;
            if event_args(&frame).is_some_and(|args| args[1]["title"] == "other") {
                return;
            }
        }
    })
    .await;
}

#[actix_web::test]
async fn past_the_publish_rate_of_a_key_429_with_retry_after_and_other_keys_publish() {
    let mut config = with_keys(test_config());
    config.security.publish_per_second_per_key = 2;
    config.security.publish_per_second_per_address = 0;
    let hub = start_hub(config);
    let k1 = "authorization: Bearer k1";
    let refused = publish_until_refused(&hub, "127.0.0.1", &[JSON, k1], 100).await;
    assert_rate_limited(&refused);
    // The key's limit holds from every address; another key from the same address is served.
    assert_rate_limited(
        &post_from(
            &hub,
            "127.0.0.2",
            "/notifications/notify",
            &[JSON, k1],
            BODY,
        )
        .await,
    );
    let k2 = notify(&hub, &[JSON, "x-api-key: k2"], BODY).await;
    assert_eq!(k2.status, 201, "{}", k2.json);
    assert!(hub.metric("hub_publish_rate_limited_per_key_total").await >= 2);
    assert_eq!(
        hub.metric("hub_publish_rate_limited_per_address_total")
            .await,
        0
    );
}

#[actix_web::test]
async fn preflight_from_an_allowed_origin_allows_the_key_headers_and_exposes_retry_after() {
    let hub = start_hub(with_keys(restricted()));
    let mut res = within(
        WAIT_TIMEOUT,
        "the preflight's answer",
        awc::Client::new()
            .request(awc::http::Method::OPTIONS, hub.url("/notifications/notify"))
            .insert_header(("origin", "http://good.example"))
            .insert_header(("access-control-request-method", "POST"))
            .insert_header((
                "access-control-request-headers",
                "authorization, content-type, x-api-key",
            ))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(header("access-control-allow-origin"), "http://good.example");
    assert_eq!(
        header("access-control-allow-headers"),
        "authorization, content-type, x-api-key"
    );
    let _ = res.body().await;
    // The refusal a page on the allowed origin gets is readable by it, Retry-After and the
    // challenge included.
    let answer = notify(&hub, &[JSON, "origin: http://good.example"], BODY).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("http://good.example")
    );
    let exposed = answer
        .header("access-control-expose-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    for name in ["retry-after", "www-authenticate"] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
}
