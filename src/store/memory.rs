//! The embedded log: the same ids, trimming and recovery rules as Redis Streams, in process.
//!
//! Owns: the entries (bounded in count and in bytes), the session records (live copies and dropped
//! sessions' records), the id of the newest trimmed entry, the idempotency keys, and the log's epoch
//! (random per process: nothing survives a restart, so a restarted log is another log).

use std::collections::{HashMap, VecDeque};
use std::future::ready;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Recipient;

use super::idempotency::AppendKeys;
use super::{
    now_ms, AppendKey, Claim, Direction, Epoch, KeyedAppend, LogBackend, LogEntry, LogEvent,
    LogRange, LogRead, Position, RangeQuery, ReplayScope, SessionRecord, StoreError, StoreFuture,
    DEFAULT_IDEMPOTENCY_MAX_KEYS, DEFAULT_IDEMPOTENCY_TTL,
};
use crate::log_limit::LimitedLog;
use crate::metrics::Metrics;
use crate::protocol::cluster::DisconnectSockets;
use crate::protocol::ids::{Pid, StreamId};
use crate::protocol::target::Target;

/// Idempotency keys forgotten before their time to live (the table was full).
static KEYS_EVICTED: LimitedLog = LimitedLog::per_minute(2);

/// The embedded in-process log: the same ids, trimming and recovery rules as Redis Streams, for one
/// instance without Redis. Nothing survives a restart.
pub struct MemoryLog {
    /// Entries, oldest first, at most `max_len` of them and `max_bytes` of them in all.
    entries: VecDeque<LogEntry>,
    /// The cap; the oldest entries are trimmed past it (exactly, where Redis trims approximately).
    max_len: usize,
    /// The cap in bytes ([`entry_bytes`] summed): a count alone lets large entries take
    /// gigabytes (10,000 entries of 64 KB are 680 MB).
    max_bytes: usize,
    /// [`entry_bytes`] of the entries held.
    bytes: usize,
    /// The newest id ever assigned, so ids stay monotonic when the clock steps back.
    last_id: StreamId,
    /// The newest id trimmed away (Redis's `max-deleted-entry-id`): offsets before it cannot recover.
    max_deleted: StreamId,
    /// Session records, when each expires, and whether its session is live (then not resumable:
    /// its owner, this process, is alive).
    sessions: HashMap<String, Stored>,
    /// This log's identity: a new one per process.
    epoch: Epoch,
    /// Saves since the last sweep of expired records.
    saves_since_sweep: usize,
    /// Where new entries go; `None` until `start_reading`.
    sink: Option<Recipient<LogEvent>>,
    /// Keys of idempotent appends (`append_once`), bounded in number and time.
    keys: AppendKeys,
    /// `hub_idempotency_keys_evicted_total`, once [`MemoryLog::with_idempotency`] gave it.
    metrics: Option<Arc<Metrics>>,
}

/// A session record as kept.
struct Stored {
    record: SessionRecord,
    expires: Instant,
    live: bool,
}

/// Expired session records are swept after this many saves, so memory stays bounded without a timer.
const SWEEP_EVERY: usize = 1024;

/// What an entry costs the log, in bytes: its event text and attachments, its target's names, and the
/// fixed parts (the entry itself and the text's reference-count header), so that even empty entries
/// count.
pub fn entry_bytes(entry: &LogEntry) -> usize {
    let rooms = entry.target.rooms.iter().chain(&entry.target.except);
    std::mem::size_of::<LogEntry>()
        + 2 * std::mem::size_of::<usize>()
        + entry.args.len()
        + entry.attachments.iter().map(|a| a.len()).sum::<usize>()
        + entry.target.nsp.as_str().len()
        + rooms
            .map(|room| std::mem::size_of_val(room) + room.as_str().len())
            .sum::<usize>()
}

impl MemoryLog {
    /// An empty log keeping at most `max_len` entries and `max_bytes` bytes of them
    /// ([`entry_bytes`]); the oldest are trimmed past either cap.
    pub fn new(max_len: usize, max_bytes: usize) -> MemoryLog {
        MemoryLog {
            entries: VecDeque::new(),
            max_len: max_len.max(1),
            max_bytes,
            bytes: 0,
            last_id: StreamId::ZERO,
            max_deleted: StreamId::ZERO,
            sessions: HashMap::new(),
            epoch: Epoch::random(),
            saves_since_sweep: 0,
            sink: None,
            keys: AppendKeys::new(DEFAULT_IDEMPOTENCY_TTL, DEFAULT_IDEMPOTENCY_MAX_KEYS),
            metrics: None,
        }
    }

