//! The Engine.IO handshake on the wire: the open packet, and Node's HTTP error answers (reference §1.1).

mod common;

use common::{start_hub, test_config, within, Received, WAIT_TIMEOUT};
use serde_json::{json, Value};

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
