//! The notification domain: what a notification is, what a publisher may ask for, and the one way a
//! notification is published. `POST /notifications/notify` and the socket `notify` event are two thin
//! doors onto [`publish`]; each maps [`PublishError`] to its own answer (a status; an ack `{"error"}`).
//!
//! ```text
//! {"title"?: string, "body"?: string} ─► NotifyRequest ─► publish ─► Published {id, offset}
//!                                        ValidationError              PublishError::Unavailable
//! ```
//! A notification exists once it is in the log, never before: an error means nothing was published,
//! and `Published` means every connected client will get it (through the read loop, DESIGN.md §2).

use std::future::Future;
use std::sync::Arc;

use actix::Addr;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actors::stream_bridge::{Publish, StreamBridge};
use crate::protocol::ids::StreamId;
use crate::protocol::target::{Namespace, Target};
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

/// Why a request is not a notification; the text is what the publisher is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The body does not parse as JSON.
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("body must be a JSON object")]
    NotAnObject,
    /// `title` or `body` present and not a string (nor null).
    #[error("title and body must be strings: {0}")]
    WrongTypes(String),
}

impl NotifyRequest {
    /// A request from an HTTP body: empty (or blank) means "all defaults", as the Node original
    /// treats it; anything else must be a JSON object (see [`NotifyRequest::from_value`]). A string
    /// with a lone surrogate escape (`"\ud83d"`) is accepted, the surrogate read as U+FFFD
    /// ([`crate::protocol::json`]).
    pub fn from_body(body: &[u8]) -> Result<NotifyRequest, ValidationError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(NotifyRequest::default());
        }
        // Lone surrogate escapes (text cut inside an emoji) become U+FFFD, as on the socket.
        let value = crate::protocol::json::from_slice(body)
            .map_err(|err| ValidationError::NotJson(err.to_string()))?;
        NotifyRequest::from_value(value)
    }

    /// A request from JSON: an object whose `title` and `body`, when present, are strings.
    pub fn from_value(value: Value) -> Result<NotifyRequest, ValidationError> {
        if !value.is_object() {
            return Err(ValidationError::NotAnObject);
        }
        serde_json::from_value(value).map_err(|err| ValidationError::WrongTypes(err.to_string()))
    }
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

impl Notification {
    /// The notification for a request, and its event array as JSON text (`["notification",{…}]`):
    /// serialized once, here; every delivery reuses this text.
    pub fn new(request: NotifyRequest) -> (Notification, Arc<str>) {
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
}

/// A notification in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The notification's id (uuid v4).
    pub id: String,
    /// Its log id: the clients' recovery offset once they have it.
    pub offset: StreamId,
}

/// Why a notification was not published. Nothing was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The log cannot accept it now (Redis down): retry later.
    #[error("log backend unavailable, nothing was published")]
    Unavailable,
}

/// Appends `request` as a notification to everyone on `/`. The append is sent now (so two publishes
/// from one caller keep their order); the future resolves once the log answered.
pub fn publish(
    bridge: &Addr<StreamBridge>,
    request: NotifyRequest,
) -> impl Future<Output = Result<Published, PublishError>> {
    let (notification, args) = Notification::new(request);
    let append = bridge.send(Publish {
        target: Target::broadcast(Namespace::main()),
        args,
    });
    async move {
        match append.await {
            Ok(Ok(offset)) => Ok(Published {
                id: notification.id,
                offset,
            }),
            Ok(Err(_)) | Err(_) => Err(PublishError::Unavailable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_objects_with_optional_string_fields() {
        let r = NotifyRequest::from_body(br#"{"title":"t","body":"b","extra":1}"#).unwrap();
        assert_eq!(
            (r.title.as_deref(), r.body.as_deref()),
            (Some("t"), Some("b"))
        );
        let r = NotifyRequest::from_body(br#"{"title":null}"#).unwrap();
        assert_eq!((r.title, r.body), (None, None));
        assert!(NotifyRequest::from_body(b"  ").unwrap().title.is_none());
    }

    #[test]
    fn parse_reads_lone_surrogates_as_the_replacement_character() {
        let r = NotifyRequest::from_body(br#"{"title":"cut \ud83d","body":"\ude00x"}"#).unwrap();
        assert_eq!(
            (r.title.as_deref(), r.body.as_deref()),
            (Some("cut \u{fffd}"), Some("\u{fffd}x"))
        );
        let r = NotifyRequest::from_body(br#"{"\ud83d":1,"title":"\ud83d\ude00"}"#).unwrap();
        assert_eq!(r.title.as_deref(), Some("😀"));
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
                NotifyRequest::from_body(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            NotifyRequest::from_body(b"{"),
            Err(ValidationError::NotJson(_))
        ));
        assert_eq!(
            NotifyRequest::from_body(b"42").unwrap_err(),
            ValidationError::NotAnObject
        );
        assert!(matches!(
            NotifyRequest::from_body(br#"{"title":5}"#),
            Err(ValidationError::WrongTypes(_))
        ));
    }

    #[test]
    fn notification_defaults_and_serializes_once_as_the_event_array() {
        let (notification, args) = Notification::new(NotifyRequest::default());
        assert_eq!(
            (notification.title.as_str(), notification.body.as_str()),
            (DEFAULT_TITLE, DEFAULT_BODY)
        );
        let value: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(value[0], "notification");
        assert_eq!(value[1]["id"], notification.id.as_str());
        assert_eq!(value[1]["title"], "Notification");
        assert_eq!(value[1]["timestamp"], notification.timestamp);
    }
}
