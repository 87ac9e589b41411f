//! Recovery: opens Socket.IO sessions, resuming them from a client's offset when it can (reference §3).
//!
//! Owns: the rules of connection state recovery and the replay slots (`--max-replays`); the records
//! themselves live in the log backend.
//! Receives: Open (a CONNECT, from Session), ReadMissed (the next page of a replay, from Session), Keep
//! (refresh a live session's copy), Release (a session dropped: its record becomes resumable), Forget
//! (a deliberate disconnect).
//! Sends: ClaimSession, ReadAfter, Tip, KeepLive, SaveSession, DropSession to the StreamBridge.
//!
//! A resume succeeds only when it claims the record (atomically and once: no two connections ever
//! get one session), the record's epoch is the log's, every entry after the offset is still in the
//! log, and none of them may be addressed to the socket without being deliverable; it then returns
//! **all** of them, never a capped prefix: the first page with the answer, the others page by page as
//! the client takes them ([`ReadMissed`]), until a page reaches the log's end, every page checked like
//! the first. Anything else (unknown, expired, already claimed or still live pid, malformed offset,
//! trimmed or never-issued offset, another epoch, an entry it cannot replay, backend down for longer
//! than the claim wait, no replay
//! slot within `--replay-wait-ms`, a session of another user) opens a fresh session instead: new sid
//! and pid, `recovered` false, no error to the client.
//!
//! A session belongs to the user its socket was admitted as (its record's `sub`): a resume by another
//! user (or an anonymous one) neither gets it nor takes it, so its owner can still resume it.
//!
//! A session still live is not resumable (as with Node, which writes its record only at disconnect):
//! a resume of it waits, at most the claim wait (`HUB_INSTANCE_LEASE_MS`), for the old connection to
//! drop (its record then appears) or its instance's lease to expire (it died), then fails cleanly.
//!
//! ```text
//! Open{pid,offset} ─► claim ─► replay slot (wait ≤ --replay-wait-ms) ─► first page ─► Opened{missed, more}
//! ReadMissed(cursor) ─► next page (count sized to ~REPLAY_PAGE_BYTES) ─► ReplayPage{missed, more}
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use log::{debug, warn};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::stream_bridge::{
    Barrier, ClaimSession, DropSession, KeepLive, ReadAfter, SaveSession, StreamBridge, Tip,
};
use crate::limited_warn;
use crate::log_limit::LimitedLog;
use crate::metrics::Metrics;
use crate::protocol::ids::{Pid, Sid};
use crate::protocol::offset::Offset;
use crate::protocol::target::Namespace;
use crate::store::{Claim, LogEntry, ReplayScope, SessionRecord, StoreError};

/// Entries read per page at most (XRANGE COUNT) while replaying.
pub const REPLAY_BATCH: usize = 500;
/// Entries read for a replay's first page, before their size is known.
pub const FIRST_PAGE: usize = 8;
/// Bytes a replay page aims at: each next page reads this over the mean entry size of the last one,
/// so a page of 60 KB entries is a few entries, not 500 (30 MB), and one of small entries is 500.
pub const REPLAY_PAGE_BYTES: usize = 256 * 1024;
/// `--max-replays` when not set otherwise (tests).
pub const DEFAULT_MAX_REPLAYS: usize = 64;
/// `--replay-wait-ms` when not set otherwise (tests).
pub const DEFAULT_REPLAY_WAIT: Duration = Duration::from_secs(5);
/// How often a resume of a live session asks again whether it dropped (or its instance died).
const CLAIM_POLL: Duration = Duration::from_millis(50);
/// How often a resume asks again while the log cannot be reached (within the claim wait).
const CLAIM_RETRY: Duration = Duration::from_millis(250);

/// A CONNECT on `nsp`, with the `pid` and `offset` of the client's auth if it sent both as strings.
#[derive(Message, Debug)]
#[rtype(result = "Opened")]
pub struct Open {
    /// The namespace joined.
    pub nsp: Namespace,
    /// `auth.pid`, the session to resume.
    pub pid: Option<String>,
    /// `auth.offset`, the last entry the client received.
    pub offset: Option<String>,
    /// The socket's user (`sub`): a resume claims only a record of the same user, and a fresh
    /// session's record carries it.
    pub owner: Option<Box<str>>,
    /// Which of a resumed record's joined rooms the socket may still be in.
    pub stays: RoomCheck,
}

