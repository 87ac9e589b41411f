//! What sockets do beyond the protocol: the application behind the Socket.IO layer.
//!
//! Owns: nothing; an [`Application`] is shared by every session (`Arc`) and answers them.
//!
//! ```text
//! CONNECT /nsp {auth}            ─► authorize  ─► admitted, or CONNECT_ERROR {"message"} (before the
//!                                                 socket is registered or anything is replayed)
//!                                ─► on_connect ─► events to emit right after the CONNECT reply
//! EVENT   ["name", …] (+ binary) ─► on_event   ─► events to emit back, and the ack answer if one was asked
//! ACK     id […]                 ─► on_ack        (answers to events the application emitted with an ack)
//! ```
//!
//! [`HubApp`] is the notification hub's: clients may publish with `notify` (acknowledged with the entry
//! id or an error). [`SuiteApp`] is the application the official conformance suites expect
//! (reference §5): it echoes.

use std::future::{ready, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix::Addr;
use actix_http::header::HeaderMap;
use actix_web::web::Bytes;
use serde_json::{json, Value};

use crate::actors::stream_bridge::StreamBridge;
use crate::log_limit::LimitedLog;
use crate::notification::{self, IdempotencyKey, NotifyRequest};
use crate::rooms::RoomPatterns;
use crate::token::{self, TokenVerifier};
use crate::{limited_info, limited_warn};

/// The HTTP request that opened an Engine.IO session (Socket.IO's `socket.handshake`): what an
/// application may check before admitting a socket.
///
/// Every session keeps one for its whole life, so it is compact: the headers are one allocation of
/// `name: value` lines (names lowercase, as HTTP/1.1 parsing gives them), searched when asked.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    /// `name: value\n` per header, in the request's order.
    headers: Box<str>,
    /// The query string, without `?`.
    pub query: Box<str>,
    /// The client's address as the hub sees it (a proxy's, behind one).
    pub remote_addr: Option<SocketAddr>,
}

impl Handshake {
    /// The handshake of a request with these parts. Header values are copied (those that are not
    /// text are left out): the request's share the connection's whole read buffer, which a session
    /// living for hours must not keep alive.
    pub fn new(headers: &HeaderMap, query: &str, remote_addr: Option<SocketAddr>) -> Handshake {
        let mut lines = String::new();
        for (name, value) in headers.iter() {
            if let Ok(value) = value.to_str() {
                lines.push_str(name.as_str());
                lines.push_str(": ");
                lines.push_str(value);
                lines.push('\n');
            }
        }
        Handshake {
            headers: lines.into_boxed_str(),
            query: query.into(),
            remote_addr,
        }
    }

    /// Every header, in the request's order (a repeated header once per occurrence).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .lines()
            .filter_map(|line| line.split_once(": "))
    }

    /// The first value of header `name` (case-insensitive), e.g. `authorization`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }
}

/// A CONNECT the application refuses: the client gets `44<nsp>,{"message":…}` (plus `"data"` when
/// set), as a Node middleware's `next(err)` answers (reference §2.3), and its `connect_error` event.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRefusal {
    /// The error's message.
    pub message: String,
    /// Extra details for the client (`err.data`).
    pub data: Option<Value>,
}

/// Who an admitted socket is, as the application established it at the CONNECT: kept by the socket
/// for its whole life (compact: a session may live for hours), checked by a resume (its record
/// carries `sub`), and handed to the application with every event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The user's id (the token's `sub`, required in JWT mode); `None`: anonymous (no token).
    pub sub: Option<Box<str>>,
    /// When the socket's credential expires (the token's `exp`), seconds since the Unix epoch: the
    /// socket's transport is closed then, so the client reconnects with a fresh token. `None`: never.
    pub expires_at: Option<u64>,
    /// What the socket may do.
    pub scope: Scope,
    /// Glob patterns of the rooms it may `join` (the token's `rooms` claim); empty without a token.
    pub rooms: Box<[Box<str>]>,
}

