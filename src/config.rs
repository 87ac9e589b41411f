//! Configuration: every setting is an environment variable and a command-line flag, defaults in one place.
//!
//! The Node original's names (`PORT`, `REDIS_URL`) are kept so people can switch; the rest are `HUB_*`.
//! A flag wins over its environment variable. `--help` prints the table below.

use std::path::PathBuf;
use std::time::Duration;

/// Default TCP port, as in the Node original.
pub const DEFAULT_PORT: u16 = 3000;
/// Default bind address: every interface, as Node listens by default.
pub const DEFAULT_HOST: &str = "0.0.0.0";
/// Redis stream key shared with `@socket.io/redis-streams-adapter` (its `streamName` default).
pub const DEFAULT_STREAM_KEY: &str = "socket.io";
/// Entries kept in the log (`XADD … MAXLEN ~`), the adapter's `maxLen` default.
pub const DEFAULT_MAX_LEN: usize = 10_000;
/// How long a disconnected session can be resumed (`maxDisconnectionDuration`).
pub const DEFAULT_RECOVERY_WINDOW: Duration = Duration::from_millis(120_000);
/// Engine.IO heartbeat: the server pings this often ...
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_millis(25_000);
/// ... and closes the session if no pong arrives within this.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_millis(20_000);
/// Largest Engine.IO message accepted (`maxHttpBufferSize`): WebSocket close 1009 above it.
pub const DEFAULT_MAX_PAYLOAD: usize = 1_000_000;
/// A connection that joins no namespace within this is closed (Socket.IO `connectTimeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(45_000);
/// Largest `POST /notifications/notify` body: 413 above it.
pub const DEFAULT_MAX_NOTIFY_BYTES: usize = 64 * 1024;
/// Time a polling session has to complete its upgrade to WebSocket (Node's `upgradeTimeout`).
pub const DEFAULT_UPGRADE_TIMEOUT: Duration = Duration::from_millis(10_000);
/// The Engine.IO endpoint's path, Socket.IO's default.
pub const DEFAULT_PATH: &str = "/socket.io/";

/// Bytes waiting for a client that does not read before its session is closed (slow consumer).
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 8 * 1024 * 1024;

/// The whole configuration of one hub instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Redis to share the log with other instances; `None` runs on the embedded in-process log.
    pub redis_url: Option<String>,
    /// Redis stream key.
    pub stream_key: String,
    /// Entries kept in the log before the oldest are trimmed.
    pub max_len: usize,
    /// How long after a disconnect a session can be recovered.
    pub recovery_window: Duration,
    /// Engine.IO ping interval.
    pub ping_interval: Duration,
    /// Engine.IO ping timeout.
    pub ping_timeout: Duration,
    /// Largest Engine.IO message accepted, in bytes.
    pub max_payload: usize,
    /// Time allowed to join a namespace after the Engine.IO handshake.
    pub connect_timeout: Duration,
    /// Time a polling session has to complete its upgrade to WebSocket.
    pub upgrade_timeout: Duration,
    /// Path of the Engine.IO endpoint, with its slashes: `/socket.io/`.
    pub path: String,
    /// Socket.IO namespaces clients may join.
    pub namespaces: Vec<String>,
    /// Origins allowed to connect from other sites (CORS); `*` for any; empty: same origin only.
    pub cors_origins: Vec<String>,
    /// Whether connection state recovery is on.
    pub recovery: bool,
    /// Engine.IO only: echo every message (the Engine.IO conformance suite's application; no flag).
    pub engine_echo: bool,
    /// Largest notify body, in bytes.
    pub max_notify_bytes: usize,
    /// Outgoing bytes a client may leave unread before its session is closed.
    pub max_buffered_bytes: usize,
    /// Folder of the page served at `/`.
    pub public_dir: PathBuf,
    /// Folder holding `socket.io.min.js` from npm, served at `/socket.io/socket.io.min.js`.
    pub client_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            redis_url: None,
            stream_key: DEFAULT_STREAM_KEY.to_owned(),
            max_len: DEFAULT_MAX_LEN,
            recovery_window: DEFAULT_RECOVERY_WINDOW,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_payload: DEFAULT_MAX_PAYLOAD,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            upgrade_timeout: DEFAULT_UPGRADE_TIMEOUT,
            path: DEFAULT_PATH.to_owned(),
            namespaces: vec!["/".to_owned()],
            cors_origins: Vec::new(),
            recovery: true,
            engine_echo: false,
            max_notify_bytes: DEFAULT_MAX_NOTIFY_BYTES,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            public_dir: project_path("public"),
            client_dir: project_path("tests/node_modules/socket.io-client/dist"),
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

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag that does not exist.
    #[error("unknown option {0:?} (see --help)")]
    UnknownOption(String),
    /// A flag given last without its value.
    #[error("option {0} needs a value")]
    MissingValue(String),
    /// A value that does not parse or is out of range.
    #[error("invalid value {value:?} for {name}: {reason}")]
    InvalidValue {
        /// The flag or environment variable.
        name: String,
        /// What was given.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the hub with this configuration.
    Run(Box<Config>),
    /// Print [`HELP`] and exit.
    Help,
}

