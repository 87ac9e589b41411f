//! Two hub instances on a real Redis Cluster (three masters on loopback, `REDIS_URL=redis+cluster://…`):
//! fan-out, recovery across instances, idempotent appends and session records claimed once, and the
//! stream's slot moved to another node while a publisher posts, with nothing acknowledged lost or
//! duplicated.

mod common;

use std::time::{Duration, Instant};

use common::redis_cluster_nodes::{ClusterNodes, RedisCluster, Reply};
use common::{
    event_offset, in_log_order, notification_offsets, redis_config, start_ready_hub, within,
    Joined, TestHub, WsClient, WAIT_TIMEOUT,
};
use futures_util::future::join;
use realtime_hub::config::Config;
use realtime_hub::protocol::{base64, msgpack};
use serde_json::{json, Value};

/// Redis tests publish while their clients are not reading: a heartbeat that never fires keeps the
/// test about delivery, not about pongs.
fn config(cluster: &RedisCluster, key: &str) -> Config {
    Config {
        ping_interval: Duration::from_secs(60),
        ..redis_config(&cluster.url(), key)
    }
}

/// Every notification after `expected`, and nothing more within 500 ms.
async fn receives_exactly(joined: &mut Joined, expected: &[String], who: &str) {
    assert_eq!(
        notification_offsets(joined, expected.len()).await,
        expected,
        "{who}"
    );
    let extra = joined.client.recv_within(Duration::from_millis(500)).await;
    assert!(extra.is_none(), "{who} got more: {extra:?}");
}

