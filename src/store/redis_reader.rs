//! The Redis backend's read loop: its own connection, `XREAD BLOCK` from the last id handed on,
//! reconnecting with backoff, checking the stream's epoch as it goes (see `redis.rs`).
//!
//! With Sentinel the loop also asks the sentinels each [`RENAMED_CHECK_EVERY`] (beside its reads)
//! which primary they name, and reconnects at once, after the last id it handed on, when it is not
//! the node it reads from: a primary replaced while it stays up (`SENTINEL FAILOVER`, a partition)
//! answers reads until the sentinels demote it, seconds later, while every append already goes to
//! the new one; waiting for that demotion would stall delivery for those seconds.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use actix::Recipient;
use log::{error, info, warn};
use redis::{ProtocolVersion, Value};

use super::redis::{
    as_int, parse_id, unavailable, StreamState, BACKOFF, COMMAND_TIMEOUT, EPOCH_CHECK_EVERY,
    READ_BLOCK, READ_COUNT,
};
use super::redis_append::MinReplicas;
use super::redis_commands::{disconnects_in, hand_on};
use super::redis_entries::{decode_entries, from_peers};
use super::redis_identity::{ensure_epoch, READ_AFTER_SCRIPT};
use super::redis_link::{Conn, Endpoint, LinkOptions, RENAMED_CHECK_EVERY};
use super::{Epoch, LogEvent, StoreError};
use crate::log_limit::LimitedLog;
use crate::metrics::Metrics;
use crate::protocol::ids::StreamId;

/// Key prefix of the read loops' marks (`hub:reader:{<stream>}:<uid>` = the newest id read), written
/// only to have a write to `WAIT` on; the stream key as hash tag keeps it on the stream's node.
const READER_KEY_PREFIX: &str = "hub:reader:";
/// Waiting for replicas: a few lines a minute, however long it lasts.
static TOO_FEW_REPLICAS: LimitedLog = LimitedLog::per_minute(4);
/// How long a read loop's mark outlives its last write.
const READER_MARK_TTL: Duration = Duration::from_secs(60);

/// The read loop: its own connection, XREAD BLOCK from the last id handed on, reconnecting with backoff.
/// It checks the stream's epoch at every (re)connect and every [`EPOCH_CHECK_EVERY`].
pub(super) struct Reader {
    /// Where Redis is: each (re)connect asks again (with Sentinel: for the primary now).
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) key: String,
    pub(super) sink: Recipient<LogEvent>,
    /// `log_reading` is this loop's state; `entries_skipped` and `entries_refused` count what
    /// it does not deliver.
    pub(super) metrics: Arc<Metrics>,
    /// The epoch the loop reads under; `None` until the first connect.
    pub(super) epoch: Option<Epoch>,
    /// This instance's adapter uid: entries with another were published by a peer.
    pub(super) uid: String,
    /// The newest id handed on, shared with replays: a replay refuses a stream that lost it.
    pub(super) handed_on: Arc<Mutex<StreamId>>,
    /// With `HUB_REDIS_MIN_REPLICAS`: entries are handed on only once that many replicas have them.
    pub(super) min_replicas: Option<MinReplicas>,
    /// The shard this loop reads (`HUB_STREAM_SHARDS`): its entries are tagged with it.
    pub(super) shard: usize,
    /// Whether this loop is connected and reading (`hub_ready` is every shard's loops together).
    pub(super) reading: Arc<AtomicBool>,
    /// How many of the log's loops (one per shard) are not reading: shared by them all.
    pub(super) loops_down: Arc<AtomicUsize>,
}

impl Reader {
    /// A connection, and with Sentinel the primary (`host:port`) it reached.
    async fn connect(&self) -> Result<(Conn, Option<String>), StoreError> {
        let options = LinkOptions {
            response_timeout: READ_BLOCK + COMMAND_TIMEOUT,
            ..LinkOptions::new(ProtocolVersion::RESP2, COMMAND_TIMEOUT)
        };
        self.endpoint
            .connect_named(&options)
            .await
            .map_err(unavailable)
    }

