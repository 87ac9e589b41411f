//! Reading a client's WebSocket: the socket's bytes through the [`Deframer`] (`ws_frames`), and
//! the bytes held for unfinished frames and messages charged to the instance's budget
//! (`HUB_MAX_UNFINISHED_BYTES`).
//!
//! Owns: per connection, its deframer and its [`Charge`] against the shared [`UnfinishedBudget`]
//! (a Session holds one too, for a binary packet's attachments while it waits for the rest).
//! Receives: bytes from the socket. Yields: [`Incoming`] messages and control frames to its WsConn,
//! or a [`ReadError`] after which nothing more is decoded.
//!
//! What is charged: the bytes a connection holds while it waits for the rest of a frame or of a
//! fragmented message, beyond its own allowance (`HUB_UNFINISHED_ALLOWANCE_BYTES`, 64 KiB).
//! The socket is read 4 KiB at a time and a message of a few KiB already spans TCP segments, so
//! "whole in one read" cannot be what spares ordinary messages: without the allowance, clients
//! holding the budget full got every other client's 6 KB message refused. Within the allowance a
//! connection never touches the budget; the allowance's total is bounded by the connections the
//! session caps let in.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context as TaskContext, Poll, Waker};

use actix_web::rt::net::TcpStream;
use actix_web::web::BytesMut;
use futures_core::Stream;

use super::ws_frames::{Deframer, FramingError, Incoming};
use crate::limited_warn;
use crate::log_limit::LimitedLog;
use crate::metrics::Metrics;

/// Bytes read from the socket per `read`.
const READ_CHUNK: usize = 4096;

/// Why a connection's reader stopped decoding.
#[derive(Debug)]
pub enum ReadError {
    /// The client broke a framing rule.
    Framing(FramingError),
    /// Its unfinished frames and messages would pass the instance's budget.
    OverBudget,
    /// The socket failed.
    Io(io::Error),
}

/// The bytes all connections of an instance may hold for unfinished frames and fragmented
/// messages (`HUB_MAX_UNFINISHED_BYTES`), past each connection's own allowance
/// (`HUB_UNFINISHED_ALLOWANCE_BYTES`). A connection whose growth would pass it is refused
/// (close 1013); one that stays under it, or within its allowance, is not affected by others. The
/// count itself (allowances not included) is the `hub_websocket_unfinished_bytes` gauge.
#[derive(Debug)]
pub struct UnfinishedBudget {
    limit: i64,
    allowance: usize,
    metrics: Arc<Metrics>,
}

/// Clients refused for the budget (the line is rate-limited: a flood of them is one line a while).
static OVER_BUDGET: LimitedLog = LimitedLog::per_minute(6);

impl UnfinishedBudget {
    /// A budget of `limit` bytes shared by all connections, charged for what each holds beyond
    /// `allowance` bytes; counted (and its refusals too) in `metrics`.
    pub fn new(limit: usize, allowance: usize, metrics: Arc<Metrics>) -> UnfinishedBudget {
        UnfinishedBudget {
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
            allowance,
            metrics,
        }
    }

    /// What a connection holding `held` bytes is charged: what passes its allowance.
    fn charge_for(&self, held: usize) -> usize {
        held.saturating_sub(self.allowance)
    }

    /// Bytes held now, by all connections.
    pub fn held(&self) -> i64 {
        self.metrics.ws_unfinished_bytes.get()
    }

    /// Takes `bytes` more, unless that passes the limit (then counts and logs the refusal).
    fn grow(&self, bytes: usize) -> bool {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        if self
            .metrics
            .ws_unfinished_bytes
            .add_within(bytes, self.limit)
        {
            return true;
        }
        self.metrics.ws_unfinished_refused.inc();
        limited_warn!(
            OVER_BUDGET,
            "connection closed (a WebSocket with 1013): the bytes it holds for unfinished frames, \
             messages or a binary packet's attachments would pass HUB_MAX_UNFINISHED_BYTES={} \
             (held now past the allowances of {} bytes: {})",
            self.limit,
            self.allowance,
            self.held()
        );
        false
    }

    fn release(&self, bytes: usize) {
        if bytes > 0 {
            let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
            self.metrics.ws_unfinished_bytes.sub(bytes);
        }
    }
}

/// What one holder has taken from the [`UnfinishedBudget`]: a connection's reader for its
/// unfinished frames and messages, a Session for the attachments of a binary packet it has not
/// all of yet (each attachment is a whole message, so its reader holds nothing for it once read).
/// Settled as what the holder holds changes; given back when dropped, however the holder ends.
pub struct Charge {
    budget: Arc<UnfinishedBudget>,
    /// What this holder has taken (what it holds beyond the allowance).
    bytes: usize,
}

impl Charge {
    /// Nothing taken yet.
    pub fn new(budget: Arc<UnfinishedBudget>) -> Charge {
        Charge { budget, bytes: 0 }
    }

