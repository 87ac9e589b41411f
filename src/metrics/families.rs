//! Every family's name, help, labels and buckets, registered once; labelled children resolved here.

use std::sync::atomic::AtomicI64;

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use super::{BoundGauge, Counter, Gauge, Metrics, Seconds};

/// Socket.IO's disconnect reasons, as a Node server reports them, plus the hub's own
/// (`slow consumer`, `log replaced`, `token expired`): the `reason` label of `hub_disconnects_total`.
pub const DISCONNECT_REASONS: [&str; 11] = [
    "transport close",
    "transport error",
    "ping timeout",
    "parse error",
    "message too big",
    "connect timeout",
    "server shutting down",
    "log replaced",
    "slow consumer",
    "server namespace disconnect",
    "token expired",
];

/// Why a publish failed: the `cause` label of `hub_notifications_failed_total`.
/// `unavailable`: nothing was appended; `outcome_unknown`: sent, not confirmed;
/// `key_reused`: the idempotency key belongs to another notification (422). Requests refused
/// before a publish (invalid 400/422, 401, 413, 415, 429) are counted by their own families.
pub const PUBLISH_FAILURES: [&str; 3] = ["unavailable", "outcome_unknown", "key_reused"];

/// A resume's outcome: the `outcome` label of `hub_resumes_total`. `exact`: resumed, every missed
/// entry replayed; the others got a fresh session: `unknown` (no such record: never issued, expired
/// with its window, or already resumed: an expired record is deleted by its time to live, so it
/// reads as unknown), `trimmed` (an entry after the offset was trimmed), `ahead` (an offset the log
/// never issued), `epoch` (the log was replaced), `identity` (another user's session), `live` (still
/// live elsewhere past the wait), `malformed` (not an offset), `unreplayable` (an entry after it
/// cannot be replayed), `busy` (no replay slot), `unavailable` (the log did not answer).
pub const RESUME_OUTCOMES: [&str; 11] = [
    "exact",
    "unknown",
    "trimmed",
    "ahead",
    "epoch",
    "identity",
    "live",
    "malformed",
    "unreplayable",
    "busy",
    "unavailable",
];

/// What a client sent that ended its session: the `kind` label of `hub_frames_refused_total`.
/// `protocol`: a WebSocket protocol violation or transport misuse; `invalid_payload`: text that is
/// not UTF-8; `parse`: an Engine.IO or Socket.IO packet that does not decode or is not allowed now;
/// `too_big`: past `HUB_MAX_PAYLOAD`; `unfinished_over_budget`: unfinished frames past
/// `HUB_MAX_UNFINISHED_BYTES`.
pub const FRAME_REFUSALS: [&str; 5] = [
    "protocol",
    "invalid_payload",
    "parse",
    "too_big",
    "unfinished_over_budget",
];

/// One handle per transport.
#[derive(Debug, Clone)]
pub struct ByTransport<T> {
    /// `transport="polling"`.
    pub polling: T,
    /// `transport="websocket"`.
    pub websocket: T,
}

impl<T> ByTransport<T> {
    /// The handle of `websocket` (true) or polling.
    pub fn of(&self, websocket: bool) -> &T {
        if websocket {
            &self.websocket
        } else {
            &self.polling
        }
    }
}

/// A counter family with one label whose values are fixed: children resolved at start, picked by
/// value. For events that are not per delivery (a disconnect, a resume): the lookup is a scan of a
/// few static strings.
#[derive(Debug)]
pub struct Labelled {
    values: &'static [&'static str],
    children: Vec<Counter>,
}

impl Labelled {
    /// Adds one to the child of `value`; a value not in the family's list is a bug, counted
    /// nowhere (and logged in debug builds).
    pub fn inc(&self, value: &str) {
        match self.values.iter().position(|v| *v == value) {
            Some(at) => self.children[at].inc(),
            None => debug_assert!(false, "metric label {value:?} not in {:?}", self.values),
        }
    }

    /// The child of `value` (for tests and reads).
    pub fn get(&self, value: &str) -> u64 {
        self.values
            .iter()
            .position(|v| *v == value)
            .map_or(0, |at| self.children[at].get())
    }
}

/// Notifications published, by `source`.
#[derive(Debug)]
pub struct Published {
    /// `source="http"`: `POST /notifications/notify`.
    pub http: Counter,
    /// `source="socket"`: a client's `notify` event.
    pub socket: Counter,
    /// `source="peer"`: read from the stream, appended by another instance or a Node peer.
    pub peer: Counter,
}

