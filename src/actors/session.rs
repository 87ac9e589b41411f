//! Session: one per WebSocket connection; speaks Engine.IO v4 and Socket.IO v5 to one client.
//!
//! Owns: the socket (through its WebSocket context), the Engine.IO heartbeat timers, the connect
//! timeout, the state of the `/` namespace and the log id of the last frame written to the client.
//! Receives: WebSocket frames; Deliver (from the Hub); Opened (the answer to Recovery's Open).
//! Sends: Register/Unregister to the Hub; Open, Keep and Forget to Recovery.
//!
//! Joining `/` (reference §3.2, DESIGN.md §3), without gap or duplicate even while broadcasts flow:
//! ```text
//! CONNECT ─► Register with Hub (live frames now arrive, and are buffered)
//!         ─► Recovery::Open ─► missed entries + offset (or a fresh session + the log tip)
//!         ─► write missed events, then 40{"sid","pid"}, then (fresh) 42["hub:offset","<tip>"]
//!         ─► release the buffer, skipping ids at or before the offset; from then on live
//! ```

use std::mem;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_http::ws::Item;
use actix_web::web::{Bytes, BytesMut};
use actix_web_actors::ws::{self, CloseCode, CloseReason, ProtocolError, WebsocketContext};
use bytestring::ByteString;
use log::{debug, trace};
use serde_json::{json, Value};

use super::hub::{
    frame_entry, ConnId, Deliver, Frame, GoAway, Hub, Outbound, Register, Unregister,
};
use super::recovery::{Forget, Keep, Open, Opened, Recovery};
use crate::protocol::engineio::{self, EioPacket, OpenPacket};
use crate::protocol::ids::{EioSid, StreamId};
use crate::protocol::socketio::{self, PacketKind, SioPacket};
use crate::store::SessionRecord;

/// The event a fresh session receives right after CONNECT, carrying the log tip as its (last, string)
/// argument. The official client stores the last string argument of every event as its recovery
/// offset, so even a client that drops before its first notification can resume (DESIGN.md §3).
pub const OFFSET_EVENT: &str = "hub:offset";

/// The only namespace the hub serves.
const ROOT_NSP: &str = "/";

/// Settings every session needs, shared by all of them.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Engine.IO ping interval.
    pub ping_interval: Duration,
    /// Engine.IO ping timeout.
    pub ping_timeout: Duration,
    /// Largest message accepted, in bytes (fragmented messages included).
    pub max_payload: usize,
    /// Time allowed to join a namespace.
    pub connect_timeout: Duration,
    /// Session records are refreshed this often while the session lives.
    pub record_refresh: Duration,
}

/// Why a session ends; mirrors Socket.IO's disconnect reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client closed the transport.
    TransportClose,
    /// The transport failed (e.g. a WebSocket protocol error).
    TransportError,
    /// No pong within the ping timeout.
    PingTimeout,
    /// A packet that does not decode, or one not allowed in the current state.
    ParseError,
    /// A message larger than the max payload.
    MessageTooBig,
    /// No namespace joined within the connect timeout.
    ConnectTimeout,
    /// The server is stopping (SIGTERM).
    ServerShuttingDown,
    /// The client does not read: the Hub gave up on it (outgoing bound).
    SlowConsumer,
}

impl DisconnectReason {
    /// The WebSocket close frame to send: Node sends a bare close frame (the client sees 1005),
    /// except for oversized messages, which get 1009 (reference §1.5).
    fn close_reason(self) -> Option<CloseReason> {
        match self {
            DisconnectReason::MessageTooBig => Some(CloseCode::Size.into()),
            DisconnectReason::TransportError => Some(CloseCode::Protocol.into()),
            DisconnectReason::ServerShuttingDown => Some(CloseCode::Away.into()),
            _ => None,
        }
    }
}

/// The `/` namespace, as this connection sees it.
enum Namespace {
    /// Not joined.
    Idle,
    /// CONNECT received: Recovery asked, then the replay written in steps; live frames wait here
    /// (still counted as on their way, so the Hub's bound covers them) until the CONNECT reply is out.
    Joining {
        buffered: Vec<Deliver>,
        replay: Option<Replay>,
    },
    /// Joined: live frames go straight out.
    Joined(Joined),
}

