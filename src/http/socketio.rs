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
//! any request with a foreign Origin         403 {"code":4,"message":"Forbidden"} (http/origin.rs)
//! a handshake past a session cap or rate    503 / 429 {"code":4,"message":"Too many …"} (crate::admission)
//! GET  /socket.io/socket.io.min.js         the official client, from the local npm copy
//! ```
//!
//! Requests carrying `Upgrade: websocket` never reach actix-web's routing: the HTTP layer hands them,
//! with their TCP stream, to [`websocket`], which answers the upgrade itself and gives the stream to a
//! [`WsConn`] (see there why).

use std::io;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_codec::Framed;
use actix_files::NamedFile;
use actix_http::{h1, Request};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, Uri};
use actix_web::rt::net::TcpStream;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use log::debug;
use serde::Deserialize;

use super::compression;
use super::error::{ApiError, EioError, HandshakeRefused};
use super::{read_body, AppState, BodyError};
use crate::actors::disconnect::{Disconnect, SessionError};
use crate::actors::outbound::Outbound;
use crate::actors::recovery::random_bytes;
use crate::actors::registry::{Insert, Lookup, SessionHandle};
use crate::actors::session::{
    Poll, PollAbandoned, PollAnswer, PollRefused, PostBegin, PostBody, Session,
};
use crate::actors::ws_conn::{WsConn, WsConnId};
use crate::admission::Ticket;
use crate::app::Handshake;
use crate::limited_warn;
use crate::log_limit::LimitedLog;
use crate::protocol::ids::EioSid;

/// A foreign Origin on the Engine.IO endpoint: a page can cause it repeatedly, so rate-limited.
static REFUSED_ORIGIN: LimitedLog = LimitedLog::per_minute(6);

/// Files of the official client that the hub serves from its npm copy, as Node's `serveClient` does
/// (its bundle with the msgpack parser too, for pages of a `HUB_PARSER=msgpack` hub).
const CLIENT_FILES: [&str; 8] = [
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
];

#[derive(Debug, Deserialize)]
struct EioQuery {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
}

/// Node's checks common to every Engine.IO request, in Node's order (`BaseServer.verify`): the
/// query, the transport, the Origin header (its bytes, then whether it may use the hub: see
/// `http/origin.rs`; every request is checked, handshakes and the polls and upgrades of a session,
/// so a session never serves a foreign page, even one that learnt its sid). Gives whether it is a
/// WebSocket request, and its sid.
fn verify(
    state: &AppState,
    query: &str,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
) -> Result<(bool, Option<String>), EioError> {
    let query = web::Query::<EioQuery>::from_query(query).map_err(|_| EioError::BadRequest)?;
    let websocket = match query.transport.as_deref() {
        Some("polling") => false,
        Some("websocket") => true,
        _ => return Err(EioError::TransportUnknown),
    };
    if let Some(origin) = headers.get(header::ORIGIN) {
        if origin
            .as_bytes()
            .iter()
            .any(|&b| b != b'\t' && !(0x20..=0x7e).contains(&b) && b < 0x80)
        {
            return Err(EioError::BadRequest);
        }
        if !state.origins.admits(headers) {
            state.metrics.origin_refused.inc();
            limited_warn!(
                REFUSED_ORIGIN,
                "Engine.IO request from {} refused (403): Origin {:?} is neither this hub nor in \
                 HUB_CORS_ORIGINS",
                peer.map_or_else(|| "an unknown address".to_owned(), |p| p.ip().to_string()),
                String::from_utf8_lossy(origin.as_bytes())
            );
            return Err(EioError::Forbidden);
        }
    }
    Ok((websocket, query.into_inner().sid))
}

/// The protocol version check of a handshake (after its method).
fn handshake_version(query: &str) -> Result<(), EioError> {
    let query = web::Query::<EioQuery>::from_query(query).map_err(|_| EioError::BadRequest)?;
    if query.eio.as_deref() != Some("4") {
        return Err(EioError::UnsupportedProtocolVersion);
    }
    Ok(())
}

async fn lookup(state: &AppState, sid: String) -> Result<SessionHandle<Session>, EioError> {
    let sid = EioSid::from_wire(sid);
    let session = state.registry.send(Lookup::new(sid)).await.ok().flatten();
    session.ok_or(EioError::SessionIdUnknown)
}

