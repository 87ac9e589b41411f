//! `POST /sockets/disconnect`: disconnect a socket, or every socket of a user, on every instance (a
//! cluster DISCONNECT_SOCKETS request, which Node peers act on too).
//!
//! ```text
//! {"sid": "<socket id>"}  | {"user": "<sub>"}   [, "close": true]
//!     ──► 202 {"requested": true, "rooms": ["<sid>" | "user:<sub>"], "close": false}
//! not JSON / not an object / neither or both of sid and user / bad name / a sid not shaped as a
//! socket id (a Node peer's 20 or the hub's 22 base64url characters) / close not a boolean ─► 400
//! body over the limit (HUB_MAX_NOTIFY_BYTES) ─► 413
//! log down, nothing requested ─► 503   sent, not confirmed (outcome unknown; a retry is safe) ─► 503
//! ```
//! The [`Publisher`] guard comes first, as for notify (403 foreign Origin, 401 API key, 429 rate),
//! then 415 for a body not declared `application/json`.
//!
//! 202, not 200: the request is in the log, and each instance acts on it as its read loop reaches
//! it; how many sockets other instances (hubs or Node peers) disconnect is not known when the
//! answer is written. Each socket found gets a DISCONNECT packet `41/` (the official client reports
//! "io server disconnect" and does not reconnect) and its session record is dropped (it cannot
//! resume); with `"close": true` its whole Engine.IO connection closes after it (every namespace),
//! as socket.io's `disconnectSockets(true)`. Sockets on `/`, the namespace notifications go to.
//! Asking again is harmless: a socket is disconnected once.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::guard::{require_json, Publisher};
use super::{read_api_body, AppState};
use crate::actors::stream_bridge::RequestDisconnect;
use crate::protocol::cluster::DisconnectSockets;
use crate::protocol::target::{Namespace, Room, Target};
use crate::recipients::check_room_name;
use crate::rooms::user_room;
use crate::store::StoreError;
use crate::token::MAX_SUBJECT_BYTES;

/// The request of a body: exactly one of `sid` (a socket's own room) or `user` (the room
/// `user:<sub>`), and `close` (absent, null or false: only the sockets, the connections kept).
pub fn parse(body: &[u8]) -> Result<DisconnectSockets, ApiError> {
    let bad = |why: &str| ApiError::BadRequest(why.to_owned());
    let value: Value = crate::protocol::json::from_slice(body)
        .map_err(|err| ApiError::BadRequest(format!("body is not valid JSON: {err}")))?;
    if !value.is_object() {
        return Err(bad("body must be a JSON object"));
    }
    let text = |field: &str| match &value[field] {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.as_str())),
        _ => Err(ApiError::BadRequest(format!("{field} must be a string"))),
    };
    let room = match (text("sid")?, text("user")?) {
        (Some(sid), None) => {
            check_room_name("sid", sid).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            // One socket's room only: another room would disconnect all of its sockets.
            if !crate::rooms::sid_shaped(sid) {
                return Err(bad(
                    "sid must be a socket id (20 or 22 characters of A-Z a-z 0-9 _ -); to disconnect a user's sockets give user",
                ));
            }
            Room::from(sid)
        }
        (None, Some(sub)) => {
            if sub.is_empty() || sub.len() > MAX_SUBJECT_BYTES {
                return Err(ApiError::BadRequest(format!(
                    "user must be 1 to {MAX_SUBJECT_BYTES} bytes (a token's sub)"
                )));
            }
            let room = Room::from(user_room(sub));
            check_room_name("user", room.as_str())
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            room
        }
        _ => return Err(bad("give exactly one of sid (a socket id) or user (a sub)")),
    };
    let close = match &value["close"] {
        Value::Null => false,
        Value::Bool(close) => *close,
        _ => return Err(bad("close must be a boolean")),
    };
    Ok(DisconnectSockets {
        target: Target {
            rooms: vec![room],
            ..Target::broadcast(Namespace::main())
        },
        close,
    })
}

/// The handler.
pub async fn disconnect(
    _publisher: Publisher,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_json(req.headers(), &state.metrics)?;
    let body = match read_api_body(&req, payload, &state, "disconnect").await? {
        Ok(body) => body,
        Err(answer) => return Ok(answer),
    };
    let request = parse(&body)?;
    let rooms: Vec<&str> = request.target.rooms.iter().map(Room::as_str).collect();
    let answer = json!({ "requested": true, "rooms": rooms, "close": request.close });
    // A bridge that is gone never gets the message; once sent, losing the answer is "unknown".
    let sent = state.bridge.connected();
    match state.bridge.send(RequestDisconnect(request)).await {
        Ok(Ok(())) => Ok(HttpResponse::Accepted().json(answer)),
        Ok(Err(StoreError::OutcomeUnknown(_) | StoreError::NotReplicated(_))) => {
            Err(ApiError::DisconnectOutcomeUnknown)
        }
        Ok(Err(_)) => Err(ApiError::DisconnectNotRequested),
        Err(_) if !sent => Err(ApiError::DisconnectNotRequested),
        Err(_) => Err(ApiError::DisconnectOutcomeUnknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_a_sid_or_a_user_and_close() {
        let by_sid = parse(br#"{"sid":"vc9XSiRG08Y5X8yAAAAA"}"#).unwrap();
        assert_eq!(
            by_sid.target.rooms,
            vec![Room::from("vc9XSiRG08Y5X8yAAAAA")]
        );
        assert!(!by_sid.close && by_sid.target.except.is_empty());
        let by_user = parse(br#"{"user":"alice","close":true,"sid":null}"#).unwrap();
        assert_eq!(by_user.target.rooms, vec![Room::from("user:alice")]);
        assert!(by_user.close);
        let longest = format!(r#"{{"user":"{}"}}"#, "u".repeat(MAX_SUBJECT_BYTES));
        assert!(parse(longest.as_bytes()).is_ok());
    }

    #[test]
    fn parse_refusals_say_what_is_wrong() {
        let long_user = format!(r#"{{"user":"{}"}}"#, "u".repeat(MAX_SUBJECT_BYTES + 1));
        for (body, why) in [
            ("{", "not valid JSON"),
            ("[]", "JSON object"),
            ("{}", "exactly one of sid"),
            (r#"{"sid":"a","user":"b"}"#, "exactly one of sid"),
            (r#"{"sid":5}"#, "sid must be a string"),
            (r#"{"sid":""}"#, "never empty"),
            (r#"{"sid":"a\nb"}"#, "control character"),
            (r#"{"user":""}"#, "user must be 1 to 256 bytes"),
            (long_user.as_str(), "user must be 1 to 256 bytes"),
            (r#"{"user":"a\u0000"}"#, "control character"),
            (
                r#"{"sid":"vc9XSiRG08Y5X8yAAAAA","close":"yes"}"#,
                "close must be a boolean",
            ),
            // A sid names one socket: never a room of many (a caller passing on a value it was
            // given must not disconnect a whole room, or a user, by it).
            (r#"{"sid":"ops"}"#, "sid must be a socket id"),
            (r#"{"sid":"user:bob"}"#, "sid must be a socket id"),
            (
                r#"{"sid":"vc9XSiRG08Y5X8yAAAA"}"#,
                "sid must be a socket id",
            ),
        ] {
            match parse(body.as_bytes()) {
                Err(ApiError::BadRequest(text)) => assert!(text.contains(why), "{body}: {text}"),
                other => panic!("{body}: expected a 400, got {other:?}"),
            }
        }
    }
}