impl Identity {
    /// Its personal room, `user:<sub>`, when it has a `sub`.
    pub fn user_room(&self) -> Option<String> {
        self.sub.as_deref().map(crate::rooms::user_room)
    }
}

/// What a socket may do: the permissions of its token's `scope` claim (RFC 8693 §4.2, space-separated)
/// that the hub knows, or what the mode grants everyone without tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope(u8);

impl Scope {
    /// Nothing.
    pub const NONE: Scope = Scope(0);
    /// `notify`: publish with the socket's `notify` event.
    pub const NOTIFY: Scope = Scope(1);

    /// The known permissions among a `scope` claim's space-separated names; others are ignored.
    pub fn from_claim(claim: &str) -> Scope {
        let mut scope = Scope::NONE;
        for name in claim.split(' ') {
            if name == "notify" {
                scope.0 |= Scope::NOTIFY.0;
            }
        }
        scope
    }

    /// Whether every permission of `wanted` is granted.
    pub fn allows(self, wanted: Scope) -> bool {
        self.0 & wanted.0 == wanted.0
    }
}

/// An admission decision that may take time (a token check, a lookup): the socket's identity, or
/// the refusal.
pub type AdmitFuture = Pin<Box<dyn Future<Output = Result<Identity, ConnectRefusal>>>>;

/// One event: `[name, …args]` as JSON (binary values as placeholders), and its attachments in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// The JSON array: the event name first for events; only the arguments for acks.
    pub data: Vec<Value>,
    /// The binary attachments the placeholders `{"_placeholder":true,"num":N}` point to.
    pub attachments: Vec<Bytes>,
}

impl Payload {
    /// An event `name` with JSON arguments and no binary.
    pub fn event(name: &str, args: impl IntoIterator<Item = Value>) -> Payload {
        let mut data = vec![Value::from(name)];
        data.extend(args);
        Payload {
            data,
            attachments: Vec::new(),
        }
    }
}

/// What the application answers to an event.
#[derive(Debug, Default)]
pub struct Reply {
    /// Events to emit to the socket, in order.
    pub emit: Vec<Payload>,
    /// Events to emit asking the client for an acknowledgement; its answer reaches `on_ack`.
    pub ask: Vec<Payload>,
    /// The acknowledgement's arguments, when the client asked for one.
    pub ack: Option<Payload>,
}

/// An answer that may take time (e.g. a publish to Redis).
pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply>>>;

/// The application behind every socket.
pub trait Application: Send + Sync + 'static {
    /// The namespaces clients may join; others get `44<nsp>,{"message":"Invalid namespace"}`.
    fn namespaces(&self) -> &[String];
    /// Whether a socket may join `nsp`: asked with the session's handshake and the CONNECT's `auth`
    /// (`{}` when the client sent none) before the socket is registered or anything is replayed.
    /// Admits everyone (anonymous, no permissions, no expiry) unless overridden.
    fn authorize(&self, _nsp: &str, _handshake: &Handshake, _auth: &Value) -> AdmitFuture {
        Box::pin(ready(Ok(Identity::default())))
    }
    /// A socket joined `nsp` with `auth` (`{}` when the client sent none).
    fn on_connect(&self, nsp: &str, auth: &Value) -> Vec<Payload>;
    /// An event from a client whose socket was admitted as `identity`. `wants_ack` says whether the
    /// client asked for an acknowledgement.
    fn on_event(
        &self,
        nsp: &str,
        identity: &Identity,
        event: Payload,
        wants_ack: bool,
    ) -> ReplyFuture;
    /// Whether a socket admitted as `identity` may `join` `room` of `nsp` (a name that passed
    /// [`crate::rooms::check_name`]). Every room unless overridden, as [`Self::authorize`] admits
    /// everyone.
    fn may_join(&self, _nsp: &str, _identity: &Identity, _room: &str) -> bool {
        true
    }
    /// A client's acknowledgement of an event emitted with [`Reply::ask`]: events to emit in return.
    fn on_ack(&self, _nsp: &str, _answer: Payload) -> Vec<Payload> {
        Vec::new()
    }
}

