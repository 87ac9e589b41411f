//! Several instances on one real Redis stream: fan-out, cross-instance recovery, trimming, outages.

mod common;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{
    in_log_order, notification_offsets, redis_config, start_ready_hub, within, Joined, TestHub,
};
use futures_util::future::join;
use realtime_hub::config::Config;
use serde_json::{json, Value};

/// Redis tests publish while their clients are not reading: a heartbeat that never fires keeps the
/// test about delivery, not about pongs.
fn config(redis: &RedisServer, key: &str) -> Config {
    Config {
        ping_interval: Duration::from_secs(60),
        ..redis_config(&redis.url(), key)
    }
}

#[actix_web::test]
async fn two_instances_deliver_every_notification_to_every_client_once_in_one_order() {
    let redis = RedisServer::start();
    let a = start_ready_hub(config(&redis, "test:fanout")).await;
    let b = start_ready_hub(config(&redis, "test:fanout")).await;
    let mut clients = Vec::new();
    for hub in [&a, &a, &a, &b, &b, &b] {
        clients.push(hub.joined().await);
    }
    let publish_all = |hub: &TestHub, name: &'static str| {
        let hub_url = hub.url("/notifications/notify");
        async move {
            let mut offsets = Vec::new();
            for n in 0..15 {
                let body = json!({ "title": format!("{name}{n}") }).to_string();
                let mut res = awc::Client::new()
                    .post(&hub_url)
                    .insert_header(("content-type", "application/json"))
                    .send_body(body)
                    .await
                    .unwrap();
                assert_eq!(res.status().as_u16(), 201);
                let answer: Value = res.json().await.unwrap();
                offsets.push(answer["offset"].as_str().unwrap().to_owned());
            }
            offsets
        }
    };
    let (from_a, from_b) = within(
        Duration::from_secs(60),
        "30 notifications to be published",
        join(publish_all(&a, "a"), publish_all(&b, "b")),
    )
    .await;
    let expected = in_log_order([from_a, from_b].concat());
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(
            notification_offsets(client, expected.len()).await,
            expected,
            "client {i}"
        );
    }
}

#[actix_web::test]
async fn client_recovers_on_another_instance_exactly_what_it_missed() {
    let redis = RedisServer::start();
    let a = start_ready_hub(config(&redis, "test:cross")).await;
    let b = start_ready_hub(config(&redis, "test:cross")).await;
    let mut joined = a.joined().await;
    let first = a.publish("seen").await;
    assert_eq!(
        notification_offsets(&mut joined, 1).await,
        std::slice::from_ref(&first)
    );
    joined.client.close().await;

    let mut missed = Vec::new();
    for n in 0..10 {
        missed.push(if n % 2 == 0 {
            a.publish("a").await
        } else {
            b.publish("b").await
        });
    }
    let (mut client, _) = b.eio().await;
    client
        .send(&format!(
            "40{}",
            json!({ "pid": joined.pid, "offset": first })
        ))
        .await;
    let mut resumed = Joined {
        client,
        sid: String::new(),
        pid: String::new(),
        offset: String::new(),
    };
    assert_eq!(notification_offsets(&mut resumed, 10).await, missed);
    assert_eq!(
        resumed.client.recv_connect().await,
        (joined.sid, joined.pid),
        "recovered: same sid and pid"
    );
}

#[actix_web::test]
async fn offset_trimmed_out_of_the_stream_fails_cleanly() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(Config {
        max_len: 100,
        ..config(&redis, "test:trim")
    })
    .await;
    let mut joined = hub.joined().await;
    let first = hub.publish("seen").await;
    assert_eq!(
        notification_offsets(&mut joined, 1).await,
        std::slice::from_ref(&first)
    );
    joined.client.close().await;
    for n in 0..500 {
        hub.publish(&n.to_string()).await;
    }
    let length: usize = redis
        .command(&["XLEN", "test:trim"])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(
        (100..500).contains(&length),
        "MAXLEN ~ 100 trimmed the stream to {length}"
    );

    let (mut client, _) = hub.eio().await;
    client
        .send(&format!(
            "40{}",
            json!({ "pid": joined.pid, "offset": first })
        ))
        .await;
    let (sid, pid) = client.recv_connect().await;
    assert_ne!(
        (sid, pid),
        (joined.sid, joined.pid),
        "never a partial replay: a fresh session"
    );
}