    /// Keeps idempotency keys for `ttl`, at most `max_keys` of them (past it the oldest is
    /// forgotten early, counted in `metrics`).
    pub fn with_idempotency(
        mut self,
        ttl: Duration,
        max_keys: usize,
        metrics: Arc<Metrics>,
    ) -> MemoryLog {
        self.keys = AppendKeys::new(ttl, max_keys);
        self.metrics = Some(metrics);
        self
    }

    /// `append_once` at `now` (a parameter so tests can put it on a deadline).
    fn append_once_at(
        &mut self,
        target: &Target,
        args: Arc<str>,
        key: &AppendKey,
        now: Instant,
    ) -> KeyedAppend {
        if let Some(found) = self.keys.find(key, now) {
            return found;
        }
        let id = self.append_now(target, args);
        let evicted = self.keys.remember(key, id, now);
        if evicted > 0 {
            if let Some(metrics) = &self.metrics {
                metrics.idempotency_keys_evicted.add(evicted as u64);
            }
            crate::limited_warn!(
                KEYS_EVICTED,
                "idempotency keys table full: forgot {evicted} before their time to live \
                 (raise HUB_IDEMPOTENCY_MAX_KEYS)"
            );
        }
        KeyedAppend::Appended(id)
    }

    fn append_now(&mut self, target: &Target, args: Arc<str>) -> StreamId {
        let id = StreamId::following(self.last_id, now_ms());
        self.last_id = id;
        let entry = LogEntry::event(id, target.clone(), args);
        self.bytes += entry_bytes(&entry);
        self.entries.push_back(entry.clone());
        // Trimmed from the head, as Redis trims: every entry after the newest trimmed one is still
        // here, so `max_deleted` alone keeps the resume checks exact. An entry larger than the whole
        // byte cap is trimmed at once (it was still handed on live).
        while self.entries.len() > self.max_len || self.bytes > self.max_bytes {
            let Some(trimmed) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= entry_bytes(&trimmed);
            self.max_deleted = trimmed.id;
        }
        if let Some(sink) = &self.sink {
            sink.do_send(LogEvent::Entries(vec![entry]));
        }
        id
    }

    /// The page of up to `count` entries after `after`, whoever they are for, once the offset and
    /// epoch are checked.
    fn read_after_now(
        &self,
        after: StreamId,
        count: usize,
        scope: &ReplayScope,
    ) -> Result<Vec<LogEntry>, StoreError> {
        if scope.epoch != self.epoch {
            return Err(StoreError::EpochChanged {
                expected: scope.epoch.clone(),
                found: self.epoch.to_string(),
            });
        }
        if after < self.max_deleted {
            return Err(StoreError::OffsetTrimmed(after));
        }
        if after > self.last_id {
            return Err(StoreError::OffsetAhead(after));
        }
        let start = self.entries.partition_point(|e| e.id <= after);
        Ok(self.entries.range(start..).take(count).cloned().collect())
    }

    /// [`LogBackend::read_range`], checked against the newest id trimmed (everything up to it is
    /// gone, everything after it is here) and the newest id issued.
    fn read_range_now(&self, query: &RangeQuery) -> Result<LogRange, StoreError> {
        if let Some(epoch) = query.epoch.as_ref().filter(|e| **e != self.epoch) {
            return Err(StoreError::EpochChanged {
                expected: epoch.clone(),
                found: self.epoch.to_string(),
            });
        }
        if let Some(from) = query.from {
            if from > self.last_id {
                return Err(StoreError::OffsetAhead(from));
            }
            let trimmed = match query.direction {
                Direction::Forward => from < self.max_deleted,
                Direction::Backward => {
                    self.max_deleted != StreamId::ZERO && from <= self.max_deleted
                }
            };
            if trimmed {
                return Err(StoreError::OffsetTrimmed(from));
            }
        }
        let entries: Vec<LogEntry> = match (query.direction, query.from) {
            (Direction::Forward, from) => {
                let start = from.map_or(0, |from| self.entries.partition_point(|e| e.id <= from));
                self.entries
                    .range(start..)
                    .take(query.count)
                    .cloned()
                    .collect()
            }
            (Direction::Backward, from) => {
                let end = from.map_or(self.entries.len(), |from| {
                    self.entries.partition_point(|e| e.id < from)
                });
                self.entries
                    .range(..end)
                    .rev()
                    .take(query.count)
                    .cloned()
                    .collect()
            }
        };
        Ok(LogRange {
            read: entries.len(),
            last: entries.last().map(|entry| entry.id),
            entries,
            epoch: self.epoch.clone(),
        })
    }