/// The notification hub: every socket gets broadcasts; `notify` publishes like the HTTP endpoint.
pub struct HubApp {
    bridge: Addr<StreamBridge>,
    namespaces: Vec<String>,
    /// With JWT configured: every CONNECT needs a valid token.
    tokens: Option<Arc<TokenVerifier>>,
    /// What a socket may do without tokens: everything in open mode; nothing with API keys set
    /// (publishing then needs a key, so the socket `notify` is off).
    tokenless: Scope,
    /// Rooms any socket may join with JWT configured (`HUB_PUBLIC_ROOMS`).
    public_rooms: RoomPatterns,
    /// The largest notification a `notify` event may carry, as JSON (`HUB_MAX_NOTIFY_BYTES`, the
    /// HTTP endpoint's body limit): the socket is bounded by `HUB_MAX_PAYLOAD` alone otherwise,
    /// 16 times more by default, so it could append what the endpoint refuses.
    max_notify_bytes: usize,
}

/// `HUB_MAX_NOTIFY_BYTES`'s default (64 KiB), the setting's and an application's built without a
/// config alike: one number for both doors of `notify`.
pub const DEFAULT_MAX_NOTIFY_BYTES: usize = 65_536;

/// Refused CONNECTs: their reasons, a few lines a minute however many arrive.
static UNAUTHORIZED: LimitedLog = LimitedLog::per_minute(6);
/// Refused `notify` events.
static FORBIDDEN: LimitedLog = LimitedLog::per_minute(6);

impl HubApp {
    /// The hub's application, publishing through `bridge`, serving `namespaces`, in open mode.
    pub fn new(bridge: Addr<StreamBridge>, namespaces: Vec<String>) -> HubApp {
        HubApp {
            bridge,
            namespaces,
            tokens: None,
            tokenless: Scope::NOTIFY,
            public_rooms: RoomPatterns::empty(),
            max_notify_bytes: DEFAULT_MAX_NOTIFY_BYTES,
        }
    }

    /// A `notify` event's notification may be at most `bytes` long as JSON (`HUB_MAX_NOTIFY_BYTES`).
    pub fn with_max_notify_bytes(mut self, bytes: usize) -> HubApp {
        self.max_notify_bytes = bytes;
        self
    }

    /// With JWT configured, any socket may also join the rooms matching `public_rooms`
    /// (`HUB_PUBLIC_ROOMS`), besides those its token's `rooms` claim allows.
    pub fn with_public_rooms(mut self, public_rooms: RoomPatterns) -> HubApp {
        self.public_rooms = public_rooms;
        self
    }

    /// With `tokens`, every CONNECT needs a valid token (its `scope` says whether `notify` is
    /// allowed); without, `notify` is allowed unless `api_keys` (publishing needs a key then).
    pub fn with_security(mut self, tokens: Option<Arc<TokenVerifier>>, api_keys: bool) -> HubApp {
        self.tokens = tokens;
        self.tokenless = if api_keys { Scope::NONE } else { Scope::NOTIFY };
        self
    }
}

