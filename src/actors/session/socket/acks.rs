//! The acks a socket's client owes the server: ids of events the server emitted asking for one
//! (reference §2.4). Each is answered once; answers to ids never asked are ignored.

use std::collections::HashSet;

/// The acks a socket's client owes the server.
#[derive(Default)]
pub(super) struct Acks {
    /// The id of the next event emitted asking for an ack.
    next_id: u64,
    /// Ids of events emitted asking for one and not answered yet.
    awaiting: HashSet<u64>,
}

impl Acks {
    /// A new id, now awaited.
    pub(super) fn ask(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.awaiting.insert(id);
        id
    }

    /// Whether `id` was awaited (and is no longer).
    pub(super) fn answered(&mut self, id: u64) -> bool {
        self.awaiting.remove(&id)
    }
}
