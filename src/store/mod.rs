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
//! read_after(offset, scope) ──► the entries after it, or OffsetTrimmed / OffsetAhead / EpochChanged /
//!                               Unreplayable (never a partial replay)
//! keep_live ──► the live copy of a session (never resumable while its owner lives)
//! save_session ──► the record of a dropped session (resumable once, by a hub or a Node peer)
//! claim_session ──► takes a record atomically, once, if the resuming user owns it (`sub`)
//! append_once(key) ──► the entry, or the first append's id if the key was seen (idempotent publish)
//! read_range(query) ──► a page of the log after or before an offset, either way (the history API),
//!                       or OffsetTrimmed / OffsetAhead / EpochChanged
//! ```
//!
//! **Epoch.** The log has an identity ([`Epoch`]) stored with it: a random id that a deleted, flushed,
//! or replaced log does not keep. Every session record carries the epoch its offsets belong to, and a
//! resume whose epoch is not the log's is refused: offsets are comparable only within one epoch.
//!
//! An append that fails says whether anything may have been written: [`StoreError::Unavailable`]
//! only when nothing was (the command was never sent, or the log answered that it refused it),
//! [`StoreError::OutcomeUnknown`] when the command may have been carried out (sent, then no answer).

mod idempotency;
mod memory;
mod redis;
mod redis_append;
mod redis_commands;
mod redis_entries;
mod redis_history;
mod redis_identity;
mod redis_link;
mod redis_reader;
mod redis_replay;

pub use self::idempotency::{
    AppendKey, KeyedAppend, DEFAULT_IDEMPOTENCY_MAX_KEYS, DEFAULT_IDEMPOTENCY_TTL,
};
pub use self::memory::MemoryLog;
pub use self::redis::RedisLog;
pub use self::redis_append::MinReplicas;
pub use self::redis_link::Endpoint;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use actix_web::web::Bytes;
use serde::{Deserialize, Serialize};

use crate::protocol::cluster::DisconnectSockets;
use crate::protocol::ids::{Pid, Sid, StreamId};
use crate::protocol::offset::Offset;
use crate::protocol::target::{Namespace, Target};

/// One broadcast in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its position in the log; the client's recovery offset once delivered.
    pub id: StreamId,
    /// Who it is for (namespace, rooms, except).
    pub target: Target,
    /// The event as compact JSON array text without the offset: `["notification",{…}]`; with
    /// attachments, each binary value is a placeholder `{"_placeholder":true,"num":N}` (Socket.IO §2.2).
    pub args: Arc<str>,
    /// A volatile emit (a Node peer's `io.volatile.emit`): delivered live without an offset (as
    /// socket.io-adapter does), never replayed.
    pub volatile: bool,
    /// The binary values of the event, in placeholder order (a Node peer's `io.emit("x", buffer)`);
    /// empty for a plain event. Delivered as a BINARY_EVENT followed by one binary message each.
    pub attachments: Arc<[Bytes]>,
    /// The shard (stream) it was read from: 0 with one stream (`HUB_STREAM_SHARDS`).
    pub shard: usize,
    /// The recovery offset a client is up to date to once it got this entry (the event's last
    /// argument): set by the StreamBridge as it hands the entry on or replays it. `None` until
    /// then; [`LogEntry::offset`] falls back to the entry's id (a log of one stream).
    pub position: Option<Arc<Offset>>,
}

impl LogEntry {
    /// A plain event (not volatile, no attachments): what the hub itself appends.
    pub fn event(id: StreamId, target: Target, args: Arc<str>) -> LogEntry {
        LogEntry {
            id,
            target,
            args,
            volatile: false,
            attachments: Arc::from([]),
            shard: 0,
            position: None,
        }
    }

    /// The recovery offset it carries: its [`position`](Self::position), or with none yet its id
    /// as the offset of a log of one stream.
    pub fn offset(&self) -> Arc<Offset> {
        self.position
            .clone()
            .unwrap_or_else(|| Arc::new(Offset::one(self.id)))
    }
}

