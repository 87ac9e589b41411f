//! The events a client may send on one Engine.IO connection: a token bucket over every EVENT
//! packet (any name, on any namespace of the connection), and a second bucket over the events the
//! first refused, whose exhaustion is abuse. A plain type the session asks once per event.
//!
//! ```text
//! EVENT ─► events bucket (rate N/s, burst N) ─ token ─► Pass: handed to the application
//!                    │ empty
//!                    └─► refused bucket (rate N/s, burst HUB_SOCKET_ABUSE_LIMIT) ─ token ─► Refused
//!                                       │ empty                      (acked {"error":"rate limited"})
//!                                       └─► Abuse: DISCONNECT on every namespace, then close
//! ```
//!
//! One budget per connection, not per namespace socket: a client that joins ten namespaces on one
//! connection does not get ten allowances. The refused bucket forgives refusals at the events rate,
//! so a client that keeps sending at twice the limit is disconnected after about `abuse_limit / N`
//! seconds, and one that bursts past the limit now and then never is.
//!
//! Both buckets are `governor`'s GCRA limiters (direct, not keyed): one atomic and the quota,
//! 40 bytes each on the monotonic clock (see the size test). The refused bucket is only built on
//! the connection's first refusal: a connection that never passes the limit holds one limiter.

use std::num::NonZeroU32;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// The limits every connection of the instance gets (from `HUB_SOCKET_EVENTS_PER_SECOND` and
/// `HUB_SOCKET_ABUSE_LIMIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRate {
    /// Events per second, and the burst.
    events: Quota,
    /// Refusals forgiven per second (the events rate) and how many may accumulate; `None`: the
    /// first refusal is abuse (an abuse limit of 0).
    refusals: Option<Quota>,
}

impl EventRate {
    /// `per_second` events a second with a burst of as many; past them, `abuse_limit` refusals may
    /// accumulate (forgiven at `per_second`) before the connection is abusive. `None` when
    /// `per_second` is 0: no limit.
    pub fn new(per_second: u32, abuse_limit: u32) -> Option<EventRate> {
        let rate = NonZeroU32::new(per_second)?;
        Some(EventRate {
            events: Quota::per_second(rate),
            refusals: NonZeroU32::new(abuse_limit)
                .map(|limit| Quota::per_second(rate).allow_burst(limit)),
        })
    }
}

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the limit: hand it to the application.
    Pass,
    /// Past the limit: not handed on; acknowledged `{"error":"rate limited"}` if the client asked.
    Refused,
    /// Past the limit and past the refusals allowed: the connection is disconnected for abuse.
    Abuse,
}

type Bucket<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One connection's buckets. Generic over the clock so tests can move time.
pub(crate) struct EventLimit<C: Clock = MonotonicClock> {
    clock: C,
    events: Bucket<C>,
    /// Built at the first refusal.
    refusals: Option<Box<Bucket<C>>>,
}

impl EventLimit<MonotonicClock> {
    /// The buckets of a new connection, full.
    pub(crate) fn new(rate: &EventRate) -> EventLimit {
        EventLimit::with_clock(rate, MonotonicClock)
    }
}

impl<C: Clock + Clone> EventLimit<C> {
    fn with_clock(rate: &EventRate, clock: C) -> EventLimit<C> {
        EventLimit {
            events: RateLimiter::direct_with_clock(rate.events, clock.clone()),
            clock,
            refusals: None,
        }
    }

    /// Takes a token for one event; what to do with it.
    pub(crate) fn check(&mut self, rate: &EventRate) -> Verdict {
        if self.events.check().is_ok() {
            return Verdict::Pass;
        }
        let Some(quota) = rate.refusals else {
            return Verdict::Abuse;
        };
        let refusals = self.refusals.get_or_insert_with(|| {
            Box::new(RateLimiter::direct_with_clock(quota, self.clock.clone()))
        });
        match refusals.check() {
            Ok(()) => Verdict::Refused,
            Err(_) => Verdict::Abuse,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limit(
        per_second: u32,
        abuse_limit: u32,
    ) -> (EventRate, EventLimit<FakeRelativeClock>, FakeRelativeClock) {
        let rate = EventRate::new(per_second, abuse_limit).expect("a limit");
        let clock = FakeRelativeClock::default();
        (rate, EventLimit::with_clock(&rate, clock.clone()), clock)
    }

    fn verdicts(
        limit: &mut EventLimit<FakeRelativeClock>,
        rate: &EventRate,
        n: usize,
    ) -> Vec<Verdict> {
        (0..n).map(|_| limit.check(rate)).collect()
    }

    #[test]
    fn event_limit_passes_a_burst_of_the_rate_then_refuses_then_finds_abuse() {
        let (rate, mut limit, _) = limit(5, 3);
        let seen = verdicts(&mut limit, &rate, 9);
        use Verdict::*;
        assert_eq!(
            seen,
            [Pass, Pass, Pass, Pass, Pass, Refused, Refused, Refused, Abuse]
        );
    }

    #[test]
    fn event_limit_refills_at_the_rate_and_forgives_refusals_at_the_same_rate() {
        let (rate, mut limit, clock) = limit(10, 4);
        assert!(verdicts(&mut limit, &rate, 10)
            .iter()
            .all(|v| *v == Verdict::Pass));
        assert_eq!(verdicts(&mut limit, &rate, 4), [Verdict::Refused; 4]);
        // A tenth of a second: one event's token, and one refusal forgiven.
        clock.advance(Duration::from_millis(100));
        assert_eq!(
            verdicts(&mut limit, &rate, 3),
            [Verdict::Pass, Verdict::Refused, Verdict::Abuse]
        );
        // A second later both buckets are full again: a client that calmed down starts afresh.
        clock.advance(Duration::from_secs(1));
        assert!(verdicts(&mut limit, &rate, 10)
            .iter()
            .all(|v| *v == Verdict::Pass));
        assert_eq!(
            verdicts(&mut limit, &rate, 5),
            [
                Verdict::Refused,
                Verdict::Refused,
                Verdict::Refused,
                Verdict::Refused,
                Verdict::Abuse
            ]
        );
    }

    #[test]
    fn event_limit_of_zero_is_none_and_an_abuse_limit_of_zero_disconnects_at_the_first_refusal() {
        assert_eq!(EventRate::new(0, 1000), None);
        let (rate, mut limit, _) = limit(2, 0);
        assert_eq!(
            verdicts(&mut limit, &rate, 3),
            [Verdict::Pass, Verdict::Pass, Verdict::Abuse]
        );
    }

    #[test]
    fn event_limit_is_small_and_builds_the_refusal_bucket_only_when_needed() {
        // Every connection holds one: the events bucket inline, the refusals behind a pointer.
        let size = std::mem::size_of::<EventLimit>();
        assert!(
            size <= 48,
            "EventLimit is {size} bytes (on x86_64 Linux: a 40-byte bucket and a pointer)"
        );
        assert_eq!(
            std::mem::size_of::<Option<EventLimit>>(),
            size,
            "None costs nothing more"
        );
        let (rate, mut limit, _) = limit(1, 1);
        limit.check(&rate);
        assert!(limit.refusals.is_none(), "no refusal yet");
        limit.check(&rate);
        assert!(limit.refusals.is_some());
    }
}
