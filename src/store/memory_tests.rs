//! The embedded log's unit tests: bounds, expiry, epochs, claims, idempotent appends.

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
    let big = |n: u32| -> Arc<str> { Arc::from(format!("[\"n\",{n},\"{}\"]", "x".repeat(1000))) };
    let one = entry_bytes(&LogEntry::event(StreamId::ZERO, everyone(), big(0)));
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

#[actix::test]
async fn memory_log_replays_the_entries_addressed_to_the_socket_by_its_rooms_and_no_others() {
    use crate::protocol::target::Room;
    let mut log = MemoryLog::new(10, usize::MAX);
    let to = |rooms: &[&str], except: &[&str]| Target {
        rooms: rooms.iter().map(|r| Room::from(*r)).collect(),
        except: except.iter().map(|r| Room::from(*r)).collect(),
        ..everyone()
    };
    let before = log.append_now(&everyone(), args(0));
    // Socket s1 (scope: rooms ["s1"]): its own room, everyone but another room, everyone; not a
    // room it is not in, not an except of its room, not another namespace.
    let own = log.append_now(&to(&["s1"], &[]), args(1));
    log.append_now(&to(&["elsewhere"], &[]), args(2));
    let others_excepted = log.append_now(&to(&[], &["elsewhere"]), args(3));
    log.append_now(&to(&[], &["s1"]), args(4));
    log.append_now(&to(&["s1"], &["s1"]), args(5));
    let admin = Target::broadcast(crate::protocol::target::Namespace::from("/admin"));
    log.append_now(&admin, args(6));
    let all = log.append_now(&everyone(), args(7));
    let read = log.read_after(before, 10, &scope(&log)).await.unwrap();
    let ids: Vec<_> = read.entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, [own, others_excepted, all]);
    assert_eq!(read.read, 7, "every entry of the page counts as read");
    assert_eq!(read.last, Some(all));
}

#[test]
fn memory_log_session_record_of_a_live_session_is_not_claimable_and_a_dropped_one_is_claimed_once()
{
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
    let expected = LogEntry::event(appended, admin, args(2));
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

#[test]
fn memory_log_reads_ranges_both_ways_and_refuses_trimmed_foreign_and_ahead_bounds() {
    let mut log = MemoryLog::new(3, usize::MAX);
    let ids: Vec<_> = (0..5)
        .map(|n| log.append_now(&everyone(), args(n)))
        .collect();
    let read = |log: &MemoryLog, direction, from, epoch: Option<Epoch>| {
        let query = RangeQuery {
            direction,
            from,
            count: 2,
            epoch,
        };
        log.read_range_now(&query)
            .map(|range| range.entries.iter().map(|e| e.id).collect::<Vec<_>>())
    };
    use Direction::{Backward, Forward};
    assert_eq!(read(&log, Backward, None, None), Ok(vec![ids[4], ids[3]]));
    assert_eq!(
        read(&log, Backward, Some(ids[4]), None),
        Ok(vec![ids[3], ids[2]])
    );
    assert_eq!(read(&log, Backward, Some(ids[2]), None), Ok(vec![]));
    assert_eq!(
        read(&log, Forward, Some(ids[1]), None),
        Ok(vec![ids[2], ids[3]])
    );
    let epoch = Some(log.epoch.clone());
    assert_eq!(read(&log, Forward, Some(ids[3]), epoch), Ok(vec![ids[4]]));
    // ids[1] is the newest trimmed: nothing after it is lost, everything before it is.
    assert_eq!(
        read(&log, Backward, Some(ids[1]), None),
        Err(StoreError::OffsetTrimmed(ids[1]))
    );
    assert_eq!(
        read(&log, Forward, Some(ids[0]), None),
        Err(StoreError::OffsetTrimmed(ids[0]))
    );
    let ahead = StreamId::new(ids[4].ms + 1, 0);
    assert_eq!(
        read(&log, Forward, Some(ahead), None),
        Err(StoreError::OffsetAhead(ahead))
    );
    assert!(matches!(
        read(&log, Backward, None, Some(Epoch::from("other"))),
        Err(StoreError::EpochChanged { .. })
    ));
}
