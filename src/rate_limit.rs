//! Per-client rate limits (publishes per address and per API key, new sessions per address):
//! `governor`'s keyed token buckets, with their state kept bounded.
//!
//! Owns: one keyed limiter per limit, shared by every worker (`Arc`). Used by: the publish guard
//! (`http/guard.rs`) and [`crate::admission`] (new Engine.IO sessions).
//!
//! ```text
//! check(key) ─► Ok                       a token taken from key's bucket (N per second, burst N)
//!            └► Err(RetryAfter(secs))    the bucket is empty: a token is back in `secs` (≥ 1, whole)
//! ```
//!
//! A bucket is a key's entry in a map; without care the map keeps every key ever seen (one per
//! client address, forever). At most once per [`SWEEP_EVERY`], a check first drops the buckets
//! that are full again (`retain_recent`: indistinguishable from a new one, so nothing is lost),
//! which bounds the map by the keys seen in the last two seconds or so.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// governor's keyed limiter on a `DashMap`, on clock `C`.
type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// How often a check sweeps out the buckets that are full again.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Whole seconds until a refused client may try again (`Retry-After`), at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RetryAfter(pub u64);

/// A limit of N events per second per key (burst N), or none.
pub struct KeyedLimit<K: Hash + Eq + Clone, C: Clock + Clone = DefaultClock> {
    limiter: Option<Keyed<K, C>>,
    clock: C,
    last_sweep: Mutex<Option<C::Instant>>,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    /// `per_second` events per second per key; 0: no limit.
    pub fn per_second(per_second: u32) -> Self {
        Self::with_clock(per_second, DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> KeyedLimit<K, C> {
    /// As [`KeyedLimit::per_second`], on `clock` (tests give a fake one).
    pub fn with_clock(per_second: u32, clock: C) -> Self {
        let limiter = NonZeroU32::new(per_second)
            .map(|n| RateLimiter::dashmap_with_clock(Quota::per_second(n), clock.clone()));
        KeyedLimit {
            limiter,
            clock,
            last_sweep: Mutex::new(None),
        }
    }

    /// Takes one of `key`'s tokens, or says when one is back.
    pub fn check(&self, key: &K) -> Result<(), RetryAfter> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        self.sweep(limiter);
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            RetryAfter(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(RetryAfter(1))
        })
    }

    /// How many keys have a bucket now (after the last sweep).
    pub fn tracked(&self) -> usize {
        self.limiter.as_ref().map_or(0, Keyed::len)
    }

    fn sweep(&self, limiter: &Keyed<K, C>) {
        let now = self.clock.now();
        {
            // A sweep in progress elsewhere: this check does not wait for it.
            let Ok(mut last) = self.last_sweep.try_lock() else {
                return;
            };
            if last.is_some_and(|last| now.duration_since(last) < SWEEP_EVERY.into()) {
                return;
            }
            *last = Some(now);
        }
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn keyed_limit_refuses_past_n_per_second_per_key_with_whole_seconds_to_wait() {
        let clock = FakeRelativeClock::default();
        let limit = KeyedLimit::with_clock(3, clock.clone());
        for _ in 0..3 {
            assert_eq!(limit.check(&"a"), Ok(()));
        }
        assert_eq!(
            limit.check(&"a"),
            Err(RetryAfter(1)),
            "a third of a second: 1"
        );
        assert_eq!(limit.check(&"b"), Ok(()), "other keys unaffected");
        clock.advance(Duration::from_millis(340));
        assert_eq!(limit.check(&"a"), Ok(()), "a token is back");

        let slow = KeyedLimit::with_clock(1, clock.clone());
        assert_eq!(slow.check(&1), Ok(()));
        assert_eq!(slow.check(&1), Err(RetryAfter(1)));

        let off = KeyedLimit::with_clock(0, clock);
        for _ in 0..10_000 {
            assert_eq!(off.check(&"a"), Ok(()));
        }
        assert_eq!(off.tracked(), 0);
    }

    #[test]
    fn keyed_limit_forgets_buckets_that_are_full_again() {
        let clock = FakeRelativeClock::default();
        let limit = KeyedLimit::with_clock(10, clock.clone());
        for key in 0..5_000u32 {
            assert_eq!(limit.check(&key), Ok(()));
        }
        assert_eq!(limit.tracked(), 5_000);
        clock.advance(SWEEP_EVERY + Duration::from_millis(1));
        // This check sweeps first: every earlier bucket is full again.
        assert_eq!(limit.check(&9_999), Ok(()));
        assert_eq!(limit.tracked(), 1);
        // A bucket not full again at the next sweep is kept, with its count.
        clock.advance(Duration::from_millis(100));
        let drain = |limit: &KeyedLimit<u32, FakeRelativeClock>| {
            (0..=20).take_while(|_| limit.check(&9_999).is_ok()).count()
        };
        assert!(drain(&limit) < 20, "refused at last");
        clock.advance(SWEEP_EVERY - Duration::from_millis(90));
        assert_eq!(limit.check(&1), Ok(()), "sweeps");
        assert_eq!(limit.tracked(), 2, "9999 still drawn down, and 1");
        assert!(
            drain(&limit) < 10,
            "its count was kept: a new bucket holds 10"
        );
    }

    #[test]
    fn keyed_limit_sweeps_at_most_once_per_interval_and_again_when_it_has_passed() {
        let clock = FakeRelativeClock::default();
        let limit = KeyedLimit::with_clock(10, clock.clone());
        assert_eq!(
            limit.check(&0u32),
            Ok(()),
            "the first check sweeps (nothing)"
        );
        for key in 1..=100u32 {
            assert_eq!(limit.check(&key), Ok(()));
        }
        // Full again after 100 ms, but the last sweep was less than SWEEP_EVERY ago: kept.
        clock.advance(SWEEP_EVERY - Duration::from_millis(1));
        assert_eq!(limit.check(&500), Ok(()));
        assert_eq!(limit.tracked(), 102, "no sweep within the interval");
        // Exactly one interval after the last sweep: this check sweeps.
        clock.advance(Duration::from_millis(1));
        assert_eq!(limit.check(&501), Ok(()));
        assert_eq!(limit.tracked(), 2, "500 (drawn down 1 ms ago) and 501");
    }
}