#[actix_web::test]
async fn stream_entries_and_session_records_use_the_adapter_formats() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:format")).await;
    let joined = hub.joined().await;
    let offset = hub.publish("format").await;

    let entry = redis.command(&["XRANGE", "test:format", "-", "+"]);
    let lines: Vec<&str> = entry
        .split("\r\n")
        .filter(|l| !l.starts_with(['*', '$']))
        .collect();
    assert_eq!(lines[0], offset);
    assert_eq!(
        (lines[1], lines[3], lines[4], lines[5], lines[6], lines[7]),
        ("uid", "nsp", "/", "type", "3", "data")
    );
    assert!(
        lines[2].len() == 16 && lines[2].bytes().all(|b| b.is_ascii_hexdigit()),
        "uid {}",
        lines[2]
    );
    let data: Value = serde_json::from_str(lines[8]).unwrap();
    assert_eq!(data["packet"]["type"], 2);
    assert_eq!(data["packet"]["data"][0], "notification");
    assert_eq!(data["packet"]["data"][1]["title"], "format");
    assert_eq!(
        data["opts"],
        json!({"rooms": [], "except": [], "flags": {}})
    );

    // While the session is live, nothing is under the adapter's key (a Node peer's GETDEL would
    // resume it); the record is written when the session drops, as the adapter writes its own.
    let key = format!("sio:session:{}", joined.pid);
    assert_eq!(
        redis.command(&["GET", &key]),
        "$-1\r\n",
        "no record while live"
    );
    let mut joined = joined;
    joined.client.close().await;
    let mut stored = redis.command(&["GET", &key]);
    for _ in 0..250 {
        if !stored.starts_with("$-1") {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        stored = redis.command(&["GET", &key]);
    }
    let encoded = stored.split("\r\n").nth(1).unwrap();
    let record = realtime_hub::protocol::msgpack::decode(
        &realtime_hub::protocol::base64::decode(encoded).unwrap(),
    )
    .unwrap();
    let epoch = record["epoch"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        record,
        json!({"sid": joined.sid, "pid": joined.pid, "rooms": [joined.sid], "data": {}, "epoch": epoch}),
        "the adapter's fields and types (data {{}} as socket.io initialises it), plus the epoch"
    );
    assert!(
        epoch.len() == 32 && epoch.bytes().all(|b| b.is_ascii_hexdigit()),
        "epoch {epoch}"
    );
    let ttl: i64 = redis
        .command(&["PTTL", &key])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(
        ttl > 0 && ttl <= 120_000,
        "record expires with the recovery window: {ttl}"
    );
}

#[actix_web::test]
async fn redis_outage_refuses_publishes_then_delivers_every_accepted_one_exactly_once() {
    let mut redis = RedisServer::start_persistent();
    let hub = start_ready_hub(config(&redis, "test:outage")).await;
    let mut clients = [hub.joined().await, hub.joined().await];

    let mut accepted = Vec::new();
    let mut refused = 0;
    for n in 0..40 {
        if n == 20 {
            redis.stop();
            // The read loop notices within a read block; readiness follows it.
            let mut saw_unready = false;
            for _ in 0..150 {
                if hub.get_status("/readyz").await == 503 {
                    saw_unready = true;
                    break;
                }
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(saw_unready, "/readyz answered 200 while Redis was down");
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(3) {
                let (status, answer) = hub.notify(r#"{"title":"during"}"#).await;
                assert_eq!(status, 503, "a publish during the outage: {answer}");
                assert!(answer["error"].is_string());
                refused += 1;
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
            redis.restart();
        }
        // The publisher retries on 503 (bounded), as a client of the hub would.
        let mut attempts = 0;
        loop {
            let (status, answer) = hub
                .notify(&json!({ "title": format!("n{n}") }).to_string())
                .await;
            if status == 201 {
                accepted.push(answer["offset"].as_str().unwrap().to_owned());
                break;
            }
            assert_eq!(status, 503, "{answer}");
            attempts += 1;
            assert!(
                attempts < 200,
                "the hub never accepted again after Redis came back"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(refused > 0);
    hub.wait_ready().await;
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(
            notification_offsets(client, accepted.len()).await,
            accepted,
            "client {i}"
        );
        let extra = client.client.recv_within(Duration::from_millis(300)).await;
        assert!(
            extra.is_none(),
            "client {i} got more than the accepted notifications: {extra:?}"
        );
    }
}
