//! The HTTP surface (DESIGN.md §7).
//!
//! ```text
//! GET  /                        the page (public/)
//! POST /notifications/notify    publish a notification
//! *    /socket.io/              Engine.IO endpoint (long-polling and WebSocket; HUB_PATH)
//! GET  /socket.io/socket.io.min.js   the official client (local npm copy)
//! GET  /healthz                 the process is alive
//! GET  /readyz                  the log backend is reachable and its read loop running
//! GET  /metrics                 Prometheus text: every counter of `crate::metrics`
//! ```

pub mod cors;
pub mod error;
pub mod notify;
pub mod socketio;

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use actix::Addr;
use actix_files::Files;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::actors::registry::Registry;
use crate::actors::session::{Session, SessionParts};
use crate::actors::stream_bridge::{IsReady, StreamBridge};
use crate::metrics::Metrics;

/// What the handlers share: addresses and settings, nothing mutable.
pub struct AppState {
    /// The caps on Engine.IO sessions; each new session gets a ticket from it.
    pub admission: Arc<crate::admission::Admission>,
    /// What new sessions are made of.
    pub parts: SessionParts,
    /// The log's owner.
    pub bridge: Addr<StreamBridge>,
    /// Engine.IO sid → session.
    pub registry: Addr<Registry<Session>>,
    /// Every counter, for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Origins allowed cross-site (`*` for any).
    pub cors_origins: Vec<String>,
    /// Largest notify body.
    pub max_notify_bytes: usize,
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
    cfg.route("/notifications/notify", web::post().to(notify::notify))
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
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
