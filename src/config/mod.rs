//! Configuration: every setting is a command-line flag and an environment variable, declared once
//! on [`Config`] with its default and help; clap derives the parser and `--help` from that
//! declaration, so the three cannot drift apart.
//!
//! The Node original's names (`PORT`, `REDIS_URL`) are kept so people can switch; the rest are
//! `HUB_*`. A flag wins over its environment variable; a variable set to the empty string counts
//! as unset.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{CommandFactory, FromArgMatches};

mod admin;
mod parse;
mod security;

pub use admin::{Admin, AdminMode, AdminSwitch};
use parse::{
    at_least_one, endpoint_path, millis, namespaces, origins, project_path, redis_url,
    stream_shards, threshold_or_off,
};
pub use security::{Command, Secret, Security, TokenRequest};

/// How Socket.IO packets are encoded on the wire (Node's `parser` server option).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Parser {
    /// `socket.io-parser`: text packets, binary as placeholders plus attachments (reference §2).
    #[default]
    Json,
    /// `socket.io-msgpack-parser`: every packet one msgpack-encoded binary message.
    Msgpack,
}

/// The whole configuration of one hub instance.
///
/// Each field's first doc line is also its `--help` text.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "realtime-hub",
    about = "A Socket.IO v5 notification hub with connection state recovery",
    // Not the struct's doc comment, which is written for Rust readers.
    long_about = None,
    // Help on its own line: without clap's `wrap_help` (and its terminal dependency) nothing wraps
    // it, and a column layout would push each line far past a terminal's width.
    next_line_help = true,
    // As the hand-written parser did: a flag given twice takes its last value (a script can append
    // an override); clap's default is to refuse the second.
    args_override_self = true,
    after_help = "Every option can also be set by its environment variable; a flag wins, and an \
                  empty variable counts as unset. Log level: RUST_LOG (default info).",
)]
pub struct Config {
    /// Address to bind
    // Every interface, as Node listens by default.
    #[arg(long, env = "HUB_HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Port to listen on; 0 picks a free one
    // The Node original's port.
    #[arg(long, env = "PORT", default_value = "3000")]
    pub port: u16,
    /// Redis (7.0 or newer) for the shared log: redis://host:port (one server),
    /// redis+sentinel://host:port[,host:port…]/<master name> (the primary Sentinel names, followed
    /// across failovers) or redis+cluster://host:port[,host:port…] (a Redis Cluster); unset: the
    /// embedded log
    #[arg(long, env = "REDIS_URL", value_name = "URL", value_parser = redis_url)]
    pub redis_url: Option<String>,
    /// Redis stream key
    // `@socket.io/redis-streams-adapter`'s `streamName` default, so both can share a stream.
    #[arg(
        long,
        env = "HUB_STREAM_KEY",
        default_value = "socket.io",
        value_name = "KEY"
    )]
    pub stream_key: String,
    /// Streams the log is sharded over: 1 (one stream, the Node adapter's format, Node peers
    /// compatible) or more, on Redis only (README "Beyond one stream: shards")
    #[arg(long, env = "HUB_STREAM_SHARDS", default_value = "1", value_name = "N",
          value_parser = stream_shards)]
    pub stream_shards: usize,
    /// Entries kept in the log before the oldest are trimmed
    // The adapter's `maxLen` default (`XADD … MAXLEN ~`).
    #[arg(long, env = "HUB_MAX_LEN", default_value = "10000", value_name = "N",
          value_parser = at_least_one)]
    pub max_len: usize,
    /// How long after a disconnect a session can be recovered
    // Socket.IO's `maxDisconnectionDuration` default.
    #[arg(long = "recovery-window-ms", env = "HUB_RECOVERY_WINDOW_MS", default_value = "120000",
          value_name = "MS", value_parser = millis)]
    pub recovery_window: Duration,
    /// Engine.IO ping interval
    // Engine.IO's heartbeat defaults: a ping this often, ...
    #[arg(long = "ping-interval-ms", env = "HUB_PING_INTERVAL_MS", default_value = "25000",
          value_name = "MS", value_parser = millis)]
    pub ping_interval: Duration,
    /// Engine.IO ping timeout
    // ... and the session closed if no pong arrives within this.
    #[arg(long = "ping-timeout-ms", env = "HUB_PING_TIMEOUT_MS", default_value = "20000",
          value_name = "MS", value_parser = millis)]
    pub ping_timeout: Duration,
    /// Largest Engine.IO message accepted, in bytes; WebSocket close 1009 above it
    // Engine.IO's `maxHttpBufferSize` default.
    #[arg(long, env = "HUB_MAX_PAYLOAD", default_value = "1000000", value_name = "BYTES",
          value_parser = at_least_one)]
    pub max_payload: usize,
    /// Time a connection has to join a namespace after the Engine.IO handshake
    // Socket.IO's `connectTimeout` default.
    #[arg(long = "connect-timeout-ms", env = "HUB_CONNECT_TIMEOUT_MS", default_value = "45000",
          value_name = "MS", value_parser = millis)]
    pub connect_timeout: Duration,
    /// Time a polling session has to complete its upgrade to WebSocket
    // Engine.IO's `upgradeTimeout` default.
    #[arg(long = "upgrade-timeout-ms", env = "HUB_UPGRADE_TIMEOUT_MS", default_value = "10000",
          value_name = "MS", value_parser = millis)]
    pub upgrade_timeout: Duration,
    /// Path of the Engine.IO endpoint, with its slashes: `/socket.io/`
    #[arg(long, env = "HUB_PATH", default_value = "/socket.io/", value_parser = endpoint_path)]
    pub path: String,
    /// Comma-separated Socket.IO namespaces clients may join (broadcasts go to `/`)
    // Fully qualified `Vec`: clap then takes the whole list as one value, parsed by `namespaces`.
    #[arg(long, env = "HUB_NAMESPACES", default_value = "/", value_name = "LIST",
          value_parser = namespaces)]
    pub namespaces: ::std::vec::Vec<String>,
    /// Comma-separated origins allowed cross-site (`scheme://host[:port]`), `*` for any, `null`
    /// for sandboxed pages; none: same origin only
    #[arg(long, env = "HUB_CORS_ORIGINS", default_value = "", hide_default_value = true,
          value_name = "LIST", value_parser = origins)]
    pub cors_origins: ::std::vec::Vec<String>,
    /// Connection state recovery, on or off
    // true/false and 1/0 are accepted too (hidden from the help), as the hand-written parser did.
    #[arg(long, env = "HUB_RECOVERY", default_value = "on", action = clap::ArgAction::Set,
          value_parser = PossibleValuesParser::new([
              PossibleValue::new("on").aliases(["true", "1"]),
              PossibleValue::new("off").aliases(["false", "0"]),
          ]).map(|value| matches!(value.as_str(), "on" | "true" | "1")))]
    pub recovery: bool,
    /// Counters and histograms in `GET /metrics`, on or off (off: they record nothing and
    /// `/metrics` answers 404; gauges, which the hub reads itself, are kept either way)
    // A switch for measuring what recording costs (scripts/bench.sh compares both).
    #[arg(long, env = "HUB_METRICS", default_value = "on", action = clap::ArgAction::Set,
          value_parser = PossibleValuesParser::new([
              PossibleValue::new("on").aliases(["true", "1"]),
              PossibleValue::new("off").aliases(["false", "0"]),
          ]).map(|value| matches!(value.as_str(), "on" | "true" | "1")))]
    pub metrics: bool,
    /// How long an instance's lease on Redis outlives its last refresh (refreshed every third of it):
    /// a session live on an instance that died becomes resumable elsewhere this long after, and a
    /// resume of a session still live waits at most this long for it to drop, then fails cleanly
    #[arg(long = "instance-lease-ms", env = "HUB_INSTANCE_LEASE_MS", default_value = "3000",
          value_name = "MS", value_parser = millis)]
    pub instance_lease: Duration,
    /// Engine.IO only: echo every message (the Engine.IO conformance suite's application; no flag).
    #[arg(skip)]
    pub engine_echo: bool,
    /// Largest `POST /notifications/notify` body, in bytes; 413 above it
    #[arg(long, env = "HUB_MAX_NOTIFY_BYTES", default_value_t = crate::app::DEFAULT_MAX_NOTIFY_BYTES,
          value_name = "BYTES", value_parser = at_least_one)]
    pub max_notify_bytes: usize,
    /// Outgoing bytes a client may leave unread before its session is closed (it recovers on
    /// reconnect)
    #[arg(long, env = "HUB_MAX_BUFFERED_BYTES", default_value = "8388608", value_name = "BYTES",
          value_parser = at_least_one)]
    pub max_buffered_bytes: usize,
    /// How long an idempotency key is remembered: a retry with it within this time publishes
    /// nothing and answers with the first publish
    // Stripe keeps keys for 24 hours; the same as `store::DEFAULT_IDEMPOTENCY_TTL` (tested).
    #[arg(long = "idempotency-ttl-ms", env = "HUB_IDEMPOTENCY_TTL_MS", default_value = "86400000",
          value_name = "MS", value_parser = millis)]
    pub idempotency_ttl: Duration,
    /// Idempotency keys the embedded log remembers at most; past it the oldest is forgotten early
    /// (on Redis, keys expire by their time to live only)
    #[arg(long, env = "HUB_IDEMPOTENCY_MAX_KEYS", value_name = "N", value_parser = at_least_one,
          default_value_t = crate::store::DEFAULT_IDEMPOTENCY_MAX_KEYS)]
    pub idempotency_max_keys: usize,
    /// Redis replicas that must have each notification before it is acknowledged (`WAIT`): with
    /// 1 or more, a failover loses no acknowledged notification; 0: acknowledged once the primary
    /// has it (replication is asynchronous)
    #[arg(
        long,
        env = "HUB_REDIS_MIN_REPLICAS",
        default_value = "0",
        value_name = "N"
    )]
    pub redis_min_replicas: u32,
    /// How long an append waits for those replicas; past it the publisher gets the 503 of an
    /// unknown outcome (a retry with the same Idempotency-Key is safe)
    #[arg(long = "redis-min-replicas-timeout-ms", env = "HUB_REDIS_MIN_REPLICAS_TIMEOUT_MS",
          default_value = "1000", value_name = "MS", value_parser = millis)]
    pub redis_min_replicas_timeout: Duration,
    /// Embedded log only: bytes of entries kept before the oldest are trimmed (with --max-len,
    /// whichever is reached first)
    // 64 MiB: the count cap alone lets 10,000 large entries take 680 MB.
    #[arg(long, env = "HUB_MAX_LOG_BYTES", default_value = "67108864", value_name = "BYTES",
          value_parser = at_least_one)]
    pub max_log_bytes: usize,
    /// Resumes replaying missed entries at once; more wait for a slot (--replay-wait-ms)
    // Each replay holds about one page (256 KiB) and what is on its way to its client (another
    // 256 KiB): 64 of them stay well under 64 MB.
    #[arg(long, env = "HUB_MAX_REPLAYS", default_value = "64", value_name = "N",
          value_parser = at_least_one)]
    pub max_replays: usize,
    /// How long a resume waits for a replay slot before it opens a fresh session instead
    #[arg(long = "replay-wait-ms", env = "HUB_REPLAY_WAIT_MS", default_value = "5000",
          value_name = "MS", value_parser = millis)]
    pub replay_wait: Duration,
    /// How long a replay waits for a client that takes nothing of it before the session is closed
    /// (its slot freed; the client reconnects and resumes from the last entry it received)
    // Over polling a GET takes up to a whole page (256 KiB) in one answer, and the next GET comes
    // only once it arrived: 60 s lets a 35 kbit/s link take it. A WebSocket shows progress as
    // the kernel takes bytes, far more often.
    #[arg(long = "replay-stall-ms", env = "HUB_REPLAY_STALL_MS", default_value = "60000",
          value_name = "MS", value_parser = millis)]
    pub replay_stall: Duration,
    /// Engine.IO sessions open at once; handshakes past it get 503
    #[arg(long, env = "HUB_MAX_SESSIONS", default_value = "100000", value_name = "N",
          value_parser = at_least_one)]
    pub max_sessions: usize,
    /// Engine.IO sessions open at once per client address (IPv6: per /64); 429 past it; 0: no cap
    /// (behind a proxy every client has the proxy's address)
    #[arg(
        long,
        env = "HUB_MAX_SESSIONS_PER_ADDRESS",
        default_value = "1000",
        value_name = "N"
    )]
    pub max_sessions_per_address: usize,
    /// Engine.IO sessions open at once that have not joined a namespace yet; handshakes past it
    /// get 503
    #[arg(long, env = "HUB_MAX_UNJOINED", default_value = "10000", value_name = "N",
          value_parser = at_least_one)]
    pub max_unjoined: usize,
    /// Engine.IO sessions open at once per client address (IPv6: per /64) that have not joined a
    /// namespace yet; 429 past it; 0: no cap (behind a proxy every client has the proxy's address)
    // 100: filling the --max-unjoined pool (10,000) takes 100 addresses, not 10; a browser opens
    // one session per tab, a NAT of a few dozen users a few dozen at once.
    #[arg(
        long,
        env = "HUB_MAX_UNJOINED_PER_ADDRESS",
        default_value = "100",
        value_name = "N"
    )]
    pub max_unjoined_per_address: usize,
    /// Bytes all connections together may hold for unfinished frames, fragmented messages and the
    /// attachments of binary packets not yet whole; a connection that would pass it is closed (a
    /// WebSocket with 1013, try again later)
    // 64 MiB: 64 clients each sending a message at the 1 MB max payload at once.
    #[arg(long, env = "HUB_MAX_UNFINISHED_BYTES", default_value = "67108864",
          value_name = "BYTES", value_parser = at_least_one)]
    pub max_unfinished_bytes: usize,
    /// Bytes of unfinished frames and fragmented messages each WebSocket may hold without charging
    /// HUB_MAX_UNFINISHED_BYTES; what it holds beyond them is charged
    // 64 KiB: a notify at the HTTP endpoint's default max (HUB_MAX_NOTIFY_BYTES) and any ordinary
    // Socket.IO message fit whole, so a full budget never refuses them. Its total is bounded by the
    // connections the session caps admit (64 KiB × 1,000 per address with the defaults).
    #[arg(
        long,
        env = "HUB_UNFINISHED_ALLOWANCE_BYTES",
        default_value = "65536",
        value_name = "BYTES"
    )]
    pub unfinished_allowance_bytes: usize,
    /// Time a client has to send its request head once a connection is open, in milliseconds; past it:
    /// 408 and the connection closed (actix-http's `client_request_timeout`: the first request of a
    /// connection; later ones are bound by the keep-alive timeout until their first byte)
    #[arg(long = "request-head-timeout-ms", env = "HUB_REQUEST_HEAD_TIMEOUT_MS",
          default_value = "5000", value_name = "MS", value_parser = millis)]
    pub request_head_timeout: Duration,
    /// Time a request has to deliver its whole body (notify, polling POST), in milliseconds, from
    /// the end of its head; past it: 408 and the connection closed
    // Engine.IO's `httpRequestBodyTimeout` is 30 s; 10 s is ample for bodies bounded by
    // HUB_MAX_NOTIFY_BYTES and HUB_MAX_PAYLOAD, and frees a trickling client's connection sooner.
    #[arg(long = "request-body-timeout-ms", env = "HUB_REQUEST_BODY_TIMEOUT_MS",
          default_value = "10000", value_name = "MS", value_parser = millis)]
    pub request_body_timeout: Duration,
    /// How long an idle keep-alive connection stays open between requests, in milliseconds
    // Node's `server.keepAliveTimeout` default.
    #[arg(long = "keep-alive-ms", env = "HUB_KEEP_ALIVE_MS", default_value = "5000",
          value_name = "MS", value_parser = millis)]
    pub keep_alive: Duration,
    /// Socket.IO packet encoding: `json` (Socket.IO's default parser) or `msgpack`
    /// (`socket.io-msgpack-parser`: every packet one binary message); clients must use the same
    // Node selects it with `new Server({ parser })`; one parser per server, as there.
    #[arg(long, env = "HUB_PARSER", default_value = "json", value_name = "PARSER",
          value_parser = PossibleValuesParser::new(["json", "msgpack"])
              .map(|value| if value == "msgpack" { Parser::Msgpack } else { Parser::Json }))]
    pub parser: Parser,
    /// Long-polling answers of at least this many bytes are compressed (gzip or deflate, as the
    /// client accepts); `off`: never
    // Engine.IO's `httpCompression: { threshold: 1024 }` default.
    #[arg(long, env = "HUB_HTTP_COMPRESSION_THRESHOLD", default_value = "1024",
          value_name = "BYTES", value_parser = threshold_or_off)]
    // Fully qualified: clap then hands the parsed `Option` over whole (`off` is `None`).
    pub http_compression_threshold: ::std::option::Option<usize>,
    /// Rooms each socket may join with the `join` event (its own sid room and `user:<sub>` not
    /// counted); a join past it is refused with an error ack
    #[arg(
        long,
        env = "HUB_MAX_ROOMS_PER_SOCKET",
        default_value = "100",
        value_name = "N"
    )]
    pub max_rooms_per_socket: usize,
    /// Folder of the page served at `/`
    #[arg(long, env = "HUB_PUBLIC_DIR", value_name = "DIR",
          default_value_os_t = project_path("public"))]
    pub public_dir: PathBuf,
    /// Folder holding `socket.io.min.js` from npm, served at `/socket.io/socket.io.min.js`
    #[arg(long, env = "HUB_CLIENT_DIR", value_name = "DIR",
          default_value_os_t = project_path("tests/node_modules/socket.io-client/dist"))]
    pub client_dir: PathBuf,
    /// Who may connect and publish, and the rate limits.
    #[command(flatten)]
    pub security: Security,
    /// The Socket.IO admin UI (`/admin`), off by default.
    #[command(flatten)]
    pub admin: Admin,
    /// Something other than serving (`token`); none: serve.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Default for Config {
    /// The declared defaults, without reading the environment: tests build configurations from this
    /// whatever variables their shell has set.
    fn default() -> Self {
        let matches = Config::command()
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(["realtime-hub"])
            .expect("the declared defaults parse");
        Config::from_arg_matches(&matches).expect("the declared defaults parse")
    }
}

