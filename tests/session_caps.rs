//! The caps on Engine.IO sessions (in all, per client address, not joined to a namespace) on the
//! wire: a handshake past a cap gets 503 or 429 with Engine.IO's error body, a WebSocket handshake
//! without a sid the same before the upgrade, the refusal is counted in `/metrics`, and the clients
//! already joined keep receiving.

mod common;

use std::time::Duration;

use common::{event_args, start_hub, test_config, within, Joined, TestHub, WAIT_TIMEOUT};
use realtime_hub::config::Config;
use serde_json::{json, Value};

const POLLING: &str = "/socket.io/?EIO=4&transport=polling";

/// A polling handshake's answer: status, JSON body (Null if not JSON), content type.
async fn polling_handshake(hub: &TestHub) -> (u16, Value, String) {
    let (status, body, content_type) = hub.http("GET", POLLING, "").await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::Null),
        content_type,
    )
}

/// Asserts that a WebSocket handshake without a sid is refused with `status` before the upgrade.
async fn assert_ws_refused(hub: &TestHub, status: u16) {
    match hub.ws("EIO=4&transport=websocket").await {
        Err(awc::error::WsClientError::InvalidResponseStatus(got)) => {
            assert_eq!(got.as_u16(), status)
        }
        Err(other) => panic!("expected a {status} answer, got {other:?}"),
        Ok(_) => panic!("expected a {status} answer, the WebSocket was upgraded"),
    }
}

/// A notification published now reaches every one of `joined`.
async fn assert_still_receive(hub: &TestHub, joined: &mut [&mut Joined], title: &str) {
    let offset = hub.publish(title).await;
    for joined in joined {
        let frame = joined.client.recv_text_answering_pings().await;
        let args = event_args(&frame).unwrap_or_else(|| panic!("expected an event, got {frame}"));
        assert_eq!(
            (args[1]["title"].as_str(), args[2].as_str()),
            (Some(title), Some(offset.as_str()))
        );
    }
}

#[actix_web::test]
async fn session_cap_refuses_handshakes_past_it_with_503_and_keeps_serving_joined_clients() {
    let hub = start_hub(Config {
        max_sessions: 3,
        max_sessions_per_address: 0,
        ..test_config()
    });
    let mut joined = hub.joined().await;
    hub.polling_session("/socket.io/").await;
    hub.polling_session("/socket.io/").await;

    let (status, body, content_type) = polling_handshake(&hub).await;
    assert_eq!(status, 503);
    assert_eq!(body, json!({ "code": 4, "message": "Too many sessions" }));
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_ws_refused(&hub, 503).await;
    assert_eq!(
        hub.metric("hub_handshakes_refused_max_sessions_total")
            .await,
        2
    );
    assert_eq!(hub.metric("hub_engine_sessions").await, 3);

    assert_still_receive(&hub, &mut [&mut joined], "still served").await;
    // A session that ends gives its place back.
    joined.client.close().await;
    let mut freed = false;
    for _ in 0..100 {
        if polling_handshake(&hub).await.0 == 200 {
            freed = true;
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(freed, "the closed session's place was never given back");
}

#[actix_web::test]
async fn per_address_cap_refuses_handshakes_past_it_with_429_and_keeps_serving_joined_clients() {
    let hub = start_hub(Config {
        max_sessions_per_address: 2,
        ..test_config()
    });
    let mut joined = hub.joined().await;
    hub.polling_session("/socket.io/").await;

    let (status, body, _) = polling_handshake(&hub).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({ "code": 4, "message": "Too many sessions from this address" })
    );
    assert_ws_refused(&hub, 429).await;
    assert_eq!(
        hub.metric("hub_handshakes_refused_per_address_total").await,
        2
    );
    assert_still_receive(&hub, &mut [&mut joined], "still served").await;
}

#[actix_web::test]
async fn unjoined_cap_refuses_handshakes_while_sessions_have_not_joined_and_a_join_frees_a_place() {
    let hub = start_hub(Config {
        max_unjoined: 2,
        max_sessions_per_address: 0,
        ..test_config()
    });
    // Joined sessions do not count against the cap.
    let mut joined = hub.joined().await;
    let mut second = hub.joined().await;
    let idle = hub.polling_session("/socket.io/").await;
    hub.polling_session("/socket.io/").await;

    let (status, body, _) = polling_handshake(&hub).await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        json!({ "code": 4, "message": "Too many sessions not joined to a namespace" })
    );
    assert_ws_refused(&hub, 503).await;
    assert_eq!(hub.metric("hub_handshakes_refused_unjoined_total").await, 2);
    assert_eq!(hub.metric("hub_unjoined_sessions").await, 2);
    assert_still_receive(&hub, &mut [&mut joined, &mut second], "still served").await;

    // One of them joins: a place for a new handshake.
    let path = format!("{POLLING}&sid={idle}");
    let (status, body, _) = hub.http("POST", &path, "40").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _, _) = hub.http("GET", &path, "").await;
    assert_eq!(status, 200, "the CONNECT reply");
    assert_eq!(polling_handshake(&hub).await.0, 200);
}

