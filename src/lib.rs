//! realtime-hub: a Socket.IO v5 notification hub with connection state recovery.
//!
//! Clients (the official `socket.io-client`, or any Socket.IO v5 client) keep a WebSocket open;
//! `POST /notifications/notify` appends a notification to a log; every instance reads the log and
//! delivers each entry, with its log id as the recovery offset, to its clients. A client that drops
//! and comes back within the recovery window gets exactly what it missed, in order.
//!
//! Module map:
//! - [`protocol`]: Engine.IO v4 / Socket.IO v5 codecs and ids; pure, no I/O.
//! - [`store`]: the log interface and the embedded in-process log.
//! - [`actors`]: Session, Hub, StreamBridge, Recovery (the diagram is in [`actors`]).
//! - [`http`]: routes, the Engine.IO endpoint, the notify endpoint, error answers.
//! - [`config`]: settings from environment variables and flags.
//! - [`log_limit`]: rate-limited log lines for what clients can cause.
//! - [`admission`]: the caps on Engine.IO sessions (in all, per client address, not joined).
//! - [`rate_limit`]: per-client rate limits (publishes per address and key, new sessions per address).
//! - [`token`]: connect tokens (JWT): who a socket is, checked at its CONNECT.
//! - [`history`]: notification history pages (`GET /notifications`), as one caller may see them.

#![warn(missing_docs)]

pub mod actors;
pub mod admin;
pub mod admission;
pub mod app;
pub mod config;
pub mod history;
pub(crate) mod http;
pub mod log_limit;
pub(crate) mod memory;
pub mod metrics;
pub mod notification;
pub mod protocol;
pub mod rate_limit;
pub mod recipients;
pub mod rooms;
pub mod store;
pub mod token;

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use actix_http::HttpService;
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Server, ServerHandle};
use actix_web::rt::net::TcpStream;
use actix_web::{middleware, web, App};
use log::{info, warn};

use actors::hub::{CountSessions, Hub};
use actors::recovery::{Flush, Recovery};
use actors::registry::{CloseEvery, Registry};
use actors::session::{EventRate, Session, SessionParts, SessionSettings};
use actors::stream_bridge::StreamBridge;
use actors::ws_read::UnfinishedBudget;
use app::{HubApp, SharedApp};
use config::Config;
use metrics::Metrics;
use protocol::offset::shard_key;
use rooms::RoomPatterns;
use store::{Endpoint, LogBackend, MemoryLog, MinReplicas, RedisLog};

/// How long a stopping server waits for open requests before closing them.
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;
/// The access log line: actix's default (`%a "%r" %s %b …`) with the method and path only, and
/// without `Referer`: a query string (a credential someone put in a URL) must not reach the log
/// through either.
const ACCESS_LOG: &str = r#"request peer=%a method=%{method}xi path=%{path}xi status=%s bytes=%b user_agent=%{user_agent}xi secs=%T request_id=%{x-request-id}o"#;
/// How long a shutdown waits for sessions to close and their records to be written.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A started hub: its address, its actors, and the server future to await.
pub struct RunningHub {
    /// Where it listens (the real port when the config asked for port 0).
    pub addr: SocketAddr,
    /// Resolves when the server stops.
    pub server: Server,
    /// How many sockets are registered (tests wait on it).
    pub sessions: SessionCount,
    /// Stops the hub in order.
    pub shutdown: Shutdown,
}

/// Asks a running hub how many sockets are joined to a namespace (what its orderly stop waits on).
#[derive(Clone)]
pub struct SessionCount(Addr<Hub>);

impl SessionCount {
    /// The count, once the Hub answers.
    pub async fn get(&self) -> Result<usize, actix::MailboxError> {
        self.0.send(CountSessions).await
    }
}

/// The orderly stop of DESIGN.md §5: stop accepting, close every session with "going away" (clients
/// reconnect elsewhere and recover), write their session records, then stop, within a bounded time.
#[derive(Clone)]
pub struct Shutdown {
    hub: Addr<Hub>,
    registry: Addr<Registry<Session>>,
    open_websockets: Arc<AtomicUsize>,
    recovery: Addr<Recovery>,
    server: ServerHandle,
}

