//! Registry: which Engine.IO session has which sid, so HTTP requests (long-polling GETs and POSTs,
//! WebSocket upgrades) reach their Session actor.
//!
//! Owns: `Engine.IO sid → Addr<Session>`.
//! Receives: Insert, Remove (from the HTTP handshake and from Session), Lookup (from HTTP handlers),
//! CloseEvery (at shutdown).

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use super::hub::{GoAway, Outbound};
use super::session::Session;

/// What an HTTP request needs to reach a session.
#[derive(Clone)]
pub struct SessionHandle {
    /// The session.
    pub addr: Addr<Session>,
    /// Its outgoing byte count, shared with the WebSocket it may upgrade to.
    pub outbound: Arc<Outbound>,
}

/// A new session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Insert {
    /// Its Engine.IO sid.
    pub sid: String,
    /// How to reach it.
    pub session: SessionHandle,
}

/// A session ended: its sid is unknown from now on (400 code 1).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Remove(pub String);

/// The session with this sid, if it is alive.
#[derive(Message)]
#[rtype(result = "Option<SessionHandle>")]
pub struct Lookup(pub String);

/// Ask every session, joined to a namespace or not, to close (`GoAway::ShuttingDown`); answers how
/// many were asked.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CloseEvery;

/// The actor.
#[derive(Default)]
pub struct Registry {
    sessions: HashMap<String, SessionHandle>,
}

impl Actor for Registry {
    type Context = Context<Self>;
}

impl Handler<Insert> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Insert, _: &mut Self::Context) {
        self.sessions.insert(msg.sid, msg.session);
    }
}

impl Handler<Remove> for Registry {
    type Result = ();

    fn handle(&mut self, Remove(sid): Remove, _: &mut Self::Context) {
        self.sessions.remove(&sid);
    }
}

impl Handler<Lookup> for Registry {
    type Result = Option<SessionHandle>;

    fn handle(&mut self, Lookup(sid): Lookup, _: &mut Self::Context) -> Self::Result {
        self.sessions
            .get(&sid)
            .filter(|session| session.addr.connected())
            .cloned()
    }
}

impl Handler<CloseEvery> for Registry {
    type Result = usize;

    fn handle(&mut self, _: CloseEvery, _: &mut Self::Context) -> usize {
        self.sessions
            .values()
            .map(|session| session.addr.do_send(GoAway::ShuttingDown))
            .count()
    }
}
