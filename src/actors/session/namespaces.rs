//! The Socket.IO side of a Session: packets, namespaces joined and left, events and acks both ways,
//! binary attachments, and the join with its admission and recovery handover (reference §2-§3).
//!
//! The state of each namespace socket is a [`NsSocket`](super::socket::NsSocket); this file is the
//! actor's side of it: asking the application, the Hub and Recovery, writing; the replay's pacing is
//! in [`super::replay`].

use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use actix::prelude::*;
use actix_web::web::Bytes;
use log::{debug, trace};
use serde_json::{json, Value};

use super::event_limit::Verdict;
use super::socket::NsSocket;
use super::traced::Rx;
use super::{Session, SessionError};
use crate::actors::hub::{Join, Leave, Register, Unregister};
use crate::actors::outbound::Out;
use crate::actors::recovery::{random_bytes, Forget, Keep, Open, Opened};
use crate::actors::ws_read::Charge;
use crate::app::{ConnectRefusal, Identity, Payload, Reply};
use crate::config::Parser;
use crate::protocol::ids::Sid;
use crate::protocol::socketio::{self, PacketKind, SioPacket};
use crate::protocol::socketio_msgpack;
use crate::protocol::target::Namespace;

/// Application replies a session may have in flight before it is closed.
const MAX_REPLIES_IN_FLIGHT: usize = 256;

/// A binary packet whose attachments are still arriving (across frames or POSTs). What it holds
/// (its text part and the attachments so far) beyond the allowance is charged to the instance's
/// budget of unfinished bytes (`HUB_MAX_UNFINISHED_BYTES`), as a WebSocket's unfinished frames
/// are: each part may be a whole message of up to the max payload, and a client that sends all but
/// the last would otherwise hold them for as long as it stays connected.
pub(crate) struct PendingBinary {
    packet: SioPacket,
    attachments: Vec<Bytes>,
    /// The bytes it holds: its text part's and its attachments' so far.
    held: usize,
    /// Given back when the packet completes or the session ends (dropped either way).
    charge: Charge,
}

impl Session {
    pub(super) fn on_binary(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        if self.settings().engine_echo {
            return self.write_all(vec![Out::Binary(bytes)]);
        }
        if self.settings().parser == Parser::Msgpack {
            return self.on_msgpack(&bytes, ctx);
        }
        let Some(pending) = self.pending_binary.as_mut() else {
            let why = SessionError::Parse("binary message without a binary packet".into());
            return self.close(ctx, why);
        };
        pending.held += bytes.len();
        pending.attachments.push(bytes);
        if pending.attachments.len() == pending.packet.attachments {
            // Whole: nothing waits any more, so the last one is never charged (the charge is given
            // back as the packet is taken).
            if let Some(done) = self.pending_binary.take() {
                self.on_packet(done.packet, done.attachments, ctx);
            }
        } else if !pending.charge.settle(pending.held) {
            self.pending_binary = None;
            self.close(ctx, SessionError::UnfinishedOverBudget);
        }
    }

    /// A binary message with the msgpack parser: one whole packet, its binary values inline.
    fn on_msgpack(&mut self, bytes: &[u8], ctx: &mut Context<Self>) {
        match socketio_msgpack::decode(bytes) {
            Ok((packet, attachments)) => {
                trace!("rx eio_sid={} {}", self.eio_sid, Rx(&packet));
                let attachments = attachments.into_iter().map(Bytes::from).collect();
                self.on_packet(packet, attachments, ctx);
            }
            Err(err) => {
                let why = SessionError::Parse(format!("socket.io msgpack packet: {err}"));
                self.close(ctx, why);
            }
        }
    }

