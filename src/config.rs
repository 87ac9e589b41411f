//! Configuration: every setting is a command-line flag and an environment variable, declared once
//! on [`Config`] with its default and help; clap derives the parser and `--help` from that
//! declaration, so the three cannot drift apart.
//!
//! The Node original's names (`PORT`, `REDIS_URL`) are kept so people can switch; the rest are
//! `HUB_*`. A flag wins over its environment variable; a variable set to the empty string counts
//! as unset.

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{CommandFactory, FromArgMatches, Parser};

/// The whole configuration of one hub instance.
///
/// Each field's first doc line is also its `--help` text.
#[derive(Debug, Clone, Parser)]
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
    /// Redis (7.0 or newer) for the shared log, e.g. redis://127.0.0.1:6379;
    /// unset: the embedded log
    #[arg(long, env = "REDIS_URL", value_name = "URL")]
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
    /// Comma-separated origins allowed cross-site, or `*` for any; none: same origin only
    #[arg(long, env = "HUB_CORS_ORIGINS", default_value = "", hide_default_value = true,
          value_name = "LIST", value_parser = list)]
    pub cors_origins: ::std::vec::Vec<String>,
    /// Connection state recovery, on or off
    // true/false and 1/0 are accepted too (hidden from the help), as the hand-written parser did.
    #[arg(long, env = "HUB_RECOVERY", default_value = "on", action = clap::ArgAction::Set,
          value_parser = PossibleValuesParser::new([
              PossibleValue::new("on").aliases(["true", "1"]),
              PossibleValue::new("off").aliases(["false", "0"]),
          ]).map(|value| matches!(value.as_str(), "on" | "true" | "1")))]
    pub recovery: bool,
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
    #[arg(long, env = "HUB_MAX_NOTIFY_BYTES", default_value = "65536", value_name = "BYTES",
          value_parser = at_least_one)]
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
    /// Bytes all WebSockets together may hold for unfinished frames and fragmented messages; a
    /// connection that would pass it is closed with 1013 (try again later)
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
    /// Folder of the page served at `/`
    #[arg(long, env = "HUB_PUBLIC_DIR", value_name = "DIR",
          default_value_os_t = project_path("public"))]
    pub public_dir: PathBuf,
    /// Folder holding `socket.io.min.js` from npm, served at `/socket.io/socket.io.min.js`
    #[arg(long, env = "HUB_CLIENT_DIR", value_name = "DIR",
          default_value_os_t = project_path("tests/node_modules/socket.io-client/dist"))]
    pub client_dir: PathBuf,
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

/// A path inside the project: relative to the working directory when it exists there (a deployment
/// that copies `public/` next to the binary), else to the source tree the binary was built from
/// (`cargo run` and the tests, from any directory).
fn project_path(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        here
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
    }
}

/// A size or a count: zero would stop the hub from working, so it is refused rather than obeyed.
fn at_least_one(value: &str) -> Result<usize, &'static str> {
    match value.parse() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1"),
    }
}

/// A duration in milliseconds, at least 1 (a zero timer would fire at once).
fn millis(value: &str) -> Result<Duration, &'static str> {
    match value.parse() {
        Ok(n) if n >= 1 => Ok(Duration::from_millis(n)),
        _ => Err("expected a whole number of milliseconds, at least 1"),
    }
}

/// The endpoint's path with exactly one trailing slash, as the router matches it.
fn endpoint_path(value: &str) -> Result<String, &'static str> {
    if !value.starts_with('/') {
        return Err("expected a path starting with /");
    }
    Ok(format!("{}/", value.trim_end_matches('/')))
}

/// The non-empty items of a comma-separated list, trimmed.
fn list(value: &str) -> Result<Vec<String>, Infallible> {
    Ok(value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect())
}

