//! StreamBridge: the only owner of the log backend.
//!
//! Owns: the [`LogBackend`] (embedded log or Redis connection) and the id of the last entry it handed on.
//! Receives: Publish, PublishOnce (from [`crate::notification::publish`]); RequestDisconnect (from
//! `POST /sockets/disconnect`); ReadAfter, Tip, KeepLive,
//! SaveSession, ClaimSession, DropSession (from Recovery); ReadRange (from `GET /notifications`); LogEvent (from the backend's read loop);
//! IsReady (from `/readyz`).
//! Sends: Fanout to the Hub, for every entry read from the log, and DisconnectSockets for every
//! disconnect request read from it: this instance's appends travel the same
//! path as everyone else's, so every client sees one order. DisconnectAll to the Hub when the log's
//! epoch changed: its clients' offsets mean nothing in the new log, and only a reconnect (whose resume
//! then fails cleanly) tells them so.
//!
//! Until the read loop knows where it starts, Publish, Tip and ReadAfter are refused as unavailable:
//! an entry appended, or an offset handed out, before that point could fall before the loop's start
//! and never be delivered here. The embedded log knows its start at once; Redis within a round trip.
//!
//! A failed append makes the instance unready (`/readyz` 503, `hub_appends_failing` 1) until an
//! append succeeds or a probe of the append path does (one every [`PROBE_INTERVAL`] meanwhile;
//! with several shards, per shard: an append to one says nothing of another's): the
//! read loop alone can be healthy while appends fail (Redis stopped between two reads, out of
//! memory, a read-only replica). An append Redis took but too few replicas confirmed
//! (`HUB_REDIS_MIN_REPLICAS`) is not a failed one here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use log::{error, info};

use super::disconnect::SessionError;
use super::hub::{DisconnectAll, DisconnectSockets, Fanout, Hub};
use crate::log_limit::LimitedLog;
use crate::metrics::Metrics;
use crate::notification::Source;
use crate::protocol::cluster;
use crate::protocol::ids::{Pid, StreamId};
use crate::protocol::offset::{shard_of, Offset};
use crate::protocol::target::Target;
use crate::store::{
    AppendKey, Claim, Epoch, KeyedAppend, LogBackend, LogEvent, LogRange, RangeQuery, ReplayScope,
    SessionRecord, StoreError, StoreFuture,
};

mod shards;

pub use self::shards::{LogPosition, ReplayRead};

/// How often the append path is probed while appends fail.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Failed appends: every publisher during an outage causes one.
static APPEND_FAILED: LimitedLog = LimitedLog::per_minute(6);
/// Appends whose outcome is unknown.
static APPEND_UNKNOWN: LimitedLog = LimitedLog::per_minute(6);

/// Append an event to the log. Resolves once it is in the log; delivery follows through the read loop.
#[derive(Message)]
#[rtype(result = "Result<StreamId, StoreError>")]
pub struct Publish {
    /// Who it is for.
    pub target: Target,
    /// Compact JSON array text of the event: `["notification",{…}]`.
    pub args: Arc<str>,
    /// Which door it came through (counted in `hub_notifications_published_total`).
    pub source: Source,
}

/// Append an event unless its idempotency key was appended before (then append nothing and answer
/// with the first append). Resolves once the log answered.
#[derive(Message)]
#[rtype(result = "Result<KeyedAppend, StoreError>")]
pub struct PublishOnce {
    /// Who it is for.
    pub target: Target,
    /// Compact JSON array text of the event: `["notification",{…}]`.
    pub args: Arc<str>,
    /// The key, the request's fingerprint and the receipt to keep with it.
    pub key: AppendKey,
    /// Which door it came through (counted in `hub_notifications_published_total`).
    pub source: Source,
}

/// Ask every instance on the log to disconnect the sockets of a target (`POST /sockets/disconnect`).
/// Resolves once the log took the request; the disconnects follow through the read loop.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct RequestDisconnect(pub cluster::DisconnectSockets);

