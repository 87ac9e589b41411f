//! The log and its backends: where broadcasts and session records live.
//!
//! Owns: nothing by itself; a [`LogBackend`] is owned by the StreamBridge actor, which is its only user.
//!
//! [`LogBackend`] is the interface both backends implement: the embedded [`MemoryLog`] (one instance,
//! no Redis) and the Redis Streams backend. Its methods take `&mut self` and return a `'static` future:
//! an in-process backend does its work before returning (so calls take effect in call order, without
//! locks), a networked one moves a connection handle into the future.
//!
//! ```text
//! append ──► entry "<ms>-<seq>" ──► (read loop) ──► LogEvent::Entries ──► StreamBridge ──► Hub
//! read_after(offset) ──► the entries after it, or OffsetTrimmed / OffsetAhead (never a partial replay)
//! save/load/drop_session ──► session records with a time to live (the recovery window)
//! append_once(key) ──► the entry, or the first append's id if the key was seen (idempotent publish)
//! ```
//!
//! An append that fails says whether anything may have been written: [`StoreError::Unavailable`]
//! only when nothing was (the command was never sent, or the log answered that it refused it),
//! [`StoreError::OutcomeUnknown`] when the command may have been carried out (sent, then no answer).

mod idempotency;
mod memory;
mod redis;
mod redis_append;

pub use self::idempotency::{
    AppendKey, KeyedAppend, DEFAULT_IDEMPOTENCY_MAX_KEYS, DEFAULT_IDEMPOTENCY_TTL,
};
pub use self::memory::MemoryLog;
pub use self::redis::RedisLog;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use crate::protocol::ids::{Pid, Sid, StreamId};
use crate::protocol::target::Target;

/// One broadcast in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its position in the log; the client's recovery offset once delivered.
    pub id: StreamId,
    /// Who it is for (namespace, rooms, except).
    pub target: Target,
    /// The event as compact JSON array text without the offset: `["notification",{…}]`.
    pub args: Arc<str>,
}

/// What recovery needs to resume a session (reference §3.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The socket id the client keeps on recovery.
    pub sid: Sid,
    /// The private session id.
    pub pid: Pid,
    /// Rooms to rejoin (the socket's own sid room included, as Node stores it).
    pub rooms: Vec<String>,
    /// `socket.data`.
    pub data: serde_json::Value,
}

impl SessionRecord {
    /// A new socket's record: only its own room, no data.
    pub fn new(sid: &Sid, pid: &Pid) -> SessionRecord {
        SessionRecord {
            sid: sid.clone(),
            pid: pid.clone(),
            rooms: vec![sid.to_string()],
            data: serde_json::Value::Null,
        }
    }
}

/// A read of the log after an offset: the entries that can be delivered, and how far the read went.
/// Entries a backend cannot deliver (a Node peer's other message types) are skipped but still
/// read, so a replay pages on from [`LogRead::last`], and knows it reached the log's end only when
/// fewer than the entries it asked for were read (not delivered).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogRead {
    /// The entries to deliver, oldest first.
    pub entries: Vec<LogEntry>,
    /// Entries read, delivered or skipped.
    pub read: usize,
    /// The id of the newest entry read, delivered or skipped; `None` if nothing was read.
    pub last: Option<StreamId>,
}

/// What went wrong in the log backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached (Redis down): the caller answers 503 and delivers nothing.
    /// From an append: nothing was written (never sent, or refused by the log before writing).
    #[error("log backend unavailable: {0}")]
    Unavailable(String),
    /// An append was sent and no answer came (timeout, connection lost mid-command): it may or
    /// may not be in the log. Only a keyed retry ([`LogBackend::append_once`]) is safe.
    #[error("append outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// Entries after this offset were trimmed away: a replay from it would have a hole.
    #[error("offset {0} was trimmed out of the log")]
    OffsetTrimmed(StreamId),
    /// The offset is past the newest entry: the log never issued it.
    #[error("offset {0} is ahead of the log")]
    OffsetAhead(StreamId),
}

/// A backend call in flight.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>>>>;

/// What a backend's read loop reports, in log order.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum LogEvent {
    /// The loop found its start: it hands on every entry after this id, and none before.
    ReadingFrom(StreamId),
    /// New entries.
    Entries(Vec<LogEntry>),
}

/// The log interface of DESIGN.md §4, implemented by the embedded log and by Redis Streams.
pub trait LogBackend {
    /// Appends an event for `target`; resolves to its id once it is durably in the log.
    fn append(&mut self, target: &Target, args: Arc<str>) -> StoreFuture<StreamId>;
    /// Appends an event for `target` unless `key` was appended before (and has not expired): then
    /// appends nothing and answers with the first append's receipt and id, or
    /// [`KeyedAppend::Conflict`] if that append had another fingerprint. Checking and appending is
    /// one atomic step, so concurrent appends with one key publish once.
    fn append_once(
        &mut self,
        target: &Target,
        args: Arc<str>,
        key: &AppendKey,
    ) -> StoreFuture<KeyedAppend>;
    /// Whether an append would be accepted now, without appending (after a failed append, readiness
    /// waits for this or for an append to succeed).
    fn probe_append(&mut self) -> StoreFuture<()>;
    /// Reads up to `count` entries strictly after `after`, oldest first. Fails with `OffsetTrimmed`
    /// if any entry after `after` is gone, and `OffsetAhead` if `after` is newer than the newest
    /// entry: each call checks, so a replay read page by page notices a trim between its pages.
    fn read_after(&mut self, after: StreamId, count: usize) -> StoreFuture<LogRead>;
    /// The id of the newest entry (`0-0` for an empty log).
    fn tip(&mut self) -> StoreFuture<StreamId>;
    /// Starts handing every entry appended from now on to `sink`, in log order, including this
    /// instance's own appends (one delivery path for all). Returns where reading starts when that is
    /// known at once; otherwise the loop reports it with [`LogEvent::ReadingFrom`].
    fn start_reading(&mut self, sink: Recipient<LogEvent>) -> Option<StreamId>;
    /// Writes a session record that expires after `ttl`.
    fn save_session(&mut self, record: SessionRecord, ttl: Duration) -> StoreFuture<()>;
    /// Reads an unexpired session record.
    fn load_session(&mut self, pid: &Pid) -> StoreFuture<Option<SessionRecord>>;
    /// Deletes a session record (a deliberate disconnect is not recoverable).
    fn drop_session(&mut self, pid: &Pid) -> StoreFuture<()>;
    /// Whether the backend is reachable and its read loop running.
    fn is_ready(&self) -> bool;
}

/// Milliseconds since the Unix epoch, for stream ids.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
