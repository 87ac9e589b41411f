//! The Engine.IO endpoint (`/socket.io/` by default): validate each request as Node does, then hand it
//! to the Session it belongs to (reference §1.1, §1.3-§1.6).
//!
//! ```text
//! GET  ?EIO=4&transport=polling            handshake: 200 0{"sid",…,"upgrades":["websocket"],…}
//! GET  ?EIO=4&transport=polling&sid=S      long poll: 200 with queued packets joined by 0x1E
//! POST ?EIO=4&transport=polling&sid=S      packets from the client: 200 "ok"
//! GET  ?EIO=4&transport=websocket          WebSocket session: 101, then 0{…,"upgrades":[],…}
//! GET  ?EIO=4&transport=websocket&sid=S    upgrade of polling session S: 101, then 2probe/3probe, 5
//! anything refused                          400 {"code":N,"message":"…"} (or Node's empty 400 / 413)
//! GET  /socket.io/socket.io.min.js         the official client, from the local npm copy
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::Addr;
use actix_files::NamedFile;
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, WebsocketContext};
use serde::Deserialize;

use super::error::{ApiError, EioError};
use super::AppState;
use crate::actors::hub::Outbound;
use crate::actors::recovery::random_bytes;
use crate::actors::registry::{Insert, Lookup, SessionHandle};
use crate::actors::session::{
    DisconnectReason, Poll, PollAbandoned, PollAnswer, PollRefused, PostBegin, PostBody,
    PostFailed, Session,
};
use crate::actors::ws_conn::{Metered, WsConn};
use crate::protocol::ids::EioSid;

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

/// Names WebSocket connections, so a Session tells its transport from an upgrade probe.
fn next_ws_conn() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The endpoint, any method.
pub async fn endpoint(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    // Node's checks, in Node's order (`BaseServer.verify`, then `handshake`).
    let query =
        web::Query::<EioQuery>::from_query(req.query_string()).map_err(|_| EioError::BadRequest)?;
    let websocket = match query.transport.as_deref() {
        Some("polling") => false,
        Some("websocket") => true,
        _ => return Err(EioError::TransportUnknown.into()),
    };
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        if origin
            .as_bytes()
            .iter()
            .any(|&b| b != b'\t' && !(0x20..=0x7e).contains(&b) && b < 0x80)
        {
            return Err(EioError::BadRequest.into());
        }
    }
    if let Some(sid) = &query.sid {
        let session = state
            .registry
            .send(Lookup(sid.clone()))
            .await
            .ok()
            .flatten();
        let session = session.ok_or(EioError::SessionIdUnknown)?;
        return match (websocket, req.method()) {
            (true, &Method::GET) if is_upgrade(&req) => start_websocket(
                &req,
                payload,
                &state,
                session.addr,
                next_ws_conn(),
                session.outbound,
            ),
            (true, _) => Err(EioError::BadRequest.into()),
            (false, &Method::GET) => poll(session.addr).await,
            (false, &Method::POST) => post(&req, payload, &state, session.addr).await,
            (false, _) => Err(EioError::BadRequest.into()),
        };
    }
    if req.method() != Method::GET {
        return Err(EioError::BadHandshakeMethod.into());
    }
    if websocket && !is_upgrade(&req) {
        return Err(EioError::BadRequest.into());
    }
    if query.eio.as_deref() != Some("4") {
        return Err(EioError::UnsupportedProtocolVersion.into());
    }
    handshake(&req, payload, &state, websocket).await
}

/// `/socket.io/<file>`: a client file, or (Node matches the path by prefix) the endpoint itself.
pub async fn client_file_or_endpoint(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let name = req.match_info().query("file");
    if !CLIENT_FILES.contains(&name) {
        return endpoint(req, payload, state).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::NotFound.into());
    }
    let file = NamedFile::open_async(state.client_dir.join(name))
        .await
        .map_err(|_| ApiError::NotFound)?;
    Ok(file.into_response(&req))
}