/// Read about `count` entries after `after`, spread over the shards (a page of a recovery replay),
/// each stamped with the offset it carries.
#[derive(Message)]
#[rtype(result = "Result<ReplayRead, StoreError>")]
pub struct ReadAfter {
    /// Exclusive start, one id per shard.
    pub after: Offset,
    /// Batch size.
    pub count: usize,
    /// The epoch, namespace and rooms the read is checked against.
    pub scope: ReplayScope,
}

/// Read a stretch of the log, either way (a page of the history API, `crate::history`).
#[derive(Message)]
#[rtype(result = "Result<LogRange, StoreError>")]
pub struct ReadRange(pub RangeQuery);

/// Where a fresh session starts (see [`LogPosition`]), and the log's epoch.
#[derive(Message)]
#[rtype(result = "Result<LogPosition, StoreError>")]
pub struct Tip;

/// What this instance's read loops have handed on to the Hub, shard by shard (`None` until every
/// loop knows its start).
#[derive(Message)]
#[rtype(result = "Option<Offset>")]
pub struct HandedOn;

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

/// Take a session record, atomically and once, if `owner` owns it (see [`LogBackend::claim_session`]).
#[derive(Message)]
#[rtype(result = "Result<Claim, StoreError>")]
pub struct ClaimSession {
    /// The session.
    pub pid: Pid,
    /// The resuming socket's `sub`; the record's must be the same.
    pub owner: Option<Box<str>>,
}

/// Delete a session record and live copy.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct DropSession(pub Pid);

/// Resolves after every backend command issued before it (the backend runs commands in order).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Barrier;

/// Whether the backend is reachable, the read loop running and appends not failing.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsReady;

/// The actor.
pub struct StreamBridge {
    /// The log, one backend per shard (`HUB_STREAM_SHARDS`; one stream: one); nobody else holds
    /// it. Shard 0's also holds the session records.
    shards: Vec<Box<dyn LogBackend>>,
    /// Where entries go once read.
    hub: Addr<Hub>,
    /// Per shard, the last entry handed to the Hub (or where its loop started): every entry a
    /// client gets carries this as its offset, and a replay reads no shard past it.
    handed_on: Offset,
    /// Where each shard's read loop starts; `None` until it knows.
    reading_from: Vec<Option<StreamId>>,
    /// `hub_ready` for a backend that knows its start at once (Redis's read loop sets its own);
    /// `hub_appends_failing` and the append counters.
    metrics: Arc<Metrics>,
    /// Whether a probe of the append path is scheduled or running (at most one at a time).
    probing: bool,
    /// Per shard, whether its appends fail (until one succeeds, or a probe of it does):
    /// `hub_appends_failing` is 1 while any does, whichever shard the last append went to.
    failing: Vec<bool>,
    /// The shard count of other instances on this stream key, while it is not this one's
    /// ([`LogEvent::LayoutConflict`]): nothing is appended or read meanwhile.
    layout_conflict: Option<String>,
    /// Tip requests that came while the tip was being read: answered together by the next read,
    /// which starts once that one is over (see `Handler<Tip>`).
    tip_waiting: Vec<TipAnswer>,
    /// Whether a read of the tip is in flight.
    tip_reading: bool,
}

/// Where one Tip request's answer goes.
type TipAnswer = tokio::sync::oneshot::Sender<Result<LogPosition, StoreError>>;

impl StreamBridge {
    /// A bridge over `backend`, feeding `hub`.
    pub fn new(
        backend: Box<dyn LogBackend>,
        hub: Addr<Hub>,
        metrics: Arc<Metrics>,
    ) -> StreamBridge {
        StreamBridge::sharded(vec![backend], hub, metrics)
    }

    /// A bridge over a log of `shards.len()` streams (at least one), shard 0 first.
    pub fn sharded(
        shards: Vec<Box<dyn LogBackend>>,
        hub: Addr<Hub>,
        metrics: Arc<Metrics>,
    ) -> StreamBridge {
        assert!(!shards.is_empty(), "a log has at least one stream");
        StreamBridge {
            handed_on: Offset::zero(shards.len()),
            reading_from: vec![None; shards.len()],
            failing: vec![false; shards.len()],
            shards,
            hub,
            metrics,
            probing: false,
            layout_conflict: None,
            tip_waiting: Vec::new(),
            tip_reading: false,
        }
    }