impl Application for HubApp {
    fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Open or API-key mode: everyone, anonymous. JWT mode: a valid token (`auth.token`, else
    /// `Authorization: Bearer` on the handshake), or `44<nsp>,{"message":"unauthorized"}` with no
    /// detail (the reason goes to a rate-limited log line).
    fn authorize(&self, nsp: &str, handshake: &Handshake, auth: &Value) -> AdmitFuture {
        let Some(tokens) = &self.tokens else {
            let identity = Identity {
                scope: self.tokenless,
                ..Identity::default()
            };
            return Box::pin(ready(Ok(identity)));
        };
        let verified = token::presented(auth, handshake.header("authorization"))
            .and_then(|token| tokens.verify(token));
        let decision = verified.map_err(|reason| {
            let from = handshake.remote_addr.map(|addr| addr.ip().to_string());
            limited_warn!(
                UNAUTHORIZED,
                "CONNECT refused nsp={nsp} from={}: {reason}",
                from.as_deref().unwrap_or("-")
            );
            ConnectRefusal {
                message: "unauthorized".to_owned(),
                data: None,
            }
        });
        Box::pin(ready(decision))
    }

    fn on_connect(&self, _: &str, _: &Value) -> Vec<Payload> {
        Vec::new()
    }

    /// Open or API-key mode (no JWT): every room. JWT mode: rooms matching `HUB_PUBLIC_ROOMS` or a
    /// pattern of the token's `rooms` claim.
    fn may_join(&self, _nsp: &str, identity: &Identity, room: &str) -> bool {
        if self.tokens.is_none() || self.public_rooms.matches(room) {
            return true;
        }
        // Compiled per join (a few patterns, events are rate limited) rather than kept compiled
        // by every socket for its whole life; the token's patterns were checked at its CONNECT.
        !identity.rooms.is_empty()
            && RoomPatterns::new(&identity.rooms).is_ok_and(|claim| claim.matches(room))
    }

    /// `socket.emit("notify", {title?, body?, to?, except?, idempotencyKey?}, ack)` publishes a
    /// notification on `/`, exactly as `POST /notifications/notify` does (same fields and rules,
    /// `idempotencyKey` as its `Idempotency-Key` header), and acknowledges the same answer
    /// `{"id","title","body","timestamp","offset"}` or `{"error"}` (the HTTP 400/422/503 texts);
    /// `{"error":"forbidden"}` when the socket may not publish (its identity's scope lacks
    /// `notify`: JWT mode without the `notify` scope, or API keys set without JWT), the connection
    /// kept; `{"error":"notification larger than N bytes (HUB_MAX_NOTIFY_BYTES)"}` when the
    /// notification object, as compact JSON, is larger than the HTTP endpoint's body limit. A
    /// socket allowed to notify may address any room, `to` and `except` included.
    fn on_event(
        &self,
        nsp: &str,
        identity: &Identity,
        event: Payload,
        wants_ack: bool,
    ) -> ReplyFuture {
        if event.data.first().and_then(Value::as_str) != Some("notify") {
            return Box::pin(ready(Reply::default()));
        }
        let ack = move |value: Value| Reply {
            ack: wants_ack.then(|| Payload {
                data: vec![value],
                attachments: Vec::new(),
            }),
            ..Reply::default()
        };
        if !identity.scope.allows(Scope::NOTIFY) {
            limited_info!(
                FORBIDDEN,
                "notify refused nsp={nsp} sub={}: not in the socket's scope",
                identity.sub.as_deref().unwrap_or("-")
            );
            return Box::pin(ready(ack(json!({ "error": "forbidden" }))));
        }
        let mut body = event.data.get(1).cloned().unwrap_or_else(|| json!({}));
        // The key is read apart and taken out: it plays the `Idempotency-Key` header's part, so it
        // is neither part of the notification nor of what the size limit measures.
        let key = IdempotencyKey::from_payload(&body);
        if let Some(fields) = body.as_object_mut() {
            fields.remove(notification::IDEMPOTENCY_KEY_FIELD);
        }
        let size = serde_json::to_vec(&body).map_or(0, |json| json.len());
        if size > self.max_notify_bytes {
            let limit = self.max_notify_bytes;
            let err = format!("notification larger than {limit} bytes (HUB_MAX_NOTIFY_BYTES)");
            return Box::pin(ready(ack(json!({ "error": err }))));
        }
        // A binary title or body (a Buffer, an ArrayBuffer, msgpack bin) reaches us as its
        // placeholder; say so rather than serde's "invalid type: map" about the placeholder.
        if !event.attachments.is_empty() {
            if let Some(field) = ["title", "body"].into_iter().find(|field| {
                body.get(field)
                    .and_then(crate::protocol::msgpack::placeholder_index)
                    .is_some()
            }) {
                let err = notification::ValidationError::WrongTypes(format!(
                    "{field} is binary data, not a string"
                ));
                return Box::pin(ready(ack(json!({ "error": err.to_string() }))));
            }
        }
        let parsed = key.and_then(|key| Ok((NotifyRequest::from_value(body)?, key)));
        let (request, key) = match parsed {
            Ok(parsed) => parsed,
            Err(err) => return Box::pin(ready(ack(json!({ "error": err.to_string() })))),
        };
        let publish =
            notification::publish(&self.bridge, request, key, notification::Source::Socket);
        Box::pin(async move {
            match publish.await {
                Ok(published) => ack(published.answer()),
                Err(err) => ack(json!({ "error": err.to_string() })),
            }
        })
    }
}

/// The application of the official Socket.IO v5 conformance suite (reference §5): `/` and `/custom`;
/// emits `auth` with the handshake's auth on connect; echoes `message` as `message-back`; acknowledges
/// `message-with-ack` with the same arguments. Binary attachments travel back as they came.
/// Beyond the suite, for server-to-client acks: `ask` makes the server emit `question` (with the same
/// arguments) asking for an ack, and the client's answer comes back as `answered`.
pub struct SuiteApp {
    namespaces: Vec<String>,
}

impl Default for SuiteApp {
    fn default() -> Self {
        SuiteApp {
            namespaces: vec!["/".to_owned(), "/custom".to_owned()],
        }
    }
}

impl Application for SuiteApp {
    fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    fn on_connect(&self, _: &str, auth: &Value) -> Vec<Payload> {
        vec![Payload::event("auth", [auth.clone()])]
    }

