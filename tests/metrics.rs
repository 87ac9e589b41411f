//! `GET /metrics` as a scraper reads it (parsed with `prometheus-parse`), and a scripted scenario in
//! which each family moves as it should: publishes over HTTP and over a socket, a delivery, a resume
//! that works and one that does not, a refused frame, a rate-limited event, a slow consumer dropped,
//! a polling session; on Redis the append histogram, a peer's entry and the errors of a Redis gone.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::raw_ws::RawClient;
use common::redis_server::RedisServer;
use common::{event_args, redis_config, start_hub, start_ready_hub, test_config, TestHub};
use prometheus_parse::{Scrape, Value as Sampled};
use realtime_hub::config::Config;
use serde_json::json;

/// One scrape, parsed.
struct Metrics(Scrape);

impl Metrics {
    /// The value of `name` with exactly `labels`: a counter's or gauge's value, a histogram's
    /// count (its `+Inf` bucket). Fails the test when the sample is missing.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let sample = self
            .0
            .samples
            .iter()
            .find(|s| {
                s.metric == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .unwrap_or_else(|| panic!("{name}{labels:?} missing from /metrics"));
        match &sample.value {
            Sampled::Counter(v) | Sampled::Gauge(v) | Sampled::Untyped(v) => *v,
            Sampled::Histogram(buckets) => {
                buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .expect("a +Inf bucket")
                    .count
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
    }

    /// An unlabelled family's value.
    fn of(&self, name: &str) -> f64 {
        self.get(name, &[])
    }
}

async fn scrape(hub: &TestHub) -> Metrics {
    let (status, text, content_type) = hub.http("GET", "/metrics", "").await;
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    Metrics(Scrape::parse(lines).expect("/metrics parses as Prometheus text"))
}

/// Scrapes until `check` holds on a scrape (bounded: the hub counts after it answers a client).
async fn eventually(hub: &TestHub, what: &str, check: impl Fn(&Metrics) -> bool) -> Metrics {
    for _ in 0..200 {
        let metrics = scrape(hub).await;
        if check(&metrics) {
            return metrics;
        }
        actix_web::rt::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("/metrics never showed {what}");
}

#[actix_web::test]
async fn every_family_has_help_and_type_and_parses() {
    let hub = start_hub(test_config());
    let (status, text, _) = hub.http("GET", "/metrics", "").await;
    assert_eq!(status, 200);
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = Scrape::parse(lines).expect("parses");
    let mut typed: HashMap<&str, &str> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE <name> <kind>");
            typed.insert(name, kind);
        }
    }
    for family in [
        "hub_connections",
        "hub_sessions",
        "hub_engine_sessions",
        "hub_handshakes_total",
        "hub_namespace_joins_total",
        "hub_disconnects_total",
        "hub_notifications_published_total",
        "hub_notifications_failed_total",
        "hub_deliveries_total",
        "hub_deliveries_direct_total",
        "hub_delivered_bytes_total",
        "hub_publish_append_seconds",
        "hub_delivery_lag_seconds",
        "hub_read_lag_milliseconds",
        "hub_resumes_total",
        "hub_replayed_entries_total",
        "hub_slow_consumers_total",
        "hub_frames_refused_total",
        "hub_stream_entries_refused_total",
        "hub_stream_entries_skipped_total",
        "hub_socket_events_rate_limited_total",
        "hub_publish_rate_limited_per_address_total",
        "hub_handshakes_refused_max_sessions_total",
        "hub_redis_errors_total",
        "hub_redis_reconnects_total",
    ] {
        assert!(typed.contains_key(family), "{family} has no # TYPE");
        assert!(
            scrape.docs.get(family).is_some_and(|help| !help.is_empty()),
            "{family} has no # HELP"
        );
    }
    // Every family the hub declares has both, and every sample belongs to a declared family.
    assert_eq!(typed.len(), scrape.docs.len(), "as many HELP as TYPE lines");
    for sample in &scrape.samples {
        let family = typed
            .keys()
            .filter(|name| sample.metric.starts_with(**name))
            .max_by_key(|name| name.len());
        assert!(family.is_some(), "{} belongs to no family", sample.metric);
    }
    assert_eq!(typed["hub_delivery_lag_seconds"], "histogram");
    assert_eq!(typed["hub_connections"], "gauge");
    assert_eq!(typed["hub_deliveries_total"], "counter");
}

#[actix_web::test]
async fn metrics_off_answers_404_and_the_hub_still_serves() {
    let hub = start_hub(Config {
        metrics: false,
        ..test_config()
    });
    let (status, body, _) = hub.http("GET", "/metrics", "").await;
    assert_eq!(
        (status, body.as_str()),
        (404, "metrics are off (HUB_METRICS=off)\n")
    );
    let mut joined = hub.joined().await;
    hub.publish("off").await;
    let event = joined.client.recv_text_answering_pings().await;
    assert_eq!(event_args(&event).unwrap()[1]["title"], "off");
}

#[actix_web::test]
async fn each_family_moves_in_a_scripted_scenario() {
    let mut config = test_config();
    config.max_buffered_bytes = 256 * 1024;
    // A client whose window is shut gets no pings either: the bound, not the heartbeat, drops it.
    config.ping_interval = Duration::from_secs(5);
    config.ping_timeout = Duration::from_secs(5);
    config.security.socket_events_per_second = 1;
    let hub = start_hub(config);
    let m0 = scrape(&hub).await;
    let ws = [("transport", "websocket")];
    assert_eq!(m0.get("hub_connections", &ws), 0.0);

    // A WebSocket joins `/`.
    let mut a = hub.joined().await;
    let m = scrape(&hub).await;
    assert_eq!(m.get("hub_connections", &ws), 1.0);
    assert_eq!(m.get("hub_handshakes_total", &ws), 1.0);
    assert_eq!(m.of("hub_namespace_joins_total"), 1.0);
    assert_eq!(m.of("hub_sessions"), 1.0);

    // Published over HTTP and delivered: deliveries, bytes, lag and the append's round trip.
    hub.publish("over http").await;
    let event = a.client.recv_text_answering_pings().await;
    assert_eq!(event_args(&event).unwrap()[1]["title"], "over http");
    let m = eventually(&hub, "the delivery", |m| {
        m.of("hub_deliveries_total") == 1.0
    })
    .await;
    let http = [("source", "http")];
    assert_eq!(m.get("hub_notifications_published_total", &http), 1.0);
    assert!(m.of("hub_delivered_bytes_total") >= event.len() as f64);
    assert_eq!(m.of("hub_delivery_lag_seconds"), 1.0);
    assert_eq!(m.of("hub_publish_append_seconds"), 1.0);

    // Published over the socket; a second event within the second is refused by the rate limit.
    a.client
        .send(r#"421["notify",{"title":"over socket"}]"#)
        .await;
    a.client.send(r#"422["notify",{"title":"too soon"}]"#).await;
    let m = eventually(&hub, "the socket publish and the refusal", |m| {
        m.get("hub_notifications_published_total", &[("source", "socket")]) == 1.0
            && m.of("hub_socket_events_rate_limited_total") == 1.0
    })
    .await;
    assert_eq!(m.of("hub_publish_append_seconds"), 2.0);
    let m = eventually(&hub, "the second delivery", |m| {
        m.of("hub_deliveries_total") == 2.0
    })
    .await;
    assert_eq!(m.of("hub_delivery_lag_seconds"), 2.0);

    // The client goes; resuming from its first offset replays both notifications.
    a.client.close().await;
    eventually(&hub, "the connection gone", |m| {
        m.get("hub_connections", &ws) == 0.0
    })
    .await;
    let mut resumed = hub.send_resume(&a.pid, &a.offset).await;
    let mut replayed = 0;
    loop {
        let text = resumed.recv_text_answering_pings().await;
        if text.starts_with("40") {
            break;
        }
        if event_args(&text).is_some_and(|args| args[0] == "notification") {
            replayed += 1;
        }
    }
    assert_eq!(replayed, 2);
    let m = eventually(&hub, "the exact resume", |m| {
        m.get("hub_resumes_total", &[("outcome", "exact")]) == 1.0
    })
    .await;
    assert_eq!(m.of("hub_replayed_entries_total"), 2.0);
    assert_eq!(
        m.get("hub_disconnects_total", &[("reason", "transport close")]),
        1.0
    );

    // A pid nobody issued: a fresh session.
    let mut fresh = hub.send_resume("unknown-pid", &a.offset).await;
    let (sid, _) = fresh.recv_connect().await;
    assert_ne!(sid, a.sid);
    eventually(&hub, "the unknown resume", |m| {
        m.get("hub_resumes_total", &[("outcome", "unknown")]) == 1.0
    })
    .await;

    // A frame that is no Engine.IO packet ends its session.
    let (mut bad, _) = hub.eio().await;
    bad.send("not a packet").await;
    bad.expect_closed().await;
    let m = eventually(&hub, "the refused frame", |m| {
        m.get("hub_frames_refused_total", &[("kind", "parse")]) == 1.0
    })
    .await;
    assert_eq!(
        m.get("hub_disconnects_total", &[("reason", "parse error")]),
        1.0
    );

    // A polling session, then its upgrade to WebSocket.
    let sid = hub.polling_session("/socket.io/").await;
    let polling = [("transport", "polling")];
    let m = scrape(&hub).await;
    assert_eq!(m.get("hub_handshakes_total", &polling), 1.0);
    assert_eq!(m.get("hub_connections", &polling), 1.0);
    let websockets = m.get("hub_connections", &ws);
    let mut upgraded = hub
        .ws(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("upgrade websocket");
    upgraded.send("2probe").await;
    assert_eq!(upgraded.recv_text().await, "3probe");
    upgraded.send("5").await;
    let m = eventually(&hub, "the upgrade", |m| m.of("hub_upgrades_total") == 1.0).await;
    assert_eq!(m.get("hub_connections", &polling), 0.0);
    assert_eq!(m.get("hub_connections", &ws), websockets + 1.0);
    upgraded.close().await;

    // Only a client that does not read is left; publishing until it is dropped.
    resumed.close().await;
    fresh.close().await;
    eventually(&hub, "the readers gone", |m| m.of("hub_sessions") == 0.0).await;
    let mut slow = RawClient::connect(hub.addr).await;
    assert!(slow.read_text().await.starts_with("0{"));
    slow.send_text("40").await;
    assert!(slow.read_text().await.starts_with("40"));
    assert_eq!(hub.sessions().await, 1);
    let body = json!({ "body": "x".repeat(60_000) }).to_string();
    let mut published = 0;
    while hub.sessions().await == 1 {
        assert!(
            published < 1000,
            "a client that never reads was never dropped"
        );
        assert_eq!(hub.notify(&body).await.0, 201);
        published += 1;
    }
    let m = eventually(&hub, "the slow consumer", |m| {
        m.of("hub_slow_consumers_total") == 1.0
    })
    .await;
    assert_eq!(
        m.get("hub_disconnects_total", &[("reason", "slow consumer")]),
        1.0
    );
    assert_eq!(
        m.get("hub_notifications_published_total", &http),
        1.0 + published as f64
    );
}

#[actix_web::test]
async fn on_redis_appends_are_timed_peers_counted_and_a_lost_redis_counted() {
    let mut redis = RedisServer::start();
    let key = "test:metrics";
    let hub = start_ready_hub(Config {
        ping_interval: Duration::from_secs(60),
        ..redis_config(&redis.url(), key)
    })
    .await;
    let mut joined = hub.joined().await;

    // A Node peer's broadcast (another uid), with an id a minute old: read, delivered, counted as
    // a peer's, and the read loop's lag shows the minute.
    let minute_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 60_000;
    let data = r#"{"packet":{"type":2,"data":["notification",{"title":"peer"}]},"opts":{"rooms":[],"except":[],"flags":{}}}"#;
    let reply = redis.command(&[
        "XADD",
        key,
        &format!("{minute_ago}-0"),
        "uid",
        "0123456789abcdef",
        "nsp",
        "/",
        "type",
        "3",
        "data",
        data,
    ]);
    assert!(reply.starts_with('$'), "XADD answered {reply}");
    let event = joined.client.recv_text_answering_pings().await;
    assert_eq!(event_args(&event).unwrap()[1]["title"], "peer");
    let m = eventually(&hub, "the peer's entry", |m| {
        m.get("hub_notifications_published_total", &[("source", "peer")]) == 1.0
    })
    .await;
    assert!(m.of("hub_read_lag_milliseconds") >= 60_000.0);
    assert_eq!(m.of("hub_delivery_lag_seconds"), 1.0);
    let lag =
        &m.0.samples
            .iter()
            .find(|s| s.metric == "hub_delivery_lag_seconds");
    match lag.map(|s| &s.value) {
        Some(Sampled::Histogram(buckets)) => {
            let under_10s = buckets.iter().find(|b| b.less_than == 10.0).unwrap();
            assert_eq!(
                under_10s.count, 0.0,
                "a minute late is past the last bucket"
            );
        }
        other => panic!("hub_delivery_lag_seconds: {other:?}"),
    }
    // Nothing new within a read's block: the loop is at the tip.
    eventually(&hub, "the read lag back to 0", |m| {
        m.of("hub_read_lag_milliseconds") == 0.0
    })
    .await;

    // The hub's own publishes: timed appends, not a peer's.
    hub.publish("one").await;
    hub.publish("two").await;
    let m = scrape(&hub).await;
    assert_eq!(m.of("hub_publish_append_seconds"), 2.0);
    assert_eq!(m.of("hub_redis_errors_total"), 0.0);
    let mut titles = Vec::new();
    while titles.len() < 2 {
        let text = joined.client.recv_text_answering_pings().await;
        if let Some(args) = event_args(&text) {
            titles.push(args[1]["title"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(titles, ["one", "two"]);
    let m = eventually(&hub, "the hub's own entries read", |m| {
        m.get("hub_notifications_published_total", &[("source", "http")]) == 2.0
            && m.of("hub_deliveries_total") == 3.0
    })
    .await;
    assert_eq!(
        m.get("hub_notifications_published_total", &[("source", "peer")]),
        1.0
    );

    // Redis goes away: the read loop's error and its reconnect are counted, and a publish fails.
    redis.stop();
    eventually(&hub, "the Redis error", |m| {
        m.of("hub_redis_errors_total") >= 1.0 && m.of("hub_redis_reconnects_total") >= 1.0
    })
    .await;
    let (status, answer) = hub.notify(r#"{"title":"lost"}"#).await;
    assert_eq!(status, 503, "{answer}");
    let m = scrape(&hub).await;
    let failed = |cause| m.get("hub_notifications_failed_total", &[("cause", cause)]);
    assert_eq!(failed("unavailable") + failed("outcome_unknown"), 1.0);
    assert_eq!(failed("key_reused"), 0.0);
    assert_eq!(
        m.get("hub_notifications_published_total", &[("source", "http")]),
        2.0
    );
}
