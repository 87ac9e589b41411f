//! The Engine.IO handshake on the wire: the open packet, and Node's HTTP error answers (reference §1.1).

mod common;

use common::{start_hub, test_config, within, Received, WAIT_TIMEOUT};
use common::{start_hub_with_app, TestHub};
use realtime_hub::config::Config;
use serde_json::{json, Value};
use std::time::Duration;

#[actix_web::test]
async fn websocket_open_packet_has_exactly_five_keys_in_order() {
    let hub = start_hub(test_config());
    let mut client = hub.ws("EIO=4&transport=websocket").await.unwrap();
    let open = client.recv_text().await;
    let parsed: Value = serde_json::from_str(&open[1..]).unwrap();
    let sid = parsed["sid"].as_str().expect("sid is a string");
    assert!(
        sid.len() >= 20
            && sid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(
        open,
        format!(
            r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}}"#
        )
    );
}

#[actix_web::test]
async fn websocket_sessions_get_distinct_sids() {
    let hub = start_hub(test_config());
    let (_a, open_a) = hub.eio().await;
    let (_b, open_b) = hub.eio().await;
    assert_ne!(open_a["sid"], open_b["sid"]);
}

async fn http_answer(
    hub: &common::TestHub,
    method: &str,
    query: &str,
    upgrade: bool,
) -> (u16, Value) {
    let client = awc::Client::new();
    let url = hub.url(&format!("/socket.io/?{query}"));
    let mut req = match method {
        "GET" => client.get(url),
        "POST" => client.post(url),
        "PUT" => client.put(url),
        other => panic!("method {other}"),
    };
    if upgrade {
        req = req
            .insert_header(("connection", "upgrade"))
            .insert_header(("upgrade", "websocket"))
            .insert_header(("sec-websocket-version", "13"))
            .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="));
    }
    let mut res = req.send().await.expect("request");
    // awc bounds the wait for the response head, not for its body.
    let body = within(WAIT_TIMEOUT, "the answer's body", res.body())
        .await
        .expect("body");
    (
        res.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[actix_web::test]
async fn handshake_with_invalid_eio_gets_400_code_5() {
    let hub = start_hub(test_config());
    for query in [
        "transport=websocket",
        "EIO=abc&transport=websocket",
        "EIO=3&transport=websocket",
    ] {
        let answer = http_answer(&hub, "GET", query, true).await;
        assert_eq!(
            answer,
            (
                400,
                json!({"code": 5, "message": "Unsupported protocol version"})
            ),
            "{query}"
        );
    }
}

#[actix_web::test]
async fn handshake_with_invalid_transport_gets_400_code_0() {
    let hub = start_hub(test_config());
    for query in [
        "EIO=4",
        "EIO=4&transport=abc",
        "EIO=4&transport=webtransport",
    ] {
        let answer = http_answer(&hub, "GET", query, true).await;
        assert_eq!(
            answer,
            (400, json!({"code": 0, "message": "Transport unknown"})),
            "{query}"
        );
    }
}

#[actix_web::test]
async fn handshake_with_invalid_method_gets_400_code_2() {
    let hub = start_hub(test_config());
    for method in ["POST", "PUT"] {
        let answer = http_answer(&hub, method, "EIO=4&transport=websocket", false).await;
        assert_eq!(
            answer,
            (400, json!({"code": 2, "message": "Bad handshake method"})),
            "{method}"
        );
    }
}

#[actix_web::test]
async fn websocket_transport_without_upgrade_gets_400_code_3() {
    let hub = start_hub(test_config());
    let answer = http_answer(&hub, "GET", "EIO=4&transport=websocket", false).await;
    assert_eq!(answer, (400, json!({"code": 3, "message": "Bad request"})));
}

#[actix_web::test]
async fn request_with_unknown_sid_gets_400_code_1() {
    let hub = start_hub(test_config());
    let answer = http_answer(&hub, "GET", "EIO=4&transport=websocket&sid=nope", true).await;
    assert_eq!(
        answer,
        (400, json!({"code": 1, "message": "Session ID unknown"}))
    );
}

#[actix_web::test]
async fn websocket_with_invalid_eio_fails_to_connect() {
    let hub = start_hub(test_config());
    assert!(hub.ws("EIO=abc&transport=websocket").await.is_err());
    assert!(hub.ws("EIO=4&transport=abc").await.is_err());
}

#[actix_web::test]
async fn websocket_close_packet_from_client_closes_the_session() {
    let hub = start_hub(test_config());
    let (mut client, _) = hub.eio().await;
    client.send("1").await;
    assert!(matches!(
        client.expect_closed().await,
        Received::Close(_) | Received::Ended
    ));
}

#[actix_web::test]
async fn cors_allows_a_configured_origin_with_credentials_and_no_other() {
    let mut config = test_config();
    config.cors_origins = vec!["http://app.example".into()];
    let hub = start_hub(config);
    let get = |origin: &'static str| {
        awc::Client::new()
            .get(hub.url("/socket.io/?EIO=4&transport=polling"))
            .insert_header(("origin", origin))
            .send()
    };
    let allowed = get("http://app.example").await.unwrap();
    let header = |name: &str| {
        allowed
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("access-control-allow-origin").as_deref(),
        Some("http://app.example")
    );
    assert_eq!(
        header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(header("vary").as_deref(), Some("Origin"));

    let other = get("http://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn polling_handshake_advertises_the_websocket_upgrade() {
    let hub = start_hub(test_config());
    let open = hub.polling_session("/socket.io/").await;
    assert!(!open.is_empty());
    let (status, body, _) = hub
        .http("GET", "/socket.io/?EIO=4&transport=polling", "")
        .await;
    assert_eq!(status, 200);
    let open: Value = serde_json::from_str(&body[1..]).unwrap();
    assert_eq!(open["upgrades"], json!(["websocket"]));
}

// ----
// An upgrade probe (a second WebSocket for a polling session) at the edges: one that never probes,
// one whose session closes while it probes, one that arrives at a session that has just closed.
// Since the WsConn holds its session weakly and hands it an `Attach` guard, a probe nobody holds
// must still be closed, and polling must go on as it was.

const PATH: &str = "/engine.io/";

fn polling(sid: &str) -> String {
    format!("{PATH}?EIO=4&transport=polling&sid={sid}")
}

/// The Engine.IO echo server, with pings far apart (no heartbeat ends a session during a test) and
/// a short upgrade timeout.
async fn hub_and_session() -> (TestHub, String) {
    let config = Config {
        host: "127.0.0.1".into(),
        port: 0,
        ping_interval: Duration::from_secs(20),
        ping_timeout: Duration::from_secs(20),
        upgrade_timeout: Duration::from_millis(300),
        ..Config::conformance_suite(true)
    };
    let hub = start_hub_with_app(
        config,
        std::sync::Arc::new(realtime_hub::app::SuiteApp::default()),
    );
    let sid = hub.polling_session(PATH).await;
    (hub, sid)
}

async fn probe(hub: &TestHub, sid: &str) -> common::WsClient {
    hub.ws_at(PATH, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_probe_that_never_probes_is_closed_at_the_upgrade_timeout_and_polling_goes_on() {
    let (hub, sid) = hub_and_session().await;
    let mut ws = probe(&hub, &sid).await;
    ws.expect_closed().await;
    assert_eq!(hub.http("POST", &polling(&sid), "4after").await.0, 200);
    assert_eq!(hub.http("GET", &polling(&sid), "").await.1, "4after");
    // A second probe after the first timed out is a probe again, and upgrades.
    let mut ws = probe(&hub, &sid).await;
    ws.send("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    ws.send("5").await;
    ws.send("4upgraded").await;
    assert_eq!(ws.recv_text_answering_pings().await, "4upgraded");
}

#[actix_web::test]
async fn a_session_closed_by_its_client_mid_probe_closes_the_probe() {
    let (hub, sid) = hub_and_session().await;
    let mut ws = probe(&hub, &sid).await;
    ws.send("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    assert_eq!(hub.http("POST", &polling(&sid), "1").await.0, 200);
    ws.expect_closed().await;
}

#[actix_web::test]
async fn a_probe_that_comes_to_a_closed_session_is_closed() {
    let (hub, sid) = hub_and_session().await;
    // Closed with no GET pending: the session lingers for one late GET.
    assert_eq!(hub.http("POST", &polling(&sid), "1").await.0, 200);
    // Refused outright is fine too: the session may be gone already.
    if let Ok(mut ws) = hub
        .ws_at(PATH, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
    {
        ws.expect_closed().await;
    }
    let (status, body, _) = hub.http("GET", &polling(&sid), "").await;
    assert!(
        (status == 200 && body == "6") || status == 400,
        "the late GET: {status} {body}"
    );
}

#[actix_web::test]
async fn a_probe_that_comes_while_another_probes_is_closed_and_the_first_upgrades() {
    let (hub, sid) = hub_and_session().await;
    let mut first = probe(&hub, &sid).await;
    first.send("2probe").await;
    assert_eq!(first.recv_text().await, "3probe");
    let mut second = probe(&hub, &sid).await;
    second.expect_closed().await;
    first.send("5").await;
    first.send("4first").await;
    assert_eq!(first.recv_text_answering_pings().await, "4first");
}

/// The probe's Attached and the client's close race (each order, many times): the probe is closed
/// whether the session took its link, refused it, or ended with it in its mailbox.
#[actix_web::test]
async fn a_probe_racing_its_sessions_close_is_closed_every_time() {
    for round in 0..20 {
        let (hub, sid) = hub_and_session().await;
        let query = format!("EIO=4&transport=websocket&sid={sid}");
        let path = polling(&sid);
        let close = async {
            if round % 2 == 1 {
                actix_web::rt::time::sleep(Duration::from_millis(1)).await;
            }
            hub.http("POST", &path, "1").await
        };
        let (probe, (status, _, _)) =
            futures_util::future::join(hub.ws_at(PATH, &query), close).await;
        assert_eq!(status, 200, "round {round}: the close");
        if let Ok(mut ws) = probe {
            ws.expect_closed().await;
        }
    }
}

/// Probed (`2probe` answered, polling paused with noops) but never finished with `5`: at the upgrade
/// timeout the probe is closed and polling carries the session again.
#[actix_web::test]
async fn a_probe_answered_but_never_finished_times_out_and_polling_resumes() {
    let (hub, sid) = hub_and_session().await;
    let mut ws = probe(&hub, &sid).await;
    ws.send("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    let (status, body, _) = hub.http("GET", &polling(&sid), "").await;
    assert_eq!((status, body.as_str()), (200, "6"), "a noop while probed");
    ws.expect_closed().await;
    assert_eq!(hub.http("POST", &polling(&sid), "4resumed").await.0, 200);
    assert_eq!(hub.http("GET", &polling(&sid), "").await.1, "4resumed");
}

/// Session ids from the wire that name no session (odd lengths, unicode, percent-encoded bytes):
/// refused as unknown, over polling and for a WebSocket, and the real session is untouched.
#[actix_web::test]
async fn sids_from_the_wire_that_name_no_session_are_refused_as_unknown() {
    let (hub, sid) = hub_and_session().await;
    let long = "x".repeat(4000);
    let near = format!("{sid}%C3%A9");
    for odd in [
        "a",
        "%F0%9F%98%80",
        "%C3%A9%00",
        long.as_str(),
        &sid[..sid.len() - 1],
        near.as_str(),
    ] {
        let (status, body, _) = hub.http("GET", &polling(odd), "").await;
        assert_eq!(status, 400, "sid {odd:?}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"].as_u64(), Some(1), "sid {odd:?}: unknown");
        let ws = hub
            .ws_at(PATH, &format!("EIO=4&transport=websocket&sid={odd}"))
            .await;
        assert!(ws.is_err(), "sid {odd:?}: no WebSocket");
    }
    assert_eq!(hub.http("POST", &polling(&sid), "4still").await.0, 200);
    assert_eq!(hub.http("GET", &polling(&sid), "").await.1, "4still");
}
