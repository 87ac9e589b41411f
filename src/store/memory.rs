//! The embedded log: the same ids, trimming and recovery rules as Redis Streams, in process.
//!
//! Owns: the entries, the session records, the id of the newest trimmed entry.

use std::collections::{HashMap, VecDeque};
use std::future::ready;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Recipient;

use super::{now_ms, LogBackend, LogEntry, LogEvent, SessionRecord, StoreError, StoreFuture};
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
    /// Session records and when each expires.
    sessions: HashMap<String, (SessionRecord, Instant)>,
    /// Saves since the last sweep of expired records.
    saves_since_sweep: usize,
    /// Where new entries go; `None` until `start_reading`.
    sink: Option<Recipient<LogEvent>>,
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

    fn read_after_now(&self, after: StreamId, count: usize) -> Result<Vec<LogEntry>, StoreError> {
        if after < self.max_deleted {
            return Err(StoreError::OffsetTrimmed(after));
        }
        if after > self.last_id {
            return Err(StoreError::OffsetAhead(after));
        }
        let start = self.entries.partition_point(|e| e.id <= after);
        Ok(self.entries.range(start..).take(count).cloned().collect())
    }

    fn load_session_now(&mut self, pid: &Pid) -> Option<SessionRecord> {
        match self.sessions.get(pid.as_str()) {
            Some((record, expires)) if *expires > Instant::now() => Some(record.clone()),
            Some(_) => {
                self.sessions.remove(pid.as_str());
                None
            }
            None => None,
        }
    }

    fn save_session_now(&mut self, record: SessionRecord, ttl: Duration) {
        self.saves_since_sweep += 1;
        if self.saves_since_sweep >= SWEEP_EVERY {
            let now = Instant::now();
            self.sessions.retain(|_, (_, expires)| *expires > now);
            self.saves_since_sweep = 0;
        }
        self.sessions
            .insert(record.pid.to_string(), (record, Instant::now() + ttl));
    }
}

fn done<T: 'static>(result: Result<T, StoreError>) -> StoreFuture<T> {
    Box::pin(ready(result))
}

impl LogBackend for MemoryLog {
    fn append(&mut self, target: &Target, args: Arc<str>) -> StoreFuture<StreamId> {
        done(Ok(self.append_now(target, args)))
    }

    fn read_after(&mut self, after: StreamId, count: usize) -> StoreFuture<Vec<LogEntry>> {
        done(self.read_after_now(after, count))
    }

    fn tip(&mut self) -> StoreFuture<StreamId> {
        done(Ok(self.last_id))
    }

    fn start_reading(&mut self, sink: Recipient<LogEvent>) -> Option<StreamId> {
        self.sink = Some(sink);
        Some(self.last_id)
    }

    fn save_session(&mut self, record: SessionRecord, ttl: Duration) -> StoreFuture<()> {
        self.save_session_now(record, ttl);
        done(Ok(()))
    }

    fn load_session(&mut self, pid: &Pid) -> StoreFuture<Option<SessionRecord>> {
        done(Ok(self.load_session_now(pid)))
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
        let batch = log.read_after_now(ids[1], 2).unwrap();
        assert_eq!(
            batch.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![ids[2], ids[3]]
        );
        assert_eq!(&*batch[0].args, "[\"n\",2]");
        assert_eq!(log.read_after_now(ids[4], 2).unwrap(), vec![]);
        assert_eq!(log.read_after_now(StreamId::ZERO, 100).unwrap().len(), 5);
    }

    #[test]
    fn memory_log_trims_to_max_len_and_refuses_trimmed_offsets() {
        let mut log = MemoryLog::new(3);
        let ids: Vec<_> = (0..5)
            .map(|n| log.append_now(&everyone(), args(n)))
            .collect();
        assert_eq!(log.entries.len(), 3);
        assert_eq!(
            log.read_after_now(ids[0], 10),
            Err(StoreError::OffsetTrimmed(ids[0]))
        );
        assert_eq!(
            log.read_after_now(StreamId::ZERO, 10),
            Err(StoreError::OffsetTrimmed(StreamId::ZERO))
        );
        // The newest trimmed entry is the client's last one: everything after it is still there.
        assert_eq!(log.read_after_now(ids[1], 10).unwrap().len(), 3);
    }

    #[test]
    fn memory_log_refuses_offsets_it_never_issued() {
        let mut log = MemoryLog::new(3);
        let id = log.append_now(&everyone(), args(0));
        let ahead = StreamId::new(id.ms + 1000, 0);
        assert_eq!(
            log.read_after_now(ahead, 10),
            Err(StoreError::OffsetAhead(ahead))
        );
    }

    #[test]
    fn memory_log_session_records_expire() {
        let mut log = MemoryLog::new(3);
        let pid = Pid::from_wire("p1");
        let record = SessionRecord::new(&crate::protocol::ids::Sid::from_wire("s1"), &pid);
        log.save_session_now(record.clone(), Duration::from_secs(60));
        assert_eq!(log.load_session_now(&pid), Some(record.clone()));
        log.save_session_now(record, Duration::ZERO);
        assert_eq!(log.load_session_now(&pid), None);
        assert!(
            log.sessions.is_empty(),
            "an expired record is removed when read"
        );
    }
}
