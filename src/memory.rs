//! Giving the memory of a burst of connections back to the operating system.
//!
//! Every connection's handshake passes through the HTTP layer, whose per-connection buffers (8 KiB
//! of reading space each, the request, the dispatcher) are freed once the socket is a WebSocket. A
//! ramp of thousands of connections has thousands of handshakes in flight at once: glibc's malloc
//! keeps the pages they freed, scattered among the live sessions' allocations, where no later
//! `free` trims them (only the top of a heap is given back by itself). Measured (scripts/bench.sh
//! idle, 10 000 connections on two instances): about 1.2 KB per connection of resident memory above
//! the live heap, for as long as the process lives.
//!
//! `malloc_trim(0)` walks every arena and returns the free pages inside them (madvise). It is not
//! free (it walks the free lists of every arena, under each arena's lock), so it runs only when a
//! burst has passed: checked every [`CHECK_EVERY`] on a thread of its own, it trims once
//! at least [`BURST`] sessions started or ended (or upgrades were refused: their connections'
//! buffers were freed too) since the last trim and the last check saw fewer than [`CALM`] (the
//! burst is over, or at least resting). A steady trickle trims at most once per [`BURST`].
//!
//! Its cost, measured (release build, a busy 2-core box): 0.35-7.5 ms a call at 5000 connections an
//! instance, 1-13 ms at 10 000 (19 ms once, right after 10 000 clients left). So the checks and the
//! walk run on a thread of their own, one per process however many hubs it starts, not on the
//! thread that starts the hub (it runs the Hub, StreamBridge and Recovery actors: a broadcast would
//! wait the whole walk); a thread allocating in the arena being walked waits for that arena's part
//! only. Not an interval on an actix arbiter either: a turn that held that thread up past a check
//! made the missed checks run back to back, the second one seeing no churn "since the last check"
//! and taking a ramp for calm; and each hub started its own, trimming once each for one burst.
//!
//! Only with glibc (`target_env = "gnu"`): other allocators (musl's, jemalloc) return memory in
//! their own ways, and have no `malloc_trim`. There the trimmer's rule is only its unit tests'.
#![cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sessions started or ended, and WebSocket upgrades refused, in this process (every hub instance
/// in it alike).
static CHURN: AtomicU64 = AtomicU64::new(0);
/// Trims run in this process so far.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
static TRIMS: AtomicU64 = AtomicU64::new(0);

/// How often the trimmer looks at the churn.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Sessions started or ended since the last trim that make the freed memory worth a trim.
pub const BURST: u64 = 256;
/// Fewer sessions started or ended than this in the last check: the burst has passed.
pub const CALM: u64 = 64;

/// A session started or ended, or an upgrade was refused: a connection's HTTP buffers were freed.
pub fn churn() {
    CHURN.fetch_add(1, Ordering::Relaxed);
}

/// The churn so far (for tests, which hold [`COUNTS`] while they count).
#[cfg(test)]
pub(crate) fn churned() -> u64 {
    CHURN.load(Ordering::Relaxed)
}

/// Held by the tests that count churn or trims: the counts are the process's.
#[cfg(test)]
static COUNTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `test` on an actix system of its own, holding [`COUNTS`]: the churn and the trims are the
/// process's, and other tests count them too.
#[cfg(test)]
pub(crate) fn counting(test: impl std::future::Future<Output = ()>) {
    let _counts = COUNTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    actix_web::rt::System::new().block_on(test);
}

/// What the trimmer decides at each check, apart from the clock and the call itself.
#[derive(Debug, Default)]
pub struct Trimmer {
    /// The churn count at the last check.
    seen: u64,
    /// The churn count at the last trim.
    trimmed: u64,
}

impl Trimmer {
    /// Whether to trim now, given the churn count `now`.
    pub fn due(&mut self, now: u64) -> bool {
        let last_check = now.saturating_sub(self.seen);
        self.seen = now;
        if now.saturating_sub(self.trimmed) >= BURST && last_check < CALM {
            self.trimmed = now;
            return true;
        }
        false
    }
}