/// The endpoint, any method, but WebSocket upgrades (see [`websocket`]).
pub async fn endpoint(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let (websocket, sid) = verify(&state, req.query_string(), req.headers(), req.peer_addr())?;
    if let Some(sid) = sid {
        let session = lookup(&state, sid).await?;
        return match (websocket, req.method()) {
            // A WebSocket request without `Upgrade: websocket`.
            (true, _) => Err(EioError::BadRequest.into()),
            (false, &Method::GET) => poll(&req, &state, session.addr).await,
            (false, &Method::POST) => post(&req, payload, &state, session.addr).await,
            (false, _) => Err(EioError::BadRequest.into()),
        };
    }
    if req.method() != Method::GET {
        return Err(EioError::BadHandshakeMethod.into());
    }
    if websocket {
        return Err(EioError::BadRequest.into());
    }
    handshake_version(req.query_string())?;
    let ticket = state
        .admission
        .admit(req.peer_addr().map(|addr| addr.ip()))
        .map_err(HandshakeRefused)?;
    let handshake = Handshake::new(req.headers(), req.query_string(), req.peer_addr());
    polling_handshake(&req, &state, handshake, ticket).await
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

async fn polling_handshake(
    req: &HttpRequest,
    state: &AppState,
    handshake: Handshake,
    ticket: Ticket,
) -> Result<HttpResponse, actix_web::Error> {
    let eio_sid = EioSid::from_random(random_bytes());
    let outbound = Arc::new(Outbound::default());
    let parts = state.parts.clone();
    let open = Session::open_packet(&eio_sid, &parts.settings, &["websocket"]);
    let addr =
        Session::polling(eio_sid.clone(), parts, outbound.clone(), handshake, ticket).start();
    register(state, &eio_sid, &addr, &outbound).await;
    Ok(text(req, state, open).await)
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
            sid: eio_sid.clone(),
            session,
        })
        .await;
}

/// A WebSocket upgrade request and its TCP stream, from the HTTP layer: checked as the endpoint
/// checks it, then answered `101` here and the stream given to a new [`WsConn`]; or refused with the
/// endpoint's answer and closed.
pub async fn websocket(
    state: web::Data<AppState>,
    req: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), actix_web::Error> {
    let req = Unpooled(req);
    // What the client sent after its request head stays: it is the start of its first frame. What
    // the dispatcher had not written yet (the answer to a request pipelined before) goes first.
    let parts = framed.into_parts();
    let (socket, early) = (parts.io, parts.read_buf);
    if !parts.write_buf.is_empty() && write_all(&socket, &parts.write_buf).await.is_err() {
        return Ok(());
    }
    let remote_addr = socket.peer_addr().ok();
    let (session, outbound, conn) = match accept_websocket(&state, &req, remote_addr).await {
        Ok(accepted) => accepted,
        Err(refusal) => {
            debug!("websocket upgrade of {} refused: {refusal}", req.uri());
            let _ = refuse(&socket, refusal).await;
            return Ok(());
        }
    };
    let _ = socket.set_nodelay(true);
    let accept = actix_http::ws::hash_key(
        req.headers()
            .get(header::SEC_WEBSOCKET_KEY)
            .map_or(&b""[..], |key| key.as_bytes()),
    );
    let mut answer = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\
        connection: Upgrade\r\nsec-websocket-accept: "
        .to_vec();
    answer.extend_from_slice(&accept);
    answer.extend_from_slice(b"\r\n\r\n");
    // A failed write ends the connection, which its first read then reports to the session.
    let _ = write_all(&socket, &answer).await;
    let early = if early.is_empty() {
        web::BytesMut::new()
    } else {
        web::BytesMut::from(&early[..])
    };
    WsConn::launch(
        conn,
        session.downgrade().recipient(),
        outbound,
        socket,
        early,
        state.parts.settings.ws_limits(),
        state.open_websockets.clone(),
    );
    Ok(())
}

/// A WebSocket upgrade's request, emptied when dropped. Its head goes back to actix-http's pool (up
/// to 128 heads a worker thread) as it is, to be cleared only when the pool hands it out again:
/// until then its header values and URI, slices of the connection's 8 KiB read buffer, keep that
/// buffer alive, long after the connection became a WebSocket (a ramp of connections left 256 of
/// them, 2 MB, in each instance, and as much again in the heads' header tables).
struct Unpooled(Request);

