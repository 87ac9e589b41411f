//! Targeted notify: `to` / `except` on both doors (`POST /notifications/notify` and the socket
//! `notify` event), their validation, the entry they write (the Node adapter's `opts.rooms` /
//! `opts.except`, read back with XRANGE from a real `redis-server`), and the five-field answer
//! `{id, title, body, timestamp, offset}` of a publish and of its idempotent retry.

mod common;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{
    event_args, redis_config, start_hub, start_ready_hub, test_config, within, Joined, Received,
    TestHub, WAIT_TIMEOUT,
};
use realtime_hub::config::Config;
use serde_json::{json, Value};

/// Redis tests wait on Redis: a heartbeat that never fires keeps them about publishing.
fn config(redis: &RedisServer, key: &str) -> Config {
    Config {
        ping_interval: Duration::from_secs(60),
        ..redis_config(&redis.url(), key)
    }
}

/// `POST /notifications/notify` with `body` and, if given, an `Idempotency-Key`: (status, JSON,
/// whether `Idempotent-Replayed: true`).
async fn post(hub: &TestHub, body: &str, key: Option<&str>) -> (u16, Value, bool) {
    let send = async {
        let mut req = awc::Client::new()
            .post(hub.url("/notifications/notify"))
            .insert_header(("content-type", "application/json"));
        if let Some(key) = key {
            req = req.insert_header(("Idempotency-Key", key));
        }
        let mut res = req.send_body(body.to_owned()).await.expect("notify");
        let replayed = res
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let bytes = res.body().limit(1 << 20).await.expect("notify body");
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (res.status().as_u16(), json, replayed)
    };
    within(
        WAIT_TIMEOUT,
        "the answer to POST /notifications/notify",
        send,
    )
    .await
}

/// Emits `notify` with `payload` and ack id 1; returns the ack's argument (pings answered,
/// notifications arriving meanwhile skipped).
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

/// The next notification a client receives: (its notification, its offset).
async fn next_notification(joined: &mut Joined) -> (Value, String) {
    let frame = joined.client.recv_text_answering_pings().await;
    let args = event_args(&frame).unwrap_or_else(|| panic!("expected an event, got {frame}"));
    assert_eq!(args[0], "notification", "{frame}");
    (
        args[1].clone(),
        args[2].as_str().expect("offset").to_owned(),
    )
}

/// Checks `answer` is the five-field answer of `notification` at `offset`.
fn assert_five_fields(answer: &Value, notification: &Value, offset: &str) {
    let fields: Vec<&str> = answer
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields.len(), 5, "{answer}");
    for field in ["id", "title", "body", "timestamp"] {
        assert_eq!(answer[field], notification[field], "{field}: {answer}");
    }
    assert_eq!(answer["offset"], offset, "{answer}");
}

/// Each rule of `to` / `except`, and the text its refusal names.
fn invalid_targets() -> Vec<(Value, &'static str)> {
    let many: Vec<String> = (0..101).map(|i| format!("r{i}")).collect();
    vec![
        (json!({"to": []}), "to must name at least one room"),
        (json!({"to": ""}), "a room name is never empty"),
        (
            json!({"to": ["ops", ""]}),
            "to[1]: a room name is never empty",
        ),
        (
            json!({"to": "r".repeat(262)}),
            "262 bytes long (at most 261)",
        ),
        (json!({"except": "a\u{7}b"}), "control character"),
        (
            json!({"to": 5}),
            "to must be a room name or an array of room names",
        ),
        (json!({"except": [true]}), "except[0] must be a room name"),
        (json!({ "to": many }), "to names 101 rooms (at most 100)"),
    ]
}