/// Whether a resuming socket may still be in a room its record says it joined: the application's
/// `may_join` for the identity it resumes as, which may differ from the one it joined as (a new
/// token whose `rooms` claim no longer allows the room, `HUB_PUBLIC_ROOMS` changed since). The rooms
/// given rather than joined (its sid room, `user:<sub>`: reserved names) are always kept.
#[derive(Clone)]
pub struct RoomCheck(Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl RoomCheck {
    /// Rooms `allows` says yes to.
    pub fn new(allows: impl Fn(&str) -> bool + Send + Sync + 'static) -> RoomCheck {
        RoomCheck(Arc::new(allows))
    }

    /// Every room (open mode; tests).
    pub fn any() -> RoomCheck {
        RoomCheck::new(|_| true)
    }

    /// Whether the socket stays in `room`.
    fn stays(&self, room: &str) -> bool {
        crate::rooms::check_name(room) == Err(crate::rooms::RoomRefusal::Reserved) || (self.0)(room)
    }
}

impl std::fmt::Debug for RoomCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomCheck")
    }
}

/// The socket to accept, and what to send it before the CONNECT reply.
#[derive(Debug)]
pub struct Opened {
    /// Socket id: the old one on a resume.
    pub sid: Sid,
    /// Private session id: the old one on a resume (which is how the client knows it recovered).
    pub pid: Pid,
    /// Whether this resumed a previous session.
    pub recovered: bool,
    /// On a resume: the first page of the entries of the namespace after the client's offset, in
    /// log order.
    pub missed: Vec<LogEntry>,
    /// On a resume whose first page did not reach the log's end: where the next page starts.
    pub more: Option<ReplayCursor>,
    /// The client is up to date up to here (on a resume: the newest entry read so far): live
    /// entries at or before it are not for this socket. `None` when the backend could not say (the
    /// session then starts without an offset).
    pub offset: Option<Offset>,
    /// On a resume: one of the `--max-replays` slots, held until the replay is written (dropped).
    pub slot: Option<ReplaySlot>,
    /// The socket's record, to keep (refresh) and release as it is: a resumed record's rooms and
    /// data are kept through every rewrite (a Node peer's included), with the epoch checked.
    pub record: SessionRecord,
}

/// One of the `--max-replays` slots; released when dropped.
#[derive(Debug)]
pub struct ReplaySlot(#[allow(dead_code)] OwnedSemaphorePermit);

/// Where the next page of a replay starts, and how many entries it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayCursor {
    /// Whose replay it is (epoch, namespace, rooms): entries not for the socket are read and passed
    /// over, and every page is checked against the epoch.
    pub scope: ReplayScope,
    /// The newest entry read so far, per shard: the next page starts after it.
    pub after: Offset,
    /// Entries the next page reads.
    pub count: usize,
}

/// A page of a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayPage {
    /// The namespace's entries in it, in log order.
    pub missed: Vec<LogEntry>,
    /// The newest entry read so far, of any namespace: the client is up to date up to here once
    /// `missed` is written.
    pub read_to: Offset,
    /// Where the next page starts; `None` once a page reached the log's end.
    pub more: Option<ReplayCursor>,
}

/// The next page of a replay (from the Session, once the client took the previous one). Fails with
/// the log's error when an entry after the cursor was trimmed meanwhile, or the backend is down.
#[derive(Message, Debug)]
#[rtype(result = "Result<ReplayPage, StoreError>")]
pub struct ReadMissed(pub ReplayCursor);

/// Refresh a live session's copy for another recovery window (resumable only if this instance dies).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Keep(pub SessionRecord);

/// The session dropped (not on purpose): its record becomes resumable, by a hub or a Node peer.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Release(pub SessionRecord);

/// Delete a session record: the client disconnected on purpose.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Forget(pub Pid);

/// Resolves once every record queued before it is written (shutdown).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Flush;

