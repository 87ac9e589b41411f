//! `HUB_STREAM_SHARDS` at its edges, on a real `redis-server` (or Redis Cluster) on loopback: one
//! shard's stream replaced, or its appends failing, while the others are fine; idempotent retries.

mod common;

use std::time::Duration;

use common::redis_cluster_nodes::RedisCluster;
use common::redis_server::RedisServer;
use common::{event_offset, redis_config, start_hub, start_ready_hub, within, TestHub};
use realtime_hub::config::Config;
use realtime_hub::protocol::offset::shard_of;
use serde_json::json;

const SHARDS: usize = 2;
const KEY: &str = "test:edges";

fn config(redis: &RedisServer) -> Config {
    Config {
        stream_shards: SHARDS,
        ping_interval: Duration::from_secs(60),
        ..redis_config(&redis.url(), KEY)
    }
}

/// Waits (bounded) until the hub has counted `n` log epoch changes.
async fn epoch_changes(hub: &TestHub, n: u64) {
    for _ in 0..250 {
        if hub.metric("hub_log_epoch_changes_total").await >= n {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the hub never saw the shard's epoch change");
}

/// One shard's stream is deleted (its epoch replaced: a flush, a replica without its newest
/// entries); the hub disconnects everyone. A session opened after that is resumable: its offset
/// is no id that shard's new stream never issued.
#[actix_web::test]
async fn a_session_opened_after_one_shard_was_replaced_resumes() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis)).await;
    let mut first = hub.joined().await;
    let shard = shard_of(&[first.sid.as_str()], SHARDS);
    let (status, answer) = hub
        .notify(&json!({ "title": "before", "to": first.sid }).to_string())
        .await;
    assert_eq!(status, 201, "{answer}");
    let frame = within(
        Duration::from_secs(10),
        "the notification",
        first.client.recv_text_answering_pings(),
    )
    .await;
    event_offset(&frame);
    first.client.close().await;

    // The stream of the shard that entry went to is deleted; the others keep theirs.
    let key = format!("{KEY}#{shard}");
    assert!(
        redis.command(&["DEL", &key]).contains(":1"),
        "{key} existed"
    );
    // Noticed by the hub (a fresh session's tip, or the read loop's check, makes a new epoch).
    let _nudge = hub.joined().await;
    epoch_changes(&hub, 1).await;

    let mut fresh = hub.joined().await;
    fresh.client.close().await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let resumed = hub.resume(&fresh.pid, &fresh.offset).await;
    assert_eq!(
        resumed.pid, fresh.pid,
        "a fresh session's offset {} on a log whose shard {shard} was replaced must resume",
        fresh.offset
    );
}

/// `POST /notifications/notify` with `body` and an `Idempotency-Key`: (status, JSON, whether
/// `Idempotent-Replayed: true`).
async fn notify_once(hub: &TestHub, body: &str, key: &str) -> (u16, serde_json::Value, bool) {
    let send = async {
        let mut res = awc::Client::new()
            .post(hub.url("/notifications/notify"))
            .insert_header(("content-type", "application/json"))
            .insert_header(("Idempotency-Key", key))
            .send_body(body.to_owned())
            .await
            .expect("notify");
        let replayed = res
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let bytes = res.body().limit(1 << 20).await.expect("notify body");
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (res.status().as_u16(), json, replayed)
    };
    within(Duration::from_secs(10), "the notify answer", send).await
}

/// Entries in every shard's stream.
fn entries(redis: &RedisServer) -> i64 {
    (0..SHARDS)
        .map(|shard| {
            let reply = redis.command(&["XLEN", &format!("{KEY}#{shard}")]);
            reply.trim().trim_start_matches(':').parse::<i64>().unwrap()
        })
        .sum()
}

/// A target's rooms count as a set for its idempotency key (`to: ["a","b"]` and `["b","a"]` are one
/// request): a retry of it with its rooms in another order is answered as the first, never appended
/// again on another shard (which every socket in both rooms would get twice).
#[actix_web::test]
async fn an_idempotent_retry_with_its_rooms_reordered_is_appended_once() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis)).await;
    let a = "room-a".to_owned();
    let b = (0..)
        .map(|n| format!("room-{n}"))
        .find(|room| shard_of(&[room.as_str()], SHARDS) != shard_of(&[a.as_str()], SHARDS))
        .unwrap();
    let first = json!({ "title": "once", "to": [a, b] }).to_string();
    let (status, answer, replayed) = notify_once(&hub, &first, "retry-1").await;
    assert_eq!((status, replayed), (201, false), "{answer}");
    let retry = json!({ "title": "once", "to": [b, a] }).to_string();
    let (status, again, replayed) = notify_once(&hub, &retry, "retry-1").await;
    assert!(
        replayed && again["id"] == answer["id"],
        "the same request under the same key is the first one's answer: {status} {again} (first {answer})"
    );
    assert_eq!(entries(&redis), 1, "appended once over all shards");
}

