//! The embedded log: the same ids, trimming and recovery rules as Redis Streams, in process.
//!
//! Owns: the entries, the session records (live copies and dropped sessions' records), the id of the
//! newest trimmed entry, and the log's epoch (random per process: nothing survives a restart, so a
//! restarted log is another log).

use std::collections::{HashMap, VecDeque};
use std::future::ready;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Recipient;

use super::{
    now_ms, Claim, Epoch, LogBackend, LogEntry, LogEvent, Position, ReplayScope, SessionRecord,
    StoreError, StoreFuture,
};
use crate::protocol::ids::{Pid, StreamId};
use crate::protocol::target::Target;

/// The embedded in-process log: the same ids, trimming and recovery rules as Redis Streams, for one
/// instance without Redis. Nothing survives a restart.
pub struct MemoryLog {
    /// Entries, oldest first, at most `max_len`.
    entries: VecDeque<LogEntry>,
    /// The cap; the oldest entries are trimmed past it (exactly, where Redis trims approximately).
    max_len: usize,
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
}

/// A session record as kept.
struct Stored {
    record: SessionRecord,
    expires: Instant,
    live: bool,
}

/// Expired session records are swept after this many saves, so memory stays bounded without a timer.
const SWEEP_EVERY: usize = 1024;

impl MemoryLog {
    /// An empty log keeping at most `max_len` entries.
    pub fn new(max_len: usize) -> MemoryLog {
        MemoryLog {
            entries: VecDeque::new(),
            max_len: max_len.max(1),
            last_id: StreamId::ZERO,
            max_deleted: StreamId::ZERO,
            sessions: HashMap::new(),
            epoch: Epoch::random(),
            saves_since_sweep: 0,
            sink: None,
        }
    }

    fn append_now(&mut self, target: &Target, args: Arc<str>) -> StreamId {
        let id = StreamId::following(self.last_id, now_ms());
        self.last_id = id;
        let entry = LogEntry {
            id,
            target: target.clone(),
            args,
        };
        self.entries.push_back(entry.clone());
        while self.entries.len() > self.max_len {
            if let Some(trimmed) = self.entries.pop_front() {
                self.max_deleted = trimmed.id;
            }
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
    fn claim_session_at(&mut self, pid: &Pid, now: Instant) -> Claim {
        match self.sessions.get(pid.as_str()) {
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

    fn read_after(
        &mut self,
        after: StreamId,
        count: usize,
        scope: &ReplayScope,
    ) -> StoreFuture<Vec<LogEntry>> {
        done(self.read_after_now(after, count, scope))
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

    fn claim_session(&mut self, pid: &Pid) -> StoreFuture<Claim> {
        done(Ok(self.claim_session_at(pid, Instant::now())))
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
        let mut log = MemoryLog::new(10);
        let ids: Vec<_> = (0..5)
            .map(|n| log.append_now(&everyone(), args(n)))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert_eq!(log.last_id, ids[4]);
    }

    #[test]
    fn memory_log_reads_strictly_after_the_offset_in_batches() {
        let mut log = MemoryLog::new(10);
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
        let mut log = MemoryLog::new(3);
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
    fn memory_log_refuses_offsets_it_never_issued() {
        let mut log = MemoryLog::new(3);
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
        let mut log = MemoryLog::new(10);
        let id = log.append_now(&everyone(), args(0));
        // Another process's log (the embedded log of a restarted hub): another epoch.
        let other = MemoryLog::new(10);
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
        let mut log = MemoryLog::new(10);
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
            let mut log = MemoryLog::new(10);
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
        let mut log = MemoryLog::new(3);
        let pid = Pid::from_wire("p1");
        let now = Instant::now();
        log.save_session_at(record("p1"), Duration::from_secs(60), now, true);
        assert_eq!(log.claim_session_at(&pid, now), Claim::Live);
        assert_eq!(log.claim_session_at(&pid, now), Claim::Live, "still there");
        log.save_session_at(record("p1"), Duration::from_secs(60), now, false);
        assert_eq!(log.claim_session_at(&pid, now), claimed("p1"));
        assert_eq!(
            log.claim_session_at(&pid, now),
            Claim::Absent,
            "claimed once"
        );
    }

    #[test]
    fn memory_log_session_records_expire() {
        let mut log = MemoryLog::new(3);
        let pid = Pid::from_wire("p1");
        let now = Instant::now();
        log.save_session_at(record("p1"), Duration::from_secs(60), now, false);
        assert_eq!(log.claim_session_at(&pid, now), claimed("p1"));
        log.save_session_at(record("p1"), Duration::ZERO, now, false);
        assert_eq!(
            log.claim_session_at(&pid, now),
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
        let mut log = MemoryLog::new(3);
        let pid = Pid::from_wire("p1");
        let saved = Instant::now();
        log.save_session_at(record("p1"), Duration::from_millis(50), saved, false);
        assert_eq!(log.claim_session_at(&pid, saved), claimed("p1"));
        log.save_session_at(record("p1"), Duration::from_millis(50), saved, false);
        assert_eq!(
            log.claim_session_at(&pid, saved + Duration::from_millis(49)),
            claimed("p1")
        );
        log.save_session_at(record("p1"), Duration::from_millis(50), saved, false);
        assert_eq!(
            log.claim_session_at(&pid, saved + Duration::from_millis(50)),
            Claim::Absent
        );
        assert!(log.sessions.is_empty(), "removed when read at its deadline");
    }

    #[test]
    fn memory_log_session_record_past_its_deadline_does_not_load() {
        let mut log = MemoryLog::new(3);
        let pid = Pid::from_wire("p1");
        let saved = Instant::now();
        log.save_session_at(record("p1"), Duration::from_millis(50), saved, false);
        assert_eq!(
            log.claim_session_at(&pid, saved + Duration::from_millis(51)),
            Claim::Absent
        );
    }

    #[test]
    fn memory_log_sweeps_expired_records_on_the_sweep_every_th_save_even_if_never_read() {
        let mut log = MemoryLog::new(3);
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
        let mut log = MemoryLog::new(10);
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

    #[test]
    fn memory_log_is_ready() {
        assert!(MemoryLog::new(1).is_ready());
    }
}
