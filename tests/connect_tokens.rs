//! Connect tokens (JWT) on the wire: with `HUB_JWT_SECRET` and/or `HUB_JWT_PUBLIC_KEY_FILE`, a
//! CONNECT without a valid token gets `44<nsp>,{"message":"unauthorized"}` and nothing else (no
//! registration, no replay); a socket is closed as a dropped transport at its token's `exp` and
//! resumes with a fresh token; a session is resumed only by its user (embedded log and Redis); the
//! socket `notify` follows the token's `scope`; the `token` subcommand mints what the hub accepts.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::redis_server::RedisServer;
use common::{event_args, redis_config, start_ready_hub, test_config, within, Received, TestHub};
use common::{WsClient, WAIT_TIMEOUT};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use realtime_hub::config::{Config, Secret};
use serde_json::{json, Value};

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";
const UNAUTHORIZED: &str = r#"44{"message":"unauthorized"}"#;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A slow heartbeat (tests wait seconds for an expiry) and JWT with [`SECRET`].
fn jwt_config(base: Config) -> Config {
    let mut config = Config {
        ping_interval: Duration::from_secs(20),
        ping_timeout: Duration::from_secs(20),
        ..base
    };
    config.security.jwt_secret = Some(Secret::from(SECRET));
    config
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

/// An HS256 token for `sub` valid `ttl` seconds, with `scope`.
fn token(sub: &str, ttl: u64, scope: &str) -> String {
    let claims = json!({ "sub": sub, "exp": now() + ttl, "scope": scope });
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        &claims,
    )
}

/// base64url without padding (RFC 7515 §2), for hand-made tokens.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// CONNECT `/` with `auth`; the first frame that is not a ping.
async fn connect(hub: &TestHub, auth: Value) -> (WsClient, String) {
    let (mut client, _) = hub.eio().await;
    client.send(&format!("40{auth}")).await;
    let reply = client.recv_text_answering_pings().await;
    (client, reply)
}

/// Joins `/` with `auth`: (client, sid, pid, offset from the offset event).
async fn join(hub: &TestHub, auth: Value) -> (WsClient, String, String, String) {
    let (mut client, reply) = connect(hub, auth).await;
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
    (client, id("sid"), id("pid"), offset)
}

/// Nothing but pings (answered) for `period`.
async fn expect_silence(client: &mut WsClient, period: Duration) {
    let until = std::time::Instant::now() + period;
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        match client.recv_within(left).await {
            None => return,
            Some(Received::Text(text)) if text == "2" => client.send("3").await,
            Some(other) => panic!("expected nothing, got {other:?}"),
        }
    }
}

#[actix_web::test]
async fn jwt_connect_without_a_token_is_refused_unauthorized_and_never_registered() {
    let hub = common::start_hub(jwt_config(test_config()));
    let (mut anonymous, reply) = connect(&hub, json!({})).await;
    assert_eq!(reply, UNAUTHORIZED, "exactly, no detail about why");
    assert_eq!(hub.sessions().await, 0, "the Hub never registered it");
    assert_eq!(hub.metric("hub_connects_refused_total").await, 1);
    // A broadcast does not reach it; a socket with a token gets it.
    let (mut member, ..) = join(&hub, json!({ "token": token("alice", 60, "") })).await;
    hub.publish("for members").await;
    let delivered = member.recv_text_answering_pings().await;
    assert!(delivered.contains("for members"), "{delivered}");
    expect_silence(&mut anonymous, Duration::from_millis(500)).await;
    // The connection stays open for a CONNECT with a token, as after a Node middleware's next(err).
    anonymous
        .send(&format!("40{}", json!({ "token": token("bob", 60, "") })))
        .await;
    anonymous.recv_connect().await;
    assert_eq!(hub.sessions().await, 2);
}

