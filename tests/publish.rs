//! Publish answers that tell the truth, and safe retries: what a publisher is told when the log
//! fails (never sent, refused, outcome unknown), idempotency keys on both doors and both logs, and
//! readiness after a failed append. Redis cases run a real `redis-server` (stopped with SIGSTOP,
//! killed, or out of memory).

mod common;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::WAIT_TIMEOUT;
use common::{
    event_args, redis_config, start_hub, start_ready_hub, test_config, within, Joined, Received,
    TestHub,
};
use realtime_hub::config::Config;
use serde_json::{json, Value};

const NOTHING_PUBLISHED: &str = "nothing was published";
const OUTCOME_UNKNOWN: &str = "outcome unknown";

/// Redis tests wait on Redis for seconds: a heartbeat that never fires keeps them about publishing.
fn config(redis: &RedisServer, key: &str) -> Config {
    Config {
        ping_interval: Duration::from_secs(60),
        ..redis_config(&redis.url(), key)
    }
}

/// An answer to `POST /notifications/notify`.
#[derive(Debug)]
struct Answer {
    status: u16,
    json: Value,
    replayed: bool,
}

impl Answer {
    fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }
}

/// `POST /notifications/notify` with `body` and, if given, an `Idempotency-Key` header.
async fn post(hub: &TestHub, body: &str, key: Option<&str>) -> Answer {
    let send = async {
        let mut req = awc::Client::new()
            .post(hub.url("/notifications/notify"))
            .timeout(WAIT_TIMEOUT)
            .insert_header(("content-type", "application/json"));
        if let Some(key) = key {
            req = req.insert_header(("Idempotency-Key", key));
        }
        let mut res = req
            .send_body(body.to_owned())
            .await
            .expect("notify request");
        let replayed = res
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let bytes = res.body().limit(1 << 20).await.expect("notify body");
        Answer {
            status: res.status().as_u16(),
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            replayed,
        }
    };
    within(
        WAIT_TIMEOUT,
        "the answer to POST /notifications/notify",
        send,
    )
    .await
}

/// The next notification event a client receives: (its notification, its offset).
async fn next_notification(joined: &mut Joined) -> (Value, String) {
    let frame = joined.client.recv_text_answering_pings().await;
    let args = event_args(&frame).unwrap_or_else(|| panic!("expected an event, got {frame}"));
    assert_eq!(args[0], "notification", "{frame}");
    (
        args[1].clone(),
        args[2].as_str().expect("offset").to_owned(),
    )
}