fn is_upgrade(req: &HttpRequest) -> bool {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok());
    upgrade.is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn handshake(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    websocket: bool,
) -> Result<HttpResponse, actix_web::Error> {
    let eio_sid = EioSid::from_random(random_bytes());
    let outbound = Arc::new(Outbound::default());
    let parts = state.parts.clone();
    if websocket {
        // The WebSocket handshake is checked before a session exists for it.
        ws::handshake(req)?;
        let conn = next_ws_conn();
        let session = Session::websocket(eio_sid.clone(), parts, outbound.clone(), conn);
        let addr = actix::Actor::start(session);
        register(state, &eio_sid, &addr, &outbound).await;
        return start_websocket(req, payload, state, addr, conn, outbound);
    }
    let open = Session::open_packet(&eio_sid, &parts.settings, &["websocket"]);
    let addr = actix::Actor::start(Session::polling(eio_sid.clone(), parts, outbound.clone()));
    register(state, &eio_sid, &addr, &outbound).await;
    Ok(text(open))
}

async fn register(
    state: &AppState,
    eio_sid: &EioSid,
    addr: &Addr<Session>,
    outbound: &Arc<Outbound>,
) {
    let session = SessionHandle {
        addr: addr.clone(),
        outbound: outbound.clone(),
    };
    // Awaited: the client may send its next request as soon as it has the answer.
    let _ = state
        .registry
        .send(Insert {
            sid: eio_sid.to_string(),
            session,
        })
        .await;
}

fn start_websocket(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    session: Addr<Session>,
    conn: u64,
    outbound: Arc<Outbound>,
) -> Result<HttpResponse, actix_web::Error> {
    let mut response = ws::handshake(req)?;
    let max_payload = state.parts.settings.max_payload;
    let ws_conn = WsConn::new(conn, session.recipient(), outbound.clone(), max_payload);
    let codec = actix_http::ws::Codec::new().max_size(max_payload);
    let frames = WebsocketContext::with_codec(ws_conn, payload, codec);
    Ok(response.streaming(Metered::new(frames, outbound)))
}

/// `200 text/plain` with a polling payload, never cached (reference §1.3).
fn text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=UTF-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

fn refused(refusal: PollRefused) -> actix_web::Error {
    match refusal {
        // Node answers these with an empty 400 (the suites accept 400).
        PollRefused::Duplicate | PollRefused::Malformed => ApiError::EmptyBadRequest.into(),
        PollRefused::WrongTransport => EioError::BadRequest.into(),
        PollRefused::Gone => EioError::SessionIdUnknown.into(),
    }
}

/// Tells the session if the GET's client goes away before its answer (the handler is dropped).
struct AbandonGuard {
    session: Addr<Session>,
    ticket: u64,
    armed: bool,
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if self.armed {
            self.session.do_send(PollAbandoned(self.ticket));
        }
    }
}

async fn poll(session: Addr<Session>) -> Result<HttpResponse, actix_web::Error> {
    match session.send(Poll).await {
        Ok(Ok(PollAnswer::Now(payload))) => Ok(text(payload)),
        Ok(Ok(PollAnswer::Later { ticket, answer })) => {
            let mut guard = AbandonGuard {
                session,
                ticket,
                armed: true,
            };
            let payload = answer.await;
            guard.armed = false;
            // A session that ended without answering: the client learns it is closed.
            Ok(text(payload.unwrap_or_else(|_| "1".to_owned())))
        }
        Ok(Err(refusal)) => Err(refused(refusal)),
        Err(_) => Err(EioError::SessionIdUnknown.into()),
    }
}

async fn post(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    session: Addr<Session>,
) -> Result<HttpResponse, actix_web::Error> {
    // Binary POST bodies belong to Engine.IO v3 (reference §1.4).
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/octet-stream") {
        session.do_send(PostFailed(DisconnectReason::ParseError));
        return Err(ApiError::EmptyBadRequest.into());
    }
    match session.send(PostBegin).await {
        Ok(Ok(())) => {}
        Ok(Err(refusal)) => return Err(refused(refusal)),
        Err(_) => return Err(EioError::SessionIdUnknown.into()),
    }
    let body = match payload
        .to_bytes_limited(state.parts.settings.max_payload)
        .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            session.do_send(PostFailed(DisconnectReason::TransportError));
            return Err(ApiError::EmptyBadRequest.into());
        }
        Err(_) => {
            session.do_send(PostFailed(DisconnectReason::MessageTooBig));
            return Err(ApiError::EmptyPayloadTooLarge.into());
        }
    };
    match session.send(PostBody(body)).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().content_type("text/html").body("ok")),
        Ok(Err(refusal)) => Err(refused(refusal)),
        Err(_) => Err(EioError::SessionIdUnknown.into()),
    }
}