    /// The shard `target`'s entries go to.
    fn shard_index(&self, target: &Target) -> usize {
        let rooms: Vec<&str> = target.rooms.iter().map(|room| room.as_str()).collect();
        shard_of(&rooms, self.shards.len())
    }

    /// Shard 0's backend: the session records, disconnect requests.
    fn first(&mut self) -> &mut dyn LogBackend {
        self.shards[0].as_mut()
    }

    /// Whether every shard's read loop knows its start.
    fn reading(&self) -> bool {
        self.reading_from.iter().all(Option::is_some)
    }

    /// Counts the result of an append to `shard`: a success makes that shard's appends healthy
    /// again, a failure unhealthy until an append to it or a probe of it succeeds. An append
    /// written but not confirmed by enough replicas is an unknown outcome to its publisher, yet the
    /// log took it: healthy (were it unhealthy, a probe, which waits for no replica, would make it
    /// healthy again half a second later, and `/readyz` would flap for as long as replicas are
    /// missing).
    fn appended<T>(
        &mut self,
        shard: usize,
        result: &Result<T, StoreError>,
        ctx: &mut Context<Self>,
    ) {
        self.failing[shard] = result
            .as_ref()
            .is_err_and(|err| !matches!(err, StoreError::NotReplicated(_)));
        let failing = self.failing.iter().any(|failing| *failing);
        self.metrics.appends_failing.set(i64::from(failing));
        match result {
            Ok(_) => {}
            Err(err @ StoreError::NotReplicated(_)) => {
                self.metrics.appends_outcome_unknown.inc();
                APPEND_UNKNOWN.log(
                    log::Level::Error,
                    format_args!("append outcome unknown, it is in the log: {err}"),
                );
            }
            Err(err) => {
                if let StoreError::OutcomeUnknown(_) = err {
                    self.metrics.appends_outcome_unknown.inc();
                    APPEND_UNKNOWN.log(
                        log::Level::Error,
                        format_args!("append outcome unknown, it may be in the log: {err}"),
                    );
                } else {
                    self.metrics.appends_failed.inc();
                    APPEND_FAILED.log(
                        log::Level::Error,
                        format_args!("append failed, nothing was published: {err}"),
                    );
                }
                if !self.probing {
                    self.probing = true;
                    ctx.run_later(PROBE_INTERVAL, Self::probe);
                }
            }
        }
    }

    /// Counts a publish from `source`: `Ok(true)` appended, `Ok(false)` nothing new (an
    /// idempotent replay or a reused key), `Err` failed.
    fn published(&self, source: Source, outcome: Result<bool, &StoreError>) {
        if source == Source::Admin {
            return;
        }
        match outcome {
            Ok(true) => match source {
                Source::Http => self.metrics.published.http.inc(),
                Source::Socket => self.metrics.published.socket.inc(),
                Source::Admin => {}
            },
            Ok(false) => {}
            Err(StoreError::OutcomeUnknown(_) | StoreError::NotReplicated(_)) => {
                self.metrics.publish_failed.inc("outcome_unknown")
            }
            Err(_) => self.metrics.publish_failed.inc("unavailable"),
        }
    }

    /// Records a successful append's round trip (failures are counted apart, and a timeout's
    /// duration says nothing about the log).
    fn timed<T>(&self, started: Option<Instant>, result: &Result<T, StoreError>) {
        if let (Some(started), Ok(_)) = (started, result) {
            self.metrics
                .append_seconds
                .observe(started.elapsed().as_secs_f64());
        }
    }