    fn on_event(&self, _: &str, _: &Identity, event: Payload, wants_ack: bool) -> ReplyFuture {
        let mut reply = Reply::default();
        match event.data.first().and_then(Value::as_str) {
            Some("message") => {
                let mut data = event.data;
                data[0] = Value::from("message-back");
                reply.emit.push(Payload {
                    data,
                    attachments: event.attachments,
                });
            }
            Some("message-with-ack") if wants_ack => {
                reply.ack = Some(Payload {
                    data: event.data[1..].to_vec(),
                    attachments: event.attachments,
                });
            }
            Some("ask") => {
                let mut data = event.data;
                data[0] = Value::from("question");
                reply.ask.push(Payload {
                    data,
                    attachments: event.attachments,
                });
            }
            _ => {}
        }
        Box::pin(ready(reply))
    }

    fn on_ack(&self, _: &str, answer: Payload) -> Vec<Payload> {
        let mut data = vec![Value::from("answered")];
        data.extend(answer.data);
        vec![Payload {
            data,
            attachments: answer.attachments,
        }]
    }
}

/// Shared handle.
pub type SharedApp = Arc<dyn Application>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_keeps_the_headers_as_text_it_owns() {
        use actix_http::header::{HeaderName, HeaderValue};
        let buffer = Bytes::from_static(b"Bearer abc");
        let mut headers = HeaderMap::new();
        let shared = HeaderValue::from_maybe_shared(buffer.clone()).unwrap();
        headers.append(HeaderName::from_static("authorization"), shared);
        headers.append(
            HeaderName::from_static("x-tenant"),
            HeaderValue::from_static("acme: eu"),
        );
        headers.append(
            HeaderName::from_static("x-binary"),
            HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        let handshake = Handshake::new(&headers, "EIO=4&x=1", None);
        let copied = handshake.header("Authorization").unwrap();
        assert_eq!(copied, "Bearer abc");
        assert_ne!(
            copied.as_ptr(),
            buffer.as_ptr(),
            "a copy, not a view of the request's buffer"
        );
        assert_eq!(handshake.header("x-tenant"), Some("acme: eu"));
        assert_eq!(handshake.header("x-binary"), None, "not text: left out");
        assert_eq!(handshake.header("cookie"), None);
        assert_eq!(handshake.headers().count(), 2);
        assert_eq!(&*handshake.query, "EIO=4&x=1");
    }
}
