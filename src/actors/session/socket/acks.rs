//! The acks a socket's client owes the server: ids of events the server emitted asking for one
//! (reference §2.4). Each is answered once; answers to ids never asked are ignored.
//!
//! What a client owes is bounded: the server asks in answer to the client's own events, so a
//! client that sends them and never answers would otherwise make the set grow for as long as it
//! stays connected. Past [`MAX_AWAITED_ACKS`] the oldest ask is forgotten, as if it had timed out
//! (socket.io's `socket.timeout(ms).emit(…)`): a late answer to it is ignored like any unknown id.

use std::collections::BTreeSet;

use crate::log_limit::LimitedLog;

/// How many acks one socket's client may owe at once. An honest client answers within a round
/// trip; a thousand unanswered asks is a client that does not answer.
pub(crate) const MAX_AWAITED_ACKS: usize = 1000;

/// A few lines a minute however many asks are forgotten.
static FORGOTTEN: LimitedLog = LimitedLog::per_minute(6);

/// The acks a socket's client owes the server.
#[derive(Default)]
pub(super) struct Acks {
    /// The id of the next event emitted asking for an ack.
    next_id: u64,
    /// Ids of events emitted asking for one and not answered yet, oldest first (ids only grow).
    awaiting: BTreeSet<u64>,
}

impl Acks {
    /// A new id, now awaited; the oldest awaited is forgotten if the client owes too many.
    pub(super) fn ask(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if self.awaiting.len() >= MAX_AWAITED_ACKS {
            if let Some(oldest) = self.awaiting.pop_first() {
                crate::limited_warn!(
                    FORGOTTEN,
                    "a client owes {MAX_AWAITED_ACKS} acks: the oldest (id {oldest}) is no longer \
                     awaited, and an answer to it will be ignored"
                );
            }
        }
        self.awaiting.insert(id);
        id
    }

    /// Whether `id` was awaited (and is no longer).
    pub(super) fn answered(&mut self, id: u64) -> bool {
        self.awaiting.remove(&id)
    }
}