    /// Takes the record of `pid` if it is unexpired at `now` (it expires at its deadline, not after)
    /// and its session is not live. `now` is a parameter so tests can put it exactly on a deadline.
    fn claim_session_at(&mut self, pid: &Pid, owner: Option<&str>, now: Instant) -> Claim {
        match self.sessions.get(pid.as_str()) {
            Some(s) if s.expires > now && !s.record.owned_by(owner) => Claim::NotOwner,
            Some(stored) if stored.expires > now && stored.live => Claim::Live,
            Some(stored) if stored.expires > now => match self.sessions.remove(pid.as_str()) {
                Some(stored) => Claim::Claimed(stored.record),
                None => Claim::Absent,
            },
            Some(_) => {
                self.sessions.remove(pid.as_str());
                Claim::Absent
            }
            None => Claim::Absent,
        }
    }

    /// Saves `record` at `now`, kept for `ttl`, as a live session's or a dropped one's; every
    /// [`SWEEP_EVERY`]th save first drops the records expired at `now`. `now` is a parameter so tests
    /// can put it exactly on a deadline.
    fn save_session_at(&mut self, record: SessionRecord, ttl: Duration, now: Instant, live: bool) {
        self.saves_since_sweep += 1;
        if self.saves_since_sweep >= SWEEP_EVERY {
            self.sessions.retain(|_, stored| stored.expires > now);
            self.saves_since_sweep = 0;
        }
        let stored = Stored {
            record,
            expires: now + ttl,
            live,
        };
        self.sessions.insert(stored.record.pid.to_string(), stored);
    }
}

fn done<T: 'static>(result: Result<T, StoreError>) -> StoreFuture<T> {
    Box::pin(ready(result))
}

impl LogBackend for MemoryLog {
    fn append(&mut self, target: &Target, args: Arc<str>) -> StoreFuture<StreamId> {
        done(Ok(self.append_now(target, args)))
    }

    fn append_once(
        &mut self,
        target: &Target,
        args: Arc<str>,
        key: &AppendKey,
    ) -> StoreFuture<KeyedAppend> {
        done(Ok(self.append_once_at(target, args, key, Instant::now())))
    }

    /// Handed straight to the read loop's sink, in order with the appends (nothing is kept: a
    /// request is not an entry to replay).
    fn disconnect_sockets(&mut self, request: &DisconnectSockets) -> StoreFuture<()> {
        if let Some(sink) = &self.sink {
            sink.do_send(LogEvent::DisconnectSockets(request.clone()));
        }
        done(Ok(()))
    }

    fn probe_append(&mut self) -> StoreFuture<()> {
        done(Ok(()))
    }

    fn read_after(
        &mut self,
        after: StreamId,
        count: usize,
        scope: &ReplayScope,
    ) -> StoreFuture<LogRead> {
        // Every entry of the page counts as read (the replay pages on from `last`); the socket gets
        // those the adapter's restoreSession would replay to it.
        done(self.read_after_now(after, count, scope).map(|page| {
            LogRead {
                read: page.len(),
                bytes: page.iter().map(|entry| entry.args.len()).sum(),
                last: page.last().map(|entry| entry.id),
                entries: page
                    .into_iter()
                    .filter(|entry| scope.restores(entry))
                    .collect(),
            }
        }))
    }

    fn read_range(&mut self, query: &RangeQuery) -> StoreFuture<LogRange> {
        done(self.read_range_now(query))
    }

    fn tip(&mut self) -> StoreFuture<Position> {
        done(Ok(Position {
            id: self.last_id,
            epoch: self.epoch.clone(),
        }))
    }

    fn start_reading(&mut self, sink: Recipient<LogEvent>) -> Option<StreamId> {
        self.sink = Some(sink);
        Some(self.last_id)
    }

    fn keep_live(&mut self, record: SessionRecord, ttl: Duration) -> StoreFuture<()> {
        self.save_session_at(record, ttl, Instant::now(), true);
        done(Ok(()))
    }

    fn save_session(&mut self, record: SessionRecord, ttl: Duration) -> StoreFuture<()> {
        self.save_session_at(record, ttl, Instant::now(), false);
        done(Ok(()))
    }

    fn claim_session(&mut self, pid: &Pid, owner: Option<&str>) -> StoreFuture<Claim> {
        done(Ok(self.claim_session_at(pid, owner, Instant::now())))
    }

    fn drop_session(&mut self, pid: &Pid) -> StoreFuture<()> {
        self.sessions.remove(pid.as_str());
        done(Ok(()))
    }

    fn is_ready(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
