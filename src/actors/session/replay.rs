//! The actor's side of a resume's replay (reference §3.2: the missed events before the CONNECT
//! reply): its steps paced by what is on its way to the client, its pages read from Recovery, and its
//! two ways to end early. The replay's state and its decisions are
//! [`NsSocket::replay_step`](super::socket::NsSocket::replay_step)'s; this file acts on them.
//!
//! ```text
//! opened ─► replay_step ─ Wait ─► (REPLAY_PAUSE) ─► replay_step …
//!                       ─ Read ─► read_missed ─► replay_step …
//!                                             └─ not read ─► replay_interrupted ─► a fresh session
//!                       ─ Stalled ─► replay_stalled ─► the session closed (transport error), slot freed
//!                       ─ Done ─► finish_join
//! ```

use std::time::{Duration, Instant};

use actix::prelude::*;
use log::debug;

use super::socket::{Next, NsSocket, Pace};
use super::{Session, SessionError};
use crate::actors::recovery::{Open, ReadMissed, ReplayCursor, RoomCheck};
use crate::limited_warn;
use crate::log_limit::LimitedLog;
use crate::protocol::target::Namespace;

/// How long a replay waits for the client to take what was written before looking again.
const REPLAY_PAUSE: Duration = Duration::from_millis(5);
/// Replays cut between pages: logged at most a few times a minute.
static REPLAY_INTERRUPTED: LimitedLog = LimitedLog::per_minute(6);
/// Replays given up on a client that took nothing: likewise, however many such clients.
static REPLAY_STALLED: LimitedLog = LimitedLog::per_minute(6);

impl Session {
    /// Writes missed events while the client keeps up, reading the next page once one is written,
    /// then the CONNECT reply (reference §3.2: the missed events come first).
    pub(super) fn replay_step(&mut self, nsp: Namespace, ctx: &mut Context<Self>) {
        if self.closed.is_some() {
            return;
        }
        if self.outbound.is_aborted() {
            return self.close(ctx, SessionError::SlowConsumer);
        }
        let pace = Pace {
            in_flight: self.outbound.pending().saturating_sub(self.held_bytes),
            now: Instant::now(),
            stall: self.settings().replay_stall,
        };
        let parser = self.settings().parser;
        let Some(step) = self
            .sockets
            .get_mut(nsp.as_str())
            .and_then(|socket| socket.replay_step(pace, parser))
        else {
            return;
        };
        self.write_all(step.frames);
        match step.next {
            Next::Done => self.finish_join(nsp),
            Next::Wait => {
                ctx.run_later(REPLAY_PAUSE, move |act, ctx| act.replay_step(nsp, ctx));
            }
            Next::Read(cursor) => self.read_missed(nsp, cursor, ctx),
            Next::Stalled => self.replay_stalled(&nsp, ctx),
        }
    }

    /// The client took nothing of its replay for `--replay-stall-ms`: the session closes as a
    /// transport failure, its WebSocket dropped unflushed (it does not read), which frees the replay
    /// slot. The resumed record is dropped, as an interrupted replay's is: the client may hold part
    /// of the replay, received before a CONNECT reply, which the official client keeps
    /// (`receiveBuffer`) without moving its offset and emits at its next CONNECT reply; a resume
    /// from that offset would replay those entries again, duplicates. Its next resume is refused
    /// cleanly instead (`recovered` false: the rest may be missing, and it knows). The session's
    /// other namespaces keep their records.
    fn replay_stalled(&mut self, nsp: &Namespace, ctx: &mut Context<Self>) {
        self.parts.metrics.replays_stalled.inc();
        limited_warn!(
            REPLAY_STALLED,
            "replay given up eio_sid={} nsp={nsp}: the client took nothing for {:?} (--replay-stall-ms), closing its session",
            self.eio_sid,
            self.settings().replay_stall
        );
        self.outbound.give_up();
        self.drop_socket(nsp.as_str(), "transport error", ctx);
        self.close(ctx, SessionError::ReplayStalled);
    }

    /// Reads the replay's next page (the previous one is written and the client is taking it).
    fn read_missed(&mut self, nsp: Namespace, cursor: ReplayCursor, ctx: &mut Context<Self>) {
        let reading = self
            .parts
            .recovery
            .send(ReadMissed(cursor))
            .into_actor(self)
            .map(move |page, act, ctx| {
                if act.closed.is_some() {
                    return;
                }
                let Some(socket @ NsSocket::Joining(_)) = act.sockets.get_mut(nsp.as_str()) else {
                    return; // the session left or closed meanwhile
                };
                match page {
                    Ok(Ok(page)) => {
                        socket.on_replay_page(page);
                        act.replay_step(nsp, ctx);
                    }
                    Ok(Err(err)) => act.replay_interrupted(nsp, err, ctx),
                    Err(err) => {
                        debug!("recovery unreachable eio_sid={} error={err:?}", act.eio_sid);
                        act.close(ctx, SessionError::Transport("recovery unreachable"))
                    }
                }
            });
        ctx.spawn(reading);
    }

    /// A later page of a replay could not be read: the entries written stay written (they cannot be
    /// taken back), and the socket joins as a fresh session (`recovered` false, a new sid and pid,
    /// the offset event at the tip) so the client knows the rest may be missing. Never a CONNECT
    /// reply that claims a resume with a gap; never a close that would make the client's next resume
    /// replay again what it already holds (it emits pre-reply events at its next CONNECT reply).
    fn replay_interrupted(
        &mut self,
        nsp: Namespace,
        err: crate::store::StoreError,
        ctx: &mut Context<Self>,
    ) {
        let Some(socket) = self.sockets.get_mut(nsp.as_str()) else {
            return;
        };
        if !socket.replay_failed() {
            return;
        }
        let owner = socket.identity().and_then(|identity| identity.sub.clone());
        self.parts.metrics.replays_interrupted.inc();
        limited_warn!(
            REPLAY_INTERRUPTED,
            "replay interrupted eio_sid={} nsp={nsp}, joining as a fresh session: {err}",
            self.eio_sid
        );
        let open = Open {
            nsp: nsp.clone(),
            pid: None,
            offset: None,
            owner,
            stays: RoomCheck::any(),
        };
        self.open_socket(nsp, open, ctx);
    }
}
