//! `GET /notifications` on the wire, on the embedded log and on a real redis-server: paging both ways
//! over 250 notifications (each once, in order), the limit rules, 410 for a trimmed cursor and for
//! one of another log (epoch), who sees what (API key, connect tokens, open mode), and entries a
//! Node peer's adapter wrote.

mod common;

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::redis_server::RedisServer;
use common::{redis_config, start_ready_hub, test_config, within, TestHub, WAIT_TIMEOUT};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use realtime_hub::config::{Config, Secret};
use serde_json::{json, Value};

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";
const API_KEY: &str = "history-test-key";

/// An HS256 connect token for `sub` with a `rooms` claim.
fn token(sub: &str, rooms: &[&str]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({ "sub": sub, "exp": now + 600, "rooms": rooms });
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

/// `config` with JWT and one API key.
fn secured(mut config: Config) -> Config {
    config.security.jwt_secret = Some(Secret::from(SECRET));
    config.security.api_keys = vec![Secret::from(API_KEY)];
    config
}

/// A GET of `path` with `Authorization: Bearer <bearer>` when given: the status and the JSON body
/// (`null` when it is not JSON).
async fn get(hub: &TestHub, path: &str, bearer: Option<&str>) -> (u16, Value) {
    within(WAIT_TIMEOUT, &format!("GET {path}"), async {
        let mut req = awc::Client::new().get(hub.url(path));
        if let Some(bearer) = bearer {
            req = req.insert_header(("authorization", format!("Bearer {bearer}")));
        }
        let mut res = req.send().await.expect("request");
        let bytes = res.body().limit(16 << 20).await.expect("body");
        (
            res.status().as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    })
    .await
}

/// Publishes `body` (with the API key) and returns its answer, which must be 201.
async fn publish(hub: &TestHub, body: Value) -> Value {
    within(WAIT_TIMEOUT, "POST /notifications/notify", async {
        let mut res = awc::Client::new()
            .post(hub.url("/notifications/notify"))
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-api-key", API_KEY))
            .send_body(body.to_string())
            .await
            .expect("notify");
        let bytes = res.body().await.expect("notify body");
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(res.status().as_u16(), 201, "{answer}");
        answer
    })
    .await
}

/// Every item from `path` on, following `next` until it is null: the items and the pages' sizes.
async fn walk(hub: &TestHub, path: &str, bearer: Option<&str>) -> (Vec<Value>, Vec<usize>) {
    let (mut items, mut sizes) = (Vec::new(), Vec::new());
    let mut path = path.to_owned();
    for _ in 0..100 {
        let (status, page) = get(hub, &path, bearer).await;
        assert_eq!(status, 200, "{path}: {page}");
        let page_items = page["items"].as_array().expect("items").clone();
        sizes.push(page_items.len());
        items.extend(page_items);
        match &page["next"] {
            Value::Null => return (items, sizes),
            Value::String(next) => {
                let direction = if path.contains("after=") {
                    "after"
                } else {
                    "before"
                };
                path = format!("/notifications?{direction}={next}&limit=100");
            }
            other => panic!("next is {other}"),
        }
    }
    panic!("more than 100 pages from {path}");
}

fn titles(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["title"].as_str().expect("title").to_owned())
        .collect()
}

/// 250 notifications, then every page backward from the newest and forward from the start: each
/// once, in order, with the notify answer's five fields.
async fn pages_both_ways_over_250(hub: &TestHub) {
    let mut answers = Vec::new();
    for n in 0..250 {
        answers.push(publish(hub, json!({ "title": format!("n{n}"), "body": "b" })).await);
    }
    let (newest_first, sizes) = walk(hub, "/notifications?limit=100", None).await;
    assert_eq!(sizes[..3], [100, 100, 50]);
    let expected: Vec<Value> = answers.iter().rev().cloned().collect();
    assert_eq!(
        newest_first, expected,
        "backward: the notify answers, newest first"
    );
    let (oldest_first, _) = walk(hub, "/notifications?after=0-0&limit=100", None).await;
    assert_eq!(
        oldest_first, answers,
        "forward: the notify answers, oldest first"
    );
    let offsets: HashSet<&str> = oldest_first
        .iter()
        .map(|item| item["offset"].as_str().unwrap())
        .collect();
    assert_eq!(offsets.len(), 250);
    // A page starting from an item's offset continues right after (or before) it.
    let from = answers[99]["offset"].as_str().unwrap();
    let (_, page) = get(hub, &format!("/notifications?after={from}&limit=2"), None).await;
    assert_eq!(titles(page["items"].as_array().unwrap()), ["n100", "n101"]);
    let (_, page) = get(hub, &format!("/notifications?before={from}&limit=2"), None).await;
    assert_eq!(titles(page["items"].as_array().unwrap()), ["n98", "n97"]);
}

#[actix_web::test]
async fn history_pages_forward_and_backward_over_250_entries_each_once_in_order() {
    let hub = start_ready_hub(test_config()).await;
    pages_both_ways_over_250(&hub).await;
}

#[actix_web::test]
async fn redis_history_pages_forward_and_backward_over_250_entries_each_once_in_order() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(redis_config(&redis.url(), "test:history:250")).await;
    pages_both_ways_over_250(&hub).await;
    edges_of_the_id_space(&hub).await;
}

