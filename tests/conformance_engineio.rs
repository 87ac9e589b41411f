//! The behaviours of the official Engine.IO v4 conformance suite (reference §5), written by us and run
//! in CI against the suite's application (every message echoed, path `/engine.io/`, ping 300/200 ms).

mod common;

use std::time::Duration;

use common::{start_suite_hub, Received, TestHub};
use serde_json::Value;

const PATH: &str = "/engine.io/";

fn polling(sid: &str) -> String {
    format!("{PATH}?EIO=4&transport=polling&sid={sid}")
}

async fn hub_and_session() -> (TestHub, String) {
    let hub = start_suite_hub(true);
    let sid = hub.polling_session(PATH).await;
    (hub, sid)
}

#[actix_web::test]
async fn polling_handshake_successfully_opens_a_session() {
    let hub = start_suite_hub(true);
    let (status, body, content_type) = hub
        .http("GET", "/engine.io/?EIO=4&transport=polling", "")
        .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/plain; charset=UTF-8")
    );
    let open: Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
    let keys: Vec<&str> = open
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "sid",
            "upgrades",
            "pingInterval",
            "pingTimeout",
            "maxPayload"
        ]
    );
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(
        (open["pingInterval"].as_u64(), open["pingTimeout"].as_u64()),
        (Some(300), Some(200))
    );
    assert_eq!(open["maxPayload"], 1_000_000);
}

#[actix_web::test]
async fn polling_handshake_fails_with_an_invalid_eio_transport_or_method() {
    let hub = start_suite_hub(true);
    for (method, query, code) in [
        ("GET", "transport=polling", 5),
        ("GET", "EIO=abc&transport=polling", 5),
        ("GET", "EIO=4", 0),
        ("GET", "EIO=4&transport=abc", 0),
        ("POST", "EIO=4&transport=polling", 2),
        ("PUT", "EIO=4&transport=polling", 2),
    ] {
        let (status, body, _) = hub.http(method, &format!("{PATH}?{query}"), "").await;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (status, body["code"].as_u64()),
            (400, Some(code)),
            "{method} {query}"
        );
    }
}

#[actix_web::test]
async fn polling_sends_and_receives_plain_text_and_binary_packets() {
    let (hub, sid) = hub_and_session().await;
    for payload in [
        "4hello",
        "4test1\x1e4test2\x1e4test3",
        "4hello\x1ebAQIDBA==",
    ] {
        let (status, body, content_type) = hub.http("POST", &polling(&sid), payload).await;
        assert_eq!(
            (status, body.as_str(), content_type.as_str()),
            (200, "ok", "text/html")
        );
        let (status, body, _) = hub.http("GET", &polling(&sid), "").await;
        assert_eq!((status, body.as_str()), (200, payload));
    }
}

#[actix_web::test]
async fn polling_closes_the_session_upon_invalid_packet_format() {
    let (hub, sid) = hub_and_session().await;
    assert_eq!(hub.http("POST", &polling(&sid), "abc").await.0, 400);
    assert_eq!(hub.http("GET", &polling(&sid), "").await.0, 400);
}

#[actix_web::test]
async fn polling_closes_the_session_upon_duplicate_poll_requests() {
    let (hub, sid) = hub_and_session().await;
    let path = polling(&sid);
    let ((status, body, _), (second_status, _, _)) = hub
        .while_polling(&path, "GET", &format!("{path}&t=burst"), "")
        .await;
    assert_eq!((status, body.as_str()), (200, "1"));
    assert_eq!(second_status, 400);
    assert_eq!(hub.http("GET", &path, "").await.0, 400);
}

#[actix_web::test]
async fn polling_closes_the_session_upon_cancelled_polling_request() {
    let (hub, sid) = hub_and_session().await;
    // The client gives up on its pending GET (its connection closes).
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        hub.http("GET", &polling(&sid), ""),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "nothing was queued: the GET was pending"
    );
    actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(hub.http("GET", &polling(&sid), "").await.0, 400);
}

#[actix_web::test]
async fn websocket_sends_and_receives_text_and_binary_packets() {
    let hub = start_suite_hub(true);
    let mut ws = hub.ws_at(PATH, "EIO=4&transport=websocket").await.unwrap();
    assert!(ws.recv_text().await.starts_with("0{"));
    ws.send("4hello").await;
    assert_eq!(ws.recv_text().await, "4hello");
    ws.send_binary(vec![1, 2, 3, 4]).await;
    assert_eq!(ws.recv().await, Received::Binary(vec![1, 2, 3, 4]));
    ws.send("abc").await;
    ws.expect_closed().await;
}

#[actix_web::test]
async fn polling_sends_ping_packets_and_accepts_pongs() {
    let (hub, sid) = hub_and_session().await;
    for _ in 0..3 {
        assert_eq!(hub.http("GET", &polling(&sid), "").await.1, "2");
        assert_eq!(hub.http("POST", &polling(&sid), "3").await.0, 200);
    }
}

#[actix_web::test]
async fn polling_closes_the_session_upon_ping_timeout() {
    let (hub, sid) = hub_and_session().await;
    actix_web::rt::time::sleep(Duration::from_millis(300 + 200)).await;
    assert_eq!(hub.http("GET", &polling(&sid), "").await.0, 400);
}

#[actix_web::test]
async fn polling_forcefully_closes_the_session() {
    let (hub, sid) = hub_and_session().await;
    let path = polling(&sid);
    let ((status, body, _), _) = hub.while_polling(&path, "POST", &path, "1").await;
    assert_eq!((status, body.as_str()), (200, "6"));
    assert_eq!(hub.http("GET", &path, "").await.0, 400);
}

