//! Recovery on the embedded log: resumes, refusals, pages, the replay cap, refreshes.

use super::*;
use crate::actors::hub::Hub;
use crate::actors::stream_bridge::Publish;
use crate::protocol::ids::StreamId;
use crate::protocol::offset::Offset;
use crate::protocol::target::Target;
use crate::store::MemoryLog;

fn start(max_len: usize, window: Duration) -> (Addr<StreamBridge>, Addr<Recovery>) {
    let metrics = Arc::new(Metrics::default());
    let hub = Hub::new(1 << 20, metrics.clone()).start();
    let log = Box::new(MemoryLog::new(max_len, usize::MAX));
    let bridge = StreamBridge::new(log, hub, metrics.clone()).start();
    (
        bridge.clone(),
        Recovery::new(bridge, window, CLAIM_WAIT, metrics).start(),
    )
}

/// Short, so that tests of a live session's resume end soon.
const CLAIM_WAIT: Duration = Duration::from_millis(200);

fn fresh() -> Open {
    Open {
        nsp: Namespace::main(),
        pid: None,
        offset: None,
        owner: None,
        stays: RoomCheck::any(),
    }
}

/// The session drops: its record becomes resumable (what the Session does on a lost transport).
async fn dropped(recovery: &Addr<Recovery>, opened: &Opened) {
    recovery.send(Release(opened.record.clone())).await.unwrap();
}

async fn publish(bridge: &Addr<StreamBridge>, nsp: &str, n: usize) -> StreamId {
    let args: Arc<str> = Arc::from(format!("[\"n\",{n}]"));
    bridge
        .send(Publish {
            target: Target::broadcast(Namespace::from(nsp)),
            args,
            source: crate::notification::Source::Http,
        })
        .await
        .unwrap()
        .unwrap()
}

fn open(pid: &Pid, offset: impl std::fmt::Display) -> Open {
    Open {
        nsp: Namespace::main(),
        pid: Some(pid.to_string()),
        offset: Some(offset.to_string()),
        owner: None,
        stays: RoomCheck::any(),
    }
}

#[actix::test]
async fn recovery_replays_every_missed_entry_of_the_namespace_in_order() {
    let (bridge, recovery) = start(10_000, Duration::from_secs(60));
    let first = recovery
        .send(Open {
            nsp: Namespace::main(),
            pid: None,
            offset: None,
            owner: None,
            stays: RoomCheck::any(),
        })
        .await
        .unwrap();
    assert!(!first.recovered);
    let offset = first.offset.clone().unwrap();
    dropped(&recovery, &first).await;
    let mut expected = Vec::new();
    for n in 0..(REPLAY_BATCH * 2 + 7) {
        let id = publish(&bridge, if n % 10 == 3 { "/other" } else { "/" }, n).await;
        if n % 10 != 3 {
            expected.push(id);
        }
    }
    let resumed = recovery.send(open(&first.pid, offset)).await.unwrap();
    assert!(resumed.recovered);
    assert_eq!((resumed.sid, resumed.pid), (first.sid, first.pid));
    let (replayed, _) = read_all(&recovery, resumed.missed, resumed.more).await;
    assert_eq!(replayed, expected);
}

/// Every page of a replay, read on until one reaches the log's end: the ids, and the pages read.
async fn read_all(
    recovery: &Addr<Recovery>,
    first: Vec<LogEntry>,
    mut more: Option<ReplayCursor>,
) -> (Vec<StreamId>, usize) {
    let mut ids: Vec<StreamId> = first.iter().map(|e| e.id).collect();
    let mut pages = 1;
    while let Some(cursor) = more {
        let page = recovery.send(ReadMissed(cursor)).await.unwrap().unwrap();
        ids.extend(page.missed.iter().map(|e| e.id));
        more = page.more;
        pages += 1;
    }
    (ids, pages)
}

#[test]
fn recovery_sizes_each_page_to_about_the_page_bytes() {
    assert_eq!(
        next_page_count(0, 0),
        FIRST_PAGE,
        "nothing read: start small"
    );
    assert_eq!(next_page_count(8, 8 * 60_000), REPLAY_PAGE_BYTES / 60_000);
    assert_eq!(
        next_page_count(8, 8 * 40),
        REPLAY_BATCH,
        "small entries: a full batch"
    );
    assert_eq!(
        next_page_count(1, 4 << 20),
        1,
        "an entry over the page: one at a time"
    );
}

