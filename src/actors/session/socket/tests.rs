//! The namespace socket's handover on literal frames (DESIGN.md §3: no gap, no duplicate).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::replay::REPLAY_HIGH_WATER;
use super::*;
use crate::actors::hub::frame_entry;
use crate::actors::recovery::ReplayPage;
use crate::actors::session::socket::acks::MAX_AWAITED_ACKS;
use crate::protocol::ids::StreamId;
use crate::protocol::target::Target;
use crate::store::{Epoch, ReplayScope};

pub(super) fn nsp() -> Namespace {
    Namespace::main()
}

pub(super) fn id(ms: u64) -> StreamId {
    StreamId::new(ms, 0)
}

pub(super) fn entry(ms: u64) -> LogEntry {
    LogEntry::event(
        id(ms),
        Target::broadcast(nsp()),
        Arc::from(format!("[\"n\",{ms}]")),
    )
}

/// A live batch as the Hub delivers it.
fn live(ms: &[u64]) -> Deliver {
    let frames: Vec<Frame> = ms
        .iter()
        .map(|&ms| frame_entry(&entry(ms), Parser::Json).unwrap())
        .collect();
    let bytes = frames.iter().map(Frame::len).sum();
    Deliver {
        nsp: nsp(),
        frames: frames.into(),
        bytes,
    }
}

pub(super) fn opened(recovered: bool, sid: &str, missed: &[u64], offset: u64) -> Opened {
    Opened {
        sid: Sid::from_wire(sid),
        pid: Pid::from_wire(format!("{sid}-pid")),
        recovered,
        missed: missed.iter().map(|&ms| entry(ms)).collect(),
        more: None,
        offset: Some(Offset::one(id(offset))),
        slot: None,
        record: SessionRecord::new(
            &Sid::from_wire(sid),
            &Pid::from_wire(format!("{sid}-pid")),
            None,
        ),
    }
}

/// A step with `budget` bytes of room below the high-water mark (at most the mark), from a client
/// never watched for stalls.
fn room(budget: usize) -> Pace {
    Pace {
        in_flight: REPLAY_HIGH_WATER.saturating_sub(budget),
        now: Instant::now(),
        stall: Duration::MAX,
    }
}

pub(super) fn texts(frames: &[Out]) -> Vec<String> {
    frames
        .iter()
        .map(|frame| match frame {
            Out::Text(text) => text.to_string(),
            Out::Binary(bytes) => format!("<{} bytes>", bytes.len()),
        })
        .collect()
}

pub(super) fn joining() -> NsSocket {
    let mut socket = NsSocket::admitting(json!({"token": "t"}));
    socket.admitted(Identity::default());
    socket
}

