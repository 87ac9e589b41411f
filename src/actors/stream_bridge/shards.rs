//! The log over one stream or several (`HUB_STREAM_SHARDS`, README "Beyond one stream: shards"):
//! where an append goes, and a replay page read across every shard.
//!
//! ```text
//! append(target)     ──► the stream of shard_of(target's smallest room) (a broadcast: shard 0)
//! replay(after, B)   ──► per shard i, in shard order: count/N entries after after[i], none past B[i]
//!                        (B: what this instance's loops had handed on when the page was asked for)
//!                        every entry stamped with the offset a client is up to date to once it has it
//! ```
//!
//! With one shard nothing is bounded and an offset is the entry id itself: the Node adapter's format
//! and today's behaviour. With several, the bound is what keeps a client's composite offset from
//! ever moving back in a shard: every live entry after the replay carries the loops' position, which
//! is past the bound in every shard.

use std::sync::Arc;

use crate::protocol::ids::StreamId;
use crate::protocol::offset::Offset;
use crate::store::{Epoch, LogBackend, LogEntry, LogRead, ReplayScope, StoreError, StoreFuture};

/// A page of a replay over every shard.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRead {
    /// The entries to hand the socket, shard 0's first, each shard's oldest first, each stamped with
    /// its offset ([`LogEntry::position`]).
    pub entries: Vec<LogEntry>,
    /// How far the page read in every shard: the client is up to date up to here once `entries`
    /// are written.
    pub read_to: Offset,
    /// Whether some shard has more to read than this page took.
    pub more: bool,
    /// Entries read over all shards, delivered or skipped (sizes the next page).
    pub read: usize,
    /// Their bytes.
    pub bytes: usize,
}

/// Where a log is, and its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPosition {
    /// With one shard the newest entry's id; with several, what this instance's loops had handed on
    /// (a fresh session's start: nothing at or before it is owed to the socket).
    pub offset: Offset,
    /// The log's epoch ([`Epoch::joined`] over the shards).
    pub epoch: Epoch,
}

/// Reads a page of a replay: about `count` entries after `after`, spread evenly over the shards
/// (at least one from each: a page is sized in entries of the whole log), none past `bound`
/// (`None` with one shard: read to the log's end, the handover skips what comes live). Fails with
/// the first shard's error in shard order (one failed shard fails the page: never a partial replay),
/// and with `EpochChanged` if `scope`'s epoch is not one per shard.
pub fn read_replay(
    shards: &mut [Box<dyn LogBackend>],
    after: Offset,
    bound: Option<Offset>,
    count: usize,
    scope: &ReplayScope,
) -> StoreFuture<ReplayRead> {
    let epochs = scope.epoch.parts();
    if epochs.len() != shards.len() || after.shards() != shards.len() {
        let refused = StoreError::EpochChanged {
            expected: scope.epoch.clone(),
            found: format!("a log of {} shards", shards.len()),
        };
        return Box::pin(std::future::ready(Err(refused)));
    }
    let count = count.div_ceil(shards.len()).max(1);
    let reads: Vec<_> = shards
        .iter_mut()
        .zip(epochs)
        .enumerate()
        .map(|(shard, (backend, epoch))| {
            let scope = ReplayScope {
                epoch,
                ..scope.clone()
            };
            // Spawned, so every shard's read is in flight at once (a backend's future does
            // nothing until polled): a page costs one round trip, not one per shard.
            actix::spawn(backend.read_after(after.id(shard), count, &scope))
        })
        .collect();
    Box::pin(async move {
        let mut page = ReplayRead {
            entries: Vec::new(),
            read_to: after.clone(),
            more: false,
            read: 0,
            bytes: 0,
        };
        let mut running = after;
        for (shard, read) in reads.into_iter().enumerate() {
            let read = read
                .await
                .map_err(|err| StoreError::Unavailable(format!("shard {shard} read: {err}")))??;
            page.read += read.read;
            page.bytes += read.bytes;
            let limit = bound.as_ref().map(|bound| bound.id(shard));
            let (entries, read_to, more) = within(read, page.read_to.id(shard), limit, count);
            page.more |= more;
            page.read_to = page.read_to.advanced(shard, read_to);
            for mut entry in entries {
                entry.shard = shard;
                running = running.advanced(shard, entry.id);
                entry.position = Some(Arc::new(running.clone()));
                page.entries.push(entry);
            }
        }
        Ok(page)
    })
}