/// One row per setting: flag, environment variable, help text. `--help` and README are written from it.
const SETTINGS: &[(&str, &str, &str)] = &[
    ("--host", "HUB_HOST", "address to bind [default: 0.0.0.0]"),
    (
        "--port",
        "PORT",
        "port to listen on, 0 for any free port [default: 3000]",
    ),
    (
        "--redis-url",
        "REDIS_URL",
        "Redis for the shared log, e.g. redis://127.0.0.1:6379 [default: unset = embedded log]",
    ),
    (
        "--stream-key",
        "HUB_STREAM_KEY",
        "Redis stream key [default: socket.io]",
    ),
    (
        "--max-len",
        "HUB_MAX_LEN",
        "entries kept in the log before trimming [default: 10000]",
    ),
    (
        "--recovery-window-ms",
        "HUB_RECOVERY_WINDOW_MS",
        "how long a dropped session can be recovered [default: 120000]",
    ),
    (
        "--ping-interval-ms",
        "HUB_PING_INTERVAL_MS",
        "Engine.IO ping interval [default: 25000]",
    ),
    (
        "--ping-timeout-ms",
        "HUB_PING_TIMEOUT_MS",
        "Engine.IO ping timeout [default: 20000]",
    ),
    (
        "--max-payload",
        "HUB_MAX_PAYLOAD",
        "largest Engine.IO message in bytes; WebSocket close 1009 above [default: 1000000]",
    ),
    (
        "--connect-timeout-ms",
        "HUB_CONNECT_TIMEOUT_MS",
        "time to join a namespace after the handshake [default: 45000]",
    ),
    (
        "--upgrade-timeout-ms",
        "HUB_UPGRADE_TIMEOUT_MS",
        "time to complete an upgrade from polling to WebSocket [default: 10000]",
    ),
    (
        "--path",
        "HUB_PATH",
        "path of the Engine.IO endpoint [default: /socket.io/]",
    ),
    (
        "--namespaces",
        "HUB_NAMESPACES",
        "comma-separated Socket.IO namespaces clients may join [default: /]",
    ),
    (
        "--cors-origins",
        "HUB_CORS_ORIGINS",
        "comma-separated origins allowed cross-site, or * [default: none, same origin only]",
    ),
    (
        "--recovery",
        "HUB_RECOVERY",
        "connection state recovery, on or off [default: on]",
    ),
    (
        "--max-notify-bytes",
        "HUB_MAX_NOTIFY_BYTES",
        "largest POST /notifications/notify body; 413 above [default: 65536]",
    ),
    (
        "--max-buffered-bytes",
        "HUB_MAX_BUFFERED_BYTES",
        "unread bytes a client may have on its way before it is dropped [default: 8388608]",
    ),
    (
        "--public-dir",
        "HUB_PUBLIC_DIR",
        "folder of the page served at / [default: public]",
    ),
    (
        "--client-dir",
        "HUB_CLIENT_DIR",
        "folder with socket.io.min.js [default: tests/node_modules/socket.io-client/dist]",
    ),
];

