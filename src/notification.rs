//! The notification domain: what a notification is, what a publisher may ask for, and the one way a
//! notification is published. `POST /notifications/notify` and the socket `notify` event are two thin
//! doors onto [`publish`]; each maps [`PublishError`] to its own answer (a status; an ack `{"error"}`).
//!
//! ```text
//! {"title"?, "body"?, "to"?, "except"?} ─► NotifyRequest ─► publish(key?) ─► Published {id, title, body,
//!                                          ValidationError                   timestamp, offset, replayed}
//!                                                                            PublishError::{Unavailable,
//!                                                                              OutcomeUnknown, KeyReused}
//! ```
//! `to` / `except` address rooms ([`crate::recipients`]); without `to` a notification goes to everyone.
//! Both doors answer [`Published::answer`]: `{id, title, body, timestamp, offset}`, the Node original's
//! `{id, title, body, timestamp}` plus the recovery offset.
//! A notification exists once it is in the log, never before: `Published` means every connected
//! client will get it (through the read loop, DESIGN.md §2). An error says which of two things
//! happened: [`PublishError::Unavailable`], nothing was published (the append was never sent, or the
//! log refused it); [`PublishError::OutcomeUnknown`], the append was sent and not confirmed, so it
//! may be published. A publisher that sends an [`IdempotencyKey`] can retry either safely: an
//! append whose key was already appended publishes nothing and answers with the first answer
//! (its id, timestamp and offset).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix::{Addr, MailboxError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actors::stream_bridge::{Publish, PublishOnce, StreamBridge};
use crate::protocol::ids::StreamId;
use crate::protocol::target::{Namespace, Room, Target};
use crate::recipients::{rooms_of, RecipientsError};
use crate::store::{now_ms, AppendKey, KeyedAppend, StoreError};

/// The event name clients listen to.
pub const NOTIFICATION_EVENT: &str = "notification";
/// The field of the socket `notify` payload that carries an idempotency key (the HTTP door's is
/// the `Idempotency-Key` header). It is not part of the notification.
pub const IDEMPOTENCY_KEY_FIELD: &str = "idempotencyKey";
/// Longest idempotency key, in characters (Stripe's limit).
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
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
    /// `to`: only the sockets in one of these rooms; empty: every socket (see [`crate::recipients`]).
    #[serde(skip)]
    pub to: Vec<Room>,
    /// `except`: never the sockets in one of these rooms.
    #[serde(skip)]
    pub except: Vec<Room>,
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
    /// The idempotency key is not 1 to 255 visible ASCII characters; the text says which rule.
    #[error("invalid idempotency key: {0}")]
    BadIdempotencyKey(String),
    /// `to` or `except` breaks a rule of [`crate::recipients`]; the text names the field and rule.
    #[error("{0}")]
    BadRecipients(#[from] RecipientsError),
}

