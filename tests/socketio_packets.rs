//! Socket.IO v5 on the wire: CONNECT, namespaces, DISCONNECT, and malformed packets (reference §2).

mod common;

use common::start_suite_hub;
use common::{start_hub, test_config, Received};
use serde_json::json;

#[actix_web::test]
async fn connect_is_answered_with_sid_and_pid_then_the_offset_event() {
    let hub = start_hub(test_config());
    let (mut client, open) = hub.eio().await;
    client.send("40").await;
    let (sid, pid) = client.recv_connect().await;
    assert_ne!(sid, pid);
    assert_ne!(
        json!(sid),
        open["sid"],
        "the socket id is not the Engine.IO id"
    );
    // A fresh hub's log is empty: the offset event carries its tip, 0-0.
    assert_eq!(client.recv_text().await, r#"42["hub:offset","0-0"]"#);
}

#[actix_web::test]
async fn connect_with_an_auth_payload_is_accepted() {
    let hub = start_hub(test_config());
    let (mut client, _) = hub.eio().await;
    client.send(r#"40{"token":"123"}"#).await;
    client.recv_connect().await;
}

#[actix_web::test]
async fn connect_to_unknown_namespace_is_refused_and_the_connection_stays_open() {
    let hub = start_hub(test_config());
    let (mut client, _) = hub.eio().await;
    client.send("40/nope,").await;
    assert_eq!(
        client.recv_text().await,
        r#"44/nope,{"message":"Invalid namespace"}"#
    );
    client.send("40/random").await;
    assert_eq!(
        client.recv_text().await,
        r#"44/random,{"message":"Invalid namespace"}"#
    );
    client.send("40").await;
    client.recv_connect().await;
}

#[actix_web::test]
async fn disconnect_from_main_namespace_sends_nothing_and_keeps_the_connection() {
    let hub = start_hub(test_config());
    let mut joined = hub.joined().await;
    joined.client.send("41").await;
    assert_eq!(
        joined.client.recv_text().await,
        "2",
        "the next frame is the ping"
    );
    joined.client.send("3").await;
    joined.client.send("40").await;
    let (sid, _) = joined.client.recv_connect().await;
    assert_ne!(sid, joined.sid, "a deliberate disconnect is not resumed");
}

/// Sends `frames` (after joining `/` first when they start with `40`) and expects the hub to close.
async fn assert_closes_after(frames: &[&str]) {
    let hub = start_hub(test_config());
    let (mut client, frames) = match frames.split_first() {
        Some((&"40", rest)) => (hub.joined().await.client, rest),
        _ => (hub.eio().await.0, frames),
    };
    for frame in frames {
        client.send(frame).await;
    }
    let closed = client.expect_closed().await;
    assert!(
        matches!(closed, Received::Close(_) | Received::Ended),
        "{frames:?}: {closed:?}"
    );
}

#[actix_web::test]
async fn unknown_socketio_packet_type_closes_the_connection() {
    assert_closes_after(&["40", "4abc"]).await;
}

#[actix_web::test]
async fn event_with_object_payload_closes_the_connection() {
    assert_closes_after(&["40", "42{}"]).await;
}

#[actix_web::test]
async fn event_with_invalid_ack_id_closes_the_connection() {
    assert_closes_after(&["40", r#"42abc["message"]"#]).await;
}

#[actix_web::test]
async fn unknown_engineio_packet_type_closes_the_connection() {
    assert_closes_after(&["abc"]).await;
}

#[actix_web::test]
async fn packet_before_connect_closes_the_connection() {
    assert_closes_after(&[r#"42["hello"]"#]).await;
}

#[actix_web::test]
async fn second_connect_to_a_joined_namespace_closes_the_connection() {
    assert_closes_after(&["40", "40"]).await;
}

#[actix_web::test]
async fn reserved_event_name_closes_the_connection() {
    assert_closes_after(&["40", r#"42["disconnect"]"#]).await;
}

#[actix_web::test]
async fn binary_frame_without_binary_packet_closes_the_connection() {
    let hub = start_hub(test_config());
    let (mut client, _) = hub.eio().await;
    client.send_binary(vec![1, 2, 3]).await;
    client.expect_closed().await;
}

#[actix_web::test]
async fn client_events_with_attachments_are_consumed_without_closing() {
    let hub = start_hub(test_config());
    let mut joined = hub.joined().await;
    joined
        .client
        .send(r#"451-["up",{"_placeholder":true,"num":0}]"#)
        .await;
    joined.client.send_binary(vec![1, 2]).await;
    joined.client.send(r#"42["chat","hi"]"#).await;
    let offset = hub.publish("still here").await;
    let frame = joined.client.recv_text_answering_pings().await;
    assert!(frame.ends_with(&format!(r#","{offset}"]"#)), "{frame}");
}

// ----
// Acks the server asks for (the application's `Reply::ask`), answered once, twice, out of turn or
// never: each answer counts once, and only for an id the server asked (reference §2.4).

#[actix_web::test]
async fn an_ack_the_server_asked_for_counts_once_and_unasked_ids_are_ignored() {
    let hub = start_suite_hub(false);
    let (mut client, _) = hub.eio().await;
    client.send("40").await;
    let reply = client.recv_text().await;
    assert!(reply.starts_with("40{\"sid\""), "{reply}");
    assert_eq!(client.recv_text_answering_pings().await, r#"42["auth",{}]"#);
    // An answer before anything was asked, and one to an id never asked: ignored.
    client.send("430[0]").await;
    client.send("437[7]").await;
    client.send(r#"42["ask",1]"#).await;
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"420["question",1]"#
    );
    client.send(r#"42["ask",2]"#).await;
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"421["question",2]"#
    );
    // Never answering 0 does not hold back 1; answering 1 twice counts once.
    client.send("431[\"b\"]").await;
    client.send("431[\"b again\"]").await;
    client.send(r#"42["message","sync"]"#).await;
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"42["answered","b"]"#
    );
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"42["message-back","sync"]"#,
        "the second answer to 1 was ignored"
    );
    client.send("430[\"a\"]").await;
    client.send(r#"42["message","sync2"]"#).await;
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"42["answered","a"]"#
    );
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"42["message-back","sync2"]"#
    );
}