impl std::ops::Deref for Unpooled {
    type Target = Request;

    fn deref(&self) -> &Request {
        &self.0
    }
}

impl Drop for Unpooled {
    fn drop(&mut self) {
        let head = self.0.head_mut();
        head.headers = HeaderMap::new();
        head.uri = Uri::default();
    }
}

/// The endpoint's checks for an upgrade; a new session for a WebSocket handshake.
async fn accept_websocket(
    state: &AppState,
    req: &Request,
    remote_addr: Option<std::net::SocketAddr>,
) -> Result<(Addr<Session>, Arc<Outbound>, WsConnId), actix_web::Error> {
    // The endpoint's routes: its path, or one segment below it (Node matches by prefix).
    let below = req.path().strip_prefix(&*state.path);
    if below.is_none_or(|rest| rest.contains('/')) {
        return Err(super::error::ApiError::NotFound.into());
    }
    let query = req.uri().query().unwrap_or("");
    let (websocket, sid) = verify(state, query, req.headers(), remote_addr)?;
    if let Some(sid) = sid {
        let session = lookup(state, sid).await?;
        if !websocket || req.method() != Method::GET {
            return Err(EioError::BadRequest.into());
        }
        actix_http::ws::verify_handshake(req.head())?;
        return Ok((session.addr, session.outbound, WsConnId::next()));
    }
    if req.method() != Method::GET {
        return Err(EioError::BadHandshakeMethod.into());
    }
    if !websocket {
        // A polling handshake sent as an upgrade.
        return Err(EioError::BadRequest.into());
    }
    handshake_version(query)?;
    // The WebSocket handshake is checked before a session exists for it, and refused past a cap
    // before the upgrade, as a polling handshake is.
    actix_http::ws::verify_handshake(req.head())?;
    let ticket = state
        .admission
        .admit(remote_addr.map(|addr| addr.ip()))
        .map_err(HandshakeRefused)?;
    let eio_sid = EioSid::from_random(random_bytes());
    let outbound = Arc::new(Outbound::default());
    let conn = WsConnId::next();
    let handshake = Handshake::new(req.headers(), query, remote_addr);
    let parts = state.parts.clone();
    let session = Session::websocket(
        eio_sid.clone(),
        parts,
        outbound.clone(),
        conn,
        handshake,
        ticket,
    );
    let addr = session.start();
    register(state, &eio_sid, &addr, &outbound).await;
    Ok((addr, outbound, conn))
}

/// Writes the answer `refusal` gives, as actix-web would have, and closes the connection. Counted
/// for the trimmer as a session's start is: the connection's HTTP buffers were freed as a
/// handshake's are, and a storm of refusals (a full instance, a rate limit) leaves as much behind.
async fn refuse(socket: &TcpStream, refusal: actix_web::Error) -> io::Result<()> {
    crate::memory::churn();
    let mut response = refusal.as_response_error().error_response();
    // Outside the app's middleware, so added here, as on every other answer.
    super::headers::add(response.headers_mut());
    let mut head = format!("HTTP/1.1 {}\r\n", response.status());
    for (name, value) in response.headers() {
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(value.to_str().unwrap_or(""));
        head.push_str("\r\n");
    }
    let body = actix_web::body::to_bytes(response.into_body())
        .await
        .unwrap_or_default();
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut answer = head.into_bytes();
    answer.extend_from_slice(&body);
    write_all(socket, &answer).await?;
    socket2::SockRef::from(socket).shutdown(std::net::Shutdown::Write)?;
    // Closing with unread input would reset the connection, and the answer with it: read what the
    // client still sends, for a moment.
    let drain = async {
        let mut sink = vec![0u8; 4096];
        loop {
            socket.readable().await?;
            match socket.try_read(&mut sink) {
                Ok(0) => return Ok::<(), io::Error>(()),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err),
            }
        }
    };
    let _ = actix_web::rt::time::timeout(REFUSAL_DRAIN, drain).await;
    Ok(())
}

/// How long a refused upgrade's connection is read before it is closed.
const REFUSAL_DRAIN: std::time::Duration = std::time::Duration::from_millis(500);