/// A publisher's idempotency key: 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] visible ASCII characters
/// (`!` to `~`, no spaces), e.g. a uuid. A key in double quotes (the IETF draft's structured-field
/// string, `Idempotency-Key: "…"`) means the same key without them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates `raw`; the error names the rule it breaks.
    pub fn parse(raw: &str) -> Result<IdempotencyKey, ValidationError> {
        let key = raw
            .strip_prefix('"')
            .and_then(|k| k.strip_suffix('"'))
            .unwrap_or(raw);
        let bad = |why: String| Err(ValidationError::BadIdempotencyKey(why));
        if key.is_empty() {
            return bad("it is empty (1 to 255 visible ASCII characters)".into());
        }
        if let Some((at, c)) = key.char_indices().find(|(_, c)| !matches!(c, '!'..='~')) {
            return bad(format!(
                "character {c:?} at byte {at} (only visible ASCII, '!' to '~', no spaces)"
            ));
        }
        if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return bad(format!(
                "{} characters long (at most {MAX_IDEMPOTENCY_KEY_LEN})",
                key.len()
            ));
        }
        Ok(IdempotencyKey(key.to_owned()))
    }

    /// The key from a socket `notify` payload's [`IDEMPOTENCY_KEY_FIELD`]: absent or `null` is no
    /// key, a string is validated, anything else is refused.
    pub fn from_payload(payload: &Value) -> Result<Option<IdempotencyKey>, ValidationError> {
        match payload.get(IDEMPOTENCY_KEY_FIELD) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(raw)) => IdempotencyKey::parse(raw).map(Some),
            Some(_) => Err(ValidationError::BadIdempotencyKey(format!(
                "{IDEMPOTENCY_KEY_FIELD} must be a string"
            ))),
        }
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
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

    /// A request from JSON: an object whose `title` and `body`, when present, are strings, and
    /// whose `to` and `except`, when present, follow [`crate::recipients::rooms_of`].
    pub fn from_value(value: Value) -> Result<NotifyRequest, ValidationError> {
        if !value.is_object() {
            return Err(ValidationError::NotAnObject);
        }
        let to = rooms_of(&value, "to")?;
        let except = rooms_of(&value, "except")?;
        let request: NotifyRequest = serde_json::from_value(value)
            .map_err(|err| ValidationError::WrongTypes(err.to_string()))?;
        Ok(NotifyRequest {
            to,
            except,
            ..request
        })
    }

    /// Who it is for: the sockets of `/` in `to` (all of them without `to`), minus `except`.
    pub fn target(&self) -> Target {
        Target {
            nsp: Namespace::main(),
            rooms: self.to.clone(),
            except: self.except.clone(),
        }
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

    /// What identifies the request this notification came from, for idempotency: SHA-1 (hex) of
    /// its title and body after defaults, and of its target when it has one (the id and timestamp
    /// differ between attempts). A target's rooms count as a set: `to: ["a","b"]` and `["b","a"]`
    /// are one request. A broadcast's fingerprint is what it was before targets existed, so keys
    /// stored by an older hub keep answering.
    pub fn fingerprint(&self, target: &Target) -> String {
        use sha1::{Digest, Sha1};
        fn set(rooms: &[Room]) -> Vec<&str> {
            let mut names: Vec<&str> = rooms.iter().map(Room::as_str).collect();
            names.sort_unstable();
            names.dedup();
            names
        }
        let content = if target.is_broadcast() {
            serde_json::to_string(&(&self.title, &self.body))
        } else {
            serde_json::to_string(&(
                &self.title,
                &self.body,
                set(&target.rooms),
                set(&target.except),
            ))
        }
        .expect("strings always serialize");
        Sha1::digest(content.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A notification in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The notification's id (uuid v4).
    pub id: String,
    /// Its title, as delivered.
    pub title: String,
    /// Its body, as delivered.
    pub body: String,
    /// Its timestamp, as delivered (ms since the Unix epoch).
    pub timestamp: u64,
    /// Its log id: the clients' recovery offset once they have it.
    pub offset: StreamId,
    /// Whether this answers a retry: the key was appended before, nothing was appended now; the
    /// id, timestamp and offset are the first publish's.
    pub replayed: bool,
}

impl Published {
    /// What both doors answer: `{"id","title","body","timestamp","offset"}`, the notification as
    /// clients received it (the Node original's answer) plus its recovery offset.
    pub fn answer(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "timestamp": self.timestamp,
            "offset": self.offset.to_string(),
        })
    }
}

/// The receipt kept with an idempotency key: `<id>/<timestamp>`, so a retry answers the first
/// publish's id and timestamp (no spaces: the Redis record is space-separated).
fn receipt(notification: &Notification) -> String {
    format!("{}/{}", notification.id, notification.timestamp)
}