#[actix::test]
async fn recovery_reads_a_replay_page_by_page_and_refuses_a_page_trimmed_meanwhile() {
    let (bridge, recovery) = start(50, Duration::from_secs(60));
    let first = recovery
        .send(Open {
            nsp: Namespace::main(),
            pid: None,
            offset: None,
            owner: None,
            stays: RoomCheck::any(),
        })
        .await
        .unwrap();
    dropped(&recovery, &first).await;
    for n in 0..40 {
        publish(&bridge, "/", n).await;
    }
    let resumed = recovery
        .send(open(&first.pid, first.offset.clone().unwrap()))
        .await
        .unwrap();
    assert!(resumed.recovered);
    assert_eq!(
        resumed.missed.len(),
        FIRST_PAGE,
        "the answer holds one page, not the backlog"
    );
    let cursor = resumed.more.clone().expect("more pages to read");
    assert_eq!(cursor.after, Offset::one(resumed.missed.last().unwrap().id));
    // The log moves on under the replay: 30 more entries trim what the cursor still has to read.
    for n in 40..70 {
        publish(&bridge, "/", n).await;
    }
    assert_eq!(
        recovery.send(ReadMissed(cursor.clone())).await.unwrap(),
        Err(StoreError::OffsetTrimmed(cursor.after.id(0))),
        "a page after a trim is refused, never skipped over"
    );
}

#[actix::test]
async fn recovery_caps_replays_at_once_and_opens_a_fresh_session_past_the_wait() {
    let metrics = Arc::new(Metrics::default());
    let hub = Hub::new(1 << 20, metrics.clone()).start();
    let log = Box::new(MemoryLog::new(100, usize::MAX));
    let bridge = StreamBridge::new(log, hub, metrics.clone()).start();
    let recovery = Recovery::new(
        bridge.clone(),
        Duration::from_secs(60),
        CLAIM_WAIT,
        metrics.clone(),
    )
    .with_replay_slots(1, Duration::from_millis(50))
    .start();
    let fresh = |recovery: &Addr<Recovery>| {
        recovery.send(Open {
            nsp: Namespace::main(),
            pid: None,
            offset: None,
            owner: None,
            stays: RoomCheck::any(),
        })
    };
    let (a, b) = (
        fresh(&recovery).await.unwrap(),
        fresh(&recovery).await.unwrap(),
    );
    let c = fresh(&recovery).await.unwrap();
    for opened in [&a, &b, &c] {
        dropped(&recovery, opened).await;
    }
    publish(&bridge, "/", 0).await;
    let holding = recovery
        .send(open(&a.pid, a.offset.unwrap()))
        .await
        .unwrap();
    assert!(holding.recovered && holding.slot.is_some());
    let refused = recovery
        .send(open(&b.pid, b.offset.unwrap()))
        .await
        .unwrap();
    assert!(
        !refused.recovered,
        "no slot within the wait: a fresh session"
    );
    assert_ne!(refused.pid, b.pid);
    assert_eq!(metrics.replays_refused.get(), 1);
    // The replay written (its slot dropped), the next resume gets the slot.
    drop(holding);
    let resumed = recovery
        .send(open(&c.pid, c.offset.unwrap()))
        .await
        .unwrap();
    assert!(resumed.recovered, "the slot is free again");
    assert_eq!(metrics.replays_refused.get(), 1);
}

#[actix::test]
async fn recovery_opens_a_fresh_session_for_unknown_pid_malformed_or_trimmed_offset() {
    let (bridge, recovery) = start(3, Duration::from_secs(60));
    let first = recovery
        .send(Open {
            nsp: Namespace::main(),
            pid: None,
            offset: None,
            owner: None,
            stays: RoomCheck::any(),
        })
        .await
        .unwrap();
    let offset = publish(&bridge, "/", 0).await;
    let refused = [
        open(&Pid::from_wire("nobody"), offset),
        open(&first.pid, "not-an-offset"),
        open(&first.pid, StreamId::new(offset.ms + 60_000, 0)),
    ];
    for msg in refused {
        // Released again each time: a failed resume consumes the record, as Node's GETDEL does.
        dropped(&recovery, &first).await;
        let fresh = recovery.send(msg).await.unwrap();
        assert!(!fresh.recovered);
        assert_ne!(fresh.sid, first.sid);
    }
    for n in 1..5 {
        publish(&bridge, "/", n).await;
    }
    dropped(&recovery, &first).await;
    let trimmed = recovery.send(open(&first.pid, offset)).await.unwrap();
    assert!(
        !trimmed.recovered && trimmed.missed.is_empty(),
        "a trimmed offset never replays partially"
    );
}

