//! StreamBridge: the only owner of the log backend.
//!
//! Owns: the [`LogBackend`] (embedded log or Redis connection) and the id of the last entry it handed on.
//! Receives: Publish (from [`crate::notification::publish`]); ReadAfter, Tip, KeepLive, SaveSession,
//! ClaimSession, DropSession (from Recovery); LogEvent (from the backend's read loop); IsReady (from
//! `/readyz`).
//! Sends: Fanout to the Hub, for every entry read from the log: this instance's appends travel the same
//! path as everyone else's, so every client sees one order. DisconnectAll to the Hub when the log's
//! epoch changed: its clients' offsets mean nothing in the new log, and only a reconnect (whose resume
//! then fails cleanly) tells them so.
//!
//! Until the read loop knows where it starts, Publish, Tip and ReadAfter are refused as unavailable:
//! an entry appended, or an offset handed out, before that point could fall before the loop's start
//! and never be delivered here. The embedded log knows its start at once; Redis within a round trip.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use log::{error, info};

use super::disconnect::SessionError;
use super::hub::{DisconnectAll, Fanout, Hub};
use crate::metrics::Metrics;
use crate::protocol::ids::{Pid, StreamId};
use crate::protocol::target::Target;
use crate::store::{
    Claim, LogBackend, LogEntry, LogEvent, Position, ReplayScope, SessionRecord, StoreError,
    StoreFuture,
};

/// Append an event to the log. Resolves once it is in the log; delivery follows through the read loop.
#[derive(Message)]
#[rtype(result = "Result<StreamId, StoreError>")]
pub struct Publish {
    /// Who it is for.
    pub target: Target,
    /// Compact JSON array text of the event: `["notification",{…}]`.
    pub args: Arc<str>,
}

/// Read up to `count` entries after `after` (recovery replay), for `scope`'s socket.
#[derive(Message)]
#[rtype(result = "Result<Vec<LogEntry>, StoreError>")]
pub struct ReadAfter {
    /// Exclusive start.
    pub after: StreamId,
    /// Batch size.
    pub count: usize,
    /// The epoch, namespace and rooms the read is checked against.
    pub scope: ReplayScope,
}

/// The id of the newest entry, and the log's epoch.
#[derive(Message)]
#[rtype(result = "Result<Position, StoreError>")]
pub struct Tip;

/// Write (refresh) a live session's copy, resumable only if this instance dies.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct KeepLive {
    /// The record.
    pub record: SessionRecord,
    /// When it expires.
    pub ttl: Duration,
}

/// Write a dropped session's record, resumable anywhere, once.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct SaveSession {
    /// The record.
    pub record: SessionRecord,
    /// When it expires.
    pub ttl: Duration,
}

/// Take a session record, atomically and once.
#[derive(Message)]
#[rtype(result = "Result<Claim, StoreError>")]
pub struct ClaimSession(pub Pid);

/// Delete a session record and live copy.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct DropSession(pub Pid);

/// Resolves after every backend command issued before it (the backend runs commands in order).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Barrier;

/// Whether the backend is reachable and the read loop running.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsReady;

/// The actor.
pub struct StreamBridge {
    /// The log; nobody else holds it.
    backend: Box<dyn LogBackend>,
    /// Where entries go once read.
    hub: Addr<Hub>,
    /// The last entry handed to the Hub, logged at shutdown.
    last_read: StreamId,
    /// Where the read loop starts; `None` until it knows.
    reading_from: Option<StreamId>,
    /// `hub_ready` for a backend that knows its start at once (Redis's read loop sets its own).
    metrics: Arc<Metrics>,
}

impl StreamBridge {
    /// A bridge over `backend`, feeding `hub`.
    pub fn new(
        backend: Box<dyn LogBackend>,
        hub: Addr<Hub>,
        metrics: Arc<Metrics>,
    ) -> StreamBridge {
        StreamBridge {
            backend,
            hub,
            last_read: StreamId::ZERO,
            reading_from: None,
            metrics,
        }
    }