impl Config {
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

/// The non-empty items of a comma-separated list.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `--help` text.
pub fn help() -> String {
    let mut text = String::from(
        "realtime-hub: a Socket.IO v5 notification hub with connection state recovery\n\n\
         Usage: realtime-hub [OPTIONS]\n\n\
         Every option can also be set by its environment variable; a flag wins. Log level: RUST_LOG (default info).\n\n",
    );
    for (flag, env, about) in SETTINGS {
        text.push_str(&format!(
            "  {:<24} {:<24} {}\n",
            format!("{flag} <v>"),
            env,
            about
        ));
    }
    text.push_str(&format!(
        "  {:<24} {:<24} {}\n",
        "-h, --help", "", "print this help"
    ));
    text
}

impl Config {
    /// Reads the environment, then the command-line arguments (without the program name).
    pub fn from_env_and_args(
        env: impl Fn(&str) -> Option<String>,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Command, ConfigError> {
        let mut config = Config::default();
        for (_, name, _) in SETTINGS {
            if let Some(value) = env(name).filter(|v| !v.is_empty()) {
                config.set(name, value)?;
            }
        }
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Ok(Command::Help);
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            let (_, env_name, _) = SETTINGS
                .iter()
                .find(|(f, _, _)| *f == flag)
                .ok_or_else(|| ConfigError::UnknownOption(arg.clone()))?;
            let value = match inline {
                Some(value) => value,
                None => args
                    .next()
                    .ok_or_else(|| ConfigError::MissingValue(flag.clone()))?,
            };
            config.set(env_name, value)?;
        }
        Ok(Command::Run(Box::new(config)))
    }

