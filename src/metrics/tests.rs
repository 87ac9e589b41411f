use super::*;

#[test]
fn metrics_render_every_number_in_prometheus_text_format() {
    let metrics = Metrics::default();
    metrics.sockets.set(3);
    metrics.log_reading.set(1);
    metrics.entries_skipped.add(2);
    metrics.entries_refused.ack.add(38);
    metrics.entries_refused.not_event.add(39);
    metrics.entries_refused.room_operation.add(40);
    metrics.slow_consumers.add(4);
    metrics.appends_failing.set(1);
    metrics.handshakes_refused_rate.add(28);
    assert!(metrics.ws_unfinished_bytes.add_within(7, 7));
    assert!(!metrics.ws_unfinished_bytes.add_within(1, 7));
    metrics.rooms_refused_too_many.add(41);
    metrics.connections.websocket.add(2);
    metrics.disconnects.inc("ping timeout");
    metrics.resumes.inc("trimmed");
    metrics.delivery_lag.observe_ms(3);
    let text = metrics.render();
    for line in [
        "# TYPE hub_sessions gauge\nhub_sessions 3\n",
        "# TYPE hub_ready gauge\nhub_ready 1\n",
        "# TYPE hub_stream_entries_skipped_total counter\nhub_stream_entries_skipped_total 2\n",
        "hub_stream_entries_refused_total{kind=\"ack\"} 38\n",
        "hub_stream_entries_refused_total{kind=\"not_event\"} 39\n",
        "hub_stream_entries_refused_total{kind=\"room_operation\"} 40\n",
        "hub_slow_consumers_total 4\n",
        "# TYPE hub_appends_failing gauge\nhub_appends_failing 1\n",
        "# TYPE hub_handshakes_refused_rate_total counter\nhub_handshakes_refused_rate_total 28\n",
        "# TYPE hub_websocket_unfinished_bytes gauge\nhub_websocket_unfinished_bytes 7\n",
        "hub_room_events_refused_total{reason=\"too_many\"} 41\n",
        "hub_room_events_refused_total{reason=\"invalid\"} 0\n",
        "hub_connections{transport=\"websocket\"} 2\n",
        "hub_connections{transport=\"polling\"} 0\n",
        "hub_disconnects_total{reason=\"ping timeout\"} 1\n",
        "hub_resumes_total{outcome=\"trimmed\"} 1\n",
        "hub_resumes_total{outcome=\"exact\"} 0\n",
        "# TYPE hub_delivery_lag_seconds histogram\n",
        "hub_delivery_lag_seconds_bucket{le=\"0.0025\"} 0\n",
        "hub_delivery_lag_seconds_bucket{le=\"0.005\"} 1\n",
        "hub_delivery_lag_seconds_count 1\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    assert_eq!(text.matches("# HELP ").count(), 55, "{text}");
    assert_eq!(text.matches("# TYPE ").count(), 55);
}

#[test]
fn every_family_parses_with_its_help_and_type() {
    let metrics = Metrics::default();
    let text = metrics.render();
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the text format parses");
    let mut families: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| rest.split(' ').next().unwrap())
        .collect();
    families.sort();
    families.dedup();
    assert_eq!(families.len(), 55);
    for family in families {
        assert!(family.starts_with("hub_"), "{family}");
        let help = scrape.docs.get(family);
        assert!(help.is_some_and(|h| !h.is_empty()), "{family} has no HELP");
        assert!(
            scrape.samples.iter().any(|s| s.metric.starts_with(family)),
            "{family} has no sample"
        );
    }
}

#[test]
fn off_records_no_counter_or_histogram_but_every_gauge() {
    let metrics = Metrics::new(false);
    metrics.deliveries.inc();
    metrics.delivered_bytes.add(10);
    metrics.delivery_lag.observe(0.1);
    metrics.resumes.inc("exact");
    metrics.sockets.set(2);
    assert!(metrics.ws_unfinished_bytes.add_within(5, 10));
    assert_eq!(metrics.deliveries.get(), 0);
    assert_eq!(metrics.delivered_bytes.get(), 0);
    assert_eq!(metrics.delivery_lag.count(), 0);
    assert_eq!(metrics.resumes.get("exact"), 0);
    assert_eq!(metrics.sockets.get(), 2);
    assert_eq!(metrics.ws_unfinished_bytes.get(), 5);
}

#[test]
fn an_observation_repeated_counts_each_time_in_its_bucket() {
    let metrics = Metrics::new(true);
    metrics.delivery_lag.observe_ms_times(3, 4);
    metrics.delivery_lag.observe_ms_times(3, 0);
    assert_eq!(metrics.delivery_lag.count(), 4);
    let text = metrics.render();
    assert!(
        text.contains("hub_delivery_lag_seconds_bucket{le=\"0.0025\"} 0\n")
            && text.contains("hub_delivery_lag_seconds_bucket{le=\"0.005\"} 4\n")
            && text.contains("hub_delivery_lag_seconds_count 4\n"),
        "{text}"
    );
    let off = Metrics::new(false);
    off.delivery_lag.observe_ms_times(3, 4);
    assert_eq!(off.delivery_lag.count(), 0);
}
