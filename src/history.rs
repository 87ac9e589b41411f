//! Notification history: pages of the notifications in the log, as one caller may see them.
//!
//! Owns: nothing; pure rules (cursors, limits, who sees what, what a notification is) and the paging
//! loop over [`ReadRange`]. `GET /notifications` (`http/history.rs`) is its door.
//!
//! ```text
//! ?after=<cursor>&limit=n   ─► oldest first, entries strictly after the cursor
//! ?before=<cursor>&limit=n  ─► newest first, entries strictly before it
//! (no cursor)&limit=n       ─► newest first, from the newest entry
//!   ─► {"items":[{id,title,body,timestamp,offset}…], "next": "<cursor>" | null}
//! limit: 1..=100, default 20; not a number, 0, over 100, after and before together,
//!        a malformed cursor ─► BadRequest (400)
//! a cursor older than the oldest kept entry, of another log (epoch), or ahead of the log ─► Gone (410)
//! ```
//!
//! **Cursors.** `<ms>-<seq>` (an item's `offset`, as the notify answer and the live event carry it)
//! or `<ms>-<seq>.<epoch>` (what `next` gives): the epoch is the log's identity
//! ([`crate::store::Epoch`]), so a cursor kept across a log's replacement answers 410 instead of
//! paging through another log's ids. A bare offset is checked against trimming and the log's newest
//! id only.
//!
//! **What an item is.** An entry of the main namespace `/` that is a `notification` event whose
//! argument is an object with a string `id` (the hub's own entries, and a Node peer's
//! `io.emit("notification", {...})`): `title` and `body` as strings (`""` if absent or not strings),
//! `timestamp` as an integer (the entry id's milliseconds if absent). Volatile emits (never replayed)
//! and events with binary attachments are left out, as are other events and other entry kinds.
//!
//! **Costs.** A page reads at most [`MAX_SCANNED`] entries, in batches of up to [`MAX_BATCH`], each
//! one round trip to the log (one `XRANGE`/`XREVRANGE` script on Redis). A caller who sees few of
//! them (a user among many others' targeted notifications) may get fewer than `limit` items with a
//! `next` cursor that continues the scan where it stopped; `next` is `null` once the scan reached the
//! log's end (its newest entry going forward, its oldest kept entry going backward).

use actix::Addr;
use serde_json::Value;

use crate::actors::stream_bridge::{ReadRange, StreamBridge};
use crate::notification::{Published, NOTIFICATION_EVENT};
use crate::protocol::ids::StreamId;
use crate::protocol::target::{Namespace, Target};
use crate::rooms::RoomPatterns;
use crate::store::{Direction, Epoch, LogEntry, RangeQuery, StoreError};

/// Items per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest `limit` accepted; more is refused (400), not clamped, so a client learns the rule.
pub const MAX_LIMIT: usize = 100;
/// Entries one page reads at most, visible or not.
pub const MAX_SCANNED: usize = 1000;
/// Entries one read of the log asks for at most.
pub const MAX_BATCH: usize = 200;
/// Longest epoch in a cursor (the hub's are 32 hex digits).
const MAX_EPOCH_LEN: usize = 64;

/// Why a history request gets no page; the text is what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// A parameter breaks a rule of the module's table (400).
    #[error("{0}")]
    BadRequest(String),
    /// The cursor's entries are gone or belong to another log (410).
    #[error("{0}")]
    Gone(String),
    /// The log cannot be read now (503).
    #[error("log backend unavailable: retry later")]
    Unavailable,
    /// The log cannot serve history in its configuration (several stream shards; 501).
    #[error("{0}")]
    NotImplemented(String),
}

/// A position in the log: an offset, and the epoch it belongs to when the cursor carries one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The stream id.
    pub offset: StreamId,
    /// The log's epoch when the cursor was made; `None` for a bare offset.
    pub epoch: Option<Epoch>,
}