#[actix_web::test]
async fn history_reads_the_edges_of_the_id_space_on_the_embedded_log() {
    let hub = start_ready_hub(test_config()).await;
    publish(&hub, json!({ "title": "one" })).await;
    edges_of_the_id_space(&hub).await;
}

/// Before the least id there is nothing (an empty last page), after the greatest one the log has
/// issued nothing (410): never the 503 of a log that is down (Redis refuses exclusive bounds it
/// cannot step past).
async fn edges_of_the_id_space(hub: &TestHub) {
    let (status, page) = get(hub, "/notifications?before=0-0", None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"], json!([]), "{page}");
    let max = "18446744073709551615-18446744073709551615";
    let (status, page) = get(hub, &format!("/notifications?after={max}"), None).await;
    assert_eq!(status, 410, "{page}");
}

#[actix_web::test]
async fn history_limit_defaults_to_20_allows_100_and_refuses_more_zero_and_words() {
    let hub = start_ready_hub(test_config()).await;
    for n in 0..120 {
        publish(&hub, json!({ "title": format!("n{n}") })).await;
    }
    let (status, page) = get(&hub, "/notifications", None).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    assert_eq!(page["items"][0]["title"], "n119", "newest first");
    assert!(page["next"].is_string(), "{page}");
    let (status, page) = get(&hub, "/notifications?limit=100", None).await;
    assert_eq!(
        (status, page["items"].as_array().unwrap().len()),
        (200, 100)
    );
    for bad in [
        "limit=101",
        "limit=0",
        "limit=ten",
        "limit=-1",
        "limit=",
        "after=nonsense",
        "before=1-0.not%20an%20epoch",
        "after=1-0&before=2-0",
    ] {
        let (status, answer) = get(&hub, &format!("/notifications?{bad}"), None).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer["error"].is_string(), "{bad}: {answer}");
    }
    let (_, answer) = get(&hub, "/notifications?limit=101", None).await;
    assert!(
        answer["error"].as_str().unwrap().contains("1 to 100"),
        "{answer}"
    );
}

