//! A joining socket's replay, a step at a time: missed events written while less than the high-water
//! mark is on its way to the client, the next page read once one is written, and the replay given
//! up when the client takes nothing for the stall bound (`--replay-stall-ms`).
//!
//! ```text
//! step ─ room (in flight < high water) ─► write ─► Wait | Read(cursor) | Done
//!      ─ no room ─► Wait, the stall watch started (or kept: the client took nothing since)
//!                 └─ nothing taken for the stall bound ─► Stalled (the actor closes the session)
//! ```
//!
//! Why a stall ends the session rather than the replay alone: a fresh session on this connection
//! would not reach a client that does not read, and a replay of `--max-replays` that never ends holds
//! its slot from every other resume. Closed as a transport failure, with the namespace's record
//! dropped (the actor's `replay_stalled` says why): the client's next resume is a fresh session,
//! never a second replay of what it may hold already.

use std::time::{Duration, Instant};

use super::{Joining, NsSocket, Pages};
use crate::actors::hub::frame_entry;
use crate::actors::outbound::Out;
use crate::actors::recovery::{ReplayCursor, ReplayPage};
use crate::config::Parser;

/// A replay step writes while less than this is on its way to the client.
pub(crate) const REPLAY_HIGH_WATER: usize = 256 * 1024;

/// What the actor does after a replay step.
#[derive(Debug, PartialEq)]
pub(crate) enum Next {
    /// Every missed entry is written: complete the join.
    Done,
    /// The budget is spent: step again once the client took some.
    Wait,
    /// The page is written: read the next one ([`crate::actors::recovery::ReadMissed`]), then
    /// [`NsSocket::on_replay_page`].
    Read(ReplayCursor),
    /// The client took nothing for the stall bound: close the session (its replay slot is freed
    /// with the socket), nothing more written.
    Stalled,
}

/// What a replay step produced.
pub(crate) struct Step {
    /// Missed events to write now.
    pub frames: Vec<Out>,
    /// What to do next.
    pub next: Next,
}

/// What a replay step goes by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Bytes on their way to the client, live batches held for this join not counted.
    pub in_flight: usize,
    /// When the step runs.
    pub now: Instant,
    /// How long the client may take nothing while the replay waits for it (`--replay-stall-ms`).
    pub stall: Duration,
}

/// A replay waiting for its client: what was on its way when last looked, and since when the
/// client has taken none of it.
#[derive(Debug)]
pub(super) struct Waiting {
    in_flight: usize,
    since: Instant,
}

impl NsSocket {
    /// The next page of the replay, read after [`Next::Read`]; ignored unless one was being read.
    pub(crate) fn on_replay_page(&mut self, page: ReplayPage) {
        let NsSocket::Joining(Joining {
            replay: Some(replay),
            ..
        }) = self
        else {
            return;
        };
        if !matches!(replay.pages, Pages::Reading) {
            return;
        }
        replay.count += page.missed.len();
        replay.missed.extend(page.missed);
        replay.offset = Some(page.read_to);
        replay.pages = page.more.map_or(Pages::End, Pages::More);
    }

    /// The next page could not be read (trimmed meanwhile, backend down): the replay is dropped (and
    /// its slot freed); the actor asks Recovery for a fresh session and hands it to
    /// [`Self::on_opened`]. What was written stays written: the client holds events received before
    /// a CONNECT reply and emits them once it gets one, and the fresh session's `recovered` false
    /// tells it the rest may be missing. Returns whether a replay was dropped.
    pub(crate) fn replay_failed(&mut self) -> bool {
        match self {
            NsSocket::Joining(joining) => joining.replay.take().is_some(),
            _ => false,
        }
    }

    /// The next missed events, while less than [`REPLAY_HIGH_WATER`] is on its way (a step writes
    /// at most one frame past it), and what to do next. With no room, the client is watched: one
    /// that took nothing (`in_flight` never went down) for `pace.stall` gets [`Next::Stalled`].
    /// `None` before Recovery answered, while a page is being read, or once the socket is no longer
    /// joining.
    pub(crate) fn replay_step(&mut self, pace: Pace, parser: Parser) -> Option<Step> {
        let NsSocket::Joining(Joining {
            replay: Some(replay),
            ..
        }) = self
        else {
            return None;
        };
        if matches!(replay.pages, Pages::Reading) {
            return None;
        }
        let budget = REPLAY_HIGH_WATER.saturating_sub(pace.in_flight);
        if budget == 0 {
            // Less on its way than at the last look: the client took some (live frames of its other
            // namespaces may have come meanwhile, so any decrease counts, not only below the mark).
            let next = match &mut replay.waiting {
                Some(waiting) if pace.in_flight >= waiting.in_flight => {
                    waiting.in_flight = pace.in_flight;
                    if pace.now.saturating_duration_since(waiting.since) >= pace.stall {
                        Next::Stalled
                    } else {
                        Next::Wait
                    }
                }
                waiting => {
                    *waiting = Some(Waiting {
                        in_flight: pace.in_flight,
                        since: pace.now,
                    });
                    Next::Wait
                }
            };
            return Some(Step {
                frames: Vec::new(),
                next,
            });
        }
        replay.waiting = None;
        let mut frames = Vec::new();
        let mut bytes = 0;
        while bytes < budget {
            let Some(entry) = replay.missed.pop_front() else {
                let next = match std::mem::replace(&mut replay.pages, Pages::Reading) {
                    Pages::More(cursor) => Next::Read(cursor),
                    Pages::Reading | Pages::End => {
                        replay.pages = Pages::End;
                        Next::Done
                    }
                };
                return Some(Step { frames, next });
            };
            if let Some(frame) = frame_entry(&entry, parser) {
                bytes += frame.len();
                frames.extend(frame.messages());
            }
        }
        // Over budget: even if nothing is left, the reply waits for the next step, so what is held
        // behind it is written only once the client took the replay.
        Some(Step {
            frames,
            next: Next::Wait,
        })
    }
}

#[cfg(test)]
mod tests;
