//! Metrics: every counter and gauge of one hub instance, and their Prometheus text rendering.
//!
//! Owns: the numbers, as atomics. The code that counts holds an `Arc<Metrics>` and increments a field;
//! `GET /metrics` calls [`Metrics::render`]. Nothing here asks an actor: rendering reads atomics only.
//!
//! Adding a metric: a field here, its increment where it happens, and one line in `render`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A number that only goes up (Prometheus `counter`).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A number that goes up and down (Prometheus `gauge`).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Adds `n` unless the value would pass `limit`; whether it did. For gauges that are a bound's
    /// own count (atomic: concurrent callers never pass the limit together).
    pub fn add_within(&self, n: i64, limit: i64) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |value| {
                value.checked_add(n).filter(|&after| after <= limit)
            })
            .is_ok()
    }

    /// Subtracts `n`.
    pub fn sub(&self, n: i64) {
        self.0.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The metrics of one instance (tests run several in one process, so not a global).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Sockets joined to a namespace on this instance (set by the Hub).
    pub sockets: Gauge,
    /// 1 while the log backend is reachable and its read loop reading (set by the backend).
    pub log_reading: Gauge,
    /// Engine.IO sessions open (set by [`crate::admission`]).
    pub engine_sessions: Gauge,
    /// Engine.IO sessions open that have not joined a namespace (set by [`crate::admission`]).
    pub unjoined_sessions: Gauge,
    /// Stream entries read but not delivered because they cannot be: message types that are not
    /// broadcasts (v0.2 heartbeats and requests), or malformed (reference §4.4).
    pub entries_skipped: Counter,
    /// A Node peer's entries the hub refuses to deliver, by kind (`hub_stream_entries_refused_total`).
    pub entries_refused: Refused,
    /// Log entries that do not frame as an event array (never delivered).
    pub entries_unframed: Counter,
    /// Clients dropped because they did not take what was sent to them (the outgoing bound).
    pub slow_consumers: Counter,
    /// Sockets of this instance disconnected by a DISCONNECT_SOCKETS request (`POST
    /// /sockets/disconnect` on any hub, a Node peer's `disconnectSockets`).
    pub server_disconnects: Counter,
    /// Session-record refreshes that failed (their resumes may fail).
    pub record_refreshes_failed: Counter,
    /// 1 from a failed append until an append or a probe of the append path succeeds (set by the
    /// StreamBridge; `/readyz` answers 503 meanwhile).
    pub appends_failing: Gauge,
    /// Appends that failed with nothing written (never sent, or refused by the log).
    pub appends_failed: Counter,
    /// Appends sent without an answer: they may or may not be in the log.
    pub appends_outcome_unknown: Counter,
    /// Keyed publishes answered with the first append's id (nothing appended).
    pub idempotent_replays: Counter,
    /// Idempotency keys the embedded log forgot before their time to live (its table was full).
    pub idempotency_keys_evicted: Counter,
    /// Resumes that found no replay slot within `--replay-wait-ms` (they got a fresh session).
    pub replays_refused: Counter,
    /// Replays whose later page could not be read (trimmed meanwhile, backend down): the socket got
    /// a fresh session after the entries already written.
    pub replays_interrupted: Counter,
    /// CONNECTs the application refused (`44<nsp>,{"message":…}`; with JWT: no valid token).
    pub connects_refused: Counter,
    /// Resumes presenting another user's session (the record's `sub` differs): a fresh session, the
    /// record left to its owner.
    pub resumes_not_owner: Counter,
    /// Handshakes refused: `--max-sessions` reached (503).
    pub handshakes_refused_sessions: Counter,
    /// Handshakes refused: `--max-sessions-per-address` reached for the client's address (429).
    pub handshakes_refused_per_address: Counter,
    /// Handshakes refused: `--max-unjoined` reached (503).
    pub handshakes_refused_unjoined: Counter,
    /// Handshakes refused: `--max-unjoined-per-address` reached for the client's address (429).
    pub handshakes_refused_unjoined_per_address: Counter,
    /// Handshakes refused: `--connections-per-second-per-address` reached for the client's
    /// address (429).
    pub handshakes_refused_rate: Counter,
    /// Requests refused with 403 for their `Origin` (neither the hub's own nor allowed): publishes
    /// and Engine.IO requests.
    pub origin_refused: Counter,
    /// Publishes refused with 401: no API key or a wrong one.
    pub publish_unauthorized: Counter,
    /// Publishes refused with 415: not `application/json`.
    pub publish_unsupported_media_type: Counter,
    /// Publishes refused with 429: `--publish-per-second-per-address` reached for the client.
    pub publish_rate_limited_per_address: Counter,
    /// Publishes refused with 429: `--publish-per-second-per-key` reached for the API key.
    pub publish_rate_limited_per_key: Counter,
    /// Bytes all WebSockets hold for unfinished frames and fragmented messages: the count of the
    /// `HUB_MAX_UNFINISHED_BYTES` budget itself (kept by `ws_read::UnfinishedBudget`).
    pub ws_unfinished_bytes: Gauge,
    /// WebSockets closed (1013) because their unfinished frames and messages would have passed
    /// the instance's budget (`HUB_MAX_UNFINISHED_BYTES`).
    pub ws_unfinished_refused: Counter,
    /// Requests (notify, polling POST) whose body did not arrive within the body timeout: 408.
    pub request_body_timeouts: Counter,
    /// Times the read loop found the log's epoch changed (the log was deleted, flushed or replaced;
    /// every client was disconnected and starts a fresh session).
    pub log_epoch_changes: Counter,
    /// Client events refused for `HUB_SOCKET_EVENTS_PER_SECOND` (acked `{"error":"rate limited"}`
    /// when the client asked for an ack, dropped otherwise).
    pub socket_events_rate_limited: Counter,
    /// `join` / `leave` events refused: no string, or a name outside the rules.
    pub rooms_refused_invalid: Counter,
    /// `join` / `leave` events refused: a reserved room (`user:…`, a socket id's shape).
    pub rooms_refused_reserved: Counter,
    /// `join` events refused: neither the token's `rooms` claim nor `HUB_PUBLIC_ROOMS` allows it.
    pub rooms_refused_forbidden: Counter,
    /// `join` events refused: `HUB_MAX_ROOMS_PER_SOCKET` reached.
    pub rooms_refused_too_many: Counter,
    /// Connections disconnected for sending past the rate limit beyond `HUB_SOCKET_ABUSE_LIMIT`.
    pub socket_abuse_disconnects: Counter,
}

