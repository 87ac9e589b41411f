//! `POST /notifications/notify`: validate, append to the log, answer with the entry id.
//!
//! ```text
//! {"title"?: string, "body"?: string}  ──►  201 {"id": "<uuid>", "offset": "<entry id>"}
//! invalid JSON / wrong types ─► 400      body over the limit ─► 413      log down ─► 503
//! ```
//! A notification exists once it is in the log, never before: every error answer means nothing was
//! published, and a 201 means every connected client will get it (through the read loop).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use super::error::ApiError;
use super::AppState;
use crate::actors::stream_bridge::Publish;
use crate::store::now_ms;

/// The event name clients listen to.
pub const NOTIFICATION_EVENT: &str = "notification";
/// Title of a notification that gives none.
pub const DEFAULT_TITLE: &str = "Notification";
/// Body of a notification that gives none.
pub const DEFAULT_BODY: &str = "Hello";

/// What a publisher may send. Unknown fields are ignored, `null` means absent.
#[derive(Debug, Default, Deserialize)]
pub struct NotifyRequest {
    /// The title; `None` gets the default.
    pub title: Option<String>,
    /// The body; `None` gets the default.
    pub body: Option<String>,
}

/// The notification as every client receives it.
#[derive(Debug, Serialize)]
pub struct Notification {
    /// A uuid v4.
    pub id: String,
    /// The title, or [`DEFAULT_TITLE`].
    pub title: String,
    /// The body, or [`DEFAULT_BODY`].
    pub body: String,
    /// Milliseconds since the Unix epoch when the hub accepted it.
    pub timestamp: u64,
}

/// The handler.
pub async fn notify(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.max_notify_bytes;
    let too_large = ApiError::PayloadTooLarge { limit };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large);
    }
    let body = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| too_large)?
        .map_err(|err| ApiError::BadRequest(format!("could not read the body: {err}")))?;

    let (notification, args) = notification_args(parse(&body)?);
    let publish = Publish {
        nsp: "/".to_owned(),
        args,
    };
    match state.bridge.send(publish).await {
        Ok(Ok(offset)) => Ok(HttpResponse::Created()
            .json(serde_json::json!({ "id": notification.id, "offset": offset.to_string() }))),
        Ok(Err(_)) | Err(_) => Err(ApiError::Unavailable),
    }
}

/// The notification for a request, and its event array as JSON text: serialized once, here; every
/// delivery reuses this text.
pub fn notification_args(request: NotifyRequest) -> (Notification, Arc<str>) {
    let notification = Notification {
        id: uuid::Uuid::new_v4().to_string(),
        title: request.title.unwrap_or_else(|| DEFAULT_TITLE.to_owned()),
        body: request.body.unwrap_or_else(|| DEFAULT_BODY.to_owned()),
        timestamp: now_ms(),
    };
    let args = serde_json::to_string(&(NOTIFICATION_EVENT, &notification))
        .expect("a struct of strings and integers always serializes");
    (notification, Arc::from(args))
}

/// An empty body means "all defaults", as the Node original treats it; anything else must be a JSON
/// object whose `title` and `body`, when present, are strings.
fn parse(body: &[u8]) -> Result<NotifyRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(NotifyRequest::default());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::BadRequest(format!("body is not valid JSON: {err}")))?;
    parse_request(value)
}

/// A request from JSON: an object whose `title` and `body`, when present, are strings.
pub fn parse_request(value: Value) -> Result<NotifyRequest, ApiError> {
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "body must be a JSON object".to_owned(),
        ));
    }
    serde_json::from_value(value)
        .map_err(|err| ApiError::BadRequest(format!("title and body must be strings: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_objects_with_optional_string_fields() {
        let r = parse(br#"{"title":"t","body":"b","extra":1}"#).unwrap();
        assert_eq!(
            (r.title.as_deref(), r.body.as_deref()),
            (Some("t"), Some("b"))
        );
        let r = parse(br#"{"title":null}"#).unwrap();
        assert_eq!((r.title, r.body), (None, None));
        assert!(parse(b"  ").unwrap().title.is_none());
    }

    #[test]
    fn parse_rejects_non_objects_and_wrong_types() {
        for bad in [
            &b"{"[..],
            b"[\"a\",\"b\"]",
            b"\"hi\"",
            b"42",
            br#"{"title":5}"#,
            br#"{"body":{}}"#,
        ] {
            assert!(
                matches!(parse(bad), Err(ApiError::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
