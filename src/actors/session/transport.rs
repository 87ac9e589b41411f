//! The Engine.IO transport side of a Session: the polling queue and its pending GET, POSTs, the
//! WebSocket that carries the session, and the upgrade probe (reference §1.3-§1.6).
//!
//! ```text
//! Polling ──(second WebSocket: probe)── 2probe/3probe ── 5 ──► WebSocket ──► Closed
//! Connecting (a WebSocket session whose WsConn is not up yet) ──Attached──► WebSocket
//! ```
//! Everything written in one actor turn goes out in one polling answer (flushed at the turn's end).

use std::mem;

use actix::prelude::*;
use actix::WeakAddr;
use log::debug;
use tokio::sync::oneshot;

use super::socket::Batch;
use super::{
    Poll, PollAbandoned, PollAnswer, PollRefused, PostBegin, PostBody, Session, SessionError,
};
use crate::actors::outbound::Out;
use crate::actors::registry::Remove;
use crate::actors::ws_conn::{WsConnId, WsEvent, WsEventKind, WsLink};
use crate::actors::ws_sink::encode_message;
use crate::protocol::engineio::{self, PAYLOAD_SEPARATOR};

/// The transport carrying the session.
pub(crate) enum Transport {
    /// HTTP long-polling: packets wait in the queue for the next GET. Boxed: most sessions poll
    /// only until their upgrade, and every session's actor carries the enum's largest variant.
    Polling(Box<Polling>),
    /// A WebSocket whose WsConn has not started yet; frames wait here.
    Connecting { conn: WsConnId, pending: Vec<Out> },
    /// A WebSocket: frames go straight to its socket (see `ws_sink`).
    WebSocket { conn: WsConnId, link: WsLink },
    /// The session ended; nothing is carried any more.
    Closed,
}

/// The polling side: what waits for the next GET.
#[derive(Default)]
pub(crate) struct Polling {
    queue: Vec<Out>,
    /// Bytes in `queue`, counted as on their way (`Outbound::forwarded`).
    queued_bytes: usize,
    waiting: Option<Waiting>,
    post_in_progress: bool,
}

/// A GET waiting for packets; answered once.
struct Waiting {
    /// Matches the GET's `PollAbandoned`, so a stale one is ignored.
    ticket: u64,
    answer: oneshot::Sender<String>,
}

/// An upgrade in progress: a second, probing WebSocket (reference §1.6).
pub(crate) struct Probe {
    conn: WsConnId,
    pub(crate) link: WsLink,
    /// `3probe` was sent: polling GETs get `6` until the upgrade completes.
    probed: bool,
    timeout: SpawnHandle,
}

impl Transport {
    /// Long-polling, nothing queued.
    pub(crate) fn polling() -> Transport {
        Transport::Polling(Box::default())
    }

    /// Polling with no GET waiting (a GET may be on its way).
    pub(crate) fn is_polling_without_get(&self) -> bool {
        matches!(self, Transport::Polling(polling) if polling.waiting.is_none())
    }
}

impl Session {
    /// What the polling queue holds, taken out of it (and no longer counted as on its way): for a
    /// last answer that ends with the close.
    pub(super) fn take_polling_queue(&mut self) -> Vec<Out> {
        let Transport::Polling(polling) = &mut self.transport else {
            return Vec::new();
        };
        self.outbound.polled(mem::take(&mut polling.queued_bytes));
        mem::take(&mut polling.queue)
    }
}

/// Flush the polling queue at the end of the actor turn that wrote to it.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct FlushPoll;

impl Session {
    /// Writes a live batch: on a WebSocket straight from the shared frames (nothing cloned), else
    /// as [`write_all`](Self::write_all).
    pub(crate) fn write_batch(&mut self, batch: &Batch) {
        if self.closed.is_some() {
            return;
        }
        match &self.transport {
            Transport::WebSocket { link, .. } => {
                link.send_with(|out| {
                    batch.for_each_message(|message| encode_message(out, message))
                });
            }
            _ => self.write_all(batch.to_vec()),
        }
    }

