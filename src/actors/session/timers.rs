//! One timer per worker thread for the deadlines of all its sessions: the heartbeat (the next ping,
//! the pong due), the connect timeout and the session records' refresh. Each session keeps its
//! deadlines as plain instants and has one entry here, at the earliest of them; when it is reached the
//! session gets a [`Due`] and looks at what is due itself.
//!
//! Why not a tokio timer per deadline (`ctx.run_later` / `run_interval`): each is a boxed actor
//! future holding a `Sleep`, two or three per idle connection, most of what an idle session holds
//! besides its buffers. Here an idle session costs one heap entry (an instant and a weak address).
//!
//! ```text
//! Session ──arm(at)──► thread's queue (min-heap by instant) ◄── one Sleep, reset to the earliest
//!    ▲                                                          │ reached
//!    └──────────────────────── Due(at) ◄────────────────────────┘
//! ```
//!
//! Entries are never removed early: a session whose deadlines moved later keeps its entry, sees
//! nothing due when it comes, and arms the next one; one whose deadline moved earlier adds a second
//! entry (the later one then finds nothing due). A session that ended finds its weak address gone.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::future::Future;
use std::num::NonZeroU64;
use std::ops::Add;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix::WeakAddr;
use actix_web::rt::time::{sleep_until, Sleep};

use super::Session;

/// A point in time in 8 bytes, where an `Instant` takes 16: nanoseconds since the process's first
/// use of one (plus one, so that `Option<Moment>` is 8 bytes too). A session keeps five deadlines
/// and every one has an entry here; the bytes saved bring its actor task down a size class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Moment(NonZeroU64);

/// What every [`Moment`] counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Moment {
    /// Now.
    pub(crate) fn now() -> Moment {
        Moment::from(Instant::now())
    }

    /// The same point as an `Instant` (exact: both count nanoseconds).
    pub(crate) fn instant(self) -> Instant {
        epoch() + Duration::from_nanos(self.0.get() - 1)
    }
}

impl From<Instant> for Moment {
    /// `at`, or the epoch if `at` is before it (a deadline is never).
    fn from(at: Instant) -> Moment {
        let nanos = u64::try_from(at.saturating_duration_since(epoch()).as_nanos());
        Moment(NonZeroU64::MIN.saturating_add(nanos.unwrap_or(u64::MAX)))
    }
}

impl Add<Duration> for Moment {
    type Output = Moment;

    /// Saturating (at 584 years from the epoch).
    fn add(self, after: Duration) -> Moment {
        let nanos = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
        Moment(self.0.saturating_add(nanos))
    }
}

/// One of the session's deadlines may have been reached (at the moment it was armed for).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Due(pub Moment);

/// A session to tell at `at`.
struct Entry {
    at: Moment,
    session: WeakAddr<Session>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed: the earliest instant is the heap's top.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

/// The thread's entries, and the driver that waits for the earliest.
#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Entry>,
    /// Whether a driver task is running on this thread.
    driving: bool,
    /// Which driver: one dropped with its runtime (a stopped System) clears `driving` only if it
    /// is still the current one.
    driver: u64,
    /// Wakes the driver when an entry earlier than the one it sleeps for arrives.
    waker: Option<Waker>,
}

thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

/// Tells `session` (on this thread) at `at` with a [`Due`].
pub(crate) fn arm(at: Moment, session: WeakAddr<Session>) {
    QUEUE.with(|queue| {
        let mut queue = queue.borrow_mut();
        let earliest = queue.heap.peek().is_none_or(|top| at < top.at);
        queue.heap.push(Entry { at, session });
        if !queue.driving {
            queue.driving = true;
            queue.driver += 1;
            actix_web::rt::spawn(Driver {
                sleep: Box::pin(sleep_until(at.instant().into())),
                id: queue.driver,
            });
        } else if earliest {
            if let Some(waker) = queue.waker.take() {
                waker.wake();
            }
        }
    });
}

/// Sleeps until the earliest entry, tells every session whose entry was reached, and ends when
/// none is left (the next `arm` starts another).
struct Driver {
    sleep: Pin<Box<Sleep>>,
    id: u64,
}