async fn write_all(socket: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        socket.writable().await?;
        match socket.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// `200 text/plain` with a polling payload, never cached (reference §1.3); compressed as
/// Engine.IO compresses polling writes ([`compression`]).
async fn text(req: &HttpRequest, state: &AppState, body: String) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/plain; charset=UTF-8")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    let Some(coding) = compression::choose(req, body.len(), state.http_compression_threshold)
    else {
        return response.body(body);
    };
    // A large payload (up to HUB_MAX_BUFFERED_BYTES) takes milliseconds to compress: on the
    // blocking pool, as Node's zlib streams run on its thread pool, so this worker's other
    // connections are not held up; a small one is cheaper compressed here than handed over.
    let compressed = if body.len() < compression::INLINE_MAX {
        compression::compress(body.as_bytes(), coding)
    } else {
        match web::block(move || compression::compress(body.as_bytes(), coding)).await {
            Ok(compressed) => compressed,
            // The pool is gone (shutting down): Node answers a failed compression with a 500.
            Err(_) => return HttpResponse::InternalServerError().finish(),
        }
    };
    response
        .insert_header((header::CONTENT_ENCODING, coding.name()))
        .body(compressed)
}

fn refused(refusal: PollRefused) -> actix_web::Error {
    match refusal {
        // Node answers these with an empty 400 or 413 (the suites accept 400).
        PollRefused::Failed(why) => ApiError::from(why.consequence().request).into(),
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

async fn poll(
    req: &HttpRequest,
    state: &AppState,
    session: Addr<Session>,
) -> Result<HttpResponse, actix_web::Error> {
    match session.send(Poll).await {
        Ok(Ok(PollAnswer::Now(payload))) => Ok(text(req, state, payload).await),
        Ok(Ok(PollAnswer::Later { ticket, answer })) => {
            let mut guard = AbandonGuard {
                session,
                ticket,
                armed: true,
            };
            let payload = answer.await;
            guard.armed = false;
            // A session that ended without answering: the client learns it is closed.
            let payload = payload.unwrap_or_else(|_| "1".to_owned());
            Ok(text(req, state, payload).await)
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
        let why = SessionError::Parse("binary POST body (Engine.IO v3)".into());
        return Err(post_failed(&session, why));
    }
    match session.send(PostBegin).await {
        Ok(Ok(())) => {}
        Ok(Err(refusal)) => return Err(refused(refusal)),
        Err(_) => return Err(EioError::SessionIdUnknown.into()),
    }
    let limit = state.parts.settings.max_payload;
    let body = match read_body(payload, limit, state, "polling POST", req.peer_addr()).await {
        Ok(body) => body,
        Err(failure) => {
            let why = match failure.error {
                BodyError::Unreadable => SessionError::Transport("polling body unreadable"),
                BodyError::TooLarge => SessionError::MessageTooBig,
                // Node: 408, and the session ends ("http request timeout").
                BodyError::TimedOut => SessionError::BodyTimeout,
            };
            let refusal = post_failed(&session, why);
            return Ok(failure.answer(refusal.error_response()));
        }
    };
    match session.send(PostBody(body)).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().content_type("text/html").body("ok")),
        Ok(Err(refusal)) => Err(refused(refusal)),
        Err(_) => Err(EioError::SessionIdUnknown.into()),
    }
}

/// A POST whose body could not be taken ends its session; the POST is answered as the failure map says.
fn post_failed(session: &Addr<Session>, why: SessionError) -> actix_web::Error {
    let answer = why.consequence().request;
    session.do_send(Disconnect(why));
    ApiError::from(answer).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused upgrade's connection freed its HTTP buffers as a session's handshake does: a storm
    /// of them (a full instance, a handshake rate limit, a foreign page reconnecting) leaves as much
    /// free memory behind as a ramp of sessions, and the trimmer must see it though no session
    /// started.
    #[test]
    fn a_refused_upgrade_counts_for_the_trimmer() {
        crate::memory::counting(async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
            let client = std::net::TcpStream::connect(listener.local_addr().expect("its address"))
                .expect("connected");
            // The client sends nothing more: the refusal's drain ends at once.
            client
                .shutdown(std::net::Shutdown::Write)
                .expect("half-closed");
            let (server, _) = listener.accept().expect("accepted");
            server.set_nonblocking(true).expect("non-blocking");
            let server = TcpStream::from_std(server).expect("on the runtime");
            let before = crate::memory::churned();
            refuse(&server, EioError::BadRequest.into())
                .await
                .expect("answered");
            assert_eq!(crate::memory::churned() - before, 1, "churn counted");
        });
    }
}