    /// One probe of the append path of every shard whose appends fail; the next one follows
    /// while any still fails.
    fn probe(&mut self, ctx: &mut Context<Self>) {
        let probes: Vec<_> = (self.shards.iter_mut().zip(&self.failing))
            .enumerate()
            .filter(|(_, (_, failing))| **failing)
            .map(|(shard, (backend, _))| (shard, backend.probe_append()))
            .collect();
        if probes.is_empty() {
            self.probing = false;
            return;
        }
        let probe = async move {
            let mut results = Vec::with_capacity(probes.len());
            for (shard, probe) in probes {
                results.push((shard, probe.await.is_ok()));
            }
            results
        };
        ctx.spawn(fut::wrap_future(probe).map(|results, act: &mut Self, ctx| {
            for (shard, ok) in results {
                if ok {
                    act.failing[shard] = false;
                }
            }
            let failing = act.failing.iter().any(|failing| *failing);
            act.metrics.appends_failing.set(i64::from(failing));
            if failing {
                ctx.run_later(PROBE_INTERVAL, Self::probe);
            } else {
                act.probing = false;
            }
        }));
    }

    /// Shard `shard`'s loop starts after `from`: nothing at or before it is handed on.
    fn start_at(&mut self, shard: usize, from: StreamId) {
        if let Some(start) = self.reading_from.get_mut(shard) {
            *start = Some(from);
            self.handed_on.advance(shard, from);
        }
    }

    /// Runs `call` once every read loop has a start; refuses it before.
    fn when_reading<T: 'static>(
        &mut self,
        call: impl FnOnce(&mut Self) -> StoreFuture<T>,
    ) -> StoreFuture<T> {
        if !self.reading() {
            let refused = StoreError::Unavailable("the stream is not being read yet".into());
            return Box::pin(std::future::ready(Err(refused)));
        }
        if let Some(theirs) = &self.layout_conflict {
            let refused = StoreError::Unavailable(format!(
                "other instances on this stream key run HUB_STREAM_SHARDS={theirs}, this one {}: \
                 every instance on a stream key must run the same count",
                self.shards.len()
            ));
            return Box::pin(std::future::ready(Err(refused)));
        }
        call(self)
    }
}

impl Actor for StreamBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        for shard in 0..self.shards.len() {
            let start = self.shards[shard].start_reading(ctx.address().recipient());
            if let Some(from) = start {
                self.start_at(shard, from);
            }
        }
        if self.reading() && self.shards.iter().all(|s| s.is_ready()) {
            self.metrics.log_reading.set(1);
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        info!("stream bridge stopped last_entry={}", self.handed_on);
    }
}

impl Handler<Publish> for StreamBridge {
    type Result = ResponseActFuture<Self, Result<StreamId, StoreError>>;

    fn handle(&mut self, msg: Publish, _: &mut Self::Context) -> Self::Result {
        let shard = self.shard_index(&msg.target);
        let append = self.when_reading(|act| act.shards[shard].append(&msg.target, msg.args));
        let started = self.metrics.append_seconds.is_on().then(Instant::now);
        Box::pin(
            fut::wrap_future(append).map(move |result, act: &mut Self, ctx| {
                act.timed(started, &result);
                act.appended(shard, &result, ctx);
                act.published(msg.source, result.as_ref().map(|_| true));
                result
            }),
        )
    }
}

impl Handler<PublishOnce> for StreamBridge {
    type Result = ResponseActFuture<Self, Result<KeyedAppend, StoreError>>;

    fn handle(&mut self, msg: PublishOnce, _: &mut Self::Context) -> Self::Result {
        let shard = self.shard_index(&msg.target);
        let append =
            self.when_reading(|act| act.shards[shard].append_once(&msg.target, msg.args, &msg.key));
        let started = self.metrics.append_seconds.is_on().then(Instant::now);
        Box::pin(
            fut::wrap_future(append).map(move |result, act: &mut Self, ctx| {
                act.timed(started, &result);
                act.appended(shard, &result, ctx);
                let key_reused = matches!(result, Ok(KeyedAppend::Conflict));
                act.published(
                    msg.source,
                    match &result {
                        Ok(KeyedAppend::Appended(_)) => Ok(true),
                        Ok(_) => Ok(false),
                        Err(err) => Err(err),
                    },
                );
                if key_reused {
                    act.metrics.publish_failed.inc("key_reused");
                }
                if let Ok(KeyedAppend::Replayed { .. }) = result {
                    act.metrics.idempotent_replays.inc();
                }
                result
            }),
        )
    }
}