#[actix_web::test]
async fn jwt_tokens_that_are_not_valid_are_all_refused_alike() {
    let mut config = jwt_config(test_config());
    config.security.jwt_audience = Some("hub".into());
    config.security.jwt_issuer = Some("https://issuer.test".into());
    let hub = common::start_hub(config);
    let hs = |claims: Value| {
        sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
            &claims,
        )
    };
    let exp = now() + 60;
    let good = json!({ "sub": "alice", "exp": exp, "aud": "hub", "iss": "https://issuer.test" });
    let with = |key: &str, value: Value| {
        let mut claims = good.clone();
        claims[key] = value;
        claims
    };
    let without = |key: &str| {
        let mut claims = good.clone();
        claims.as_object_mut().unwrap().remove(key);
        claims
    };
    let payload = b64url(good.to_string().as_bytes());
    let tampered = {
        let signed = hs(good.clone());
        let parts: Vec<&str> = signed.split('.').collect();
        let forged = b64url(with("sub", json!("root")).to_string().as_bytes());
        format!("{}.{forged}.{}", parts[0], parts[2])
    };
    let refused: Vec<(&str, Value)> = vec![
        ("no token", json!({})),
        ("not a string", json!({ "token": 42 })),
        ("garbage", json!({ "token": "not.a.jwt" })),
        (
            "another secret",
            json!({ "token": sign(Algorithm::HS256, &EncodingKey::from_secret(b"other").unwrap(), &good) }),
        ),
        (
            "expired",
            json!({ "token": hs(with("exp", json!(now() - 1))) }),
        ),
        ("no exp", json!({ "token": hs(without("exp")) })),
        (
            "wrong aud",
            json!({ "token": hs(with("aud", json!("other"))) }),
        ),
        ("no aud", json!({ "token": hs(without("aud")) })),
        (
            "wrong iss",
            json!({ "token": hs(with("iss", json!("https://evil.test"))) }),
        ),
        ("no iss", json!({ "token": hs(without("iss")) })),
        (
            "not yet valid",
            json!({ "token": hs(with("nbf", json!(now() + 600))) }),
        ),
        (
            "alg none",
            json!({ "token": format!("{}.{payload}.", b64url(br#"{"alg":"none","typ":"JWT"}"#)) }),
        ),
        (
            "alg HS512 (not configured)",
            json!({ "token": sign(Algorithm::HS512, &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(), &good) }),
        ),
        ("tampered payload", json!({ "token": tampered })),
        // Every JWT socket is someone's: a sub-less token could resume any other sub-less session.
        ("no sub", json!({ "token": hs(without("sub")) })),
        ("empty sub", json!({ "token": hs(with("sub", json!(""))) })),
        (
            "sub over 256 bytes",
            json!({ "token": hs(with("sub", json!("a".repeat(257)))) }),
        ),
        (
            "sub not a string",
            json!({ "token": hs(with("sub", json!(7))) }),
        ),
        // An expiry no clock can reach once panicked the session's timer arithmetic.
        (
            "exp past the year 9999",
            json!({ "token": hs(with("exp", json!(u64::MAX))) }),
        ),
    ];
    for (what, auth) in refused {
        let (_, reply) = connect(&hub, auth).await;
        assert_eq!(reply, UNAUTHORIZED, "{what}");
    }
    assert_eq!(hub.sessions().await, 0);
    let (_, reply) = connect(&hub, json!({ "token": hs(good) })).await;
    assert!(reply.starts_with("40{"), "the valid token joins: {reply}");
}

#[actix_web::test]
async fn jwt_token_is_also_read_from_the_handshakes_bearer_header() {
    let hub = common::start_hub(jwt_config(test_config()));
    let connect_with = |authorization: String| {
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", hub.addr);
        async move {
            let (_, framed) = awc::Client::new()
                .ws(url)
                .header("authorization", authorization)
                .connect()
                .await
                .expect("websocket connects");
            framed
        }
    };
    use futures_util::SinkExt;
    use tokio_stream_next::next_text;
    let mut framed = connect_with(format!("Bearer {}", token("alice", 60, ""))).await;
    assert!(next_text(&mut framed).await.starts_with('0'));
    framed
        .send(awc::ws::Message::Text("40".into()))
        .await
        .unwrap();
    assert!(next_text(&mut framed).await.starts_with("40{"));
    let mut framed = connect_with("Basic YWxpY2U6c2VjcmV0".into()).await;
    next_text(&mut framed).await;
    framed
        .send(awc::ws::Message::Text("40".into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut framed).await, UNAUTHORIZED);
}

/// Reads text frames off a raw awc WebSocket.
mod tokio_stream_next {
    use super::*;
    use actix_codec::Framed;
    use awc::ws::{Codec, Frame};
    use futures_util::StreamExt;

    pub async fn next_text(framed: &mut Framed<awc::BoxedSocket, Codec>) -> String {
        loop {
            match within(WAIT_TIMEOUT, "a frame", framed.next()).await {
                Some(Ok(Frame::Text(bytes))) if &bytes[..] != b"2" => {
                    return String::from_utf8(bytes.to_vec()).unwrap()
                }
                Some(Ok(_)) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }
}

/// Waits for the hub to close the connection, answering pings; fails on any other frame (a
/// Socket.IO DISCONNECT included: it would stop the official client from reconnecting).
async fn closed_by_the_hub(client: &mut WsClient) -> Received {
    let closing = async {
        loop {
            match client.recv_within(WAIT_TIMEOUT).await {
                Some(Received::Text(text)) if text == "2" => client.send("3").await,
                Some(Received::Close(code)) => return Received::Close(code),
                Some(Received::Ended) => return Received::Ended,
                other => panic!("expected the connection to close, got {other:?}"),
            }
        }
    };
    within(WAIT_TIMEOUT, "the hub to close the connection", closing).await
}

#[actix_web::test]
async fn jwt_socket_is_closed_at_its_tokens_expiry_and_resumes_with_a_fresh_token() {
    let hub = common::start_hub(jwt_config(test_config()));
    let exp = now() + 2;
    let short = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        &json!({ "sub": "alice", "exp": exp }),
    );
    let (mut client, sid, pid, offset) = join(&hub, json!({ "token": short })).await;
    let closed = closed_by_the_hub(&mut client).await;
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert!(
        at >= Duration::from_secs(exp),
        "closed before exp: {at:?} < {exp}"
    );
    assert!(
        at < Duration::from_secs(exp + 1),
        "closed more than a second after exp: {at:?}"
    );
    assert_eq!(
        closed,
        Received::Close(Some(awc::ws::CloseCode::Policy)),
        "a transport close (1008), no Socket.IO DISCONNECT"
    );
    // Published while it was away; its record was written at the close.
    let missed = [hub.publish("m1").await, hub.publish("m2").await];
    // The expired token no longer joins: valid only before its `exp` second.
    let (_, reply) = connect(&hub, json!({ "token": token("alice", 0, "") })).await;
    assert_eq!(reply, UNAUTHORIZED);
    let auth = json!({ "token": token("alice", 60, ""), "pid": pid, "offset": offset });
    let (mut back, _) = hub.eio().await;
    back.send(&format!("40{auth}")).await;
    for expected in &missed {
        let frame = back.recv_text_answering_pings().await;
        let args = event_args(&frame).unwrap();
        assert_eq!(args.last().and_then(Value::as_str), Some(expected.as_str()));
    }
    assert_eq!(back.recv_connect().await, (sid, pid), "recovered");
}

/// Resumes by another user or anonymous get a fresh session (never the owner's missed
/// notifications) and leave the record, so its owner resumes after them.
async fn resume_is_bound_to_the_sessions_user(hub: &TestHub) {
    let (mut alice, sid, pid, offset) = join(hub, json!({ "token": token("alice", 60, "") })).await;
    alice.close().await;
    within(WAIT_TIMEOUT, "alice's session to drop", async {
        while hub.sessions().await > 0 {
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let missed = hub.publish("for alice only").await;

    // Without a token: refused (JWT is configured), nothing replayed.
    let (mut anonymous, reply) = connect(hub, json!({ "pid": pid, "offset": offset })).await;
    assert_eq!(reply, UNAUTHORIZED);
    expect_silence(&mut anonymous, Duration::from_millis(300)).await;

    // Another user's token: a fresh session of their own (recovered false), nothing of alice's.
    let auth = json!({ "token": token("mallory", 60, ""), "pid": pid, "offset": offset });
    let (mut mallory, reply) = connect(hub, auth).await;
    let ids: Value = serde_json::from_str(reply.strip_prefix("40").expect("a CONNECT reply"))
        .unwrap_or_else(|_| panic!("{reply}"));
    assert_ne!(ids["pid"], json!(pid), "not alice's session");
    assert_ne!(ids["sid"], json!(sid));
    let offset_event = mallory.recv_text_answering_pings().await;
    assert!(offset_event.contains("hub:offset"), "{offset_event}");
    expect_silence(&mut mallory, Duration::from_millis(300)).await;

    // The owner still resumes, with what she missed.
    let auth = json!({ "token": token("alice", 60, ""), "pid": pid, "offset": offset });
    let (mut back, _) = hub.eio().await;
    back.send(&format!("40{auth}")).await;
    let frame = back.recv_text_answering_pings().await;
    assert_eq!(
        event_args(&frame).unwrap().last().and_then(Value::as_str),
        Some(missed.as_str())
    );
    assert_eq!(back.recv_connect().await, (sid, pid));
    assert_eq!(hub.metric("hub_resumes_not_owner_total").await, 1);
}

#[actix_web::test]
async fn jwt_resume_is_bound_to_the_sessions_user_on_the_embedded_log() {
    let hub = common::start_hub(jwt_config(test_config()));
    resume_is_bound_to_the_sessions_user(&hub).await;
}

#[actix_web::test]
async fn jwt_resume_is_bound_to_the_sessions_user_on_redis() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(jwt_config(redis_config(&redis.url(), "tokens"))).await;
    resume_is_bound_to_the_sessions_user(&hub).await;
    // The record is stored with its user, in the adapter's format plus `sub`.
    let (mut alice, _, pid, _) = join(&hub, json!({ "token": token("alice", 60, "") })).await;
    alice.close().await;
    let key = format!("sio:session:{pid}");
    let stored = within(WAIT_TIMEOUT, "alice's record", async {
        loop {
            // A bulk string reply: `$<len>\r\n<record>\r\n` (`$-1` while absent).
            let reply = redis.command(&["GET", &key]);
            if let Some(record) = reply.lines().nth(1).filter(|_| !reply.starts_with("$-1")) {
                return record.to_owned();
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let bytes = realtime_hub::protocol::base64::decode(stored.trim()).unwrap();
    let record = realtime_hub::protocol::msgpack::decode(&bytes).unwrap();
    assert_eq!(record["sub"], "alice", "{record}");
    assert_eq!(record["pid"], json!(pid), "{record}");
    assert_eq!(
        record["data"],
        json!({}),
        "the adapter's fields as before: {record}"
    );
}

/// `notify` with an ack; the ack's argument.
async fn notify(client: &mut WsClient) -> Value {
    client.send(r#"421["notify",{"title":"t"}]"#).await;
    loop {
        let frame = client.recv_text_answering_pings().await;
        if let Some(ack) = frame.strip_prefix("431") {
            return serde_json::from_str::<Vec<Value>>(ack).unwrap().remove(0);
        }
    }
}

#[actix_web::test]
async fn socket_notify_needs_the_notify_scope_with_jwt_and_is_off_with_api_keys_only() {
    let hub = common::start_hub(jwt_config(test_config()));
    let (mut plain, ..) = join(&hub, json!({ "token": token("alice", 60, "read") })).await;
    assert_eq!(notify(&mut plain).await, json!({ "error": "forbidden" }));
    let (mut granted, ..) = join(&hub, json!({ "token": token("bob", 60, "read notify") })).await;
    assert!(notify(&mut granted).await["id"].is_string());
    // The refused socket keeps its connection, and gets the granted one's notification.
    let delivered = plain.recv_text_answering_pings().await;
    assert!(delivered.contains("\"t\""), "{delivered}");

    let mut keys_only = test_config();
    keys_only.security.api_keys = vec![Secret::from("k1")];
    let hub = common::start_hub(keys_only);
    let mut joined = hub.joined().await;
    assert_eq!(
        notify(&mut joined.client).await,
        json!({ "error": "forbidden" })
    );

    let hub = common::start_hub(test_config());
    let mut joined = hub.joined().await;
    assert!(
        notify(&mut joined.client).await["id"].is_string(),
        "open mode"
    );
}

/// `openssl` into `dir`: (public key file, private key PEM).
fn openssl_key(dir: &Path, name: &str, genpkey: &[&str]) -> (PathBuf, Vec<u8>) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey);
    args.extend(["-out", private.to_str().unwrap()]);
    run(&args);
    run(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (public, std::fs::read(&private).unwrap())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hub-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[actix_web::test]
async fn jwt_rs256_and_es256_public_keys_verify_as_well_as_hs256() {
    let dir = temp_dir("keys");
    let (rsa_pub, rsa_key) = openssl_key(
        &dir,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let (ec_pub, ec_key) = openssl_key(
        &dir,
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let (_, other_rsa) = openssl_key(
        &dir,
        "rsa2",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let claims = json!({ "sub": "alice", "exp": now() + 60 });
    let rs = |key: &[u8]| {
        sign(
            Algorithm::RS256,
            &EncodingKey::from_rsa_pem(key).unwrap(),
            &claims,
        )
    };
    let es = sign(
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(&ec_key).unwrap(),
        &claims,
    );

    for (public, accepted, wrong_alg) in [
        (&rsa_pub, rs(&rsa_key), es.clone()),
        (&ec_pub, es.clone(), rs(&rsa_key)),
    ] {
        // Both at once: the secret and the key file.
        let mut config = jwt_config(test_config());
        config.security.jwt_public_key_file = Some(public.clone());
        let hub = common::start_hub(config);
        for (what, token, joins) in [
            ("signed with the key", accepted.clone(), true),
            ("HS256 alongside", token("bob", 60, ""), true),
            ("the other algorithm", wrong_alg, false),
            ("another RSA key", rs(&other_rsa), false),
            (
                // Key confusion: the public key's PEM used as an HS256 secret.
                "HS256 keyed with the public key",
                sign(
                    Algorithm::HS256,
                    &EncodingKey::from_secret(&std::fs::read(public).unwrap()).unwrap(),
                    &claims,
                ),
                false,
            ),
        ] {
            let (_, reply) = connect(&hub, json!({ "token": token })).await;
            assert_eq!(
                reply.starts_with("40{"),
                joins,
                "{public:?} {what}: {reply}"
            );
        }
    }
    // The key file alone: HS256 tokens are not accepted.
    let mut config = test_config();
    config.security.jwt_public_key_file = Some(ec_pub.clone());
    let hub = common::start_hub(config);
    let (_, reply) = connect(&hub, json!({ "token": token("bob", 60, "") })).await;
    assert_eq!(reply, UNAUTHORIZED);
    let (_, reply) = connect(&hub, json!({ "token": es })).await;
    assert!(reply.starts_with("40{"), "{reply}");
}

/// Runs the hub binary with `args` and `env` (HUB_JWT_SECRET removed unless given), bounded: a
/// binary that serves instead of exiting is killed and fails the test.
fn run_hub_binary(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_realtime-hub"));
    command
        .args(args)
        .env_remove("HUB_JWT_SECRET")
        .env("PORT", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the hub binary starts");
    let deadline = std::time::Instant::now() + WAIT_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("realtime-hub {args:?} did not exit within {WAIT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[actix_web::test]
async fn jwt_key_files_that_cannot_be_used_stop_the_start() {
    let dir = temp_dir("bad-keys");
    let (_, private) = openssl_key(
        &dir,
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let (p384, _) = openssl_key(
        &dir,
        "p384",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    );
    let private_file = dir.join("private.pem");
    std::fs::write(&private_file, &private).unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    for (file, says) in [
        (dir.join("missing.pem"), "missing.pem"),
        (private_file, "private key"),
        (p384, "P-256"),
        (garbage, "not a PEM RSA or EC"),
    ] {
        let mut config = test_config();
        config.security.jwt_public_key_file = Some(file.clone());
        let err = realtime_hub::start(&config).err().expect("refused");
        assert!(err.to_string().contains(says), "{file:?}: {err}");
        // The binary exits non-zero, saying why.
        let out = run_hub_binary(&[], &[("HUB_JWT_PUBLIC_KEY_FILE", file.as_os_str())]);
        assert_eq!(out.status.code(), Some(1), "{file:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{file:?}"
        );
    }
}

#[actix_web::test]
async fn token_command_mints_what_the_hub_accepts_and_needs_a_secret() {
    let out = run_hub_binary(
        &[
            "token",
            "--sub",
            "alice",
            "--ttl",
            "90s",
            "--scope",
            "notify",
            "--rooms",
            "team-*, ops",
        ],
        &[
            ("HUB_JWT_SECRET", SECRET.as_ref()),
            ("HUB_JWT_AUDIENCE", "hub".as_ref()),
            ("HUB_JWT_ISSUER", "dev".as_ref()),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let minted = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut config = jwt_config(test_config());
    config.security.jwt_audience = Some("hub".into());
    config.security.jwt_issuer = Some("dev".into());
    let hub = common::start_hub(config);
    let (mut client, ..) = join(&hub, json!({ "token": minted })).await;
    assert!(notify(&mut client).await["id"].is_string(), "scope notify");
    let claims: Value = serde_json::from_slice(
        &jsonwebtoken::dangerous::insecure_decode::<Value>(&minted)
            .map(|data| serde_json::to_vec(&data.claims).unwrap())
            .unwrap(),
    )
    .unwrap();
    let ttl = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!((claims["sub"].as_str(), ttl), (Some("alice"), 90));
    assert_eq!(claims["rooms"], json!(["team-*", "ops"]), "the rooms claim");

    let out = run_hub_binary(&["token", "--sub", "alice"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HUB_JWT_SECRET"));
    assert!(out.stdout.is_empty());

    // A sub the hub would refuse is refused here, not minted.
    for sub in [String::new(), "a".repeat(257)] {
        let out = run_hub_binary(
            &["token", "--sub", &sub],
            &[("HUB_JWT_SECRET", SECRET.as_ref())],
        );
        assert_eq!(out.status.code(), Some(2), "sub of {} bytes", sub.len());
        assert!(out.stdout.is_empty());
    }
}