/// The identity of a log: offsets are comparable only within one epoch. A random 128-bit id as hex,
/// stored with the log (on Redis: as the name of a consumer group of the stream, `hub-epoch:<id>`, so
/// that whatever removes the stream removes its epoch; the embedded log: one per process).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(String);

impl Epoch {
    /// A new random epoch.
    pub fn random() -> Epoch {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .expect("the OS random generator is available on every supported platform");
        Epoch(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The epoch as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The epoch of a log of several streams (`HUB_STREAM_SHARDS`): each shard's, shard 0 first,
    /// `,`-separated (an epoch is hex, so the parts come back whole from [`Epoch::parts`]).
    pub fn joined(parts: &[Epoch]) -> Epoch {
        Epoch(
            parts
                .iter()
                .map(Epoch::as_str)
                .collect::<Vec<_>>()
                .join(","),
        )
    }

    /// The shards' epochs of a [`joined`](Epoch::joined) epoch (one part for a log of one stream).
    pub fn parts(&self) -> Vec<Epoch> {
        self.0.split(',').map(Epoch::from).collect()
    }
}

impl From<&str> for Epoch {
    fn from(text: &str) -> Self {
        Epoch(text.to_owned())
    }
}

impl std::fmt::Display for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What recovery needs to resume a session (reference §3.3), in the adapter's record format:
/// `{sid, pid, rooms, data}` as `persistSession` writes it, plus `epoch` and `sub`, which the
/// adapter's decoder (and socket.io's `Socket` constructor, which reads only sid, pid, rooms and
/// data) ignores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The socket id the client keeps on recovery.
    pub sid: Sid,
    /// The private session id.
    pub pid: Pid,
    /// Rooms to rejoin (the socket's own sid room included, as Node stores it).
    pub rooms: Vec<String>,
    /// `socket.data`: `{}` for a new socket, as socket.io initialises it; kept as loaded otherwise.
    #[serde(default)]
    pub data: SocketData,
    /// The log epoch its offsets belong to; `None` in a record written by a Node peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Epoch>,
    /// The user it belongs to (the token's `sub`): only a socket admitted as the same user resumes
    /// it. `None`: anonymous (a socket admitted without a token, or a record written by a Node peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

/// `socket.data` as a session record carries it: `{}` unless a record loaded says otherwise.
/// Nothing for `{}`, boxed otherwise: every joined socket keeps its record, a `serde_json::Value`
/// is 72 bytes, and the hub itself never sets `data` (a Node peer's record may).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SocketData(Option<Box<serde_json::Value>>);

impl From<serde_json::Value> for SocketData {
    fn from(value: serde_json::Value) -> SocketData {
        match &value {
            serde_json::Value::Object(map) if map.is_empty() => SocketData(None),
            _ => SocketData(Some(Box::new(value))),
        }
    }
}

impl Serialize for SocketData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(value) => value.serialize(serializer),
            None => serde::ser::SerializeMap::end(serializer.serialize_map(Some(0))?),
        }
    }
}

impl<'de> Deserialize<'de> for SocketData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<SocketData, D::Error> {
        serde_json::Value::deserialize(deserializer).map(SocketData::from)
    }
}

impl SessionRecord {
    /// A new socket's record: only its own room, `data` `{}`, offsets of `epoch`, anonymous.
    pub fn new(sid: &Sid, pid: &Pid, epoch: Option<Epoch>) -> SessionRecord {
        SessionRecord {
            sid: sid.clone(),
            pid: pid.clone(),
            rooms: vec![sid.to_string()],
            data: SocketData::default(),
            epoch,
            sub: None,
        }
    }

    /// Whether the socket of user `owner` (`None`: anonymous) may resume this session: the record's
    /// `sub` is the same (both absent counts).
    pub fn owned_by(&self, owner: Option<&str>) -> bool {
        self.sub.as_deref() == owner
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
    /// Bytes of every entry read, delivered or skipped (their field values): what the next page of a
    /// replay is sized by, so entries the hub skips count too.
    pub bytes: usize,
}

/// What [`LogBackend::claim_session`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The record of a dropped session (or of one whose owner died), now taken: nobody else gets it.
    Claimed(SessionRecord),
    /// The session is live on an instance that is alive: not resumable (yet).
    Live,
    /// No such session (unknown, expired, already claimed, or forgotten).
    Absent,
    /// The session belongs to another user: left as it is, so its owner can still resume it.
    NotOwner,
}