impl Config {
    /// Reads the command line `args` (program name first, as [`std::env::args_os`] gives them) over
    /// the environment. On `Err` (a bad value, an unknown flag, or `--help`), [`clap::Error::exit`]
    /// prints the message or the help and exits with status 2 (0 for the help).
    pub fn from_env_and_args<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        // clap hands an empty variable to the parser as "", but a variable left empty (`REDIS_URL=`
        // in a compose file or a template) means "not set" here: REDIS_URL= runs the embedded log.
        let mut command = Config::command().mut_args(|arg| {
            let empty = arg
                .get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.is_empty());
            if empty {
                arg.env(None)
            } else {
                arg
            }
        });
        let matches = command.try_get_matches_from_mut(args)?;
        Config::from_arg_matches(&matches).map_err(|err| err.format(&mut command))
    }

    /// The server the official conformance suites assume (reference §5): Engine.IO echo at
    /// `/engine.io/`, or the Socket.IO suite's application at `/socket.io/` with `/` and `/custom`;
    /// ping 300/200 ms, connect timeout 1 s, recovery off, CORS `*`, on `localhost:3000`.
    pub fn conformance_suite(engine_io: bool) -> Config {
        Config {
            host: "localhost".into(),
            port: 3000,
            path: if engine_io {
                "/engine.io/"
            } else {
                "/socket.io/"
            }
            .into(),
            namespaces: vec!["/".into(), "/custom".into()],
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            connect_timeout: Duration::from_millis(1000),
            recovery: false,
            engine_echo: engine_io,
            cors_origins: vec!["*".into()],
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests;
