//! The Redis Streams backend: the log shared by every instance, in `@socket.io/redis-streams-adapter`'s
//! format (reference §4), so Node and Rust instances can share one stream.
//!
//! Owns: two kinds of Redis connection, on purpose. A connection sitting in `XREAD BLOCK` holds up every
//! command queued behind it, so XADD, XRANGE and the session records go over one auto-reconnecting
//! connection, and the blocking read runs in its own loop on its own connection.
//!
//! ```text
//! append     XADD <key> MAXLEN ~ <max> * uid <uid> nsp / type 3 data {"packet":…,"opts":…}
//!            (its own connection, every failure classified: see `redis_append.rs`)
//! append_once EVAL: GET hub:idempotency:{<key>}:<idempotency key>, else the same XADD and SET … PX
//! read loop  XREAD COUNT 500 BLOCK 2000 STREAMS <key> <last id handed on>  ──► LogEvent
//! read_after EVAL (XINFO STREAM + XINFO GROUPS + XRANGE, atomically): entries after the offset, or
//!            refused if an entry after it may have been trimmed or deleted, the offset is ahead of the
//!            stream, the stream's epoch is not the session's, or an entry may be for the socket but
//!            cannot be delivered
//! read_range EVAL (XINFO STREAM + XINFO GROUPS + XRANGE or XREVRANGE): a history page
//!            (`redis_history.rs`)
//! epoch      a consumer group of the stream named hub-epoch:<id>, created (MKSTREAM) if missing
//! live       HSET hub:live:{sio:session:<pid>} owner <uid> record <base64 record> + PEXPIRE <window>
//! lease      SET hub:instance:<uid> 1 PX <lease>, refreshed every third of it
//! dropped    SET sio:session:<pid> base64(msgpack {sid,pid,rooms,data,epoch}) PX <window>, DEL the live copy
//! resume     EVAL: GET sio:session:<pid>, else HMGET the live copy; EXISTS hub:instance:<owner>;
//!            EVAL: DEL what was read if it is still that (compare and delete)
//! ```
//! Needs Redis 7.0 or newer (for `max-deleted-entry-id`).
//!
//! **Why the epoch is a consumer group.** Group metadata lives inside the stream key: `DEL`,
//! `FLUSHALL`/`FLUSHDB` and a restart without persistence remove it with the entries, trimming does
//! not, and persistence (AOF, RDB) and replication keep it. Node peers are unaffected: they use XADD,
//! XREAD and XRANGE, which ignore groups, and nothing reads through the group (its pending list stays
//! empty). A replica promoted without the newest entries keeps the group but not those entries
//! (its `last-generated-id` goes back, or new appends pass it and the newest id read is simply
//! missing): the read loop, which knows the newest id it read, replaces the epoch when it reconnects
//! (once: the others adopt it), and replays check the same id until then, so a lost tail is a clean
//! `recovered=false`, never a partial replay. With `HUB_REDIS_MIN_REPLICAS` nothing is lost that any
//! client or publisher was told of: appends `WAIT` for the replicas before their 201, and the read
//! loop hands entries on only once the replicas have them (see `redis_reader.rs`).
//!
//! **Why live sessions are not under `sio:session:`.** A Node peer resumes any record there (GETDEL);
//! a session still live on a hub must not be resumable anywhere, so its copy for crash recovery lives
//! under `hub:live:`, which only hubs read, and only once the owner's lease has expired (it died).
//! The normal record is written when the session drops, as Node writes its own.
//!
//! **Redis Cluster.** Every command and script touches one slot: the scripts declare every key they
//! touch, and the hub's own keys next to a key of the adapter's carry it as a hash tag
//! (`hub:live:{sio:session:<pid>}`, `hub:idempotency:{<stream>}:<key>`, `hub:reader:{<stream>}:<uid>`;
//! see [`slot_tag`]). The instance leases (`hub:instance:<uid>`) live on slots of their own and are
//! read by a command of their own (see `claim_session`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Recipient;
use redis::{ProtocolVersion, Value};