    pub(super) fn on_sio(&mut self, data: &str, ctx: &mut Context<Self>) {
        if self.settings().parser == Parser::Msgpack {
            // Node's msgpack decoder throws on a string: a client of the JSON parser is closed
            // with a parse error, at its first packet.
            let why = SessionError::Parse("text message with the msgpack parser".into());
            return self.close(ctx, why);
        }
        if self.pending_binary.is_some() {
            let why = SessionError::Parse("text while waiting for attachments".into());
            return self.close(ctx, why);
        }
        let packet = match socketio::decode(data) {
            Ok(packet) => packet,
            Err(err) => {
                let why = SessionError::Parse(format!("socket.io packet: {err}"));
                return self.close(ctx, why);
            }
        };
        trace!("rx eio_sid={} {}", self.eio_sid, Rx(&packet));
        if matches!(packet.kind, PacketKind::BinaryEvent | PacketKind::BinaryAck)
            && packet.attachments > 0
        {
            // Its text part (up to the max payload) waits with it: held from now on.
            let mut charge = Charge::new(self.settings().unfinished.clone());
            if !charge.settle(data.len()) {
                return self.close(ctx, SessionError::UnfinishedOverBudget);
            }
            self.pending_binary = Some(Box::new(PendingBinary {
                packet,
                attachments: Vec::new(),
                held: data.len(),
                charge,
            }));
            return;
        }
        self.on_packet(packet, Vec::new(), ctx);
    }

    fn on_packet(&mut self, packet: SioPacket, attachments: Vec<Bytes>, ctx: &mut Context<Self>) {
        let nsp = packet.nsp.clone();
        let joined = matches!(self.sockets.get(&nsp), Some(NsSocket::Joined(_)));
        match (self.sockets.get(&nsp).is_some(), joined, packet.kind) {
            (false, _, PacketKind::Connect) if !self.parts.app.namespaces().contains(&nsp) => {
                // Each one costs a reply: it spends the allowance as an event does, so a loop of
                // them is bounded (then disconnected) like a flood of events.
                match self.charge_allowance(ctx) {
                    Verdict::Pass => {}
                    Verdict::Refused => return self.connect_rate_limited(&nsp),
                    Verdict::Abuse => return,
                }
                let refusal = json!({ "message": "Invalid namespace" });
                let reply = SioPacket::new(PacketKind::ConnectError, &nsp, Some(refusal));
                self.write_packet(&reply);
            }
            (false, _, PacketKind::Connect) => {
                // A CONNECT costs a token check and a recovery lookup (a record write when it
                // leaves): past one per served namespace it spends the connection's allowance as
                // an event does, so a CONNECT / DISCONNECT loop is bounded like a flood of events.
                self.connects = self.connects.saturating_add(1);
                if usize::from(self.connects) > self.parts.app.namespaces().len() {
                    match self.charge_allowance(ctx) {
                        Verdict::Pass => {}
                        Verdict::Refused => return self.connect_rate_limited(&nsp),
                        Verdict::Abuse => return,
                    }
                }
                let auth = packet.data.unwrap_or_else(|| json!({}));
                self.admit(Namespace::from(nsp), auth, ctx)
            }
            (_, true, PacketKind::Disconnect) => self.leave(&nsp, ctx),
            (_, true, PacketKind::Event | PacketKind::BinaryEvent) => {
                if let Some(Value::Array(data)) = packet.data {
                    self.on_event(nsp, Payload { data, attachments }, packet.ack_id, ctx);
                }
            }
            // Acks of events the server emitted asking for one; an unknown id is ignored (§2.4).
            (_, true, PacketKind::Ack | PacketKind::BinaryAck) => {
                // Acks spend the allowance too (an unknown id costs a parse and a lookup): a flood
                // of them is dropped, then disconnected, as a flood of events is.
                match self.charge_allowance(ctx) {
                    Verdict::Pass => {}
                    Verdict::Refused => return self.parts.metrics.socket_events_rate_limited.inc(),
                    Verdict::Abuse => return,
                }
                if let (Some(id), Some(Value::Array(data))) = (packet.ack_id, packet.data) {
                    self.on_client_ack(&nsp, id, Payload { data, attachments });
                }
            }
            // A second CONNECT, a CONNECT_ERROR from a client, a packet for a namespace not joined (or
            // before its CONNECT reply): invalid state (reference §2.7).
            _ => {
                let why = SessionError::Parse(format!("{:?} not allowed now", packet.kind));
                self.close(ctx, why);
            }
        }
    }