/// A resume's missed entries, written a step at a time: the WebSocket context queues without bound
/// and is emptied in one piece per poll, so a large replay written at once would sit in memory whole.
struct Replay {
    /// What Recovery decided.
    sid: crate::protocol::ids::Sid,
    pid: crate::protocol::ids::Pid,
    recovered: bool,
    offset: Option<StreamId>,
    /// Entries not written yet.
    missed: std::vec::IntoIter<crate::store::LogEntry>,
    /// How many were missed, for the log.
    count: usize,
}

/// A replay step writes while less than this is waiting for the client.
const REPLAY_HIGH_WATER: usize = 256 * 1024;
/// How long a replay waits for the client to take what was written before looking again.
const REPLAY_PAUSE: Duration = Duration::from_millis(5);

/// A joined socket.
struct Joined {
    /// Its record: sid, pid, rooms.
    record: SessionRecord,
    /// The newest log id written to the client (or known to it); frames at or before it are skipped.
    offset: Option<StreamId>,
}

/// A binary packet whose attachments are still arriving.
struct PendingBinary {
    packet: SioPacket,
    attachments: Vec<Bytes>,
}

/// The actor.
pub struct Session {
    /// Engine.IO session id, sent in the open packet.
    eio_sid: EioSid,
    /// This connection's key in the Hub.
    conn: ConnId,
    /// Shared settings.
    settings: Arc<SessionSettings>,
    /// What is written and not yet taken by the client.
    outbound: Arc<Outbound>,
    /// Where broadcasts come from.
    hub: Addr<Hub>,
    /// Who opens and resumes sockets.
    recovery: Addr<Recovery>,
    /// Fires when no pong came in time; cancelled by the pong.
    pong_deadline: Option<SpawnHandle>,
    /// Fires when no namespace was joined in time.
    connect_deadline: Option<SpawnHandle>,
    /// The `/` namespace.
    root: Namespace,
    /// A fragmented WebSocket message being reassembled: (is text, bytes so far).
    fragments: Option<(bool, BytesMut)>,
    /// A binary event waiting for its attachments.
    pending_binary: Option<PendingBinary>,
    /// Why the session ends, once known.
    reason: Option<DisconnectReason>,
}

impl Session {
    /// A session for a new WebSocket connection.
    pub fn new(
        settings: Arc<SessionSettings>,
        outbound: Arc<Outbound>,
        hub: Addr<Hub>,
        recovery: Addr<Recovery>,
    ) -> Session {
        Session {
            eio_sid: EioSid::from_random(super::recovery::random_bytes()),
            conn: ConnId::next(),
            settings,
            outbound,
            hub,
            recovery,
            pong_deadline: None,
            connect_deadline: None,
            root: Namespace::Idle,
            fragments: None,
            pending_binary: None,
            reason: None,
        }
    }

    /// Writes one text frame, counted against the outgoing bound.
    fn send(&self, ctx: &mut WebsocketContext<Self>, text: impl Into<ByteString>) {
        send(&self.outbound, ctx, text.into());
    }

    /// Ends the session: close frame, then stop. `stopping` does the bookkeeping.
    fn disconnect(&mut self, ctx: &mut WebsocketContext<Self>, reason: DisconnectReason) {
        if self.reason.is_none() {
            debug!("session closing eio_sid={} reason={reason:?}", self.eio_sid);
            self.reason = Some(reason);
            ctx.close(reason.close_reason());
        }
        ctx.stop();
    }

    fn schedule_ping(&mut self, ctx: &mut WebsocketContext<Self>) {
        ctx.run_later(self.settings.ping_interval, |act, ctx| {
            act.send(ctx, "2");
            let deadline = ctx.run_later(act.settings.ping_timeout, |act, ctx| {
                act.disconnect(ctx, DisconnectReason::PingTimeout);
            });
            act.pong_deadline = Some(deadline);
        });
    }

    fn on_text(&mut self, text: &str, ctx: &mut WebsocketContext<Self>) {
        let packet = match engineio::decode(text) {
            Ok(packet) => packet,
            Err(err) => {
                debug!("bad engine.io packet eio_sid={}: {err}", self.eio_sid);
                return self.disconnect(ctx, DisconnectReason::ParseError);
            }
        };
        match packet {
            EioPacket::Pong(_) => {
                // Only an answer to our ping counts; the next ping is due an interval after it.
                if let Some(deadline) = self.pong_deadline.take() {
                    ctx.cancel_future(deadline);
                    self.schedule_ping(ctx);
                }
            }
            EioPacket::Message(data) => self.on_message(data, ctx),
            EioPacket::Close => self.disconnect(ctx, DisconnectReason::TransportClose),
            // v4: only the server pings ("invalid heartbeat direction"); `b…` is polling-only.
            EioPacket::Ping(_) | EioPacket::Binary(_) => {
                self.disconnect(ctx, DisconnectReason::ParseError)
            }
            EioPacket::Open(_) | EioPacket::Upgrade | EioPacket::Noop => {}
        }
    }

