//! `HUB_STREAM_SHARDS=4` on a real Redis Cluster (three masters on loopback): the log is four
//! streams spread over the masters; targeted notifications and broadcasts reach exactly their
//! sockets once; a socket dropped on one instance resumes on the other with exactly what it
//! missed, across every shard, from its composite offset; an offset of another shard count opens a
//! fresh session; the history API answers 501.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::redis_cluster_nodes::RedisCluster;
use common::{event_args, redis_config, start_ready_hub, within, Joined, TestHub, WsClient};
use realtime_hub::config::Config;
use realtime_hub::protocol::offset::shard_of;
use serde_json::{json, Value};

const SHARDS: usize = 4;
const KEY: &str = "test:shards";

fn config(cluster: &RedisCluster) -> Config {
    Config {
        stream_shards: SHARDS,
        // Delivery, not heartbeats: the clients below do not read while others publish.
        ping_interval: Duration::from_secs(60),
        ..redis_config(&cluster.url(), KEY)
    }
}

/// One received notification: its title and the offset it carried.
#[derive(Debug, Clone)]
struct Got {
    title: String,
    offset: String,
}

fn notification(frame: &str) -> Got {
    let args = event_args(frame).unwrap_or_else(|| panic!("expected an event, got {frame}"));
    assert_eq!(args[0], "notification", "{frame}");
    Got {
        title: args[1]["title"].as_str().unwrap().to_owned(),
        offset: args[2].as_str().unwrap().to_owned(),
    }
}

/// The next `n` notifications, then nothing more within 400 ms.
async fn exactly(client: &mut WsClient, n: usize, who: &str) -> Vec<Got> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        got.push(notification(&client.recv_text_answering_pings().await));
    }
    let extra = client.recv_within(Duration::from_millis(400)).await;
    assert!(extra.is_none(), "{who} got more than {n}: {extra:?}");
    got
}

fn titles(got: &[Got]) -> Vec<String> {
    got.iter().map(|g| g.title.clone()).collect()
}

async fn notify(hub: &TestHub, body: Value) -> String {
    let (status, answer) = hub.notify(&body.to_string()).await;
    assert_eq!(status, 201, "{body} answered {answer}");
    answer["offset"].as_str().unwrap().to_owned()
}

/// Sends `40{pid, offset}` to `hub`: the notifications replayed before the CONNECT reply, the
/// reply's pid, and the connection.
async fn resume(hub: &TestHub, pid: &str, offset: &str) -> (Vec<Got>, String, WsClient) {
    let resumed = hub.resume(pid, offset).await;
    let replayed = resumed.replayed.iter().map(|f| notification(f)).collect();
    (replayed, resumed.pid, resumed.client)
}

fn assert_composite(offset: &str) {
    let ids: Vec<&str> = offset.split(',').collect();
    assert_eq!(
        ids.len(),
        SHARDS,
        "a composite offset has one id per shard: {offset}"
    );
    for id in ids {
        let (ms, seq) = id.split_once('-').unwrap_or_else(|| panic!("{offset}"));
        assert!(
            ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok(),
            "{offset}"
        );
    }
}