    fn set(&mut self, name: &str, value: String) -> Result<(), ConfigError> {
        let invalid = |reason| ConfigError::InvalidValue {
            name: name.to_owned(),
            value: value.clone(),
            reason,
        };
        let number = |min: u64| -> Result<u64, ConfigError> {
            match value.parse::<u64>() {
                Ok(n) if n >= min => Ok(n),
                _ if min == 0 => Err(invalid("expected a whole number")),
                _ => Err(invalid("expected a whole number of at least 1")),
            }
        };
        let millis = |min| number(min).map(Duration::from_millis);
        match name {
            "HUB_HOST" => self.host = value,
            "PORT" => {
                self.port =
                    u16::try_from(number(0)?).map_err(|_| invalid("expected a port, 0-65535"))?
            }
            "REDIS_URL" => self.redis_url = Some(value),
            "HUB_STREAM_KEY" => self.stream_key = value,
            "HUB_MAX_LEN" => self.max_len = number(1)? as usize,
            "HUB_RECOVERY_WINDOW_MS" => self.recovery_window = millis(1)?,
            "HUB_PING_INTERVAL_MS" => self.ping_interval = millis(1)?,
            "HUB_PING_TIMEOUT_MS" => self.ping_timeout = millis(1)?,
            "HUB_MAX_PAYLOAD" => self.max_payload = number(1)? as usize,
            "HUB_CONNECT_TIMEOUT_MS" => self.connect_timeout = millis(1)?,
            "HUB_UPGRADE_TIMEOUT_MS" => self.upgrade_timeout = millis(1)?,
            "HUB_PATH" => {
                if !value.starts_with('/') {
                    return Err(invalid("expected a path starting with /"));
                }
                let trimmed = value.trim_end_matches('/');
                self.path = format!("{trimmed}/");
            }
            "HUB_NAMESPACES" => {
                let namespaces: Vec<String> = list(&value);
                if namespaces.is_empty()
                    || namespaces
                        .iter()
                        .any(|n| !n.starts_with('/') || n.contains(','))
                {
                    return Err(invalid(
                        "expected namespaces starting with /, e.g. /,/admin",
                    ));
                }
                self.namespaces = namespaces;
            }
            "HUB_CORS_ORIGINS" => self.cors_origins = list(&value),
            "HUB_RECOVERY" => {
                self.recovery = match value.as_str() {
                    "on" | "true" | "1" => true,
                    "off" | "false" | "0" => false,
                    _ => return Err(invalid("expected on or off")),
                }
            }
            "HUB_MAX_NOTIFY_BYTES" => self.max_notify_bytes = number(1)? as usize,
            "HUB_MAX_BUFFERED_BYTES" => self.max_buffered_bytes = number(1)? as usize,
            "HUB_PUBLIC_DIR" => self.public_dir = PathBuf::from(value),
            "HUB_CLIENT_DIR" => self.client_dir = PathBuf::from(value),
            other => unreachable!("setting {other} is listed in SETTINGS but not handled"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(env: &[(&str, &str)], args: &[&str]) -> Result<Command, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env_and_args(
            |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            args.iter().map(|s| s.to_string()),
        )
    }

    fn config(env: &[(&str, &str)], args: &[&str]) -> Config {
        match parse(env, args) {
            Ok(Command::Run(config)) => *config,
            other => panic!("expected a config, got {other:?}"),
        }
    }

    #[test]
    fn config_defaults_match_the_node_original() {
        let c = config(&[], &[]);
        assert_eq!(
            (c.port, c.max_len, c.max_payload),
            (3000, 10_000, 1_000_000)
        );
        assert_eq!(c.recovery_window, Duration::from_millis(120_000));
        assert_eq!(
            (c.ping_interval, c.ping_timeout),
            (Duration::from_secs(25), Duration::from_secs(20))
        );
        assert_eq!(c.stream_key, "socket.io");
        assert!(c.redis_url.is_none());
    }

    #[test]
    fn config_flag_wins_over_environment() {
        let c = config(
            &[("PORT", "4000"), ("HUB_MAX_LEN", "5")],
            &["--port", "4001", "--ping-interval-ms=300"],
        );
        assert_eq!((c.port, c.max_len), (4001, 5));
        assert_eq!(c.ping_interval, Duration::from_millis(300));
    }

    #[test]
    fn config_rejects_bad_values_and_unknown_flags() {
        assert!(matches!(
            parse(&[("PORT", "http")], &[]),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            parse(&[], &["--port", "70000"]),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            parse(&[], &["--max-len", "0"]),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            parse(&[], &["--nope"]),
            Err(ConfigError::UnknownOption(_))
        ));
        assert!(matches!(
            parse(&[], &["--port"]),
            Err(ConfigError::MissingValue(_))
        ));
        assert!(matches!(parse(&[], &["--help"]), Ok(Command::Help)));
    }

    #[test]
    fn every_setting_is_read_from_its_flag_and_its_variable() {
        let c = config(&[("HUB_MAX_BUFFERED_BYTES", "123")], &[]);
        assert_eq!(c.max_buffered_bytes, 123);
        let c = config(
            &[],
            &[
                "--max-buffered-bytes",
                "456",
                "--stream-key",
                "k",
                "--max-len",
                "7",
            ],
        );
        assert_eq!(
            (c.max_buffered_bytes, c.stream_key.as_str(), c.max_len),
            (456, "k", 7)
        );
    }

    #[test]
    fn readme_configuration_table_matches_the_settings() {
        let readme = include_str!("../README.md");
        let rows: Vec<(&str, &str)> = readme
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let flag = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let env = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
                flag.starts_with("--").then_some((flag, env))
            })
            .collect();
        let settings: Vec<(&str, &str)> = SETTINGS
            .iter()
            .map(|(flag, env, _)| (*flag, *env))
            .collect();
        assert_eq!(
            rows, settings,
            "README's configuration table and --help list the same settings"
        );
    }

    #[test]
    fn help_lists_every_setting() {
        let text = help();
        for (flag, env, _) in SETTINGS {
            assert!(
                text.contains(flag) && text.contains(env),
                "{flag} missing from --help"
            );
        }
    }
}
