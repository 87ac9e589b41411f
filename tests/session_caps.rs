//! The caps on Engine.IO sessions (in all, per client address, not joined to a namespace) on the
//! wire: a handshake past a cap gets 503 or 429 with Engine.IO's error body, a WebSocket handshake
//! without a sid the same before the upgrade, the refusal is counted in `/metrics`, and the clients
//! already joined keep receiving.

mod common;

use common::{event_args, start_hub, test_config, Joined, TestHub};
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

async fn metric(hub: &TestHub, name: &str) -> u64 {
    let (status, text, _) = hub.http("GET", "/metrics", "").await;
    assert_eq!(status, 200);
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
        .parse()
        .unwrap()
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
        metric(&hub, "hub_handshakes_refused_max_sessions_total").await,
        2
    );
    assert_eq!(metric(&hub, "hub_engine_sessions").await, 3);

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
        metric(&hub, "hub_handshakes_refused_per_address_total").await,
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
    assert_eq!(
        metric(&hub, "hub_handshakes_refused_unjoined_total").await,
        2
    );
    assert_eq!(metric(&hub, "hub_unjoined_sessions").await, 2);
    assert_still_receive(&hub, &mut [&mut joined, &mut second], "still served").await;

    // One of them joins: a place for a new handshake.
    let path = format!("{POLLING}&sid={idle}");
    let (status, body, _) = hub.http("POST", &path, "40").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _, _) = hub.http("GET", &path, "").await;
    assert_eq!(status, 200, "the CONNECT reply");
    assert_eq!(polling_handshake(&hub).await.0, 200);
}
