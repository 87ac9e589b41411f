//! The log's identity (its epoch) and the session records, on a real Redis: a resume is exact or a
//! fresh session, whatever happened to the stream, and a session is resumed once, never while live.

mod common;

use std::time::Duration;

use awc::ws::CloseCode;
use common::redis_server::{bulk, RedisServer};
use common::{
    event_args, event_offset, redis_config, start_hub, start_ready_hub, Joined, Received, TestHub,
    WsClient,
};
use realtime_hub::config::Config;
use realtime_hub::protocol::{base64, msgpack};
use serde_json::{json, Value};

/// A short lease, so a resume of a live session gives up well within the test's receive timeout.
const LEASE: Duration = Duration::from_millis(500);

fn config(redis: &RedisServer, key: &str) -> Config {
    Config {
        ping_interval: Duration::from_secs(60),
        instance_lease: LEASE,
        ..redis_config(&redis.url(), key)
    }
}

/// The next notification's offset (the event's last argument).
async fn next_offset(client: &mut WsClient) -> String {
    let frame = client.recv_text_answering_pings().await;
    let args = event_args(&frame).unwrap_or_else(|| panic!("expected an event, got {frame}"));
    assert_eq!(args[0], "notification", "{frame}");
    args[2].as_str().unwrap().to_owned()
}

/// Sends `40{pid, offset}` on a new connection; returns it, the CONNECT reply's ids, and the
/// offsets of the notifications replayed before that reply.
async fn resume(
    hub: &TestHub,
    pid: &str,
    offset: &str,
) -> (WsClient, (String, String), Vec<String>) {
    let resumed = hub.resume(pid, offset).await;
    let replayed = resumed.replayed.iter().map(|f| event_offset(f)).collect();
    (resumed.client, (resumed.sid, resumed.pid), replayed)
}

/// The session record at `key` (base64 msgpack), decoded.
fn record_at(redis: &RedisServer, key: &str) -> Option<Value> {
    let encoded = bulk(&redis.command(&["GET", key]))?;
    Some(msgpack::decode(&base64::decode(&encoded).unwrap()).unwrap())
}