    fn on_event(
        &mut self,
        nsp: String,
        event: Payload,
        ack_id: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        // Every client event passes the connection's budget first (whatever its name or namespace):
        // a refused one costs an ack at most, and never reaches the application.
        match self.charge_allowance(ctx) {
            Verdict::Pass => {}
            Verdict::Refused => return self.rate_limited(&nsp, ack_id),
            Verdict::Abuse => return,
        }
        // `join` and `leave` are the hub's own: they change the socket's rooms, which the session
        // keeps (see `rooms.rs`); the application only says who may join what.
        if let Some(join) = super::rooms::room_event(&event) {
            return self.on_room_event(&nsp, join, &event, ack_id);
        }
        if self.replies_in_flight >= MAX_REPLIES_IN_FLIGHT {
            let why = SessionError::Transport("too many events awaiting replies");
            return self.close(ctx, why);
        }
        let Some(identity) = self.sockets.get(&nsp).and_then(NsSocket::identity) else {
            return;
        };
        self.replies_in_flight += 1;
        let reply = self
            .parts
            .app
            .on_event(&nsp, identity, event, ack_id.is_some());
        ctx.spawn(reply.into_actor(self).map(move |reply: Reply, act, _| {
            act.replies_in_flight -= 1;
            if act.closed.is_some() || !matches!(act.sockets.get(&nsp), Some(NsSocket::Joined(_))) {
                return;
            }
            for payload in reply.emit {
                act.emit(&nsp, payload, None, PacketKind::Event);
            }
            for payload in reply.ask {
                let Some(NsSocket::Joined(joined)) = act.sockets.get_mut(&nsp) else {
                    return;
                };
                let id = joined.ask();
                act.emit(&nsp, payload, Some(id), PacketKind::Event);
            }
            if let (Some(id), Some(ack)) = (ack_id, reply.ack) {
                act.emit(&nsp, ack, Some(id), PacketKind::Ack);
            }
        }));
    }

    fn on_client_ack(&mut self, nsp: &str, id: u64, answer: Payload) {
        let Some(NsSocket::Joined(joined)) = self.sockets.get_mut(nsp) else {
            return;
        };
        if !joined.answered(id) {
            return;
        }
        for payload in self.parts.app.on_ack(nsp, answer) {
            self.emit(nsp, payload, None, PacketKind::Event);
        }
    }

    /// A CONNECT: the application decides first, before the Hub or Recovery sees the socket. A
    /// decision that is ready at once (the default) takes effect in this turn, so packets that follow
    /// the CONNECT in the same payload find the socket joined, as they would with Node.
    fn admit(&mut self, nsp: Namespace, auth: Value, ctx: &mut Context<Self>) {
        let mut decision = self
            .parts
            .app
            .authorize(nsp.as_str(), &self.handshake, &auth);
        self.sockets.insert(nsp.clone(), NsSocket::admitting(auth));
        let mut now = TaskContext::from_waker(Waker::noop());
        if let Poll::Ready(decision) = decision.as_mut().poll(&mut now) {
            return self.admitted(nsp, decision, ctx);
        }
        ctx.spawn(
            decision
                .into_actor(self)
                .map(move |decision, act, ctx| act.admitted(nsp, decision, ctx)),
        );
    }