    /// Writes frames to whatever transport carries the session now.
    pub(crate) fn write_all(&mut self, frames: Vec<Out>) {
        if frames.is_empty() || self.closed.is_some() {
            return;
        }
        let bytes: usize = frames.iter().map(Out::len).sum();
        match &mut self.transport {
            Transport::Polling(polling) => {
                self.outbound.forwarded(bytes);
                polling.queue.extend(frames);
                polling.queued_bytes += bytes;
                // A client that does not poll cannot grow its queue without bound.
                self.overflowed |= polling.queued_bytes > self.parts.settings.max_buffered;
                // Everything written in this actor turn goes out in one GET answer (a CONNECT reply
                // and the offset event after it, a replay step...): flushed when the turn is over.
                if !self.flush_scheduled {
                    self.flush_scheduled = true;
                    if let Some(me) = self.me.as_ref().and_then(WeakAddr::upgrade) {
                        me.do_send(FlushPoll);
                    }
                }
            }
            // Counted once the WsConn is up and they are forwarded to it.
            Transport::Connecting { pending, .. } => pending.extend(frames),
            Transport::WebSocket { link, .. } => {
                link.send(&frames);
            }
            Transport::Closed => {}
        }
    }

    /// Answers a waiting GET with everything queued, if there is a GET and something queued (and no
    /// upgrade has paused polling). False if that GET's client had gone away: the session must then
    /// close (its packets have nowhere to go).
    fn flush_poll(&mut self) -> bool {
        if self.upgrade.as_ref().is_some_and(|probe| probe.probed) {
            return true;
        }
        let Transport::Polling(polling) = &mut self.transport else {
            return true;
        };
        if polling.queue.is_empty() || polling.waiting.is_none() {
            return true;
        }
        if polling
            .waiting
            .as_ref()
            .is_some_and(|w| w.answer.is_closed())
        {
            return false;
        }
        let payload = encode_payload(mem::take(&mut polling.queue));
        self.outbound.polled(mem::take(&mut polling.queued_bytes));
        if let Some(waiting) = polling.waiting.take() {
            let _ = waiting.answer.send(payload);
        }
        true
    }

    /// Answers a waiting GET with `text` (a noop or a close), whatever is queued.
    pub(crate) fn release_poll(&mut self, text: &str) {
        if let Transport::Polling(polling) = &mut self.transport {
            if let Some(waiting) = polling.waiting.take() {
                let _ = waiting.answer.send(text.to_owned());
            }
        }
    }

    fn on_attached(&mut self, conn: WsConnId, link: WsLink, ctx: &mut Context<Self>) {
        if self.closed.is_some() {
            return link.close(SessionError::NotTheTransport("session ended"));
        }
        match &mut self.transport {
            Transport::Connecting {
                conn: expected,
                pending,
            } if *expected == conn => {
                let frames = mem::take(pending);
                self.transport = Transport::WebSocket { conn, link };
                self.write_all(frames);
            }
            // A second WebSocket: an upgrade probe, if the session is on polling and not upgrading.
            Transport::Polling(_) if self.upgrade.is_none() => {
                let timeout = ctx.run_later(self.settings().upgrade_timeout, move |act, _| {
                    if let Some(probe) = act.upgrade.take_if(|probe| probe.conn == conn) {
                        debug!("upgrade timed out eio_sid={}", act.eio_sid);
                        let why = SessionError::NotTheTransport("upgrade timed out");
                        probe.link.close(why);
                    }
                });
                self.upgrade = Some(Box::new(Probe {
                    conn,
                    link,
                    probed: false,
                    timeout,
                }));
            }
            // Already upgraded or upgrading: that WebSocket is closed at once (reference §1.6).
            _ => link.close(SessionError::NotTheTransport(
                "already upgraded or upgrading",
            )),
        }
    }