/// The id and timestamp of a kept receipt. A receipt of an older hub is the id alone: its timestamp
/// is then the entry id's milliseconds (when the log accepted it, within a round trip of the
/// original timestamp).
fn from_receipt(receipt: &str, offset: StreamId) -> (String, u64) {
    match receipt
        .rsplit_once('/')
        .and_then(|(id, ms)| Some((id, ms.parse::<u64>().ok()?)))
    {
        Some((id, timestamp)) => (id.to_owned(), timestamp),
        None => (receipt.to_owned(), offset.ms),
    }
}

/// Which door a notification came through: the `source` label of
/// `hub_notifications_published_total` (the third, `peer`, is counted by the read loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `POST /notifications/notify`.
    Http,
    /// A socket's `notify` event.
    Socket,
    /// The admin UI's own broadcasts on `/admin` (`server_stats`, development mode's events) and
    /// its `emit`: not notifications, so neither counted as published nor as failed.
    Admin,
}

/// Why a publish was not confirmed; each variant says whether anything was published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Nothing was published: the append was never sent, or the log refused it (Redis down,
    /// restarting, out of memory). Retrying later publishes it once.
    #[error("log backend unavailable, nothing was published")]
    Unavailable,
    /// The append was sent but not confirmed (Redis did not answer in time, or the connection
    /// was lost mid-command): it may have been published.
    #[error(
        "log backend did not confirm the append, outcome unknown: the notification may have been \
         published; retrying with the same idempotency key is safe (it publishes at most once)"
    )]
    OutcomeUnknown,
    /// The idempotency key was already used for a notification with another title, body or
    /// target; nothing was published.
    #[error(
        "idempotency key already used with a different title or body or another target \
         (to/except), nothing was published"
    )]
    KeyReused,
}

impl From<StoreError> for PublishError {
    /// Only an append the log never received (or refused) is "nothing was published".
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::OutcomeUnknown(_) | StoreError::NotReplicated(_) => {
                PublishError::OutcomeUnknown
            }
            _ => PublishError::Unavailable,
        }
    }
}

