//! What clients send that Node accepts must be accepted here, and what Node's parser refuses must be
//! refused here the same way: lone surrogates in JSON text (issue 11, fault 5) and binary
//! attachments whose placeholders name no attachment (fault 9).

mod common;

use common::{event_args, start_hub, start_suite_hub, test_config, Received, TestHub, WsClient};
use serde_json::{json, Value};

const PATH: &str = "/socket.io/";

/// A WebSocket joined to `/` of the conformance application, which echoes `message` as
/// `message-back` and answers the CONNECT with `auth` (its auth payload).
async fn suite_joined(hub: &TestHub, connect: &str) -> (WsClient, String) {
    let mut ws = hub.ws("EIO=4&transport=websocket").await.unwrap();
    assert!(ws.recv_text().await.starts_with("0{"));
    ws.send(connect).await;
    assert!(ws.recv_text_answering_pings().await.starts_with("40{"));
    let auth = ws.recv_text_answering_pings().await;
    (ws, auth)
}

/// Reads frames (answering pings) until one satisfies `wanted`; every frame read is returned.
async fn read_until(client: &mut WsClient, mut wanted: impl FnMut(&str) -> bool) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let frame = client.recv_text_answering_pings().await;
        let done = wanted(&frame);
        seen.push(frame);
        if done {
            return seen;
        }
    }
}