    pub(super) async fn run(mut self) {
        // Start after the newest entry at start-up (not `$`, which can skip entries between two reads).
        let mut last: Option<StreamId> = None;
        let mut delay = BACKOFF.0;
        while self.sink.connected() {
            let result = match self.connect().await {
                Ok((mut conn, named)) => self.read(&mut conn, named, &mut last).await,
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                self.metrics.redis_errors.inc();
                // Counted here, before the next connect, whether or not that one succeeds.
                self.metrics.redis_reconnects.inc();
                if self.reading.swap(false, Ordering::Relaxed) {
                    self.loops_down.fetch_add(1, Ordering::Relaxed);
                }
                self.metrics.log_reading.set(0);
                let jittered = delay.mul_f64(0.5 + jitter());
                warn!("stream read failed retry_in={jittered:?} error=\"{err}\"");
                actix::clock::sleep(jittered).await;
                delay = (delay * 2).min(BACKOFF.1);
            } else {
                delay = BACKOFF.0;
            }
        }
        info!(
            "stream read loop stopped last_entry={}",
            last.unwrap_or_default()
        );
    }

    /// Checks the stream's epoch (after `read`, the newest id handed on): if it changed, reports it
    /// and says so (the loop reads on from the stream's newest id: the old offsets mean nothing now).
    async fn check_epoch(
        &mut self,
        conn: &mut Conn,
        read: StreamId,
    ) -> Result<(StreamId, bool), StoreError> {
        let position = ensure_epoch(conn, &self.key, read, self.epoch.as_ref()).await?;
        let newest = position.id;
        match self.epoch.replace(position.epoch.clone()) {
            Some(was) if was != position.epoch => {
                error!(
                    "stream {} was replaced (deleted, flushed, restarted without its data, or a replica \
                     without its newest entries): epoch {was} is now {}; clients are disconnected and \
                     cannot recover what they missed",
                    self.key, position.epoch
                );
                self.sink.do_send(LogEvent::EpochChanged {
                    shard: self.shard,
                    was,
                    now: position.epoch,
                    from: newest,
                });
                Ok((newest, true))
            }
            Some(_) => Ok((newest, false)),
            None => {
                info!("stream opened key={} epoch={}", self.key, position.epoch);
                Ok((newest, false))
            }
        }
    }

