//! The behaviours of the official Socket.IO v5 conformance suite (reference §5), written by us and run
//! in CI against the suite's application: namespaces `/` and `/custom`, `auth` emitted on connect,
//! `message` echoed as `message-back`, `message-with-ack` acknowledged, recovery off.

mod common;

use common::{start_suite_hub, within, Received, TestHub, WsClient, WAIT_TIMEOUT};

const PATH: &str = "/socket.io/";

async fn ws(hub: &TestHub) -> WsClient {
    let mut ws = hub.ws_at(PATH, "EIO=4&transport=websocket").await.unwrap();
    assert!(ws.recv_text().await.starts_with("0{"));
    ws
}

/// A WebSocket joined to `/`, its `auth` event read.
async fn connected(hub: &TestHub) -> WsClient {
    let mut ws = ws(hub).await;
    ws.send("40").await;
    assert!(ws.recv_text().await.starts_with("40{"));
    assert_eq!(ws.recv_text().await, r#"42["auth",{}]"#);
    ws
}

/// The sid of a CONNECT reply `40<nsp>{"sid":…}` with exactly that key (recovery is off).
fn connect_reply_sid(frame: &str, prefix: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(frame.strip_prefix(prefix).unwrap()).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["sid"], "{frame}");
    json["sid"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn should_allow_connection_to_the_main_namespace_with_and_without_payload() {
    let hub = start_suite_hub(false);
    for (connect, auth) in [("40", "{}"), (r#"40{"token":"123"}"#, r#"{"token":"123"}"#)] {
        let mut ws = ws(&hub).await;
        ws.send(connect).await;
        connect_reply_sid(&ws.recv_text().await, "40");
        assert_eq!(ws.recv_text().await, format!(r#"42["auth",{auth}]"#));
    }
}

#[actix_web::test]
async fn should_allow_connection_to_a_custom_namespace_with_and_without_payload() {
    let hub = start_suite_hub(false);
    for (connect, auth) in [
        ("40/custom,", "{}"),
        (r#"40/custom,{"token":"abc"}"#, r#"{"token":"abc"}"#),
    ] {
        let mut ws = ws(&hub).await;
        ws.send(connect).await;
        connect_reply_sid(&ws.recv_text().await, "40/custom,");
        assert_eq!(
            ws.recv_text().await,
            format!(r#"42/custom,["auth",{auth}]"#)
        );
    }
}

#[actix_web::test]
async fn should_disallow_connection_to_an_unknown_namespace() {
    let hub = start_suite_hub(false);
    let mut ws = ws(&hub).await;
    ws.send("40/random").await;
    assert_eq!(
        ws.recv_text().await,
        r#"44/random,{"message":"Invalid namespace"}"#
    );
}

#[actix_web::test]
async fn should_disallow_connection_with_an_invalid_handshake() {
    let hub = start_suite_hub(false);
    let mut ws = ws(&hub).await;
    ws.send("4abc").await;
    ws.expect_closed().await;
}

#[actix_web::test]
async fn should_close_the_connection_if_no_handshake_is_received() {
    let hub = start_suite_hub(false);
    let mut ws = ws(&hub).await;
    // connectTimeout is 1 s; the pings are answered, so only the missing CONNECT can end it.
    let started = std::time::Instant::now();
    let closed = async {
        loop {
            match ws.recv().await {
                Received::Text(ping) if ping == "2" => ws.send("3").await,
                Received::Text(other) => panic!("unexpected {other}"),
                _ => break,
            }
        }
    };
    within(
        WAIT_TIMEOUT,
        "the connect timeout to close the connection",
        closed,
    )
    .await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "closed by the connect timeout"
    );
}

#[actix_web::test]
async fn should_disconnect_from_the_main_namespace() {
    let hub = start_suite_hub(false);
    let mut ws = connected(&hub).await;
    ws.send("41").await;
    assert_eq!(
        ws.recv_text().await,
        "2",
        "nothing is sent back; the next frame is the ping"
    );
}

#[actix_web::test]
async fn should_connect_then_disconnect_from_a_custom_namespace() {
    let hub = start_suite_hub(false);
    let mut ws = connected(&hub).await;
    assert_eq!(ws.recv_text().await, "2");
    ws.send("40/custom").await;
    connect_reply_sid(&ws.recv_text().await, "40/custom,");
    assert_eq!(ws.recv_text().await, r#"42/custom,["auth",{}]"#);
    ws.send("41/custom").await;
    ws.send(r#"42["message","message to main namespace"]"#)
        .await;
    assert_eq!(
        ws.recv_text().await,
        r#"42["message-back","message to main namespace"]"#
    );
}

#[actix_web::test]
async fn should_send_a_plain_text_packet_and_one_with_an_ack() {
    let hub = start_suite_hub(false);
    let mut ws = connected(&hub).await;
    ws.send(r#"42["message",1,"2",{"3":[true]}]"#).await;
    assert_eq!(
        ws.recv_text_answering_pings().await,
        r#"42["message-back",1,"2",{"3":[true]}]"#
    );
    ws.send(r#"42456["message-with-ack",1,"2",{"3":[false]}]"#)
        .await;
    assert_eq!(
        ws.recv_text_answering_pings().await,
        r#"43456[1,"2",{"3":[false]}]"#
    );
}

#[actix_web::test]
async fn should_send_a_packet_with_binary_attachments_with_and_without_an_ack() {
    let hub = start_suite_hub(false);
    let mut ws = connected(&hub).await;
    let placeholders = r#"{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}"#;
    for (sent, expected) in [
        (
            format!(r#"452-["message",{placeholders}]"#),
            format!(r#"452-["message-back",{placeholders}]"#),
        ),
        (
            format!(r#"452-789["message-with-ack",{placeholders}]"#),
            format!("462-789[{placeholders}]"),
        ),
    ] {
        ws.send(&sent).await;
        ws.send_binary(vec![1, 2, 3]).await;
        ws.send_binary(vec![4, 5, 6]).await;
        assert_eq!(ws.recv_text_answering_pings().await, expected);
        assert_eq!(ws.recv().await, Received::Binary(vec![1, 2, 3]));
        assert_eq!(ws.recv().await, Received::Binary(vec![4, 5, 6]));
    }
}

#[actix_web::test]
async fn should_close_the_connection_upon_invalid_format() {
    let hub = start_suite_hub(false);
    for bad in [
        "4abc",
        "42{}",
        r#"42abc["message-with-ack",1,"2",{"3":[false]}]"#,
    ] {
        let mut ws = connected(&hub).await;
        ws.send(bad).await;
        ws.expect_closed().await;
    }
}

#[actix_web::test]
async fn binary_attachments_are_reassembled_across_polling_requests() {
    let hub = start_suite_hub(false);
    let sid = hub.polling_session(PATH).await;
    let url = format!("{PATH}?EIO=4&transport=polling&sid={sid}");
    assert_eq!(hub.http("POST", &url, "40").await.0, 200);
    let (_, body, _) = hub.http("GET", &url, "").await;
    let mut packets = body.split('\x1e');
    assert!(packets.next().unwrap().starts_with("40{"));
    assert_eq!(packets.next(), Some(r#"42["auth",{}]"#));

    // The header in one POST, its first attachment in a second, the last one in a third.
    let header = r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
    assert_eq!(hub.http("POST", &url, header).await.0, 200);
    assert_eq!(hub.http("POST", &url, "bAQID").await.0, 200);
    assert_eq!(hub.http("POST", &url, "bBAUG").await.0, 200);
    let (_, body, _) = hub.http("GET", &url, "").await;
    assert_eq!(
        body,
        "452-[\"message-back\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]\x1ebAQID\x1ebBAUG"
    );
}

#[actix_web::test]
async fn text_while_waiting_for_attachments_closes_the_connection() {
    let hub = start_suite_hub(false);
    let mut ws = connected(&hub).await;
    ws.send(r#"451-["message",{"_placeholder":true,"num":0}]"#)
        .await;
    ws.send(r#"42["message","too soon"]"#).await;
    ws.expect_closed().await;
}

#[actix_web::test]
async fn server_to_client_ack_reaches_the_application_and_unknown_ids_are_ignored() {
    let hub = start_suite_hub(false);
    let mut ws = connected(&hub).await;
    ws.send(r#"42["ask",1]"#).await;
    assert_eq!(ws.recv_text_answering_pings().await, r#"420["question",1]"#);
    ws.send("43999[5]").await; // no event was emitted with id 999: ignored
    ws.send("430[2]").await;
    assert_eq!(ws.recv_text_answering_pings().await, r#"42["answered",2]"#);
    ws.send("430[3]").await; // id 0 was answered already: ignored
    ws.send(r#"42["message","still open"]"#).await;
    assert_eq!(
        ws.recv_text_answering_pings().await,
        r#"42["message-back","still open"]"#
    );
}