/// Publishes a sentinel and checks it is the next notification `joined` receives: whatever was
/// published before it has been received, and nothing else arrives in between.
async fn next_is_sentinel(hub: &TestHub, joined: &mut Joined, what: &str) {
    let answer = post(hub, r#"{"title":"sentinel"}"#, None).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let (notification, _) = next_notification(joined).await;
    assert_eq!(notification["title"], "sentinel", "{what}: {notification}");
}

/// How many entries of `stream` have `title`, read straight from Redis.
fn entries_titled(redis: &RedisServer, stream: &str, title: &str) -> usize {
    redis
        .command(&["XRANGE", stream, "-", "+"])
        .matches(&format!(r#""title":"{title}""#))
        .count()
}

/// Emits `notify` with `payload` and ack id 1 on a joined socket; returns the ack's argument
/// (Engine.IO pings are answered, notification events arriving meanwhile are skipped).
async fn notify_over_socket(joined: &mut Joined, payload: Value) -> Value {
    joined
        .client
        .send(&format!("421{}", json!(["notify", payload])))
        .await;
    let ack = async {
        loop {
            match joined.client.recv_within(WAIT_TIMEOUT).await {
                Some(Received::Text(text)) if text.starts_with("431") => {
                    let args: Vec<Value> = serde_json::from_str(&text[3..]).expect("ack JSON");
                    return args[0].clone();
                }
                Some(Received::Text(ping)) if ping == "2" => joined.client.send("3").await,
                Some(Received::Text(_)) => {}
                other => panic!("expected the ack, got {other:?}"),
            }
        }
    };
    within(WAIT_TIMEOUT, "the notify ack", ack).await
}

/// GET /readyz's status.
async fn readyz(hub: &TestHub) -> u16 {
    hub.get_status("/readyz").await
}

/// Waits (bounded) for /readyz to answer `status`.
async fn until_readyz(hub: &TestHub, status: u16) {
    let waiting = async {
        while readyz(hub).await != status {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    };
    within(
        WAIT_TIMEOUT,
        &format!("/readyz to answer {status}"),
        waiting,
    )
    .await;
}

#[actix_web::test]
async fn publish_while_redis_is_stopped_is_an_unknown_outcome_not_nothing_published() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:stopped")).await;
    let mut client = hub.joined().await;
    // The append connection is up before Redis stops: the append will be sent.
    next_is_sentinel(&hub, &mut client, "warm-up").await;

    redis.signal("STOP");
    let answer = post(&hub, r#"{"title":"t"}"#, None).await;
    redis.signal("CONT");
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(
        answer.error().contains(OUTCOME_UNKNOWN) && !answer.error().contains(NOTHING_PUBLISHED),
        "a sent append without an answer is an unknown outcome: {answer:?}"
    );
    // It was published after all: every client receives it.
    let (notification, _) = next_notification(&mut client).await;
    assert_eq!(notification["title"], "t");
    assert_eq!(hub.metric("hub_appends_outcome_unknown_total").await, 1);
}

#[actix_web::test]
async fn keyed_retry_after_an_unknown_outcome_publishes_once_with_the_first_id_and_offset() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:retry")).await;
    let mut client = hub.joined().await;
    next_is_sentinel(&hub, &mut client, "warm-up").await;
    let key = "8e03978e-40d5-43e8-bc93-6894a57f9324";

    redis.signal("STOP");
    let first = post(&hub, r#"{"title":"once"}"#, Some(key)).await;
    assert_eq!(first.status, 503, "{first:?}");
    assert!(first.error().contains(OUTCOME_UNKNOWN), "{first:?}");
    assert!(first.error().contains("same idempotency key"), "{first:?}");
    // Unready right after the failed append, before the read loop could notice anything.
    assert_eq!(
        readyz(&hub).await,
        503,
        "/readyz right after a failed append"
    );
    redis.signal("CONT");

    let retry = post(&hub, r#"{"title":"once"}"#, Some(key)).await;
    assert_eq!(retry.status, 201, "{retry:?}");
    let (notification, offset) = next_notification(&mut client).await;
    assert_eq!(notification["title"], "once");
    assert_eq!(
        (&retry.json["id"], &retry.json["offset"]),
        (&notification["id"], &json!(offset)),
        "the retry answers with the notification that is in the log"
    );
    // A third attempt: the same answer, marked as a replay, nothing published.
    let again = post(&hub, r#"{"title":"once"}"#, Some(key)).await;
    assert_eq!((again.status, again.replayed), (201, true), "{again:?}");
    assert_eq!(again.json, retry.json);
    next_is_sentinel(&hub, &mut client, "exactly once").await;
    assert_eq!(entries_titled(&redis, "test:retry", "once"), 1);
    until_readyz(&hub, 200).await;
}

#[actix_web::test]
async fn socket_notify_with_an_idempotency_key_is_retried_safely_after_an_unknown_outcome() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:socket-retry")).await;
    let mut publisher = hub.joined().await;
    let mut receiver = hub.joined().await;
    next_is_sentinel(&hub, &mut receiver, "warm-up").await;
    let payload = json!({ "title": "by socket", "idempotencyKey": "socket-key-1" });

    redis.signal("STOP");
    let first = notify_over_socket(&mut publisher, payload.clone()).await;
    redis.signal("CONT");
    let error = first["error"].as_str().unwrap_or_else(|| panic!("{first}"));
    assert!(
        error.contains(OUTCOME_UNKNOWN) && !error.contains(NOTHING_PUBLISHED),
        "{first}"
    );

    let retry = notify_over_socket(&mut publisher, payload).await;
    let (notification, offset) = next_notification(&mut receiver).await;
    assert_eq!(notification["title"], "by socket");
    assert!(
        notification.get("idempotencyKey").is_none(),
        "the key is not part of the notification: {notification}"
    );
    // The notification as delivered plus its offset (the answer had two fields before issue 13).
    let delivered = ["id", "title", "body", "timestamp"].map(|f| (f, notification[f].clone()));
    let mut expected: serde_json::Map<String, Value> = delivered
        .into_iter()
        .map(|(f, v)| (f.to_owned(), v))
        .collect();
    expected.insert("offset".into(), json!(offset));
    assert_eq!(retry, Value::Object(expected));
    next_is_sentinel(&hub, &mut receiver, "exactly once").await;
    assert_eq!(entries_titled(&redis, "test:socket-retry", "by socket"), 1);
}

#[actix_web::test]
async fn publish_whose_connection_is_reset_mid_command_is_an_unknown_outcome_and_a_keyed_retry_publishes_once(
) {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:reset")).await;
    let mut client = hub.joined().await;
    next_is_sentinel(&hub, &mut client, "warm-up").await;

    // Redis holds write commands (XADD, EVAL) without answering; the connection carrying the
    // append is then closed by Redis while the command waits in it.
    assert!(redis
        .command(&["CLIENT", "PAUSE", "5000", "WRITE"])
        .starts_with("+OK"));
    let publish = post(&hub, r#"{"title":"reset"}"#, Some("reset-key"));
    let reset = async {
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        redis.command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
    };
    let (answer, killed) = futures_util::future::join(publish, reset).await;
    assert!(killed.starts_with(':'), "{killed}");
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(
        answer.error().contains(OUTCOME_UNKNOWN) && !answer.error().contains(NOTHING_PUBLISHED),
        "{answer:?}"
    );
    assert!(redis.command(&["CLIENT", "UNPAUSE"]).starts_with("+OK"));

    let retry = post(&hub, r#"{"title":"reset"}"#, Some("reset-key")).await;
    assert_eq!(retry.status, 201, "{retry:?}");
    let (notification, offset) = next_notification(&mut client).await;
    assert_eq!(
        (&notification["title"], &notification["id"], json!(offset)),
        (
            &json!("reset"),
            &retry.json["id"],
            retry.json["offset"].clone()
        )
    );
    next_is_sentinel(&hub, &mut client, "exactly once").await;
    assert_eq!(entries_titled(&redis, "test:reset", "reset"), 1);
}

#[actix_web::test]
async fn publish_while_redis_is_down_answers_nothing_was_published_and_publishes_nothing() {
    let mut redis = RedisServer::start_persistent();
    let hub = start_ready_hub(config(&redis, "test:down")).await;
    let mut client = hub.joined().await;
    next_is_sentinel(&hub, &mut client, "warm-up").await;

    redis.stop();
    // The read loop has seen the connection close: so has the append connection by now.
    until_readyz(&hub, 503).await;
    for key in [None, Some("down-key")] {
        let answer = post(&hub, r#"{"title":"during"}"#, key).await;
        assert_eq!(answer.status, 503, "{answer:?}");
        assert!(
            answer.error().contains(NOTHING_PUBLISHED),
            "connection refused: never sent: {answer:?}"
        );
    }
    assert!(hub.metric("hub_appends_failed_total").await >= 2);
    redis.restart();
    hub.wait_ready().await;
    next_is_sentinel(&hub, &mut client, "nothing published during the outage").await;
    assert_eq!(entries_titled(&redis, "test:down", "during"), 0);
    // The key was never appended: it publishes now.
    let later = post(&hub, r#"{"title":"during"}"#, Some("down-key")).await;
    assert_eq!((later.status, later.replayed), (201, false), "{later:?}");
}

#[actix_web::test]
async fn append_refused_by_redis_is_nothing_published_and_makes_the_instance_unready_until_appends_succeed(
) {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:refused")).await;
    let mut client = hub.joined().await;
    next_is_sentinel(&hub, &mut client, "warm-up").await;
    assert_eq!(hub.metric("hub_appends_failing").await, 0);

    // Out of memory: Redis refuses writes (XADD, the keyed script's XADD) and still serves reads,
    // so the read loop stays healthy.
    assert!(redis
        .command(&["CONFIG", "SET", "maxmemory", "1"])
        .starts_with("+OK"));
    for key in [None, Some("oom-key")] {
        let answer = post(&hub, r#"{"title":"refused"}"#, key).await;
        assert_eq!(answer.status, 503, "{answer:?}");
        assert!(answer.error().contains(NOTHING_PUBLISHED), "{answer:?}");
        assert_eq!(
            readyz(&hub).await,
            503,
            "/readyz right after a failed append"
        );
    }
    assert_eq!(hub.metric("hub_appends_failing").await, 1);
    assert_eq!(hub.metric("hub_appends_failed_total").await, 2);
    assert_eq!(hub.metric("hub_appends_outcome_unknown_total").await, 0);

    assert!(redis
        .command(&["CONFIG", "SET", "maxmemory", "0"])
        .starts_with("+OK"));
    // Nobody publishes: the probe alone makes the instance ready again.
    until_readyz(&hub, 200).await;
    assert_eq!(hub.metric("hub_appends_failing").await, 0);
    let retry = post(&hub, r#"{"title":"refused"}"#, Some("oom-key")).await;
    assert_eq!((retry.status, retry.replayed), (201, false), "{retry:?}");
    let (notification, _) = next_notification(&mut client).await;
    assert_eq!(notification["title"], "refused");
    next_is_sentinel(&hub, &mut client, "published once").await;
    assert_eq!(entries_titled(&redis, "test:refused", "refused"), 1);
}

#[actix_web::test]
async fn idempotency_key_reused_with_another_body_is_422_on_redis() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:conflict")).await;
    let mut client = hub.joined().await;
    let first = post(&hub, r#"{"title":"a"}"#, Some("k-conflict")).await;
    assert_eq!(first.status, 201, "{first:?}");
    let other = post(&hub, r#"{"title":"b"}"#, Some("k-conflict")).await;
    assert_eq!(other.status, 422, "{other:?}");
    assert!(
        other.error().contains("different title or body"),
        "{other:?}"
    );
    let (notification, _) = next_notification(&mut client).await;
    assert_eq!(notification["title"], "a");
    next_is_sentinel(
        &hub,
        &mut client,
        "the conflicting publish published nothing",
    )
    .await;
    assert_eq!(entries_titled(&redis, "test:conflict", "b"), 0);
    // The keyed entry reads as the adapter's own: uid, nsp, type, data, nothing else.
    let raw = redis.command(&["XRANGE", "test:conflict", "-", "+", "COUNT", "1"]);
    for field in ["uid", "nsp", "type", "data"] {
        assert!(raw.contains(&format!("\r\n{field}\r\n")), "{field}: {raw}");
    }
    assert_eq!(
        raw.matches("\r\n$").count(),
        1 + 8,
        "id and 4 fields: {raw}"
    );
}

#[actix_web::test]
async fn embedded_log_publishes_a_key_once_on_both_doors() {
    let hub = start_hub(test_config());
    let mut client = hub.joined().await;
    let first = post(&hub, r#"{"title":"x","body":"y"}"#, Some("mem-1")).await;
    assert_eq!((first.status, first.replayed), (201, false), "{first:?}");
    let retry = post(&hub, r#"{"title":"x","body":"y"}"#, Some("mem-1")).await;
    assert_eq!((retry.status, retry.replayed), (201, true), "{retry:?}");
    assert_eq!(retry.json, first.json);
    let (notification, offset) = next_notification(&mut client).await;
    assert_eq!(
        (&notification["id"], json!(offset)),
        (&first.json["id"], first.json["offset"].clone())
    );
    // The socket door shares the keys.
    let ack = notify_over_socket(
        &mut client,
        json!({ "title": "x", "body": "y", "idempotencyKey": "mem-1" }),
    )
    .await;
    assert_eq!(ack, first.json);
    next_is_sentinel(&hub, &mut client, "one delivery for three attempts").await;

    let conflict = post(&hub, r#"{"title":"other"}"#, Some("mem-1")).await;
    assert_eq!(conflict.status, 422, "{conflict:?}");
    let ack = notify_over_socket(
        &mut client,
        json!({ "title": "other", "idempotencyKey": "mem-1" }),
    )
    .await;
    assert!(
        ack["error"]
            .as_str()
            .is_some_and(|e| e.contains("different")),
        "{ack}"
    );
    next_is_sentinel(&hub, &mut client, "conflicts publish nothing").await;
    assert_eq!(hub.metric("hub_idempotent_replays_total").await, 2);
}

#[actix_web::test]
async fn invalid_idempotency_keys_are_refused_naming_the_rule_and_publish_nothing() {
    let hub = start_hub(test_config());
    let mut client = hub.joined().await;
    let long = "k".repeat(256);
    for (key, why) in [
        ("a b", "' '"),
        (long.as_str(), "at most 255"),
        ("\"\"", "empty"),
    ] {
        let answer = post(&hub, r#"{"title":"bad key"}"#, Some(key)).await;
        assert_eq!(answer.status, 400, "{key:?}: {answer:?}");
        assert!(
            answer.error().contains("idempotency key") && answer.error().contains(why),
            "{key:?}: {answer:?}"
        );
    }
    for key in [json!(5), json!("with space")] {
        let ack = notify_over_socket(
            &mut client,
            json!({ "title": "bad key", "idempotencyKey": key }),
        )
        .await;
        assert!(
            ack["error"]
                .as_str()
                .is_some_and(|e| e.contains("idempotency key")),
            "{ack}"
        );
    }
    next_is_sentinel(&hub, &mut client, "refused keys publish nothing").await;
}

/// `HUB_REDIS_MIN_REPLICAS=1` with `timeout_ms` to wait for the replica.
fn replicated(redis: &RedisServer, key: &str, timeout_ms: u64) -> Config {
    Config {
        redis_min_replicas: 1,
        redis_min_replicas_timeout: Duration::from_millis(timeout_ms),
        ..config(redis, key)
    }
}

#[actix_web::test]
async fn with_min_replicas_a_publish_no_replica_has_is_an_unknown_outcome_and_reaches_no_client_until_one_has_it(
) {
    let primary = RedisServer::start();
    let hub = start_ready_hub(replicated(&primary, "test:replicas", 300)).await;
    let mut joined = hub.joined().await;

    // No replica: written on the primary, but a failover now could lose it, so neither the publisher
    // nor any client is told it happened.
    let first = post(&hub, r#"{"title":"unreplicated"}"#, Some("replicas-1")).await;
    assert_eq!(first.status, 503, "{first:?}");
    assert!(first.error().contains(OUTCOME_UNKNOWN), "{first:?}");
    assert_eq!(entries_titled(&primary, "test:replicas", "unreplicated"), 1);
    // The log took it, so the instance stays ready, at once: were it unready until the next probe
    // (which waits for no replica), /readyz would flap 503/200 with every publish while replicas
    // are missing (as it did during a planned failover).
    assert_eq!(
        readyz(&hub).await,
        200,
        "/readyz right after an append too few replicas confirmed"
    );
    assert_eq!(hub.metric("hub_appends_failing").await, 0);
    assert_eq!(hub.metric("hub_appends_outcome_unknown_total").await, 1);
    assert_eq!(
        joined.client.recv_within(Duration::from_millis(1500)).await,
        None,
        "a client gets nothing a failover could take back"
    );
    assert_eq!(
        readyz(&hub).await,
        200,
        "still ready: taken out of its load balancer, the instance would not bring a replica back"
    );

    // A replica catches up: the withheld entry reaches the client, once, and the keyed retry is
    // acknowledged with the first append's offset (nothing appended twice).
    let replica = RedisServer::start_replica_of(&primary);
    let delivered = match joined.client.recv_within(Duration::from_secs(8)).await {
        Some(Received::Text(frame)) => frame,
        other => panic!("the withheld notification once a replica has it, got {other:?}"),
    };
    let args = event_args(&delivered).unwrap_or_else(|| panic!("an event: {delivered}"));
    assert_eq!(args[1]["title"], "unreplicated");
    let retry = post(&hub, r#"{"title":"unreplicated"}"#, Some("replicas-1")).await;
    assert_eq!(retry.status, 201, "{retry:?}");
    assert!(retry.replayed, "{retry:?}");
    assert_eq!(retry.json["offset"], args[2]);
    assert_eq!(entries_titled(&primary, "test:replicas", "unreplicated"), 1);
    assert_eq!(
        entries_titled(&replica, "test:replicas", "unreplicated"),
        1,
        "acknowledged means the replica has it"
    );
    // And from now on a publish is acknowledged once the replica has it, and delivered.
    let answer = post(&hub, r#"{"title":"replicated"}"#, None).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(entries_titled(&replica, "test:replicas", "replicated"), 1);
    let (notification, offset) = next_notification(&mut joined).await;
    assert_eq!(notification["title"], "replicated");
    assert_eq!(answer.json["offset"], offset.as_str());
}

#[actix_web::test]
async fn min_replicas_without_redis_is_refused_at_start() {
    let config = Config {
        redis_min_replicas: 1,
        ..test_config()
    };
    let err = realtime_hub::start(&config)
        .err()
        .expect("the hub refuses to start");
    assert!(
        err.to_string()
            .contains("HUB_REDIS_MIN_REPLICAS needs REDIS_URL"),
        "{err}"
    );
}