impl Cursor {
    /// `<ms>-<seq>` or `<ms>-<seq>.<epoch>` (epoch: 1 to 64 ASCII letters, digits, `_` or `-`).
    pub fn parse(text: &str) -> Result<Cursor, HistoryError> {
        let bad = || {
            HistoryError::BadRequest(format!(
                "malformed cursor {text:?}: expected <ms>-<seq> or the \"next\" of a page"
            ))
        };
        let (offset, epoch) = match text.split_once('.') {
            Some((offset, epoch)) => (offset, Some(epoch)),
            None => (text, None),
        };
        let epoch = match epoch {
            None => None,
            Some(e)
                if !e.is_empty()
                    && e.len() <= MAX_EPOCH_LEN
                    && e.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                Some(Epoch::from(e))
            }
            Some(_) => return Err(bad()),
        };
        let offset = offset.parse::<StreamId>().map_err(|_| bad())?;
        Ok(Cursor { offset, epoch })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.epoch {
            Some(epoch) if !epoch.as_str().is_empty() => write!(f, "{}.{epoch}", self.offset),
            _ => write!(f, "{}", self.offset),
        }
    }
}

/// One page asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Oldest first (`after`) or newest first (`before`, or no cursor).
    pub direction: Direction,
    /// Where the page starts (exclusive); `None`: the newest entry.
    pub cursor: Option<Cursor>,
    /// Items at most.
    pub limit: usize,
}

impl PageRequest {
    /// The request of a query string's decoded pairs: `after`, `before`, `limit` (each at most
    /// once); other parameters are ignored.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<PageRequest, HistoryError> {
        let one = |name: &str| -> Result<Option<&str>, HistoryError> {
            let mut values = pairs.iter().filter(|(key, _)| key == name);
            let first = values.next().map(|(_, value)| value.as_str());
            if values.next().is_some() {
                return Err(HistoryError::BadRequest(format!("{name} given twice")));
            }
            Ok(first)
        };
        let limit = match one("limit")? {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
                _ => {
                    return Err(HistoryError::BadRequest(format!(
                        "limit must be an integer from 1 to {MAX_LIMIT}, got {text:?}"
                    )))
                }
            },
        };
        let (direction, cursor) = match (one("after")?, one("before")?) {
            (Some(_), Some(_)) => {
                return Err(HistoryError::BadRequest(
                    "give after or before, not both".into(),
                ))
            }
            (Some(after), None) => (Direction::Forward, Some(Cursor::parse(after)?)),
            (None, Some(before)) => (Direction::Backward, Some(Cursor::parse(before)?)),
            (None, None) => (Direction::Backward, None),
        };
        Ok(PageRequest {
            direction,
            cursor,
            limit,
        })
    }
}

/// Who is reading, and so which entries they see.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// Every notification: the API key, or open mode (no API keys, no JWT configured).
    Everyone,
    /// A user with a connect token: broadcasts, and entries for rooms a socket of theirs may be in.
    User {
        /// `user:<sub>`: every entry to it, none that excepts it.
        room: String,
        /// The rooms a socket of theirs may join: the token's `rooms` claim and `HUB_PUBLIC_ROOMS`.
        may_join: Vec<RoomPatterns>,
    },
}

impl Viewer {
    /// Whether this viewer sees an entry for `target` (of `/`): everyone sees everything; a user
    /// sees a broadcast (no rooms) and an entry to their `user:<sub>` room or to a room they may
    /// join (a room name a client may join at all: never another user's room or a socket's), unless
    /// its `except` names `user:<sub>`. Other rooms in `except` are not applied: whether the user
    /// was in them when it was sent is not known.
    pub fn sees(&self, target: &Target) -> bool {
        match self {
            Viewer::Everyone => true,
            Viewer::User { room, may_join } => {
                let theirs = |name: &str| {
                    name == room
                        || (crate::rooms::check_name(name).is_ok()
                            && may_join.iter().any(|patterns| patterns.matches(name)))
                };
                (target.rooms.is_empty() || target.rooms.iter().any(|r| theirs(r.as_str())))
                    && !target.except.iter().any(|r| r.as_str() == room)
            }
        }
    }
}