/// Waits until the record at `key` exists (a dropped session's is written as it closes).
async fn wait_record(redis: &RedisServer, key: &str) -> Value {
    for _ in 0..250 {
        if let Some(record) = record_at(redis, key) {
            return record;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no session record at {key} within 5 s");
}

/// Waits until the hub closes `client` with the close code 1012 (the log was replaced).
async fn expect_log_replaced(client: &mut WsClient) {
    assert_eq!(
        client.expect_closed().await,
        Received::Close(Some(CloseCode::Restart)),
        "the client is disconnected so it reconnects and learns it did not recover"
    );
}

/// A client that received one notification and dropped; returns it with that notification's offset.
async fn dropped_after_one(hub: &TestHub) -> (Joined, String) {
    let mut joined = hub.joined().await;
    let first = hub.publish("seen").await;
    assert_eq!(next_offset(&mut joined.client).await, first);
    joined.client.close().await;
    (joined, first)
}

#[actix_web::test]
async fn resume_after_the_stream_was_deleted_is_a_fresh_session_not_a_partial_replay() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:del")).await;
    let (joined, first) = dropped_after_one(&hub).await;
    hub.publish("missed, then deleted").await;
    redis.command(&["DEL", "test:del"]);
    hub.publish("after the delete").await;

    let (_client, ids, replayed) = resume(&hub, &joined.pid, &first).await;
    assert_ne!(
        ids,
        (joined.sid, joined.pid),
        "recovered=false: a fresh session"
    );
    assert!(replayed.is_empty(), "nothing replayed: {replayed:?}");
}

#[actix_web::test]
async fn clients_connected_when_the_stream_is_flushed_are_disconnected_and_resume_as_fresh_sessions(
) {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:flush")).await;
    let mut joined = hub.joined().await;
    let seen = hub.publish("seen").await;
    assert_eq!(next_offset(&mut joined.client).await, seen);
    redis.command(&["FLUSHALL"]);
    expect_log_replaced(&mut joined.client).await;
    let (_client, ids, replayed) = resume(&hub, &joined.pid, &seen).await;
    assert_ne!(ids, (joined.sid, joined.pid), "recovered=false");
    assert!(replayed.is_empty());
    assert_eq!(
        hub.get_status("/metrics").await,
        200,
        "the hub keeps serving"
    );
}

#[actix_web::test]
async fn clients_connected_when_redis_restarts_without_its_data_are_disconnected_and_resume_as_fresh_sessions(
) {
    let mut redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:restart")).await;
    let mut joined = hub.joined().await;
    let seen = hub.publish("seen").await;
    assert_eq!(next_offset(&mut joined.client).await, seen);
    redis.stop();
    redis.restart();
    expect_log_replaced(&mut joined.client).await;
    hub.wait_ready().await;
    let (_client, ids, _) = resume(&hub, &joined.pid, &seen).await;
    assert_ne!(ids, (joined.sid, joined.pid), "recovered=false");
    // A fresh client on the new log is served as usual.
    let mut fresh = hub.joined().await;
    let after = hub.publish("after").await;
    assert_eq!(next_offset(&mut fresh.client).await, after);
}

#[actix_web::test]
async fn a_stream_that_went_back_in_history_gets_a_new_epoch_and_its_clients_are_disconnected() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:back")).await;
    let mut joined = hub.joined().await;
    let kept = hub.publish("kept").await;
    assert_eq!(next_offset(&mut joined.client).await, kept);
    let lost = hub.publish("lost").await;
    assert_eq!(next_offset(&mut joined.client).await, lost);
    // A replica promoted without the newest entry: the same stream, epoch group included, one entry
    // short (its last-generated-id goes back).
    let groups = redis.command(&["XINFO", "GROUPS", "test:back"]);
    let epoch = groups
        .split("\r\n")
        .find(|line| line.starts_with("hub-epoch:"))
        .unwrap_or_else(|| panic!("the stream has an epoch group: {groups}"))
        .to_owned();
    let replace = "redis.call('DEL', KEYS[1]) \
                   redis.call('XADD', KEYS[1], ARGV[1], 'uid', 'x', 'nsp', '/', 'type', '3', 'data', '{}') \
                   redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[2], '$')";
    redis.command(&["EVAL", replace, "1", "test:back", &kept, &epoch]);
    expect_log_replaced(&mut joined.client).await;
    let groups = redis.command(&["XINFO", "GROUPS", "test:back"]);
    assert!(
        !groups.contains(&epoch),
        "the old epoch is replaced: {groups}"
    );
    let (_client, ids, _) = resume(&hub, &joined.pid, &kept).await;
    assert_ne!(ids, (joined.sid, joined.pid), "recovered=false");
}

/// The name of `stream`'s epoch group (`hub-epoch:<epoch>`), read straight from Redis.
fn epoch_group(redis: &RedisServer, stream: &str) -> Vec<String> {
    redis
        .command(&["XINFO", "GROUPS", stream])
        .split("\r\n")
        .filter(|line| line.starts_with("hub-epoch:"))
        .map(str::to_owned)
        .collect()
}