#[actix_web::test]
async fn four_shards_deliver_targeted_and_broadcast_once_and_resume_exactly_across_instances() {
    let cluster = RedisCluster::start();
    let a = start_ready_hub(config(&cluster)).await;
    let b = start_ready_hub(config(&cluster)).await;
    for hub in [&a, &b] {
        // Ready once every shard's loop reads (each loop counts itself in and out).
        assert_eq!(hub.metric("hub_ready").await, 1);
    }
    let mut clients: Vec<Joined> = Vec::new();
    for hub in [&a, &a, &a, &b, &b, &b] {
        let joined = hub.joined().await;
        assert_composite(&joined.offset);
        clients.push(joined);
    }

    // Three notifications to each socket (its sid room; sids spread over the shards), published
    // through both instances, and two broadcasts.
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for round in 0..3 {
        for (n, joined) in clients.iter().enumerate() {
            let title = format!("to-{n}-{round}");
            let via = if (n + round) % 2 == 0 { &a } else { &b };
            notify(via, json!({ "title": title, "to": joined.sid })).await;
            expected.entry(joined.sid.clone()).or_default().push(title);
        }
    }
    for (n, via) in [&a, &b].into_iter().enumerate() {
        let title = format!("all-{n}");
        notify(via, json!({ "title": title })).await;
        for joined in &clients {
            expected.get_mut(&joined.sid).unwrap().push(title.clone());
        }
    }
    let mut last_offsets = Vec::new();
    for joined in &mut clients {
        let got = within(
            Duration::from_secs(20),
            "every socket's notifications",
            exactly(&mut joined.client, 5, &joined.sid),
        )
        .await;
        let mine = &expected[&joined.sid];
        // Order is kept within a shard (a socket's own notifications share its room's shard),
        // not across shards: compare as sets, then the socket's own ones in order.
        assert_eq!(
            titles(&got).into_iter().collect::<BTreeSet<_>>(),
            mine.iter().cloned().collect::<BTreeSet<_>>(),
            "{} got exactly its own notifications and the broadcasts",
            joined.sid
        );
        let own: Vec<String> = titles(&got)
            .into_iter()
            .filter(|t| t.starts_with("to-"))
            .collect();
        assert_eq!(own, mine[..3], "in publish order");
        got.iter().for_each(|g| assert_composite(&g.offset));
        last_offsets.push(got.last().unwrap().offset.clone());
    }

    // The log is four streams, spread over more than one master; each notification once, on the
    // shard of its room (the documented FNV-1a), broadcasts on shard 0.
    let mut expected_lengths = [0i64; SHARDS];
    expected_lengths[0] += 2;
    for joined in &clients {
        expected_lengths[shard_of(&[joined.sid.as_str()], SHARDS)] += 3;
    }
    let mut owners = BTreeSet::new();
    let mut lengths = [0i64; SHARDS];
    for (shard, length) in lengths.iter_mut().enumerate() {
        let key = format!("{KEY}#{shard}");
        let node = cluster.owner(cluster.slot(&key));
        owners.insert(node);
        *length = cluster.nodes[node].command(&["XLEN", &key]).int();
    }
    assert!(owners.len() > 1, "the shards live on several masters");
    assert_eq!(
        lengths, expected_lengths,
        "each notification once, on its room's shard"
    );

    // Socket 0 (on a) drops; while it is away, its own notifications and a broadcast go on, on
    // every instance; it resumes on b from the offset of the last event it got.
    let mut dropped = clients.remove(0);
    dropped.client.close().await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let mut missed = Vec::new();
    for n in 0..4 {
        let title = format!("missed-{n}");
        let via = if n % 2 == 0 { &a } else { &b };
        notify(via, json!({ "title": title, "to": dropped.sid })).await;
        missed.push(title);
    }
    notify(&a, json!({ "title": "all-away" })).await;
    missed.push("all-away".into());
    let (replayed, pid, mut back) = within(
        Duration::from_secs(20),
        "the resume on the other instance",
        resume(&b, &dropped.pid, &last_offsets[0]),
    )
    .await;
    assert_eq!(pid, dropped.pid, "recovered");
    assert_eq!(
        titles(&replayed).into_iter().collect::<BTreeSet<_>>(),
        missed.iter().cloned().collect::<BTreeSet<_>>(),
        "exactly what it missed, from every shard"
    );
    let own: Vec<String> = titles(&replayed)
        .into_iter()
        .filter(|t| t.starts_with("missed-"))
        .collect();
    assert_eq!(own, missed[..4], "in publish order");
    replayed.iter().for_each(|g| assert_composite(&g.offset));
    // Live again, through either instance, once.
    notify(&a, json!({ "title": "after", "to": dropped.sid })).await;
    let after = exactly(&mut back, 1, "the resumed socket").await;
    assert_eq!(titles(&after), ["after"]);
    // The others got the broadcast once and nothing of socket 0's.
    for joined in &mut clients {
        let got = exactly(&mut joined.client, 1, &joined.sid).await;
        assert_eq!(titles(&got), ["all-away"], "{}", joined.sid);
    }

    // A second drop, resumed on the other instance again from the newest offset: nothing twice.
    back.close().await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let (replayed, pid, _again) = resume(&a, &dropped.pid, &after[0].offset).await;
    assert_eq!(pid, dropped.pid);
    assert!(
        replayed.is_empty(),
        "nothing missed, nothing replayed: {replayed:?}"
    );
}

#[actix_web::test]
async fn four_shards_refuse_offsets_of_another_shard_count_and_history() {
    let cluster = RedisCluster::start();
    let hub = start_ready_hub(config(&cluster)).await;
    let mut joined = hub.joined().await;
    let at = notify(&hub, json!({ "title": "one" })).await;
    exactly(&mut joined.client, 1, "the socket").await;
    joined.client.close().await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    // A one-stream offset (what a client of a one-stream hub holds) is malformed here: a fresh
    // session, never a guess at the shards.
    let (replayed, pid, _client) = resume(&hub, &joined.pid, &at).await;
    assert_ne!(pid, joined.pid, "a fresh session");
    assert!(replayed.is_empty());
    let (status, body, _) = hub.http("GET", "/notifications", "").await;
    assert_eq!(status, 501, "{body}");
    assert!(body.contains("HUB_STREAM_SHARDS"), "{body}");
}