impl Drop for Driver {
    /// A runtime that stops drops its tasks, this one too: the next `arm` on the thread (a new
    /// System, as tests start) must start another driver. The entries of the stopped one's
    /// sessions find their addresses gone.
    fn drop(&mut self) {
        let _ = QUEUE.try_with(|queue| {
            if let Ok(mut queue) = queue.try_borrow_mut() {
                if queue.driver == self.id {
                    queue.driving = false;
                    queue.waker = None;
                }
            }
        });
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        loop {
            let now = Moment::now();
            let next = QUEUE.with(|queue| {
                let mut queue = queue.borrow_mut();
                while queue.heap.peek().is_some_and(|top| top.at <= now) {
                    let Some(entry) = queue.heap.pop() else { break };
                    if let Some(session) = entry.session.upgrade() {
                        session.do_send(Due(entry.at));
                    }
                }
                let next = queue.heap.peek().map(|top| top.at);
                if next.is_none() {
                    queue.driving = false;
                    // A long-lived server keeps one driver per thread; an emptied heap gives
                    // back what a crowd of connections made it hold.
                    queue.heap.shrink_to_fit();
                    queue.waker = None;
                } else {
                    queue.waker = Some(cx.waker().clone());
                }
                next
            });
            let Some(next) = next else {
                return Poll::Ready(());
            };
            let next = next.instant().into();
            if self.sleep.deadline() != next {
                self.sleep.as_mut().reset(next);
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_is_the_instant_it_was_made_from() {
        let at = Instant::now() + Duration::from_millis(1500);
        assert_eq!(Moment::from(at).instant(), at, "exact, to the nanosecond");
        let later = at + Duration::from_nanos(1);
        assert!(Moment::from(at) < Moment::from(later));
        assert_eq!(
            Moment::from(at) + Duration::from_secs(25),
            Moment::from(at + Duration::from_secs(25))
        );
        assert!(Moment::now() <= Moment::from(Instant::now()));
    }

    #[test]
    fn a_moment_saturates_instead_of_wrapping() {
        let far = Moment::now() + Duration::MAX;
        assert!(far > Moment::now() + Duration::from_secs(100 * 365 * 24 * 3600));
        assert_eq!(far + Duration::from_secs(1), far);
    }

    #[test]
    fn an_instant_before_the_epoch_is_the_epoch_and_no_moment_is_earlier() {
        let first = Moment::now(); // the epoch is set by now
        let Some(before) = epoch().checked_sub(Duration::from_secs(1)) else {
            return; // a machine up for less than a second: no instant before the epoch exists
        };
        let at_epoch = Moment::from(before);
        assert_eq!(at_epoch.instant(), epoch());
        assert_eq!(at_epoch, Moment::from(epoch()));
        assert!(at_epoch <= first);
        assert_eq!(
            (at_epoch + Duration::from_millis(300)).instant(),
            epoch() + Duration::from_millis(300)
        );
    }

    #[test]
    fn moments_made_at_the_same_instant_tie_and_order_as_their_instants() {
        let at = Instant::now();
        let times: Vec<Instant> = (0..5u64)
            .map(|n| at + Duration::from_nanos(n * 7))
            .collect();
        let mut moments: Vec<Moment> = times.iter().rev().map(|&t| Moment::from(t)).collect();
        moments.sort();
        let back: Vec<Instant> = moments.iter().map(|m| m.instant()).collect();
        assert_eq!(back, times);
        assert_eq!(Moment::from(at), Moment::from(at));
    }

    /// What the moments are for: a session's deadlines in half the bytes. The actor's task is
    /// allocated by tokio in steps of 128 bytes (its header and trailer take 96): past 672 bytes of
    /// actor, context and mailbox, every session costs 128 bytes more (x86_64).
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_session_actor_fits_a_768_byte_task() {
        use actix::dev::ContextFut;
        assert_eq!(std::mem::size_of::<Option<Moment>>(), 8);
        let actor = std::mem::size_of::<ContextFut<Session, Context<Session>>>();
        assert!(actor <= 672, "the session's actor is {actor} bytes");
    }
}