#[actix_web::test]
async fn a_failover_that_lost_the_newest_entries_gives_one_new_epoch_and_no_partial_replay_even_after_new_appends(
) {
    // What a failover without HUB_REDIS_MIN_REPLICAS can do: the promoted replica lacks the
    // newest entry, and a publisher appends to it before the read loops reconnect, so its newest id
    // is past the lost one (the stream did not "go back").
    let mut redis = RedisServer::start_persistent();
    let a = start_ready_hub(config(&redis, "test:tail")).await;
    let b = start_ready_hub(config(&redis, "test:tail")).await;
    let mut live = a.joined().await;
    let mut dropped = b.joined().await;
    let kept = a.publish("kept").await;
    assert_eq!(next_offset(&mut live.client).await, kept);
    assert_eq!(next_offset(&mut dropped.client).await, kept);
    dropped.client.close().await;
    let lost = a.publish("lost").await;
    assert_eq!(next_offset(&mut live.client).await, lost);
    let before = epoch_group(&redis, "test:tail");
    assert_eq!(before.len(), 1, "one epoch: {before:?}");

    redis.stop();
    redis.restart();
    let promote = "redis.call('DEL', KEYS[1]) \
                   redis.call('XADD', KEYS[1], ARGV[1], 'uid', 'x', 'nsp', '/', 'type', '3', 'data', '{}') \
                   redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[2], '$') \
                   return redis.call('XADD', KEYS[1], '*', 'uid', 'x', 'nsp', '/', 'type', '3', 'data', ARGV[3])";
    let appended = redis.command(&[
        "EVAL",
        promote,
        "1",
        "test:tail",
        &kept,
        &before[0],
        r#"{"packet":{"type":2,"data":["notification",{"title":"after the failover"}],"nsp":"/"}}"#,
    ]);
    assert!(appended.starts_with('$'), "appended: {appended}");

    // The resume from before the lost entry must not replay "after the failover" as if it were
    // all that was missed: a fresh session, or (if the read loop notices first) closed to
    // reconnect as one.
    let mut client = b.send_resume(&dropped.pid, &kept).await;
    match client.recv().await {
        Received::Text(frame) if frame.starts_with("40") => {
            let reply: Value = serde_json::from_str(&frame[2..]).unwrap();
            assert_ne!(
                reply["pid"],
                dropped.pid.as_str(),
                "recovered=false: {frame}"
            );
        }
        Received::Text(frame) => panic!("never a partial replay, got {frame}"),
        Received::Close(Some(CloseCode::Restart)) => {}
        other => panic!("a fresh session or a close to reconnect, got {other:?}"),
    }
    expect_log_replaced(&mut live.client).await;

    // Both instances noticed; one replaced the epoch, the other adopted it: replaced twice, the
    // instance left on the first replacement would disconnect its clients again at its next check.
    b.wait_ready().await;
    a.wait_ready().await;
    let after = epoch_group(&redis, "test:tail");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before);
    let mut fresh = [a.joined().await, b.joined().await];
    for joined in &mut fresh {
        assert_eq!(
            joined.client.recv_within(Duration::from_millis(2500)).await,
            None,
            "a client connected after the failover is not disconnected again"
        );
    }
    assert_eq!(epoch_group(&redis, "test:tail"), after, "replaced once");
}

#[actix_web::test]
async fn a_client_resuming_while_redis_is_unreachable_recovers_once_it_answers_within_the_claim_wait(
) {
    // A failover's few seconds: a client that reconnects meanwhile keeps its session.
    let mut redis = RedisServer::start_persistent();
    let hub = start_ready_hub(Config {
        instance_lease: Duration::from_secs(4),
        ..config(&redis, "test:away")
    })
    .await;
    let (joined, first) = dropped_after_one(&hub).await;
    wait_record(&redis, &format!("sio:session:{}", joined.pid)).await;
    let missed = hub.publish("missed").await;
    redis.stop();
    let back = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        redis.restart();
        redis
    });
    let (_client, ids, replayed) = resume(&hub, &joined.pid, &first).await;
    let _redis = back.join().expect("redis restarted");
    assert_eq!(ids, (joined.sid, joined.pid), "recovered=true");
    assert_eq!(replayed, [missed]);
}

#[actix_web::test]
async fn a_live_session_is_not_resumable_and_a_dropped_one_is_resumed_once() {
    let redis = RedisServer::start();
    let a = start_ready_hub(config(&redis, "test:clone")).await;
    let b = start_ready_hub(config(&redis, "test:clone")).await;
    let mut live = a.joined().await;
    // Another connection with the live session's pid, on either instance: a fresh session.
    for hub in [&a, &b] {
        let (_clone, ids, _) = resume(hub, &live.pid, &live.offset).await;
        assert_ne!(ids.0, live.sid, "a live session is never cloned");
        assert_ne!(ids.1, live.pid);
    }
    assert_eq!(
        redis.command(&["GETDEL", &format!("sio:session:{}", live.pid)]),
        "$-1\r\n",
        "a Node peer's GETDEL finds no record while the session is live"
    );
    let seen = a.publish("still live").await;
    assert_eq!(
        next_offset(&mut live.client).await,
        seen,
        "the original keeps its session"
    );

    live.client.close().await;
    let missed = a.publish("missed").await;
    let (_resumed, ids, replayed) = resume(&b, &live.pid, &seen).await;
    assert_eq!(ids, (live.sid.clone(), live.pid.clone()), "recovered");
    assert_eq!(replayed, [missed]);
    let (_third, ids, _) = resume(&a, &live.pid, &seen).await;
    assert_ne!(
        ids.0, live.sid,
        "resumed once: a third connection gets a fresh session"
    );
}