    fn on_message(&mut self, data: &str, ctx: &mut WebsocketContext<Self>) {
        if self.pending_binary.is_some() {
            debug!(
                "text while waiting for attachments eio_sid={}",
                self.eio_sid
            );
            return self.disconnect(ctx, DisconnectReason::ParseError);
        }
        let packet = match socketio::decode(data) {
            Ok(packet) => packet,
            Err(err) => {
                debug!("bad socket.io packet eio_sid={}: {err}", self.eio_sid);
                return self.disconnect(ctx, DisconnectReason::ParseError);
            }
        };
        trace!("rx eio_sid={} {packet:?}", self.eio_sid);
        if matches!(packet.kind, PacketKind::BinaryEvent | PacketKind::BinaryAck)
            && packet.attachments > 0
        {
            self.pending_binary = Some(PendingBinary {
                packet,
                attachments: Vec::new(),
            });
            return;
        }
        self.on_packet(packet, ctx);
    }

    fn on_binary(&mut self, bytes: Bytes, ctx: &mut WebsocketContext<Self>) {
        let Some(pending) = self.pending_binary.as_mut() else {
            debug!(
                "binary frame without a binary packet eio_sid={}",
                self.eio_sid
            );
            return self.disconnect(ctx, DisconnectReason::ParseError);
        };
        pending.attachments.push(bytes);
        if pending.attachments.len() == pending.packet.attachments {
            if let Some(done) = self.pending_binary.take() {
                self.on_packet(done.packet, ctx);
            }
        }
    }

    fn on_packet(&mut self, packet: SioPacket, ctx: &mut WebsocketContext<Self>) {
        if packet.nsp != ROOT_NSP {
            return match packet.kind {
                PacketKind::Connect => {
                    let refusal = json!({ "message": "Invalid namespace" });
                    let reply =
                        SioPacket::new(PacketKind::ConnectError, &packet.nsp, Some(refusal));
                    self.send(ctx, format!("4{}", socketio::encode(&reply)));
                }
                // Anything else on a namespace that was never joined is an invalid state.
                _ => self.disconnect(ctx, DisconnectReason::ParseError),
            };
        }
        match (&self.root, packet.kind) {
            (Namespace::Idle, PacketKind::Connect) => self.join(packet.data, ctx),
            (Namespace::Joined(_), PacketKind::Disconnect) => self.leave(),
            // Client events and acks: the hub has no client-side API yet, so they are accepted and dropped.
            (
                Namespace::Joined(_),
                PacketKind::Event
                | PacketKind::BinaryEvent
                | PacketKind::Ack
                | PacketKind::BinaryAck,
            ) => {}
            // A second CONNECT, a CONNECT_ERROR from a client, or anything before the CONNECT reply:
            // invalid state (reference §2.7).
            _ => self.disconnect(ctx, DisconnectReason::ParseError),
        }
    }

    fn join(&mut self, auth: Option<Value>, ctx: &mut WebsocketContext<Self>) {
        let auth = auth.unwrap_or_else(|| json!({}));
        let field = |key: &str| auth.get(key).and_then(Value::as_str).map(str::to_owned);
        // Register first: every entry read from the log from now on reaches this session, so the
        // replay below only has to cover what came before (DESIGN.md §3, the handover).
        self.root = Namespace::Joining {
            buffered: Vec::new(),
            replay: None,
        };
        let session = ctx.address().recipient();
        self.hub.do_send(Register {
            conn: self.conn,
            nsp: ROOT_NSP.to_owned(),
            session,
            closer: ctx.address().recipient(),
            outbound: self.outbound.clone(),
        });
        let open = Open {
            nsp: ROOT_NSP.to_owned(),
            pid: field("pid"),
            offset: field("offset"),
        };
        // Spawned, not awaited: pongs and live frames keep being handled while Recovery works.
        let opening =
            self.recovery
                .send(open)
                .into_actor(self)
                .map(|opened, act, ctx| match opened {
                    Ok(opened) => act.joined(opened, ctx),
                    Err(err) => {
                        debug!("recovery unreachable eio_sid={}: {err}", act.eio_sid);
                        act.disconnect(ctx, DisconnectReason::TransportError);
                    }
                });
        ctx.spawn(opening);
    }