/// A Node peer's stream entries the hub reads and does not serve, one counter per `kind` label.
#[derive(Debug)]
pub struct Refused {
    /// `kind="ack"`: broadcasts whose emitter waits for acknowledgements (`packet.id`, `requestId`),
    /// which only the emitting instance can collect.
    pub ack: Counter,
    /// `kind="not_event"`: BROADCAST entries whose packet is not an EVENT with an event array.
    pub not_event: Counter,
    /// `kind="room_operation"`: SOCKETS_JOIN / SOCKETS_LEAVE (`io.in(…).socketsJoin(…)`), not applied.
    pub room_operation: Counter,
}

/// Append round trips: 0.5 ms (the embedded log) to 2.5 s (past Redis's command timeout).
const APPEND_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Entry time to delivery: entry times have millisecond resolution, so from 1 ms; up to 10 s.
const LAG_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Registers families in one registry. Names and labels are fixed here, so a registration error
/// (a duplicate name) is a bug that every test run shows at once.
struct Builder {
    registry: Registry,
    on: bool,
}

impl Builder {
    fn register<C: prometheus::core::Collector + Clone + 'static>(&self, collector: &C) {
        self.registry
            .register(Box::new(collector.clone()))
            .expect("metric families have unique names and valid labels");
    }

    fn counter(&self, name: &str, help: &str) -> Counter {
        let inner = IntCounter::new(name, help).expect("valid metric name");
        self.register(&inner);
        Counter { inner, on: self.on }
    }

    fn counters<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label: &str,
        values: [&str; N],
    ) -> [Counter; N] {
        let family = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
        self.register(&family);
        values.map(|value| Counter {
            inner: family.with_label_values(&[value]),
            on: self.on,
        })
    }

    fn labelled(
        &self,
        name: &str,
        help: &str,
        label: &str,
        values: &'static [&'static str],
    ) -> Labelled {
        let family = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
        self.register(&family);
        let children = values
            .iter()
            .map(|value| Counter {
                inner: family.with_label_values(&[*value]),
                on: self.on,
            })
            .collect();
        Labelled { values, children }
    }

    fn gauge(&self, name: &str, help: &str) -> Gauge {
        let inner = IntGauge::new(name, help).expect("valid metric name");
        self.register(&inner);
        Gauge(inner)
    }

    fn gauges_by_transport(&self, name: &str, help: &str) -> ByTransport<Gauge> {
        let family = IntGaugeVec::new(Opts::new(name, help), &["transport"]).expect("valid");
        self.register(&family);
        ByTransport {
            polling: Gauge(family.with_label_values(&["polling"])),
            websocket: Gauge(family.with_label_values(&["websocket"])),
        }
    }

    fn seconds(&self, name: &str, help: &str, buckets: &[f64]) -> Seconds {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        let inner = Histogram::with_opts(opts).expect("valid histogram");
        self.register(&inner);
        Seconds { inner, on: self.on }
    }
}

