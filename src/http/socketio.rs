//! The Engine.IO endpoint, `/socket.io/`: validate the request as Node does, then start a Session.
//!
//! ```text
//! GET /socket.io/?EIO=4&transport=websocket  (Upgrade)  ─► 101, Session actor
//! anything else                                         ─► 400 {"code":N,"message":"…"} (reference §1.1)
//! GET /socket.io/socket.io.min.js                       ─► the official client, from the local npm copy
//! ```
//! Only the WebSocket transport is enabled: the open packet advertises `"upgrades":[]`, and a polling
//! request gets "Transport unknown", as a Node server configured with `transports: ["websocket"]` answers.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_files::NamedFile;
use actix_web::http::{header, Method};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, WebsocketContext};
use futures_core::Stream;
use serde::Deserialize;

use super::error::{ApiError, EioError};
use super::AppState;
use crate::actors::hub::Outbound;
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
    let mut response = ws::handshake(&req)?;
    let outbound = Arc::new(Outbound::default());
    let session = Session::new(
        state.settings.clone(),
        outbound.clone(),
        state.hub.clone(),
        state.recovery.clone(),
    );
    let codec = actix_http::ws::Codec::new().max_size(state.settings.max_payload);
    let frames = WebsocketContext::with_codec(session, stream, codec);
    Ok(response.streaming(Metered {
        frames: Box::pin(frames),
        outbound,
    }))
}

/// The session's outgoing frames on their way to the socket, counted as the dispatcher pulls them.
struct Metered<S> {
    frames: Pin<Box<S>>,
    outbound: Arc<Outbound>,
}

impl<S: Stream<Item = Result<Bytes, actix_web::Error>>> Stream for Metered<S> {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.outbound.is_aborted() {
            // Erroring the body makes the dispatcher drop the connection and what is queued for it.
            return Poll::Ready(Some(Err(actix_web::error::ErrorServiceUnavailable(
                "slow consumer",
            ))));
        }
        let next = self.frames.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(bytes))) = &next {
            self.outbound.pulled(bytes.len());
        }
        next
    }
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
