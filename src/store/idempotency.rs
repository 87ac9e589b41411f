//! Idempotent appends: what a keyed append carries and finds, and the embedded log's table of keys.
//!
//! Owns: [`AppendKeys`], the embedded log's bounded table `key → {fingerprint, receipt, id}` with a
//! time to live (Redis keeps the same record as a string key with `PX`, see `redis_append.rs`).
//!
//! ```text
//! append_once(key) ─► key unseen (or expired) ─► append, remember {fingerprint, receipt, id} ─► Appended(id)
//!                  └► key seen, same fingerprint ───────────────────────────────────────────► Replayed{receipt, id}
//!                  └► key seen, other fingerprint ──────────────────────────────────────────► Conflict
//! ```

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::protocol::ids::StreamId;

/// Keys the embedded log remembers at most unless configured (`HUB_IDEMPOTENCY_MAX_KEYS`); past
/// it the oldest is forgotten early.
pub const DEFAULT_IDEMPOTENCY_MAX_KEYS: usize = 100_000;
/// How long a key is remembered unless configured (`HUB_IDEMPOTENCY_TTL_MS`): 24 hours, as Stripe.
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// A keyed append: the publisher's key, what identifies the request it came with, and what the
/// publisher gets back on a replay besides the id (the notification's id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendKey {
    /// The publisher's idempotency key (validated by the caller: visible ASCII, no spaces).
    pub key: String,
    /// A digest of the request (hex, no spaces): the same key with another request is a conflict.
    pub fingerprint: String,
    /// Kept with the key and returned on a replay (hex or uuid text, no spaces).
    pub receipt: String,
}

/// What a keyed append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyedAppend {
    /// The key was new: the event is in the log at this id.
    Appended(StreamId),
    /// The key was appended before with the same fingerprint: nothing was appended now.
    Replayed {
        /// The first append's receipt.
        receipt: String,
        /// The first append's id.
        id: StreamId,
    },
    /// The key was appended before with another fingerprint: nothing was appended.
    Conflict,
}

/// What a key remembers.
#[derive(Debug, Clone)]
struct Kept {
    fingerprint: String,
    receipt: String,
    id: StreamId,
    expires: Instant,
}

/// The embedded log's keys: at most `max_keys`, each for `ttl`. One time to live for all, so the
/// insertion order is the expiry order: expired keys are dropped from the front on each insert.
#[derive(Debug)]
pub(crate) struct AppendKeys {
    kept: HashMap<String, Kept>,
    /// Keys in insertion order, with the expiry they were inserted with (a key inserted again
    /// after expiring appears twice; only the entry matching its current expiry counts).
    order: VecDeque<(Instant, String)>,
    ttl: Duration,
    max_keys: usize,
}

impl AppendKeys {
    /// A table keeping each key for `ttl`, at most `max_keys` of them (at least one).
    pub(crate) fn new(ttl: Duration, max_keys: usize) -> AppendKeys {
        AppendKeys {
            kept: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            max_keys: max_keys.max(1),
        }
    }

    /// What `key` found at `now`: `None` if it is unseen or expired.
    pub(crate) fn find(&self, key: &AppendKey, now: Instant) -> Option<KeyedAppend> {
        let kept = self.kept.get(&key.key).filter(|k| k.expires > now)?;
        Some(if kept.fingerprint == key.fingerprint {
            KeyedAppend::Replayed {
                receipt: kept.receipt.clone(),
                id: kept.id,
            }
        } else {
            KeyedAppend::Conflict
        })
    }

    /// Remembers `key` appended at `id`; returns how many live keys were forgotten early to stay
    /// within the bound.
    pub(crate) fn remember(&mut self, key: &AppendKey, id: StreamId, now: Instant) -> usize {
        while let Some((expires, _)) = self.order.front() {
            if *expires > now {
                break;
            }
            self.forget_front();
        }
        let mut evicted = 0;
        while self.kept.len() >= self.max_keys {
            if self.forget_front() {
                evicted += 1;
            }
        }
        let expires = now + self.ttl;
        self.kept.insert(
            key.key.clone(),
            Kept {
                fingerprint: key.fingerprint.clone(),
                receipt: key.receipt.clone(),
                id,
                expires,
            },
        );
        self.order.push_back((expires, key.key.clone()));
        evicted
    }

    /// Drops the oldest entry of `order` and its key if that entry is the key's current one;
    /// returns whether a key was dropped.
    fn forget_front(&mut self) -> bool {
        let Some((expires, key)) = self.order.pop_front() else {
            return false;
        };
        if self.kept.get(&key).is_some_and(|k| k.expires == expires) {
            self.kept.remove(&key);
            return true;
        }
        false
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.kept.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(key: &str, fingerprint: &str) -> AppendKey {
        AppendKey {
            key: key.into(),
            fingerprint: fingerprint.into(),
            receipt: format!("r-{key}"),
        }
    }

    #[test]
    fn append_keys_replay_the_same_fingerprint_and_refuse_another() {
        let mut keys = AppendKeys::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        let id = StreamId::new(5, 0);
        assert_eq!(keys.find(&key("k", "f1"), now), None);
        assert_eq!(keys.remember(&key("k", "f1"), id, now), 0);
        assert_eq!(
            keys.find(&key("k", "f1"), now),
            Some(KeyedAppend::Replayed {
                receipt: "r-k".into(),
                id
            })
        );
        assert_eq!(keys.find(&key("k", "f2"), now), Some(KeyedAppend::Conflict));
    }

    #[test]
    fn append_keys_expire_at_their_deadline_and_are_dropped_on_a_later_insert() {
        let ttl = Duration::from_millis(50);
        let mut keys = AppendKeys::new(ttl, 10);
        let t0 = Instant::now();
        keys.remember(&key("a", "f"), StreamId::new(1, 0), t0);
        assert!(keys
            .find(&key("a", "f"), t0 + ttl - Duration::from_millis(1))
            .is_some());
        assert_eq!(keys.find(&key("a", "f"), t0 + ttl), None);
        keys.remember(&key("b", "f"), StreamId::new(2, 0), t0 + ttl);
        assert_eq!(keys.len(), 1, "the expired key is dropped");
        // A key appended again after it expired is remembered afresh, with its new id.
        keys.remember(&key("a", "f"), StreamId::new(3, 0), t0 + ttl);
        assert_eq!(
            keys.find(&key("a", "f"), t0 + ttl),
            Some(KeyedAppend::Replayed {
                receipt: "r-a".into(),
                id: StreamId::new(3, 0)
            })
        );
    }

    #[test]
    fn append_keys_forget_the_oldest_past_the_bound() {
        let mut keys = AppendKeys::new(Duration::from_secs(60), 2);
        let now = Instant::now();
        assert_eq!(keys.remember(&key("a", "f"), StreamId::new(1, 0), now), 0);
        assert_eq!(keys.remember(&key("b", "f"), StreamId::new(2, 0), now), 0);
        assert_eq!(keys.remember(&key("c", "f"), StreamId::new(3, 0), now), 1);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.find(&key("a", "f"), now), None);
        assert!(keys.find(&key("b", "f"), now).is_some());
        assert!(keys.find(&key("c", "f"), now).is_some());
    }
}
