//! Metrics: every counter, gauge and histogram of one hub instance, in a Prometheus registry.
//!
//! Owns: one [`prometheus::Registry`] per instance (tests run several in one process, so not the
//! crate's global one) and a handle per number, resolved once here: a labelled family's children
//! are looked up when [`Metrics`] is built, so the code that counts holds an `Arc<Metrics>` and
//! increments a field (one atomic add; no label lookup, lock or allocation). `GET /metrics` calls
//! [`Metrics::render`] (text exposition format 0.0.4, `# HELP` and `# TYPE` for every family).
//!
//! With `HUB_METRICS=off` ([`Metrics::new`] with `false`) counters and histograms record nothing
//! (what the bench compares); gauges still do, since the hub reads some of them itself (`/readyz`,
//! the unfinished-bytes budget).
//!
//! Adding a metric: a field here, built in `Metrics::new` (its name and help), and its increment
//! where it happens.

mod families;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicI64, Ordering};

use prometheus::{Encoder, Histogram, IntCounter, IntGauge, Registry, TextEncoder};

pub use self::families::{
    ByTransport, Labelled, Published, Refused, DISCONNECT_REASONS, FRAME_REFUSALS,
    PUBLISH_FAILURES, RESUME_OUTCOMES,
};

/// A number that only goes up (Prometheus `counter`); records nothing when metrics are off.
#[derive(Debug, Clone)]
pub struct Counter {
    inner: IntCounter,
    on: bool,
}

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        if self.on {
            self.inner.inc();
        }
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        if self.on {
            self.inner.inc_by(n);
        }
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.inner.get()
    }
}

/// A number that goes up and down (Prometheus `gauge`). Always recorded: the hub reads some.
#[derive(Debug, Clone)]
pub struct Gauge(IntGauge);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: i64) {
        self.0.set(value);
    }

    /// Adds `n` (negative: subtracts).
    pub fn add(&self, n: i64) {
        self.0.add(n);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.get()
    }
}

/// A gauge that is a bound's own count: [`BoundGauge::add_within`] must be one atomic
/// read-modify-write (concurrent callers never pass the limit together), which `IntGauge` does
/// not offer. So the count is our atomic, copied into its registered gauge when rendered.
#[derive(Debug)]
pub struct BoundGauge {
    count: AtomicI64,
    exposed: IntGauge,
}

impl BoundGauge {
    /// The current value.
    pub fn get(&self) -> i64 {
        self.count.load(Ordering::Acquire)
    }

    /// Adds `n` unless the value would pass `limit`; whether it did.
    pub fn add_within(&self, n: i64, limit: i64) -> bool {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |value| {
                value.checked_add(n).filter(|&after| after <= limit)
            })
            .is_ok()
    }

    /// Subtracts `n`.
    pub fn sub(&self, n: i64) {
        self.count.fetch_sub(n, Ordering::AcqRel);
    }
}

/// A distribution in seconds (Prometheus `histogram`); records nothing when metrics are off.
#[derive(Debug, Clone)]
pub struct Seconds {
    inner: Histogram,
    on: bool,
}

impl Seconds {
    /// Whether observations are recorded: callers skip reading the clock when not.
    #[inline]
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Records one observation of `seconds`.
    #[inline]
    pub fn observe(&self, seconds: f64) {
        if self.on {
            self.inner.observe(seconds);
        }
    }

    /// Records one observation of `ms` milliseconds.
    #[inline]
    pub fn observe_ms(&self, ms: u64) {
        self.observe(ms as f64 / 1000.0);
    }

    /// Records `times` observations of the same `ms` milliseconds (one fan-out's lag of one frame,
    /// for each socket it was written to): counted locally, then added to the shared histogram once.
    pub fn observe_ms_times(&self, ms: u64, times: u64) {
        if !self.on || times == 0 {
            return;
        }
        let local = self.inner.local();
        let seconds = ms as f64 / 1000.0;
        for _ in 0..times {
            local.observe(seconds);
        }
        local.flush();
    }

