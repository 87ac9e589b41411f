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
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Instant;

use actix::prelude::*;
use actix::WeakAddr;
use actix_web::rt::time::{sleep_until, Sleep};

use super::Session;

/// One of the session's deadlines may have been reached (at the instant it was armed for).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Due(pub Instant);

/// A session to tell at `at`.
struct Entry {
    at: Instant,
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
pub(crate) fn arm(at: Instant, session: WeakAddr<Session>) {
    QUEUE.with(|queue| {
        let mut queue = queue.borrow_mut();
        let earliest = queue.heap.peek().is_none_or(|top| at < top.at);
        queue.heap.push(Entry { at, session });
        if !queue.driving {
            queue.driving = true;
            queue.driver += 1;
            actix_web::rt::spawn(Driver {
                sleep: Box::pin(sleep_until(at.into())),
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
            let now = Instant::now();
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
            let next = next.into();
            if self.sleep.deadline() != next {
                self.sleep.as_mut().reset(next);
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}