/// At least one namespace, each starting with `/` as Socket.IO names them.
fn namespaces(value: &str) -> Result<Vec<String>, &'static str> {
    let Ok(namespaces) = list(value);
    if namespaces.is_empty() || namespaces.iter().any(|n| !n.starts_with('/')) {
        return Err("expected namespaces starting with /, e.g. /,/admin");
    }
    Ok(namespaces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use std::sync::{Mutex, PoisonError};

    /// The process environment is shared by every test thread: one parse at a time touches it.
    static ENV: Mutex<()> = Mutex::new(());

    /// Parses `args` with exactly `env` as the hub's variables (what the shell had is put back).
    fn parse(env: &[(&str, &str)], args: &[&str]) -> Result<Config, clap::Error> {
        let _guard = ENV.lock().unwrap_or_else(PoisonError::into_inner);
        let names: Vec<OsString> = Config::command()
            .get_arguments()
            .filter_map(|arg| arg.get_env().map(ToOwned::to_owned))
            .collect();
        let saved: Vec<(OsString, Option<OsString>)> = names
            .iter()
            .map(|name| (name.clone(), std::env::var_os(name)))
            .collect();
        for name in &names {
            std::env::remove_var(name);
        }
        for (name, value) in env {
            std::env::set_var(name, value);
        }
        let result =
            Config::from_env_and_args(std::iter::once("realtime-hub").chain(args.iter().copied()));
        for (name, value) in saved {
            match value {
                Some(value) => std::env::set_var(name, value),
                None => std::env::remove_var(name),
            }
        }
        result
    }

    fn config(env: &[(&str, &str)], args: &[&str]) -> Config {
        parse(env, args).unwrap_or_else(|err| panic!("expected a config, got {err}"))
    }

    fn rejected(env: &[(&str, &str)], args: &[&str]) -> ErrorKind {
        match parse(env, args) {
            Ok(config) => panic!("expected {env:?} {args:?} to be rejected, got {config:?}"),
            Err(err) => err.kind(),
        }
    }

    #[test]
    fn config_defaults_match_the_node_original() {
        let c = Config::default();
        assert_eq!(
            (c.port, c.max_len, c.max_payload),
            (3000, 10_000, 1_000_000)
        );
        assert_eq!(c.recovery_window, Duration::from_millis(120_000));
        assert_eq!(c.instance_lease, Duration::from_millis(3000));
        assert_eq!(
            (c.ping_interval, c.ping_timeout),
            (Duration::from_secs(25), Duration::from_secs(20))
        );
        assert_eq!(
            (c.connect_timeout, c.upgrade_timeout),
            (Duration::from_secs(45), Duration::from_secs(10))
        );
        assert_eq!(
            (c.host.as_str(), c.stream_key.as_str()),
            ("0.0.0.0", "socket.io")
        );
        assert_eq!(c.path, "/socket.io/");
        assert_eq!(c.namespaces, &["/"]);
        assert!(c.redis_url.is_none() && c.cors_origins.is_empty());
        assert!(c.recovery && !c.engine_echo);
        assert_eq!(
            (c.request_head_timeout, c.request_body_timeout, c.keep_alive),
            (
                Duration::from_secs(5),
                Duration::from_secs(10),
                Duration::from_secs(5)
            )
        );
        assert_eq!(
            (c.max_notify_bytes, c.max_buffered_bytes),
            (64 * 1024, 8 * 1024 * 1024)
        );
        assert_eq!(
            (c.idempotency_ttl, c.idempotency_max_keys),
            (
                crate::store::DEFAULT_IDEMPOTENCY_TTL,
                crate::store::DEFAULT_IDEMPOTENCY_MAX_KEYS
            )
        );
        assert_eq!(c.idempotency_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(c.max_log_bytes, 64 * 1024 * 1024);
        assert_eq!((c.max_replays, c.replay_wait), (64, Duration::from_secs(5)));
        assert_eq!(
            (c.max_sessions, c.max_sessions_per_address, c.max_unjoined),
            (100_000, 1000, 10_000)
        );
        assert_eq!(c.max_unjoined_per_address, 100);
        assert_eq!(c.max_unfinished_bytes, 64 * 1024 * 1024);
        assert_eq!(c.unfinished_allowance_bytes, 64 * 1024);
        assert_eq!(c.public_dir, project_path("public"));
        assert_eq!(
            c.client_dir,
            project_path("tests/node_modules/socket.io-client/dist")
        );
        // Reading an empty command line and environment gives the same as `default()`.
        assert_eq!(format!("{:?}", config(&[], &[])), format!("{c:?}"));
    }

    #[test]
    fn config_flag_wins_over_environment() {
        let c = config(
            &[("PORT", "4000"), ("HUB_MAX_LEN", "5")],
            &["--port", "4001", "--ping-interval-ms=300"],
        );
        assert_eq!((c.port, c.max_len), (4001, 5));
        assert_eq!(c.ping_interval, Duration::from_millis(300));
        // A flag given twice: the last one wins.
        assert_eq!(config(&[], &["--port", "1", "--port", "2"]).port, 2);
    }

    #[test]
    fn config_rejects_bad_values_and_unknown_flags() {
        assert_eq!(
            rejected(&[("PORT", "http")], &[]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            rejected(&[], &["--port", "70000"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            rejected(&[], &["--max-len", "0"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            rejected(&[], &["--ping-timeout-ms", "0"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            rejected(&[("HUB_RECOVERY", "maybe")], &[]),
            ErrorKind::InvalidValue
        );
        assert_eq!(rejected(&[], &["--nope"]), ErrorKind::UnknownArgument);
        assert_eq!(rejected(&[], &["--port"]), ErrorKind::InvalidValue);
        assert_eq!(rejected(&[], &["--help"]), ErrorKind::DisplayHelp);
        assert_eq!(rejected(&[], &["-h"]), ErrorKind::DisplayHelp);
        let message = parse(&[], &["--port", "abc"]).unwrap_err().to_string();
        assert!(
            message.contains("abc") && message.contains("--port"),
            "{message}"
        );
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let c = config(
            &[
                ("REDIS_URL", ""),
                ("PORT", ""),
                ("HUB_NAMESPACES", ""),
                ("HUB_RECOVERY", ""),
            ],
            &[],
        );
        assert!(
            c.redis_url.is_none(),
            "REDIS_URL= must mean the embedded log"
        );
        assert_eq!(
            (c.port, c.namespaces, c.recovery),
            (3000, vec!["/".to_owned()], true)
        );
    }

    #[test]
    fn path_and_namespaces_are_normalised_and_checked() {
        let c = config(
            &[("HUB_PATH", "/engine.io")],
            &["--namespaces", " /, /admin ,,"],
        );
        assert_eq!(c.path, "/engine.io/");
        assert_eq!(c.namespaces, &["/", "/admin"]);
        assert_eq!(config(&[], &["--path", "/hub//"]).path, "/hub/");
        assert_eq!(config(&[], &["--path", "/"]).path, "/");
        assert_eq!(
            rejected(&[], &["--path", "socket.io"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            rejected(&[("HUB_PATH", "x/")], &[]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            rejected(&[], &["--namespaces", "/,admin"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            rejected(&[("HUB_NAMESPACES", " , ")], &[]),
            ErrorKind::ValueValidation
        );
        assert!(config(&[], &["--cors-origins", ""]).cors_origins.is_empty());
    }

    #[test]
    fn every_setting_is_read_from_its_flag_and_its_variable() {
        type Check = fn(&Config) -> bool;
        let settings: &[(&str, &str, Check)] = &[
            ("host", "127.0.0.1", |c| c.host == "127.0.0.1"),
            ("port", "4000", |c| c.port == 4000),
            ("redis-url", "redis://r:6379", |c| {
                c.redis_url.as_deref() == Some("redis://r:6379")
            }),
            ("stream-key", "k", |c| c.stream_key == "k"),
            ("max-len", "7", |c| c.max_len == 7),
            ("recovery-window-ms", "5", |c| {
                c.recovery_window == Duration::from_millis(5)
            }),
            ("ping-interval-ms", "300", |c| {
                c.ping_interval == Duration::from_millis(300)
            }),
            ("ping-timeout-ms", "200", |c| {
                c.ping_timeout == Duration::from_millis(200)
            }),
            ("max-payload", "99", |c| c.max_payload == 99),
            ("connect-timeout-ms", "1000", |c| {
                c.connect_timeout == Duration::from_secs(1)
            }),
            ("upgrade-timeout-ms", "50", |c| {
                c.upgrade_timeout == Duration::from_millis(50)
            }),
            ("path", "/engine.io", |c| c.path == "/engine.io/"),
            ("namespaces", "/,/admin", |c| {
                c.namespaces == ["/", "/admin"]
            }),
            ("cors-origins", "https://a.test, *", |c| {
                c.cors_origins == ["https://a.test", "*"]
            }),
            ("recovery", "off", |c| !c.recovery),
            ("instance-lease-ms", "500", |c| {
                c.instance_lease == Duration::from_millis(500)
            }),
            ("max-notify-bytes", "10", |c| c.max_notify_bytes == 10),
            ("max-buffered-bytes", "123", |c| c.max_buffered_bytes == 123),
            ("idempotency-ttl-ms", "1000", |c| {
                c.idempotency_ttl == Duration::from_secs(1)
            }),
            ("idempotency-max-keys", "9", |c| c.idempotency_max_keys == 9),
            ("max-log-bytes", "1024", |c| c.max_log_bytes == 1024),
            ("max-replays", "3", |c| c.max_replays == 3),
            ("replay-wait-ms", "250", |c| {
                c.replay_wait == Duration::from_millis(250)
            }),
            ("max-sessions", "50", |c| c.max_sessions == 50),
            ("max-sessions-per-address", "0", |c| {
                c.max_sessions_per_address == 0
            }),
            ("max-unjoined", "20", |c| c.max_unjoined == 20),
            ("max-unjoined-per-address", "0", |c| {
                c.max_unjoined_per_address == 0
            }),
            ("max-unfinished-bytes", "456", |c| {
                c.max_unfinished_bytes == 456
            }),
            ("unfinished-allowance-bytes", "0", |c| {
                c.unfinished_allowance_bytes == 0
            }),
            ("request-head-timeout-ms", "70", |c| {
                c.request_head_timeout == Duration::from_millis(70)
            }),
            ("request-body-timeout-ms", "80", |c| {
                c.request_body_timeout == Duration::from_millis(80)
            }),
            ("keep-alive-ms", "90", |c| {
                c.keep_alive == Duration::from_millis(90)
            }),
            ("public-dir", "/srv/www", |c| {
                c.public_dir.as_os_str() == "/srv/www"
            }),
            ("client-dir", "/srv/js", |c| {
                c.client_dir.as_os_str() == "/srv/js"
            }),
        ];
        let command = Config::command();
        let declared: Vec<&str> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .collect();
        let tested: Vec<&str> = settings.iter().map(|(flag, _, _)| *flag).collect();
        assert_eq!(declared, tested, "every setting has a case here");
        for (flag, value, check) in settings {
            let arg = command
                .get_arguments()
                .find(|a| a.get_long() == Some(flag))
                .unwrap();
            let env = arg.get_env().and_then(|e| e.to_str()).unwrap();
            assert!(
                !check(&Config::default()),
                "--{flag}: pick a value that is not the default"
            );
            assert!(check(&config(&[(env, value)], &[])), "{env}={value}");
            assert!(
                check(&config(&[], &[&format!("--{flag}"), value])),
                "--{flag} {value}"
            );
        }
    }

    #[test]
    fn readme_configuration_table_matches_the_settings() {
        let readme = include_str!("../README.md");
        let rows: Vec<(String, String)> = readme
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let flag = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let env = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
                flag.starts_with("--")
                    .then(|| (flag.to_owned(), env.to_owned()))
            })
            .collect();
        let settings: Vec<(String, String)> = Config::command()
            .get_arguments()
            .filter_map(|arg| {
                let env = arg.get_env()?.to_string_lossy().into_owned();
                Some((format!("--{}", arg.get_long()?), env))
            })
            .collect();
        assert_eq!(
            rows, settings,
            "README's configuration table and --help list the same settings"
        );
    }

    #[test]
    fn help_lists_every_setting() {
        let help = parse(&[], &["--help"]).unwrap_err().to_string();
        for arg in Config::command().get_arguments() {
            let flag = format!("--{}", arg.get_long().unwrap());
            let env = format!("[env: {}", arg.get_env().unwrap().to_string_lossy());
            assert!(
                help.contains(&flag) && help.contains(&env),
                "{flag} or {env} missing from --help:\n{help}"
            );
        }
    }
}
