//! Lane: the Hub's own way to a session's WebSocket, for the sockets whose live frames need nothing
//! from their Session any more.
//!
//! Owns: per session, whether the Hub may write a namespace's live frames itself, and how many
//! batches it relayed through the Session's mailbox that the Session has not taken yet.
//!
//! Why: a delivery through the Session is a boxed message, a wake-up of the Session's thread, and
//! a turn of its actor (which polls its timers too) before the frame's one `write`; at 50
//! notifications a second to 1000 clients that was most of what the hub paid above the kernel.
//! Once a socket is joined on a WebSocket and its recovery handover is over (its Session wrote a
//! live frame: every later entry is newer than what the client has, so nothing is left to skip),
//! the Session opens its lane for that namespace and the Hub writes the shared frame to the socket
//! itself ([`WsSink`](crate::actors::ws_sink::WsSink)). Everything else goes through the Session as
//! before: polling, a socket still joining (the handover holds and skips frames), an upgrade.
//!
//! Order: the Hub writes directly only while no relayed batch is on its way, and the Session
//! writes a relayed batch while it holds the lane: a direct frame never overtakes a relayed one.
//! The Session closes the lane for a namespace before anything that ends the socket (its
//! DISCONNECT, the close frame), so no frame follows those.

use std::sync::{Mutex, MutexGuard};

use crate::actors::ws_conn::WsLink;
use crate::protocol::target::Namespace;

/// A session's lane (see the module doc); shared by its Session and its Hub members.
#[derive(Default)]
pub struct Lane {
    state: Mutex<LaneState>,
}

/// What a lane holds; the Session changes it under [`Lane::lock`].
#[derive(Default)]
pub struct LaneState {
    /// The session's WebSocket, while some namespace is open.
    link: Option<WsLink>,
    /// The namespaces whose live frames the Hub writes itself.
    open: Vec<Namespace>,
    /// Batches the Hub relayed that the Session has not taken yet.
    relayed: usize,
}

impl Lane {
    /// The lane's state, locked: the Hub's direct writes wait meanwhile.
    pub fn lock(&self) -> MutexGuard<'_, LaneState> {
        // A panic while holding it leaves a state that is still whole.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl LaneState {
    /// Hub: the link to write `nsp`'s live frames to now, if the lane is open for it and nothing
    /// relayed is still on its way; else `None`, and the batch is counted as relayed (the caller
    /// sends it to the Session).
    pub fn direct_or_relay(&mut self, nsp: &Namespace) -> Option<&WsLink> {
        if self.relayed == 0 && self.open.iter().any(|open| open == nsp) {
            return self.link.as_ref();
        }
        self.relayed += 1;
        None
    }

    /// Session: it took a relayed batch from its mailbox.
    pub fn took_relayed(&mut self) {
        self.relayed = self.relayed.saturating_sub(1);
    }

    /// Session: the Hub may write `nsp`'s live frames to `link` itself from now on.
    pub fn open(&mut self, nsp: &Namespace, link: &WsLink) {
        if self.link.is_none() {
            self.link = Some(link.clone());
        }
        if !self.open.iter().any(|open| open == nsp) {
            self.open.push(nsp.clone());
        }
    }

    /// Session: `nsp`'s live frames go through the Session again (the socket leaves).
    pub fn close(&mut self, nsp: &str) {
        self.open.retain(|open| open.as_str() != nsp);
        if self.open.is_empty() {
            self.link = None;
        }
    }

    /// Session: every namespace's live frames go through the Session (the session ends).
    pub fn close_all(&mut self) {
        self.open = Vec::new();
        self.link = None;
    }

    /// Whether the Hub writes `nsp`'s frames itself.
    pub fn is_open(&self, nsp: &str) -> bool {
        self.open.iter().any(|open| open.as_str() == nsp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_lane_relays_and_counts_each_batch() {
        let lane = Lane::default();
        let mut state = lane.lock();
        let nsp = Namespace::from("/");
        assert!(state.direct_or_relay(&nsp).is_none());
        assert!(state.direct_or_relay(&nsp).is_none());
        assert_eq!(state.relayed, 2);
        state.took_relayed();
        state.took_relayed();
        state.took_relayed();
        assert_eq!(state.relayed, 0, "never below zero");
        assert!(!state.is_open("/"));
    }
}