    fn joined(&mut self, opened: Opened, ctx: &mut WebsocketContext<Self>) {
        let Namespace::Joining { replay, .. } = &mut self.root else {
            return; // the session left or closed meanwhile
        };
        // A long replay to a slow client is not a client that never joined.
        if let Some(deadline) = self.connect_deadline.take() {
            ctx.cancel_future(deadline);
        }
        let count = opened.missed.len();
        *replay = Some(Replay {
            sid: opened.sid,
            pid: opened.pid,
            recovered: opened.recovered,
            offset: opened.offset,
            missed: opened.missed.into_iter(),
            count,
        });
        self.replay_step(ctx);
    }

    /// Writes missed events while the client keeps up, then the CONNECT reply (reference §3.2: the
    /// missed events come first).
    fn replay_step(&mut self, ctx: &mut WebsocketContext<Self>) {
        if self.outbound.is_aborted() {
            return self.disconnect(ctx, DisconnectReason::SlowConsumer);
        }
        let Namespace::Joining {
            replay: Some(replay),
            ..
        } = &mut self.root
        else {
            return;
        };
        while self.outbound.queued() < REPLAY_HIGH_WATER {
            let Some(entry) = replay.missed.next() else {
                return self.finish_join(ctx);
            };
            if let Some(frame) = frame_entry(&entry) {
                send(&self.outbound, ctx, frame.text);
            }
        }
        ctx.run_later(REPLAY_PAUSE, |act, ctx| act.replay_step(ctx));
    }

    fn finish_join(&mut self, ctx: &mut WebsocketContext<Self>) {
        let Namespace::Joining {
            buffered,
            replay: Some(replay),
        } = mem::replace(&mut self.root, Namespace::Idle)
        else {
            return;
        };
        let ids = json!({ "sid": replay.sid.as_str(), "pid": replay.pid.as_str() });
        let reply = SioPacket::new(PacketKind::Connect, ROOT_NSP, Some(ids));
        self.send(ctx, format!("4{}", socketio::encode(&reply)));
        if let (false, Some(tip)) = (replay.recovered, replay.offset) {
            let args = json!([OFFSET_EVENT, tip.to_string()]);
            let event = SioPacket::new(PacketKind::Event, ROOT_NSP, Some(args));
            self.send(ctx, format!("4{}", socketio::encode(&event)));
        }
        debug!(
            "socket joined eio_sid={} sid={} recovered={} replayed={}",
            self.eio_sid, replay.sid, replay.recovered, replay.count
        );
        let mut joined = Joined {
            record: SessionRecord::new(&replay.sid, &replay.pid),
            offset: replay.offset,
        };
        for Deliver { frames, bytes } in buffered {
            self.outbound.taken(bytes);
            joined.write(&frames, &self.outbound, ctx);
        }
        self.root = Namespace::Joined(joined);
    }

    /// The client left `/` on purpose (`41`): nothing is sent back, and the session is not recoverable.
    fn leave(&mut self) {
        if let Namespace::Joined(joined) = mem::replace(&mut self.root, Namespace::Idle) {
            self.hub.do_send(Unregister {
                conn: self.conn,
                nsp: ROOT_NSP.to_owned(),
            });
            self.recovery
                .do_send(Forget(crate::protocol::ids::Pid::from_wire(
                    joined.record.pid,
                )));
        }
    }

    fn on_fragment(&mut self, item: Item, ctx: &mut WebsocketContext<Self>) {
        let (is_text, bytes, last) = match item {
            Item::FirstText(b) => (Some(true), b, false),
            Item::FirstBinary(b) => (Some(false), b, false),
            Item::Continue(b) => (None, b, false),
            Item::Last(b) => (None, b, true),
        };
        match (is_text, self.fragments.as_mut()) {
            (Some(text), None) => self.fragments = Some((text, BytesMut::from(&bytes[..]))),
            (None, Some((_, buffer))) => buffer.extend_from_slice(&bytes),
            _ => return self.disconnect(ctx, DisconnectReason::TransportError),
        }
        if self
            .fragments
            .as_ref()
            .is_some_and(|(_, buffer)| buffer.len() > self.settings.max_payload)
        {
            return self.disconnect(ctx, DisconnectReason::MessageTooBig);
        }
        if last {
            if let Some((is_text, buffer)) = self.fragments.take() {
                let bytes = buffer.freeze();
                if !is_text {
                    return self.on_binary(bytes, ctx);
                }
                match std::str::from_utf8(&bytes) {
                    Ok(text) => self.on_text(text, ctx),
                    Err(_) => self.disconnect(ctx, DisconnectReason::TransportError),
                }
            }
        }
    }
}