#[actix_web::test]
async fn history_answers_410_for_a_trimmed_cursor_and_one_of_another_log() {
    let hub = start_ready_hub(Config {
        max_len: 10,
        ..test_config()
    })
    .await;
    let first = publish(&hub, json!({ "title": "first" })).await;
    let offset = first["offset"].as_str().unwrap().to_owned();
    let (status, page) = get(&hub, &format!("/notifications?after={offset}"), None).await;
    assert_eq!((status, page["items"].as_array().unwrap().len()), (200, 0));
    for n in 0..20 {
        publish(&hub, json!({ "title": format!("n{n}") })).await;
    }
    for query in [format!("after={offset}"), format!("before={offset}")] {
        let (status, answer) = get(&hub, &format!("/notifications?{query}"), None).await;
        assert_eq!(status, 410, "{query}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("oldest"),
            "{answer}"
        );
    }
    // A next cursor carries the log's epoch; another epoch is another log.
    let (_, page) = get(&hub, "/notifications?limit=3", None).await;
    let next = page["next"].as_str().expect("a next cursor").to_owned();
    let (status, _) = get(&hub, &format!("/notifications?before={next}"), None).await;
    assert_eq!(status, 200, "the cursor as given");
    let (offset, _) = next.split_once('.').expect("<offset>.<epoch>");
    let foreign = format!("{offset}.0123456789abcdef0123456789abcdef");
    let (status, answer) = get(&hub, &format!("/notifications?before={foreign}"), None).await;
    assert_eq!(status, 410, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("another log"),
        "{answer}"
    );
    // An offset this log never issued is not one of its cursors either.
    let (status, _) = get(&hub, "/notifications?after=99999999999999-0", None).await;
    assert_eq!(status, 410);
}

#[actix_web::test]
async fn redis_history_answers_410_for_a_trimmed_cursor_and_after_the_stream_was_replaced() {
    let redis = RedisServer::start();
    let key = "test:history:gone";
    let hub = start_ready_hub(redis_config(&redis.url(), key)).await;
    let mut offsets = Vec::new();
    for n in 0..30 {
        let answer = publish(&hub, json!({ "title": format!("n{n}") })).await;
        offsets.push(answer["offset"].as_str().unwrap().to_owned());
    }
    redis.command(&["XTRIM", key, "MAXLEN", "10"]);
    for query in [
        format!("after={}", offsets[5]),
        format!("before={}", offsets[5]),
    ] {
        let (status, answer) = get(&hub, &format!("/notifications?{query}"), None).await;
        assert_eq!(status, 410, "{query}: {answer}");
    }
    let (status, page) = get(&hub, &format!("/notifications?after={}", offsets[25]), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        titles(page["items"].as_array().unwrap()),
        ["n26", "n27", "n28", "n29"]
    );
    let (_, page) = get(&hub, "/notifications?limit=3", None).await;
    let next = page["next"].as_str().expect("a next cursor").to_owned();
    redis.command(&["DEL", key]);
    publish(&hub, json!({ "title": "in the new log" })).await;
    let (status, answer) = get(&hub, &format!("/notifications?before={next}"), None).await;
    assert_eq!(status, 410, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("another log"),
        "{answer}"
    );
}

/// Broadcasts and targeted notifications, read with the API key, two users' tokens, and nothing.
async fn each_sees_their_own(hub: &TestHub) {
    for (title, to, except) in [
        ("all", json!(null), json!(null)),
        ("for-alice", json!("user:alice"), json!(null)),
        ("for-bob", json!("user:bob"), json!(null)),
        ("team-a", json!("team-a"), json!(null)),
        ("not-alice", json!(null), json!("user:alice")),
        ("ops", json!(["ops", "user:bob"]), json!(null)),
    ] {
        publish(hub, json!({ "title": title, "to": to, "except": except })).await;
    }
    let seen = |bearer: String| async move {
        let (status, page) = get(hub, "/notifications", Some(&bearer)).await;
        assert_eq!(status, 200, "{page}");
        titles(page["items"].as_array().unwrap())
    };
    assert_eq!(
        seen(API_KEY.into()).await,
        ["ops", "not-alice", "team-a", "for-bob", "for-alice", "all"]
    );
    assert_eq!(
        seen(token("alice", &["team-*", "user:*"])).await,
        ["team-a", "for-alice", "all"]
    );
    assert_eq!(
        seen(token("bob", &[])).await,
        ["ops", "not-alice", "for-bob", "all"]
    );
    let (status, answer) = get(hub, "/notifications", None).await;
    assert_eq!(status, 401, "{answer}");
    let (status, _) = get(hub, "/notifications", Some("not-a-token")).await;
    assert_eq!(status, 401);
    let mut forged = token("alice", &[]);
    forged.push('x');
    let (status, _) = get(hub, "/notifications", Some(&forged)).await;
    assert_eq!(status, 401);
}