#[actix_web::test]
async fn an_event_with_a_lone_surrogate_keeps_the_connection_and_notify_is_acknowledged() {
    let hub = start_hub(test_config());
    let mut joined = hub.joined().await;
    joined.client.send(r#"42["x","\ud83d"]"#).await;
    joined
        .client
        .send(r#"421["notify",{"title":"cut \ud83d"}]"#)
        .await;
    let mut ack = None;
    let mut title = None;
    read_until(&mut joined.client, |frame| {
        if let Some(json) = frame.strip_prefix("431") {
            ack = serde_json::from_str::<Value>(json).ok();
        }
        if let Some(args) = event_args(frame).filter(|a| a[0] == "notification") {
            title = args[1]["title"].as_str().map(str::to_owned);
        }
        ack.is_some() && title.is_some()
    })
    .await;
    let ack = ack.unwrap();
    assert!(ack[0]["offset"].is_string(), "the notify ack: {ack}");
    assert_eq!(title.as_deref(), Some("cut \u{fffd}"));
}

#[actix_web::test]
async fn lone_surrogates_in_connect_auth_events_acks_and_keys_read_as_the_replacement_character() {
    let hub = start_suite_hub(false);
    // The CONNECT auth payload: a lone low surrogate in a key, a reversed pair in a value.
    let (mut ws, auth) = suite_joined(&hub, r#"40{"k\udc00":"\ude00\ud83d"}"#).await;
    assert_eq!(auth, "42[\"auth\",{\"k\u{fffd}\":\"\u{fffd}\u{fffd}\"}]");
    // An event relayed back: a lone high surrogate at the end, a valid pair kept.
    ws.send(r#"42["message","cut \ud83d","\ud83d\ude00",{"\ud800":1}]"#)
        .await;
    assert_eq!(
        ws.recv_text_answering_pings().await,
        "42[\"message-back\",\"cut \u{fffd}\",\"😀\",{\"\u{fffd}\":1}]"
    );
    // An event asking for an ack, and the client's answer to the server's own ack request.
    ws.send(r#"427["message-with-ack","\udbff"]"#).await;
    assert_eq!(ws.recv_text_answering_pings().await, "437[\"\u{fffd}\"]");
    ws.send(r#"42["ask",1]"#).await;
    assert_eq!(ws.recv_text_answering_pings().await, r#"420["question",1]"#);
    ws.send(r#"430["\udfff"]"#).await;
    assert_eq!(
        ws.recv_text_answering_pings().await,
        "42[\"answered\",\"\u{fffd}\"]"
    );
}

#[actix_web::test]
async fn lone_surrogates_and_bytes_that_are_not_utf8_in_a_polling_payload_are_read_as_node_reads_them(
) {
    let hub = start_suite_hub(false);
    let sid = hub.polling_session(PATH).await;
    let url = hub.url(&format!("{PATH}?EIO=4&transport=polling&sid={sid}"));
    let post = |body: Vec<u8>| {
        let url = url.clone();
        async move {
            let sent = awc::Client::new().post(url).send_body(body);
            let res = common::within(common::WAIT_TIMEOUT, "the POST's answer", sent).await;
            res.expect("POST").status().as_u16()
        }
    };
    assert_eq!(post(br#"40{"t":"\ud83d"}"#.to_vec()).await, 200);
    // Raw bytes that are not UTF-8 (a surrogate encoded as if it were a code point): Node's
    // `Buffer.toString()` reads each bad byte as U+FFFD.
    let mut body = br#"42["message","\udc00","#.to_vec();
    body.extend_from_slice(b"\"\xed\xa0\xbd\"]");
    assert_eq!(post(body).await, 200);
    let path = format!("{PATH}?EIO=4&transport=polling&sid={sid}");
    let mut payload = String::new();
    for _ in 0..10 {
        let (status, body, _) = hub.http("GET", &path, "").await;
        assert_eq!(status, 200, "{body}");
        if body.split('\x1e').any(|packet| packet == "2") {
            assert_eq!(post(b"3".to_vec()).await, 200);
        }
        payload.push_str(&body);
        payload.push('\x1e');
        if payload.contains("message-back") {
            break;
        }
    }
    assert!(
        payload.contains("42[\"auth\",{\"t\":\"\u{fffd}\"}]"),
        "{payload}"
    );
    assert!(
        payload.contains("42[\"message-back\",\"\u{fffd}\",\"\u{fffd}\u{fffd}\u{fffd}\"]"),
        "{payload}"
    );
}

#[actix_web::test]
async fn a_notify_post_with_a_lone_surrogate_is_published_with_the_replacement_character() {
    let hub = start_hub(test_config());
    let mut joined = hub.joined().await;
    let (status, answer) = hub
        .notify(r#"{"title":"cut \ud83d","body":"\ude00 \ud83d\ude00"}"#)
        .await;
    assert_eq!(status, 201, "{answer}");
    let frame = joined.client.recv_text_answering_pings().await;
    let args = event_args(&frame).unwrap();
    assert_eq!(args[1]["title"], "cut \u{fffd}");
    assert_eq!(args[1]["body"], "\u{fffd} 😀");
    assert_eq!(args[2], answer["offset"]);
}

/// Sends `header` then `attachments` binary frames on a joined notification client, and checks the
/// hub closes the connection as Node does on a parse error (a bare close frame), acknowledges
/// nothing, and publishes nothing: another client's next notification is the one published after.
async fn refused_like_node(header: &str, attachments: usize) {
    let hub = start_hub(test_config());
    let mut watcher = hub.joined().await;
    let mut offender = hub.joined().await;
    offender.client.send(header).await;
    for n in 0..attachments {
        offender.client.send_binary(vec![n as u8; 3]).await;
    }
    assert_eq!(
        offender.client.expect_closed().await,
        Received::Close(None),
        "{header} with {attachments} attachments"
    );
    let offset = hub.publish("after").await;
    let frame = watcher.client.recv_text_answering_pings().await;
    let args = event_args(&frame).unwrap();
    assert_eq!(
        (&args[1]["title"], &args[2]),
        (&json!("after"), &json!(offset)),
        "nothing was published for {header}"
    );
}

#[actix_web::test]
async fn a_placeholder_beyond_the_attachments_closes_the_connection_and_publishes_nothing() {
    refused_like_node(r#"451-["notify",{"_placeholder":true,"num":5}]"#, 1).await;
}

#[actix_web::test]
async fn placeholders_that_name_no_attachment_close_the_connection_as_node_does() {
    for (header, attachments) in [
        (r#"451-["notify",{"_placeholder":true,"num":1}]"#, 1),
        (r#"451-["notify",{"_placeholder":true,"num":-1}]"#, 1),
        (r#"451-["notify",{"_placeholder":true,"num":0.5}]"#, 1),
        (r#"451-["notify",{"_placeholder":true,"num":"0"}]"#, 1),
        (r#"451-["notify",{"_placeholder":true}]"#, 1),
        (
            r#"4521-["notify",{"a":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":2}]}]"#,
            2,
        ),
        // A binary packet announcing no attachment at all (socket.io-parser: `n < 1` is illegal).
        (r#"450-["notify",{"title":"none"}]"#, 0),
        // More than Node's maxAttachments (10), and a count no integer holds.
        (r#"4511-["notify",{"_placeholder":true,"num":0}]"#, 1),
        (
            r#"45999999999999999999999999-["notify",{"_placeholder":true,"num":0}]"#,
            1,
        ),
    ] {
        refused_like_node(header, attachments).await;
    }
}

#[actix_web::test]
async fn more_attachments_than_announced_close_the_connection_as_node_does() {
    // The first attachment completes the packet (Node handles it too); the extra frame arrives with
    // no packet waiting for it: "got binary data when not reconstructing a packet".
    let hub = start_suite_hub(false);
    let (mut ws, _) = suite_joined(&hub, "40").await;
    ws.send(r#"451-["other",{"_placeholder":true,"num":0}]"#)
        .await;
    ws.send_binary(vec![1]).await;
    ws.send_binary(vec![2]).await;
    assert_eq!(ws.expect_closed().await, Received::Close(None));
}

#[actix_web::test]
async fn placeholders_node_accepts_are_accepted() {
    let hub = start_suite_hub(false);
    let (mut ws, _) = suite_joined(&hub, "40").await;
    // Extra keys, a repeated num and an attachment no placeholder names: socket.io-parser accepts
    // all three; the application gets them as they came.
    let header =
        r#"452-["message",{"_placeholder":true,"num":1,"x":2},{"_placeholder":true,"num":1}]"#;
    ws.send(header).await;
    ws.send_binary(vec![1]).await;
    ws.send_binary(vec![2]).await;
    assert_eq!(
        ws.recv_text_answering_pings().await,
        r#"452-["message-back",{"_placeholder":true,"num":1,"x":2},{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(ws.recv().await, Received::Binary(vec![1]));
    assert_eq!(ws.recv().await, Received::Binary(vec![2]));
}

#[actix_web::test]
async fn a_polling_payload_with_a_placeholder_beyond_its_attachments_ends_the_session() {
    let hub = start_suite_hub(false);
    let sid = hub.polling_session(PATH).await;
    let url = format!("{PATH}?EIO=4&transport=polling&sid={sid}");
    assert_eq!(hub.http("POST", &url, "40").await.0, 200);
    let (status, _, _) = hub
        .http(
            "POST",
            &url,
            "451-[\"message\",{\"_placeholder\":true,\"num\":3}]\x1ebAQID",
        )
        .await;
    // Node answers the POST (its Engine.IO packets were fine), then closes the session.
    assert_eq!(status, 200);
    let (status, body, _) = hub.http("GET", &url, "").await;
    let closed = status == 400 || body.split('\x1e').any(|packet| packet == "1");
    assert!(closed, "the session ends: {status} {body}");
    let (status, body, _) = hub.http("GET", &url, "").await;
    assert_eq!(status, 400, "the session is gone: {body}");
}

#[actix_web::test]
async fn a_binary_title_or_body_in_notify_is_refused_as_binary_not_as_a_map() {
    // What `socket.emitWithAck("notify", { title: Buffer.from("hi") })` sends with the JSON parser
    // (the msgpack parser's bin values arrive as the same placeholders).
    let hub = start_hub(test_config());
    let mut joined = hub.joined().await;
    for (header, field) in [
        (
            r#"451-1["notify",{"title":{"_placeholder":true,"num":0}}]"#,
            "title",
        ),
        (
            r#"451-2["notify",{"title":"t","body":{"_placeholder":true,"num":0}}]"#,
            "body",
        ),
    ] {
        joined.client.send(header).await;
        joined.client.send_binary(vec![104, 105]).await;
        let id = &header[4..5];
        let frames = read_until(&mut joined.client, |frame| {
            frame.starts_with(&format!("43{id}"))
        })
        .await;
        let ack: Value = serde_json::from_str(&frames.last().unwrap()[3..]).unwrap();
        assert_eq!(
            ack,
            json!([{ "error": format!("title and body must be strings: {field} is binary data, not a string") }]),
        );
    }
    // The connection is kept and still served.
    let offset = hub.publish("still here").await;
    let frame = joined.client.recv_text_answering_pings().await;
    assert!(frame.ends_with(&format!(r#","{offset}"]"#)), "{frame}");
}