    fn admitted(
        &mut self,
        nsp: Namespace,
        decision: Result<Identity, ConnectRefusal>,
        ctx: &mut Context<Self>,
    ) {
        let still_asking = matches!(
            self.sockets.get(nsp.as_str()),
            Some(NsSocket::Admitting { .. })
        );
        if self.closed.is_some() || !still_asking {
            return;
        }
        match decision {
            Ok(identity) => {
                if let Some(expires_at) = identity.expires_at {
                    self.expire_at(nsp.clone(), expires_at, ctx);
                }
                self.join(nsp, identity, ctx)
            }
            Err(refusal) => self.refuse(&nsp, refusal),
        }
    }

    /// The application refused the CONNECT: `44<nsp>,{"message":…}`; the session stays open.
    fn refuse(&mut self, nsp: &Namespace, refusal: ConnectRefusal) {
        self.lane.lock().close(nsp.as_str());
        self.sockets.remove(nsp.as_str());
        self.parts.metrics.connects_refused.inc();
        debug!(
            "socket refused eio_sid={} nsp={nsp} why=\"{}\"",
            self.eio_sid, refusal.message
        );
        let mut body = json!({ "message": refusal.message });
        if let Some(data) = refusal.data {
            body["data"] = data;
        }
        let reply = SioPacket::new(PacketKind::ConnectError, nsp.as_str(), Some(body));
        self.write_packet(&reply);
    }

    /// The socket's credential expires at `expires_at` (seconds since the Unix epoch): then the whole
    /// Engine.IO session closes as a dropped transport does (no Socket.IO DISCONNECT, which would stop
    /// the client), its records written, so the official client reconnects ("transport close") with
    /// a fresh token and resumes what it missed meanwhile. One timer per socket, cancelled if it leaves.
    fn expire_at(&mut self, nsp: Namespace, expires_at: u64, ctx: &mut Context<Self>) {
        // Verified tokens expire by the year 9999 (`token::LATEST_EXPIRY`); checked all the same,
        // as an overflow here would panic the session.
        let Some(at) = std::time::UNIX_EPOCH.checked_add(Duration::from_secs(expires_at)) else {
            return;
        };
        let left = at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let name = nsp.clone();
        let timer = ctx.run_later(left, move |act, ctx| {
            debug!("token expired eio_sid={} nsp={name}", act.eio_sid);
            act.close(ctx, SessionError::TokenExpired);
        });
        self.expiry_timers.cancel(nsp.as_str(), ctx);
        self.expiry_timers.set(nsp, timer);
    }

    /// Admitted as `identity`: registered with the Hub first, then resumed or opened fresh (a resume
    /// only of a session whose record's `sub` is the identity's).
    fn join(&mut self, nsp: Namespace, identity: Identity, ctx: &mut Context<Self>) {
        let Some(NsSocket::Admitting { auth }) = self.sockets.get(nsp.as_str()) else {
            return;
        };
        let auth = auth.clone();
        // Register first: every entry read from the log from now on reaches this socket, so the
        // replay only has to cover what came before (DESIGN.md §3, the handover). In the rooms known
        // now (`user:<sub>`); the others follow once Recovery answered (see `opened`).
        self.parts.hub.do_send(Register {
            conn: self.conn,
            nsp: nsp.clone(),
            session: Box::new(ctx.address().downgrade()),
            outbound: self.outbound.clone(),
            rooms: NsSocket::registered_rooms(&identity),
            lane: self.lane.clone(),
        });
        self.connect_deadline = None;
        self.ticket.joined();
        if !self.settings().recovery {
            let sid = Sid::from_random(random_bytes());
            // Its sid room before the CONNECT reply: nobody can address it before they learn it.
            self.parts.hub.do_send(Join {
                conn: self.conn,
                nsp: nsp.clone(),
                rooms: vec![crate::protocol::target::Room::from(sid.as_str())],
            });
            self.admin_joined(nsp.as_str(), sid.as_str());
            let (joined, reply) =
                NsSocket::joined_without_recovery(&nsp, sid, identity, self.settings().parser);
            self.sockets.insert(nsp.clone(), joined);
            self.write_all(vec![reply]);
            for payload in self.parts.app.on_connect(nsp.as_str(), &auth) {
                self.emit(nsp.as_str(), payload, None, PacketKind::Event);
            }
            return;
        }
        let field = |key: &str| auth.get(key).and_then(Value::as_str).map(str::to_owned);
        let open = Open {
            nsp: nsp.clone(),
            pid: field("pid"),
            offset: field("offset"),
            owner: identity.sub.clone(),
            stays: self.room_check(&nsp, &identity),
        };
        if let Some(socket) = self.sockets.get_mut(nsp.as_str()) {
            socket.admitted(identity);
        }
        self.open_socket(nsp, open, ctx);
    }