impl Handler<RequestDisconnect> for StreamBridge {
    type Result = ResponseActFuture<Self, Result<(), StoreError>>;

    fn handle(
        &mut self,
        RequestDisconnect(request): RequestDisconnect,
        _: &mut Self::Context,
    ) -> Self::Result {
        let append = self.when_reading(|act| act.first().disconnect_sockets(&request));
        Box::pin(fut::wrap_future(append).map(|result, act: &mut Self, ctx| {
            act.appended(0, &result, ctx);
            result
        }))
    }
}

impl Handler<LogEvent> for StreamBridge {
    type Result = ();

    fn handle(&mut self, event: LogEvent, _: &mut Self::Context) {
        match event {
            LogEvent::ReadingFrom { shard, from } => self.start_at(shard, from),
            LogEvent::LayoutConflict { shards } => {
                match &shards {
                    Some(theirs) => error!(
                        "other instances on this stream key run HUB_STREAM_SHARDS={theirs}, this \
                         one {}: not appending, reading or ready until they are gone (each would \
                         append where the other does not read)",
                        self.shards.len()
                    ),
                    None => info!("stream shard count agreed: serving"),
                }
                self.layout_conflict = shards;
            }
            LogEvent::Entries(mut entries) => {
                for entry in &mut entries {
                    self.handed_on.advance(entry.shard, entry.id);
                    entry.position = Some(Arc::new(self.handed_on.clone()));
                }
                if let Some(last) = entries.last() {
                    let behind = crate::store::now_ms().saturating_sub(last.id.ms);
                    self.metrics.read_lag_ms.set(behind as i64);
                    self.hub.do_send(Fanout(entries));
                }
            }
            LogEvent::DisconnectSockets(request) => self.hub.do_send(DisconnectSockets(request)),
            LogEvent::EpochChanged {
                shard,
                was,
                now,
                from,
            } => {
                // The shard starts over with its new stream: keeping the old stream's position
                // would hand out offsets (a fresh session's, every entry's) that its new stream
                // never issued, refused as ahead on every resume. Every client is disconnected
                // below, and its old offsets fail on the epoch anyway.
                self.handed_on.restart(shard, from);
                self.metrics.log_epoch_changes.inc();
                error!("log epoch changed was={was} now={now}: disconnecting every client so it reconnects and learns it did not recover");
                self.hub.do_send(DisconnectAll(SessionError::LogReplaced));
            }
        }
    }
}

impl Handler<ReadAfter> for StreamBridge {
    type Result = ResponseFuture<Result<ReplayRead, StoreError>>;

    fn handle(&mut self, msg: ReadAfter, _: &mut Self::Context) -> Self::Result {
        // Several shards: no shard is read past what the loops handed on (see `shards`).
        let bound = (self.shards.len() > 1).then(|| self.handed_on.clone());
        self.when_reading(|act| {
            shards::read_replay(&mut act.shards, msg.after, bound, msg.count, &msg.scope)
        })
    }
}

impl Handler<ReadRange> for StreamBridge {
    type Result = ResponseFuture<Result<LogRange, StoreError>>;

    fn handle(&mut self, ReadRange(query): ReadRange, _: &mut Self::Context) -> Self::Result {
        if self.shards.len() > 1 {
            let refused = StoreError::Unsupported(
                "the history API reads a log of one stream; this hub runs HUB_STREAM_SHARDS > 1",
            );
            return Box::pin(std::future::ready(Err(refused)));
        }
        self.when_reading(|act| act.first().read_range(&query))
    }
}

/// One read of the tip answers every request that came before it started: a crowd of fresh
/// sessions joining at once (a restart, a reconnect storm) costs the log a round trip per read, not
/// one per session, and the hub does not hold thousands of commands in flight. Each request is
/// answered by a read that started after it came, so the tip it gets is no older than one read for
/// it alone (the handover needs the tip read after the socket registered, DESIGN.md §3).
impl Handler<Tip> for StreamBridge {
    type Result = ResponseFuture<Result<LogPosition, StoreError>>;