    /// Runs `call` on the backend once the read loop has a start; refuses it before.
    fn when_reading<T: 'static>(
        &mut self,
        call: impl FnOnce(&mut dyn LogBackend) -> StoreFuture<T>,
    ) -> StoreFuture<T> {
        if self.reading_from.is_none() {
            let refused = StoreError::Unavailable("the stream is not being read yet".into());
            return Box::pin(std::future::ready(Err(refused)));
        }
        call(self.backend.as_mut())
    }
}

impl Actor for StreamBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.reading_from = self.backend.start_reading(ctx.address().recipient());
        if self.reading_from.is_some() && self.backend.is_ready() {
            self.metrics.log_reading.set(1);
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        info!(
            "stream bridge stopped, last entry handed on {}",
            self.last_read
        );
    }
}

impl Handler<Publish> for StreamBridge {
    type Result = ResponseFuture<Result<StreamId, StoreError>>;

    fn handle(&mut self, msg: Publish, _: &mut Self::Context) -> Self::Result {
        let append = self.when_reading(|log| log.append(&msg.target, msg.args));
        Box::pin(async move {
            append
                .await
                .inspect_err(|err| error!("append failed, broadcast refused: {err}"))
        })
    }
}

impl Handler<LogEvent> for StreamBridge {
    type Result = ();

    fn handle(&mut self, event: LogEvent, _: &mut Self::Context) {
        match event {
            LogEvent::ReadingFrom(start) => self.reading_from = Some(start),
            LogEvent::Entries(entries) => {
                if let Some(last) = entries.last() {
                    self.last_read = last.id;
                    self.hub.do_send(Fanout(entries));
                }
            }
            LogEvent::EpochChanged { was, now } => {
                self.metrics.log_epoch_changes.inc();
                error!("log epoch changed from {was} to {now}: disconnecting every client so it reconnects and learns it did not recover");
                self.hub.do_send(DisconnectAll(SessionError::LogReplaced));
            }
        }
    }
}

impl Handler<ReadAfter> for StreamBridge {
    type Result = ResponseFuture<Result<Vec<LogEntry>, StoreError>>;

    fn handle(&mut self, msg: ReadAfter, _: &mut Self::Context) -> Self::Result {
        self.when_reading(|log| log.read_after(msg.after, msg.count, &msg.scope))
    }
}

impl Handler<Tip> for StreamBridge {
    type Result = ResponseFuture<Result<Position, StoreError>>;

    fn handle(&mut self, _: Tip, _: &mut Self::Context) -> Self::Result {
        self.when_reading(|log| log.tip())
    }
}

impl Handler<KeepLive> for StreamBridge {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: KeepLive, _: &mut Self::Context) -> Self::Result {
        self.backend.keep_live(msg.record, msg.ttl)
    }
}

impl Handler<SaveSession> for StreamBridge {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: SaveSession, _: &mut Self::Context) -> Self::Result {
        self.backend.save_session(msg.record, msg.ttl)
    }
}

impl Handler<ClaimSession> for StreamBridge {
    type Result = ResponseFuture<Result<Claim, StoreError>>;

    fn handle(&mut self, ClaimSession(pid): ClaimSession, _: &mut Self::Context) -> Self::Result {
        self.backend.claim_session(&pid)
    }
}

impl Handler<DropSession> for StreamBridge {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, DropSession(pid): DropSession, _: &mut Self::Context) -> Self::Result {
        self.backend.drop_session(&pid)
    }
}

impl Handler<Barrier> for StreamBridge {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Barrier, _: &mut Self::Context) -> Self::Result {
        let round_trip = self.backend.tip();
        Box::pin(async move {
            let _ = round_trip.await;
        })
    }
}

impl Handler<IsReady> for StreamBridge {
    type Result = bool;

    fn handle(&mut self, _: IsReady, _: &mut Self::Context) -> bool {
        self.reading_from.is_some() && self.backend.is_ready()
    }
}
