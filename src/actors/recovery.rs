//! Recovery: opens Socket.IO sessions, resuming them from a client's offset when it can (reference §3).
//!
//! Owns: the rules of connection state recovery; the records themselves live in the log backend.
//! Receives: Open (a CONNECT, from Session), Keep (refresh a live session's copy), Release (a session
//! dropped: its record becomes resumable), Forget (a deliberate disconnect).
//! Sends: ClaimSession, ReadAfter, Tip, KeepLive, SaveSession, DropSession to the StreamBridge.
//!
//! A resume succeeds only when it claims the record (atomically and once: no two connections ever
//! get one session), the record's epoch is the log's, every entry after the offset is still in the
//! log, and none of them may be addressed to the socket without being deliverable; it then returns
//! **all** of them, read in batches until the log's end, never a capped prefix. Anything else
//! (unknown, expired, already claimed or still live pid, malformed offset, trimmed or never-issued
//! offset, another epoch, an entry it cannot replay, backend down) opens a fresh session instead: new
//! sid and pid, `recovered` false, no error to the client.
//!
//! A session still live is not resumable (as with Node, which writes its record only at disconnect):
//! a resume of it waits, at most the claim wait (`HUB_INSTANCE_LEASE_MS`), for the old connection to
//! drop (its record then appears) or its instance's lease to expire (it died), then fails cleanly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use log::{debug, warn};

use super::stream_bridge::{
    Barrier, ClaimSession, DropSession, KeepLive, ReadAfter, SaveSession, StreamBridge, Tip,
};
use crate::metrics::Metrics;
use crate::protocol::ids::{Pid, Sid, StreamId};
use crate::protocol::target::Namespace;
use crate::store::{Claim, LogEntry, ReplayScope, SessionRecord, StoreError};

/// Entries read per XRANGE while replaying.
pub const REPLAY_BATCH: usize = 500;
/// How often a resume of a live session asks again whether it dropped (or its instance died).
const CLAIM_POLL: Duration = Duration::from_millis(50);

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
    /// On a resume: every entry of the namespace after the client's offset, in log order.
    pub missed: Vec<LogEntry>,
    /// The client is up to date up to here: live entries at or before it are not for this socket.
    /// `None` when the backend could not say (the session then starts without an offset).
    pub offset: Option<StreamId>,
    /// The socket's record, to keep (refresh) and release as it is: a resumed record's rooms and
    /// data are kept through every rewrite (a Node peer's included), with the epoch checked.
    pub record: SessionRecord,
}

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
            metrics,
            failed_refreshes: 0,
            last_refresh_warning: None,
        }
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
    #[error("{0}")]
    Store(#[from] StoreError),
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

/// Claims `pid`'s record; a live session's is waited for, at most `wait`.
async fn claim(
    bridge: &Addr<StreamBridge>,
    pid: &Pid,
    wait: Duration,
) -> Result<SessionRecord, ResumeRefused> {
    let deadline = Instant::now() + wait;
    loop {
        match bridge.send(ClaimSession(pid.clone())).await?? {
            Claim::Claimed(record) => return Ok(record),
            Claim::Absent => return Err(ResumeRefused::UnknownSession),
            Claim::Live if Instant::now() >= deadline => return Err(ResumeRefused::SessionLive),
            Claim::Live => actix::clock::sleep(CLAIM_POLL).await,
        }
    }
}

async fn resume(
    bridge: Addr<StreamBridge>,
    window: Duration,
    claim_wait: Duration,
    nsp: Namespace,
    pid: String,
    offset: String,
) -> Result<Opened, ResumeRefused> {
    let offset: StreamId = offset.parse().map_err(|_| ResumeRefused::MalformedOffset)?;
    let pid = Pid::from_wire(pid);
    let mut record = claim(&bridge, &pid, claim_wait).await?;
    // A record without an epoch was written by a Node peer: its offset is checked as Node checks it
    // (trimming, deletion); the replay then holds to the log's current epoch.
    let epoch = match record.epoch.clone() {
        Some(epoch) => epoch,
        None => bridge.send(Tip).await??.epoch,
    };
    let scope = ReplayScope {
        epoch: epoch.clone(),
        nsp: nsp.clone(),
        rooms: record.rooms.clone(),
    };
    let mut missed = Vec::new();
    let mut after = offset;
    loop {
        let batch = bridge
            .send(ReadAfter {
                after,
                count: REPLAY_BATCH,
                scope: scope.clone(),
            })
            .await??;
        let full = batch.len() == REPLAY_BATCH;
        if let Some(last) = batch.last() {
            after = last.id;
        }
        missed.extend(batch.into_iter().filter(|e| scope.replays(&e.target)));
        if !full {
            break;
        }
    }
    record.epoch = Some(epoch);
    if let Err(err) = bridge
        .send(KeepLive {
            record: record.clone(),
            ttl: window,
        })
        .await?
    {
        warn!("session record not refreshed, a later resume may fail: {err}");
    }
    Ok(Opened {
        sid: record.sid.clone(),
        pid,
        recovered: true,
        missed,
        offset: Some(after),
        record,
    })
}

async fn open_fresh(bridge: Addr<StreamBridge>, window: Duration) -> Opened {
    let sid = Sid::from_random(random_bytes());
    let pid = Pid::from_random(random_bytes());
    let position = match bridge.send(Tip).await {
        Ok(Ok(position)) => Some(position),
        Ok(Err(err)) => {
            warn!("log tip unknown, sid={sid} starts without an offset: {err}");
            None
        }
        Err(err) => {
            warn!("log tip unknown, sid={sid} starts without an offset: {err}");
            None
        }
    };
    let (offset, epoch) = match position {
        Some(position) => (Some(position.id), Some(position.epoch)),
        None => (None, None),
    };
    let record = SessionRecord::new(&sid, &pid, epoch);
    let kept = bridge.send(KeepLive {
        record: record.clone(),
        ttl: window,
    });
    match kept.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => warn!("session record not saved, sid={sid} cannot be resumed: {err}"),
        Err(err) => warn!("session record not saved, sid={sid} cannot be resumed: {err}"),
    }
    Opened {
        sid,
        pid,
        recovered: false,
        missed: Vec::new(),
        offset,
        record,
    }
}