    fn handle(&mut self, _: Tip, ctx: &mut Self::Context) -> Self::Result {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.tip_waiting.push(answer);
        if !self.tip_reading {
            self.read_tip(ctx);
        }
        Box::pin(async move {
            answered
                .await
                .unwrap_or_else(|_| Err(StoreError::Unavailable("tip: the bridge stopped".into())))
        })
    }
}

impl StreamBridge {
    /// Reads the tip for every request waiting now; the requests that come meanwhile wait for the
    /// next read.
    fn read_tip(&mut self, ctx: &mut Context<Self>) {
        let waiting = std::mem::take(&mut self.tip_waiting);
        self.tip_reading = true;
        let read = self.tip();
        ctx.spawn(read.into_actor(self).map(move |position, act, ctx| {
            for answer in waiting {
                let _ = answer.send(position.clone());
            }
            act.tip_reading = false;
            if !act.tip_waiting.is_empty() {
                act.read_tip(ctx);
            }
        }));
    }

    /// Where a fresh session starts now: every shard's tip (their round trips at once).
    fn tip(&mut self) -> StoreFuture<LogPosition> {
        let handed_on = self.handed_on.clone();
        self.when_reading(|act| {
            // Spawned: every shard's round trip at once (a backend's future is lazy).
            let tips: Vec<_> = (act.shards.iter_mut())
                .map(|shard| actix::spawn(shard.tip()))
                .collect();
            Box::pin(async move {
                let mut epochs = Vec::with_capacity(tips.len());
                let mut newest = StreamId::ZERO;
                for tip in tips {
                    let position = tip
                        .await
                        .map_err(|err| StoreError::Unavailable(format!("tip: {err}")))??;
                    newest = position.id;
                    epochs.push(position.epoch);
                }
                // One stream: its newest entry (the handover skips what comes live up to it).
                // Several: what the loops handed on, so no later entry's offset is behind it.
                let offset = match epochs.len() {
                    1 => Offset::one(newest),
                    _ => handed_on,
                };
                Ok(LogPosition {
                    offset,
                    epoch: Epoch::joined(&epochs),
                })
            })
        })
    }
}

impl Handler<HandedOn> for StreamBridge {
    type Result = Option<Offset>;

    fn handle(&mut self, _: HandedOn, _: &mut Self::Context) -> Option<Offset> {
        self.reading().then(|| self.handed_on.clone())
    }
}

impl Handler<KeepLive> for StreamBridge {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: KeepLive, _: &mut Self::Context) -> Self::Result {
        self.first().keep_live(msg.record, msg.ttl)
    }
}

impl Handler<SaveSession> for StreamBridge {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: SaveSession, _: &mut Self::Context) -> Self::Result {
        self.first().save_session(msg.record, msg.ttl)
    }
}

impl Handler<ClaimSession> for StreamBridge {
    type Result = ResponseFuture<Result<Claim, StoreError>>;

    fn handle(&mut self, claim: ClaimSession, _: &mut Self::Context) -> Self::Result {
        self.first()
            .claim_session(&claim.pid, claim.owner.as_deref())
    }
}

impl Handler<DropSession> for StreamBridge {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, DropSession(pid): DropSession, _: &mut Self::Context) -> Self::Result {
        self.first().drop_session(&pid)
    }
}

impl Handler<Barrier> for StreamBridge {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Barrier, _: &mut Self::Context) -> Self::Result {
        let round_trips: Vec<_> = self.shards.iter_mut().map(|shard| shard.tip()).collect();
        Box::pin(async move {
            for round_trip in round_trips {
                let _ = round_trip.await;
            }
        })
    }
}

impl Handler<IsReady> for StreamBridge {
    type Result = bool;

    fn handle(&mut self, _: IsReady, _: &mut Self::Context) -> bool {
        self.reading()
            && self.layout_conflict.is_none()
            && self.shards.iter().all(|shard| shard.is_ready())
            && self.metrics.appends_failing.get() == 0
    }
}