/// The actor.
pub struct Recovery {
    /// The log's owner.
    bridge: Addr<StreamBridge>,
    /// How long a record outlives its last refresh.
    window: Duration,
    /// The `--max-replays` slots: each replay holds about a page and what is on its way to its
    /// client, so the number of replays at once bounds what resumes can pin.
    replay_slots: Arc<Semaphore>,
    /// How long a resume waits for a slot (`--replay-wait-ms`).
    replay_wait: Duration,
    /// How long a resume of a live session waits for it to drop or its instance's lease to expire.
    claim_wait: Duration,
    /// Counts failed refreshes.
    metrics: Arc<Metrics>,
    /// Refreshes that failed since the last warning, and when that was: with Redis down, every
    /// session's refresh fails, and one line per session would bury the log.
    failed_refreshes: u64,
    last_refresh_warning: Option<Instant>,
}

/// At most one "records not refreshed" warning per this interval.
const REFRESH_WARNING_EVERY: Duration = Duration::from_secs(10);

impl Recovery {
    /// Recovery over `bridge`'s log, with records living `window` after their last refresh, and
    /// resumes of live sessions waiting at most `claim_wait`.
    pub fn new(
        bridge: Addr<StreamBridge>,
        window: Duration,
        claim_wait: Duration,
        metrics: Arc<Metrics>,
    ) -> Recovery {
        Recovery {
            bridge,
            window,
            claim_wait,
            replay_slots: Arc::new(Semaphore::new(DEFAULT_MAX_REPLAYS)),
            replay_wait: DEFAULT_REPLAY_WAIT,
            metrics,
            failed_refreshes: 0,
            last_refresh_warning: None,
        }
    }

    /// At most `max` replays at once; a resume waits up to `wait` for a slot.
    pub fn with_replay_slots(mut self, max: usize, wait: Duration) -> Recovery {
        self.replay_slots = Arc::new(Semaphore::new(max.max(1)));
        self.replay_wait = wait;
        self
    }

    fn refresh_failed(&mut self, err: StoreError) {
        self.metrics.record_refreshes_failed.inc();
        self.failed_refreshes += 1;
        let now = Instant::now();
        if self
            .last_refresh_warning
            .is_none_or(|at| now.duration_since(at) >= REFRESH_WARNING_EVERY)
        {
            warn!(
                "{} session record(s) not refreshed since the last warning, their resumes may fail: {err}",
                self.failed_refreshes
            );
            self.failed_refreshes = 0;
            self.last_refresh_warning = Some(now);
        }
    }
}

impl Actor for Recovery {
    type Context = Context<Self>;
}

/// Why a resume did not happen; only logged, the client just gets a fresh session.
#[derive(Debug, thiserror::Error)]
enum ResumeRefused {
    #[error("malformed offset")]
    MalformedOffset,
    #[error("unknown, expired or already resumed session")]
    UnknownSession,
    #[error("the session is still live")]
    SessionLive,
    #[error("the session belongs to another user")]
    NotOwner,
    #[error("no replay slot free within the wait (--max-replays)")]
    NoReplaySlot,
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl ResumeRefused {
    /// The `outcome` label of `hub_resumes_total` (see [`crate::metrics::RESUME_OUTCOMES`]).
    fn outcome(&self) -> &'static str {
        match self {
            ResumeRefused::MalformedOffset => "malformed",
            ResumeRefused::UnknownSession => "unknown",
            ResumeRefused::SessionLive => "live",
            ResumeRefused::NotOwner => "identity",
            ResumeRefused::NoReplaySlot => "busy",
            ResumeRefused::Store(StoreError::OffsetTrimmed(_)) => "trimmed",
            ResumeRefused::Store(StoreError::OffsetAhead(_)) => "ahead",
            ResumeRefused::Store(StoreError::EpochChanged { .. }) => "epoch",
            ResumeRefused::Store(StoreError::Unreplayable(_)) => "unreplayable",
            ResumeRefused::Store(
                StoreError::Unavailable(_)
                | StoreError::OutcomeUnknown(_)
                | StoreError::NotReplicated(_)
                | StoreError::Unsupported(_),
            ) => "unavailable",
        }
    }
}

impl From<MailboxError> for ResumeRefused {
    fn from(err: MailboxError) -> Self {
        ResumeRefused::Store(StoreError::Unavailable(err.to_string()))
    }
}

/// 128 bits from the operating system's generator.
pub fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .expect("the OS random generator is available on every supported platform");
    bytes
}

/// A resume's share of the actor: what it needs, cloned out of it.
struct Resumer {
    bridge: Addr<StreamBridge>,
    window: Duration,
    replay_slots: Arc<Semaphore>,
    replay_wait: Duration,
    claim_wait: Duration,
    metrics: Arc<Metrics>,
}