/// The item an entry is, if it is a notification (see the module's doc): the notify answer's five
/// fields, `{id, title, body, timestamp, offset}`.
pub fn item(entry: &LogEntry) -> Option<Value> {
    if entry.volatile || !entry.attachments.is_empty() || entry.target.nsp != Namespace::main() {
        return None;
    }
    let Ok(Value::Array(args)) = serde_json::from_str::<Value>(&entry.args) else {
        return None;
    };
    let [Value::String(name), Value::Object(fields), ..] = args.as_slice() else {
        return None;
    };
    if name != NOTIFICATION_EVENT {
        return None;
    }
    let text = |key: &str| fields.get(key).and_then(Value::as_str).unwrap_or("");
    let published = Published {
        id: fields.get("id")?.as_str()?.to_owned(),
        title: text("title").to_owned(),
        body: text("body").to_owned(),
        timestamp: fields
            .get("timestamp")
            .and_then(Value::as_u64)
            .unwrap_or(entry.id.ms),
        offset: entry.id,
        replayed: false,
    };
    Some(published.answer())
}

/// A page: `{"items": […], "next": …}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The items, in the request's order.
    pub items: Vec<Value>,
    /// Where the next page starts, `None` when the scan reached the log's end.
    pub next: Option<Cursor>,
}

impl Page {
    /// The answer's JSON.
    pub fn answer(&self) -> Value {
        serde_json::json!({
            "items": self.items,
            "next": self.next.as_ref().map(Cursor::to_string),
        })
    }
}

/// What a failed read means to the client.
fn gone_or_unavailable(err: StoreError) -> HistoryError {
    match err {
        StoreError::OffsetTrimmed(offset) => HistoryError::Gone(format!(
            "cursor {offset} is older than the oldest notification kept: start again without a cursor"
        )),
        StoreError::OffsetAhead(offset) => HistoryError::Gone(format!(
            "cursor {offset} is not from this log (it is ahead of its newest entry): start again \
             without a cursor"
        )),
        StoreError::EpochChanged { .. } => HistoryError::Gone(
            "the cursor belongs to another log (it was replaced since): start again without a cursor"
                .into(),
        ),
        StoreError::Unsupported(why) => HistoryError::NotImplemented(why.to_owned()),
        _ => HistoryError::Unavailable,
    }
}

