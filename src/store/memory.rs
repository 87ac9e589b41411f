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
    now_ms, AppendKey, Claim, Epoch, KeyedAppend, LogBackend, LogEntry, LogEvent, LogRead,
    Position, ReplayScope, SessionRecord, StoreError, StoreFuture, DEFAULT_IDEMPOTENCY_MAX_KEYS,
    DEFAULT_IDEMPOTENCY_TTL,
};
use crate::log_limit::LimitedLog;
use crate::metrics::Metrics;
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

/// What an entry costs the log, in bytes: its event text, its target's names, and the fixed parts
/// (the entry itself and the text's reference-count header), so that even empty entries count.
pub fn entry_bytes(entry: &LogEntry) -> usize {
    let rooms = entry.target.rooms.iter().chain(&entry.target.except);
    std::mem::size_of::<LogEntry>()
        + 2 * std::mem::size_of::<usize>()
        + entry.args.len()
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
        let entry = LogEntry {
            id,
            target: target.clone(),
            args,
        };
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
        let batch: Vec<LogEntry> = self.entries.range(start..).take(count).cloned().collect();
        if let Some(held) = batch
            .iter()
            .find(|e| !scope.replays(&e.target) && scope.addressed(&e.target))
        {
            return Err(StoreError::Unreplayable(held.id));
        }
        Ok(batch)
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

    fn probe_append(&mut self) -> StoreFuture<()> {
        done(Ok(()))
    }

    fn read_after(
        &mut self,
        after: StreamId,
        count: usize,
        scope: &ReplayScope,
    ) -> StoreFuture<LogRead> {
        done(
            self.read_after_now(after, count, scope)
                .map(|entries| LogRead {
                    read: entries.len(),
                    bytes: entries.iter().map(|entry| entry.args.len()).sum(),
                    last: entries.last().map(|entry| entry.id),
                    entries,
                }),
        )
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
mod tests {
    use super::*;
    use crate::protocol::ids::Sid;

    fn everyone() -> Target {
        Target::broadcast(crate::protocol::target::Namespace::main())
    }

    fn args(n: u32) -> Arc<str> {
        Arc::from(format!("[\"n\",{n}]"))
    }

    #[test]
    fn memory_log_assigns_increasing_ids() {
        let mut log = MemoryLog::new(10, usize::MAX);
        let ids: Vec<_> = (0..5)
            .map(|n| log.append_now(&everyone(), args(n)))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert_eq!(log.last_id, ids[4]);
    }

    #[test]
    fn memory_log_reads_strictly_after_the_offset_in_batches() {
        let mut log = MemoryLog::new(10, usize::MAX);
        let ids: Vec<_> = (0..5)
            .map(|n| log.append_now(&everyone(), args(n)))
            .collect();
        let batch = log.read_after_now(ids[1], 2, &scope(&log)).unwrap();
        assert_eq!(
            batch.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![ids[2], ids[3]]
        );
        assert_eq!(&*batch[0].args, "[\"n\",2]");
        assert_eq!(log.read_after_now(ids[4], 2, &scope(&log)).unwrap(), vec![]);
        assert_eq!(
            log.read_after_now(StreamId::ZERO, 100, &scope(&log))
                .unwrap()
                .len(),
            5
        );
    }

    #[test]
    fn memory_log_trims_to_max_len_and_refuses_trimmed_offsets() {
        let mut log = MemoryLog::new(3, usize::MAX);
        let ids: Vec<_> = (0..5)
            .map(|n| log.append_now(&everyone(), args(n)))
            .collect();
        assert_eq!(log.entries.len(), 3);
        assert_eq!(
            log.read_after_now(ids[0], 10, &scope(&log)),
            Err(StoreError::OffsetTrimmed(ids[0]))
        );
        assert_eq!(
            log.read_after_now(StreamId::ZERO, 10, &scope(&log)),
            Err(StoreError::OffsetTrimmed(StreamId::ZERO))
        );
        // The newest trimmed entry is the client's last one: everything after it is still there.
        assert_eq!(
            log.read_after_now(ids[1], 10, &scope(&log)).unwrap().len(),
            3
        );
    }

    #[test]
    fn memory_log_trims_to_max_bytes_and_refuses_exactly_the_trimmed_offsets() {
        let big =
            |n: u32| -> Arc<str> { Arc::from(format!("[\"n\",{n},\"{}\"]", "x".repeat(1000))) };
        let one = entry_bytes(&LogEntry {
            id: StreamId::ZERO,
            target: everyone(),
            args: big(0),
        });
        // Room for three entries and a half, whatever the count cap.
        let mut log = MemoryLog::new(1000, one * 7 / 2);
        let ids: Vec<_> = (0..10)
            .map(|n| log.append_now(&everyone(), big(n)))
            .collect();
        assert_eq!(
            log.entries.len(),
            3,
            "the byte cap trims, the count cap does not"
        );
        assert_eq!(log.bytes, 3 * one);
        assert!(log.bytes <= log.max_bytes);
        // ids[6] is the newest trimmed: resuming from it misses nothing, from ids[5] it would.
        assert_eq!(
            log.read_after_now(ids[5], 10, &scope(&log)),
            Err(StoreError::OffsetTrimmed(ids[5]))
        );
        let after = log.read_after_now(ids[6], 10, &scope(&log)).unwrap();
        assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), ids[7..]);
        // An entry larger than the whole cap: trimmed at once, with everything before it.
        let huge: Arc<str> = Arc::from(format!("[\"{}\"]", "y".repeat(one * 4)));
        let id = log.append_now(&everyone(), huge);
        assert!(log.entries.is_empty() && log.bytes == 0);
        assert_eq!(
            log.read_after_now(id, 10, &scope(&log)),
            Ok(vec![]),
            "the tip is not trimmed away"
        );
        assert_eq!(
            log.read_after_now(ids[9], 10, &scope(&log)),
            Err(StoreError::OffsetTrimmed(ids[9]))
        );
    }

    #[test]
    fn memory_log_refuses_offsets_it_never_issued() {
        let mut log = MemoryLog::new(3, usize::MAX);
        let id = log.append_now(&everyone(), args(0));
        let ahead = StreamId::new(id.ms + 1000, 0);
        assert_eq!(
            log.read_after_now(ahead, 10, &scope(&log)),
            Err(StoreError::OffsetAhead(ahead))
        );
    }

    fn scope(log: &MemoryLog) -> ReplayScope {
        ReplayScope {
            epoch: log.epoch.clone(),
            nsp: crate::protocol::target::Namespace::main(),
            rooms: vec!["s1".into()],
        }
    }

    fn record(pid: &str) -> SessionRecord {
        SessionRecord::new(&Sid::from_wire("s1"), &Pid::from_wire(pid), None)
    }

    fn claimed(pid: &str) -> Claim {
        Claim::Claimed(record(pid))
    }

    #[test]
    fn memory_log_refuses_a_replay_under_another_epoch() {
        let mut log = MemoryLog::new(10, usize::MAX);
        let id = log.append_now(&everyone(), args(0));
        // Another process's log (the embedded log of a restarted hub): another epoch.
        let other = MemoryLog::new(10, usize::MAX);
        assert_eq!(
            log.read_after_now(StreamId::ZERO, 10, &scope(&other)),
            Err(StoreError::EpochChanged {
                expected: other.epoch.clone(),
                found: log.epoch.to_string(),
            })
        );
        assert_eq!(
            log.read_after_now(StreamId::ZERO, 10, &scope(&log))
                .unwrap()[0]
                .id,
            id
        );
    }

    #[test]
    fn memory_log_refuses_a_replay_across_an_entry_addressed_to_the_socket_that_is_not_a_broadcast()
    {
        use crate::protocol::target::Room;
        let mut log = MemoryLog::new(10, usize::MAX);
        let to = |rooms: &[&str], except: &[&str]| Target {
            rooms: rooms.iter().map(|r| Room::from(*r)).collect(),
            except: except.iter().map(|r| Room::from(*r)).collect(),
            ..everyone()
        };
        let before = log.append_now(&everyone(), args(0));
        // Not for socket s1: read (and skipped by the replay), never refused.
        log.append_now(&to(&["elsewhere"], &[]), args(1));
        log.append_now(&to(&[], &["s1"]), args(2));
        assert_eq!(
            log.read_after_now(before, 10, &scope(&log))
                .map(|b| b.len()),
            Ok(2)
        );
        // For s1 (its own room; everyone but another room): refused.
        for target in [to(&["s1"], &[]), to(&[], &["elsewhere"])] {
            let mut log = MemoryLog::new(10, usize::MAX);
            let before = log.append_now(&everyone(), args(0));
            let held = log.append_now(&target, args(1));
            assert_eq!(
                log.read_after_now(before, 10, &scope(&log)),
                Err(StoreError::Unreplayable(held)),
                "{target:?}"
            );
        }
    }

    #[test]
    fn memory_log_session_record_of_a_live_session_is_not_claimable_and_a_dropped_one_is_claimed_once(
    ) {
        let mut log = MemoryLog::new(3, usize::MAX);
        let pid = Pid::from_wire("p1");
        let now = Instant::now();
        log.save_session_at(record("p1"), Duration::from_secs(60), now, true);
        assert_eq!(log.claim_session_at(&pid, None, now), Claim::Live);
        let again = log.claim_session_at(&pid, None, now);
        assert_eq!(again, Claim::Live, "still there");
        log.save_session_at(record("p1"), Duration::from_secs(60), now, false);
        assert_eq!(log.claim_session_at(&pid, None, now), claimed("p1"));
        assert_eq!(
            log.claim_session_at(&pid, None, now),
            Claim::Absent,
            "claimed once"
        );
    }

    #[test]
    fn memory_log_session_records_expire() {
        let mut log = MemoryLog::new(3, usize::MAX);
        let pid = Pid::from_wire("p1");
        let now = Instant::now();
        log.save_session_at(record("p1"), Duration::from_secs(60), now, false);
        assert_eq!(log.claim_session_at(&pid, None, now), claimed("p1"));
        log.save_session_at(record("p1"), Duration::ZERO, now, false);
        assert_eq!(
            log.claim_session_at(&pid, None, now),
            Claim::Absent,
            "ttl zero: expired at once"
        );
        assert!(
            log.sessions.is_empty(),
            "an expired record is removed when read"
        );
    }

    #[test]
    fn memory_log_session_record_loads_before_its_deadline_and_not_at_it() {
        let mut log = MemoryLog::new(3, usize::MAX);
        let pid = Pid::from_wire("p1");
        let saved = Instant::now();
        log.save_session_at(record("p1"), Duration::from_millis(50), saved, false);
        assert_eq!(log.claim_session_at(&pid, None, saved), claimed("p1"));
        log.save_session_at(record("p1"), Duration::from_millis(50), saved, false);
        assert_eq!(
            log.claim_session_at(&pid, None, saved + Duration::from_millis(49)),
            claimed("p1")
        );
        log.save_session_at(record("p1"), Duration::from_millis(50), saved, false);
        assert_eq!(
            log.claim_session_at(&pid, None, saved + Duration::from_millis(50)),
            Claim::Absent
        );
        assert!(log.sessions.is_empty(), "removed when read at its deadline");
    }

    #[test]
    fn memory_log_session_record_past_its_deadline_does_not_load() {
        let mut log = MemoryLog::new(3, usize::MAX);
        let pid = Pid::from_wire("p1");
        let saved = Instant::now();
        log.save_session_at(record("p1"), Duration::from_millis(50), saved, false);
        assert_eq!(
            log.claim_session_at(&pid, None, saved + Duration::from_millis(51)),
            Claim::Absent
        );
    }

    #[test]
    fn memory_log_sweeps_expired_records_on_the_sweep_every_th_save_even_if_never_read() {
        let mut log = MemoryLog::new(3, usize::MAX);
        let t0 = Instant::now();
        let sweep_at = t0 + Duration::from_millis(50);
        log.save_session_at(record("expired"), Duration::ZERO, t0, false);
        log.save_session_at(record("at-deadline"), Duration::from_millis(50), t0, false);
        log.save_session_at(record("live"), Duration::from_secs(60), t0, false);
        // Saves 4 to SWEEP_EVERY - 1, all of one pid: no sweep yet.
        for _ in 4..SWEEP_EVERY {
            log.save_session_at(record("filler"), Duration::from_secs(60), sweep_at, false);
        }
        let mut pids: Vec<&str> = log.sessions.keys().map(String::as_str).collect();
        pids.sort_unstable();
        assert_eq!(pids, ["at-deadline", "expired", "filler", "live"]);

        // Save number SWEEP_EVERY sweeps first: what expired by `sweep_at` goes, the rest stays.
        log.save_session_at(record("filler"), Duration::from_secs(60), sweep_at, false);
        let mut pids: Vec<&str> = log.sessions.keys().map(String::as_str).collect();
        pids.sort_unstable();
        assert_eq!(pids, ["filler", "live"]);
        assert_eq!(log.saves_since_sweep, 0);
    }

    /// Forwards what the log hands on into a channel the test reads.
    struct Sink(tokio::sync::mpsc::UnboundedSender<LogEvent>);

    impl actix::Actor for Sink {
        type Context = actix::Context<Self>;
    }

    impl actix::Handler<LogEvent> for Sink {
        type Result = ();
        fn handle(&mut self, event: LogEvent, _: &mut Self::Context) {
            let _ = self.0.send(event);
        }
    }

    #[actix::test]
    async fn memory_log_starts_reading_after_its_newest_entry_and_hands_on_later_appends() {
        use actix::Actor;
        let mut log = MemoryLog::new(10, usize::MAX);
        log.append_now(&everyone(), args(0));
        let newest = log.append_now(&everyone(), args(1));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        assert_eq!(
            log.start_reading(Sink(tx).start().recipient()),
            Some(newest)
        );

        let admin = Target::broadcast(crate::protocol::target::Namespace::from("/admin"));
        let appended = log.append_now(&admin, args(2));
        let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("waited 5 s for the appended entry")
            .expect("the channel stays open");
        let expected = LogEntry {
            id: appended,
            target: admin,
            args: args(2),
        };
        match event {
            LogEvent::Entries(entries) => assert_eq!(entries, vec![expected]),
            other => panic!("expected the appended entry, got {other:?}"),
        }
    }

    fn append_key(key: &str, fingerprint: &str) -> AppendKey {
        AppendKey {
            key: key.into(),
            fingerprint: fingerprint.into(),
            receipt: format!("receipt-{key}"),
        }
    }

    #[test]
    fn memory_log_appends_a_key_once_and_answers_retries_with_the_first_id() {
        let mut log = MemoryLog::new(10, usize::MAX);
        let now = Instant::now();
        let first = log.append_once_at(&everyone(), args(0), &append_key("k", "f"), now);
        let KeyedAppend::Appended(id) = first else {
            panic!("expected an append, got {first:?}")
        };
        let retry = log.append_once_at(&everyone(), args(1), &append_key("k", "f"), now);
        assert_eq!(
            retry,
            KeyedAppend::Replayed {
                receipt: "receipt-k".into(),
                id
            }
        );
        let other = log.append_once_at(&everyone(), args(2), &append_key("k", "g"), now);
        assert_eq!(other, KeyedAppend::Conflict);
        assert_eq!(log.entries.len(), 1, "retries append nothing");
        // Another key appends.
        let next = log.append_once_at(&everyone(), args(3), &append_key("k2", "f"), now);
        assert!(matches!(next, KeyedAppend::Appended(n) if n > id));
    }

    #[test]
    fn memory_log_appends_a_key_again_after_its_time_to_live() {
        let metrics = Arc::new(Metrics::default());
        let ttl = Duration::from_millis(50);
        let mut log = MemoryLog::new(10, usize::MAX).with_idempotency(ttl, 10, metrics);
        let t0 = Instant::now();
        log.append_once_at(&everyone(), args(0), &append_key("k", "f"), t0);
        let later = log.append_once_at(&everyone(), args(1), &append_key("k", "f"), t0 + ttl);
        assert!(matches!(later, KeyedAppend::Appended(_)), "{later:?}");
        assert_eq!(log.entries.len(), 2);
    }

    #[test]
    fn memory_log_counts_keys_forgotten_past_its_bound() {
        let metrics = Arc::new(Metrics::default());
        let mut log = MemoryLog::new(10, usize::MAX).with_idempotency(
            Duration::from_secs(60),
            2,
            metrics.clone(),
        );
        let now = Instant::now();
        for k in ["a", "b", "c"] {
            log.append_once_at(&everyone(), args(0), &append_key(k, "f"), now);
        }
        assert_eq!(metrics.idempotency_keys_evicted.get(), 1);
        let again = log.append_once_at(&everyone(), args(0), &append_key("a", "f"), now);
        assert!(matches!(again, KeyedAppend::Appended(_)), "{again:?}");
    }

    #[test]
    fn memory_log_is_ready() {
        assert!(MemoryLog::new(1, usize::MAX).is_ready());
    }
}