#[actix::test]
async fn recovery_refuses_a_session_whose_window_expired_and_one_forgotten() {
    let (_bridge, recovery) = start(10, Duration::from_millis(50));
    let first = recovery
        .send(Open {
            nsp: Namespace::main(),
            pid: None,
            offset: None,
            owner: None,
            stays: RoomCheck::any(),
        })
        .await
        .unwrap();
    dropped(&recovery, &first).await;
    actix::clock::sleep(Duration::from_millis(80)).await;
    let late = recovery
        .send(open(&first.pid, first.offset.clone().unwrap()))
        .await
        .unwrap();
    assert!(!late.recovered);

    // Dropped, then forgotten: the forget is what refuses the resume.
    dropped(&recovery, &late).await;
    recovery.send(Forget(late.pid.clone())).await.unwrap();
    let forgotten = recovery
        .send(open(&late.pid, late.offset.unwrap()))
        .await
        .unwrap();
    assert!(!forgotten.recovered);
}

#[actix::test]
async fn recovery_counts_every_failed_refresh_and_reports_them_once_per_interval() {
    let (bridge, _) = start(10, Duration::from_secs(60));
    let metrics = Arc::new(Metrics::default());
    let mut recovery = Recovery::new(bridge, Duration::from_secs(60), CLAIM_WAIT, metrics.clone());
    let down = || StoreError::Unavailable("down".into());
    recovery.refresh_failed(down());
    assert_eq!(metrics.record_refreshes_failed.get(), 1);
    assert_eq!(
        recovery.failed_refreshes, 0,
        "the first is reported at once"
    );
    let reported = recovery.last_refresh_warning.expect("reported");
    recovery.refresh_failed(down());
    recovery.refresh_failed(down());
    assert_eq!(metrics.record_refreshes_failed.get(), 3);
    assert_eq!(
        recovery.failed_refreshes, 2,
        "within the interval: counted for the next report"
    );
    assert_eq!(recovery.last_refresh_warning, Some(reported));
    // An interval later, the next failure reports the count and starts over.
    let earlier = reported.checked_sub(REFRESH_WARNING_EVERY).expect("uptime");
    recovery.last_refresh_warning = Some(earlier);
    recovery.refresh_failed(down());
    assert_eq!(recovery.failed_refreshes, 0);
    assert!(recovery.last_refresh_warning.is_some_and(|at| at > earlier));
}

#[actix::test]
async fn recovery_release_writes_the_record_so_the_session_resumes_once() {
    let (bridge, recovery) = start(10, Duration::from_secs(60));
    let (sid, pid) = (Sid::from_wire("kept-sid"), Pid::from_wire("kept-pid"));
    let offset = publish(&bridge, "/", 0).await;
    let epoch = bridge.send(Tip).await.unwrap().unwrap().epoch;
    let record = SessionRecord::new(&sid, &pid, Some(epoch));
    recovery.send(Release(record)).await.unwrap();
    // Release's save is queued at the bridge before this resume's claim.
    let resumed = recovery.send(open(&pid, offset)).await.unwrap();
    assert!(resumed.recovered, "a released record resumes");
    assert_eq!((resumed.sid, resumed.pid.clone()), (sid, pid.clone()));
    // The resumed session is live again: a second resume of it does not clone it.
    let clone = recovery.send(open(&pid, offset)).await.unwrap();
    assert!(!clone.recovered, "claimed once");
    assert_ne!(clone.pid, pid);
}

#[actix::test]
async fn recovery_refuses_to_resume_a_live_session_and_resumes_it_once_dropped() {
    let (_bridge, recovery) = start(10, Duration::from_secs(60));
    let live = recovery.send(fresh()).await.unwrap();
    let offset = live.offset.clone().unwrap();
    let clone = recovery.send(open(&live.pid, &offset)).await.unwrap();
    assert!(!clone.recovered, "a live session is not resumable");
    assert_ne!((&clone.sid, &clone.pid), (&live.sid, &live.pid));

    // The session drops while a resume waits for it: the resume gets it.
    let waiting = recovery.send(open(&live.pid, &offset));
    let release = async {
        actix::clock::sleep(CLAIM_WAIT / 4).await;
        dropped(&recovery, &live).await;
    };
    let (resumed, ()) = futures_util::future::join(waiting, release).await;
    let resumed = resumed.unwrap();
    assert!(resumed.recovered);
    assert_eq!((&resumed.sid, &resumed.pid), (&live.sid, &live.pid));
    let third = recovery.send(open(&live.pid, &offset)).await.unwrap();
    assert!(!third.recovered, "a resumed session is live again");
}