/// Whose replay a read is for, checked in the same atomic snapshot as the entries it returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayScope {
    /// The epoch the offsets belong to; the read fails with `EpochChanged` if the log's differs.
    pub epoch: Epoch,
    /// The socket's namespace.
    pub nsp: Namespace,
    /// The socket's rooms (its record's, with its sid room and `user:<sub>`).
    pub rooms: Vec<String>,
}

impl ReplayScope {
    /// Whether the socket would get an entry for `target`, by socket.io-adapter's rule (the adapter's
    /// `shouldIncludePacket`): in one of `rooms` (or `rooms` empty), in none of `except`.
    pub fn addressed(&self, target: &Target) -> bool {
        fn names(rooms: &[crate::protocol::target::Room]) -> Vec<&str> {
            rooms.iter().map(|r| r.as_str()).collect()
        }
        target.nsp == self.nsp
            && crate::protocol::adapter::included(
                &self.rooms,
                &names(&target.rooms),
                &names(&target.except),
            )
    }

    /// Whether an entry for `target` is replayed to this socket: exactly when it is
    /// [`addressed`](Self::addressed) to it, as the adapter's `restoreSession` replays (its rooms
    /// are the record's: its sid room, `user:<sub>` and those it joined).
    pub fn replays(&self, target: &Target) -> bool {
        self.addressed(target)
    }

    /// Whether the adapter's `restoreSession` replays `entry` to this socket (what
    /// [`LogBackend::read_after`] returns): addressed to it, and not volatile (socket.io leaves
    /// volatile emits out of recovery; the redis-streams adapter 0.3.1 replays them, we do not).
    pub fn restores(&self, entry: &LogEntry) -> bool {
        !entry.volatile && self.addressed(&entry.target)
    }
}

/// Which way a [`LogBackend::read_range`] walks the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first (Redis `XRANGE`).
    Forward,
    /// Newest first (Redis `XREVRANGE`).
    Backward,
}

/// A read of a stretch of the log, either way, for the history API (`crate::history`).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    /// Which way.
    pub direction: Direction,
    /// The exclusive bound the read starts from: entries strictly after it (forward) or strictly
    /// before it (backward). `None`: from the log's oldest entry (forward) or newest (backward).
    pub from: Option<StreamId>,
    /// How many entries to read at most (whatever they are; see [`LogRange::read`]).
    pub count: usize,
    /// The epoch `from` belongs to, checked in the same snapshot as the entries; `None`: not checked.
    pub epoch: Option<Epoch>,
}

/// What [`LogBackend::read_range`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRange {
    /// The broadcast events among the entries read (any namespace, volatile ones flagged, binary
    /// ones with their attachments), in the read's order. Other kinds are left out (still read).
    pub entries: Vec<LogEntry>,
    /// How many entries were read, left out or not: fewer than [`RangeQuery::count`] means the read
    /// reached the end of the log in its direction.
    pub read: usize,
    /// The id of the last entry read (the oldest for a backward read); `None` if nothing was read.
    pub last: Option<StreamId>,
    /// The log's epoch at the time of the read (empty on a Redis stream that has none yet).
    pub epoch: Epoch,
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
    /// An append was written but fewer replicas than `HUB_REDIS_MIN_REPLICAS` acknowledged it in
    /// time: to the publisher an unknown outcome (a failover could still take it back; a keyed
    /// retry is safe), but the log took it, so the instance stays ready (no replica comes back
    /// because an instance left its load balancer).
    #[error("append not confirmed by enough replicas: {0}")]
    NotReplicated(String),
    /// Entries after this offset were trimmed away: a replay from it would have a hole.
    #[error("offset {0} was trimmed out of the log")]
    OffsetTrimmed(StreamId),
    /// The offset is past the newest entry: the log never issued it.
    #[error("offset {0} is ahead of the log")]
    OffsetAhead(StreamId),
    /// The log is not the one the offset belongs to (deleted, flushed, restarted without its data,
    /// replaced by a replica that lacks entries): its epoch differs.
    #[error("the log's epoch changed (the offset belongs to {expected}, the log is {found})")]
    EpochChanged {
        /// The epoch of the session's offsets.
        expected: Epoch,
        /// The log's (empty: it has none yet).
        found: String,
    },
    /// An entry after the offset may be addressed to the socket but does not decode as an event
    /// (malformed, or not an EVENT packet): a replay without it would have a hole. The adapter's
    /// `restoreSession` fails on such an entry too.
    #[error("entry {0} may be addressed to the socket and cannot be replayed")]
    Unreplayable(StreamId),
    /// The log cannot do this in its configuration (e.g. the history API over several shards).
    #[error("{0}")]
    Unsupported(&'static str),
}