impl Metrics {
    /// Every family registered in a new registry; `enabled` false (`HUB_METRICS=off`): counters
    /// and histograms record nothing.
    pub fn new(enabled: bool) -> Metrics {
        let b = Builder {
            registry: Registry::new(),
            on: enabled,
        };
        let [handshakes_polling, handshakes_websocket] = b.counters(
            "hub_handshakes_total",
            "Engine.IO sessions opened, by first transport.",
            "transport",
            ["polling", "websocket"],
        );
        let [http, socket, peer] = b.counters(
            "hub_notifications_published_total",
            "Notifications published, by source: http (POST /notifications/notify), socket (a notify event), peer (read from the stream, appended by another instance).",
            "source",
            ["http", "socket", "peer"],
        );
        let [ack, not_event, room_operation] = b.counters(
            "hub_stream_entries_refused_total",
            "A Node peer's stream entries read and not served, by kind.",
            "kind",
            ["ack", "not_event", "room_operation"],
        );
        let [invalid, reserved, forbidden, too_many] = b.counters(
            "hub_room_events_refused_total",
            "join/leave events refused, by reason.",
            "reason",
            ["invalid", "reserved", "forbidden", "too_many"],
        );
        let unfinished = b.gauge(
            "hub_websocket_unfinished_bytes",
            "Bytes WebSockets hold for unfinished frames and fragmented messages.",
        );
        Metrics {
            enabled,
            sockets: b.gauge("hub_sessions", "Sockets joined to a namespace on this instance."),
            log_reading: b.gauge("hub_ready", "Whether the log backend is reachable and being read."),
            appends_failing: b.gauge(
                "hub_appends_failing",
                "Whether the last append failed and no append or probe has succeeded since.",
            ),
            engine_sessions: b.gauge("hub_engine_sessions", "Engine.IO sessions open on this instance."),
            unjoined_sessions: b.gauge(
                "hub_unjoined_sessions",
                "Engine.IO sessions open that have not joined a namespace yet.",
            ),
            connections: b.gauges_by_transport(
                "hub_connections",
                "Engine.IO connections open on this instance, by current transport.",
            ),
            handshakes: ByTransport {
                polling: handshakes_polling,
                websocket: handshakes_websocket,
            },
            upgrades: b.counter("hub_upgrades_total", "Polling sessions upgraded to WebSocket."),
            namespace_joins: b.counter(
                "hub_namespace_joins_total",
                "Sockets that joined a namespace (fresh or resumed).",
            ),
            disconnects: b.labelled(
                "hub_disconnects_total",
                "Sessions ended, by Socket.IO disconnect reason.",
                "reason",
                &DISCONNECT_REASONS,
            ),
            published: Published { http, socket, peer },
            publish_failed: b.labelled(
                "hub_notifications_failed_total",
                "Publishes that failed, by cause: unavailable (nothing appended), outcome_unknown (may be appended), key_reused.",
                "cause",
                &PUBLISH_FAILURES,
            ),
            deliveries: b.counter(
                "hub_deliveries_total",
                "Live entries handed to a connection's writer, one per entry per socket.",
            ),
            deliveries_direct: b.counter(
                "hub_deliveries_direct_total",
                "Of hub_deliveries_total, the entries the Hub wrote to the WebSocket itself (a joined socket past its recovery handover); the rest went through the socket's session.",
            ),
            delivered_bytes: b.counter(
                "hub_delivered_bytes_total",
                "Bytes on the wire of the live entries handed to connections' writers.",
            ),
            append_seconds: b.seconds(
                "hub_publish_append_seconds",
                "Append round trip of a publish (XADD on Redis), in seconds.",
                &APPEND_BUCKETS,
            ),
            delivery_lag: b.seconds(
                "hub_delivery_lag_seconds",
                "Entry time (its stream id) to its hand-over to a connection's writer, in seconds.",
                &LAG_BUCKETS,
            ),
            read_lag_ms: b.gauge(
                "hub_read_lag_milliseconds",
                "How far behind the clock the newest entry of the read loop's last batch was, in milliseconds; on Redis 0 once a read finds nothing new.",
            ),
            resumes: b.labelled(
                "hub_resumes_total",
                "Resumes, by outcome: exact, or why the socket got a fresh session instead.",
                "outcome",
                &RESUME_OUTCOMES,
            ),
            replayed_entries: b.counter(
                "hub_replayed_entries_total",
                "Entries replayed to resuming sockets.",
            ),
            frames_refused: b.labelled(
                "hub_frames_refused_total",
                "Frames and packets from clients that ended their session, by kind.",
                "kind",
                &FRAME_REFUSALS,
            ),
            redis_errors: b.counter(
                "hub_redis_errors_total",
                "Redis read-loop commands or connects that failed.",
            ),
            redis_reconnects: b.counter(
                "hub_redis_reconnects_total",
                "Read-loop reconnects to Redis after an error.",
            ),
            entries_skipped: b.counter(
                "hub_stream_entries_skipped_total",
                "Stream entries read but not delivered: not a broadcast or room operation, or malformed.",
            ),
            entries_refused: Refused {
                ack,
                not_event,
                room_operation,
            },
            entries_unframed: b.counter(
                "hub_entries_unframed_total",
                "Log entries whose event is not a JSON array, never delivered.",
            ),
            slow_consumers: b.counter(
                "hub_slow_consumers_total",
                "Clients dropped for not taking what was sent to them.",
            ),
            server_disconnects: b.counter(
                "hub_server_disconnects_total",
                "Sockets disconnected by a disconnect request (POST /sockets/disconnect, disconnectSockets).",
            ),
            record_refreshes_failed: b.counter(
                "hub_session_record_refreshes_failed_total",
                "Session record refreshes that failed; those sessions may not resume.",
            ),
            appends_failed: b.counter(
                "hub_appends_failed_total",
                "Appends that failed with nothing published (never sent, or refused by the log).",
            ),
            appends_outcome_unknown: b.counter(
                "hub_appends_outcome_unknown_total",
                "Appends sent without an answer: they may or may not have been published.",
            ),
            idempotent_replays: b.counter(
                "hub_idempotent_replays_total",
                "Publishes whose idempotency key was already appended: answered with the first id.",
            ),
            idempotency_keys_evicted: b.counter(
                "hub_idempotency_keys_evicted_total",
                "Idempotency keys the embedded log forgot before their time to live (table full).",
            ),
            replays_refused: b.counter(
                "hub_replays_refused_total",
                "Resumes that found no replay slot in time (--max-replays) and got a fresh session.",
            ),
            replays_interrupted: b.counter(
                "hub_replays_interrupted_total",
                "Replays cut by a trim or an outage between pages; the socket got a fresh session.",
            ),
            replays_stalled: b.counter(
                "hub_replays_stalled_total",
                "Replays whose client took nothing for --replay-stall-ms; the session was closed.",
            ),
            connects_refused: b.counter(
                "hub_connects_refused_total",
                "CONNECTs refused by the application (with JWT: no valid token): 44 unauthorized.",
            ),
            resumes_not_owner: b.counter(
                "hub_resumes_not_owner_total",
                "Resumes of another user's session: a fresh session, the record left to its owner.",
            ),
            handshakes_refused_sessions: b.counter(
                "hub_handshakes_refused_max_sessions_total",
                "Handshakes refused with 503: --max-sessions reached.",
            ),
            handshakes_refused_per_address: b.counter(
                "hub_handshakes_refused_per_address_total",
                "Handshakes refused with 429: --max-sessions-per-address reached for the client.",
            ),
            handshakes_refused_unjoined: b.counter(
                "hub_handshakes_refused_unjoined_total",
                "Handshakes refused with 503: --max-unjoined reached.",
            ),
            handshakes_refused_unjoined_per_address: b.counter(
                "hub_handshakes_refused_unjoined_per_address_total",
                "Handshakes refused with 429: --max-unjoined-per-address reached for the client.",
            ),
            handshakes_refused_rate: b.counter(
                "hub_handshakes_refused_rate_total",
                "Handshakes refused with 429: --connections-per-second-per-address reached for the client.",
            ),
            origin_refused: b.counter(
                "hub_origin_refused_total",
                "Publishes and Engine.IO requests refused with 403: Origin neither the hub's own nor in HUB_CORS_ORIGINS.",
            ),
            publish_unauthorized: b.counter(
                "hub_publish_unauthorized_total",
                "Publishes refused with 401: no API key, or a wrong one.",
            ),
            publish_unsupported_media_type: b.counter(
                "hub_publish_unsupported_media_type_total",
                "Publishes refused with 415: the body is not declared application/json.",
            ),
            publish_rate_limited_per_address: b.counter(
                "hub_publish_rate_limited_per_address_total",
                "Publishes refused with 429: --publish-per-second-per-address reached for the client.",
            ),
            publish_rate_limited_per_key: b.counter(
                "hub_publish_rate_limited_per_key_total",
                "Publishes refused with 429: --publish-per-second-per-key reached for the API key.",
            ),
            ws_unfinished_bytes: BoundGauge {
                count: AtomicI64::new(0),
                exposed: unfinished.0,
            },
            ws_unfinished_refused: b.counter(
                "hub_websocket_unfinished_refused_total",
                "Connections closed (WebSockets with 1013) because their unfinished frames, messages or binary packet attachments would pass HUB_MAX_UNFINISHED_BYTES.",
            ),
            request_body_timeouts: b.counter(
                "hub_request_body_timeouts_total",
                "Requests answered 408 because their body did not arrive within the body timeout.",
            ),
            log_epoch_changes: b.counter(
                "hub_log_epoch_changes_total",
                "Times the log was found replaced (deleted, flushed, restarted empty); clients were disconnected.",
            ),
            socket_events_rate_limited: b.counter(
                "hub_socket_events_rate_limited_total",
                "Client events refused for HUB_SOCKET_EVENTS_PER_SECOND (acked rate limited, or dropped).",
            ),
            socket_abuse_disconnects: b.counter(
                "hub_socket_abuse_disconnects_total",
                "Connections disconnected for events past the rate limit beyond HUB_SOCKET_ABUSE_LIMIT.",
            ),
            rooms_refused_invalid: invalid,
            rooms_refused_reserved: reserved,
            rooms_refused_forbidden: forbidden,
            rooms_refused_too_many: too_many,
            registry: b.registry,
        }
    }
}