#[actix::test]
async fn recovery_keeps_a_resumed_records_rooms_and_data() {
    let (bridge, recovery) = start(10, Duration::from_secs(60));
    let offset = publish(&bridge, "/", 0).await;
    // A Node peer's record: no epoch, a room and data.
    let (sid, pid) = (Sid::from_wire("node-sid"), Pid::from_wire("node-pid"));
    let record = SessionRecord {
        rooms: vec!["node-sid".into(), "ops".into()],
        data: serde_json::json!({ "user": "alice" }).into(),
        ..SessionRecord::new(&sid, &pid, None)
    };
    // Written to the log as a Node peer writes it (the hub's own Release refuses a record without
    // an epoch: see the next test).
    bridge
        .send(SaveSession {
            record: record.clone(),
            ttl: Duration::from_secs(60),
        })
        .await
        .unwrap()
        .unwrap();
    let resumed = recovery.send(open(&pid, offset)).await.unwrap();
    assert!(resumed.recovered);
    let epoch = bridge.send(Tip).await.unwrap().unwrap().epoch;
    assert_eq!(
        resumed.record,
        SessionRecord {
            epoch: Some(epoch),
            ..record
        },
        "rooms and data as loaded, with the log's epoch"
    );
}

#[actix::test]
async fn recovery_writes_no_record_for_a_session_whose_epoch_was_unknown() {
    let (bridge, recovery) = start(10, Duration::from_secs(60));
    let offset = publish(&bridge, "/", 0).await;
    // A hub session opened while the log could not be asked has no epoch: its offsets could not be
    // checked against a replaced log, so neither a refresh nor a release writes it.
    let (sid, pid) = (Sid::from_wire("blind-sid"), Pid::from_wire("blind-pid"));
    let record = SessionRecord::new(&sid, &pid, None);
    recovery.send(Keep(record.clone())).await.unwrap();
    recovery.send(Release(record)).await.unwrap();
    let resumed = recovery.send(open(&pid, offset)).await.unwrap();
    assert!(!resumed.recovered, "nothing to resume: a fresh session");
    assert_ne!(resumed.pid, pid);
}

#[actix::test]
async fn recovery_replays_exactly_the_entries_addressed_to_the_socket_in_its_rooms() {
    use crate::protocol::target::Room;
    let (bridge, recovery) = start(100, Duration::from_secs(60));
    let first = recovery
        .send(Open {
            owner: Some("alice".into()),
            stays: RoomCheck::any(),
            ..fresh()
        })
        .await
        .unwrap();
    let sid = first.sid.to_string();
    assert_eq!(first.record.rooms, [sid.clone(), "user:alice".to_owned()]);
    let offset = first.offset.clone().unwrap();
    // It had joined ops before it dropped (the Session keeps its record's rooms).
    let mut record = first.record.clone();
    record.rooms.push("ops".into());
    recovery.send(Release(record)).await.unwrap();
    let to = |rooms: &[&str], except: &[&str]| Target {
        rooms: rooms.iter().map(|r| Room::from(*r)).collect(),
        except: except.iter().map(|r| Room::from(*r)).collect(),
        ..Target::broadcast(Namespace::main())
    };
    let mut expected = Vec::new();
    for (n, (target, mine)) in [
        (to(&[], &[]), true),
        (to(&[&sid], &[]), true),
        (to(&["user:alice"], &[]), true),
        (to(&["user:bob"], &[]), false),
        (to(&["ops", "user:alice", &sid], &[]), true),
        (to(&["sales"], &[]), false),
        (to(&[], &["ops"]), false),
        (to(&[], &["sales"]), true),
        (to(&["ops"], &["user:alice"]), false),
        (Target::broadcast(Namespace::from("/other")), false),
    ]
    .into_iter()
    .enumerate()
    {
        let id = bridge
            .send(Publish {
                target,
                args: Arc::from(format!("[\"n\",{n}]")),
                source: crate::notification::Source::Http,
            })
            .await
            .unwrap()
            .unwrap();
        if mine {
            expected.push(id);
        }
    }
    let resumed = recovery
        .send(Open {
            owner: Some("alice".into()),
            stays: RoomCheck::any(),
            ..open(&first.pid, offset)
        })
        .await
        .unwrap();
    assert!(resumed.recovered);
    assert_eq!(resumed.record.rooms, [sid.as_str(), "user:alice", "ops"]);
    let (replayed, _) = read_all(&recovery, resumed.missed, resumed.more).await;
    assert_eq!(replayed, expected, "its own, in order, each once");
}