/// A resume that found no replay slot in time: at most a few lines a minute, however many.
static NO_REPLAY_SLOT: LimitedLog = LimitedLog::per_minute(6);

/// A resume of another user's session: a few lines a minute.
static NOT_OWNER: LimitedLog = LimitedLog::per_minute(6);

/// Claims `pid`'s record if `owner` owns it; a live session's is waited for, at most `wait`, and so
/// is a log that cannot be reached (a Redis failover in progress: the new primary usually answers
/// within seconds, and a client reconnecting meanwhile should not lose its session to it).
async fn claim(
    bridge: &Addr<StreamBridge>,
    pid: &Pid,
    owner: Option<&str>,
    wait: Duration,
) -> Result<SessionRecord, ResumeRefused> {
    let deadline = Instant::now() + wait;
    loop {
        let claim = ClaimSession {
            pid: pid.clone(),
            owner: owner.map(Box::from),
        };
        let claimed = match bridge.send(claim).await? {
            Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                actix::clock::sleep(CLAIM_RETRY).await;
                continue;
            }
            other => other?,
        };
        match claimed {
            Claim::Claimed(record) => return Ok(record),
            Claim::Absent => return Err(ResumeRefused::UnknownSession),
            Claim::NotOwner => return Err(ResumeRefused::NotOwner),
            Claim::Live if Instant::now() >= deadline => return Err(ResumeRefused::SessionLive),
            Claim::Live => actix::clock::sleep(CLAIM_POLL).await,
        }
    }
}

async fn resume(
    resumer: &Resumer,
    nsp: Namespace,
    pid: String,
    offset: String,
    owner: Option<&str>,
    stays: &RoomCheck,
) -> Result<Opened, ResumeRefused> {
    let bridge = &resumer.bridge;
    let offset = catch_up::parse_offset(bridge, &offset).await?;
    let pid = Pid::from_wire(pid);
    let mut record = claim(bridge, &pid, owner, resumer.claim_wait).await?;
    // Only a session there is to resume waits for the loops: an unknown pid is refused at once.
    catch_up::caught_up(bridge, &offset, resumer.claim_wait).await?;
    // Joined rooms the socket may no longer be in are left before anything is replayed: a revoked
    // room's entries are neither replayed nor delivered live, and the record forgets it.
    record.rooms.retain(|room| {
        let stays = stays.stays(room);
        if !stays {
            debug!(
                "resume of sid={} leaves room {room}: no longer allowed",
                record.sid
            );
        }
        stays
    });
    // The socket's rooms, as it resumes in them and as its replay is addressed: the record's, with
    // its sid room (a Node peer writes it too) and its user's room (the claim checked the owner).
    let own = std::iter::once(record.sid.to_string()).chain(owner.map(crate::rooms::user_room));
    for room in own {
        if !record.rooms.contains(&room) {
            record.rooms.push(room);
        }
    }
    // A record without an epoch was written by a Node peer: its offset is checked as Node checks it
    // (trimming, deletion); the replay then holds to the log's current epoch.
    let epoch = match record.epoch.clone() {
        Some(epoch) => epoch,
        None => bridge.send(Tip).await??.epoch,
    };
    let scope = ReplayScope {
        epoch: epoch.clone(),
        nsp,
        rooms: record.rooms.clone(),
    };
    let slot = actix::clock::timeout(
        resumer.replay_wait,
        resumer.replay_slots.clone().acquire_owned(),
    )
    .await;
    let Ok(Ok(slot)) = slot else {
        resumer.metrics.replays_refused.inc();
        limited_warn!(
            NO_REPLAY_SLOT,
            "resume refused, opening a fresh session: no replay slot free within {:?} (--max-replays)",
            resumer.replay_wait
        );
        return Err(ResumeRefused::NoReplaySlot);
    };
    let first = read_page(
        bridge,
        ReplayCursor {
            scope: scope.clone(),
            after: offset,
            count: FIRST_PAGE,
        },
    )
    .await?;
    // No live copy yet: the claim took the record, and the Session keeps it live only once the
    // replay is written and the join completes. An instance that stops or dies mid-replay so leaves
    // nothing to resume: the client's next resume fails cleanly, instead of replaying from the old
    // offset what it already holds (the official client keeps events received before a CONNECT reply
    // across a reconnect, and would emit them twice).
    record.epoch = Some(epoch);
    // Never the last page, even at the log's end: the Session tells the Hub the record's rooms
    // when it gets this answer, and only a read issued after that covers the entries to those
    // rooms that the Hub fanned out before it knew them (see `Session::opened`).
    let more = first.more.or(Some(ReplayCursor {
        scope,
        after: first.read_to.clone(),
        count: FIRST_PAGE,
    }));
    Ok(Opened {
        sid: record.sid.clone(),
        pid,
        recovered: true,
        missed: first.missed,
        more,
        offset: Some(first.read_to),
        slot: Some(ReplaySlot(slot)),
        record,
    })
}