/// What a shard's read gives the page: its entries up to `limit`, how far it read (never past
/// `limit`), and whether it has more before `limit`.
fn within(
    read: LogRead,
    after: StreamId,
    limit: Option<StreamId>,
    count: usize,
) -> (Vec<LogEntry>, StreamId, bool) {
    let last = read.last.unwrap_or(after);
    let reached_end = read.read < count;
    match limit {
        None => (read.entries, last, !reached_end),
        Some(limit) if reached_end || last >= limit => {
            let entries = read.entries.into_iter().filter(|e| e.id <= limit).collect();
            (entries, limit.max(after), false)
        }
        Some(_) => (read.entries, last, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::target::Target;

    fn id(ms: u64) -> StreamId {
        StreamId::new(ms, 0)
    }

    fn read(ids: &[u64], read: usize) -> LogRead {
        LogRead {
            entries: ids
                .iter()
                .map(|ms| {
                    LogEntry::event(
                        id(*ms),
                        Target::broadcast(crate::protocol::target::Namespace::main()),
                        "[\"x\"]".into(),
                    )
                })
                .collect(),
            read,
            last: ids.last().map(|ms| id(*ms)),
            bytes: 0,
        }
    }

    fn ids(entries: &[LogEntry]) -> Vec<u64> {
        entries.iter().map(|e| e.id.ms).collect()
    }

    #[test]
    fn a_shard_read_stops_at_the_bound_and_reads_to_it() {
        // Read past the bound: the entries after it are left to the live path, read_to is the bound.
        let (entries, read_to, more) = within(read(&[3, 5, 8], 3), id(1), Some(id(5)), 3);
        assert_eq!((ids(&entries), read_to, more), (vec![3, 5], id(5), false));
        // The stream ends before the page is full: done, up to the bound.
        let (entries, read_to, more) = within(read(&[3], 1), id(1), Some(id(5)), 3);
        assert_eq!((ids(&entries), read_to, more), (vec![3], id(5), false));
        // A full page short of the bound: more to read, from the last entry read.
        let (entries, read_to, more) = within(read(&[2, 3, 4], 3), id(1), Some(id(9)), 3);
        assert_eq!((ids(&entries), read_to, more), (vec![2, 3, 4], id(4), true));
        // A client ahead of the bound keeps its own offset.
        let (entries, read_to, more) = within(read(&[], 0), id(7), Some(id(5)), 3);
        assert_eq!((ids(&entries), read_to, more), (vec![], id(7), false));
    }

    /// A shard whose replay reads `reads` answers and whose read loop starts at `start`;
    /// everything else is the embedded log's.
    struct Stub {
        log: crate::store::MemoryLog,
        reads: Box<dyn FnMut(StreamId, usize) -> StoreFuture<LogRead>>,
        start: StreamId,
        /// Reads of its tip so far.
        tips: std::rc::Rc<std::cell::Cell<usize>>,
    }

    impl Stub {
        fn boxed(
            start: StreamId,
            reads: impl FnMut(StreamId, usize) -> StoreFuture<LogRead> + 'static,
        ) -> Box<dyn LogBackend> {
            Box::new(Stub {
                log: crate::store::MemoryLog::new(10, usize::MAX),
                reads: Box::new(reads),
                start,
                tips: Default::default(),
            })
        }
    }

    /// A shard whose stream holds entries 3, 5 and 8 while its read loop has handed on only up to
    /// 5 (a loop lagging behind the stream).
    fn lagging() -> Box<dyn LogBackend> {
        Stub::boxed(id(5), |_, count| {
            Box::pin(std::future::ready(Ok(read(&[3, 5, 8], 3.min(count)))))
        })
    }

    /// A shard with more entries than any page reads, [`DEEP_ENTRY`] bytes each, all handed on.
    fn deep() -> Box<dyn LogBackend> {
        Stub::boxed(id(u64::MAX / 2), |after, count| {
            let ids: Vec<u64> = (after.ms + 1..=after.ms + count as u64).collect();
            let mut page = read(&ids, ids.len());
            page.bytes = ids.len() * DEEP_ENTRY;
            Box::pin(std::future::ready(Ok(page)))
        })
    }

    const DEEP_ENTRY: usize = 4096;

    impl LogBackend for Stub {
        fn append(&mut self, t: &Target, a: Arc<str>) -> StoreFuture<StreamId> {
            self.log.append(t, a)
        }
        fn append_once(
            &mut self,
            t: &Target,
            a: Arc<str>,
            k: &crate::store::AppendKey,
        ) -> StoreFuture<crate::store::KeyedAppend> {
            self.log.append_once(t, a, k)
        }
        fn disconnect_sockets(
            &mut self,
            r: &crate::protocol::cluster::DisconnectSockets,
        ) -> StoreFuture<()> {
            self.log.disconnect_sockets(r)
        }
        fn probe_append(&mut self) -> StoreFuture<()> {
            self.log.probe_append()
        }
        fn read_after(
            &mut self,
            after: StreamId,
            count: usize,
            _: &ReplayScope,
        ) -> StoreFuture<LogRead> {
            (self.reads)(after, count)
        }
        fn read_range(
            &mut self,
            q: &crate::store::RangeQuery,
        ) -> StoreFuture<crate::store::LogRange> {
            self.log.read_range(q)
        }
        fn tip(&mut self) -> StoreFuture<crate::store::Position> {
            // A round trip's time: requests that come meanwhile wait for the next read.
            self.tips.set(self.tips.get() + 1);
            let tip = self.log.tip();
            Box::pin(async move {
                actix::clock::sleep(std::time::Duration::from_millis(20)).await;
                tip.await
            })
        }
        fn start_reading(
            &mut self,
            _: actix::Recipient<crate::store::LogEvent>,
        ) -> Option<StreamId> {
            Some(self.start)
        }
        fn keep_live(
            &mut self,
            r: crate::store::SessionRecord,
            t: std::time::Duration,
        ) -> StoreFuture<()> {
            self.log.keep_live(r, t)
        }
        fn save_session(
            &mut self,
            r: crate::store::SessionRecord,
            t: std::time::Duration,
        ) -> StoreFuture<()> {
            self.log.save_session(r, t)
        }
        fn claim_session(
            &mut self,
            p: &crate::protocol::ids::Pid,
            o: Option<&str>,
        ) -> StoreFuture<crate::store::Claim> {
            self.log.claim_session(p, o)
        }
        fn drop_session(&mut self, p: &crate::protocol::ids::Pid) -> StoreFuture<()> {
            self.log.drop_session(p)
        }
        fn is_ready(&self) -> bool {
            true
        }
    }

    /// A page's shard reads are in flight together: over N shards a page costs about one round
    /// trip to the log, not N one after another. Each shard's read here answers only once every
    /// shard's read has started.
    #[actix::test]
    async fn a_sharded_replay_page_reads_the_shards_at_once() {
        use std::cell::Cell;
        use std::rc::Rc;
        const SHARDS: usize = 4;
        let started = Rc::new(Cell::new(0usize));
        let gated = |started: Rc<Cell<usize>>| {
            Stub::boxed(id(100), move |_, count| {
                let started = started.clone();
                Box::pin(async move {
                    started.set(started.get() + 1);
                    while started.get() < SHARDS {
                        actix::clock::sleep(std::time::Duration::from_millis(5)).await;
                    }
                    Ok(read(&[3], 1.min(count)))
                })
            })
        };
        let mut shards: Vec<_> = (0..SHARDS).map(|_| gated(started.clone())).collect();
        let scope = ReplayScope {
            epoch: Epoch::joined(&vec![Epoch::from("e"); SHARDS]),
            nsp: crate::protocol::target::Namespace::main(),
            rooms: Vec::new(),
        };
        let bound = Offset::parse(&["100-0"; SHARDS].join(","), SHARDS).unwrap();
        let page = read_replay(&mut shards, Offset::zero(SHARDS), Some(bound), 8, &scope);
        let page = actix::clock::timeout(std::time::Duration::from_secs(10), page).await;
        assert!(
            page.is_ok(),
            "the shards are read one after another: {} of {SHARDS} reads started",
            started.get()
        );
        assert_eq!(page.unwrap().unwrap().entries.len(), SHARDS);
    }

    /// Fresh sessions asking where to start all at once (a reconnect storm) share reads of the
    /// tip, instead of holding a round trip to the log each; every one is answered.
    #[actix::test]
    async fn tip_requests_that_come_together_share_reads_of_the_tip() {
        use actix::Actor;
        const ASKS: usize = 50;
        let tips = std::rc::Rc::new(std::cell::Cell::new(0));
        let stub = Stub {
            log: crate::store::MemoryLog::new(10, usize::MAX),
            reads: Box::new(|_, _| Box::pin(std::future::ready(Ok(read(&[], 0))))),
            start: id(1),
            tips: tips.clone(),
        };
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
        let hub = crate::actors::hub::Hub::new(1 << 20, metrics.clone()).start();
        let bridge = super::super::StreamBridge::new(Box::new(stub), hub, metrics).start();
        // Each from its own task, as sessions' Recovery requests are (a `send` to a full mailbox
        // is only queued when polled).
        let asks: Vec<_> = (0..ASKS)
            .map(|_| actix::spawn(bridge.send(super::super::Tip)))
            .collect();
        for ask in asks {
            assert!(ask.await.unwrap().unwrap().is_ok());
        }
        assert!(
            (1..ASKS / 5).contains(&tips.get()),
            "{} reads of the tip for {ASKS} requests at once",
            tips.get()
        );
    }

    /// A replay page is sized (`count`, from the last page's mean entry size) to about
    /// `REPLAY_PAGE_BYTES` of the log: read over N shards it stays that size, not N times it
    /// (`--max-replays` pages are what resumes can pin at once).
    #[actix::test]
    async fn a_sharded_replay_page_reads_count_entries_over_all_shards_not_per_shard() {
        use crate::actors::recovery::{next_page_count, REPLAY_PAGE_BYTES};

        let mut shards: Vec<Box<dyn LogBackend>> = (0..8).map(|_| deep()).collect();
        let scope = ReplayScope {
            epoch: Epoch::joined(&vec![Epoch::from("e"); 8]),
            nsp: crate::protocol::target::Namespace::main(),
            rooms: Vec::new(),
        };
        let count = next_page_count(8, 8 * DEEP_ENTRY);
        let bound = Some(Offset::parse(&["9999999-0"; 8].join(","), 8).unwrap());
        let page = read_replay(&mut shards, Offset::zero(8), bound, count, &scope)
            .await
            .unwrap();
        assert!(page.more, "every shard has more");
        assert!(
            page.bytes <= REPLAY_PAGE_BYTES + 8 * DEEP_ENTRY,
            "a page of {} entries over 8 shards read {} bytes, the page aims at {REPLAY_PAGE_BYTES}",
            count,
            page.bytes
        );
        assert!(
            page.read >= 8,
            "every shard reads at least one entry: {}",
            page.read
        );
    }

    #[actix::test]
    async fn a_sharded_replay_reads_no_shard_past_what_the_loops_handed_on() {
        use actix::Actor;

        use crate::actors::hub::Hub;
        use crate::actors::stream_bridge::{HandedOn, ReadAfter, StreamBridge};
        use crate::metrics::Metrics;

        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(1 << 20, metrics.clone()).start();
        let bridge = StreamBridge::sharded(vec![lagging(), lagging()], hub, metrics).start();
        let handed_on = bridge.send(HandedOn).await.unwrap().unwrap();
        assert_eq!(handed_on.to_string(), "5-0,5-0");
        let scope = ReplayScope {
            epoch: Epoch::joined(&[Epoch::from("e0"), Epoch::from("e1")]),
            nsp: crate::protocol::target::Namespace::main(),
            rooms: Vec::new(),
        };
        let page = bridge
            .send(ReadAfter {
                after: Offset::zero(2),
                count: 10,
                scope,
            })
            .await
            .unwrap()
            .unwrap();
        // Entry 8 is the live path's: a replay that took it would leave the client at 8 in that
        // shard, and the next live entry's offset (5 there) would move it back.
        let got: Vec<(usize, u64, String)> = page
            .entries
            .iter()
            .map(|e| (e.shard, e.id.ms, e.offset().to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (0, 3, "3-0,0-0".to_owned()),
                (0, 5, "5-0,0-0".to_owned()),
                (1, 3, "5-0,3-0".to_owned()),
                (1, 5, "5-0,5-0".to_owned()),
            ]
        );
        assert_eq!(page.read_to.to_string(), "5-0,5-0");
        assert!(!page.more);
    }

    #[test]
    fn one_shard_reads_to_the_log_end_unbounded() {
        let (entries, read_to, more) = within(read(&[3, 5, 8], 3), id(1), None, 3);
        assert_eq!((ids(&entries), read_to, more), (vec![3, 5, 8], id(8), true));
        let (entries, read_to, more) = within(read(&[3], 1), id(1), None, 3);
        assert_eq!((ids(&entries), read_to, more), (vec![3], id(3), false));
    }
}