/// A live copy as an instance writes it, owned by `owner`.
fn plant_live_copy(redis: &RedisServer, owner: &str, record: &Value) {
    let encoded = base64::encode(&msgpack::encode(record));
    let key = format!(
        "hub:live:{{sio:session:{}}}",
        record["pid"].as_str().unwrap()
    );
    redis.command(&["HSET", &key, "owner", owner, "record", &encoded]);
    redis.command(&["PEXPIRE", &key, "60000"]);
}

#[actix_web::test]
async fn a_session_live_on_a_dead_instance_resumes_once_its_lease_expired_and_not_before() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:lease")).await;
    let offset = hub.publish("before").await;
    let epoch = {
        let groups = redis.command(&["XINFO", "GROUPS", "test:lease"]);
        groups
            .split("\r\n")
            .find_map(|line| line.strip_prefix("hub-epoch:"))
            .unwrap()
            .to_owned()
    };
    let record = |n: u32| {
        json!({"sid": format!("sid{n}"), "pid": format!("pid{n}"), "rooms": [format!("sid{n}")],
               "data": {}, "epoch": epoch})
    };
    // Its owner's lease is alive: the owner lives, the session is live there.
    redis.command(&["SET", "hub:instance:alive", "1", "PX", "60000"]);
    plant_live_copy(&redis, "alive", &record(1));
    let (_c, ids, _) = resume(&hub, "pid1", &offset).await;
    assert_ne!(ids.0, "sid1", "not resumable while its instance lives");
    // No lease: its owner died (SIGKILL); the session resumes, once.
    plant_live_copy(&redis, "dead", &record(2));
    let missed = hub.publish("missed").await;
    let (_c, ids, replayed) = resume(&hub, "pid2", &offset).await;
    assert_eq!(ids, ("sid2".to_owned(), "pid2".to_owned()), "recovered");
    assert_eq!(replayed, [missed]);
    let (_c, ids, _) = resume(&hub, "pid2", &offset).await;
    assert_ne!(ids.0, "sid2", "once");
}

#[actix_web::test]
async fn a_node_peers_record_resumed_and_dropped_again_keeps_its_rooms_and_data() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:node-record")).await;
    let offset = hub.publish("seen on node").await;
    // As the adapter's persistSession writes it: no epoch, a room, data.
    let node =
        json!({"sid": "nsid", "pid": "npid", "rooms": ["nsid", "ops"], "data": {"user": "alice"}});
    let encoded = base64::encode(&msgpack::encode(&node));
    redis.command(&["SET", "sio:session:npid", &encoded, "PX", "60000"]);
    let (mut client, ids, _) = resume(&hub, "npid", &offset).await;
    assert_eq!(ids, ("nsid".to_owned(), "npid".to_owned()), "recovered");
    client.close().await;
    let written = wait_record(&redis, "sio:session:npid").await;
    assert_eq!(written["rooms"], json!(["nsid", "ops"]));
    assert_eq!(written["data"], json!({"user": "alice"}));
    assert_eq!(
        (written["sid"].as_str(), written["pid"].as_str()),
        (Some("nsid"), Some("npid"))
    );
    assert!(
        written["epoch"].is_string(),
        "with the log's epoch: {written}"
    );
}

/// Appends an entry as a Node peer's adapter writes it.
fn node_entry(redis: &RedisServer, key: &str, data: &str) {
    redis.command(&[
        "XADD",
        key,
        "*",
        "uid",
        "0123456789abcdef",
        "nsp",
        "/",
        "type",
        "3",
        "data",
        data,
    ]);
}