impl Handler<Open> for Recovery {
    type Result = ResponseFuture<Opened>;

    fn handle(&mut self, msg: Open, _: &mut Self::Context) -> Self::Result {
        let (bridge, window, claim_wait) = (self.bridge.clone(), self.window, self.claim_wait);
        Box::pin(async move {
            if let (Some(pid), Some(offset)) = (msg.pid, msg.offset) {
                match resume(bridge.clone(), window, claim_wait, msg.nsp, pid, offset).await {
                    Ok(opened) => return opened,
                    Err(reason) => debug!("resume refused, opening a fresh session: {reason}"),
                }
            }
            open_fresh(bridge, window).await
        })
    }
}

impl Handler<Keep> for Recovery {
    type Result = ();

    fn handle(&mut self, Keep(record): Keep, ctx: &mut Self::Context) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::hub::Hub;
    use crate::actors::stream_bridge::Publish;
    use crate::protocol::target::Target;
    use crate::store::MemoryLog;

    fn start(max_len: usize, window: Duration) -> (Addr<StreamBridge>, Addr<Recovery>) {
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(1 << 20, metrics.clone()).start();
        let log = Box::new(MemoryLog::new(max_len));
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
            })
            .await
            .unwrap()
            .unwrap()
    }

    fn open(pid: &Pid, offset: impl ToString) -> Open {
        Open {
            nsp: Namespace::main(),
            pid: Some(pid.to_string()),
            offset: Some(offset.to_string()),
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
            })
            .await
            .unwrap();
        assert!(!first.recovered);
        let offset = first.offset.unwrap();
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
        assert_eq!(
            resumed.missed.iter().map(|e| e.id).collect::<Vec<_>>(),
            expected
        );
    }

    #[actix::test]
    async fn recovery_opens_a_fresh_session_for_unknown_pid_malformed_or_trimmed_offset() {
        let (bridge, recovery) = start(3, Duration::from_secs(60));
        let first = recovery
            .send(Open {
                nsp: Namespace::main(),
                pid: None,
                offset: None,
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
            })
            .await
            .unwrap();
        actix::clock::sleep(Duration::from_millis(80)).await;
        let late = recovery
            .send(open(&first.pid, first.offset.unwrap()))
            .await
            .unwrap();
        assert!(!late.recovered);

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
        let mut recovery =
            Recovery::new(bridge, Duration::from_secs(60), CLAIM_WAIT, metrics.clone());
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
        let offset = live.offset.unwrap();
        let clone = recovery.send(open(&live.pid, offset)).await.unwrap();
        assert!(!clone.recovered, "a live session is not resumable");
        assert_ne!((&clone.sid, &clone.pid), (&live.sid, &live.pid));

        // The session drops while a resume waits for it: the resume gets it.
        let waiting = recovery.send(open(&live.pid, offset));
        let release = async {
            actix::clock::sleep(CLAIM_WAIT / 4).await;
            dropped(&recovery, &live).await;
        };
        let (resumed, ()) = futures_util::future::join(waiting, release).await;
        let resumed = resumed.unwrap();
        assert!(resumed.recovered);
        assert_eq!((&resumed.sid, &resumed.pid), (&live.sid, &live.pid));
        let third = recovery.send(open(&live.pid, offset)).await.unwrap();
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
            data: serde_json::json!({ "user": "alice" }),
            ..SessionRecord::new(&sid, &pid, None)
        };
        recovery.send(Release(record.clone())).await.unwrap();
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
    async fn recovery_fails_cleanly_across_an_entry_addressed_to_the_socket_it_cannot_deliver() {
        use crate::protocol::target::Room;
        let (bridge, recovery) = start(10, Duration::from_secs(60));
        let first = recovery.send(fresh()).await.unwrap();
        let offset = first.offset.unwrap();
        dropped(&recovery, &first).await;
        let own_room = Target {
            rooms: vec![Room::from(first.sid.as_str())],
            ..Target::broadcast(Namespace::main())
        };
        bridge
            .send(Publish {
                target: own_room,
                args: Arc::from("[\"n\",1]"),
            })
            .await
            .unwrap()
            .unwrap();
        let resumed = recovery.send(open(&first.pid, offset)).await.unwrap();
        assert!(!resumed.recovered, "never recovered with a gap");
    }
}
