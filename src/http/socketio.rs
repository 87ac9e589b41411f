//! The Engine.IO endpoint, `/socket.io/`: validate the request as Node does, then start a Session.
//!
//! ```text
//! GET /socket.io/?EIO=4&transport=websocket  (Upgrade)  ─► 101, Session actor
//! anything else                                         ─► 400 {"code":N,"message":"…"} (reference §1.1)
//! GET /socket.io/socket.io.min.js                       ─► the official client, from the local npm copy
//! ```
//! Only the WebSocket transport is enabled: the open packet advertises `"upgrades":[]`, and a polling
//! request gets "Transport unknown", as a Node server configured with `transports: ["websocket"]` answers.

use actix_files::NamedFile;
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use serde::Deserialize;

use super::error::{ApiError, EioError};
use super::AppState;
use crate::actors::session::Session;

/// Files of the official client that the hub serves from its npm copy, as Node's `serveClient` does.
const CLIENT_FILES: [&str; 6] = [
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
];

#[derive(Debug, Deserialize)]
struct EioQuery {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
}

/// `/socket.io/` with any method.
pub async fn endpoint(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    verify(&req)?;
    let session = Session::new(
        state.settings.clone(),
        state.hub.clone(),
        state.recovery.clone(),
    );
    ws::WsResponseBuilder::new(session, &req, stream)
        .frame_size(state.settings.max_payload)
        .start()
}

/// `/socket.io/<file>`: a client file, or (Node matches the path by prefix) the endpoint itself.
pub async fn client_file_or_endpoint(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let name = req.match_info().query("file");
    if !CLIENT_FILES.contains(&name) {
        return endpoint(req, stream, state).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::NotFound.into());
    }
    let file = NamedFile::open_async(state.client_dir.join(name))
        .await
        .map_err(|_| ApiError::NotFound)?;
    Ok(file.into_response(&req))
}

/// Node's checks, in Node's order (`BaseServer.verify`, then `handshake`).
fn verify(req: &HttpRequest) -> Result<(), EioError> {
    let query =
        web::Query::<EioQuery>::from_query(req.query_string()).map_err(|_| EioError::BadRequest)?;
    if query.transport.as_deref() != Some("websocket") {
        return Err(EioError::TransportUnknown);
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        if origin
            .as_bytes()
            .iter()
            .any(|&b| b != b'\t' && !(0x20..=0x7e).contains(&b) && b < 0x80)
        {
            return Err(EioError::BadRequest);
        }
    }
    if query.sid.is_some() {
        // Every session lives on its WebSocket; without polling there is nothing a sid could name.
        return Err(EioError::SessionIdUnknown);
    }
    if req.method() != Method::GET {
        return Err(EioError::BadHandshakeMethod);
    }
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok());
    if !upgrade.is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(EioError::BadRequest);
    }
    if query.eio.as_deref() != Some("4") {
        return Err(EioError::UnsupportedProtocolVersion);
    }
    Ok(())
}