/// A Node peer's stream entries the hub reads and does not serve, one counter per `kind` label.
#[derive(Debug, Default)]
pub struct Refused {
    /// `kind="ack"`: broadcasts whose emitter waits for acknowledgements (`packet.id`, `requestId`),
    /// which only the emitting instance can collect.
    pub ack: Counter,
    /// `kind="not_event"`: BROADCAST entries whose packet is not an EVENT with an event array.
    pub not_event: Counter,
    /// `kind="room_operation"`: SOCKETS_JOIN / SOCKETS_LEAVE (`io.in(…).socketsJoin(…)`), not applied.
    pub room_operation: Counter,
}

impl Metrics {
    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: i64| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
            );
        };
        gauge(
            "hub_sessions",
            "Sockets joined to a namespace on this instance.",
            self.sockets.get(),
        );
        gauge(
            "hub_ready",
            "Whether the log backend is reachable and being read.",
            self.log_reading.get(),
        );
        gauge(
            "hub_appends_failing",
            "Whether the last append failed and no append or probe has succeeded since.",
            self.appends_failing.get(),
        );
        gauge(
            "hub_engine_sessions",
            "Engine.IO sessions open on this instance.",
            self.engine_sessions.get(),
        );
        gauge(
            "hub_unjoined_sessions",
            "Engine.IO sessions open that have not joined a namespace yet.",
            self.unjoined_sessions.get(),
        );
        gauge(
            "hub_websocket_unfinished_bytes",
            "Bytes WebSockets hold for unfinished frames and fragmented messages.",
            self.ws_unfinished_bytes.get(),
        );
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            );
        };
        counter(
            "hub_stream_entries_skipped_total",
            "Stream entries read but not delivered: not a broadcast or room operation, or malformed.",
            self.entries_skipped.get(),
        );
        counter(
            "hub_entries_unframed_total",
            "Log entries whose event is not a JSON array, never delivered.",
            self.entries_unframed.get(),
        );
        counter(
            "hub_slow_consumers_total",
            "Clients dropped for not taking what was sent to them.",
            self.slow_consumers.get(),
        );
        counter(
            "hub_server_disconnects_total",
            "Sockets disconnected by a disconnect request (POST /sockets/disconnect, disconnectSockets).",
            self.server_disconnects.get(),
        );
        counter(
            "hub_session_record_refreshes_failed_total",
            "Session record refreshes that failed; those sessions may not resume.",
            self.record_refreshes_failed.get(),
        );
        counter(
            "hub_appends_failed_total",
            "Appends that failed with nothing published (never sent, or refused by the log).",
            self.appends_failed.get(),
        );
        counter(
            "hub_appends_outcome_unknown_total",
            "Appends sent without an answer: they may or may not have been published.",
            self.appends_outcome_unknown.get(),
        );
        counter(
            "hub_idempotent_replays_total",
            "Publishes whose idempotency key was already appended: answered with the first id.",
            self.idempotent_replays.get(),
        );
        counter(
            "hub_idempotency_keys_evicted_total",
            "Idempotency keys the embedded log forgot before their time to live (table full).",
            self.idempotency_keys_evicted.get(),
        );
        counter(
            "hub_replays_refused_total",
            "Resumes that found no replay slot in time (--max-replays) and got a fresh session.",
            self.replays_refused.get(),
        );
        counter(
            "hub_replays_interrupted_total",
            "Replays cut by a trim or an outage between pages; the socket got a fresh session.",
            self.replays_interrupted.get(),
        );
        counter(
            "hub_connects_refused_total",
            "CONNECTs refused by the application (with JWT: no valid token): 44 unauthorized.",
            self.connects_refused.get(),
        );
        counter(
            "hub_resumes_not_owner_total",
            "Resumes of another user's session: a fresh session, the record left to its owner.",
            self.resumes_not_owner.get(),
        );
        counter(
            "hub_handshakes_refused_max_sessions_total",
            "Handshakes refused with 503: --max-sessions reached.",
            self.handshakes_refused_sessions.get(),
        );
        counter(
            "hub_handshakes_refused_per_address_total",
            "Handshakes refused with 429: --max-sessions-per-address reached for the client.",
            self.handshakes_refused_per_address.get(),
        );
        counter(
            "hub_handshakes_refused_unjoined_total",
            "Handshakes refused with 503: --max-unjoined reached.",
            self.handshakes_refused_unjoined.get(),
        );
        counter(
            "hub_handshakes_refused_unjoined_per_address_total",
            "Handshakes refused with 429: --max-unjoined-per-address reached for the client.",
            self.handshakes_refused_unjoined_per_address.get(),
        );
        counter(
            "hub_handshakes_refused_rate_total",
            "Handshakes refused with 429: --connections-per-second-per-address reached for the client.",
            self.handshakes_refused_rate.get(),
        );
        counter(
            "hub_origin_refused_total",
            "Publishes and Engine.IO requests refused with 403: Origin neither the hub's own nor in HUB_CORS_ORIGINS.",
            self.origin_refused.get(),
        );
        counter(
            "hub_publish_unauthorized_total",
            "Publishes refused with 401: no API key, or a wrong one.",
            self.publish_unauthorized.get(),
        );
        counter(
            "hub_publish_unsupported_media_type_total",
            "Publishes refused with 415: the body is not declared application/json.",
            self.publish_unsupported_media_type.get(),
        );
        counter(
            "hub_publish_rate_limited_per_address_total",
            "Publishes refused with 429: --publish-per-second-per-address reached for the client.",
            self.publish_rate_limited_per_address.get(),
        );
        counter(
            "hub_publish_rate_limited_per_key_total",
            "Publishes refused with 429: --publish-per-second-per-key reached for the API key.",
            self.publish_rate_limited_per_key.get(),
        );
        counter(
            "hub_websocket_unfinished_refused_total",
            "WebSockets closed (1013) because their unfinished frames would pass HUB_MAX_UNFINISHED_BYTES.",
            self.ws_unfinished_refused.get(),
        );
        counter(
            "hub_request_body_timeouts_total",
            "Requests answered 408 because their body did not arrive within the body timeout.",
            self.request_body_timeouts.get(),
        );
        counter(
            "hub_log_epoch_changes_total",
            "Times the log was found replaced (deleted, flushed, restarted empty); clients were disconnected.",
            self.log_epoch_changes.get(),
        );
        counter(
            "hub_socket_events_rate_limited_total",
            "Client events refused for HUB_SOCKET_EVENTS_PER_SECOND (acked rate limited, or dropped).",
            self.socket_events_rate_limited.get(),
        );
        counter(
            "hub_socket_abuse_disconnects_total",
            "Connections disconnected for events past the rate limit beyond HUB_SOCKET_ABUSE_LIMIT.",
            self.socket_abuse_disconnects.get(),
        );
        let name = "hub_room_events_refused_total";
        let _ = write!(
            out,
            "# HELP {name} join/leave events refused, by reason.\n# TYPE {name} counter\n"
        );
        for (reason, counter) in [
            ("invalid", &self.rooms_refused_invalid),
            ("reserved", &self.rooms_refused_reserved),
            ("forbidden", &self.rooms_refused_forbidden),
            ("too_many", &self.rooms_refused_too_many),
        ] {
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {}", counter.get());
        }
        let refused = &self.entries_refused;
        let _ = write!(
            out,
            "# HELP hub_stream_entries_refused_total A Node peer's stream entries read and not served, \
             by kind.\n# TYPE hub_stream_entries_refused_total counter\n"
        );
        for (kind, value) in [
            ("ack", refused.ack.get()),
            ("not_event", refused.not_event.get()),
            ("room_operation", refused.room_operation.get()),
        ] {
            let _ = writeln!(
                out,
                "hub_stream_entries_refused_total{{kind=\"{kind}\"}} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
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
        metrics.entries_unframed.inc();
        metrics.slow_consumers.add(4);
        metrics.server_disconnects.add(2);
        metrics.record_refreshes_failed.add(5);
        metrics.appends_failing.set(1);
        metrics.appends_failed.add(6);
        metrics.appends_outcome_unknown.add(7);
        metrics.idempotent_replays.add(8);
        metrics.idempotency_keys_evicted.add(9);
        metrics.replays_refused.add(16);
        metrics.replays_interrupted.add(17);
        metrics.engine_sessions.set(18);
        metrics.unjoined_sessions.set(19);
        metrics.handshakes_refused_sessions.add(20);
        metrics.handshakes_refused_per_address.add(21);
        metrics.handshakes_refused_unjoined.add(22);
        metrics.ws_unfinished_refused.add(23);
        assert!(metrics.ws_unfinished_bytes.add_within(7, 7));
        assert!(!metrics.ws_unfinished_bytes.add_within(1, 7));
        metrics.request_body_timeouts.add(25);
        metrics.log_epoch_changes.add(26);
        metrics.handshakes_refused_unjoined_per_address.add(27);
        metrics.handshakes_refused_rate.add(28);
        metrics.origin_refused.add(29);
        metrics.publish_unauthorized.add(30);
        metrics.publish_unsupported_media_type.add(31);
        metrics.publish_rate_limited_per_address.add(32);
        metrics.publish_rate_limited_per_key.add(33);
        metrics.socket_events_rate_limited.add(34);
        metrics.socket_abuse_disconnects.add(35);
        metrics.connects_refused.add(36);
        metrics.resumes_not_owner.add(37);
        metrics.rooms_refused_invalid.add(38);
        metrics.rooms_refused_reserved.add(39);
        metrics.rooms_refused_forbidden.add(40);
        metrics.rooms_refused_too_many.add(41);
        let text = metrics.render();
        for line in [
            "# TYPE hub_sessions gauge\nhub_sessions 3\n",
            "# TYPE hub_ready gauge\nhub_ready 1\n",
            "# TYPE hub_stream_entries_skipped_total counter\nhub_stream_entries_skipped_total 2\n",
            "# TYPE hub_stream_entries_refused_total counter\nhub_stream_entries_refused_total{kind=\"ack\"} 38\n",
            "hub_stream_entries_refused_total{kind=\"not_event\"} 39\n",
            "hub_stream_entries_refused_total{kind=\"room_operation\"} 40\n",
            "hub_entries_unframed_total 1\n",
            "hub_slow_consumers_total 4\n",
            "hub_server_disconnects_total 2\n",
            "hub_session_record_refreshes_failed_total 5\n",
            "# TYPE hub_appends_failing gauge\nhub_appends_failing 1\n",
            "# TYPE hub_appends_failed_total counter\nhub_appends_failed_total 6\n",
            "hub_appends_outcome_unknown_total 7\n",
            "hub_idempotent_replays_total 8\n",
            "hub_idempotency_keys_evicted_total 9\n",
            "hub_replays_refused_total 16\n",
            "hub_replays_interrupted_total 17\n",
            "# TYPE hub_engine_sessions gauge\nhub_engine_sessions 18\n",
            "# TYPE hub_unjoined_sessions gauge\nhub_unjoined_sessions 19\n",
            "hub_handshakes_refused_max_sessions_total 20\n",
            "hub_handshakes_refused_per_address_total 21\n",
            "hub_handshakes_refused_unjoined_total 22\n",
            "hub_websocket_unfinished_refused_total 23\n",
            "# TYPE hub_websocket_unfinished_bytes gauge\nhub_websocket_unfinished_bytes 7\n",
            "hub_request_body_timeouts_total 25\n",
            "hub_log_epoch_changes_total 26\n",
            "hub_handshakes_refused_unjoined_per_address_total 27\n",
            "# TYPE hub_handshakes_refused_rate_total counter\nhub_handshakes_refused_rate_total 28\n",
            "# TYPE hub_origin_refused_total counter\nhub_origin_refused_total 29\n",
            "# TYPE hub_publish_unauthorized_total counter\nhub_publish_unauthorized_total 30\n",
            "hub_publish_unsupported_media_type_total 31\n",
            "hub_publish_rate_limited_per_address_total 32\n",
            "hub_publish_rate_limited_per_key_total 33\n",
            "# TYPE hub_socket_events_rate_limited_total counter\nhub_socket_events_rate_limited_total 34\n",
            "# TYPE hub_socket_abuse_disconnects_total counter\nhub_socket_abuse_disconnects_total 35\n",
            "# TYPE hub_connects_refused_total counter\nhub_connects_refused_total 36\n",
            "# TYPE hub_resumes_not_owner_total counter\nhub_resumes_not_owner_total 37\n",
            "# TYPE hub_room_events_refused_total counter\n",
            "hub_room_events_refused_total{reason=\"invalid\"} 38\n",
            "hub_room_events_refused_total{reason=\"reserved\"} 39\n",
            "hub_room_events_refused_total{reason=\"forbidden\"} 40\n",
            "hub_room_events_refused_total{reason=\"too_many\"} 41\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
        assert_eq!(text.matches("# HELP ").count(), 36);
    }
}