impl Shutdown {
    /// Runs the shutdown; the server future resolves afterwards.
    pub async fn run(self) {
        let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
        self.server.pause().await;
        let asked = self.registry.send(CloseEvery).await.unwrap_or(0);
        info!("shutting down sessions={asked}");
        // Joined sessions have queued their records once the Hub has seen them leave; WebSockets
        // are done once their close frame is out (the HTTP server no longer counts them).
        while (self.hub.send(CountSessions).await.unwrap_or(0) > 0
            || self.open_websockets.load(Ordering::Relaxed) > 0)
            && std::time::Instant::now() < deadline
        {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if actix_web::rt::time::timeout(left, self.recovery.send(Flush))
            .await
            .is_err()
        {
            warn!("shutting down: session records not confirmed written within {SHUTDOWN_GRACE:?}");
        }
        self.server.stop(true).await;
    }
}

/// Starts the notification hub: the actors and the HTTP server. Must run inside an actix `System`;
/// the caller awaits (or spawns) `server`.
/// A key file that cannot be used is an error (the binary exits with status 1).
pub fn start(config: &Config) -> io::Result<RunningHub> {
    let namespaces = config.namespaces.clone();
    let security = &config.security;
    let tokens = token::TokenVerifier::from_settings(security)
        .map_err(io::Error::other)?
        .map(Arc::new);
    log_connect_mode(config, tokens.as_deref());
    let api_keys = !security.api_keys.is_empty();
    let max_notify_bytes = config.max_notify_bytes;
    let public_rooms = RoomPatterns::new(&security.public_rooms)
        .map_err(|err| io::Error::other(format!("HUB_PUBLIC_ROOMS: {err}")))?;
    start_with(config, move |bridge| {
        let app = HubApp::new(bridge, namespaces)
            .with_security(tokens, api_keys)
            .with_max_notify_bytes(max_notify_bytes);
        Arc::new(app.with_public_rooms(public_rooms))
    })
}

/// The start-up lines saying who may connect and who may publish with the socket `notify` (which
/// algorithms and key sources, never a secret).
fn log_connect_mode(config: &Config, tokens: Option<&token::TokenVerifier>) {
    let security = &config.security;
    match tokens {
        Some(tokens) => {
            info!(
                "connect: JWT required ({}); socket notify: tokens with scope \"notify\"",
                tokens.summary()
            );
            if security
                .jwt_secret
                .as_ref()
                .is_some_and(|secret| secret.expose().len() < token::MIN_HS256_SECRET_BYTES)
            {
                warn!(
                    "HUB_JWT_SECRET is shorter than {} bytes (RFC 7518 §3.2 asks for 256 bits or more)",
                    token::MIN_HS256_SECRET_BYTES
                );
            }
        }
        None if security.api_keys.is_empty() => {
            info!("connect: open (no token); socket notify: allowed to every socket")
        }
        None => info!("connect: open (no token); socket notify: off (API keys set, JWT not)"),
    }
}

/// Starts a hub whose sockets are answered by the application `app` makes (given the log's owner, to
/// publish with): the notification hub's, or the conformance suites' ([`app::SuiteApp`]).
pub fn start_with(
    config: &Config,
    app: impl FnOnce(Addr<StreamBridge>) -> SharedApp,
) -> io::Result<RunningHub> {
    let actors = spawn(config, app)?;
    let listeners = bind(config)?;
    memory::spawn_trimmer();
    serve(config, actors, listeners)
}

/// The actors of one instance, started, and what the HTTP layer shares.
struct Actors {
    state: web::Data<http::AppState>,
    hub: Addr<Hub>,
    recovery: Addr<Recovery>,
}

/// Starts the actors: Hub, StreamBridge over the configured log, Recovery, Registry.
fn spawn(config: &Config, app: impl FnOnce(Addr<StreamBridge>) -> SharedApp) -> io::Result<Actors> {
    let metrics = Arc::new(Metrics::new(config.metrics));
    let hub = Hub::new(config.max_buffered_bytes, metrics.clone())
        .with_parser(config.parser)
        .start();
    let shards: Vec<Box<dyn LogBackend>> = match &config.redis_url {
        Some(url) => {
            let uid = recovery_random_uid();
            let endpoint = Endpoint::parse(url).map_err(io::Error::other)?;
            let where_ = endpoint.describe();
            let min_replicas = (config.redis_min_replicas > 0).then_some(MinReplicas {
                replicas: config.redis_min_replicas,
                timeout: config.redis_min_replicas_timeout,
            });
            let shards = config.stream_shards;
            let loops_down = Arc::new(std::sync::atomic::AtomicUsize::new(shards));
            let mut logs: Vec<Box<dyn LogBackend>> = Vec::with_capacity(shards);
            for shard in 0..shards {
                let key = shard_key(&config.stream_key, shard, shards);
                let log = RedisLog::new(
                    endpoint.clone(),
                    &key,
                    config.max_len,
                    uid,
                    config.instance_lease,
                    metrics.clone(),
                )
                .map_err(io::Error::other)?
                .with_shard(shard, loops_down.clone(), (&config.stream_key, shards))
                .with_idempotency_ttl(config.idempotency_ttl)
                .with_min_replicas(min_replicas);
                logs.push(Box::new(log));
            }
            info!(
                "log backend=redis stream_key={:?} shards={shards} url={where_} max_len=~{} \
                 min_replicas={}",
                config.stream_key, config.max_len, config.redis_min_replicas
            );
            logs
        }
        None if config.redis_min_replicas > 0 => {
            return Err(io::Error::other(
                "HUB_REDIS_MIN_REPLICAS needs REDIS_URL: the embedded log has no replicas",
            ));
        }
        None if config.stream_shards > 1 => {
            return Err(io::Error::other(
                "HUB_STREAM_SHARDS > 1 needs REDIS_URL: the embedded log is one stream in one process",
            ));
        }
        None => {
            info!(
                "log backend=embedded max_len={} max_bytes={}",
                config.max_len, config.max_log_bytes
            );
            vec![Box::new(
                MemoryLog::new(config.max_len, config.max_log_bytes).with_idempotency(
                    config.idempotency_ttl,
                    config.idempotency_max_keys,
                    metrics.clone(),
                ),
            )]
        }
    };
    let bridge = StreamBridge::sharded(shards, hub.clone(), metrics.clone()).start();
    let recovery = Recovery::new(
        bridge.clone(),
        config.recovery_window,
        config.instance_lease,
        metrics.clone(),
    )
    .with_replay_slots(config.max_replays, config.replay_wait)
    .start();
    let registry = Registry::default().start();

    let settings = Arc::new(SessionSettings {
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
        max_payload: config.max_payload,
        connect_timeout: config.connect_timeout,
        upgrade_timeout: config.upgrade_timeout,
        recovery: config.recovery,
        // Twice per window, so a record never expires while its session lives.
        record_refresh: (config.recovery_window / 2).max(Duration::from_millis(1)),
        engine_echo: config.engine_echo,
        parser: config.parser,
        max_buffered: config.max_buffered_bytes,
        unfinished: Arc::new(UnfinishedBudget::new(
            config.max_unfinished_bytes,
            config.unfinished_allowance_bytes,
            metrics.clone(),
        )),
        event_rate: EventRate::new(
            config.security.socket_events_per_second,
            config.security.socket_abuse_limit,
        ),
        max_rooms: config.max_rooms_per_socket,
        replay_stall: config.replay_stall,
    });
    let admin = admin::start(
        &config.admin,
        &config.path,
        app(bridge.clone()),
        hub.clone(),
        bridge.clone(),
    )
    .map_err(io::Error::other)?;
    let parts = Arc::new(SessionParts {
        settings,
        app: admin.app,
        admin: admin.monitor,
        hub: hub.clone(),
        recovery: recovery.clone(),
        registry: registry.clone(),
        metrics: metrics.clone(),
    });
    let limits = admission::Limits {
        sessions: config.max_sessions,
        per_address: config.max_sessions_per_address,
        unjoined: config.max_unjoined,
        unjoined_per_address: config.max_unjoined_per_address,
        connections_per_second: config.security.connections_per_second_per_address,
    };
    let security = &config.security;
    let publishers = http::guard::Publishers::new(
        &security.api_keys,
        security.publish_per_second_per_address,
        security.publish_per_second_per_key,
    );
    if publishers.keys_required() {
        // How many, never which: the keys themselves are never logged.
        info!(
            "publishing requires an API key api_keys={} (HUB_API_KEYS, never shown)",
            security.api_keys.len()
        );
    } else {
        warn!(
            "open mode: anyone who can reach this hub may publish (POST /notifications/notify) \
             and disconnect any socket or user (POST /sockets/disconnect), JWT or not; \
             set HUB_API_KEYS (or --api-keys) to one or more comma-separated keys to require one"
        );
    }
    // The CONNECT's verifier is the application's; the history API verifies the same tokens with
    // its own copy (a second read of the key file at start, nothing per request).
    let readers = http::history::Readers::new(
        token::TokenVerifier::from_settings(security)
            .map_err(io::Error::other)?
            .map(Arc::new),
        RoomPatterns::new(&security.public_rooms)
            .map_err(|err| io::Error::other(format!("HUB_PUBLIC_ROOMS: {err}")))?,
    );
    let state = web::Data::new(http::AppState {
        admission: admission::Admission::new(limits, metrics.clone()),
        parts,
        bridge,
        registry,
        metrics,
        origins: http::origin::OriginPolicy::new(&config.cors_origins),
        publishers,
        readers,
        max_notify_bytes: config.max_notify_bytes,
        http_compression_threshold: config.http_compression_threshold,
        request_body_timeout: config.request_body_timeout,
        client_dir: config.client_dir.clone(),
        path: config.path.clone(),
        open_websockets: Arc::default(),
    });
    Ok(Actors {
        state,
        hub,
        recovery,
    })
}

/// Binds every address the host names (`localhost`: 127.0.0.1 and ::1, as the suites expect). An
/// address that cannot be bound (no IPv6 here) is skipped, as long as one can.
fn bind(config: &Config) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    let mut refused = None;
    for addr in (config.host.as_str(), config.port).to_socket_addrs()? {
        match TcpListener::bind(addr) {
            Ok(listener) => listeners.push(listener),
            Err(err) => {
                warn!("not listening addr={addr} error=\"{err}\"");
                refused = Some(err);
            }
        }
    }
    if listeners.is_empty() {
        return Err(refused.unwrap_or_else(|| io::Error::other("the host names no address")));
    }
    Ok(listeners)
}