/// `POST /notifications/notify` `{"title"}` with an `Idempotency-Key`: (status, answer).
async fn post_keyed(hub: &TestHub, title: &str, key: &str) -> (u16, Value) {
    let send = async {
        let mut res = awc::Client::new()
            .post(hub.url("/notifications/notify"))
            .timeout(WAIT_TIMEOUT)
            .insert_header(("content-type", "application/json"))
            .insert_header(("Idempotency-Key", key))
            .send_body(json!({ "title": title }).to_string())
            .await
            .expect("notify request");
        let bytes = res.body().limit(1 << 20).await.expect("notify body");
        (
            res.status().as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    };
    within(
        WAIT_TIMEOUT,
        "the answer to POST /notifications/notify",
        send,
    )
    .await
}

/// Publishes with an idempotency key until it is acknowledged (201), retrying a 503 (refused, or
/// an unknown outcome: the key makes a retry safe) at most 300 times; returns the offset.
async fn publish_acknowledged(hub: &TestHub, title: &str, key: &str) -> (String, u32) {
    let mut refused = 0;
    loop {
        let (status, answer) = post_keyed(hub, title, key).await;
        if status == 201 {
            return (answer["offset"].as_str().unwrap().to_owned(), refused);
        }
        assert_eq!(status, 503, "{title}: {answer}");
        refused += 1;
        assert!(refused < 300, "{title} was never acknowledged: {answer}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stream's length, asked of the node that serves its slot.
fn stream_length(cluster: &RedisCluster, key: &str) -> i64 {
    let node = &cluster.nodes[cluster.owner(cluster.slot(key))];
    node.command(&["XLEN", key]).int()
}

/// Sends `40{pid, offset}` on a new connection to `hub`; returns the CONNECT reply's sid, the
/// offsets of the notifications replayed before it, and the connection (open: dropping it ends the
/// session).
async fn resume(hub: &TestHub, pid: &str, offset: &str) -> (String, Vec<String>, WsClient) {
    let resumed = hub.resume(pid, offset).await;
    let replayed = resumed.replayed.iter().map(|f| event_offset(f)).collect();
    (resumed.sid, replayed, resumed.client)
}

async fn publish_ten(hub: &TestHub, name: &str) -> Vec<String> {
    let mut offsets = Vec::new();
    for n in 0..10 {
        offsets.push(hub.publish(&format!("{name}{n}")).await);
    }
    offsets
}

#[actix_web::test]
async fn two_instances_on_a_cluster_deliver_every_notification_to_every_client_once_in_order() {
    let cluster = RedisCluster::start();
    let a = start_ready_hub(config(&cluster, "test:cluster-fanout")).await;
    let b = start_ready_hub(config(&cluster, "test:cluster-fanout")).await;
    let mut clients = Vec::new();
    for hub in [&a, &a, &b, &b] {
        clients.push(hub.joined().await);
    }
    let (from_a, from_b) = within(
        Duration::from_secs(60),
        "20 notifications to be published",
        join(publish_ten(&a, "a"), publish_ten(&b, "b")),
    )
    .await;
    let expected = in_log_order([from_a, from_b].concat());
    for (i, client) in clients.iter_mut().enumerate() {
        receives_exactly(client, &expected, &format!("client {i}")).await;
    }
    assert_eq!(stream_length(&cluster, "test:cluster-fanout"), 20);
}

#[actix_web::test]
async fn a_client_recovers_on_the_other_instance_exactly_what_it_missed_on_a_cluster() {
    let cluster = RedisCluster::start();
    let a = start_ready_hub(config(&cluster, "test:cluster-recovery")).await;
    let b = start_ready_hub(config(&cluster, "test:cluster-recovery")).await;
    let mut joined = a.joined().await;
    let first = a.publish("seen").await;
    assert_eq!(
        notification_offsets(&mut joined, 1).await,
        std::slice::from_ref(&first)
    );
    joined.client.close().await;
    let mut missed = Vec::new();
    for n in 0..6 {
        let hub = if n % 2 == 0 { &a } else { &b };
        missed.push(hub.publish(&format!("missed{n}")).await);
    }
    // The record is written when the session drops (RELEASE: the record and the live copy, one slot).
    let record = format!("sio:session:{}", joined.pid);
    let node = &cluster.nodes[cluster.owner(cluster.slot(&record))];
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.command(&["EXISTS", &record]).int() == 0 {
        assert!(
            Instant::now() < deadline,
            "no session record after the drop"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let (sid, replayed, _client) = resume(&b, &joined.pid, &first).await;
    assert_eq!(sid, joined.sid, "recovered: the same session");
    assert_eq!(replayed, missed, "exactly what it missed, in order");
}

#[actix_web::test]
async fn the_same_idempotency_key_twice_appends_once_on_a_cluster() {
    let cluster = RedisCluster::start();
    let a = start_ready_hub(config(&cluster, "test:cluster-once")).await;
    let b = start_ready_hub(config(&cluster, "test:cluster-once")).await;
    let mut client = b.joined().await;
    let (first, second) = (
        post_keyed(&a, "once", "key-1").await,
        post_keyed(&b, "once", "key-1").await,
    );
    assert_eq!(first.0, 201, "{first:?}");
    assert_eq!(
        second.0, 201,
        "the retry is answered as the first: {second:?}"
    );
    assert_eq!(first.1["offset"], second.1["offset"], "one entry");
    let (conflict, answer) = post_keyed(&a, "another body", "key-1").await;
    assert_eq!(conflict, 422, "{answer}");
    receives_exactly(
        &mut client,
        &[first.1["offset"].as_str().unwrap().to_owned()],
        "the client",
    )
    .await;
    assert_eq!(stream_length(&cluster, "test:cluster-once"), 1);
    // The idempotency record sits on the stream's slot (the script's two keys: one slot).
    let record = "hub:idempotency:{test:cluster-once}:key-1";
    assert_eq!(cluster.slot(record), cluster.slot("test:cluster-once"));
    let node = &cluster.nodes[cluster.owner(cluster.slot(record))];
    assert_eq!(node.command(&["EXISTS", record]).int(), 1);
}

#[actix_web::test]
async fn a_session_record_is_claimed_once_by_two_instances_racing_for_it_on_a_cluster() {
    let cluster = RedisCluster::start();
    let a = start_ready_hub(config(&cluster, "test:cluster-claim")).await;
    let b = start_ready_hub(config(&cluster, "test:cluster-claim")).await;
    let mut joined = a.joined().await;
    let first = a.publish("seen").await;
    assert_eq!(
        notification_offsets(&mut joined, 1).await,
        std::slice::from_ref(&first)
    );
    // While the session lives, its copy for crash recovery sits on its record's slot.
    let live = format!("hub:live:{{sio:session:{}}}", joined.pid);
    let node = &cluster.nodes[cluster.owner(cluster.slot(&live))];
    assert_eq!(
        cluster.slot(&live),
        cluster.slot(&format!("sio:session:{}", joined.pid))
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.command(&["EXISTS", &live]).int() == 0 {
        assert!(
            Instant::now() < deadline,
            "no live copy while the session lives"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    joined.client.close().await;
    let missed = b.publish("missed").await;
    let record = format!("sio:session:{}", joined.pid);
    while node.command(&["EXISTS", &record]).int() == 0 {
        assert!(
            Instant::now() < deadline,
            "no session record after the drop"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let ((sid_a, replayed_a, _a), (sid_b, replayed_b, _b)) = within(
        Duration::from_secs(30),
        "two resumes",
        join(
            resume(&a, &joined.pid, &first),
            resume(&b, &joined.pid, &first),
        ),
    )
    .await;
    let recovered: Vec<_> = [(&sid_a, &replayed_a), (&sid_b, &replayed_b)]
        .into_iter()
        .filter(|(sid, _)| **sid == joined.sid)
        .collect();
    assert_eq!(
        recovered.len(),
        1,
        "exactly one instance resumes the session: {sid_a} {sid_b}"
    );
    assert_eq!(recovered[0].1, &vec![missed], "with what it missed");
    assert_eq!(
        node.command(&["EXISTS", &record]).int(),
        0,
        "taken, and not written back while the resumed session lives"
    );
}

#[actix_web::test]
async fn moving_the_streams_slot_while_publishing_loses_and_duplicates_nothing_acknowledged() {
    let key = "test:cluster-move";
    let cluster = RedisCluster::start();
    let a = start_ready_hub(config(&cluster, key)).await;
    let b = start_ready_hub(config(&cluster, key)).await;
    let mut clients = Vec::new();
    for hub in [&a, &a, &b, &b] {
        clients.push(hub.joined().await);
    }
    // A client that drops before the move and resumes after it, on the other instance.
    let mut dropped = a.joined().await;
    let slot = cluster.slot(key);
    let from = cluster.owner(slot);
    let to = (from + 1) % 3;
    let started = Instant::now();
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut resume_from = None;
    let mut mover: Option<std::thread::JoinHandle<()>> = None;
    let mut after_move = 0;
    let mut during_move = 0;
    for n in 0..3000 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "publishing across the move took over 120 s"
        );
        let hub = if n % 2 == 0 { &a } else { &b };
        let moving = mover.as_ref().is_some_and(|m| !m.is_finished());
        let (offset, retries) = publish_acknowledged(hub, &format!("n{n}"), &format!("k{n}")).await;
        if moving {
            during_move += 1;
        }
        acknowledged.push(offset);
        refused += retries;
        if n == 10 {
            resume_from = Some(notification_offsets(&mut dropped, 11).await.pop().unwrap());
            dropped.client.close().await;
        }
        if n == 20 {
            // The move runs beside the publisher: each stage (MIGRATING with the key still on the
            // source, the key on the target while the slot is still the source's, the new owner)
            // lasts 300 ms, so appends and the read loops meet each.
            let nodes: ClusterNodes = (*cluster).clone();
            mover = Some(std::thread::spawn(move || {
                nodes.move_slot(slot, from, to, Duration::from_millis(300));
            }));
        }
        if mover.as_ref().is_some_and(|m| m.is_finished()) {
            after_move += 1;
            if after_move == 20 {
                break;
            }
        }
    }
    mover
        .expect("the move started")
        .join()
        .expect("the slot moved");
    assert_eq!(after_move, 20, "20 notifications published after the move");
    // The move has two 300 ms stages; the publisher, a few ms a post, posts in them.
    assert!(
        during_move > 0,
        "no notification was published while the slot moved"
    );
    eprintln!(
        "{during_move} acknowledged while the slot moved, {refused} publishes refused and retried"
    );
    assert_eq!(
        cluster.owner(slot),
        to,
        "the slot is served by its new node"
    );
    assert_eq!(
        cluster.nodes[to].command(&["EXISTS", key]).int(),
        1,
        "the stream is on the new node"
    );
    let expected = in_log_order(acknowledged.clone());
    assert_eq!(expected, acknowledged, "offsets increase across the move");
    for (i, client) in clients.iter_mut().enumerate() {
        receives_exactly(client, &expected, &format!("client {i}")).await;
    }
    assert_eq!(
        stream_length(&cluster, key),
        acknowledged.len() as i64,
        "no entry but the acknowledged ones ({refused} publishes refused and retried)"
    );
    // The epoch moved with the stream: a session dropped before the move resumes exactly.
    let resume_from = resume_from.unwrap();
    let (sid, replayed, _client) = resume(&b, &dropped.pid, &resume_from).await;
    assert_eq!(sid, dropped.sid, "recovered across the move");
    assert_eq!(replayed, expected[11..], "exactly what it missed");
    for hub in [&a, &b] {
        hub.wait_ready().await;
    }
}

#[actix_web::test]
async fn a_stream_key_no_hash_tag_can_join_is_refused_on_a_cluster_at_start() {
    // `a}b` is hashed whole and holds a `}`: no key of the hub's can share its slot. Refused before
    // any connection (none is listening at port 1).
    let config = Config {
        redis_url: Some("redis+cluster://127.0.0.1:1".into()),
        stream_key: "a}b".into(),
        ..common::test_config()
    };
    let err = realtime_hub::start(&config)
        .err()
        .expect("the hub refuses to start");
    assert!(
        err.to_string()
            .contains("cannot be used on a Redis Cluster"),
        "{err}"
    );
    // The same key on one server is fine: slots do not matter there.
    let config = Config {
        redis_url: Some("redis://127.0.0.1:1".into()),
        ..config
    };
    assert!(realtime_hub::start(&config).is_ok());
}

#[actix_web::test]
async fn a_live_copy_resumes_only_once_its_owners_lease_on_another_slot_expired_on_a_cluster() {
    let key = "test:cluster-lease";
    let cluster = RedisCluster::start();
    // A short lease: a resume of a live session waits at most that long before a fresh one.
    let hub = start_ready_hub(Config {
        instance_lease: Duration::from_millis(500),
        ..config(&cluster, key)
    })
    .await;
    let offset = hub.publish("before").await;
    let stream_node = &cluster.nodes[cluster.owner(cluster.slot(key))];
    let Reply::Array(groups) = stream_node.command(&["XINFO", "GROUPS", key]) else {
        panic!("the stream has groups");
    };
    let epoch = groups
        .iter()
        .find_map(|group| match group {
            Reply::Array(fields) => fields[1].text().strip_prefix("hub-epoch:"),
            _ => None,
        })
        .expect("an epoch group")
        .to_owned();
    // A live copy as an instance writes it, planted on its slot's node; its owner's lease (or
    // none) on the lease key's own node.
    let plant = |n: u32, owner: &str| {
        let record = json!({"sid": format!("sid{n}"), "pid": format!("pid{n}"),
                            "rooms": [format!("sid{n}")], "data": {}, "epoch": epoch});
        let live = format!("hub:live:{{sio:session:pid{n}}}");
        let node = &cluster.nodes[cluster.owner(cluster.slot(&live))];
        let encoded = base64::encode(&msgpack::encode(&record));
        let written = node.command(&["HSET", &live, "owner", owner, "record", &encoded]);
        assert_eq!(written, Reply::Int(2));
        node.command(&["PEXPIRE", &live, "60000"]);
    };
    let lease = "hub:instance:alive";
    let lease_node = &cluster.nodes[cluster.owner(cluster.slot(lease))];
    lease_node.command(&["SET", lease, "1", "PX", "60000"]);
    assert_ne!(
        cluster.slot(lease),
        cluster.slot("sio:session:pid1"),
        "the lease is on a slot no claim script may touch"
    );
    plant(1, "alive");
    let (sid, _, _c) = resume(&hub, "pid1", &offset).await;
    assert_ne!(
        sid, "sid1",
        "not resumable while its instance's lease lives"
    );
    plant(2, "dead");
    let missed = hub.publish("missed").await;
    let (sid, replayed, _c) = resume(&hub, "pid2", &offset).await;
    assert_eq!(sid, "sid2", "its owner died: resumed");
    assert_eq!(replayed, [missed]);
}