/// A room whose entries go to `shard` of `shards`.
fn room_on(shard: usize, shards: usize) -> String {
    (0..)
        .map(|n| format!("room-{n}"))
        .find(|room| shard_of(&[room.as_str()], shards) == shard)
        .unwrap()
}

/// Appends to one shard fail (its master refuses writes) while another's succeed: the instance is
/// unready (`/readyz` 503, `hub_appends_failing` 1) until that shard's appends work again, whatever
/// the order of the appends, as with one stream; not ready again after the next append to a
/// healthy shard.
#[actix_web::test]
async fn an_instance_stays_unready_while_one_shards_appends_fail() {
    const SHARDS: usize = 4;
    const KEY: &str = "test:ready";
    let cluster = RedisCluster::start();
    let hub = start_ready_hub(Config {
        stream_shards: SHARDS,
        ping_interval: Duration::from_secs(60),
        ..redis_config(&cluster.url(), KEY)
    })
    .await;
    let owner = |shard: usize| cluster.owner(cluster.slot(&format!("{KEY}#{shard}")));
    let (bad, good) = (0..SHARDS)
        .flat_map(|i| (0..SHARDS).map(move |j| (i, j)))
        .find(|&(i, j)| owner(i) != owner(j))
        .expect("the shards live on several masters");
    // The bad shard's master refuses writes (it has no replica); reads go on.
    let refused =
        cluster.nodes[owner(bad)].command(&["CONFIG", "SET", "min-replicas-to-write", "1"]);
    assert_eq!(refused.text(), "OK");
    let to = |shard: usize| json!({ "title": "t", "to": room_on(shard, SHARDS) }).to_string();
    let (status, answer) = hub.notify(&to(bad)).await;
    assert_eq!(status, 503, "{answer}");
    let (status, answer) = hub.notify(&to(good)).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        (
            hub.get_status("/readyz").await,
            hub.metric("hub_appends_failing").await
        ),
        (503, 1),
        "shard {bad}'s appends still fail"
    );
    // Writes come back: a probe of the append path finds it, and the instance is ready again.
    let back = cluster.nodes[owner(bad)].command(&["CONFIG", "SET", "min-replicas-to-write", "0"]);
    assert_eq!(back.text(), "OK");
    hub.wait_ready().await;
    assert_eq!(hub.metric("hub_appends_failing").await, 0);
}

/// Waits (bounded) until `/readyz` answers `status`.
async fn readyz(hub: &TestHub, status: u16, what: &str) {
    for _ in 0..300 {
        if hub.get_status("/readyz").await == status {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("/readyz never answered {status}: {what}");
}

/// An instance started with another shard count on a stream key in use refuses to serve (each would
/// append where the other does not read, and notifications would be lost without an error) until
/// the other count's instances are gone and its layout key expired; then it keeps the key at its own
/// count.
#[actix_web::test]
async fn an_instance_of_another_shard_count_on_a_key_in_use_serves_nothing_until_the_others_stop() {
    let redis = RedisServer::start();
    let layout = format!("hub:shards:{KEY}");
    // What a one-stream instance on this key keeps, 1.5 s before it expires (that instance stopped).
    redis.command(&["SET", &layout, "1", "PX", "1500"]);
    let lease = Duration::from_millis(300);
    let hub = start_hub(Config {
        instance_lease: lease,
        ..config(&redis)
    });
    // Long enough for its read loops to start and its layout check to run (every lease/3), so the
    // 503 is the refusal and not a hub still starting.
    actix_web::rt::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        hub.get_status("/readyz").await,
        503,
        "refused while the other count holds the key"
    );
    let (status, answer) = hub.notify(&json!({ "title": "lost?" }).to_string()).await;
    assert_eq!(
        status, 503,
        "nothing appended where the others do not read: {answer}"
    );
    assert_eq!(entries(&redis), 0);
    readyz(&hub, 200, "it serves once the other count's key expired").await;
    assert_eq!(
        redis.command(&["GET", &layout]),
        "$1\r\n2\r\n",
        "and keeps its own count"
    );
    let (status, answer) = hub.notify(&json!({ "title": "now" }).to_string()).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(entries(&redis), 1);
}
