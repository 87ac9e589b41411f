//! Connection state recovery on the wire (reference §3.2, DESIGN.md §3), on the embedded log.

mod common;

use std::time::Duration;

use common::redis_server::{bulk, RedisServer};
use common::{event_args, start_hub, test_config, within, WsClient};
use common::{redis_config, start_ready_hub};
use realtime_hub::config::Config;
use realtime_hub::protocol::{base64, msgpack};
use serde_json::{json, Value};

#[actix_web::test]
async fn recovery_writes_missed_events_in_order_before_the_connect_reply() {
    let hub = start_hub(test_config());
    let mut joined = hub.joined().await;
    let first = hub.publish("seen").await;
    assert_eq!(
        event_args(&joined.client.recv_text_answering_pings().await).unwrap()[2],
        first.as_str()
    );
    joined.client.close().await;

    let missed = [hub.publish("missed 1").await, hub.publish("missed 2").await];
    let mut client = hub.send_resume(&joined.pid, &first).await;
    for (offset, title) in missed.iter().zip(["missed 1", "missed 2"]) {
        let args = event_args(&client.recv_text_answering_pings().await).unwrap();
        assert_eq!(
            (args[1]["title"].as_str(), args[2].as_str()),
            (Some(title), Some(offset.as_str()))
        );
    }
    let (sid, pid) = client.recv_connect().await;
    assert_eq!(
        (sid, pid),
        (joined.sid, joined.pid),
        "same sid and pid: the client reports recovered"
    );

    let live = hub.publish("live").await;
    assert_eq!(
        event_args(&client.recv_text_answering_pings().await).unwrap()[2],
        live.as_str()
    );
}

#[actix_web::test]
async fn fresh_client_recovers_from_the_offset_event() {
    let hub = start_hub(test_config());
    let mut joined = hub.joined().await;
    joined.client.close().await;
    let missed = hub.publish("while away").await;
    let mut client = hub.send_resume(&joined.pid, &joined.offset).await;
    let args = event_args(&client.recv_text_answering_pings().await).unwrap();
    assert_eq!(args[2], missed.as_str());
    assert_eq!(client.recv_connect().await, (joined.sid, joined.pid));
}

#[actix_web::test]
async fn recovery_with_nothing_missed_keeps_the_session_and_sends_no_offset_event() {
    let hub = start_hub(test_config());
    let mut joined = hub.joined().await;
    joined.client.close().await;
    let mut client = hub.send_resume(&joined.pid, &joined.offset).await;
    assert_eq!(
        client.recv_connect().await,
        (joined.sid.clone(), joined.pid.clone())
    );
    let live = hub.publish("live").await;
    assert_eq!(
        event_args(&client.recv_text_answering_pings().await).unwrap()[2],
        live.as_str()
    );
}

async fn assert_fresh_session(client: &mut WsClient, old_sid: &str, old_pid: &str) {
    let (sid, pid) = client.recv_connect().await;
    assert_ne!(sid, old_sid);
    assert_ne!(pid, old_pid);
    let offset_event = event_args(&client.recv_text_answering_pings().await).unwrap();
    assert_eq!(
        offset_event[0], "hub:offset",
        "a fresh session gets an offset; no replay before it"
    );
}

#[actix_web::test]
async fn recovery_fails_cleanly_for_unknown_pid_and_malformed_or_future_offset() {
    let hub = start_hub(test_config());
    let mut joined = hub.joined().await;
    let offset = hub.publish("one").await;
    joined.client.close().await;
    for (pid, offset) in [
        ("unknown-pid", offset.as_str()),
        (joined.pid.as_str(), "not-an-offset"),
        (joined.pid.as_str(), "99999999999999-0"),
    ] {
        let mut client = hub.send_resume(pid, offset).await;
        assert_fresh_session(&mut client, &joined.sid, &joined.pid).await;
    }
}

#[actix_web::test]
async fn recovery_fails_cleanly_after_the_window() {
    let mut config = test_config();
    config.recovery_window = Duration::from_millis(300);
    let hub = start_hub(config);
    let mut joined = hub.joined().await;
    joined.client.close().await;
    hub.publish("late").await;
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    let mut client = hub.send_resume(&joined.pid, &joined.offset).await;
    assert_fresh_session(&mut client, &joined.sid, &joined.pid).await;
}

#[actix_web::test]
async fn live_session_record_is_kept_fresh_beyond_the_window() {
    let mut config = test_config();
    config.recovery_window = Duration::from_millis(300);
    let hub = start_hub(config);
    let mut joined = hub.joined().await;
    // Connected for three windows: the record is refreshed while the session lives. It is checked
    // while the first connection is still open (a crash would leave exactly this record behind).
    for _ in 0..3 {
        assert_eq!(joined.client.recv_text().await, "2");
        joined.client.send("3").await;
    }
    let mut client = hub.send_resume(&joined.pid, &joined.offset).await;
    assert_eq!(client.recv_connect().await, (joined.sid, joined.pid));
}

#[actix_web::test]
async fn large_replay_is_complete_and_in_order() {
    let hub = start_hub(Config {
        ping_interval: Duration::from_secs(60),
        ..test_config()
    });
    let mut joined = hub.joined().await;
    joined.client.close().await;
    // About 3 MB to replay: written in steps, as the client takes it.
    let body = json!({ "body": "x".repeat(1000) }).to_string();
    let mut missed = Vec::new();
    for _ in 0..3000 {
        let (status, answer) = hub.notify(&body).await;
        assert_eq!(status, 201);
        missed.push(answer["offset"].as_str().unwrap().to_owned());
    }
    let mut client = hub.send_resume(&joined.pid, &joined.offset).await;
    for offset in &missed {
        assert_eq!(
            event_args(&client.recv_text().await).unwrap()[2],
            offset.as_str()
        );
    }
    assert_eq!(client.recv_connect().await, (joined.sid, joined.pid));
}