impl Joined {
    /// Writes the frames the client does not have yet, in order.
    fn write(
        &mut self,
        frames: &[Frame],
        outbound: &Outbound,
        ctx: &mut WebsocketContext<Session>,
    ) {
        for frame in frames {
            if self.offset.is_some_and(|offset| frame.id <= offset) {
                continue;
            }
            send(outbound, ctx, frame.text.clone());
            self.offset = Some(frame.id);
        }
    }
}

fn send(outbound: &Outbound, ctx: &mut WebsocketContext<Session>, text: ByteString) {
    outbound.pushed(text.len());
    ctx.text(text);
}

impl Actor for Session {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let open = OpenPacket {
            sid: self.eio_sid.as_str(),
            upgrades: &[],
            ping_interval: self.settings.ping_interval.as_millis() as u64,
            ping_timeout: self.settings.ping_timeout.as_millis() as u64,
            max_payload: self.settings.max_payload as u64,
        };
        self.send(ctx, open.encode());
        self.schedule_ping(ctx);
        self.connect_deadline = Some(ctx.run_later(self.settings.connect_timeout, |act, ctx| {
            act.disconnect(ctx, DisconnectReason::ConnectTimeout);
        }));
        ctx.run_interval(self.settings.record_refresh, |act, _| {
            if let Namespace::Joined(joined) = &act.root {
                act.recovery.do_send(Keep(joined.record.clone()));
            }
        });
        debug!("session opened eio_sid={}", self.eio_sid);
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        // Keep before Unregister: once the Hub has seen this session leave, its record is already
        // queued for saving, so a shutdown that waits for the Hub to empty can then flush the records.
        let root = mem::replace(&mut self.root, Namespace::Idle);
        if let Namespace::Joined(joined) = &root {
            // The recovery window starts now: the record outlives this connection by one window.
            self.recovery.do_send(Keep(joined.record.clone()));
        }
        if !matches!(root, Namespace::Idle) {
            self.hub.do_send(Unregister {
                conn: self.conn,
                nsp: ROOT_NSP.to_owned(),
            });
        }
        debug!(
            "session closed eio_sid={} reason={:?}",
            self.eio_sid,
            self.reason.unwrap_or(DisconnectReason::TransportClose)
        );
        Running::Stop
    }
}

impl Handler<GoAway> for Session {
    type Result = ();

    fn handle(&mut self, _: GoAway, ctx: &mut Self::Context) {
        self.disconnect(ctx, DisconnectReason::ServerShuttingDown);
    }
}

impl Handler<Deliver> for Session {
    type Result = ();

    fn handle(&mut self, deliver: Deliver, ctx: &mut Self::Context) {
        match &mut self.root {
            Namespace::Joined(joined) => {
                self.outbound.taken(deliver.bytes);
                joined.write(&deliver.frames, &self.outbound, ctx);
            }
            // Still counted as on its way until written, so a slow replay stays within the bound.
            Namespace::Joining { buffered, .. } => buffered.push(deliver),
            Namespace::Idle => self.outbound.taken(deliver.bytes),
        }
    }
}

impl StreamHandler<Result<ws::Message, ProtocolError>> for Session {
    fn handle(&mut self, msg: Result<ws::Message, ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Binary(bytes)) => self.on_binary(bytes, ctx),
            Ok(ws::Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(_)) => {
                self.reason.get_or_insert(DisconnectReason::TransportClose);
                ctx.close(None);
                ctx.stop();
            }
            Err(ProtocolError::Overflow) => self.disconnect(ctx, DisconnectReason::MessageTooBig),
            Err(err) => {
                debug!("websocket error eio_sid={}: {err}", self.eio_sid);
                self.disconnect(ctx, DisconnectReason::TransportError);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        self.reason.get_or_insert(DisconnectReason::TransportClose);
        ctx.stop();
    }
}