    /// Asks Recovery to open `nsp`'s socket (a resume, or a fresh session); its answer goes to
    /// [`Self::opened`]. Spawned, not awaited: pongs and live frames keep being handled while
    /// Recovery works.
    pub(super) fn open_socket(&mut self, nsp: Namespace, open: Open, ctx: &mut Context<Self>) {
        let opening = self.parts.recovery.send(open).into_actor(self).map(
            move |opened, act, ctx| match opened {
                Ok(opened) => act.opened(nsp, opened, ctx),
                Err(err) => {
                    debug!("recovery unreachable eio_sid={} error={err:?}", act.eio_sid);
                    act.close(ctx, SessionError::Transport("recovery unreachable"))
                }
            },
        );
        ctx.spawn(opening);
    }

    pub(super) fn opened(&mut self, nsp: Namespace, opened: Opened, ctx: &mut Context<Self>) {
        let Some(socket @ NsSocket::Joining(_)) = self.sockets.get_mut(nsp.as_str()) else {
            // The session closed while Recovery claimed the record (e.g. its token expired during
            // the claim's wait): a resumed record goes back, as a joining socket's does on close,
            // so the owner's next resume still finds it.
            if opened.recovered {
                let recoverable = self
                    .closed
                    .as_ref()
                    .is_none_or(|why| why.consequence().recoverable);
                self.give_back(opened.record, recoverable);
            }
            return;
        };
        let change = socket.on_opened(opened);
        // The record's rooms (its sid room, a resumed socket's joined rooms) reach the Hub before
        // the replay's next read is issued (Recovery never makes a resume's first page its last):
        // an entry to one of them that the Hub fanned out before this Join, without this socket,
        // was appended before that read, so the read finds it; one fanned out after reaches the
        // socket live (the Hub's mailbox keeps this Join ahead of it), and the offset check drops
        // whichever copy comes second. A fresh session's sid room cannot have been addressed yet:
        // nobody knows the sid before the CONNECT reply, written after this.
        if !change.leave.is_empty() {
            self.parts.hub.do_send(Leave {
                conn: self.conn,
                nsp: nsp.clone(),
                rooms: change.leave,
            });
        }
        if !change.join.is_empty() {
            self.parts.hub.do_send(Join {
                conn: self.conn,
                nsp: nsp.clone(),
                rooms: change.join,
            });
        }
        self.replay_step(nsp, ctx);
    }

    pub(super) fn finish_join(&mut self, nsp: Namespace) {
        let parser = self.settings().parser;
        let Some(done) = self
            .sockets
            .get_mut(nsp.as_str())
            .and_then(|socket| socket.complete(&nsp, parser))
        else {
            return;
        };
        self.write_all(done.reply);
        self.parts.metrics.namespace_joins.inc();
        self.parts
            .metrics
            .replayed_entries
            .add(done.replayed as u64);
        self.admin_joined(nsp.as_str(), done.sid.as_str());
        if let Some(record) = done.keep {
            self.parts.recovery.do_send(Keep(record));
        }
        debug!(
            "socket joined eio_sid={} nsp={nsp} sid={} recovered={} replayed={}",
            self.eio_sid, done.sid, done.recovered, done.replayed
        );
        for payload in self.parts.app.on_connect(nsp.as_str(), &done.auth) {
            self.emit(nsp.as_str(), payload, None, PacketKind::Event);
        }
        self.held_bytes = self.held_bytes.saturating_sub(done.held_bytes);
        self.outbound.received(done.held_bytes);
        self.write_all(done.held);
    }