    /// Takes (or gives back) the difference for a holder now holding `held` bytes; false if the
    /// budget refuses the growth (nothing is taken then).
    pub fn settle(&mut self, held: usize) -> bool {
        let charge = self.budget.charge_for(held);
        if charge > self.bytes {
            if !self.budget.grow(charge - self.bytes) {
                return false;
            }
        } else if charge < self.bytes {
            self.budget.release(self.bytes - charge);
        }
        self.bytes = charge;
        true
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// Whether a connection's reader may read; shared by the WsSink (which pauses and resumes it, from
/// the thread of whoever writes) and its FrameReader (which waits while paused).
#[derive(Default)]
pub struct ReadGate {
    paused: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl ReadGate {
    /// Stop reading (the client does not take its output).
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Relaxed);
    }

    /// Read again.
    pub fn resume(&self) {
        if self.paused.swap(false, Ordering::AcqRel) {
            let waker = self.waker().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    fn waker(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        self.waker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether paused; if so, `cx` is woken on resume.
    fn is_paused(&self, cx: &TaskContext<'_>) -> bool {
        if !self.paused.load(Ordering::Acquire) {
            return false;
        }
        // Checked again once the waker is stored: a resume in between either sees the waker or
        // left `paused` false for this check.
        let mut waker = self.waker();
        *waker = Some(cx.waker().clone());
        self.paused.load(Ordering::Acquire)
    }
}

/// The client's messages, read from the socket as they come. Between messages it holds no buffer.
/// After an error nothing more is decoded: the rest is read and dropped until the client closes
/// (so our close frame is not lost to a reset), and the stream ends there.
pub struct FrameReader {
    socket: Arc<TcpStream>,
    deframer: Deframer,
    gate: Arc<ReadGate>,
    /// What this connection has taken from the instance's budget.
    charge: Charge,
    /// An error was reported: discard until the end.
    discarding: bool,
    /// The end was reached.
    done: bool,
}

impl FrameReader {
    /// A reader of `socket`, starting with `early` (bytes that came with the upgrade request).
    pub fn new(
        socket: Arc<TcpStream>,
        early: BytesMut,
        max_payload: usize,
        gate: Arc<ReadGate>,
        budget: Arc<UnfinishedBudget>,
    ) -> FrameReader {
        FrameReader {
            socket,
            deframer: Deframer::new(early, max_payload),
            gate,
            charge: Charge::new(budget),
            discarding: false,
            done: false,
        }
    }

    /// Settles its charge to what the deframer holds now; false if the budget refuses.
    fn settle(&mut self) -> bool {
        self.charge.settle(self.deframer.held())
    }

    /// The connection it reads.
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Nothing more is decoded; what was held is given back.
    fn fail(&mut self, err: ReadError) -> Poll<Option<Result<Incoming, ReadError>>> {
        self.discarding = true;
        self.deframer.clear();
        self.settle();
        Poll::Ready(Some(Err(err)))
    }
}

impl Stream for FrameReader {
    type Item = Result<Incoming, ReadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.gate.is_paused(cx) {
                return Poll::Pending;
            }
            if this.discarding {
                this.deframer.clear();
            } else {
                match this.deframer.next() {
                    Ok(Some(incoming)) => {
                        // What the message held is its session's now (a binary packet's attachment
                        // is charged there): given back at once, not at the next read, which a
                        // paused reader may not make for a while. Less held: never refused.
                        this.settle();
                        return Poll::Ready(Some(Ok(incoming)));
                    }
                    Ok(None) => {}
                    Err(err) => return this.fail(ReadError::Framing(err)),
                }
                // More bytes are needed: what waits for them counts against the budget.
                if !this.settle() {
                    return this.fail(ReadError::OverBudget);
                }
            }
            if let Err(err) = ready!(this.socket.poll_read_ready(cx)) {
                this.done = true;
                return Poll::Ready(Some(Err(ReadError::Io(err))));
            }
            let mut chunk = [0u8; READ_CHUNK];
            match this.socket.try_read(&mut chunk) {
                Ok(0) => this.done = true,
                Ok(n) => this.deframer.extend(&chunk[..n]),
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(err) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(ReadError::Io(err))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_growth_past_its_limit_and_takes_back_releases() {
        let metrics = Arc::new(Metrics::default());
        let budget = UnfinishedBudget::new(100, 0, metrics.clone());
        assert!(budget.grow(60));
        assert!(!budget.grow(41));
        assert!(budget.grow(40));
        budget.release(100);
        assert_eq!(budget.held(), 0);
        assert_eq!(metrics.ws_unfinished_refused.get(), 1);
    }

    #[test]
    fn a_charge_follows_what_its_holder_holds_and_is_given_back_when_dropped() {
        let budget = Arc::new(UnfinishedBudget::new(100, 10, Arc::new(Metrics::default())));
        let mut charge = Charge::new(budget.clone());
        assert!(charge.settle(70));
        assert_eq!(budget.held(), 60);
        assert!(charge.settle(40), "less held: the difference is given back");
        assert_eq!(budget.held(), 30);
        assert!(
            charge.settle(50),
            "more held again: only the difference is taken"
        );
        assert_eq!(budget.held(), 40);
        assert!(charge.settle(40));
        assert_eq!(budget.held(), 30);
        let mut other = Charge::new(budget.clone());
        assert!(
            !other.settle(90),
            "80 more would pass 100 with the first's 30"
        );
        assert_eq!(budget.held(), 30, "a refused growth takes nothing");
        drop(other);
        assert_eq!(budget.held(), 30, "nothing taken, nothing given back");
        drop(charge);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn each_connection_is_charged_only_past_its_allowance() {
        let budget = UnfinishedBudget::new(100, 64, Arc::new(Metrics::default()));
        assert_eq!(budget.charge_for(0), 0);
        assert_eq!(budget.charge_for(64), 0);
        assert_eq!(budget.charge_for(65), 1);
        assert_eq!(budget.charge_for(200), 136);
    }
}
