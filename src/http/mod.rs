//! The HTTP surface (DESIGN.md §7).
//!
//! ```text
//! GET  /                        the page (public/)
//! GET  /notifications           the notification history, a page at a time (`history`)
//! POST /notifications/notify    publish a notification (to everyone, or to rooms: `to` / `except`)
//! POST /sockets/disconnect      disconnect a socket (sid) or a user's sockets, on every instance
//! *    /socket.io/              Engine.IO endpoint (long-polling and WebSocket; HUB_PATH)
//! GET  /socket.io/socket.io.min.js   the official client (local npm copy)
//! GET  /healthz                 the process is alive
//! GET  /readyz                  the log backend is reachable and its read loop running
//! GET  /metrics                 Prometheus text: every counter of `crate::metrics`
//! ```
//!
//! Every answer carries the security headers of [`headers`] and an `X-Request-Id` ([`request_id`]).

pub mod compression;
pub mod cors;
pub mod error;
pub mod guard;
pub mod headers;
pub mod history;
pub mod notify;
pub mod origin;
pub mod request_id;
pub mod socketio;
pub mod sockets;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_files::Files;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{web, HttpResponse};
use futures_core::Stream;
use serde_json::json;

use crate::actors::registry::Registry;
use crate::actors::session::{Session, SessionParts};
use crate::actors::stream_bridge::{IsReady, StreamBridge};
use crate::limited_warn;
use crate::log_limit::LimitedLog;
use crate::metrics::Metrics;

/// What the handlers share: addresses and settings, nothing mutable.
pub struct AppState {
    /// The caps on Engine.IO sessions; each new session gets a ticket from it.
    pub admission: Arc<crate::admission::Admission>,
    /// What new sessions are made of (shared: each session holds the same ones).
    pub parts: Arc<SessionParts>,
    /// The log's owner.
    pub bridge: Addr<StreamBridge>,
    /// Engine.IO sid → session.
    pub registry: Addr<Registry<Session>>,
    /// Every counter, for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Origins allowed besides the hub's own (`HUB_CORS_ORIGINS`): CORS and the Origin checks.
    pub origins: origin::OriginPolicy,
    /// The API keys and publish rate limits ([`guard::Publisher`]).
    pub publishers: guard::Publishers,
    /// Who may read the history, besides the API keys ([`history::Readers`]).
    pub readers: history::Readers,
    /// Largest notify body.
    pub max_notify_bytes: usize,
    /// Polling answers of at least this many bytes are compressed when the client accepts it
    /// (`HUB_HTTP_COMPRESSION_THRESHOLD`); `None`: never ([`compression`]).
    pub http_compression_threshold: Option<usize>,
    /// Time a request has to deliver its whole body (`HUB_REQUEST_BODY_TIMEOUT_MS`).
    pub request_body_timeout: Duration,
    /// Folder of the official client files.
    pub client_dir: PathBuf,
    /// Where the Engine.IO endpoint is (`HUB_PATH`), for the upgrades that bypass routing.
    pub path: String,
    /// How many WebSockets are open (the orderly shutdown waits for them).
    pub open_websockets: Arc<AtomicUsize>,
}

/// Registers every route, the Engine.IO endpoint at `path` (e.g. `/socket.io/`); `state` must also be
/// registered as app data.
pub fn configure(cfg: &mut web::ServiceConfig, public_dir: PathBuf, path: &str) {
    cfg.route("/notifications", web::get().to(history::history))
        .route("/notifications/notify", web::post().to(notify::notify))
        .route("/sockets/disconnect", web::post().to(sockets::disconnect))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route(path, web::route().to(socketio::endpoint))
        .route(
            &format!("{path}{{file}}"),
            web::route().to(socketio::client_file_or_endpoint),
        )
        .service(Files::new("/", public_dir).index_file("index.html"));
}

/// Why a request body could not be taken whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// More than the limit.
    TooLarge,
    /// The connection failed while the body arrived (or its framing is broken).
    Unreadable,
    /// Not all of it within `AppState::request_body_timeout`.
    TimedOut,
}