/// A backend call in flight.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>>>>;

/// Where the log ends, and its identity, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The newest entry's id (`0-0` for an empty log).
    pub id: StreamId,
    /// The log's epoch.
    pub epoch: Epoch,
}

/// What a backend's read loop reports, in log order.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum LogEvent {
    /// Another instance on this stream key runs with another shard count (`shards`: its
    /// `HUB_STREAM_SHARDS`), or (`None`) no longer does: while it does, this instance neither
    /// appends nor is ready, since each would append where the other does not read.
    LayoutConflict {
        /// The other instances' shard count, as stored.
        shards: Option<String>,
    },
    /// The loop of `shard` found its start: it hands on every entry after `from`, and none before.
    ReadingFrom {
        /// The shard (stream) the loop reads: 0 with one stream.
        shard: usize,
        /// Its start.
        from: StreamId,
    },
    /// New entries.
    Entries(Vec<LogEntry>),
    /// A request to disconnect the sockets of a target (a cluster DISCONNECT_SOCKETS entry, this
    /// instance's or a peer's, hub or Node), in log order with the entries around it.
    DisconnectSockets(DisconnectSockets),
    /// The log's identity changed under the loop (it was deleted, flushed, or replaced): offsets
    /// handed out before are not comparable with the log's any more.
    EpochChanged {
        /// The shard (stream) whose epoch changed: 0 with one stream.
        shard: usize,
        /// The epoch the loop had read under.
        was: Epoch,
        /// The log's epoch now.
        now: Epoch,
        /// Where the loop reads on from: the new stream's newest entry (its ids are not
        /// comparable with the old stream's).
        from: StreamId,
    },
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
    /// Asks every instance on the log (this one included, through its read loop) to disconnect
    /// the sockets of `request.target`: on Redis a DISCONNECT_SOCKETS entry in the adapter's format
    /// (Node peers act on it too); resolves once the log took it. Failures are classified as an
    /// append's ([`StoreError::Unavailable`]: not requested; [`StoreError::OutcomeUnknown`]).
    fn disconnect_sockets(&mut self, request: &DisconnectSockets) -> StoreFuture<()>;
    /// Whether an append would be accepted now, without appending (after a failed append, readiness
    /// waits for this or for an append to succeed).
    fn probe_append(&mut self) -> StoreFuture<()>;
    /// The entries among the `count` strictly after `after` that `scope`'s socket gets on a resume
    /// ([`ReplayScope::restores`]: addressed to it, volatile left out), oldest first. Fails with
    /// `OffsetTrimmed` if any entry after `after` is gone, `OffsetAhead` if `after` is newer than the
    /// newest entry, `EpochChanged` if the log's epoch is not `scope.epoch`, and `Unreplayable` if an
    /// entry among those read may be addressed to `scope`'s socket but does not decode as an event:
    /// all checked in one atomic snapshot with the entries.
    /// Each call checks, so a replay read page by page notices a trim or an epoch change between its
    /// pages. The [`LogRead`] counts skipped entries as read, so a page short of delivered entries
    /// is not taken for the log's end.
    fn read_after(
        &mut self,
        after: StreamId,
        count: usize,
        scope: &ReplayScope,
    ) -> StoreFuture<LogRead>;
    /// Up to `query.count` entries after (forward) or before (backward) `query.from`, with the log's
    /// epoch, in one atomic snapshot. Fails with `EpochChanged` if `query.epoch` is given and is not
    /// the log's; `OffsetAhead` if `from` is newer than the newest id the log issued; `OffsetTrimmed`
    /// if entries on the read's side of `from` were trimmed away: forward, as [`Self::read_after`]
    /// decides it (the read would have a hole); backward, when `from` is older than the oldest
    /// entry kept and something was trimmed (everything before it is gone).
    fn read_range(&mut self, query: &RangeQuery) -> StoreFuture<LogRange>;
    /// The id of the newest entry (`0-0` for an empty log) and the log's epoch (created if the log
    /// has none yet).
    fn tip(&mut self) -> StoreFuture<Position>;
    /// Starts handing every entry appended from now on to `sink`, in log order, including this
    /// instance's own appends (one delivery path for all). Returns where reading starts when that is
    /// known at once; otherwise the loop reports it with [`LogEvent::ReadingFrom`].
    fn start_reading(&mut self, sink: Recipient<LogEvent>) -> Option<StreamId>;
    /// Writes (or refreshes) the copy of a **live** session, for its recovery should this instance
    /// die: it expires after `ttl`, and is resumable only once this instance's lease has expired.
    fn keep_live(&mut self, record: SessionRecord, ttl: Duration) -> StoreFuture<()>;
    /// The session dropped: writes its record where any instance (hub or Node peer) can resume it,
    /// expiring after `ttl`, and removes its live copy (as Node writes its record at disconnect).
    fn save_session(&mut self, record: SessionRecord, ttl: Duration) -> StoreFuture<()>;
    /// Takes a session's record atomically, once (the adapter's GETDEL), if it is `owner`'s
    /// ([`SessionRecord::owned_by`]): see [`Claim`]. Another user's record is not taken (nor
    /// touched): someone who learned a pid cannot deny its owner the resume.
    fn claim_session(&mut self, pid: &Pid, owner: Option<&str>) -> StoreFuture<Claim>;
    /// Deletes a session's record and live copy (a deliberate disconnect is not recoverable).
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