    /// The client left a namespace on purpose (`41`): nothing is sent back, and it is not recoverable.
    /// Only a joined socket can leave: before its CONNECT reply a `41` is an invalid state (§2.7).
    fn leave(&mut self, nsp: &str, ctx: &mut Context<Self>) {
        self.drop_socket(nsp, "client namespace disconnect", ctx);
    }

    /// The socket of `nsp` is gone for good, for `reason` (the admin UI's word): unregistered,
    /// its record dropped (not resumable), nothing sent to the client.
    pub(super) fn drop_socket(&mut self, nsp: &str, reason: &str, ctx: &mut Context<Self>) {
        self.lane.lock().close(nsp);
        let Some(socket) = self.sockets.remove(nsp) else {
            return;
        };
        self.expiry_timers.cancel(nsp, ctx);
        self.admin_left(nsp, reason);
        let left = socket.leave();
        self.held_bytes = self.held_bytes.saturating_sub(left.held_bytes);
        self.outbound.received(left.held_bytes);
        if left.registered {
            self.parts.hub.do_send(Unregister {
                conn: self.conn,
                nsp: Namespace::from(nsp),
            });
        }
        debug!(
            "socket left eio_sid={} nsp={nsp} reason={reason}",
            self.eio_sid
        );
        if let Some(record) = left.record {
            self.parts.recovery.do_send(Forget(record.pid));
        }
    }
}

impl Session {
    /// The server disconnects the socket of `nsp` (a DISCONNECT_SOCKETS request), as Node's
    /// `socket.disconnect(close)`: with `close` the whole session ends, each socket told `41<nsp>`;
    /// without, only this socket gets `41<nsp>` and leaves (its record dropped: not resumable), and
    /// the connection stays for the client's other namespaces (the official client closes it when
    /// none is left).
    pub(super) fn disconnected_by_server(
        &mut self,
        nsp: &str,
        close: bool,
        ctx: &mut Context<Self>,
    ) {
        if self.closed.is_some() || self.sockets.get(nsp).is_none() {
            return;
        }
        if close {
            return self.close(ctx, SessionError::ServerDisconnect);
        }
        // No live frame the Hub writes itself may follow the DISCONNECT.
        self.lane.lock().close(nsp);
        let packet = SioPacket::new(PacketKind::Disconnect, nsp, None);
        self.write_text(format!("4{}", socketio::encode(&packet)));
        self.admin_left(nsp, "server namespace disconnect");
        self.leave(nsp, ctx);
    }
}

/// The expiry timers of a session's sockets (JWT mode only; `None`, one word, otherwise).
#[derive(Default)]
// The box is the point: one word in every session's actor where an empty Vec takes three.
#[allow(clippy::box_collection)]
pub(crate) struct ExpiryTimers(Option<Box<Vec<(Namespace, SpawnHandle)>>>);

impl ExpiryTimers {
    /// Cancels `nsp`'s timer, if it has one.
    fn cancel(&mut self, nsp: &str, ctx: &mut Context<Session>) {
        let Some(timers) = self.0.as_mut() else {
            return;
        };
        if let Some(at) = timers.iter().position(|(name, _)| name.as_str() == nsp) {
            let (_, timer) = timers.swap_remove(at);
            ctx.cancel_future(timer);
        }
    }

    /// `nsp`'s timer is `timer` (after [`cancel`](Self::cancel) of the one before).
    fn set(&mut self, nsp: Namespace, timer: SpawnHandle) {
        self.0.get_or_insert_default().push((nsp, timer));
    }
}
