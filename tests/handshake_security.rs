//! Who may open an Engine.IO session, on the wire: a request with a foreign `Origin` is refused
//! with 403 before any session exists (polling handshake, WebSocket handshake, and the later
//! requests of a session), clients without an `Origin` or from the hub's own or an allowed one are
//! served; past `--connections-per-second-per-address`, 429 with `Retry-After` (polling and
//! WebSocket), other addresses served.

mod common;

use common::{start_hub, test_config, within, TestHub, WAIT_TIMEOUT};
use realtime_hub::config::Config;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const POLLING: &str = "/socket.io/?EIO=4&transport=polling";
const WEBSOCKET: &str = "/socket.io/?EIO=4&transport=websocket";

/// An answer read by hand: status, `Retry-After` if any, JSON body (Null if not JSON).
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    json: Value,
}

/// `GET <path>` sent by hand from loopback address `source`, with `Origin: origin` when given,
/// as a WebSocket upgrade when `upgrade`; the answer's head and body up to the close (a 101 is
/// answered by the test's closing its side).
async fn get_from(
    hub: &TestHub,
    source: &str,
    path: &str,
    origin: Option<&str>,
    upgrade: bool,
) -> Answer {
    let exchange = async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let mut tcp = socket.connect(hub.addr).await.unwrap();
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", hub.addr);
        if let Some(origin) = origin {
            request.push_str(&format!("Origin: {origin}\r\n"));
        }
        if upgrade {
            request.push_str(
                "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
            );
        } else {
            request.push_str("Connection: close\r\n");
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.unwrap_or(0);
            answer.extend_from_slice(&buf[..n]);
            // A 101 keeps the connection open: its head is the answer.
            if n == 0
                || (answer.starts_with(b"HTTP/1.1 101")
                    && answer.windows(4).any(|w| w == b"\r\n\r\n"))
            {
                break;
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    };
    let answer = within(WAIT_TIMEOUT, "an answer to a hand-made GET", exchange).await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let retry_after = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().unwrap())
    });
    Answer {
        status,
        retry_after,
        json: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

#[actix_web::test]
async fn handshakes_with_a_foreign_origin_get_403_before_any_session_exists_others_connect() {
    let hub = start_hub(Config {
        cors_origins: vec!["http://good.example".into()],
        ..test_config()
    });
    for origin in [
        "http://evil.example",
        "null",
        "http://good.example.evil.example",
    ] {
        for upgrade in [false, true] {
            let path = if upgrade { WEBSOCKET } else { POLLING };
            let answer = get_from(&hub, "127.0.0.1", path, Some(origin), upgrade).await;
            assert_eq!(answer.status, 403, "{origin} upgrade={upgrade}");
            assert_eq!(answer.json, json!({ "code": 4, "message": "Forbidden" }));
        }
    }
    assert_eq!(
        hub.metric("hub_engine_sessions").await,
        0,
        "no session was made"
    );
    assert_eq!(hub.metric("hub_origin_refused_total").await, 6);

    // Allowed, the hub's own, or none (Node, Python, curl): served.
    let own = format!("http://{}", hub.addr);
    for origin in [Some("http://good.example"), Some(own.as_str()), None] {
        let answer = get_from(&hub, "127.0.0.1", POLLING, origin, false).await;
        assert_eq!(answer.status, 200, "{origin:?}");
        let answer = get_from(&hub, "127.0.0.1", WEBSOCKET, origin, true).await;
        assert_eq!(answer.status, 101, "{origin:?}");
    }

    // A session's later requests are checked too: its polls, its posts and its upgrade.
    let sid = hub.polling_session("/socket.io/").await;
    let path = format!("{POLLING}&sid={sid}");
    let evil = Some("http://evil.example");
    assert_eq!(
        get_from(&hub, "127.0.0.1", &path, evil, false).await.status,
        403
    );
    let upgrade = format!("{WEBSOCKET}&sid={sid}");
    assert_eq!(
        get_from(&hub, "127.0.0.1", &upgrade, evil, true)
            .await
            .status,
        403
    );
    let (status, body, _) = hub.http("POST", &path, "40").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "ok"),
        "the session still works"
    );

    // `*`: any origin.
    let any = start_hub(Config {
        cors_origins: vec!["*".into()],
        ..test_config()
    });
    let polling = get_from(&any, "127.0.0.1", POLLING, evil, false).await;
    assert_eq!(polling.status, 200);
    let upgrade = get_from(&any, "127.0.0.1", WEBSOCKET, evil, true).await;
    assert_eq!(upgrade.status, 101);
}

/// Handshakes from `source` until one is refused (at most 100): the refusal.
async fn handshake_until_refused(hub: &TestHub, source: &str, upgrade: bool) -> Answer {
    let path = if upgrade { WEBSOCKET } else { POLLING };
    let success = if upgrade { 101 } else { 200 };
    for _ in 0..100 {
        let answer = get_from(hub, source, path, None, upgrade).await;
        if answer.status != success {
            return answer;
        }
    }
    panic!("100 handshakes from {source} all accepted");
}

#[actix_web::test]
async fn past_the_connection_rate_of_an_address_handshakes_get_429_and_other_addresses_connect() {
    let mut config = test_config();
    config.security.connections_per_second_per_address = 2;
    let hub = start_hub(config);
    let mut joined = hub.joined().await;
    for upgrade in [false, true] {
        let refused = handshake_until_refused(&hub, "127.0.0.1", upgrade).await;
        assert_eq!(refused.status, 429, "upgrade={upgrade}: {}", refused.json);
        assert_eq!(
            refused.json,
            json!({ "code": 4, "message": "Too many new sessions per second from this address" })
        );
        assert!(refused.retry_after.is_some_and(|s| s >= 1));
    }
    assert!(hub.metric("hub_handshakes_refused_rate_total").await >= 2);
    // Another address: served, polling and WebSocket.
    assert_eq!(
        get_from(&hub, "127.0.0.2", POLLING, None, false)
            .await
            .status,
        200
    );
    assert_eq!(
        get_from(&hub, "127.0.0.2", WEBSOCKET, None, true)
            .await
            .status,
        101
    );
    // The clients already joined keep receiving.
    let offset = hub.publish("still served").await;
    let frame = joined.client.recv_text_answering_pings().await;
    assert!(
        frame.contains("still served") && frame.contains(&offset),
        "{frame}"
    );
}