/// Serves HTTP (and WebSocket upgrades) on `listeners` with the actors' shared state.
fn serve(config: &Config, actors: Actors, listeners: Vec<TcpListener>) -> io::Result<RunningHub> {
    let Actors {
        state,
        hub,
        recovery,
    } = actors;
    let open_websockets = state.open_websockets.clone();
    let registry = state.registry.clone();
    // A client whose socket takes nothing for a whole heartbeat is gone or stuck, as the client
    // itself would conclude (reference §1.7).
    let dead_peer_timeout = config.ping_interval + config.ping_timeout;
    let (request_head_timeout, keep_alive) = (config.request_head_timeout, config.keep_alive);
    let addr = listeners
        .first()
        .ok_or_else(|| io::Error::other("the host names no address"))?
        .local_addr()?;
    let (public_dir, path) = (config.public_dir.clone(), config.path.clone());
    let quiet_path = format!("^{}", regex_escape(&path));
    // The access log renders its fields for every request, printed or not: with its lines filtered
    // out (RUST_LOG above info for it) it is left out, a few µs per request less.
    let access_log = log::log_enabled!(target: "actix_web::middleware::logger", log::Level::Info);
    // Signals are the binary's business (see main.rs): a library embedded in tests must not stop
    // on the test runner's Ctrl-C, and the orderly stop needs to close sessions first.
    let mut server = actix_server::Server::build()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .disable_signals();
    for listener in listeners {
        let local = listener.local_addr()?;
        let (state, public_dir, path, quiet_path) = (
            state.clone(),
            public_dir.clone(),
            path.clone(),
            quiet_path.clone(),
        );
        // What actix-web's HttpServer builds per worker, plus the upgrade service: WebSocket
        // upgrades leave the HTTP dispatcher with their stream (see `http::socketio::websocket`).
        server = server.listen(format!("hub-{local}"), listener, move || {
            let app = App::new()
                .app_data(state.clone())
                .wrap(middleware::from_fn(http::cors::cors))
                // Inside the access log, which prints the id it sets on the answer.
                .wrap(middleware::from_fn(http::request_id::request_id))
                // Per-request access lines, except the Engine.IO endpoint (polls every few seconds).
                // actix's default line, with the path for the request line: a query string is
                // never logged (a client that put a credential in a URL would have it logged).
                .wrap(middleware::Condition::new(
                    access_log,
                    middleware::Logger::new(ACCESS_LOG)
                        .custom_request_replace("method", |req| req.method().to_string())
                        // Quoted and escaped (`{:?}`): a client's `"` in its path or User-Agent
                        // cannot forge fields (a `request_id=` of another request) on this line.
                        .custom_request_replace("path", |req| format!("{:?}", req.path()))
                        .custom_request_replace("user_agent", |req| {
                            let agent = req.headers().get(actix_web::http::header::USER_AGENT);
                            format!(
                                "{:?}",
                                agent
                                    .map(|v| String::from_utf8_lossy(v.as_bytes()))
                                    .unwrap_or_default()
                            )
                        })
                        .exclude_regex(&quiet_path),
                ))
                // Outermost: CORS preflights and errors that escaped the routes get them too.
                .wrap(middleware::from_fn(http::headers::security_headers))
                .configure(|cfg| http::configure(cfg, public_dir.clone(), &path));
            let upgrades = state.clone();
            HttpService::build()
                .local_addr(local)
                // A connection's first request head must arrive in time (slow-header clients get
                // 408); an idle keep-alive connection is closed after `keep_alive`.
                .client_request_timeout(request_head_timeout)
                .keep_alive(keep_alive)
                // A long-polling GET whose client went away must end, so its session learns it
                // (reference §1.4).
                .h1_allow_half_closed(false)
                // actix-web's default: a refused body is read for a moment before the close, so
                // the client gets the answer, not a reset.
                .client_disconnect_timeout(Duration::from_secs(1))
                .on_connect_ext(move |conn: &TcpStream, _| {
                    abort_unacknowledged_after(conn, dead_peer_timeout)
                })
                .upgrade(fn_service(move |(req, framed)| {
                    http::socketio::websocket(upgrades.clone(), req, framed)
                }))
                .finish(map_config(
                    app.into_factory().map_err(|err: actix_web::Error| {
                        let mut answer = err.as_response_error().error_response();
                        http::headers::add(answer.headers_mut());
                        answer
                    }),
                    // Its host and address only serve URL generation, which the hub does not use.
                    |_| AppConfig::default(),
                ))
                .tcp()
        })?;
    }
    let server = server.run();
    info!("listening on http://{addr}");
    let shutdown = Shutdown {
        hub: hub.clone(),
        registry,
        open_websockets,
        recovery,
        server: server.handle(),
    };
    Ok(RunningHub {
        addr,
        server,
        sessions: SessionCount(hub),
        shutdown,
    })
}

/// Lets the kernel drop a connection whose sent data stays unacknowledged, or whose peer keeps its
/// window shut, for `timeout` (TCP_USER_TIMEOUT): a client that vanishes without a FIN while data is
/// on its way to it is noticed without waiting for the heartbeat.
fn abort_unacknowledged_after(conn: &TcpStream, timeout: Duration) {
    #[cfg(target_os = "linux")]
    if let Err(err) = socket2::SockRef::from(conn).set_tcp_user_timeout(Some(timeout)) {
        warn!("TCP_USER_TIMEOUT not set, stuck clients are closed only by TCP itself: {err}");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (conn, timeout);
}

/// `text` as a regular expression matching itself.
fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

/// 8 random bytes: this instance's adapter uid in the stream.
fn recovery_random_uid() -> [u8; 8] {
    let bytes = actors::recovery::random_bytes();
    let mut uid = [0u8; 8];
    uid.copy_from_slice(&bytes[..8]);
    uid
}
