//! Registry: which Engine.IO session has which sid, so HTTP requests (long-polling GETs and POSTs,
//! WebSocket upgrades) reach their Session actor.
//!
//! Owns: `Engine.IO sid → session handle`.
//! Receives: Insert, Remove (from the HTTP handshake and from Session), Lookup (from HTTP handlers),
//! CloseEvery (at shutdown).
//! Sends: Disconnect(ShuttingDown) to every session at shutdown.
//!
//! Generic over the session actor `S`, so this file does not depend on the Session's (which sends
//! Remove here): no import circle.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use super::disconnect::{Disconnect, SessionError};
use super::outbound::Outbound;
use crate::protocol::ids::EioSid;

/// What an HTTP request needs to reach a session.
pub struct SessionHandle<S: Actor> {
    /// The session.
    pub addr: Addr<S>,
    /// Its outgoing byte count, shared with the WebSocket it may upgrade to.
    pub outbound: Arc<Outbound>,
}

impl<S: Actor> Clone for SessionHandle<S> {
    fn clone(&self) -> Self {
        SessionHandle {
            addr: self.addr.clone(),
            outbound: self.outbound.clone(),
        }
    }
}

/// A new session.
pub struct Insert<S: Actor> {
    /// Its Engine.IO sid.
    pub sid: EioSid,
    /// How to reach it.
    pub session: SessionHandle<S>,
}

impl<S: Actor> Message for Insert<S> {
    type Result = ();
}

/// A session ended: its sid is unknown from now on (400 code 1).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Remove(pub EioSid);

/// The session with this sid, if it is alive.
pub struct Lookup<S: Actor>(pub EioSid, std::marker::PhantomData<S>);

impl<S: Actor> Lookup<S> {
    /// Looks `sid` up.
    pub fn new(sid: EioSid) -> Self {
        Lookup(sid, std::marker::PhantomData)
    }
}

impl<S: Actor> Message for Lookup<S> {
    type Result = Option<SessionHandle<S>>;
}

/// Ask every session, joined to a namespace or not, to close (`ShuttingDown`); answers how many
/// were asked.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CloseEvery;

/// The actor.
pub struct Registry<S: Actor> {
    sessions: HashMap<EioSid, SessionHandle<S>>,
}

impl<S: Actor> Default for Registry<S> {
    fn default() -> Self {
        Registry {
            sessions: HashMap::new(),
        }
    }
}

impl<S: Actor> Actor for Registry<S> {
    type Context = Context<Self>;
}

impl<S: Actor> Handler<Insert<S>> for Registry<S> {
    type Result = ();

    fn handle(&mut self, msg: Insert<S>, _: &mut Self::Context) {
        self.sessions.insert(msg.sid, msg.session);
    }
}

impl<S: Actor> Handler<Remove> for Registry<S> {
    type Result = ();

    fn handle(&mut self, Remove(sid): Remove, _: &mut Self::Context) {
        self.sessions.remove(&sid);
    }
}

impl<S: Actor> Handler<Lookup<S>> for Registry<S> {
    type Result = Option<SessionHandle<S>>;

    fn handle(&mut self, Lookup(sid, _): Lookup<S>, _: &mut Self::Context) -> Self::Result {
        self.sessions
            .get(&sid)
            .filter(|session| session.addr.connected())
            .cloned()
    }
}

impl<S> Handler<CloseEvery> for Registry<S>
where
    S: Actor + Handler<Disconnect>,
    S::Context: actix::dev::ToEnvelope<S, Disconnect>,
{
    type Result = usize;

    fn handle(&mut self, _: CloseEvery, _: &mut Self::Context) -> usize {
        self.sessions
            .values()
            .map(|session| session.addr.do_send(Disconnect(SessionError::ShuttingDown)))
            .count()
    }
}