/// Reads the page `request` asks for, as `viewer` sees it, through the log's owner.
pub async fn page(
    bridge: &Addr<StreamBridge>,
    request: &PageRequest,
    viewer: &Viewer,
) -> Result<Page, HistoryError> {
    let mut from = request.cursor.as_ref().map(|cursor| cursor.offset);
    let mut epoch = request.cursor.as_ref().and_then(|c| c.epoch.clone());
    let mut items = Vec::new();
    let mut scanned = 0;
    loop {
        // Twice what is missing (callers rarely see everything), within the bounds.
        let count = ((request.limit - items.len()) * 2)
            .clamp(10, MAX_BATCH)
            .min(MAX_SCANNED - scanned);
        let query = RangeQuery {
            direction: request.direction,
            from,
            count,
            epoch: epoch.clone(),
        };
        let range = bridge
            .send(ReadRange(query))
            .await
            .map_err(|_| HistoryError::Unavailable)?
            .map_err(gone_or_unavailable)?;
        // Later batches are checked against the log the first one read: a log replaced in between
        // answers 410 rather than a page spliced from two logs.
        let log_epoch = range.epoch.clone();
        epoch = Some(log_epoch.clone());
        let cursor = |offset: StreamId| Cursor {
            offset,
            epoch: Some(log_epoch.clone()),
        };
        scanned += range.read;
        let at_end = range.read < count;
        for entry in &range.entries {
            if !viewer.sees(&entry.target) {
                continue;
            }
            let Some(item) = item(entry) else { continue };
            items.push(item);
            if items.len() == request.limit {
                let last_read = at_end && range.last == Some(entry.id);
                let next = (!last_read).then(|| cursor(entry.id));
                return Ok(Page { items, next });
            }
        }
        match range.last {
            Some(last) if !at_end => {
                if scanned >= MAX_SCANNED {
                    return Ok(Page {
                        items,
                        next: Some(cursor(last)),
                    });
                }
                from = Some(last);
            }
            _ => return Ok(Page { items, next: None }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::target::Room;
    use std::sync::Arc;

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn page_request_reads_the_cursor_direction_and_limit() {
        let request = PageRequest::from_pairs(&pairs(&[])).unwrap();
        assert_eq!(
            (request.direction, request.cursor, request.limit),
            (Direction::Backward, None, DEFAULT_LIMIT)
        );
        let request = PageRequest::from_pairs(&pairs(&[("after", "5-1"), ("limit", "100")]));
        let request = request.unwrap();
        assert_eq!(request.direction, Direction::Forward);
        assert_eq!(request.cursor.unwrap().offset, StreamId::new(5, 1));
        assert_eq!(request.limit, 100);
        let request = PageRequest::from_pairs(&pairs(&[("before", "7-0.ab12")])).unwrap();
        assert_eq!(request.direction, Direction::Backward);
        assert_eq!(
            request.cursor,
            Some(Cursor {
                offset: StreamId::new(7, 0),
                epoch: Some(Epoch::from("ab12"))
            })
        );
    }

    #[test]
    fn page_request_refuses_bad_limits_cursors_and_both_directions() {
        for bad in [
            &[("limit", "0")][..],
            &[("limit", "101")],
            &[("limit", "ten")],
            &[("limit", "-1")],
            &[("limit", "1"), ("limit", "2")],
            &[("after", "1-0"), ("before", "2-0")],
            &[("after", "x")],
            &[("after", "1-0.")],
            &[("after", "1-0.a b")],
            &[("before", "")],
        ] {
            assert!(
                matches!(
                    PageRequest::from_pairs(&pairs(bad)),
                    Err(HistoryError::BadRequest(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cursor_text_round_trips() {
        for text in ["1-0", "1700000000000-3.0123abcd"] {
            assert_eq!(Cursor::parse(text).unwrap().to_string(), text);
        }
    }

    fn target(rooms: &[&str], except: &[&str]) -> Target {
        Target {
            nsp: Namespace::main(),
            rooms: rooms.iter().map(|r| Room::from(*r)).collect(),
            except: except.iter().map(|r| Room::from(*r)).collect(),
        }
    }

    #[test]
    fn a_user_sees_broadcasts_their_rooms_and_nothing_addressed_to_others() {
        let alice = Viewer::User {
            room: "user:alice".into(),
            may_join: vec![RoomPatterns::new(&["team-*", "user:*"]).unwrap()],
        };
        assert!(alice.sees(&target(&[], &[])));
        assert!(alice.sees(&target(&["user:alice"], &[])));
        assert!(alice.sees(&target(&["user:bob", "team-a"], &[])));
        assert!(
            !alice.sees(&target(&["user:bob"], &[])),
            "a pattern never opens another user's room"
        );
        assert!(!alice.sees(&target(&["ops"], &[])));
        assert!(!alice.sees(&target(&[], &["user:alice"])));
        assert!(!alice.sees(&target(&["team-a"], &["user:alice"])));
        assert!(alice.sees(&target(&[], &["team-a"])));
        assert!(Viewer::Everyone.sees(&target(&["user:bob"], &["user:alice"])));
    }

    fn entry(args: &str) -> LogEntry {
        LogEntry::event(
            StreamId::new(9, 2),
            Target::broadcast(Namespace::main()),
            Arc::from(args),
        )
    }

    #[test]
    fn item_has_the_five_fields_of_the_notify_answer() {
        let full = entry(r#"["notification",{"id":"i","title":"t","body":"b","timestamp":7}]"#);
        assert_eq!(
            item(&full),
            Some(serde_json::json!({"id":"i","title":"t","body":"b","timestamp":7,"offset":"9-2"}))
        );
        let sparse = entry(r#"["notification",{"id":"i","title":5}]"#);
        assert_eq!(
            item(&sparse),
            Some(serde_json::json!({"id":"i","title":"","body":"","timestamp":9,"offset":"9-2"}))
        );
    }

    #[test]
    fn item_leaves_out_what_is_not_a_notification() {
        for args in [
            r#"["chat",{"id":"i"}]"#,
            r#"["notification","text"]"#,
            r#"["notification",{"title":"no id"}]"#,
            r#"["notification"]"#,
            "not json",
        ] {
            assert_eq!(item(&entry(args)), None, "{args}");
        }
        let mut volatile = entry(r#"["notification",{"id":"i"}]"#);
        volatile.volatile = true;
        assert_eq!(item(&volatile), None);
        let mut other_nsp = entry(r#"["notification",{"id":"i"}]"#);
        other_nsp.target.nsp = Namespace::from("/admin");
        assert_eq!(item(&other_nsp), None);
    }
}