/// Reads the page `cursor` points at: the namespace's entries in it, and where the next one starts
/// (sized from this one's entries), unless this one reached the log's end.
async fn read_page(
    bridge: &Addr<StreamBridge>,
    cursor: ReplayCursor,
) -> Result<ReplayPage, StoreError> {
    let read = bridge
        .send(ReadAfter {
            after: cursor.after,
            count: cursor.count,
            scope: cursor.scope.clone(),
        })
        .await
        .map_err(|err| StoreError::Unavailable(err.to_string()))??;
    let read_to = read.read_to;
    // Sized by every entry read, skipped ones included: entries the backend does not hand on still
    // cost their size in the next page's reply.
    let count = next_page_count(read.read, read.bytes);
    // A shard read fewer than asked for reached its end (entries skipped by the backend still
    // count as read); with several shards, none read past what the loops handed on.
    let more = read.more.then(|| ReplayCursor {
        scope: cursor.scope.clone(),
        after: read_to.clone(),
        count,
    });
    let missed = read
        .entries
        .into_iter()
        .filter(|entry| cursor.scope.replays(&entry.target))
        .collect();
    Ok(ReplayPage {
        missed,
        read_to,
        more,
    })
}

/// Entries the next page reads, from the last one's: about [`REPLAY_PAGE_BYTES`], 1 to [`REPLAY_BATCH`].
pub fn next_page_count(entries: usize, bytes: usize) -> usize {
    match (entries, bytes) {
        (0, _) => FIRST_PAGE,
        (n, bytes) => {
            let mean = (bytes / n).max(1);
            (REPLAY_PAGE_BYTES / mean).clamp(1, REPLAY_BATCH)
        }
    }
}

/// A fresh session opened while the log could not be asked: one line per minute or so, however
/// many clients connect during an outage.
static TIP_UNKNOWN: LimitedLog = LimitedLog::per_minute(6);
/// A fresh session whose live copy could not be written.
static NOT_KEPT: LimitedLog = LimitedLog::per_minute(6);

async fn open_fresh(
    bridge: Addr<StreamBridge>,
    window: Duration,
    owner: Option<Box<str>>,
) -> Opened {
    let sid = Sid::from_random(random_bytes());
    let pid = Pid::from_random(random_bytes());
    let position = match bridge.send(Tip).await {
        Ok(Ok(position)) => Some(position),
        Ok(Err(err)) => {
            limited_warn!(
                TIP_UNKNOWN,
                "log tip unknown, sid={sid} starts without an offset and cannot be resumed: {err}"
            );
            None
        }
        Err(err) => {
            limited_warn!(
                TIP_UNKNOWN,
                "log tip unknown, sid={sid} starts without an offset and cannot be resumed: {err}"
            );
            None
        }
    };
    let (offset, epoch) = match position {
        Some(position) => (Some(position.offset), Some(position.epoch)),
        None => (None, None),
    };
    let mut record = SessionRecord::new(&sid, &pid, epoch);
    // Its rooms from the start: its sid room and, with a token, its user's room.
    record
        .rooms
        .extend(owner.as_deref().map(crate::rooms::user_room));
    record.sub = owner.map(String::from);
    // Without the log's epoch the session's offsets could not be checked on a resume (the log may be
    // replaced meanwhile): nothing is kept for it, ever (see `resumable`), so its resume fails cleanly.
    if resumable(&record) {
        let kept = bridge.send(KeepLive {
            record: record.clone(),
            ttl: window,
        });
        match kept.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => limited_warn!(
                NOT_KEPT,
                "session record not saved, sid={sid} cannot be resumed: {err}"
            ),
            Err(err) => limited_warn!(
                NOT_KEPT,
                "session record not saved, sid={sid} cannot be resumed: {err}"
            ),
        }
    }
    Opened {
        sid,
        pid,
        recovered: false,
        missed: Vec::new(),
        more: None,
        offset,
        slot: None,
        record,
    }
}

