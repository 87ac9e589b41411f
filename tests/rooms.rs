//! Rooms on the wire: the `join` / `leave` events and their acks, refusals that keep the socket,
//! targeted entries reaching exactly their recipients (once each, `except` honoured, a user's room,
//! a socket's sid room), and a resume that replays exactly the socket's own missed entries and puts
//! it back in its rooms. On the embedded log, targeted entries are appended through the StreamBridge
//! (`Publish` with a `Target`), the path every publish takes; on Redis (two instances sharing one
//! stream), a Node peer's adapter writes them, as `XADD` does here.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::Addr;
use common::redis_server::RedisServer;
use common::{
    event_args, redis_config, test_config, within, Received, TestHub, WsClient, WAIT_TIMEOUT,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use realtime_hub::actors::stream_bridge::{Publish, StreamBridge};
use realtime_hub::app::HubApp;
use realtime_hub::config::{Config, Secret};
use realtime_hub::protocol::target::{Namespace, Room, Target};
use realtime_hub::rooms::RoomPatterns;
use realtime_hub::token::TokenVerifier;
use serde_json::{json, Value};

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

/// A hub as `realtime_hub::start` builds it, and its StreamBridge, to append targeted entries.
fn start(config: &Config) -> (TestHub, Addr<StreamBridge>) {
    let _ = env_logger::builder().is_test(true).try_init();
    let security = &config.security;
    let tokens = TokenVerifier::from_settings(security)
        .unwrap()
        .map(Arc::new);
    let public = RoomPatterns::new(&security.public_rooms).unwrap();
    let (namespaces, api_keys) = (config.namespaces.clone(), !security.api_keys.is_empty());
    let slot = Arc::new(Mutex::new(None));
    let kept = slot.clone();
    let running = realtime_hub::start_with(config, move |bridge| {
        *kept.lock().unwrap() = Some(bridge.clone());
        let app = HubApp::new(bridge, namespaces).with_security(tokens, api_keys);
        Arc::new(app.with_public_rooms(public))
    })
    .expect("hub starts");
    let handle = running.server.handle();
    actix_web::rt::spawn(running.server);
    let hub = TestHub {
        addr: running.addr,
        handle,
        hub: running.sessions,
    };
    let bridge = slot.lock().unwrap().take().expect("the app was built");
    (hub, bridge)
}

/// A slow heartbeat: a test reads one socket at a time, and the others must not time out meanwhile.
fn open_config() -> Config {
    Config {
        ping_interval: Duration::from_secs(20),
        ping_timeout: Duration::from_secs(20),
        ..test_config()
    }
}

fn jwt_config(public_rooms: &[&str], max_rooms: usize) -> Config {
    let mut config = Config {
        max_rooms_per_socket: max_rooms,
        ..open_config()
    };
    config.security.jwt_secret = Some(Secret::from(SECRET));
    config.security.public_rooms = public_rooms.iter().map(|p| p.to_string()).collect();
    config
}

/// An HS256 token for `sub` with a `rooms` claim.
fn token(sub: &str, rooms: &[&str]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({ "sub": sub, "exp": now + 600, "rooms": rooms });
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

/// A socket joined to `/`.
struct Socket {
    client: WsClient,
    sid: String,
    pid: String,
    offset: String,
    next_ack: u64,
}

/// Joins `/` with `auth`, reading the CONNECT reply and the offset event.
async fn join(hub: &TestHub, auth: Value) -> Socket {
    let (mut client, _) = hub.eio().await;
    client.send(&format!("40{auth}")).await;
    let reply = client.recv_text_answering_pings().await;
    let ids: Value = serde_json::from_str(
        reply
            .strip_prefix("40")
            .unwrap_or_else(|| panic!("expected a CONNECT reply, got {reply}")),
    )
    .unwrap();
    let offset_event = client.recv_text_answering_pings().await;
    let offset = event_args(&offset_event).unwrap()[1]
        .as_str()
        .unwrap()
        .to_owned();
    let id = |key: &str| ids[key].as_str().unwrap().to_owned();
    Socket {
        client,
        sid: id("sid"),
        pid: id("pid"),
        offset,
        next_ack: 1,
    }
}

impl Socket {
    /// Emits `[event, arg]` asking for an ack; the ack's argument.
    async fn ask(&mut self, event: &str, arg: Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        self.client
            .send(&format!("42{id}{}", json!([event, arg])))
            .await;
        let text = self.client.recv_text_answering_pings().await;
        let body = text
            .strip_prefix(&format!("43{id}"))
            .unwrap_or_else(|| panic!("expected ack {id}, got {text}"));
        serde_json::from_str::<Value>(body).unwrap()[0].clone()
    }

    async fn join_room(&mut self, room: &str) -> Value {
        self.ask("join", json!(room)).await
    }

    /// The `n` of the next notification (`42["n",<n>,"<offset>"]`), answering pings.
    async fn next(&mut self) -> u64 {
        let text = self.client.recv_text_answering_pings().await;
        let args = event_args(&text).unwrap_or_else(|| panic!("an event, got {text}"));
        args[1]
            .as_u64()
            .unwrap_or_else(|| panic!("a notification, got {text}"))
    }

    /// Nothing but pings (answered) for a while: nothing was delivered to it.
    async fn silent(&mut self) {
        let until = std::time::Instant::now() + Duration::from_millis(300);
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            match self.client.recv_within(left).await {
                None => return,
                Some(Received::Text(text)) if text == "2" => self.client.send("3").await,
                Some(other) => panic!("expected nothing, got {other:?}"),
            }
        }
    }
}

fn rooms(names: &[&str]) -> Vec<Room> {
    names.iter().map(|name| Room::from(*name)).collect()
}

/// Appends `["n",n]` for `to` minus `except` on `/`; its offset.
async fn publish(bridge: &Addr<StreamBridge>, to: &[&str], except: &[&str], n: u64) -> String {
    let target = Target {
        nsp: Namespace::main(),
        rooms: rooms(to),
        except: rooms(except),
    };
    let args = Arc::from(format!("[\"n\",{n}]"));
    let appended = bridge.send(Publish {
        target,
        args,
        source: realtime_hub::notification::Source::Http,
    });
    within(WAIT_TIMEOUT, "the append", appended)
        .await
        .unwrap()
        .unwrap()
        .to_string()
}

#[actix_web::test]
async fn join_and_leave_are_acknowledged_and_room_entries_follow_membership() {
    let (hub, bridge) = start(&open_config());
    let (mut a, mut b) = (join(&hub, json!({})).await, join(&hub, json!({})).await);
    assert_eq!(a.join_room("ops").await, json!({ "ok": true }));
    assert_eq!(
        a.join_room("ops").await,
        json!({ "ok": true }),
        "twice: still ok"
    );
    publish(&bridge, &["ops"], &[], 1).await;
    assert_eq!(a.next().await, 1);
    b.silent().await;
    assert_eq!(a.ask("leave", json!("ops")).await, json!({ "ok": true }));
    assert_eq!(
        a.ask("leave", json!("ops")).await,
        json!({ "ok": true }),
        "not in it: ok"
    );
    publish(&bridge, &["ops"], &[], 2).await;
    publish(&bridge, &[], &[], 3).await;
    assert_eq!(a.next().await, 3, "left ops; the broadcast still comes");
    assert_eq!(b.next().await, 3);
    // Without an ack asked: joined all the same.
    a.client.send(r#"42["join","dev"]"#).await;
    // An acked event after it: the session handles a connection's events in order, so once this
    // ack is back the unacked join has reached the Hub (without it the publish could overtake it).
    assert_eq!(
        a.ask("leave", json!("elsewhere")).await,
        json!({ "ok": true })
    );
    publish(&bridge, &["dev"], &[], 4).await;
    assert_eq!(a.next().await, 4);
}

#[actix_web::test]
async fn refused_joins_ack_an_error_keep_the_socket_and_are_counted() {
    let (hub, bridge) = start(&jwt_config(&["news"], 2));
    let mut alice = join(&hub, json!({ "token": token("alice", &["team-*"]) })).await;
    let own_sid = alice.sid.clone();
    let refusals = [
        (json!("ops"), "forbidden"),
        (json!("user:bob"), "reserved room"),
        (json!("user:alice"), "reserved room"),
        (json!("AbCdEfGhIjKlMnOpQrSt"), "reserved room"),
        (json!(own_sid), "reserved room"),
        (json!("a".repeat(129)), "invalid room name"),
        (json!(""), "invalid room name"),
        (json!("a b"), "invalid room name"),
        (json!(42), "invalid room name"),
        (Value::Null, "invalid room name"),
    ];
    for (room, error) in &refusals {
        assert_eq!(
            alice.ask("join", room.clone()).await,
            json!({ "error": error }),
            "join {room}"
        );
    }
    assert_eq!(
        alice.join_room(&"a".repeat(128)).await,
        json!({ "error": "forbidden" })
    );
    assert_eq!(
        alice.join_room("team-a").await,
        json!({ "ok": true }),
        "the claim"
    );
    assert_eq!(
        alice.join_room("news").await,
        json!({ "ok": true }),
        "public"
    );
    assert_eq!(
        alice.join_room("team-b").await,
        json!({ "error": "too many rooms" }),
        "HUB_MAX_ROOMS_PER_SOCKET 2 (its sid and user rooms not counted)"
    );
    for own in [own_sid.as_str(), "user:alice"] {
        let answer = alice.ask("leave", json!(own)).await;
        assert_eq!(answer, json!({ "error": "reserved room" }), "leave {own}");
    }
    // Still connected, and in its rooms: its own and those it joined.
    publish(&bridge, &["team-a"], &[], 1).await;
    publish(&bridge, &["user:alice"], &[], 2).await;
    publish(&bridge, &[&own_sid], &[], 3).await;
    publish(&bridge, &["ops"], &[], 4).await;
    publish(&bridge, &[], &[], 5).await;
    for n in [1, 2, 3, 5] {
        assert_eq!(alice.next().await, n);
    }
    let metric = |reason: &str| format!("hub_room_events_refused_total{{reason=\"{reason}\"}}");
    assert_eq!(hub.metric(&metric("forbidden")).await, 2);
    assert_eq!(hub.metric(&metric("reserved")).await, 6);
    assert_eq!(hub.metric(&metric("invalid")).await, 5);
    assert_eq!(hub.metric(&metric("too_many")).await, 1);
    // Another socket is served meanwhile.
    let mut bob = join(&hub, json!({ "token": token("bob", &[]) })).await;
    assert_eq!(bob.join_room("news").await, json!({ "ok": true }));
    assert_eq!(
        bob.join_room("team-a").await,
        json!({ "error": "forbidden" })
    );
}

#[actix_web::test]
async fn targeted_entries_reach_each_recipient_once_minus_except() {
    let (hub, bridge) = start(&open_config());
    let mut a = join(&hub, json!({})).await;
    let mut b = join(&hub, json!({})).await;
    let mut c = join(&hub, json!({})).await;
    for room in ["ops", "dev"] {
        assert_eq!(a.join_room(room).await, json!({ "ok": true }));
    }
    for room in ["dev", "muted"] {
        assert_eq!(b.join_room(room).await, json!({ "ok": true }));
    }
    publish(&bridge, &["ops", "dev"], &[], 1).await;
    publish(&bridge, &["dev"], &["muted"], 2).await;
    publish(&bridge, &[], &["muted"], 3).await;
    publish(&bridge, &[&c.sid], &[], 4).await;
    publish(&bridge, &[], &[], 5).await;
    for (socket, expected) in [
        (&mut a, vec![1, 2, 3, 5]),
        (&mut b, vec![1, 5]),
        (&mut c, vec![3, 4, 5]),
    ] {
        let mut got = Vec::new();
        for _ in 0..expected.len() {
            got.push(socket.next().await);
        }
        assert_eq!(got, expected, "each once, in log order");
        socket.silent().await;
    }
}

#[actix_web::test]
async fn a_users_room_reaches_every_socket_of_that_user_and_no_other() {
    let (hub, bridge) = start(&jwt_config(&[], 100));
    let mut alice1 = join(&hub, json!({ "token": token("alice", &[]) })).await;
    let mut alice2 = join(&hub, json!({ "token": token("alice", &[]) })).await;
    let mut bob = join(&hub, json!({ "token": token("bob", &[]) })).await;
    publish(&bridge, &["user:alice"], &[], 1).await;
    publish(&bridge, &[], &["user:alice"], 2).await;
    assert_eq!(alice1.next().await, 1);
    assert_eq!(alice2.next().await, 1);
    assert_eq!(bob.next().await, 2);
    alice1.silent().await;
    alice2.silent().await;
    bob.silent().await;
}

#[actix_web::test]
async fn a_resumed_socket_gets_exactly_its_own_missed_entries_and_is_back_in_its_rooms() {
    let (hub, bridge) = start(&jwt_config(&["ops", "sales"], 100));
    let auth = |extra: Value| {
        let mut auth = json!({ "token": token("alice", &[]) });
        if let (Some(auth), Some(extra)) = (auth.as_object_mut(), extra.as_object()) {
            auth.extend(extra.clone());
        }
        auth
    };
    let mut alice = join(&hub, auth(json!({}))).await;
    assert_eq!(alice.join_room("ops").await, json!({ "ok": true }));
    let mut bob = join(&hub, json!({ "token": token("bob", &[]) })).await;
    assert_eq!(bob.join_room("sales").await, json!({ "ok": true }));
    alice.client.close().await;
    let sid = alice.sid.clone();
    let mut mine = Vec::new();
    for (n, to, except, for_alice) in [
        (1, vec!["ops"], vec![], true),
        (2, vec!["user:bob"], vec![], false),
        (3, vec!["user:alice"], vec![], true),
        (4, vec!["sales"], vec![], false),
        (5, vec![], vec![], true),
        (6, vec![sid.as_str()], vec![], true),
        (7, vec![], vec!["ops"], false),
        (8, vec!["ops", "user:alice", sid.as_str()], vec![], true),
        (9, vec![], vec!["sales"], true),
    ] {
        let offset = publish(&bridge, &to, &except, n).await;
        if for_alice {
            mine.push((n, offset));
        }
    }
    let (mut client, _) = hub.eio().await;
    let resume = auth(json!({ "pid": alice.pid, "offset": alice.offset }));
    client.send(&format!("40{resume}")).await;
    for (n, offset) in &mine {
        let text = client.recv_text_answering_pings().await;
        let args = event_args(&text).unwrap_or_else(|| panic!("a replayed event, got {text}"));
        assert_eq!(
            (args[1].as_u64(), args[2].as_str()),
            (Some(*n), Some(offset.as_str()))
        );
    }
    assert_eq!(
        client.recv_connect().await,
        (alice.sid.clone(), alice.pid.clone())
    );
    let mut alice = Socket {
        client,
        next_ack: 1,
        ..alice
    };
    // Back in its rooms: its joined room, its user room, its sid room.
    publish(&bridge, &["ops"], &[], 10).await;
    publish(&bridge, &["user:alice"], &[], 11).await;
    publish(&bridge, &[&sid], &[], 12).await;
    for n in [10, 11, 12] {
        assert_eq!(alice.next().await, n);
    }
    // Bob meanwhile: his user room, his room, the broadcast, and everyone but ops.
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(bob.next().await);
    }
    assert_eq!(got, [2, 4, 5, 7]);
    bob.silent().await;
}

/// A room joined under a token's `rooms` claim is not kept by a resume whose token no longer
/// allows it (access revoked, the client reconnecting with its new token): not replayed, not
/// delivered live, not in the record; the rooms it still may be in are kept.
#[actix_web::test]
async fn a_resume_keeps_only_the_joined_rooms_the_new_token_still_allows() {
    let (hub, bridge) = start(&jwt_config(&["news"], 100));
    let mut alice = join(
        &hub,
        json!({ "token": token("alice", &["secret", "team"]) }),
    )
    .await;
    for room in ["secret", "team", "news"] {
        assert_eq!(alice.join_room(room).await, json!({ "ok": true }), "{room}");
    }
    alice.client.close().await;
    let mut mine = Vec::new();
    for (n, to, for_alice) in [
        (1, "secret", false),
        (2, "team", true),
        (3, "news", true),
        (4, "user:alice", true),
    ] {
        let offset = publish(&bridge, &[to], &[], n).await;
        if for_alice {
            mine.push((n, offset));
        }
    }
    // Her new token allows `team` only (`news` is public): `secret` was revoked.
    let (mut client, _) = hub.eio().await;
    let resume = json!({
        "token": token("alice", &["team"]),
        "pid": alice.pid,
        "offset": alice.offset,
    });
    client.send(&format!("40{resume}")).await;
    for (n, offset) in &mine {
        let text = client.recv_text_answering_pings().await;
        let args = event_args(&text).unwrap_or_else(|| panic!("a replayed event, got {text}"));
        assert_eq!(
            (args[1].as_u64(), args[2].as_str()),
            (Some(*n), Some(offset.as_str()))
        );
    }
    assert_eq!(
        client.recv_connect().await,
        (alice.sid.clone(), alice.pid.clone())
    );
    let mut alice = Socket {
        client,
        next_ack: 1,
        ..alice
    };
    for (n, to) in [(5, "secret"), (6, "team"), (7, "news"), (8, "secret")] {
        publish(&bridge, &[to], &[], n).await;
    }
    assert_eq!(alice.next().await, 6);
    assert_eq!(alice.next().await, 7);
    alice.silent().await;
    // Out of it for good: a join asks the new token, and the record (her next resume) lost it too.
    assert_eq!(
        alice.join_room("secret").await,
        json!({ "error": "forbidden" })
    );
    alice.client.close().await;
    publish(&bridge, &["secret"], &[], 9).await;
    let last = publish(&bridge, &["team"], &[], 10).await;
    let (mut client, _) = hub.eio().await;
    let resume = json!({
        "token": token("alice", &["secret", "team"]),
        "pid": alice.pid,
        "offset": alice.offset,
    });
    client.send(&format!("40{resume}")).await;
    let mut replayed = Vec::new();
    loop {
        let text = client.recv_text_answering_pings().await;
        if text.starts_with("40") {
            break;
        }
        let args = event_args(&text).unwrap_or_else(|| panic!("a replayed event, got {text}"));
        replayed.push(args[1].as_u64().unwrap());
        if args[2].as_str() == Some(last.as_str()) {
            assert!(client.recv_text_answering_pings().await.starts_with("40"));
            break;
        }
    }
    assert!(
        !replayed.contains(&9),
        "secret left the record: {replayed:?}"
    );
    assert!(
        !replayed.contains(&1) && !replayed.contains(&5),
        "{replayed:?}"
    );
}

/// Two instances on one Redis stream, JWT with `ops` public.
async fn redis_pair(redis: &RedisServer, key: &str) -> (TestHub, TestHub) {
    let config = || {
        let mut config = jwt_config(&["ops"], 100);
        let on_redis = redis_config(&redis.url(), key);
        config.redis_url = on_redis.redis_url;
        config.stream_key = on_redis.stream_key;
        config
    };
    let (a, _) = start(&config());
    let (b, _) = start(&config());
    a.wait_ready().await;
    b.wait_ready().await;
    (a, b)
}

/// Appends `["n",n]` to `to` minus `except` on `/` as a Node peer's adapter writes it; its id.
fn node_publish(redis: &RedisServer, key: &str, to: &[&str], except: &[&str], n: u64) -> String {
    let data = json!({
        "packet": { "type": 2, "data": ["n", n] },
        "opts": { "rooms": to, "except": except, "flags": {} },
    });
    let data = data.to_string();
    let args = [
        "XADD",
        key,
        "*",
        "uid",
        "node-peer",
        "nsp",
        "/",
        "type",
        "3",
        "data",
        &data,
    ];
    let answer = redis.command(&args);
    // A bulk string: `$<len>\r\n<id>\r\n`.
    answer
        .lines()
        .nth(1)
        .expect("an entry id")
        .trim()
        .to_owned()
}

#[actix_web::test]
async fn redis_two_instances_deliver_a_users_room_to_all_of_its_sockets_once_and_to_no_other() {
    let redis = RedisServer::start();
    let key = "test:rooms:user";
    let (a, b) = redis_pair(&redis, key).await;
    let mut alice_a = join(&a, json!({ "token": token("alice", &[]) })).await;
    let mut alice_b = join(&b, json!({ "token": token("alice", &[]) })).await;
    let mut bob = join(&a, json!({ "token": token("bob", &[]) })).await;
    for socket in [&mut alice_a, &mut bob] {
        assert_eq!(socket.join_room("ops").await, json!({ "ok": true }));
    }
    node_publish(&redis, key, &["user:alice"], &[], 1);
    node_publish(&redis, key, &["ops", "user:alice"], &[], 2);
    node_publish(&redis, key, &["ops"], &["user:bob"], 3);
    node_publish(&redis, key, &[&alice_b.sid], &[], 4);
    node_publish(&redis, key, &[], &["ops"], 5);
    for (socket, expected) in [
        (&mut alice_a, vec![1, 2, 3]),
        (&mut alice_b, vec![1, 2, 4, 5]),
        (&mut bob, vec![2]),
    ] {
        let mut got = Vec::new();
        for _ in 0..expected.len() {
            got.push(socket.next().await);
        }
        assert_eq!(got, expected, "each once, in log order");
        socket.silent().await;
    }
}

#[actix_web::test]
async fn redis_a_socket_resumed_on_the_other_instance_gets_exactly_its_own_and_keeps_its_rooms() {
    let redis = RedisServer::start();
    let key = "test:rooms:resume";
    let (a, b) = redis_pair(&redis, key).await;
    let alice_token = token("alice", &[]);
    let mut alice = join(&a, json!({ "token": alice_token })).await;
    assert_eq!(alice.join_room("ops").await, json!({ "ok": true }));
    let mut bob = join(&b, json!({ "token": token("bob", &[]) })).await;
    alice.client.close().await;
    let sid = alice.sid.clone();
    let mut mine = Vec::new();
    for (n, to, except, for_alice) in [
        (1, vec!["ops"], vec![], true),
        (2, vec!["user:bob"], vec![], false),
        (3, vec!["user:alice"], vec![], true),
        (4, vec!["sales"], vec![], false),
        (5, vec![sid.as_str()], vec![], true),
        (6, vec![], vec!["ops"], false),
        (7, vec!["ops", "user:alice"], vec![], true),
    ] {
        let id = node_publish(&redis, key, &to, &except, n);
        if for_alice {
            mine.push((n, id));
        }
    }
    let (mut client, _) = b.eio().await;
    let resume = json!({ "token": alice_token, "pid": alice.pid, "offset": alice.offset });
    client.send(&format!("40{resume}")).await;
    for (n, id) in &mine {
        let text = client.recv_text_answering_pings().await;
        let args = event_args(&text).unwrap_or_else(|| panic!("a replayed event, got {text}"));
        assert_eq!(
            (args[1].as_u64(), args[2].as_str()),
            (Some(*n), Some(id.as_str()))
        );
    }
    assert_eq!(
        client.recv_connect().await,
        (alice.sid.clone(), alice.pid.clone())
    );
    let mut alice = Socket {
        client,
        next_ack: 1,
        ..alice
    };
    node_publish(&redis, key, &["ops"], &[], 8);
    assert_eq!(alice.next().await, 8, "back in ops, on the other instance");
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(bob.next().await);
    }
    assert_eq!(got, [2, 6]);
    bob.silent().await;
}