#[test]
fn socket_fresh_join_replies_with_sid_pid_and_the_offset_event_then_goes_live() {
    let mut socket = joining();
    assert!(
        socket.replay_step(room(1 << 20), Parser::Json).is_none(),
        "nothing before Recovery answered"
    );
    socket.on_opened(opened(false, "S1", &[], 5));
    let step = socket.replay_step(room(1 << 20), Parser::Json).unwrap();
    assert!(step.frames.is_empty() && step.next == Next::Done);
    let done = socket.complete(&nsp(), Parser::Json).unwrap();
    assert_eq!(
        texts(&done.reply),
        [
            r#"40{"sid":"S1","pid":"S1-pid"}"#,
            r#"42["hub:offset","5-0"]"#
        ]
    );
    assert!(done.held.is_empty());
    assert_eq!(done.auth, json!({"token": "t"}));
    assert!(!done.recovered);
    match socket.on_live(live(&[5, 6])) {
        Live::Write(batch) => assert_eq!(
            texts(&batch.to_vec()),
            [r#"42["n",6,"6-0"]"#],
            "5-0 is the offset the client has"
        ),
        other => panic!("a joined socket writes live frames, got {other:?}"),
    }
}

#[test]
fn socket_resume_replays_then_releases_held_live_frames_without_duplicates() {
    let mut socket = joining();
    // Live batches arrive while Recovery reads: held, in order.
    assert!(matches!(socket.on_live(live(&[7, 8])), Live::Held));
    assert!(matches!(socket.on_live(live(&[9])), Live::Held));
    socket.on_opened(opened(true, "S1", &[6, 7], 7));
    let step = socket.replay_step(room(1 << 20), Parser::Json).unwrap();
    assert_eq!(
        texts(&step.frames),
        [r#"42["n",6,"6-0"]"#, r#"42["n",7,"7-0"]"#]
    );
    assert!(step.next == Next::Done);
    let done = socket.complete(&nsp(), Parser::Json).unwrap();
    assert_eq!(
        texts(&done.reply),
        [r#"40{"sid":"S1","pid":"S1-pid"}"#],
        "a resume gets no offset event"
    );
    assert_eq!(
        texts(&done.held),
        [r#"42["n",8,"8-0"]"#, r#"42["n",9,"9-0"]"#],
        "7-0 was replayed: not written twice"
    );
    assert_eq!(done.held_bytes, live(&[7, 8]).bytes + live(&[9]).bytes);
    assert!(done.recovered);
    assert_eq!(done.replayed, 2);
    // Live from here on, still skipping what the client has.
    match socket.on_live(live(&[9, 10])) {
        Live::Write(batch) => assert_eq!(texts(&batch.to_vec()), [r#"42["n",10,"10-0"]"#]),
        other => panic!("expected live frames, got {other:?}"),
    }
}

#[test]
fn socket_replay_is_written_in_steps_within_the_budget() {
    let mut socket = joining();
    socket.on_opened(opened(true, "S1", &[1, 2, 3], 3));
    let frame_len = frame_entry(&entry(1), Parser::Json).unwrap().len();
    // A budget of one frame: one frame per step, and the reply only after a step finds nothing left.
    let first = socket.replay_step(room(frame_len), Parser::Json).unwrap();
    assert_eq!(texts(&first.frames), [r#"42["n",1,"1-0"]"#]);
    assert!(first.next != Next::Done);
    assert!(
        socket.complete(&nsp(), Parser::Json).is_none(),
        "not before the replay is written"
    );
    let none = socket.replay_step(room(0), Parser::Json).unwrap();
    assert!(
        none.frames.is_empty() && none.next != Next::Done,
        "no budget, no frame"
    );
    assert_eq!(
        texts(
            &socket
                .replay_step(room(frame_len), Parser::Json)
                .unwrap()
                .frames
        ),
        [r#"42["n",2,"2-0"]"#]
    );
    let last = socket.replay_step(room(frame_len), Parser::Json).unwrap();
    assert_eq!(texts(&last.frames), [r#"42["n",3,"3-0"]"#]);
    assert!(
        last.next != Next::Done,
        "over budget: the reply waits for the next step"
    );
    let end = socket.replay_step(room(frame_len), Parser::Json).unwrap();
    assert!(end.frames.is_empty() && end.next == Next::Done);
    assert!(socket.complete(&nsp(), Parser::Json).is_some());
}

#[test]
fn socket_failed_resume_becomes_a_fresh_session_from_the_tip() {
    // Recovery refused the resume (trimmed offset, unknown pid): a new sid and pid, no replay, and
    // the log tip as offset; live frames at or before the tip are not the new session's.
    let mut socket = joining();
    assert!(matches!(socket.on_live(live(&[11, 12])), Live::Held));
    socket.on_opened(opened(false, "NEW", &[], 11));
    assert!(
        socket
            .replay_step(room(1 << 20), Parser::Json)
            .unwrap()
            .next
            == Next::Done
    );
    let done = socket.complete(&nsp(), Parser::Json).unwrap();
    assert_eq!(
        texts(&done.reply),
        [
            r#"40{"sid":"NEW","pid":"NEW-pid"}"#,
            r#"42["hub:offset","11-0"]"#
        ]
    );
    assert_eq!(texts(&done.held), [r#"42["n",12,"12-0"]"#]);
    assert_eq!(done.sid, Sid::from_wire("NEW"));
    assert_eq!(done.replayed, 0);
}

#[test]
fn socket_leaving_during_a_replay_releases_what_it_held_and_writes_nothing() {
    let mut socket = joining();
    assert!(matches!(socket.on_live(live(&[8])), Live::Held));
    socket.on_opened(opened(true, "S1", &[6, 7], 7));
    let frame_len = frame_entry(&entry(6), Parser::Json).unwrap().len();
    assert_eq!(
        socket
            .replay_step(room(frame_len), Parser::Json)
            .unwrap()
            .frames
            .len(),
        1
    );
    let left = socket.leave();
    assert_eq!(
        left,
        Left {
            registered: true,
            record: Some(opened(true, "S1", &[], 7).record),
            held_bytes: live(&[8]).bytes,
        },
        "registered with the Hub, the resumed record given back (its claim took it from the \
         store: dropped here, the owner's next resume would find nothing), the held batch to release"
    );
    let mut fresh = joining();
    fresh.on_opened(opened(false, "S2", &[], 7));
    assert_eq!(
        fresh.leave().record,
        None,
        "a fresh session that never told its client its pid has no record worth keeping"
    );
}

#[test]
fn socket_leave_in_each_state_says_what_to_undo() {
    let admitting = NsSocket::admitting(json!({}));
    assert_eq!(
        admitting.leave(),
        Left {
            registered: false,
            record: None,
            held_bytes: 0
        },
        "the Hub never saw a socket still being admitted"
    );
    let mut joined = joining();
    joined.on_opened(opened(false, "S2", &[], 1));
    joined.replay_step(room(1 << 20), Parser::Json);
    joined.complete(&nsp(), Parser::Json);
    let left = joined.leave();
    assert!(left.registered);
    assert_eq!(
        left.record,
        Some(SessionRecord::new(
            &Sid::from_wire("S2"),
            &Pid::from_wire("S2-pid"),
            None
        ))
    );
}

#[test]
fn socket_joined_without_recovery_replies_with_a_sid_only() {
    let (mut socket, reply) = NsSocket::joined_without_recovery(
        &nsp(),
        Sid::from_wire("S3"),
        Identity::default(),
        Parser::Json,
    );
    assert_eq!(texts(&[reply]), [r#"40{"sid":"S3"}"#]);
    match socket.on_live(live(&[1])) {
        Live::Write(batch) => assert_eq!(texts(&batch.to_vec()), [r#"42["n",1,"1-0"]"#]),
        other => panic!("expected live frames, got {other:?}"),
    }
    assert_eq!(socket.leave().record, None, "no record without recovery");
}

#[test]
fn socket_asks_with_increasing_ack_ids_each_answered_once() {
    let (socket, _) = NsSocket::joined_without_recovery(
        &nsp(),
        Sid::from_wire("S4"),
        Identity::default(),
        Parser::Json,
    );
    let NsSocket::Joined(mut joined) = socket else {
        panic!("joined");
    };
    assert!(
        !joined.answered(0),
        "nothing is owed before the server asks"
    );
    assert_eq!((joined.ask(), joined.ask()), (0, 1));
    assert!(joined.answered(1));
    assert!(!joined.answered(1), "an ack answers once");
    assert!(!joined.answered(7), "an id never asked is ignored");
    assert!(joined.answered(0));
}

#[test]
fn a_client_that_never_answers_owes_at_most_the_bound_the_oldest_forgotten() {
    let (socket, _) = NsSocket::joined_without_recovery(
        &nsp(),
        Sid::from_wire("S5"),
        Identity::default(),
        Parser::Json,
    );
    let NsSocket::Joined(mut joined) = socket else {
        panic!("joined");
    };
    let over = 5;
    let asked: Vec<u64> = (0..MAX_AWAITED_ACKS + over).map(|_| joined.ask()).collect();
    assert_eq!(asked.last(), Some(&((MAX_AWAITED_ACKS + over - 1) as u64)));
    for id in 0..over as u64 {
        assert!(
            !joined.answered(id),
            "ask {id} was forgotten: its answer is ignored"
        );
    }
    for id in over as u64..(MAX_AWAITED_ACKS + over) as u64 {
        assert!(
            joined.answered(id),
            "ask {id} is among the newest, still awaited"
        );
    }
    assert_eq!(
        joined.ask(),
        (MAX_AWAITED_ACKS + over) as u64,
        "ids go on growing"
    );
}

#[test]
fn sockets_list_finds_replaces_and_removes_by_namespace() {
    let mut sockets = Sockets::default();
    assert!(!sockets.any_admitted());
    sockets.insert(nsp(), NsSocket::admitting(json!({})));
    sockets.insert(Namespace::from("/admin"), NsSocket::admitting(json!({})));
    assert!(!sockets.any_admitted(), "being admitted is not admitted");
    let (joined, _) = NsSocket::joined_without_recovery(
        &nsp(),
        Sid::from_wire("S5"),
        Identity::default(),
        Parser::Json,
    );
    sockets.insert(nsp(), joined);
    assert!(sockets.any_admitted());
    assert!(matches!(sockets.get("/"), Some(NsSocket::Joined(_))));
    assert!(matches!(
        sockets.get("/admin"),
        Some(NsSocket::Admitting { .. })
    ));
    assert!(sockets.get("/other").is_none());
    assert!(matches!(
        sockets.remove("/admin"),
        Some(NsSocket::Admitting { .. })
    ));
    assert!(sockets.get("/admin").is_none());
    assert!(sockets.get("/").is_some(), "only /admin was removed");
    assert!(sockets.remove("/admin").is_none());
    assert_eq!(sockets.take().len(), 1);
    assert!(sockets.take().is_empty());
}

#[test]
fn sockets_records_are_those_of_the_joined_sockets_with_recovery() {
    let mut sockets = Sockets::default();
    let mut resumed = joining();
    resumed.on_opened(opened(false, "S6", &[], 1));
    resumed.replay_step(room(1 << 20), Parser::Json);
    resumed.complete(&nsp(), Parser::Json);
    sockets.insert(nsp(), resumed);
    sockets.insert(Namespace::from("/joining"), joining());
    let (without, _) = NsSocket::joined_without_recovery(
        &nsp(),
        Sid::from_wire("S7"),
        Identity::default(),
        Parser::Json,
    );
    sockets.insert(Namespace::from("/plain"), without);
    let records: Vec<&SessionRecord> = sockets.records().collect();
    assert_eq!(
        records,
        [&SessionRecord::new(
            &Sid::from_wire("S6"),
            &Pid::from_wire("S6-pid"),
            None
        )]
    );
}

/// A resume whose first page is `missed` and whose next page starts after `offset`.
pub(super) fn opened_with_more(sid: &str, missed: &[u64], offset: u64) -> Opened {
    Opened {
        more: Some(cursor(offset)),
        ..opened(true, sid, missed, offset)
    }
}

pub(super) fn cursor(after: u64) -> ReplayCursor {
    ReplayCursor {
        scope: ReplayScope {
            epoch: Epoch::from("e1"),
            nsp: nsp(),
            rooms: Vec::new(),
        },
        after: Offset::one(id(after)),
        count: 2,
    }
}

pub(super) fn page(missed: &[u64], read_to: u64, more: bool) -> ReplayPage {
    ReplayPage {
        missed: missed.iter().map(|&ms| entry(ms)).collect(),
        read_to: Offset::one(id(read_to)),
        more: more.then(|| cursor(read_to)),
    }
}

#[test]
fn socket_replay_reads_page_after_page_then_releases_held_frames_without_duplicates() {
    let mut socket = joining();
    assert!(matches!(socket.on_live(live(&[9, 10])), Live::Held));
    socket.on_opened(opened_with_more("S1", &[5, 6], 6));
    let first = socket.replay_step(room(1 << 20), Parser::Json).unwrap();
    assert_eq!(
        texts(&first.frames),
        [r#"42["n",5,"5-0"]"#, r#"42["n",6,"6-0"]"#]
    );
    assert_eq!(
        first.next,
        Next::Read(cursor(6)),
        "the page written: read the next"
    );
    assert!(
        socket.replay_step(room(1 << 20), Parser::Json).is_none(),
        "nothing to step while a page is read"
    );
    assert!(
        socket.complete(&nsp(), Parser::Json).is_none(),
        "not joined while pages remain"
    );
    // A live batch during the read is held too; the page read meanwhile covers 7 to 9 (8 was for
    // another namespace: read, not replayed).
    assert!(matches!(socket.on_live(live(&[11])), Live::Held));
    socket.on_replay_page(page(&[7, 9], 9, true));
    let second = socket.replay_step(room(1 << 20), Parser::Json).unwrap();
    assert_eq!(
        texts(&second.frames),
        [r#"42["n",7,"7-0"]"#, r#"42["n",9,"9-0"]"#]
    );
    assert_eq!(second.next, Next::Read(cursor(9)));
    socket.on_replay_page(page(&[10], 10, false));
    let last = socket.replay_step(room(1 << 20), Parser::Json).unwrap();
    assert_eq!(texts(&last.frames), [r#"42["n",10,"10-0"]"#]);
    assert_eq!(last.next, Next::Done, "the log's end was reached");
    let done = socket.complete(&nsp(), Parser::Json).unwrap();
    assert_eq!(texts(&done.reply), [r#"40{"sid":"S1","pid":"S1-pid"}"#]);
    assert_eq!(
        texts(&done.held),
        [r#"42["n",11,"11-0"]"#],
        "9 and 10 were replayed: written once"
    );
    assert_eq!(done.replayed, 5);
}

#[test]
fn socket_page_arriving_when_none_was_asked_for_is_ignored() {
    let mut socket = joining();
    socket.on_opened(opened_with_more("S1", &[5], 5));
    socket.on_replay_page(page(&[6], 6, false));
    let step = socket.replay_step(room(1 << 20), Parser::Json).unwrap();
    assert_eq!(texts(&step.frames), [r#"42["n",5,"5-0"]"#]);
    assert_eq!(step.next, Next::Read(cursor(5)));
}

#[test]
fn socket_replay_failed_between_pages_joins_as_a_fresh_session_keeping_what_it_held() {
    let mut socket = joining();
    socket.on_opened(opened_with_more("OLD", &[5, 6], 6));
    let first = socket.replay_step(room(1 << 20), Parser::Json).unwrap();
    assert_eq!(first.frames.len(), 2, "written: cannot be taken back");
    assert!(matches!(first.next, Next::Read(_)));
    assert!(matches!(socket.on_live(live(&[20, 21])), Live::Held));
    // The next page was trimmed away: the replay goes; no step, no completion until a fresh answer.
    assert!(socket.replay_failed());
    assert!(!socket.replay_failed(), "once");
    assert!(socket.replay_step(room(1 << 20), Parser::Json).is_none());
    assert!(socket.complete(&nsp(), Parser::Json).is_none());
    socket.on_opened(opened(false, "NEW", &[], 20));
    assert_eq!(
        socket
            .replay_step(room(1 << 20), Parser::Json)
            .unwrap()
            .next,
        Next::Done
    );
    let done = socket.complete(&nsp(), Parser::Json).unwrap();
    assert_eq!(
        texts(&done.reply),
        [
            r#"40{"sid":"NEW","pid":"NEW-pid"}"#,
            r#"42["hub:offset","20-0"]"#
        ],
        "a new pid: the client sees recovered false"
    );
    assert!(!done.recovered);
    assert_eq!(texts(&done.held), [r#"42["n",21,"21-0"]"#]);
}

#[test]
fn socket_joined_by_a_resume_keeps_the_record_it_resumed() {
    let mut resumed = joining();
    let mut answer = opened(true, "S8", &[], 5);
    answer.record.rooms.push("ops".into());
    answer.record.data = json!({"user": "alice"}).into();
    let record = answer.record.clone();
    resumed.on_opened(answer);
    resumed.replay_step(room(1 << 20), Parser::Json);
    resumed.complete(&nsp(), Parser::Json);
    assert_eq!(
        resumed.leave().record,
        Some(record),
        "rooms and data as loaded"
    );
}

#[test]
fn socket_resumed_is_kept_live_only_once_joined_and_a_fresh_one_by_recovery() {
    let mut resumed = joining();
    resumed.on_opened(opened(true, "S9", &[5], 5));
    let record = opened(true, "S9", &[], 5).record;
    let step = resumed.replay_step(room(1 << 20), Parser::Json).unwrap();
    assert_eq!(step.next, Next::Done);
    let done = resumed.complete(&nsp(), Parser::Json).unwrap();
    assert_eq!(
        done.keep,
        Some(record),
        "the replay written: now the session is kept live"
    );
    let mut fresh = joining();
    fresh.on_opened(opened(false, "F1", &[], 5));
    fresh.replay_step(room(1 << 20), Parser::Json);
    assert_eq!(
        fresh.complete(&nsp(), Parser::Json).unwrap().keep,
        None,
        "a fresh session's live copy is written by Recovery"
    );
}

fn joining_as(sub: &str) -> NsSocket {
    let mut socket = NsSocket::admitting(json!({}));
    let identity = Identity {
        sub: Some(sub.into()),
        ..Identity::default()
    };
    assert_eq!(
        NsSocket::registered_rooms(&identity),
        [Room::from("user:alice")]
    );
    socket.admitted(identity);
    socket
}

fn joined_rooms(socket: &NsSocket) -> Vec<&str> {
    match socket {
        NsSocket::Joined(joined) => joined.rooms().iter().map(Room::as_str).collect(),
        _ => panic!("joined"),
    }
}

#[test]
fn socket_opened_tells_the_hub_its_record_rooms_beyond_the_registered_user_room() {
    let mut socket = joining_as("alice");
    let mut answer = opened(true, "S1", &[], 5);
    answer.record.rooms = vec!["S1".into(), "ops".into(), "user:alice".into()];
    let change = socket.on_opened(answer);
    assert_eq!(change.join, [Room::from("S1"), Room::from("ops")]);
    assert!(change.leave.is_empty());
    socket.replay_step(room(1 << 20), Parser::Json).unwrap();
    socket.complete(&nsp(), Parser::Json).unwrap();
    assert_eq!(joined_rooms(&socket), ["S1", "ops", "user:alice"]);
}

#[test]
fn socket_fresh_session_after_a_failed_replay_leaves_the_old_records_rooms() {
    let mut socket = joining_as("alice");
    let mut answer = opened_with_more("OLD", &[5], 5);
    answer.record.rooms = vec!["OLD".into(), "ops".into(), "user:alice".into()];
    socket.on_opened(answer);
    socket.replay_step(room(1 << 20), Parser::Json).unwrap();
    assert!(socket.replay_failed());
    let mut fresh = opened(false, "NEW", &[], 9);
    fresh.record.rooms = vec!["NEW".into(), "user:alice".into()];
    let change = socket.on_opened(fresh);
    assert_eq!(change.join, [Room::from("NEW")]);
    assert_eq!(change.leave, [Room::from("OLD"), Room::from("ops")]);
}

#[test]
fn socket_joins_and_leaves_rooms_in_its_record_within_the_limit() {
    let mut socket = joining_as("alice");
    let mut answer = opened(false, "AbCdEfGhIjKlMnOpQr_-12", &[], 5);
    answer.record.rooms.push("user:alice".into());
    socket.on_opened(answer);
    socket.replay_step(room(1 << 20), Parser::Json).unwrap();
    socket.complete(&nsp(), Parser::Json).unwrap();
    let NsSocket::Joined(joined) = &mut socket else {
        panic!("joined");
    };
    assert_eq!(joined.join_room("ops", 2), Ok(Some(Room::from("ops"))));
    assert_eq!(joined.join_room("ops", 2), Ok(None), "in it already");
    assert_eq!(joined.join_room("dev", 2), Ok(Some(Room::from("dev"))));
    assert_eq!(
        joined.join_room("sales", 2),
        Err(RoomRefusal::TooMany),
        "two joined: the sid and user rooms do not count"
    );
    let record_rooms = |joined: &Joined| joined.record.as_ref().unwrap().rooms.clone();
    assert_eq!(
        record_rooms(joined),
        ["AbCdEfGhIjKlMnOpQr_-12", "user:alice", "ops", "dev"]
    );
    assert_eq!(joined.leave_room("ops"), Some(Room::from("ops")));
    assert_eq!(joined.leave_room("ops"), None);
    assert_eq!(joined.join_room("sales", 2), Ok(Some(Room::from("sales"))));
    assert_eq!(
        record_rooms(joined),
        ["AbCdEfGhIjKlMnOpQr_-12", "user:alice", "dev", "sales"]
    );
}

#[test]
fn socket_joined_without_recovery_is_in_its_sid_and_user_rooms() {
    let identity = Identity {
        sub: Some("alice".into()),
        ..Identity::default()
    };
    let (socket, _) =
        NsSocket::joined_without_recovery(&nsp(), Sid::from_wire("S1"), identity, Parser::Json);
    assert_eq!(joined_rooms(&socket), ["S1", "user:alice"]);
}