#[cfg(test)]
mod socket_data_tests {
    use serde_json::json;

    use super::*;

    fn record_with(data: serde_json::Value) -> SessionRecord {
        let mut record = SessionRecord::new(&Sid::from_wire("s"), &Pid::from_wire("p"), None);
        record.data = data.into();
        record
    }

    #[test]
    fn a_new_sockets_data_is_written_as_an_empty_object() {
        let record = SessionRecord::new(&Sid::from_wire("s"), &Pid::from_wire("p"), None);
        let written = serde_json::to_value(&record).unwrap();
        assert_eq!(
            written["data"],
            json!({}),
            "socket.io reads socket.data as an object"
        );
        assert_eq!(
            serde_json::from_value::<SessionRecord>(written).unwrap(),
            record
        );
    }

    #[test]
    fn a_peers_socket_data_comes_back_as_it_was() {
        for data in [
            json!({"user": "alice", "n": [1, 2]}),
            json!([]),
            json!(null),
            json!(7),
        ] {
            let record = record_with(data.clone());
            let written = serde_json::to_value(&record).unwrap();
            assert_eq!(written["data"], data);
            assert_eq!(
                serde_json::from_value::<SessionRecord>(written).unwrap(),
                record
            );
        }
    }

    #[test]
    fn a_record_without_data_reads_as_an_empty_object() {
        let read: SessionRecord =
            serde_json::from_value(json!({"sid": "s", "pid": "p", "rooms": ["s"]})).unwrap();
        assert_eq!(read, record_with(json!({})));
        assert_eq!(serde_json::to_value(&read).unwrap()["data"], json!({}));
    }
}