#[actix::test]
async fn recovery_resume_adds_the_sid_and_user_rooms_a_record_lacks() {
    let (bridge, recovery) = start(10, Duration::from_secs(60));
    let offset = publish(&bridge, "/", 0).await;
    let (sid, pid) = (Sid::from_wire("node-sid"), Pid::from_wire("node-pid"));
    let record = SessionRecord {
        rooms: vec!["ops".into()],
        sub: Some("alice".into()),
        ..SessionRecord::new(&sid, &pid, None)
    };
    bridge
        .send(SaveSession {
            record,
            ttl: Duration::from_secs(60),
        })
        .await
        .unwrap()
        .unwrap();
    let resumed = recovery
        .send(Open {
            owner: Some("alice".into()),
            stays: RoomCheck::any(),
            ..open(&pid, offset)
        })
        .await
        .unwrap();
    assert!(resumed.recovered);
    assert_eq!(resumed.record.rooms, ["ops", "node-sid", "user:alice"]);
    assert!(
        resumed.more.is_some(),
        "a resume's first page is never its last (the Hub learns the rooms first)"
    );
}

#[actix::test]
async fn recovery_resumes_a_session_only_for_its_user_and_leaves_it_to_its_owner() {
    let (bridge, recovery) = start(100, Duration::from_secs(60));
    let as_user = |open: Open, sub: Option<&str>| Open {
        owner: sub.map(Box::from),
        stays: RoomCheck::any(),
        ..open
    };
    let first = recovery
        .send(as_user(fresh(), Some("alice")))
        .await
        .unwrap();
    assert_eq!(
        first.record.sub.as_deref(),
        Some("alice"),
        "the record carries the user"
    );
    let offset = first.offset.clone().unwrap();
    // Live: another user is refused at once (no wait for the session to drop).
    let live = recovery
        .send(as_user(open(&first.pid, &offset), Some("mallory")))
        .await
        .unwrap();
    assert!(!live.recovered);
    dropped(&recovery, &first).await;
    let missed = publish(&bridge, "/", 1).await;
    for thief in [Some("mallory"), None] {
        let refused = recovery
            .send(as_user(open(&first.pid, &offset), thief))
            .await
            .unwrap();
        assert!(!refused.recovered, "{thief:?} resumed alice's session");
        assert!(refused.missed.is_empty());
        assert_ne!(refused.pid, first.pid);
        assert_eq!(
            refused.record.sub.as_deref(),
            thief,
            "its own fresh session"
        );
    }
    let owner = recovery
        .send(as_user(open(&first.pid, &offset), Some("alice")))
        .await
        .unwrap();
    assert!(owner.recovered, "the record was left to its owner");
    assert_eq!(
        owner.missed.iter().map(|e| e.id).collect::<Vec<_>>(),
        [missed]
    );
}

/// A resume whose offset is ahead of this instance's read loops waits for them (HUB_STREAM_SHARDS
/// > 1), but only for a session there is to resume: an unknown pid is refused at once (outcome
/// `unknown`), never after polling the bridge for the whole claim wait, which any client could
/// otherwise make every CONNECT cost.
#[actix::test]
async fn recovery_checks_the_session_before_waiting_for_the_loops_to_catch_up() {
    let metrics = Arc::new(Metrics::default());
    let hub = Hub::new(1 << 20, metrics.clone()).start();
    let shard =
        || -> Box<dyn crate::store::LogBackend> { Box::new(MemoryLog::new(10, usize::MAX)) };
    let bridge = StreamBridge::sharded(vec![shard(), shard()], hub, metrics.clone()).start();
    let recovery =
        Recovery::new(bridge, Duration::from_secs(60), CLAIM_WAIT, metrics.clone()).start();
    let far = format!("{0}-0,{0}-0", u64::MAX / 2);
    let fresh = recovery
        .send(open(&Pid::from_wire("nobody"), far))
        .await
        .unwrap();
    assert!(!fresh.recovered);
    assert_eq!(
        (metrics.resumes.get("unknown"), metrics.resumes.get("ahead")),
        (1, 0),
        "an unknown session is refused as such, before any wait for the loops"
    );
}