    fn on_probe_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let Some(probe) = self.upgrade.as_mut() else {
            return;
        };
        match (text, probe.probed) {
            ("2probe", false) => {
                probe.probed = true;
                probe.link.send(&[Out::Text("3probe".into())]);
                // The pending GET ends with a noop, so the client can pause polling.
                self.release_poll("6");
            }
            ("5", true) => {
                let Some(probe) = self.upgrade.take() else {
                    return;
                };
                ctx.cancel_future(probe.timeout);
                self.release_poll("6");
                let websocket = Transport::WebSocket {
                    conn: probe.conn,
                    link: probe.link,
                };
                let queued = match mem::replace(&mut self.transport, websocket) {
                    Transport::Polling(polling) => {
                        self.outbound.polled(polling.queued_bytes);
                        polling.queue
                    }
                    _ => Vec::new(),
                };
                if let Some(seat) = self.admin_seat.as_mut() {
                    seat.upgraded();
                }
                debug!(
                    "session upgraded eio_sid={} transport=websocket",
                    self.eio_sid
                );
                let metrics = &self.parts.metrics;
                metrics.upgrades.inc();
                metrics.connections.polling.add(-1);
                metrics.connections.websocket.add(1);
                self.write_all(queued);
            }
            // Anything else on the probing WebSocket closes it; the polling session goes on.
            _ => {
                if let Some(probe) = self.upgrade.take() {
                    ctx.cancel_future(probe.timeout);
                    let why = SessionError::NotTheTransport("unexpected frame during the upgrade");
                    probe.link.close(why);
                }
            }
        }
    }
}

/// A polling payload: packets joined by the record separator; binary messages as `b<base64>`.
pub(super) fn encode_payload(frames: Vec<Out>) -> String {
    let mut payload = String::new();
    for (i, frame) in frames.into_iter().enumerate() {
        if i > 0 {
            payload.push(PAYLOAD_SEPARATOR);
        }
        match frame {
            Out::Text(text) => payload.push_str(&text),
            Out::Binary(bytes) => payload.push_str(&engineio::encode_binary_for_polling(&bytes)),
        }
    }
    payload
}

impl Handler<WsEvent> for Session {
    type Result = ();

    fn handle(&mut self, WsEvent { conn, kind }: WsEvent, ctx: &mut Self::Context) {
        let main = matches!(&self.transport, Transport::WebSocket { conn: c, .. } if *c == conn);
        let probe = self
            .upgrade
            .as_ref()
            .is_some_and(|probe| probe.conn == conn);
        match kind {
            WsEventKind::Attached(attach) => self.on_attached(conn, attach.take(), ctx),
            WsEventKind::Text(text) if main => self.on_text(&text, ctx),
            WsEventKind::Text(text) if probe => self.on_probe_text(&text, ctx),
            WsEventKind::Binary(bytes) if main => self.on_binary(bytes, ctx),
            WsEventKind::Binary(_) if probe => self.on_probe_text("", ctx),
            WsEventKind::Ended(why) if main => {
                // The WebSocket is already closing: no close frame to send.
                self.transport = Transport::Closed;
                self.close(ctx, why);
            }
            WsEventKind::Ended(_) if probe => {
                if let Some(probe) = self.upgrade.take() {
                    ctx.cancel_future(probe.timeout);
                }
            }
            // From a WebSocket that is no longer this session's.
            _ => {}
        }
    }
}

impl Handler<Poll> for Session {
    type Result = Result<PollAnswer, PollRefused>;