    /// How many observations were recorded.
    pub fn count(&self) -> u64 {
        self.inner.get_sample_count()
    }
}

/// The metrics of one instance. Field docs say what is counted; each family's name and help are in
/// `Metrics::new` (src/metrics/families.rs).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Whether counters and histograms record (`HUB_METRICS`).
    pub enabled: bool,
    /// Sockets joined to a namespace on this instance (set by the Hub).
    pub sockets: Gauge,
    /// 1 while the log backend is reachable and its read loop reading (set by the backend).
    pub log_reading: Gauge,
    /// Engine.IO sessions open (set by [`crate::admission`]).
    pub engine_sessions: Gauge,
    /// Engine.IO sessions open that have not joined a namespace (set by [`crate::admission`]).
    pub unjoined_sessions: Gauge,
    /// Engine.IO connections open, by their current transport (`hub_connections{transport}`).
    pub connections: ByTransport<Gauge>,
    /// Engine.IO handshakes (sessions opened), by first transport.
    pub handshakes: ByTransport<Counter>,
    /// Polling sessions upgraded to WebSocket.
    pub upgrades: Counter,
    /// Sockets that joined a namespace (fresh or resumed).
    pub namespace_joins: Counter,
    /// Sessions ended, by Socket.IO disconnect reason ([`DISCONNECT_REASONS`]).
    pub disconnects: Labelled,
    /// Notifications published, by source (HTTP, socket `notify`, read from a peer's appends).
    pub published: Published,
    /// Publishes that failed, by cause ([`PUBLISH_FAILURES`]).
    pub publish_failed: Labelled,
    /// Live entries handed to a connection's writer (one per entry per socket).
    pub deliveries: Counter,
    /// Of those, the ones the Hub wrote to the WebSocket itself (the socket's lane open).
    pub deliveries_direct: Counter,
    /// Bytes of those entries on the wire.
    pub delivered_bytes: Counter,
    /// Append round trips (a publish's XADD or embedded append), in seconds.
    pub append_seconds: Seconds,
    /// Entry time (its stream id's milliseconds) to its hand-over to a connection's writer.
    pub delivery_lag: Seconds,
    /// How far the read loop's last batch was behind the clock, in milliseconds (on Redis 0
    /// once a read finds nothing new: the loop is at the stream's tip).
    pub read_lag_ms: Gauge,
    /// Resumes, by outcome ([`RESUME_OUTCOMES`]: `exact`, or why a fresh session instead).
    pub resumes: Labelled,
    /// Entries written to resuming sockets (replays).
    pub replayed_entries: Counter,
    /// Frames and packets that ended a session, by kind ([`FRAME_REFUSALS`]).
    pub frames_refused: Labelled,
    /// Redis commands of the read loop that failed (each is followed by a reconnect).
    pub redis_errors: Counter,
    /// Reconnects of the read loop after a Redis error.
    pub redis_reconnects: Counter,
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
    /// Replays whose client took nothing for `--replay-stall-ms`: the session was closed (the
    /// client resumes again), its slot freed.
    pub replays_stalled: Counter,
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
    pub ws_unfinished_bytes: BoundGauge,
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

impl Default for Metrics {
    /// Recording metrics (the default of `HUB_METRICS`).
    fn default() -> Self {
        Metrics::new(true)
    }
}

impl Metrics {
    /// Prometheus text exposition format 0.0.4: every family with `# HELP` and `# TYPE`.
    pub fn render(&self) -> String {
        self.ws_unfinished_bytes
            .exposed
            .set(self.ws_unfinished_bytes.get());
        let mut out = String::new();
        // Only fails on a family the registry itself would refuse (duplicate label names), which
        // `Metrics::new` never builds; an empty answer then beats a scrape that takes the hub down.
        if let Err(err) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            log::error!("metrics could not be rendered: {err}");
        }
        out
    }

    /// The text format's content type.
    pub fn content_type(&self) -> String {
        TextEncoder::new().format_type().to_owned()
    }
}