use super::redis_append::{self, AppendLink, Fields, MinReplicas};
use super::redis_identity::{
    decode_record, encode_record, ensure_epoch, keep_layout, keep_lease, live_key, slot_tag,
    CLAIM_PEEK_SCRIPT, CLAIM_TAKE_SCRIPT, INSTANCE_KEY_PREFIX, KEEP_LIVE_SCRIPT, LAYOUT_KEY_PREFIX,
    RELEASE_SCRIPT,
};
use super::redis_link::{Endpoint, Link, LinkOptions};
use super::redis_reader::Reader;
use super::redis_replay::{read_batch, ReadAfter};
use super::{
    AppendKey, Claim, KeyedAppend, LogBackend, LogEvent, LogRange, LogRead, Position, RangeQuery,
    ReplayScope, SessionRecord, StoreError, StoreFuture,
};
use crate::metrics::Metrics;
use crate::protocol::adapter;
use crate::protocol::cluster::{DisconnectSockets, DISCONNECT_SOCKETS};
use crate::protocol::ids::{Pid, StreamId};
use crate::protocol::target::Target;

/// Key prefix of session records, as the adapter's `sessionKeyPrefix`.
pub const SESSION_KEY_PREFIX: &str = "sio:session:";
/// How often the read loop checks the stream's epoch (besides at every reconnect).
pub(super) const EPOCH_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Entries per XREAD.
pub(super) const READ_COUNT: usize = 500;
/// How long one XREAD waits for new entries: short enough that a dead connection is noticed soon.
pub(super) const READ_BLOCK: Duration = Duration::from_millis(2000);
/// How long any other command may take before it counts as failed.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_millis(2000);
/// Read loop reconnect backoff: from the first to the last, doubling, with jitter.
pub(super) const BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(5));

/// What the stream has lost: enough to tell whether every entry after an offset is still there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StreamState {
    /// The newest id removed by XDEL (trimming does not move it).
    pub(super) max_deleted: StreamId,
    /// The newest id ever assigned.
    pub(super) last_generated: StreamId,
    /// The oldest entry still in the stream.
    pub(super) first: Option<StreamId>,
    /// Whether any entry was ever removed (by trimming or XDEL).
    pub(super) lost_any: bool,
}

impl StreamState {
    /// Whether a replay after `after` would be complete. Trimming removes from the head, so the entries
    /// after `after` are all there when nothing was ever removed, or when an entry at or before `after`
    /// still exists; an offset before the first entry is refused otherwise, even if nothing after it
    /// happened to be trimmed (as the Node adapter refuses an offset whose entry is gone).
    pub(super) fn covers(&self, after: StreamId) -> Result<(), StoreError> {
        if after > self.last_generated {
            return Err(StoreError::OffsetAhead(after));
        }
        let intact = match self.first {
            _ if !self.lost_any => true,
            Some(first) => first <= after,
            None => after >= self.last_generated,
        };
        if after < self.max_deleted || !intact {
            return Err(StoreError::OffsetTrimmed(after));
        }
        Ok(())
    }
}

/// The backend.
pub struct RedisLog {
    /// Where Redis is (one server, Sentinel, Cluster): the read loop connects to it on its own.
    endpoint: Arc<Endpoint>,
    /// Commands other than the blocking read and appends; reconnects by itself (to the new primary
    /// after a failover).
    commands: Link,
    /// Appends (and their probe): a connection of their own, so that each failure says whether
    /// the command was sent.
    appends: AppendLink,
    /// How long an idempotency key is kept.
    idempotency_ttl: Duration,
    key: String,
    max_len: usize,
    /// This instance's adapter uid: 8 random bytes as hex (Node nodes skip their own uid; we deliver
    /// our own entries too, through the same read loop as everyone else's).
    uid: String,
    /// `hub_ready` (whether the read loop is connected and reading), `hub_stream_entries_skipped_total`
    /// and `hub_stream_entries_refused_total` (entries read and not delivered; counted, never fatal).
    metrics: Arc<Metrics>,
    /// How long this instance's lease lives unrefreshed: its live sessions become resumable elsewhere
    /// that long after it died.
    lease: Duration,
    /// The newest id the read loop handed on (`0-0` before it read any): replays check that the
    /// stream still has it.
    handed_on: Arc<Mutex<StreamId>>,
    /// `HUB_REDIS_MIN_REPLICAS`, if set.
    min_replicas: Option<MinReplicas>,
    /// Which shard of the log this stream is (`HUB_STREAM_SHARDS`; 0 with one stream): its entries
    /// are tagged with it, and only shard 0 keeps the instance's lease (one per instance).
    shard: usize,
    /// Whether this stream's read loop is connected and reading.
    reading: Arc<AtomicBool>,
    /// How many of the log's loops are not reading, shared by every shard's backend.
    loops_down: Arc<AtomicUsize>,
    /// The log's stream key (`HUB_STREAM_KEY`) and shard count, kept by shard 0's backend in the
    /// layout key so that instances with different counts on one key notice.
    layout: (String, usize),
}

