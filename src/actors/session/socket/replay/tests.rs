//! The stall bound on literal steps: a client that takes nothing for it loses its replay (the
//! session is closed, its record kept), one that takes however little keeps it to the end.

use std::time::{Duration, Instant};

use super::super::tests::{entry, joining, nsp, opened, opened_with_more, page, texts};
use super::*;

const STALL: Duration = Duration::from_secs(1);

fn pace(in_flight: usize, now: Instant) -> Pace {
    Pace {
        in_flight,
        now,
        stall: STALL,
    }
}

#[test]
fn replay_whose_client_takes_nothing_for_the_stall_bound_stalls_with_nothing_more_written() {
    let mut socket = joining();
    socket.on_opened(opened(true, "S1", &[1, 2, 3], 3));
    let start = Instant::now();
    let full = REPLAY_HIGH_WATER;
    let waited = socket.replay_step(pace(full, start), Parser::Json).unwrap();
    assert!(waited.frames.is_empty() && waited.next == Next::Wait);
    // Live frames of another namespace came meanwhile: more on its way is not the client taking.
    let later = start + STALL - Duration::from_millis(1);
    let still = socket.replay_step(pace(full + 10, later), Parser::Json);
    assert_eq!(still.unwrap().next, Next::Wait, "within the bound");
    let stalled = socket
        .replay_step(pace(full + 10, start + STALL), Parser::Json)
        .unwrap();
    assert!(stalled.frames.is_empty(), "nothing more written");
    assert_eq!(stalled.next, Next::Stalled);
    assert!(
        socket.complete(&nsp(), Parser::Json).is_none(),
        "never a CONNECT reply after a partial replay"
    );
    let left = socket.leave();
    assert!(
        left.record.is_some(),
        "the claimed record is handed to the actor, which drops it (Forget takes its pid)"
    );
}

#[test]
fn replay_whose_client_takes_a_little_within_each_bound_runs_to_the_end_whole_and_once() {
    let mut socket = joining();
    socket.on_opened(opened_with_more("S1", &[1, 2], 2));
    let mut pages = vec![page(&[3, 4], 4, true), page(&[5], 5, false)].into_iter();
    let frame_len = frame_entry(&entry(1), Parser::Json).unwrap().len();
    // Room for one frame at a time, and a client that takes one byte every 0.9 bounds: the replay
    // waits at the mark for many bounds between frames, never for a bound without the client taking
    // something.
    let (mut in_flight, mut now) = (REPLAY_HIGH_WATER - frame_len, Instant::now());
    let (start, mut written) = (now, Vec::new());
    loop {
        let step = socket
            .replay_step(pace(in_flight, now), Parser::Json)
            .unwrap();
        in_flight += step.frames.iter().map(Out::len).sum::<usize>();
        written.extend(texts(&step.frames));
        match step.next {
            Next::Done => break,
            Next::Read(_) => socket.on_replay_page(pages.next().expect("a page per read")),
            Next::Wait => {}
            Next::Stalled => panic!("stalled after {:?}: {written:?}", now - start),
        }
        now += STALL * 9 / 10;
        in_flight -= 1;
    }
    assert!(now - start > STALL * 50, "the replay outlasted the bound");
    let ids: Vec<String> = (1..=5)
        .map(|ms| format!(r#"42["n",{ms},"{ms}-0"]"#))
        .collect();
    assert_eq!(written, ids, "every missed entry, in order, once");
    let done = socket.complete(&nsp(), Parser::Json).unwrap();
    assert_eq!(texts(&done.reply), [r#"40{"sid":"S1","pid":"S1-pid"}"#]);
    assert_eq!(done.replayed, 5);
}
