//! Request ids: every answer of the app's routes carries `X-Request-Id`, and every 4xx/5xx answer is
//! logged once with it, so an operator finds the line a client's error report points at.
//!
//! ```text
//! request:  X-Request-Id: <id>     kept when 1..=64 characters of [A-Za-z0-9._-] (a proxy's id),
//!                                  else replaced by a new UUID v4 (never echoed: it may be anything)
//! answer:   X-Request-Id: <id>
//! 4xx/5xx:  log line  "http error request_id=<id> status=<code> method=<m> path=\"<path>\" peer=<ip> error=\"<text>\""
//!           JSON body {"error":"…"} gains "request_id":"<id>" (Engine.IO's {"code","message"} bodies
//!           stay Node's, byte for byte; empty bodies stay empty)
//! ```
//!
//! The path is logged without its query string (a client may put a credential there, `?token=`);
//! the error text is what the client was told, which never holds a key or token either. WebSocket
//! upgrades leave the HTTP dispatcher before the app (`crate::http::socketio::websocket`): a refused
//! one has no id.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::log_limit::LimitedLog;
use crate::{limited_info, limited_warn};

/// The header, request and answer.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id taken from a request.
const MAX_LEN: usize = 64;

/// 4xx lines are client-caused (a scanner makes thousands): a budget keeps them from flooding.
static CLIENT_ERROR: LimitedLog = LimitedLog::per_minute(60);
/// 5xx lines come in bursts when Redis is down; one per request is not needed to see that.
static SERVER_ERROR: LimitedLog = LimitedLog::per_minute(60);

/// A request's id (also in the request's extensions, for handlers that log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The request's own `X-Request-Id` when it is sane, else a new UUID v4.
    pub fn for_request(headers: &HeaderMap) -> RequestId {
        headers
            .get(&HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|id| is_sane(id))
            .map_or_else(
                || RequestId(uuid::Uuid::new_v4().to_string()),
                |id| RequestId(id.to_owned()),
            )
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// 1..=64 characters of `[A-Za-z0-9._-]`: safe in a header, a log line and JSON as it is.
fn is_sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The middleware (see the module's table).
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = RequestId::for_request(req.headers());
    req.extensions_mut().insert(id.clone());
    let mut res = next.call(req).await?.map_into_boxed_body();
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        res.headers_mut().insert(HEADER, value);
    }
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(res);
    }
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let mut told = (res.response().error().map(|err| err.to_string())).or_else(|| {
        res.response()
            .extensions()
            .get::<Told>()
            .map(|t| t.0.clone())
    });
    let res = res.map_body(|_, body| match body.try_into_bytes() {
        Ok(bytes) if json => {
            let (bytes, error) = with_request_id(bytes, &id);
            told = told.take().or(error);
            BoxBody::new(bytes)
        }
        Ok(bytes) => BoxBody::new(bytes),
        Err(body) => body,
    });
    let request = res.request();
    let peer = request
        .peer_addr()
        .map_or_else(|| "?".to_owned(), |p| p.ip().to_string());
    let (method, path, told) = (request.method(), request.path(), told.unwrap_or_default());
    if status.is_server_error() {
        limited_warn!(
            SERVER_ERROR,
            "http error request_id={id} status={} method={method} path={path:?} peer={peer} error={told:?}",
            status.as_u16()
        );
    } else {
        limited_info!(
            CLIENT_ERROR,
            "http error request_id={id} status={} method={method} path={path:?} peer={peer} error={told:?}",
            status.as_u16()
        );
    }
    Ok(res)
}

/// What an answer [`with_id_in_body`] made told its client, for the middleware's log line.
#[derive(Clone)]
struct Told(String);

/// `response` (an API error) with the request's id in its JSON body, for an answer whose body the
/// middleware cannot read back (one that holds the request's payload until it is written:
/// `crate::http::BodyFailure`).
pub fn with_id_in_body(req: &HttpRequest, response: HttpResponse) -> HttpResponse {
    let Some(id) = req.extensions().get::<RequestId>().cloned() else {
        return response;
    };
    let (mut head, body) = response.into_parts();
    match body.try_into_bytes() {
        Ok(bytes) => {
            let (bytes, error) = with_request_id(bytes, &id);
            if let Some(error) = error {
                head.extensions_mut().insert(Told(error));
            }
            head.set_body(BoxBody::new(bytes))
        }
        Err(body) => head.set_body(body),
    }
}

/// An API error body `{"error":"…"}` with `"request_id"` added after it, and the error's text;
/// any other body (Engine.IO's `{"code","message"}`, not JSON) as it was, with its `message`.
fn with_request_id(bytes: Bytes, id: &RequestId) -> (Bytes, Option<String>) {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&bytes) else {
        return (bytes, None);
    };
    if body.contains_key("code") {
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned);
        return (bytes, message);
    }
    let error = body.get("error").and_then(Value::as_str).map(str::to_owned);
    if error.is_none() || body.contains_key("request_id") {
        return (bytes, error);
    }
    body.insert("request_id".to_owned(), Value::String(id.0.clone()));
    (Bytes::from(Value::Object(body).to_string()), error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(id).unwrap());
        headers
    }

    #[test]
    fn a_sane_id_is_kept_anything_else_replaced_by_a_uuid() {
        for sane in ["abc", "req-1.2_3", &"a".repeat(64)] {
            assert_eq!(RequestId::for_request(&headers(sane)).0, sane);
        }
        for insane in ["", "a b", "a\"b", "id=1", &"a".repeat(65), "é"] {
            let id = RequestId::for_request(&headers(insane)).0;
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{insane:?} → {id}");
        }
        let fresh = RequestId::for_request(&HeaderMap::new()).0;
        assert_eq!(uuid::Uuid::parse_str(&fresh).unwrap().get_version_num(), 4);
    }

    #[test]
    fn api_error_bodies_gain_the_id_and_engine_io_bodies_stay_as_node_writes_them() {
        let id = RequestId("r1".into());
        let (api, error) = with_request_id(Bytes::from(r#"{"error":"not found"}"#), &id);
        assert_eq!(api, r#"{"error":"not found","request_id":"r1"}"#);
        assert_eq!(error.as_deref(), Some("not found"));
        let eio = Bytes::from(r#"{"code":1,"message":"Session ID unknown"}"#);
        let (same, message) = with_request_id(eio.clone(), &id);
        assert_eq!(same, eio);
        assert_eq!(message.as_deref(), Some("Session ID unknown"));
        let (text, none) = with_request_id(Bytes::from("oops"), &id);
        assert_eq!((text, none), (Bytes::from("oops"), None));
    }
}