    /// Reads until the connection fails; `Ok` when the sink went away or the sentinels name another
    /// primary than `named`, the one `conn` reached (the caller reconnects at once then).
    async fn read(
        &mut self,
        conn: &mut Conn,
        named: Option<String>,
        last: &mut Option<StreamId>,
    ) -> Result<(), StoreError> {
        let (newest, replaced) = self.check_epoch(conn, last.unwrap_or_default()).await?;
        let mut from = match *last {
            Some(_) if replaced => newest,
            Some(from) => {
                self.check_gap(conn, from).await?;
                from
            }
            None => {
                info!("stream reading key={} after={newest}", self.key);
                self.sink.do_send(LogEvent::ReadingFrom {
                    shard: self.shard,
                    from: newest,
                });
                newest
            }
        };
        *last = Some(from);
        *self.handed_on.lock().expect("never poisoned") = from;
        let mut checked = Instant::now();
        // `hub_ready` is 1 only while every shard's loop reads.
        if !self.reading.swap(true, Ordering::Relaxed)
            && self.loops_down.fetch_sub(1, Ordering::Relaxed) == 1
        {
            self.metrics.log_reading.set(1);
        }
        // Beside every step, never inside one: a step cut short at one of its awaits has handed
        // nothing on from the batch it was reading (`hand_on` comes after the last await).
        let mut renamed = pin!(renamed(self.endpoint.clone(), named));
        while self.sink.connected() {
            let step = self.step(conn, &mut from, last, &mut checked);
            match first_of(step, renamed.as_mut()).await {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(Ok(err)) => return Err(err),
                Err(Err((was, now))) => {
                    warn!(
                        "stream read loop: redis primary {was} is no longer the one Sentinel names \
                         ({now}): reading on from there after={from}"
                    );
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// One read and its hand-on (and the epoch check when due). `Ok(false)` if the sink went away.
    async fn step(
        &mut self,
        conn: &mut Conn,
        from: &mut StreamId,
        last: &mut Option<StreamId>,
        checked: &mut Instant,
    ) -> Result<bool, StoreError> {
        if checked.elapsed() >= EPOCH_CHECK_EVERY {
            if let (newest, true) = self.check_epoch(conn, *from).await? {
                *from = newest;
                *last = Some(newest);
                *self.handed_on.lock().expect("never poisoned") = newest;
            }
            *checked = Instant::now();
        }
        let reply: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(from.to_string())
            .query_async(conn)
            .await
            .map_err(unavailable)?;
        let Value::Array(streams) = reply else {
            // nil: nothing new within the block, so the loop is at the tip.
            self.metrics.read_lag_ms.set(0);
            return Ok(true);
        };
        for stream in &streams {
            let Value::Array(pair) = stream else { continue };
            let Some(items) = pair.get(1) else { continue };
            let (entries, newest) = decode_entries(items, &self.metrics, None)?;
            if let (Some(newest), Some(min)) = (newest, self.min_replicas) {
                if !self.await_replicas(conn, newest, min).await? {
                    return Ok(false);
                }
            }
            let peers = from_peers(items, &entries, &self.uid);
            self.metrics.published.peer.add(peers);
            if let Some(newest) = newest {
                *from = newest;
                *last = Some(newest);
                *self.handed_on.lock().expect("never poisoned") = newest;
            }
            let commands = disconnects_in(items, &self.metrics.entries_skipped);
            let mut entries = entries;
            for entry in &mut entries {
                entry.shard = self.shard;
            }
            hand_on(&self.sink, entries, commands);
        }
        Ok(true)
    }

    /// Waits until `min` replicas have every entry up to `newest`, so that no client gets an entry a
    /// failover could take back (which would force a new epoch on everyone). WAIT counts the
    /// caller's own writes only, so a small write of ours goes first: the replication stream is in
    /// order, so a replica that has it has the entries read before it. Not enough replicas: the loop
    /// waits (WAIT again, a warning a few times a minute), delivering nothing and staying ready, as
    /// publishes are answered 503 meanwhile; an instance taken out of its load balancer would not
    /// bring a replica back. `Ok(false)` if the sink went away while waiting.
    async fn await_replicas(
        &self,
        conn: &mut Conn,
        newest: StreamId,
        min: MinReplicas,
    ) -> Result<bool, StoreError> {
        let _: Value = redis::cmd("SET")
            .arg(format!(
                "{READER_KEY_PREFIX}{}:{}",
                super::redis_append::stream_tag(&self.key),
                self.uid
            ))
            .arg(newest.to_string())
            .arg("PX")
            .arg(READER_MARK_TTL.as_millis() as u64)
            .query_async(conn)
            .await
            .map_err(unavailable)?;
        loop {
            let acked = conn
                .wait_for_replicas(&self.key, min.replicas, min.timeout)
                .await
                .map_err(unavailable)?;
            if acked >= i64::from(min.replicas) {
                return Ok(true);
            }
            if !self.sink.connected() {
                return Ok(false);
            }
            crate::limited_warn!(
                TOO_FEW_REPLICAS,
                "stream entries up to {newest} are on {acked} of {} replicas \
                 (HUB_REDIS_MIN_REPLICAS): handing them on once enough replicas have them",
                min.replicas
            );
        }
    }

    /// After a reconnect: were entries we never read trimmed while we were away?
    async fn check_gap(&self, conn: &mut Conn, from: StreamId) -> Result<(), StoreError> {
        let mut eval = redis::cmd("EVAL");
        eval.arg(READ_AFTER_SCRIPT)
            .arg(1)
            .arg(&self.key)
            .arg(from.next().to_string())
            .arg(0);
        let reply: Value = eval.query_async(conn).await.map_err(unavailable)?;
        if let Value::Array(parts) = reply {
            if let [deleted, last, first, added, length, _, _, _] = parts.as_slice() {
                let state = StreamState {
                    max_deleted: parse_id(deleted)?,
                    last_generated: parse_id(last)?,
                    first: parse_id(first).ok(),
                    lost_any: as_int(added) != as_int(length),
                };
                if let Err(StoreError::OffsetTrimmed(_)) = state.covers(from) {
                    error!("entries after {from} were trimmed before this instance read them: they are lost to its clients");
                }
            }
        }
        info!("stream read loop reconnected after={from}");
        Ok(())
    }
}

/// Resolves to (`named`, the primary the sentinels name now) once they name another one than
/// `named` (asked every [`RENAMED_CHECK_EVERY`]); never without Sentinel (`named` is `None`) or
/// while no sentinel answers (the connection's own errors tell then).
async fn renamed(endpoint: Arc<Endpoint>, named: Option<String>) -> (String, String) {
    let Some(named) = named else {
        return std::future::pending().await;
    };
    loop {
        actix::clock::sleep(RENAMED_CHECK_EVERY).await;
        if let Some(now) = endpoint.named_by_sentinels(COMMAND_TIMEOUT).await {
            if now != named {
                return (named, now);
            }
        }
    }
}

/// Runs `work` until it ends, or until `stop` does first (then `work` is dropped at its await):
/// `Ok` with what `work` gave, `Err(Ok(..))` its error, `Err(Err(..))` what `stop` gave.
async fn first_of<T, E, S>(
    work: impl Future<Output = Result<T, E>>,
    stop: impl Future<Output = S>,
) -> Result<T, Result<E, S>> {
    let (mut work, mut stop) = (pin!(work), pin!(stop));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(stopped) = stop.as_mut().poll(cx) {
            return Poll::Ready(Err(Err(stopped)));
        }
        work.as_mut().poll(cx).map(|done| done.map_err(Ok))
    })
    .await
}

/// A number in [0, 1) that differs between instances and calls, for backoff jitter.
fn jitter() -> f64 {
    let mut byte = [0u8; 2];
    let _ = getrandom::fill(&mut byte);
    f64::from(u16::from_le_bytes(byte)) / 65536.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix::test]
    async fn first_of_gives_the_work_unless_the_stop_comes_first_and_then_drops_the_work() {
        let done: Result<u8, Result<&str, &str>> =
            first_of(async { Ok(7) }, std::future::pending::<&str>()).await;
        assert_eq!(done, Ok(7));
        let failed: Result<u8, Result<&str, &str>> =
            first_of(async { Err("lost") }, std::future::pending::<&str>()).await;
        assert_eq!(failed, Err(Ok("lost")));

        // A step still waiting (an XREAD BLOCK) when the sentinels name another primary: cut there,
        // so nothing after its await (the hand-on) runs.
        let handed_on = std::cell::Cell::new(false);
        let step = async {
            actix::clock::sleep(Duration::from_secs(60)).await;
            handed_on.set(true);
            Ok::<u8, &str>(1)
        };
        let stop = async {
            actix::clock::sleep(Duration::from_millis(10)).await;
            "renamed"
        };
        assert_eq!(first_of(step, stop).await, Err(Err("renamed")));
        assert!(!handed_on.get());
    }

    #[actix::test]
    async fn without_sentinel_the_loop_is_never_told_of_a_rename() {
        let endpoint = Arc::new(Endpoint::parse("redis://127.0.0.1:1").unwrap());
        let never = renamed(endpoint, None);
        let work = async {
            actix::clock::sleep(Duration::from_millis(1200)).await;
            Ok::<(), ()>(())
        };
        assert_eq!(first_of(work, never).await, Ok(()));
    }
}