#[actix_web::test]
async fn handover_while_publishing_is_gapless_and_duplicate_free() {
    let hub = start_hub(Config {
        ping_interval: Duration::from_secs(60),
        ..test_config()
    });
    let mut joined = hub.joined().await;
    joined.client.close().await;
    let mut expected = Vec::new();
    for n in 0..2000 {
        expected.push(hub.publish(&n.to_string()).await);
    }
    // Resume while notifications keep coming: some land before the replay's last read (replayed,
    // and also buffered live: skipped once), some after (buffered, then released).
    let mut client = hub.send_resume(&joined.pid, &joined.offset).await;
    let url = hub.url("/notifications/notify");
    let publisher = actix_web::rt::spawn(async move {
        let mut offsets = Vec::new();
        for n in 0..200 {
            let body = json!({ "title": format!("live {n}") }).to_string();
            let mut res = awc::Client::new()
                .post(&url)
                .insert_header(("content-type", "application/json"))
                .send_body(body)
                .await
                .unwrap();
            let answer: serde_json::Value = res.json().await.unwrap();
            offsets.push(answer["offset"].as_str().unwrap().to_owned());
        }
        offsets
    });
    let mut received = Vec::new();
    let mut connect_reply_at = None;
    while received.len() < expected.len() + 200 {
        let frame = client.recv_text().await;
        match event_args(&frame) {
            Some(args) => received.push(args[2].as_str().unwrap().to_owned()),
            None => {
                assert!(frame.starts_with("40{"), "{frame}");
                connect_reply_at = Some(received.len());
            }
        }
    }
    let published = within(
        Duration::from_secs(60),
        "the 200 live notifications to be published",
        publisher,
    )
    .await;
    expected.extend(published.unwrap());
    assert_eq!(received, expected, "every notification once, in log order");
    assert!(
        connect_reply_at.is_some_and(|at| at >= 2000),
        "the 2000 missed come before the CONNECT reply"
    );
}

#[actix_web::test]
async fn recovery_fails_cleanly_when_the_offset_was_trimmed() {
    let mut config = test_config();
    config.max_len = 5;
    let hub = start_hub(config);
    let mut joined = hub.joined().await;
    joined.client.close().await;
    for n in 0..8 {
        hub.publish(&n.to_string()).await;
    }
    let mut client = hub.send_resume(&joined.pid, &joined.offset).await;
    assert_fresh_session(&mut client, &joined.sid, &joined.pid).await;
}

#[actix_web::test]
async fn deliberate_disconnect_is_not_recoverable() {
    let hub = start_hub(test_config());
    let mut joined = hub.joined().await;
    joined.client.send("41").await;
    joined.client.close().await;
    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    let mut client = hub.send_resume(&joined.pid, &joined.offset).await;
    assert_fresh_session(&mut client, &joined.sid, &joined.pid).await;
}

#[actix_web::test]
async fn over_polling_the_connect_reply_and_the_offset_event_arrive_in_one_answer() {
    let hub = start_hub(test_config());
    let sid = hub.polling_session("/socket.io/").await;
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    // The official client keeps a GET pending while it POSTs its CONNECT.
    let ((status, body, _), _) = hub.while_polling(&url, "POST", &url, "40").await;
    assert_eq!(status, 200);
    let packets: Vec<&str> = body.split('\x1e').collect();
    assert_eq!(packets.len(), 2, "one answer: {body}");
    assert!(packets[0].starts_with("40{"), "{body}");
    assert_eq!(packets[1], r#"42["hub:offset","0-0"]"#);
}

// ----
// A Node peer's session record, whatever its `socket.data`, resumed here and written back as the
// peer wrote it (socket.io's persistSession / restoreSession format, on Redis).

fn config(redis: &RedisServer, key: &str) -> Config {
    Config {
        ping_interval: Duration::from_secs(60),
        ..redis_config(&redis.url(), key)
    }
}

/// The record at `key` once the hub has written it again (bounded: 5 s), as Node would read it.
async fn rewritten(redis: &RedisServer, key: &str, planted: &str) -> Value {
    for _ in 0..250 {
        if let Some(encoded) = bulk(&redis.command(&["GET", key])) {
            if encoded != planted {
                return msgpack::decode(&base64::decode(&encoded).unwrap()).unwrap();
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the record at {key} was not written again within 5 s");
}

#[actix_web::test]
async fn a_node_peers_socket_data_of_any_shape_is_written_back_as_the_peer_wrote_it() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:node-data")).await;
    let datas = [
        json!({}),
        json!({"a": {}, "list": [1, {}, [null]], "s": "é✓"}),
        json!(null),
        json!([{"x": 1}]),
    ];
    for (n, data) in datas.into_iter().enumerate() {
        let offset = hub.publish(&format!("seen on node {n}")).await;
        let (sid, pid) = (format!("nsid{n}"), format!("npid{n}"));
        let node = json!({"sid": sid, "pid": pid, "rooms": [sid], "data": data});
        let planted = base64::encode(&msgpack::encode(&node));
        let key = format!("sio:session:{pid}");
        redis.command(&["SET", &key, &planted, "PX", "60000"]);
        let mut resumed = hub.resume(&pid, &offset).await;
        assert_eq!((resumed.sid, resumed.pid), (sid, pid.clone()), "recovered");
        resumed.client.close().await;
        let written = rewritten(&redis, &key, &planted).await;
        assert_eq!(written["data"], data, "data {data} as the peer wrote it");
    }
}