#[actix_web::test]
async fn history_with_jwt_shows_a_user_broadcasts_and_their_rooms_and_the_api_key_everything() {
    let hub = start_ready_hub(secured(test_config())).await;
    each_sees_their_own(&hub).await;
}

#[actix_web::test]
async fn redis_history_with_jwt_shows_a_user_broadcasts_and_their_rooms_and_the_api_key_everything()
{
    let redis = RedisServer::start();
    let config = secured(redis_config(&redis.url(), "test:history:users"));
    let hub = start_ready_hub(config).await;
    each_sees_their_own(&hub).await;
}

#[actix_web::test]
async fn history_with_api_keys_only_needs_a_key() {
    let mut config = test_config();
    config.security.api_keys = vec![Secret::from(API_KEY)];
    let hub = start_ready_hub(config).await;
    publish(&hub, json!({ "title": "t" })).await;
    let (status, answer) = get(&hub, "/notifications", None).await;
    assert_eq!(status, 401, "{answer}");
    let (status, _) = get(&hub, "/notifications", Some("wrong")).await;
    assert_eq!(status, 401);
    let (status, page) = get(&hub, "/notifications", Some(API_KEY)).await;
    assert_eq!(
        (status, titles(page["items"].as_array().unwrap())),
        (200, vec!["t".to_owned()])
    );
}

/// `XADD`s an entry as a Node peer's adapter writes it; its id.
fn node_xadd(redis: &RedisServer, key: &str, kind: &str, data: &Value) -> String {
    let data = data.to_string();
    let answer = redis.command(&[
        "XADD",
        key,
        "*",
        "uid",
        "node-peer",
        "nsp",
        "/",
        "type",
        kind,
        "data",
        &data,
    ]);
    answer
        .lines()
        .nth(1)
        .expect("an entry id")
        .trim()
        .to_owned()
}

#[actix_web::test]
async fn redis_history_reads_a_node_peers_notifications_and_skips_its_other_entries() {
    let redis = RedisServer::start();
    let key = "test:history:node";
    let hub = start_ready_hub(redis_config(&redis.url(), key)).await;
    let broadcast = |args: Value, rooms: Value| {
        json!({ "packet": { "type": 2, "data": args, "nsp": "/" },
                "opts": { "rooms": rooms, "except": [], "flags": {} } })
    };
    let notification =
        json!({ "id": "node-1", "title": "from node", "body": "hi", "timestamp": 1234 });
    let id = node_xadd(
        &redis,
        key,
        "3",
        &broadcast(json!(["notification", notification]), json!([])),
    );
    node_xadd(
        &redis,
        key,
        "3",
        &broadcast(json!(["chat", "not a notification"]), json!([])),
    );
    node_xadd(
        &redis,
        key,
        "4",
        &json!({ "opts": { "rooms": ["x"] }, "rooms": ["y"] }),
    );
    node_xadd(&redis, key, "3", &json!("malformed"));
    let hub_answer = publish(&hub, json!({ "title": "from the hub" })).await;
    let (status, page) = within(
        Duration::from_secs(5),
        "the page",
        get(&hub, "/notifications", None),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        page["items"],
        json!([hub_answer, { "id": "node-1", "title": "from node", "body": "hi", "timestamp": 1234,
                             "offset": id }])
    );
    assert_eq!(page["next"], Value::Null);
}

#[actix_web::test]
async fn history_bounds_the_scan_of_a_page_and_its_next_cursor_continues_it() {
    let hub = start_ready_hub(secured(test_config())).await;
    publish(&hub, json!({ "title": "for-alice", "to": "user:alice" })).await;
    for n in 0..1100 {
        publish(&hub, json!({ "title": format!("b{n}"), "to": "user:bob" })).await;
    }
    let alice = token("alice", &[]);
    let (status, page) = get(&hub, "/notifications", Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"], json!([]), "1000 entries scanned, none hers");
    let next = page["next"]
        .as_str()
        .expect("a cursor that continues the scan");
    let (items, _) = walk(&hub, &format!("/notifications?before={next}"), Some(&alice)).await;
    assert_eq!(titles(&items), ["for-alice"]);
}
