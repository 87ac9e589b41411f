//! `POST /sockets/disconnect` and the cluster DISCONNECT_SOCKETS entry (socket.io-adapter's
//! `MessageType` 6): its refusals, the entry it writes on a real `redis-server` (XRANGE), and what a
//! hub does with such an entry, its own or a peer's: the matching sockets get `41` (and with `close`
//! their connection closes), the others keep receiving.

mod common;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{
    event_args, redis_config, start_hub, start_ready_hub, test_config, within, Joined, Received,
    TestHub, WAIT_TIMEOUT,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use realtime_hub::config::{Config, Secret};
use serde_json::{json, Value};

/// `POST /sockets/disconnect` with `body`, `content_type` and, if given, an API key.
async fn disconnect(
    hub: &TestHub,
    body: &str,
    content_type: &str,
    key: Option<&str>,
) -> (u16, Value) {
    let send = async {
        let mut req = awc::Client::new()
            .post(hub.url("/sockets/disconnect"))
            .insert_header(("content-type", content_type));
        if let Some(key) = key {
            req = req.insert_header(("x-api-key", key));
        }
        let mut res = req.send_body(body.to_owned()).await.expect("request");
        let bytes = res.body().limit(1 << 20).await.expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (res.status().as_u16(), json)
    };
    within(WAIT_TIMEOUT, "the answer to POST /sockets/disconnect", send).await
}

/// Redis tests wait on Redis: a heartbeat that never fires keeps them about disconnects.
fn config(redis: &RedisServer, key: &str) -> Config {
    Config {
        ping_interval: Duration::from_secs(60),
        ..redis_config(&redis.url(), key)
    }
}

/// Writes a DISCONNECT_SOCKETS entry as a Node peer's adapter does (another uid).
fn node_disconnect(redis: &RedisServer, stream: &str, rooms: &str, except: &str, close: bool) {
    let data =
        format!(r#"{{"opts":{{"rooms":{rooms},"except":{except},"flags":{{}}}},"close":{close}}}"#);
    let reply = redis.command(&[
        "XADD",
        stream,
        "*",
        "uid",
        "0123456789abcdef",
        "nsp",
        "/",
        "type",
        "6",
        "data",
        &data,
    ]);
    assert!(reply.starts_with('$'), "XADD answered {reply}");
}

/// The next frame that is not a ping is the server's DISCONNECT of `/`.
async fn expect_server_disconnect(joined: &mut Joined) {
    assert_eq!(joined.client.recv_text_answering_pings().await, "41");
}

/// A notification published now is the next thing `joined` receives: it is still connected.
async fn still_receives(hub: &TestHub, joined: &mut Joined, title: &str) {
    let offset = hub.publish(title).await;
    let frame = joined.client.recv_text_answering_pings().await;
    let args = event_args(&frame).unwrap_or_else(|| panic!("expected an event, got {frame}"));
    assert_eq!(
        (args[1]["title"].clone(), args[2].clone()),
        (json!(title), json!(offset))
    );
}

#[actix_web::test]
async fn disconnect_refuses_no_key_a_wrong_media_type_and_bad_bodies() {
    let mut config = test_config();
    config.security.api_keys = vec![Secret::from("k1")];
    let hub = start_hub(config);
    let (status, answer) = disconnect(&hub, r#"{"sid":"x"}"#, "application/json", None).await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = disconnect(&hub, r#"{"sid":"x"}"#, "application/json", Some("no")).await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = disconnect(&hub, r#"{"sid":"x"}"#, "text/plain", Some("k1")).await;
    assert_eq!(status, 415, "{answer}");
    for (body, why) in [
        ("{", "not valid JSON"),
        ("{}", "exactly one of sid (a socket id) or user (a sub)"),
        (r#"{"sid":"a","user":"b"}"#, "exactly one of sid"),
        (r#"{"sid":""}"#, "never empty"),
        (r#"{"user":"a\u0007"}"#, "control character"),
        (
            r#"{"sid":"vc9XSiRG08Y5X8yAAAAA","close":1}"#,
            "close must be a boolean",
        ),
        (r#"{"sid":"ops"}"#, "sid must be a socket id"),
    ] {
        let (status, answer) = disconnect(&hub, body, "application/json", Some("k1")).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(why), "{body}: {error}");
    }
    let (status, answer) = disconnect(
        &hub,
        r#"{"user":"alice","close":true}"#,
        "application/json",
        Some("k1"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer,
        json!({"requested": true, "rooms": ["user:alice"], "close": true})
    );
}

#[actix_web::test]
async fn disconnect_writes_the_adapters_disconnect_sockets_entry_and_a_socket_elsewhere_keeps_receiving(
) {
    let redis = RedisServer::start();
    let stream = "test:disconnect-entry";
    let hub = start_ready_hub(config(&redis, stream)).await;
    let mut bystander = hub.joined().await;
    let (status, answer) = disconnect(
        &hub,
        r#"{"sid":"vc9XSiRG08Y5X8yAAAAA"}"#,
        "application/json",
        None,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let (status, _) = disconnect(
        &hub,
        r#"{"user":"al\"ice","close":true}"#,
        "application/json",
        None,
    )
    .await;
    assert_eq!(status, 202);
    let raw = redis.command(&["XRANGE", stream, "-", "+"]);
    let fields: Vec<&str> = raw
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with(['$', '*']))
        .collect();
    // id, then uid <16 hex> nsp / type 6 data …, twice.
    assert_eq!(fields.len(), 2 * 9, "{raw}");
    for entry in fields.chunks(9) {
        assert_eq!(
            (entry[1], entry[3], entry[4], entry[5], entry[6], entry[7]),
            ("uid", "nsp", "/", "type", "6", "data"),
            "{raw}"
        );
        assert_eq!(entry[2].len(), 16, "the instance's uid: {raw}");
    }
    assert_eq!(
        fields[8],
        r#"{"opts":{"rooms":["vc9XSiRG08Y5X8yAAAAA"],"except":[],"flags":{}},"close":false}"#
    );
    assert_eq!(
        fields[17],
        r#"{"opts":{"rooms":["user:al\"ice"],"except":[],"flags":{}},"close":true}"#
    );
    // Its own requests reached this hub, whose socket is in neither room.
    still_receives(&hub, &mut bystander, "after").await;
    assert_eq!(hub.metric("hub_server_disconnects_total").await, 0);
}

#[actix_web::test]
async fn a_peers_disconnect_sockets_entry_disconnects_the_matching_hub_sockets_on_every_instance() {
    let redis = RedisServer::start();
    let stream = "test:disconnect-peer";
    let (one, two) = (
        start_ready_hub(config(&redis, stream)).await,
        start_ready_hub(config(&redis, stream)).await,
    );
    let mut on_one = one.joined().await;
    let mut on_two = two.joined().await;
    // A room nobody is in: nobody goes, and the entry is not taken for a broadcast.
    node_disconnect(&redis, stream, r#"["nobody"]"#, "[]", false);
    still_receives(&one, &mut on_one, "kept").await;
    let frame = on_two.client.recv_text_answering_pings().await;
    assert!(frame.contains("kept"), "{frame}");
    // `io.disconnectSockets()` on a Node peer: every socket of `/`, on both hubs, the connection
    // kept (the client closes it when it has no namespace left).
    node_disconnect(&redis, stream, "[]", "[]", false);
    expect_server_disconnect(&mut on_one).await;
    expect_server_disconnect(&mut on_two).await;
    assert_eq!(one.metric("hub_server_disconnects_total").await, 1);
    // The socket left: its session can still join again on the same connection.
    on_one.client.send("40").await;
    let (_, _) = on_one.client.recv_connect().await;

    // `disconnectSockets(true)`: the DISCONNECT, then the connection closes; not resumable.
    let mut fresh = two.joined().await;
    node_disconnect(&redis, stream, "[]", "[]", true);
    expect_server_disconnect(&mut fresh).await;
    assert!(!matches!(
        fresh.client.expect_closed().await,
        Received::Text(_)
    ));
    let mut resumed = two.send_resume(&fresh.pid, &fresh.offset).await;
    let (_, pid) = resumed.recv_connect().await;
    assert_ne!(pid, fresh.pid, "a server-side disconnect is not resumable");
}

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

/// An HS256 token for `sub`, valid for an hour.
fn token(sub: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = json!({ "sub": sub, "exp": exp, "scope": "notify" });
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

/// A socket of `sub` joined to `/` on `hub`.
async fn joined_as(hub: &TestHub, sub: &str) -> Joined {
    let (mut client, _) = hub.eio().await;
    client
        .send(&format!("40{}", json!({ "token": token(sub) })))
        .await;
    let (sid, pid) = client.recv_connect().await;
    let offset_event = client.recv_text().await;
    let offset = event_args(&offset_event).unwrap()[1]
        .as_str()
        .unwrap()
        .to_owned();
    Joined {
        client,
        sid,
        pid,
        offset,
    }
}

#[actix_web::test]
async fn disconnect_by_sid_and_by_user_reaches_those_sockets_on_both_instances_only() {
    let redis = RedisServer::start();
    let stream = "test:disconnect-rooms";
    let jwt = |mut config: Config| {
        config.security.jwt_secret = Some(Secret::from(SECRET));
        config
    };
    let one = start_ready_hub(jwt(config(&redis, stream))).await;
    let two = start_ready_hub(jwt(config(&redis, stream))).await;
    let mut alice_one = joined_as(&one, "alice").await;
    let mut alice_two = joined_as(&two, "alice").await;
    let mut bob = joined_as(&two, "bob").await;
    let mut alice_three = joined_as(&one, "alice").await;

    let by_sid = json!({ "sid": alice_three.sid }).to_string();
    assert_eq!(
        disconnect(&one, &by_sid, "application/json", None).await.0,
        202
    );
    expect_server_disconnect(&mut alice_three).await;

    let (status, _) = disconnect(&two, r#"{"user":"alice"}"#, "application/json", None).await;
    assert_eq!(status, 202);
    expect_server_disconnect(&mut alice_one).await;
    expect_server_disconnect(&mut alice_two).await;
    still_receives(&one, &mut bob, "bob stays").await;
}

/// A DISCONNECT_SOCKETS entry, then a broadcast, in one atomic append (read in one go): the socket
/// the request names gets its `41` (and with `close` its connection closes) and never the broadcast
/// that follows the request in the log (Node's adapter applies them in log order), also once the
/// socket is past its handover and the Hub writes its live frames to its WebSocket itself.
#[actix_web::test]
async fn a_socket_disconnected_by_a_request_never_gets_what_the_log_has_after_the_request() {
    let redis = RedisServer::start();
    let stream = "test:disconnect-order";
    let hub = start_ready_hub(config(&redis, stream)).await;
    let script = "redis.call('XADD', KEYS[1], '*', 'uid', '0123456789abcdef', 'nsp', '/', \
                  'type', '6', 'data', ARGV[1]) \
                  return redis.call('XADD', KEYS[1], '*', 'uid', '0123456789abcdef', 'nsp', '/', \
                  'type', '3', 'data', ARGV[2])";
    let after = json!({
        "packet": {"type": 2, "data": ["notification", {"title": "after the request"}], "nsp": "/"},
        "opts": {"rooms": [], "except": [], "flags": {}}
    })
    .to_string();
    // The Hub and the Session race for the socket: several rounds, so a wrong order shows.
    for round in 0..20 {
        let close = round % 2 == 1;
        let mut joined = hub.joined().await;
        // A live frame written: from here on the Hub may write this socket's frames itself.
        still_receives(&hub, &mut joined, &format!("warm {round}")).await;
        still_receives(&hub, &mut joined, &format!("direct {round}")).await;
        let request =
            format!(r#"{{"opts":{{"rooms":[],"except":[],"flags":{{}}}},"close":{close}}}"#);
        let reply = redis.command(&["EVAL", script, "1", stream, &request, &after]);
        assert!(reply.starts_with('$'), "EVAL answered {reply}");
        let frame = joined.client.recv_text_answering_pings().await;
        assert_eq!(
            frame, "41",
            "round {round} (close={close}): the DISCONNECT, not what follows the request"
        );
        if close {
            assert!(!matches!(
                joined.client.expect_closed().await,
                Received::Text(_)
            ));
        }
    }
}