impl RedisLog {
    /// A backend on `endpoint`, stream `key`, keeping about `max_len` entries. Connects lazily: a
    /// Redis that is down at start-up only makes the hub unready until it comes up.
    pub fn new(
        endpoint: Endpoint,
        key: &str,
        max_len: usize,
        uid_bytes: [u8; 8],
        lease: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<RedisLog, StoreError> {
        if matches!(endpoint, Endpoint::Cluster(_)) && slot_tag(key).is_none() {
            return Err(StoreError::Unavailable(format!(
                "stream key {key:?} cannot be used on a Redis Cluster: it has a '}}' and no hash tag, \
                 so no key of the hub's can share its slot; name it without '}}', or with a \
                 {{hash tag}}"
            )));
        }
        let endpoint = Arc::new(endpoint);
        let commands = Link::new(
            endpoint.clone(),
            LinkOptions::new(ProtocolVersion::RESP2, COMMAND_TIMEOUT),
        );
        let uid = uid_bytes.iter().map(|b| format!("{b:02x}")).collect();
        let appends = AppendLink::new(endpoint.clone(), COMMAND_TIMEOUT);
        Ok(RedisLog {
            endpoint,
            commands,
            appends,
            idempotency_ttl: super::DEFAULT_IDEMPOTENCY_TTL,
            key: key.to_owned(),
            max_len,
            uid,
            metrics,
            lease,
            handed_on: Arc::new(Mutex::new(StreamId::ZERO)),
            min_replicas: None,
            shard: 0,
            reading: Arc::new(AtomicBool::new(false)),
            loops_down: Arc::new(AtomicUsize::new(1)),
            layout: (key.to_owned(), 1),
        })
    }

    /// Keeps idempotency keys for `ttl` ([`super::DEFAULT_IDEMPOTENCY_TTL`] unless set).
    pub fn with_idempotency_ttl(mut self, ttl: Duration) -> RedisLog {
        self.idempotency_ttl = ttl;
        self
    }

    /// Makes this the log's shard `shard` (`HUB_STREAM_SHARDS`): its entries are tagged with it,
    /// and a shard other than 0 leaves the instance's lease to shard 0's backend.
    /// `loops_down` counts the log's loops not reading, shared by every shard's backend and
    /// starting at the number of shards (`hub_ready` is 1 only while it is 0).
    /// `key` and `shards` are the log's stream key and shard count (shard 0 keeps them in the
    /// layout key).
    pub fn with_shard(
        mut self,
        shard: usize,
        loops_down: Arc<AtomicUsize>,
        (key, shards): (&str, usize),
    ) -> RedisLog {
        self.shard = shard;
        self.loops_down = loops_down;
        self.layout = (key.to_owned(), shards);
        self
    }

    /// Acknowledges appends only once `min` replicas have them, and hands entries on to clients only
    /// once they have them too (`HUB_REDIS_MIN_REPLICAS`).
    pub fn with_min_replicas(mut self, min: Option<MinReplicas>) -> RedisLog {
        self.appends = self.appends.with_min_replicas(min);
        self.min_replicas = min;
        self
    }

    /// The fields of an XADD for `target`, as the adapter writes them.
    fn fields<'a>(&'a self, target: &'a Target, args: &str) -> Fields<'a> {
        Fields {
            stream: &self.key,
            max_len: self.max_len,
            uid: &self.uid,
            nsp: target.nsp.as_str(),
            kind: adapter::BROADCAST,
            data: adapter::broadcast_data(target, args),
        }
    }

    fn session_key(pid: &str) -> String {
        format!("{SESSION_KEY_PREFIX}{pid}")
    }

    /// The session's record key and its live copy's key, on one Redis Cluster slot; `None` for a
    /// pid no hash tag can join to its record (one with a `}`: a hub mints base64url pids, so only
    /// a client's made-up pid, which has nothing to resume).
    fn session_keys(pid: &Pid) -> Option<[String; 2]> {
        let record = Self::session_key(pid.as_str());
        let live = live_key(&record)?;
        Some([record, live])
    }

    /// Runs a record-writing script (KEEP_LIVE or RELEASE) with this instance's uid.
    fn write_record(
        &mut self,
        script: &'static str,
        keys: &[String],
        record: &SessionRecord,
        ttl: Duration,
    ) -> StoreFuture<()> {
        let mut eval = redis::cmd("EVAL");
        eval.arg(script).arg(keys.len());
        for key in keys {
            eval.arg(key);
        }
        eval.arg(&self.uid)
            .arg(encode_record(record))
            .arg(ttl.as_millis().max(1) as u64);
        let mut conn = self.commands.clone();
        let pid = record.pid.clone();
        Box::pin(async move {
            let written: i64 = eval.query_async(&mut conn).await.map_err(unavailable)?;
            if written == 0 {
                log::debug!("session record not written pid={pid}: another instance resumed it");
            }
            Ok(())
        })
    }
}

pub(super) fn unavailable(err: redis::RedisError) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

pub(super) fn parse_id(value: &Value) -> Result<StreamId, StoreError> {
    let text = as_string(value)
        .ok_or_else(|| StoreError::Unavailable(format!("unexpected reply {value:?}")))?;
    text.parse()
        .map_err(|e| StoreError::Unavailable(format!("{e}")))
}

pub(super) fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        other => as_string(other)?.parse().ok(),
    }
}