    fn handle(&mut self, _: Poll, ctx: &mut Self::Context) -> Self::Result {
        if self.pong_overdue() {
            self.close(ctx, SessionError::PingTimeout);
        }
        if let Some(answer) = self.lingering.take() {
            // The GET that was on its way when the session closed: its noop (or DISCONNECTs), then
            // the session is gone.
            self.parts.registry.do_send(Remove(self.eio_sid.clone()));
            ctx.stop();
            return Ok(PollAnswer::Now(answer.into()));
        }
        if self.closed.is_some() {
            return Err(PollRefused::Gone);
        }
        let probed = self.upgrade.as_ref().is_some_and(|probe| probe.probed);
        let Transport::Polling(polling) = &mut self.transport else {
            return Err(PollRefused::WrongTransport);
        };
        if polling.waiting.is_some() {
            // A second GET while one waits: the first ends with a close, the second is refused.
            let why = SessionError::Transport("a second GET while one is pending");
            self.close(ctx, why.clone());
            return Err(PollRefused::Failed(why));
        }
        if probed {
            return Ok(PollAnswer::Now("6".to_owned()));
        }
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let (answer, receiver) = oneshot::channel();
        polling.waiting = Some(Waiting { ticket, answer });
        if !polling.queue.is_empty() {
            self.flush_poll();
        }
        Ok(PollAnswer::Later {
            ticket,
            answer: receiver,
        })
    }
}

impl Handler<FlushPoll> for Session {
    type Result = ();

    fn handle(&mut self, _: FlushPoll, ctx: &mut Self::Context) {
        self.flush_scheduled = false;
        if self.overflowed {
            return self.close(ctx, SessionError::SlowConsumer);
        }
        if !self.flush_poll() {
            let why = SessionError::Transport("poll connection closed prematurely");
            self.close(ctx, why);
        }
    }
}

impl Handler<PollAbandoned> for Session {
    type Result = ();

    fn handle(&mut self, PollAbandoned(ticket): PollAbandoned, ctx: &mut Self::Context) {
        let abandoned = matches!(&self.transport,
            Transport::Polling(polling) if polling.waiting.as_ref().is_some_and(|w| w.ticket == ticket));
        if abandoned {
            let why = SessionError::Transport("poll connection closed prematurely");
            self.close(ctx, why);
        }
    }
}

impl Handler<PostBegin> for Session {
    type Result = Result<(), PollRefused>;

    fn handle(&mut self, _: PostBegin, ctx: &mut Self::Context) -> Self::Result {
        if self.closed.is_some() {
            // Closed, but its last answer (the DISCONNECTs, or the close after them) not yet taken:
            // Node's socket is "closing" until then and takes a POST ("ok", its packets ignored).
            // The client's flood often has one more POST on the way; a 400 there would read as a
            // transport error to reconnect from, before the client has read the DISCONNECT.
            return match self.lingering {
                Some(_) => Ok(()),
                None => Err(PollRefused::Gone),
            };
        }
        let Transport::Polling(polling) = &mut self.transport else {
            return Err(PollRefused::WrongTransport);
        };
        if mem::replace(&mut polling.post_in_progress, true) {
            let why = SessionError::Transport("a second POST while one is in progress");
            self.close(ctx, why.clone());
            return Err(PollRefused::Failed(why));
        }
        Ok(())
    }
}

impl Handler<PostBody> for Session {
    type Result = Result<(), PollRefused>;

    fn handle(&mut self, PostBody(body): PostBody, ctx: &mut Self::Context) -> Self::Result {
        if let Transport::Polling(polling) = &mut self.transport {
            polling.post_in_progress = false;
        }
        // Bytes that are not UTF-8 read as U+FFFD, as Node's `Buffer.toString()` reads a polling
        // body: a client's text is never refused for its encoding alone.
        let text = String::from_utf8_lossy(&body);
        // Packets before a bad one are still processed, as Node does (reference §1.2).
        for packet in engineio::decode_payload(&text) {
            if self.closed.is_some() {
                break;
            }
            match packet {
                Ok(packet) => self.on_eio(packet, ctx),
                Err(err) => {
                    let why = SessionError::Parse(format!("polling payload: {err}"));
                    self.close(ctx, why.clone());
                    return Err(PollRefused::Failed(why));
                }
            }
        }
        Ok(())
    }
}