#[actix_web::test]
async fn resume_replays_a_node_peers_entries_addressed_to_the_socket_leaves_out_volatile_ones_and_refuses_undecodable_ones(
) {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:undeliverable")).await;
    let plain = |opts: &str| {
        format!(
            r#"{{"packet":{{"type":2,"data":["notification",{{"title":"n"}}]}},"opts":{opts}}}"#
        )
    };
    // `{sid}` stands for the dropped socket's id. Replayed as the adapter's restoreSession replays
    // them (binary ones too: see tests/interop/kinds.test.mjs); volatile ones are left out.
    let cases = [
        (
            "except another room",
            plain(r#"{"rooms":[],"except":["other"],"flags":{}}"#),
            true,
        ),
        (
            "volatile",
            plain(r#"{"rooms":[],"except":[],"flags":{"volatile":true}}"#),
            false,
        ),
        (
            "to the socket's own room",
            plain(r#"{"rooms":["{sid}"],"except":[],"flags":{}}"#),
            true,
        ),
    ];
    for (what, data, replayed_too) in cases {
        let (joined, first) = dropped_after_one(&hub).await;
        let reply = redis.command(&[
            "XADD",
            "test:undeliverable",
            "*",
            "uid",
            "0123456789abcdef",
            "nsp",
            "/",
            "type",
            "3",
            "data",
            &data.replace("{sid}", &joined.sid),
        ]);
        let entry = bulk(&reply).expect("XADD answers the entry id");
        let missed = hub.publish("missed").await;
        let (_client, ids, replayed) = resume(&hub, &joined.pid, &first).await;
        assert_eq!(
            ids,
            (joined.sid.clone(), joined.pid.clone()),
            "{what}: recovered"
        );
        let expected = if replayed_too {
            vec![entry, missed]
        } else {
            vec![missed]
        };
        assert_eq!(replayed, expected, "{what}");
    }
    // What the adapter's restoreSession fails on too: a broadcast that does not decode, a packet
    // addressed to the socket that is not an event. A fresh session, never a gap.
    for (what, data) in [
        ("malformed", "{broken".to_owned()),
        (
            "not an event",
            r#"{"packet":{"type":3,"data":["x"]},"opts":{"rooms":["{sid}"],"except":[],"flags":{}}}"#
                .to_owned(),
        ),
    ] {
        let (joined, first) = dropped_after_one(&hub).await;
        node_entry(
            &redis,
            "test:undeliverable",
            &data.replace("{sid}", &joined.sid),
        );
        let (_client, ids, _) = resume(&hub, &joined.pid, &first).await;
        assert_ne!(
            ids,
            (joined.sid.clone(), joined.pid.clone()),
            "{what}: never recovered with a gap"
        );
    }
    // Entries not for the socket (by the adapter's rule) are no gap: the resume succeeds without them.
    let (joined, first) = dropped_after_one(&hub).await;
    node_entry(
        &redis,
        "test:undeliverable",
        &plain(r#"{"rooms":["elsewhere"],"except":[],"flags":{}}"#),
    );
    let except_it = format!(r#"{{"rooms":[],"except":["{}"],"flags":{{}}}}"#, joined.sid);
    node_entry(&redis, "test:undeliverable", &plain(&except_it));
    let missed = hub.publish("missed").await;
    let (_client, ids, replayed) = resume(&hub, &joined.pid, &first).await;
    assert_eq!(ids, (joined.sid, joined.pid), "recovered");
    assert_eq!(replayed, [missed]);
}

#[actix_web::test]
async fn a_replay_longer_than_a_batch_across_entries_not_for_the_socket_is_complete() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:long")).await;
    let (joined, first) = dropped_after_one(&hub).await;
    // 700 entries as a Node peer writes them: every tenth to a room the socket is not in (read, not
    // delivered), the others to everyone. A batch of 500 read holds fewer than 500 to deliver.
    let write = r#"
        local ids = {}
        for n = 1, 700 do
          local opts = '{"rooms":[],"except":[],"flags":{}}'
          if n % 10 == 0 then opts = '{"rooms":["elsewhere"],"except":[],"flags":{}}' end
          local data = '{"packet":{"type":2,"data":["notification",{"n":' .. n .. '}]},"opts":' .. opts .. '}'
          local id = redis.call('XADD', KEYS[1], '*', 'uid', 'node', 'nsp', '/', 'type', '3', 'data', data)
          if n % 10 ~= 0 then table.insert(ids, id) end
        end
        return ids"#;
    let reply = redis.command(&["EVAL", write, "1", "test:long"]);
    let expected: Vec<String> = reply
        .split("\r\n")
        .filter(|line| line.contains('-') && !line.starts_with(['*', '$']))
        .map(str::to_owned)
        .collect();
    assert_eq!(expected.len(), 630);
    let (_client, ids, replayed) = resume(&hub, &joined.pid, &first).await;
    assert_eq!(ids, (joined.sid, joined.pid), "recovered");
    assert_eq!(
        replayed, expected,
        "every entry for the socket, none missing"
    );
}

#[actix_web::test]
async fn a_live_session_on_the_embedded_log_is_not_cloned_and_resumes_once_dropped() {
    let hub = start_hub(Config {
        ping_interval: Duration::from_secs(60),
        instance_lease: LEASE,
        ..common::test_config()
    });
    let mut live = hub.joined().await;
    let (_clone, ids, _) = resume(&hub, &live.pid, &live.offset).await;
    assert_ne!(ids.0, live.sid, "a live session is never cloned");
    live.client.close().await;
    let (_resumed, ids, _) = resume(&hub, &live.pid, &live.offset).await;
    assert_eq!(
        ids,
        (live.sid.clone(), live.pid.clone()),
        "recovered once dropped"
    );
    let (_third, ids, _) = resume(&hub, &live.pid, &live.offset).await;
    assert_ne!(ids.0, live.sid, "and only once");
}

#[actix_web::test]
async fn a_session_opened_while_the_epoch_was_unknown_is_never_resumed_across_a_replaced_log() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:noepoch")).await;
    hub.publish("before").await;
    // Redis frozen through the CONNECT: the log's tip and epoch cannot be read (2 s timeout).
    redis.signal("STOP");
    let (mut client, _) = hub.eio().await;
    client.send("40").await;
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    redis.signal("CONT");
    let (sid, pid) = client.recv_connect().await;
    let first = hub.publish("seen").await;
    assert_eq!(
        next_offset(&mut client).await,
        first,
        "no offset event: the next is the publish"
    );
    client.close().await;
    hub.publish("missed, then deleted").await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        record_at(&redis, &format!("sio:session:{pid}")),
        None,
        "a session whose epoch is unknown is not recorded: its offsets could not be checked"
    );
    redis.command(&["DEL", "test:noepoch"]);
    hub.publish("after the delete").await;
    let (_client, ids, replayed) = resume(&hub, &pid, &first).await;
    assert_ne!(ids, (sid, pid), "recovered=false: a fresh session");
    assert!(replayed.is_empty(), "nothing replayed: {replayed:?}");
}

#[actix_web::test]
async fn a_resume_keeps_no_live_copy_until_its_replay_is_written() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:midreplay")).await;
    let (joined, first) = dropped_after_one(&hub).await;
    // More than the replay's high water mark (256 KiB), so the replay waits for the client.
    let body = "x".repeat(8 * 1024);
    for n in 0..64 {
        let (status, answer) = hub
            .notify(&json!({ "title": format!("missed {n}"), "body": body }).to_string())
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    let (mut client, _) = hub.eio().await;
    client
        .send(&format!(
            "40{}",
            json!({ "pid": joined.pid, "offset": first })
        ))
        .await;
    // The first replayed event: the replay has begun, its record is claimed.
    let frame = client.recv_text_answering_pings().await;
    assert!(
        event_args(&frame).is_some(),
        "a replayed event, got {frame}"
    );
    let live_key = format!("hub:live:{{sio:session:{}}}", joined.pid);
    assert_eq!(
        redis.command(&["EXISTS", &live_key]).trim(),
        ":0",
        "mid-replay nothing is resumable: an instance dying now leaves no second replay"
    );
    assert_eq!(
        record_at(&redis, &format!("sio:session:{}", joined.pid)),
        None
    );
    let mut replayed = 1;
    loop {
        let frame = client.recv_text_answering_pings().await;
        if frame.starts_with("40") {
            break;
        }
        replayed += 1;
    }
    assert_eq!(replayed, 64, "the whole replay, then the CONNECT reply");
    let mut kept = String::new();
    for _ in 0..250 {
        kept = redis.command(&["EXISTS", &live_key]);
        if kept.trim() == ":1" {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(kept.trim(), ":1", "joined: the session is kept live again");
}