#[actix_web::test]
async fn notify_refuses_each_invalid_to_or_except_naming_the_rule_on_both_doors() {
    let hub = start_hub(test_config());
    let mut socket = hub.joined().await;
    for (request, why) in invalid_targets() {
        let (status, answer, _) = post(&hub, &request.to_string(), None).await;
        assert_eq!(status, 400, "{request}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(why), "{request}: {error}");
        let ack = notify_over_socket(&mut socket, request.clone()).await;
        let error = ack["error"].as_str().unwrap_or_default();
        assert!(error.contains(why), "socket {request}: {ack}");
    }
    // Nothing was published: the next notification is a valid one, still connected.
    let (status, answer, _) = post(&hub, r#"{"title":"valid"}"#, None).await;
    assert_eq!(status, 201, "{answer}");
    let (notification, _) = next_notification(&mut socket).await;
    assert_eq!(notification["title"], "valid");
}

#[actix_web::test]
async fn notify_answers_the_five_fields_on_both_doors_and_a_retry_answers_the_first() {
    let hub = start_hub(test_config());
    let mut socket = hub.joined().await;
    let mut watcher = hub.joined().await;
    let body = r#"{"title":"Deploy","body":"v2"}"#;
    let (status, first, replayed) = post(&hub, body, Some("five-1")).await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (notification, offset) = next_notification(&mut socket).await;
    assert_five_fields(&first, &notification, &offset);
    assert!(first["timestamp"]
        .as_u64()
        .is_some_and(|t| t > 1_600_000_000_000));

    let (status, retry, replayed) = post(&hub, body, Some("five-1")).await;
    assert_eq!((status, replayed), (201, true), "{retry}");
    assert_eq!(retry, first, "the first publish's id, timestamp and offset");

    let ack = notify_over_socket(&mut socket, json!({"title": "by socket"})).await;
    let (notification, _) = next_notification(&mut watcher).await;
    assert_eq!(notification["title"], "Deploy");
    let (notification, offset) = next_notification(&mut watcher).await;
    assert_five_fields(&ack, &notification, &offset);
    let keyed = json!({"title": "Deploy", "body": "v2", "idempotencyKey": "five-1"});
    assert_eq!(notify_over_socket(&mut socket, keyed).await, first);
}

#[actix_web::test]
async fn a_targeted_notification_reaches_no_socket_outside_its_rooms_and_except_alone_is_a_broadcast(
) {
    let hub = start_hub(test_config());
    let mut outside = hub.joined().await;
    let (status, answer, _) = post(&hub, r#"{"title":"for ops","to":"ops"}"#, None).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["title"], "for ops");
    // `except` without `to`: everyone not in those rooms (this socket is in none).
    let (status, _, _) = post(&hub, r#"{"title":"all but muted","except":"muted"}"#, None).await;
    assert_eq!(status, 201);
    let (notification, _) = next_notification(&mut outside).await;
    assert_eq!(
        notification["title"], "all but muted",
        "the ops one never came"
    );
}

#[actix_web::test]
async fn a_targeted_entry_on_redis_carries_opts_rooms_and_except_as_the_adapter_writes_them() {
    let redis = RedisServer::start();
    let stream = "test:targeted";
    let hub = start_ready_hub(config(&redis, stream)).await;
    let mut socket = hub.joined().await;
    let request =
        json!({"title": "t", "body": "b", "to": ["user:alice", "ops", "ops"], "except": "muted"});
    let (status, answer, _) = post(&hub, &request.to_string(), None).await;
    assert_eq!(status, 201, "{answer}");
    let ack = notify_over_socket(
        &mut socket,
        json!({"title": "s", "body": "b", "to": "user:bob", "except": ["x\"y"]}),
    )
    .await;
    assert!(ack["offset"].is_string(), "{ack}");
    let raw = redis.command(&["XRANGE", stream, "-", "+"]);
    let data_of = |title: &str| {
        raw.split("\r\n")
            .find(|line| line.contains(&format!(r#""title":"{title}""#)))
            .unwrap_or_else(|| panic!("no entry titled {title}: {raw}"))
            .to_owned()
    };
    let http = data_of("t");
    let expected_args = json!(["notification", {
        "id": answer["id"], "title": "t", "body": "b", "timestamp": answer["timestamp"]
    }]);
    assert_eq!(
        http,
        format!(
            r#"{{"packet":{{"type":2,"data":{expected_args}}},"opts":{{"rooms":["user:alice","ops"],"except":["muted"],"flags":{{}}}}}}"#
        )
    );
    assert!(
        data_of("s").ends_with(r#""opts":{"rooms":["user:bob"],"except":["x\"y"],"flags":{}}}"#),
        "{raw}"
    );
    for field in ["uid", "nsp", "type", "data"] {
        assert!(raw.contains(&format!("\r\n{field}\r\n")), "{field}: {raw}");
    }
}

#[actix_web::test]
async fn an_idempotency_key_reused_with_another_target_is_refused_on_redis_and_retried_with_the_first_timestamp(
) {
    let redis = RedisServer::start();
    let stream = "test:target-key";
    let hub = start_ready_hub(config(&redis, stream)).await;
    let body = r#"{"title":"t","to":["a","b"]}"#;
    let (status, first, _) = post(&hub, body, Some("tk-1")).await;
    assert_eq!(status, 201, "{first}");
    // The same rooms in another order are the same request.
    let (status, retry, replayed) =
        post(&hub, r#"{"title":"t","to":["b","a"]}"#, Some("tk-1")).await;
    assert_eq!((status, replayed), (201, true), "{retry}");
    assert_eq!(
        retry, first,
        "the first publish's five fields, timestamp included"
    );
    for other in [
        r#"{"title":"t","to":"a"}"#,
        r#"{"title":"t"}"#,
        r#"{"title":"t","to":["a","b"],"except":"c"}"#,
    ] {
        let (status, answer, _) = post(&hub, other, Some("tk-1")).await;
        assert_eq!(status, 422, "{other}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("target"),
            "{answer}"
        );
    }
    let entries = redis.command(&["XLEN", stream]);
    assert_eq!(entries.trim(), ":1", "one entry for five attempts");
}