/// Appends `request` as a notification to its target on `/` (everyone without `to`); with a `key`,
/// at most once per key (see [`IdempotencyKey`]). The append is sent now (so two publishes from one
/// caller keep their order); the future resolves once the log answered.
pub fn publish(
    bridge: &Addr<StreamBridge>,
    request: NotifyRequest,
    key: Option<IdempotencyKey>,
    source: Source,
) -> impl Future<Output = Result<Published, PublishError>> {
    let target = request.target();
    let (notification, args) = Notification::new(request);
    // A bridge that is gone never gets the message: nothing was sent. Once it is sent, a
    // mailbox error (the bridge stopped with the append in flight) leaves the outcome unknown.
    let sent = bridge.connected();
    let append: Pin<Box<dyn Future<Output = Result<_, MailboxError>>>> = match key {
        // No key: today's fast path, a plain XADD.
        None => {
            let append = bridge.send(Publish {
                target,
                args,
                source,
            });
            Box::pin(async move { append.await.map(|r| r.map(KeyedAppend::Appended)) })
        }
        Some(key) => {
            let key = AppendKey {
                key: key.0,
                fingerprint: notification.fingerprint(&target),
                receipt: receipt(&notification),
            };
            Box::pin(bridge.send(PublishOnce {
                target,
                args,
                key,
                source,
            }))
        }
    };
    async move {
        let Notification {
            id,
            title,
            body,
            timestamp,
        } = notification;
        match append.await {
            Ok(Ok(KeyedAppend::Appended(offset))) => Ok(Published {
                id,
                title,
                body,
                timestamp,
                offset,
                replayed: false,
            }),
            // Same key, same fingerprint: the same title and body, the first publish's id and time.
            Ok(Ok(KeyedAppend::Replayed {
                receipt,
                id: offset,
            })) => {
                let (id, timestamp) = from_receipt(&receipt, offset);
                Ok(Published {
                    id,
                    title,
                    body,
                    timestamp,
                    offset,
                    replayed: true,
                })
            }
            Ok(Ok(KeyedAppend::Conflict)) => Err(PublishError::KeyReused),
            Ok(Err(err)) => Err(err.into()),
            Err(_) if !sent => Err(PublishError::Unavailable),
            Err(_) => Err(PublishError::OutcomeUnknown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn idempotency_key_accepts_visible_ascii_up_to_255_and_the_quoted_form() {
        let uuid = "8e03978e-40d5-43e8-bc93-6894a57f9324";
        assert_eq!(IdempotencyKey::parse(uuid).unwrap().as_str(), uuid);
        assert_eq!(
            IdempotencyKey::parse(&format!("\"{uuid}\""))
                .unwrap()
                .as_str(),
            uuid
        );
        assert!(IdempotencyKey::parse(&"~".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("!").is_ok());
    }

    #[test]
    fn idempotency_key_refusals_name_the_rule() {
        for (raw, why) in [
            ("", "empty"),
            ("\"\"", "empty"),
            ("a b", "' '"),
            ("tab\there", "'\\t'"),
            ("caf\u{e9}", "'\u{e9}'"),
            (&"k".repeat(256), "256 characters long (at most 255)"),
        ] {
            match IdempotencyKey::parse(raw) {
                Err(ValidationError::BadIdempotencyKey(text)) => {
                    assert!(text.contains(why), "{raw:?}: {text}")
                }
                other => panic!("{raw:?}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[test]
    fn idempotency_key_from_a_payload_is_optional_and_must_be_a_string() {
        assert_eq!(
            IdempotencyKey::from_payload(&json!({"title": "t"})),
            Ok(None)
        );
        assert_eq!(
            IdempotencyKey::from_payload(&json!({"idempotencyKey": null})),
            Ok(None)
        );
        assert_eq!(
            IdempotencyKey::from_payload(&json!({"idempotencyKey": "k1"})),
            Ok(Some(IdempotencyKey("k1".into())))
        );
        for bad in [json!({"idempotencyKey": 5}), json!({"idempotencyKey": ""})] {
            assert!(matches!(
                IdempotencyKey::from_payload(&bad),
                Err(ValidationError::BadIdempotencyKey(_))
            ));
        }
    }

    #[test]
    fn fingerprint_depends_on_title_and_body_after_defaults_only() {
        let of = |title: Option<&str>, body: Option<&str>| {
            Notification::new(NotifyRequest {
                title: title.map(str::to_owned),
                body: body.map(str::to_owned),
                ..NotifyRequest::default()
            })
            .0
            .fingerprint(&Target::broadcast(Namespace::main()))
        };
        let first = of(Some("t"), Some("b"));
        assert_eq!(first.len(), 40);
        assert_eq!(
            first,
            of(Some("t"), Some("b")),
            "new id and timestamp, same request"
        );
        assert_eq!(of(None, None), of(Some(DEFAULT_TITLE), Some(DEFAULT_BODY)));
        assert_ne!(first, of(Some("t"), Some("c")));
        assert_ne!(of(Some("ab"), Some("")), of(Some("a"), Some("b")));
    }

    #[test]
    fn fingerprint_covers_the_target_as_sets_and_keeps_a_broadcasts_as_before() {
        let of = |request: Value| {
            let request = NotifyRequest::from_value(request).unwrap();
            let target = request.target();
            Notification::new(request).0.fingerprint(&target)
        };
        let plain = of(json!({"title": "t", "body": "b"}));
        // What an older hub stored for this request: SHA-1 of `["t","b"]`.
        assert_eq!(plain, "d7bc54acf354a9f0fc9ff079a548616f4311f715");
        assert_eq!(
            plain,
            of(json!({"title": "t", "body": "b", "to": null, "except": []}))
        );
        let to_ab = of(json!({"title": "t", "body": "b", "to": ["a", "b"]}));
        assert_ne!(to_ab, plain, "a target is another request");
        assert_eq!(
            to_ab,
            of(json!({"title": "t", "body": "b", "to": ["b", "a", "b"]}))
        );
        assert_ne!(to_ab, of(json!({"title": "t", "body": "b", "to": "a"})));
        assert_ne!(
            of(json!({"title": "t", "body": "b", "to": "a"})),
            of(json!({"title": "t", "body": "b", "except": "a"})),
            "to and except are told apart"
        );
    }

    #[test]
    fn notify_request_reads_to_and_except_and_refuses_bad_ones() {
        let r = NotifyRequest::from_body(br#"{"to":"user:alice","except":["muted"]}"#).unwrap();
        let target = r.target();
        assert_eq!(target.rooms, vec![Room::from("user:alice")]);
        assert_eq!(target.except, vec![Room::from("muted")]);
        assert!(NotifyRequest::from_body(b"{}")
            .unwrap()
            .target()
            .is_broadcast());
        for bad in [&br#"{"to":[]}"#[..], br#"{"to":""}"#, br#"{"except":5}"#] {
            assert!(matches!(
                NotifyRequest::from_body(bad),
                Err(ValidationError::BadRecipients(_))
            ));
        }
    }

    #[test]
    fn a_receipt_keeps_the_first_id_and_timestamp_and_an_old_one_falls_back_to_the_offset() {
        let (notification, _) = Notification::new(NotifyRequest::default());
        let kept = receipt(&notification);
        assert!(!kept.contains(' '), "the Redis record is space-separated");
        let offset = StreamId::new(1_700_000_000_123, 0);
        assert_eq!(
            from_receipt(&kept, offset),
            (notification.id.clone(), notification.timestamp)
        );
        assert_eq!(
            from_receipt(&notification.id, offset),
            (notification.id.clone(), 1_700_000_000_123)
        );
    }

    #[test]
    fn published_answer_has_the_five_fields() {
        let published = Published {
            id: "i".into(),
            title: "t".into(),
            body: "b".into(),
            timestamp: 7,
            offset: StreamId::new(5, 1),
            replayed: true,
        };
        assert_eq!(
            published.answer(),
            json!({"id": "i", "title": "t", "body": "b", "timestamp": 7, "offset": "5-1"})
        );
    }

    #[actix::test]
    async fn publish_to_a_bridge_that_is_gone_is_nothing_published() {
        use crate::actors::hub::Hub;
        use crate::metrics::Metrics;
        use crate::store::MemoryLog;
        use actix::Actor;

        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(1 << 20, metrics.clone()).start();
        let arbiter = actix::Arbiter::new();
        let bridge = StreamBridge::start_in_arbiter(&arbiter.handle(), move |_| {
            StreamBridge::new(Box::new(MemoryLog::new(10, usize::MAX)), hub, metrics)
        });
        assert!(arbiter.stop());
        arbiter.join().expect("the bridge's arbiter stops");
        for key in [None, Some(IdempotencyKey("k".into()))] {
            let answer = publish(&bridge, NotifyRequest::default(), key, Source::Http).await;
            assert_eq!(answer, Err(PublishError::Unavailable));
        }
    }

    #[test]
    fn publish_errors_say_whether_anything_was_published() {
        assert!(PublishError::Unavailable
            .to_string()
            .contains("nothing was published"));
        let unknown = PublishError::OutcomeUnknown.to_string();
        assert!(unknown.contains("outcome unknown") && unknown.contains("same idempotency key"));
        assert!(!unknown.contains("nothing was published"));
        assert_eq!(
            PublishError::from(StoreError::OutcomeUnknown("timeout".into())),
            PublishError::OutcomeUnknown
        );
        // Written, too few replicas confirmed it: a failover could take it back, never "nothing".
        assert_eq!(
            PublishError::from(StoreError::NotReplicated("0 of 1".into())),
            PublishError::OutcomeUnknown
        );
        assert_eq!(
            PublishError::from(StoreError::Unavailable("refused".into())),
            PublishError::Unavailable
        );
    }
}