/// Opens the probing WebSocket of `sid` and completes the upgrade.
async fn upgrade(hub: &TestHub, sid: &str) -> common::WsClient {
    let mut ws = hub
        .ws_at(PATH, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .unwrap();
    ws.send("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    let (status, body, _) = hub.http("GET", &polling(sid), "").await;
    assert_eq!((status, body.as_str()), (200, "6"), "a noop ends polling");
    ws.send("5").await;
    ws
}

#[actix_web::test]
async fn upgrade_successfully_upgrades_from_polling_to_websocket() {
    let (hub, sid) = hub_and_session().await;
    let mut ws = upgrade(&hub, &sid).await;
    ws.send("4hello").await;
    assert_eq!(ws.recv_text_answering_pings().await, "4hello");
}

#[actix_web::test]
async fn upgrade_delivers_packets_queued_while_polling_over_the_websocket() {
    let (hub, sid) = hub_and_session().await;
    assert_eq!(hub.http("POST", &polling(&sid), "4queued").await.0, 200);
    let mut ws = hub
        .ws_at(PATH, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .unwrap();
    ws.send("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    ws.send("5").await;
    assert_eq!(ws.recv_text_answering_pings().await, "4queued");
}

#[actix_web::test]
async fn upgrade_ignores_http_requests_with_same_sid_after_upgrade() {
    let (hub, sid) = hub_and_session().await;
    let mut ws = upgrade(&hub, &sid).await;
    ws.send("4sync").await; // once echoed, the upgrade is done on the server
    assert_eq!(ws.recv_text_answering_pings().await, "4sync");
    let (status, body, _) = hub.http("GET", &polling(&sid), "").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, body["code"].as_u64()), (400, Some(3)));
    ws.send("4hello").await;
    assert_eq!(ws.recv_text_answering_pings().await, "4hello");
}

#[actix_web::test]
async fn upgrade_ignores_websocket_connection_with_same_sid_after_upgrade() {
    let (hub, sid) = hub_and_session().await;
    let mut ws = upgrade(&hub, &sid).await;
    let mut second = hub
        .ws_at(PATH, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .unwrap();
    second.expect_closed().await;
    ws.send("4hello").await;
    assert_eq!(ws.recv_text_answering_pings().await, "4hello");
}

#[actix_web::test]
async fn upgrade_probe_that_sends_anything_else_is_closed_and_polling_goes_on() {
    let (hub, sid) = hub_and_session().await;
    let mut probe = hub
        .ws_at(PATH, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .unwrap();
    probe.send("4too early").await;
    probe.expect_closed().await;
    assert_eq!(
        hub.http("POST", &polling(&sid), "4still polling").await.0,
        200
    );
    assert_eq!(
        hub.http("GET", &polling(&sid), "").await.1,
        "4still polling"
    );
}

#[actix_web::test]
async fn polling_post_over_the_max_payload_gets_413_and_closes_the_session() {
    let (hub, sid) = hub_and_session().await;
    let (status, body, _) = hub
        .http(
            "POST",
            &polling(&sid),
            &format!("4{}", "x".repeat(1_000_001)),
        )
        .await;
    assert_eq!((status, body.as_str()), (413, ""));
    assert_eq!(hub.http("GET", &polling(&sid), "").await.0, 400);
}

#[actix_web::test]
async fn bad_polling_requests_leave_other_sessions_alone() {
    let (hub, healthy) = hub_and_session().await;
    let doomed = hub.polling_session(PATH).await;
    // A malformed body, an unknown sid, a duplicate GET: each answered, only its session closed.
    assert_eq!(
        hub.http("POST", &polling(&doomed), "4ok\x1ezzz").await.0,
        400
    );
    let (status, body, _) = hub.http("GET", &polling("no-such-sid"), "").await;
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"code":1,"message":"Session ID unknown"}"#)
    );
    let victim = hub.polling_session(PATH).await;
    let (first, second) = futures_util::future::join(
        hub.http("GET", &polling(&victim), ""),
        hub.http("GET", &polling(&victim), ""),
    )
    .await;
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, [200, 400]);

    assert_eq!(hub.http("POST", &polling(&healthy), "4fine").await.0, 200);
    assert_eq!(hub.http("GET", &polling(&healthy), "").await.1, "4fine");
}

#[actix_web::test]
async fn cors_preflight_and_responses_carry_the_configured_origin() {
    let hub = start_suite_hub(true);
    let preflight = awc::Client::new()
        .request(
            awc::http::Method::OPTIONS,
            hub.url("/engine.io/?EIO=4&transport=polling"),
        )
        .insert_header(("origin", "http://example.test"))
        .insert_header(("access-control-request-method", "POST"))
        .insert_header(("access-control-request-headers", "content-type"))
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    let header = |name: &str| {
        preflight
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(
        header("access-control-allow-methods").as_deref(),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE")
    );
    assert_eq!(
        header("access-control-allow-headers").as_deref(),
        Some("content-type")
    );

    let res = awc::Client::new()
        .get(hub.url("/engine.io/?EIO=4&transport=polling"))
        .insert_header(("origin", "http://example.test"))
        .send()
        .await
        .unwrap();
    let allow = res
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok());
    assert_eq!(allow, Some("*"));
}

#[actix_web::test]
async fn polling_close_that_overtakes_its_get_still_answers_that_get_with_a_noop() {
    // The suite sends a GET and a POST `1` at once; either may reach the session first.
    let (hub, sid) = hub_and_session().await;
    assert_eq!(hub.http("POST", &polling(&sid), "1").await.0, 200);
    let (status, body, _) = hub.http("GET", &polling(&sid), "").await;
    assert_eq!((status, body.as_str()), (200, "6"));
    assert_eq!(hub.http("GET", &polling(&sid), "").await.0, 400);
}