/// Whether a hub session's record may be written: only with the epoch its offsets belong to. (A Node
/// peer's record has none, but the hub stamps the log's epoch on it when it resumes one.)
fn resumable(record: &SessionRecord) -> bool {
    record.epoch.is_some()
}

impl Handler<Open> for Recovery {
    type Result = ResponseFuture<Opened>;

    fn handle(&mut self, msg: Open, _: &mut Self::Context) -> Self::Result {
        let resumer = Resumer {
            bridge: self.bridge.clone(),
            window: self.window,
            replay_slots: self.replay_slots.clone(),
            replay_wait: self.replay_wait,
            claim_wait: self.claim_wait,
            metrics: self.metrics.clone(),
        };
        Box::pin(async move {
            if let (Some(pid), Some(offset)) = (msg.pid, msg.offset) {
                // Another user's session is a clean failure, as the protocol has one: a fresh
                // session (`recovered` false), not a refusal. The socket's own token is valid, and a
                // refused CONNECT would leave the official client stuck: it keeps sending the same
                // pid (e.g. a shared browser after another user logged in) and does not retry.
                let (owner, stays) = (msg.owner.as_deref(), &msg.stays);
                let resumed = resume(&resumer, msg.nsp, pid, offset, owner, stays).await;
                let outcome = resumed
                    .as_ref()
                    .map_or_else(ResumeRefused::outcome, |_| "exact");
                resumer.metrics.resumes.inc(outcome);
                match resumed {
                    Ok(opened) => return opened,
                    Err(ResumeRefused::NotOwner) => {
                        resumer.metrics.resumes_not_owner.inc();
                        limited_warn!(
                            NOT_OWNER,
                            "resume of another user's session refused (sub={}), opening a fresh session",
                            msg.owner.as_deref().unwrap_or("-")
                        );
                    }
                    Err(reason) => debug!("resume refused outcome=fresh reason=\"{reason}\""),
                }
            }
            open_fresh(resumer.bridge, resumer.window, msg.owner).await
        })
    }
}

impl Handler<ReadMissed> for Recovery {
    type Result = ResponseFuture<Result<ReplayPage, StoreError>>;

    fn handle(&mut self, ReadMissed(cursor): ReadMissed, _: &mut Self::Context) -> Self::Result {
        let bridge = self.bridge.clone();
        Box::pin(async move { read_page(&bridge, cursor).await })
    }
}

impl Handler<Keep> for Recovery {
    type Result = ();

    fn handle(&mut self, Keep(record): Keep, ctx: &mut Self::Context) {
        if !resumable(&record) {
            return;
        }
        let save = self.bridge.send(KeepLive {
            record,
            ttl: self.window,
        });
        ctx.spawn(save.into_actor(self).map(|saved, recovery, _| {
            if let Ok(Err(err)) = saved {
                recovery.refresh_failed(err);
            }
        }));
    }
}

impl Handler<Release> for Recovery {
    type Result = ();

    fn handle(&mut self, Release(record): Release, ctx: &mut Self::Context) {
        if !resumable(&record) {
            return;
        }
        let save = self.bridge.send(SaveSession {
            record,
            ttl: self.window,
        });
        ctx.spawn(save.into_actor(self).map(|saved, recovery, _| {
            if let Ok(Err(err)) = saved {
                recovery.refresh_failed(err);
            }
        }));
    }
}

impl Handler<Flush> for Recovery {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        // Keeps handled before this one have queued their saves at the bridge; its barrier answers
        // after them.
        let barrier = self.bridge.send(Barrier);
        Box::pin(async move {
            let _ = barrier.await;
        })
    }
}

impl Handler<Forget> for Recovery {
    type Result = ();

    fn handle(&mut self, Forget(pid): Forget, _: &mut Self::Context) {
        self.bridge.do_send(DropSession(pid));
    }
}

mod catch_up;
#[cfg(test)]
mod tests;
