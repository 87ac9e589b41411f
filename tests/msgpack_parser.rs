//! HUB_PARSER=msgpack on the wire, byte level: every Socket.IO packet one Engine.IO binary message
//! (a WebSocket binary frame, `b<base64>` in a polling payload), the map `{type, data, nsp, id?}` of
//! socket.io-msgpack-parser. What a client sends that is not such a packet closes it as a bad JSON
//! packet does (a bare close: Node's "parse error"), and other clients keep being served.

mod common;

use std::time::Duration;

use common::{start_hub, test_config, Received, TestHub, WsClient};
use realtime_hub::config::{Config, Parser};
use realtime_hub::protocol::{base64, msgpack};
use serde_json::{json, Value};

fn config() -> Config {
    Config {
        parser: Parser::Msgpack,
        // The heartbeat stays out of the way of a test's reads over polling.
        ping_interval: Duration::from_secs(20),
        ping_timeout: Duration::from_secs(20),
        ..test_config()
    }
}

fn packed(value: Value) -> Vec<u8> {
    msgpack::encode(&value)
}

/// The next binary message, as JSON, Engine.IO pings answered.
async fn recv_packet(client: &mut WsClient) -> Value {
    loop {
        match client.recv().await {
            Received::Binary(bytes) => return msgpack::decode(&bytes).unwrap(),
            Received::Text(text) if text == "2" => client.send("3").await,
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
}

/// A WebSocket client joined to `/`: its CONNECT reply and offset event read.
async fn joined(hub: &TestHub) -> (WsClient, Value) {
    let (mut client, _) = hub.eio().await;
    client
        .send_binary(packed(
            json!({"type": 0, "nsp": "/", "data": {"token": "t"}}),
        ))
        .await;
    let reply = recv_packet(&mut client).await;
    assert_eq!((&reply["type"], &reply["nsp"]), (&json!(0), &json!("/")));
    assert!(reply["data"]["sid"].is_string() && reply["data"]["pid"].is_string());
    let offset = recv_packet(&mut client).await;
    assert_eq!(offset["data"][0], "hub:offset", "{offset}");
    (client, reply)
}

#[actix_web::test]
async fn a_msgpack_socket_joins_receives_notifications_and_gets_its_notify_ack_as_binary_messages()
{
    let hub = start_hub(config());
    let (mut client, _) = joined(&hub).await;

    let offset = hub.publish("hello").await;
    let event = recv_packet(&mut client).await;
    assert_eq!(event["type"], 2);
    assert_eq!(event["nsp"], "/");
    assert_eq!(event["data"][0], "notification");
    assert_eq!(event["data"][1]["title"], "hello");
    assert_eq!(
        event["data"][2],
        json!(offset),
        "the offset is the last argument"
    );

    // notepack's own shape: `options` beside the packet, ignored.
    let notify = json!({"type": 2, "nsp": "/", "id": 7, "data": ["notify", {"title": "mine"}],
                        "options": {"compress": true}});
    client.send_binary(packed(notify)).await;
    let mut ack = None;
    for _ in 0..2 {
        let packet = recv_packet(&mut client).await;
        if packet["type"] == 3 {
            ack = Some(packet);
        }
    }
    let ack = ack.expect("an ACK among the next two packets");
    assert_eq!((&ack["id"], &ack["nsp"]), (&json!(7), &json!("/")));
    assert!(ack["data"][0]["offset"].is_string(), "{ack}");
}

#[actix_web::test]
async fn a_msgpack_socket_over_polling_exchanges_base64_binary_packets() {
    let hub = start_hub(config());
    let sid = hub.polling_session("/socket.io/").await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let connect = packed(json!({"type": 0, "nsp": "/"}));
    let (status, body, _) = hub
        .http("POST", &path, &format!("b{}", base64::encode(&connect)))
        .await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (_, payload, _) = hub.http("GET", &path, "").await;
    let packets: Vec<Value> = payload
        .split('\u{1e}')
        .map(|item| {
            let bytes = base64::decode(item.strip_prefix('b').expect("b<base64>")).unwrap();
            msgpack::decode(&bytes).unwrap()
        })
        .collect();
    assert_eq!(packets[0]["type"], 0, "{payload}");
    assert!(packets[0]["data"]["sid"].is_string());
    assert_eq!(packets[1]["data"][0], "hub:offset");
}

#[actix_web::test]
async fn a_msgpack_client_is_closed_at_its_connect_by_a_json_hub() {
    let hub = start_hub(test_config());
    let (mut client, _) = hub.eio().await;
    client
        .send_binary(packed(json!({"type": 0, "nsp": "/"})))
        .await;
    assert_eq!(client.expect_closed().await, Received::Close(None));
}

/// Sends `message` on a joined msgpack socket: the hub closes it with a bare close (parse error),
/// and a second socket still gets the next notification.
async fn closed_like_a_bad_json_packet(message: Result<Vec<u8>, &str>, what: &str) {
    let hub = start_hub(config());
    let (mut watcher, _) = joined(&hub).await;
    let (mut offender, _) = joined(&hub).await;
    match message {
        Ok(bytes) => offender.send_binary(bytes).await,
        Err(text) => offender.send(text).await,
    }
    assert_eq!(
        offender.expect_closed().await,
        Received::Close(None),
        "{what}"
    );
    let offset = hub.publish("after").await;
    let event = recv_packet(&mut watcher).await;
    assert_eq!(
        (&event["data"][1]["title"], &event["data"][2]),
        (&json!("after"), &json!(offset)),
        "the other socket is served after {what}"
    );
}

#[actix_web::test]
async fn bad_msgpack_closes_only_that_connection_as_a_bad_json_packet_does() {
    let cases: Vec<(Result<Vec<u8>, &str>, &str)> = vec![
        (Ok(vec![0xc1]), "a reserved msgpack byte"),
        (Ok(vec![0x83, 0xa4, b't']), "truncated msgpack"),
        (
            Ok(vec![0xc6, 0xff, 0xff, 0xff, 0xff]),
            "a bin announcing 4 GiB",
        ),
        (Ok(vec![0x91; 200]), "nesting deeper than the limit"),
        (Ok(packed(json!(["not", "a", "map"]))), "not a map"),
        (
            Ok(packed(json!({"type": 5, "nsp": "/", "data": ["a"]}))),
            "a BINARY_EVENT type",
        ),
        (Ok(packed(json!({"type": 2, "data": ["a"]}))), "no nsp"),
        (
            Ok(packed(json!({"type": 2, "nsp": "/", "data": {"a": 1}}))),
            "an EVENT whose data is not an array",
        ),
        (
            Ok(packed(
                json!({"type": 2, "nsp": "/", "data": ["a"], "id": "x"}),
            )),
            "a string ack id",
        ),
        (
            Ok(packed(json!({"type": 4, "nsp": "/", "data": {}}))),
            "a CONNECT_ERROR from a client",
        ),
        (
            Err(r#"42["notify",{}]"#),
            "a text packet (the JSON parser's)",
        ),
    ];
    for (message, what) in cases {
        closed_like_a_bad_json_packet(message, what).await;
    }
}

#[actix_web::test]
async fn the_client_bundle_with_the_msgpack_parser_is_served_as_node_serves_it() {
    let hub = start_hub(config());
    let dist = Config::default().client_dir;
    for name in ["socket.io.msgpack.min.js", "socket.io.msgpack.min.js.map"] {
        let (status, body, _) = hub.http("GET", &format!("/socket.io/{name}"), "").await;
        assert_eq!(status, 200, "{name}");
        let file = std::fs::read_to_string(dist.join(name)).expect("the npm copy");
        assert!(body == file, "{name} is the npm copy's bytes");
    }
}