/// Starts the process's trimmer, once however many hubs the process starts (glibc only; elsewhere
/// nothing): a thread that sleeps between checks and trims when a burst has passed.
pub fn spawn_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("malloc-trim".to_owned())
                .spawn(run_trimmer);
            if let Err(err) = spawned {
                log::warn!("malloc_trim thread not started, freed memory stays mapped: {err}");
            }
        });
    }
}

/// The trimmer's thread: a check every [`CHECK_EVERY`] (at least: a check late for any reason
/// is never followed by one sooner), one trim at a time.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn run_trimmer() {
    let mut trimmer = Trimmer::default();
    loop {
        std::thread::sleep(CHECK_EVERY);
        if trimmer.due(CHURN.load(Ordering::Relaxed)) {
            let started = std::time::Instant::now();
            // SAFETY: malloc_trim only walks and releases glibc's own free memory; it takes each
            // arena's lock, so it is safe beside other threads' allocations.
            let released = unsafe { libc::malloc_trim(0) } == 1;
            TRIMS.fetch_add(1, Ordering::Relaxed);
            log::debug!(
                "malloc_trim took={:?} released={released}",
                started.elapsed()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_after_a_burst_has_passed() {
        let mut trimmer = Trimmer::default();
        // A ramp: many sessions per check, no trim while it lasts.
        assert!(!trimmer.due(1000));
        assert!(!trimmer.due(5000));
        // Calm: one trim, then none while nothing more happens.
        assert!(trimmer.due(5010));
        assert!(!trimmer.due(5010));
        assert!(!trimmer.due(5020));
    }

    #[test]
    fn a_trickle_trims_at_most_once_per_burst_of_sessions() {
        let mut trimmer = Trimmer::default();
        let trims = (1..=1000u64)
            .filter(|check| trimmer.due(check * 10))
            .count();
        // 10 000 sessions in all, 10 a check: one trim per BURST of them.
        assert_eq!(trims as u64, 10_000 / 260);
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn trims() -> u64 {
        TRIMS.load(Ordering::Relaxed)
    }

    /// Two hubs in one process (tests, an application embedding two): their churn is one count, so
    /// one burst is one trim, not one per hub, and never two walks at once.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn two_hubs_in_one_process_trim_once_per_burst() {
        counting(async {
            // What each hub's start does.
            spawn_trimmer();
            spawn_trimmer();
            let before = trims();
            for _ in 0..BURST {
                churn();
            }
            // The burst seen, then calm: one trim (a check or two later), then nothing.
            actix_web::rt::time::sleep(CHECK_EVERY * 3 + CHECK_EVERY / 2).await;
            assert_eq!(trims() - before, 1, "trims for one burst");
        });
    }

    /// A ramp lasts while the thread that starts the hub is held up (a long turn of the Hub's, a busy
    /// box): the checks it missed must not run back to back when it is free again, the second one
    /// seeing no churn "since the last check" and taking the ramp for calm.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_stalled_hub_thread_does_not_take_a_ramp_for_calm() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        use std::time::{Duration, Instant};

        counting(async {
            spawn_trimmer();
            // A ramp: a session started or ended every millisecond (1000 a check, CALM is 64), for
            // 4.5 s at most.
            let ramping = Arc::new(AtomicBool::new(true));
            let ramp = std::thread::spawn({
                let ramping = ramping.clone();
                move || {
                    let end = Instant::now() + Duration::from_millis(4500);
                    while ramping.load(Ordering::Relaxed) && Instant::now() < end {
                        churn();
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
            let before = trims();
            actix_web::rt::time::sleep(Duration::from_millis(1200)).await;
            // The hub's thread busy for 2.5 s (two checks missed).
            std::thread::sleep(Duration::from_millis(2500));
            actix_web::rt::time::sleep(Duration::from_millis(500)).await;
            let during_ramp = trims() - before;
            ramping.store(false, Ordering::Relaxed);
            ramp.join().expect("the ramp's thread");
            // The trim the ramp's end earns, before the next test counts.
            actix_web::rt::time::sleep(CHECK_EVERY * 2 + CHECK_EVERY / 2).await;
            assert_eq!(during_ramp, 0, "trims while sessions were still ramping");
        });
    }
}