/// A body not taken whole, with the request's payload, unread: see [`BodyFailure::answer`].
pub struct BodyFailure {
    /// What went wrong.
    pub error: BodyError,
    payload: web::Payload,
}

impl BodyFailure {
    /// `response`, sent with `connection: close`, keeping the unread payload alive until its body is
    /// written. actix-http drains a dropped chunked request body for as long as the client sends it
    /// (a trickling client would keep its connection after the answer); an unread one that is still
    /// alive when the answer ends makes it close the connection instead.
    pub fn answer(self, response: HttpResponse) -> HttpResponse {
        let (mut head, body) = response.into_parts();
        head.head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        let bytes = body.try_into_bytes().unwrap_or_default();
        head.set_body(ClosingBody {
            size: bytes.len() as u64,
            bytes: Some(bytes),
            _payload: self.payload,
        })
        .map_into_boxed_body()
    }
}

/// An answer's bytes, holding the request payload until they are written (see [`BodyFailure`]).
struct ClosingBody {
    size: u64,
    bytes: Option<Bytes>,
    _payload: web::Payload,
}

impl MessageBody for ClosingBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.size)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(self.get_mut().bytes.take().map(Ok))
    }
}

/// A body that does not arrive in time, per peer: a client can cause it, so rate-limited.
static BODY_TIMEOUT: LimitedLog = LimitedLog::per_minute(6);

/// Reads a whole request body of at most `limit` bytes within the request body timeout, counted from
/// now (the end of the request head). A timeout is counted in `/metrics` and logged (rate-limited).
/// On failure the caller answers with [`BodyFailure::answer`], which closes the connection.
pub async fn read_body(
    mut payload: web::Payload,
    limit: usize,
    state: &AppState,
    what: &str,
    peer: Option<SocketAddr>,
) -> Result<Bytes, BodyFailure> {
    let timeout = state.request_body_timeout;
    let reading = async {
        let mut body = BytesMut::new();
        while let Some(chunk) =
            std::future::poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await
        {
            let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
            if body.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    let error = match actix_web::rt::time::timeout(timeout, reading).await {
        Ok(Ok(body)) => return Ok(body),
        Ok(Err(error)) => error,
        Err(_) => {
            state.metrics.request_body_timeouts.inc();
            let peer = peer.map_or_else(|| "?".to_owned(), |p| p.ip().to_string());
            limited_warn!(
                BODY_TIMEOUT,
                "{what} body from {peer} not received within {timeout:?}: answered 408"
            );
            BodyError::TimedOut
        }
    };
    Err(BodyFailure { error, payload })
}

/// The body of a JSON API request (notify, disconnect): at most `HUB_MAX_NOTIFY_BYTES` (413 at once
/// when `Content-Length` announces more), read within the request body timeout. `Ok(Err(answer))`:
/// the body failed on its way (too large, unreadable, 408); answer with it, which closes the connection.
pub async fn read_api_body(
    req: &actix_web::HttpRequest,
    payload: web::Payload,
    state: &AppState,
    what: &str,
) -> Result<Result<Bytes, HttpResponse>, error::ApiError> {
    use actix_web::ResponseError;
    let limit = state.max_notify_bytes;
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(error::ApiError::PayloadTooLarge { limit });
    }
    Ok(
        match read_body(payload, limit, state, what, req.peer_addr()).await {
            Ok(body) => Ok(body),
            Err(failure) => {
                let error = match failure.error {
                    BodyError::TooLarge => error::ApiError::PayloadTooLarge { limit },
                    BodyError::Unreadable => {
                        error::ApiError::BadRequest("could not read the body".into())
                    }
                    BodyError::TimedOut => error::ApiError::RequestTimeout {
                        ms: state.request_body_timeout.as_millis(),
                    },
                };
                Err(failure.answer(request_id::with_id_in_body(req, error.error_response())))
            }
        },
    )
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.bridge.send(IsReady).await {
        Ok(true) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        _ => HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable" })),
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if !state.metrics.enabled {
        // A scrape of numbers that do not move would read as an idle hub.
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("metrics are off (HUB_METRICS=off)\n");
    }
    HttpResponse::Ok()
        .content_type(state.metrics.content_type())
        .body(state.metrics.render())
}