/// The value of field `name` of a stream entry's flat `[field, value, …]` list, as text.
pub(super) fn entry_field(fields: &[Value], name: &str) -> Option<String> {
    fields
        .chunks(2)
        .find(|kv| as_string(&kv[0]).as_deref() == Some(name))
        .and_then(|kv| kv.get(1))
        .and_then(as_string)
}

pub(super) fn as_string(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

impl LogBackend for RedisLog {
    fn append(&mut self, target: &Target, args: Arc<str>) -> StoreFuture<StreamId> {
        let fields = self.fields(target, &args);
        let mut cmd = redis::cmd("XADD");
        cmd.arg(fields.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(fields.max_len)
            .arg("*");
        cmd.arg("uid")
            .arg(fields.uid)
            .arg("nsp")
            .arg(fields.nsp)
            .arg("type")
            .arg(fields.kind);
        cmd.arg("data").arg(fields.data);
        let link = self.appends.clone();
        let stream = self.key.clone();
        Box::pin(async move {
            let id = link.send(&cmd, Some(&stream)).await?;
            // XADD ran: a reply we cannot read does not mean nothing was written.
            parse_id(&id).map_err(|err| StoreError::OutcomeUnknown(err.to_string()))
        })
    }

    fn append_once(
        &mut self,
        target: &Target,
        args: Arc<str>,
        key: &AppendKey,
    ) -> StoreFuture<KeyedAppend> {
        let eval = redis_append::append_once_command(
            &self.fields(target, &args),
            key,
            self.idempotency_ttl,
        );
        let link = self.appends.clone();
        let key = key.clone();
        let stream = self.key.clone();
        Box::pin(async move {
            let reply = link.send(&eval, Some(&stream)).await?;
            redis_append::parse_append_once(&reply, &key)
        })
    }

    fn disconnect_sockets(&mut self, request: &DisconnectSockets) -> StoreFuture<()> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.max_len)
            .arg("*")
            .arg("uid")
            .arg(&self.uid)
            .arg("nsp")
            .arg(request.target.nsp.as_str())
            .arg("type")
            .arg(DISCONNECT_SOCKETS)
            .arg("data")
            .arg(request.data());
        let link = self.appends.clone();
        Box::pin(async move { link.send(&cmd, None).await.map(drop) })
    }

    fn probe_append(&mut self) -> StoreFuture<()> {
        let probe = redis_append::probe_command(&self.key);
        let link = self.appends.clone();
        Box::pin(async move { link.send(&probe, None).await.map(drop) })
    }

    fn read_after(
        &mut self,
        after: StreamId,
        count: usize,
        scope: &ReplayScope,
    ) -> StoreFuture<LogRead> {
        let scope = scope.clone();
        let key = self.key.clone();
        let mut conn = self.commands.clone();
        let metrics = self.metrics.clone();
        let handed_on = *self.handed_on.lock().expect("never poisoned");
        Box::pin(async move {
            // One snapshot per call: entries not for delivery are skipped but counted as read, so
            // the caller pages on from `last` and never takes a short page for the log's end.
            let read = ReadAfter {
                after,
                count,
                handed_on,
            };
            read_batch(&mut conn, &key, read, &scope, &metrics).await
        })
    }

    fn read_range(&mut self, query: &RangeQuery) -> StoreFuture<LogRange> {
        let query = query.clone();
        let key = self.key.clone();
        let mut conn = self.commands.clone();
        Box::pin(async move { super::redis_history::read_range(&mut conn, &key, &query).await })
    }

    fn tip(&mut self) -> StoreFuture<Position> {
        let mut conn = self.commands.clone();
        let key = self.key.clone();
        Box::pin(async move { ensure_epoch(&mut conn, &key, StreamId::ZERO, None).await })
    }

    fn start_reading(&mut self, sink: Recipient<LogEvent>) -> Option<StreamId> {
        let reader = Reader {
            endpoint: self.endpoint.clone(),
            key: self.key.clone(),
            sink: sink.clone(),
            metrics: self.metrics.clone(),
            epoch: None,
            uid: self.uid.clone(),
            handed_on: self.handed_on.clone(),
            min_replicas: self.min_replicas,
            shard: self.shard,
            reading: self.reading.clone(),
            loops_down: self.loops_down.clone(),
        };
        actix::spawn(reader.run());
        if self.shard != 0 {
            return None;
        }
        actix::spawn(keep_layout(
            self.commands.clone(),
            format!("{LAYOUT_KEY_PREFIX}{}", self.layout.0),
            self.layout.1,
            self.lease * 3,
            sink.clone(),
        ));
        actix::spawn(keep_lease(
            self.commands.clone(),
            format!("{INSTANCE_KEY_PREFIX}{}", self.uid),
            self.lease,
            sink,
        ));
        None
    }

    fn keep_live(&mut self, record: SessionRecord, ttl: Duration) -> StoreFuture<()> {
        let Some([_, live]) = Self::session_keys(&record.pid) else {
            return Box::pin(async { Ok(()) });
        };
        self.write_record(KEEP_LIVE_SCRIPT, &[live], &record, ttl)
    }

    fn save_session(&mut self, record: SessionRecord, ttl: Duration) -> StoreFuture<()> {
        let Some(keys) = Self::session_keys(&record.pid) else {
            return Box::pin(async { Ok(()) });
        };
        self.write_record(RELEASE_SCRIPT, &keys, &record, ttl)
    }

    /// Three steps: peek (the record, else the live copy and its owner), check the live copy's
    /// lease and the record's owner here (the record is the adapter's base64 msgpack, which Lua
    /// cannot read; the lease key is on another Redis Cluster slot), then take it only if it is
    /// still what was peeked. Another user's record is never touched.
    ///
    /// Why the lease check outside the scripts is still safe: it is made after the peek and before
    /// the take, so a live copy is taken only if its owner's lease was gone at a moment after it was
    /// read, the same guarantee the single peek script gave (which read both at once); and the take
    /// compares owner and record, so a copy rewritten meanwhile (an owner that was only slow and
    /// came back) is not taken.
    fn claim_session(&mut self, pid: &Pid, owner: Option<&str>) -> StoreFuture<Claim> {
        let Some(keys) = Self::session_keys(pid) else {
            return Box::pin(async { Ok(Claim::Absent) });
        };
        let mut peek = redis::cmd("EVAL");
        peek.arg(CLAIM_PEEK_SCRIPT).arg(2).arg(&keys[..]);
        let owner = owner.map(str::to_owned);
        let mut conn = self.commands.clone();
        Box::pin(async move {
            let reply: Vec<String> = peek.query_async(&mut conn).await.map_err(unavailable)?;
            let (kind, text, instance) = match reply.as_slice() {
                [kind, text] if kind == "record" => (kind.as_str(), text, ""),
                [kind, text, instance] if kind == "live" => {
                    let leased = !instance.is_empty() && {
                        let lease: i64 = redis::cmd("EXISTS")
                            .arg(format!("{INSTANCE_KEY_PREFIX}{instance}"))
                            .query_async(&mut conn)
                            .await
                            .map_err(unavailable)?;
                        lease == 1
                    };
                    if leased {
                        let theirs =
                            decode_record(text).is_some_and(|r| !r.owned_by(owner.as_deref()));
                        return Ok(if theirs { Claim::NotOwner } else { Claim::Live });
                    }
                    ("orphan", text, instance.as_str())
                }
                _ => return Ok(Claim::Absent),
            };
            // A record that does not decode is treated as absent (left to expire): the client gets
            // a fresh session.
            let Some(record) = decode_record(text) else {
                return Ok(Claim::Absent);
            };
            if !record.owned_by(owner.as_deref()) {
                return Ok(Claim::NotOwner);
            }
            let taken: i64 = redis::cmd("EVAL")
                .arg(CLAIM_TAKE_SCRIPT)
                .arg(2)
                .arg(&keys[..])
                .arg(kind)
                .arg(text)
                .arg(instance)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(if taken == 1 {
                Claim::Claimed(record)
            } else {
                Claim::Absent
            })
        })
    }

    fn drop_session(&mut self, pid: &Pid) -> StoreFuture<()> {
        // One DEL for both: they share a slot (a Cluster refuses keys of two slots in one command).
        let keys = Self::session_keys(pid)
            .map_or_else(|| vec![Self::session_key(pid.as_str())], Vec::from);
        let mut conn = self.commands.clone();
        Box::pin(async move {
            let _: Value = redis::cmd("DEL")
                .arg(&keys[..])
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn is_ready(&self) -> bool {
        self.reading.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(max_deleted: u64, last: u64, first: Option<u64>, lost_any: bool) -> StreamState {
        StreamState {
            max_deleted: StreamId::new(max_deleted, 0),
            last_generated: StreamId::new(last, 0),
            first: first.map(|f| StreamId::new(f, 0)),
            lost_any,
        }
    }

    #[test]
    fn stream_state_covers_offsets_whose_successors_are_all_present() {
        let id = |ms| StreamId::new(ms, 0);
        // Nothing ever removed: any offset up to the tip, even 0-0 (a fresh client on an empty stream).
        assert_eq!(state(0, 10, Some(1), false).covers(StreamId::ZERO), Ok(()));
        // Trimmed up to 5: offsets at or after the first entry are intact, older ones are not.
        assert_eq!(state(0, 10, Some(5), true).covers(id(5)), Ok(()));
        assert_eq!(state(0, 10, Some(5), true).covers(id(7)), Ok(()));
        assert_eq!(
            state(0, 10, Some(5), true).covers(id(4)),
            Err(StoreError::OffsetTrimmed(id(4)))
        );
        assert_eq!(
            state(0, 10, Some(5), true).covers(StreamId::ZERO),
            Err(StoreError::OffsetTrimmed(StreamId::ZERO))
        );
        // An XDEL after the offset leaves a hole.
        assert_eq!(
            state(8, 10, Some(1), true).covers(id(7)),
            Err(StoreError::OffsetTrimmed(id(7)))
        );
        // Past the newest id: never issued.
        assert_eq!(
            state(0, 10, Some(1), false).covers(id(11)),
            Err(StoreError::OffsetAhead(id(11)))
        );
        // Everything removed: only the tip itself is intact.
        assert_eq!(state(0, 10, None, true).covers(id(10)), Ok(()));
        assert_eq!(
            state(0, 10, None, true).covers(id(9)),
            Err(StoreError::OffsetTrimmed(id(9)))
        );
    }
}