/// A polling handshake sent by hand from `source` (a loopback address other than the test's own
/// 127.0.0.1 is another client address to the hub): status and JSON body (Null if not JSON).
async fn polling_handshake_from(hub: &TestHub, source: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let mut tcp = socket.connect(hub.addr).await.unwrap();
        let request = format!(
            "GET {POLLING} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            hub.addr
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.unwrap();
        String::from_utf8(answer).unwrap()
    };
    let answer = within(WAIT_TIMEOUT, "a handshake from another address", exchange).await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Waits (bounded) until `/metrics` shows `name` at `value`.
async fn metric_becomes(hub: &TestHub, name: &str, value: u64) {
    let what = format!("{name} to become {value}");
    within(WAIT_TIMEOUT, &what, async {
        while hub.metric(name).await != value {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Heartbeats long enough that sessions which never poll stay open for the whole test.
fn slow_heartbeat() -> Config {
    Config {
        ping_interval: Duration::from_secs(20),
        ping_timeout: Duration::from_secs(20),
        ..test_config()
    }
}

#[actix_web::test]
async fn unjoined_share_per_address_refuses_that_address_with_429_and_others_are_admitted() {
    let hub = start_hub(Config {
        max_unjoined: 10,
        max_unjoined_per_address: 2,
        ..slow_heartbeat()
    });
    // Joined sessions do not count against the share.
    let mut joined = hub.joined().await;
    let idle = hub.polling_session("/socket.io/").await;
    hub.polling_session("/socket.io/").await;

    // 127.0.0.1 has filled its share of unjoined places: 429, for polling and WebSocket handshakes.
    let (status, body, content_type) = polling_handshake(&hub).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({ "code": 4, "message": "Too many sessions not joined to a namespace from this address" })
    );
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_ws_refused(&hub, 429).await;
    assert_eq!(
        hub.metric("hub_handshakes_refused_unjoined_per_address_total")
            .await,
        2
    );
    assert_eq!(hub.metric("hub_handshakes_refused_unjoined_total").await, 0);

    // Another address still gets sessions, polling and WebSocket, while the pool has room.
    let (status, body) = polling_handshake_from(&hub, "127.0.0.2").await;
    assert_eq!(status, 200, "{body}");
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let tcp = within(WAIT_TIMEOUT, "a connection", socket.connect(hub.addr))
        .await
        .unwrap();
    let mut other = common::raw_ws::RawClient::handshake(tcp).await;
    assert!(other.read_text().await.starts_with("0{"), "the open packet");
    other.send_text("40").await;
    assert!(
        other.read_text().await.starts_with("40{"),
        "the CONNECT reply"
    );
    assert_eq!(hub.metric("hub_unjoined_sessions").await, 3);
    assert_still_receive(&hub, &mut [&mut joined], "still served").await;

    // One of 127.0.0.1's sessions joins: a place in its share again.
    let path = format!("{POLLING}&sid={idle}");
    let (status, body, _) = hub.http("POST", &path, "40").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _, _) = hub.http("GET", &path, "").await;
    assert_eq!(status, 200, "the CONNECT reply");
    assert_eq!(polling_handshake(&hub).await.0, 200);
    assert_eq!(polling_handshake(&hub).await.0, 429);
}

#[actix_web::test]
async fn unjoined_places_are_given_back_however_a_session_ends() {
    let hub = start_hub(Config {
        max_unjoined_per_address: 1,
        // Long enough for the checks right after a handshake, short enough to wait for.
        connect_timeout: Duration::from_secs(2),
        namespaces: vec!["/".into(), "/custom".into()],
        ..slow_heartbeat()
    });
    // Ended by the connect timeout.
    hub.polling_session("/socket.io/").await;
    assert_eq!(polling_handshake(&hub).await.0, 429);
    metric_becomes(&hub, "hub_unjoined_sessions", 0).await;

    // Closed by the client (Engine.IO close packet) before joining.
    let sid = hub.polling_session("/socket.io/").await;
    let (status, _, _) = hub.http("POST", &format!("{POLLING}&sid={sid}"), "1").await;
    assert_eq!(status, 200);
    metric_becomes(&hub, "hub_unjoined_sessions", 0).await;

    // A WebSocket dropped before joining.
    let (mut client, _) = hub.eio().await;
    assert_eq!(hub.metric("hub_unjoined_sessions").await, 1);
    client.close().await;
    metric_becomes(&hub, "hub_unjoined_sessions", 0).await;

    // Joined (once, however many namespaces), then closed: nothing is given back twice.
    let mut joined = hub.joined().await;
    joined.client.send("40/custom,").await;
    let mut second = hub.joined().await;
    assert_eq!(hub.metric("hub_unjoined_sessions").await, 0);
    joined.client.close().await;
    metric_becomes(&hub, "hub_engine_sessions", 1).await;
    hub.polling_session("/socket.io/").await;
    assert_eq!(hub.metric("hub_unjoined_sessions").await, 1);
    assert_eq!(polling_handshake(&hub).await.0, 429, "the share is still 1");
    assert_still_receive(&hub, &mut [&mut second], "still served").await;
}
