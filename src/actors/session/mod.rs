//! Session: one per Engine.IO session; speaks Engine.IO v4 and Socket.IO v5 to one client, over
//! HTTP long-polling, WebSocket, or polling then WebSocket after an upgrade (reference §1-§2).
//!
//! Owns: the transport ([`transport`]: a polling queue and its pending GET, or a WsConn, the upgrade
//! probe), the heartbeat and connect timers, the sockets of every namespace joined ([`socket`]: their
//! recovery state and the log id of the last broadcast written to them), binary packets being
//! reassembled ([`namespaces`]), and the connection's event budget ([`event_limit`]: one for the
//! connection, whatever namespaces it joined).
//! Receives: WsEvent (from its WsConn), Poll / PostBegin / PostBody / PollAbandoned (from the HTTP
//! handlers), Deliver and DisconnectSocket (from the Hub), Disconnect (from the Hub, the Registry, the
//! HTTP handlers).
//! Sends: Register/Unregister/Join/Leave to the Hub; Open, Keep, Release, Forget to Recovery; Remove to the Registry;
//! frames and its close through its WebSocket's sink (the close to its WsConn); events to the [`Application`](crate::app::Application).
//!
//! Every ending goes through [`Session::close`] with a [`SessionError`], whose consequence (reason,
//! close code, answers) is decided in [`super::disconnect`].
//!
//! Joining a namespace (reference §3.2, DESIGN.md §3), without gap or duplicate while broadcasts flow:
//! ```text
//! CONNECT ─► Application::authorize ─► refused: 44<nsp>,{"message"}   (nothing registered)
//!         ─► Register with Hub (live frames now arrive, and are held)
//!         ─► Recovery::Open ─► missed entries + offset (or a fresh session + the log tip)
//!         ─► write missed events a step at a time, then 40{"sid","pid"}, then (fresh) the offset event
//!         ─► release the held frames, skipping ids at or before the offset; from then on live
//! ```

mod admin;
mod allowance;
mod event_limit;
mod namespaces;
mod polling;
mod replay;
mod rooms;
mod socket;
mod timers;
mod traced;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix::WeakAddr;
use actix_web::web::Bytes;
use bytestring::ByteString;
use log::debug;
use serde_json::Value;

use self::event_limit::EventLimit;
pub use self::event_limit::EventRate;
use self::namespaces::{ExpiryTimers, PendingBinary};
pub use self::polling::{Poll, PollAbandoned, PollAnswer, PollRefused, PostBegin, PostBody};
use self::socket::{Live, Sockets};
use self::transport::{Probe, Transport};
use super::disconnect::{Disconnect, DisconnectSocket, SessionError};
use super::hub::lane::Lane;
use super::hub::{ConnId, Deliver, Hub, Unregister};
use super::outbound::{Out, Outbound};
use super::recovery::{Forget, Keep, Recovery, Release};
use super::registry::{Registry, Remove};
use super::ws_conn::{WsConnId, WsLimits};
use super::ws_read::UnfinishedBudget;
use crate::admission::Ticket;
use crate::app::{Handshake, Payload, SharedApp};
use crate::config::Parser;
use crate::metrics::Metrics;
use crate::protocol::engineio::{self, EioPacket, OpenPacket};
use crate::protocol::ids::EioSid;
use crate::protocol::socketio::{PacketKind, SioPacket};
use timers::Moment;

/// Settings every session needs, shared by all of them.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Engine.IO ping interval.
    pub ping_interval: Duration,
    /// Engine.IO ping timeout.
    pub ping_timeout: Duration,
    /// Largest message accepted, in bytes.
    pub max_payload: usize,
    /// Time allowed to join a namespace.
    pub connect_timeout: Duration,
    /// Time a WebSocket upgrade may take (reference §1.6).
    pub upgrade_timeout: Duration,
    /// Whether connection state recovery is on (pid in the CONNECT reply, offsets, records).
    pub recovery: bool,
    /// Session records are refreshed this often while the session lives.
    pub record_refresh: Duration,
    /// Engine.IO only: echo every message back (the Engine.IO conformance suite's application).
    pub engine_echo: bool,
    /// How Socket.IO packets are encoded (`HUB_PARSER`): text packets plus attachments, or one
    /// msgpack binary message each.
    pub parser: Parser,
    /// Bytes a polling queue may hold for a client that does not poll (the outgoing bound).
    pub max_buffered: usize,
    /// Bytes all connections of the instance may hold for unfinished frames and messages and for
    /// binary packets' attachments not yet whole (`HUB_MAX_UNFINISHED_BYTES`), shared by all.
    pub unfinished: Arc<UnfinishedBudget>,
    /// The events each connection may send (`HUB_SOCKET_EVENTS_PER_SECOND`, `HUB_SOCKET_ABUSE_LIMIT`);
    /// `None`: no limit.
    pub event_rate: Option<EventRate>,
    /// Rooms each socket may join with the `join` event (`HUB_MAX_ROOMS_PER_SOCKET`).
    pub max_rooms: usize,
    /// How long a replay waits for a client that takes nothing of it (`HUB_REPLAY_STALL_MS`).
    pub replay_stall: Duration,
}

impl SessionSettings {
    /// What a WebSocket of these sessions may hold.
    pub fn ws_limits(&self) -> WsLimits {
        WsLimits {
            max_payload: self.max_payload,
            max_buffered: self.max_buffered,
            unfinished: self.unfinished.clone(),
        }
    }
}

/// The actors and settings a session works with.
#[derive(Clone)]
pub struct SessionParts {
    /// Shared settings.
    pub settings: Arc<SessionSettings>,
    /// The application behind the sockets.
    pub app: SharedApp,
    /// Broadcasts.
    pub hub: Addr<Hub>,
    /// Session records and replays.
    pub recovery: Addr<Recovery>,
    /// sid → session, for HTTP requests.
    pub registry: Addr<Registry<Session>>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The admin UI's count of Engine.IO sessions; `None` when it is off.
    pub admin: Option<Arc<crate::admin::stats::EngineMonitor>>,
}

/// The actor.
pub struct Session {
    eio_sid: EioSid,
    /// Shared by every session: each of its addresses cloned per session would be two more
    /// allocations each (actix gives every sender its own parking state).
    parts: Arc<SessionParts>,
    /// The request that opened the session, for the application's admission checks.
    handshake: Arc<Handshake>,
    /// What is on its way to the client (the slow-consumer bound, see `outbound`).
    outbound: Arc<Outbound>,
    /// Names this session in the Hub.
    conn: ConnId,
    transport: Transport,
    /// Boxed: most sessions never upgrade, or do it once, early.
    upgrade: Option<Box<Probe>>,
    /// When the next ping is due: counted from the handshake, then from each pong.
    next_ping_at: Moment,
    /// When the pong to the ping sent is due; `None` while no ping waits for its pong.
    pong_due: Option<Moment>,
    /// When a connection that has joined no namespace is closed; `None` once one was joined.
    connect_deadline: Option<Moment>,
    /// When the sockets' session records are refreshed next.
    next_refresh: Moment,
    /// The instant of this session's entry in its thread's timers (see `timers`), if it has one.
    armed: Option<Moment>,
    sockets: Sockets,
    /// Bytes of broadcasts held by joining sockets: still counted as on their way, but not what a
    /// replay step waits for.
    held_bytes: usize,
    /// Boxed: rare, and as large as a parsed packet; every session carries the field.
    pending_binary: Option<Box<PendingBinary>>,
    next_ticket: u64,
    /// Why the session ended, once it has. Boxed: only at the end (and every session carries it).
    closed: Option<Box<SessionError>>,
    /// This actor's address, for its thread's timers and the end-of-turn polling flush. Weak: a
    /// strong one is two allocations per session (actix gives every sender its own parking state),
    /// and the session does not keep itself alive: the Registry holds it until it stops.
    me: Option<WeakAddr<Session>>,
    /// A FlushPoll is on its way.
    flush_scheduled: bool,
    /// The polling queue passed the outgoing bound: the session closes at the flush.
    overflowed: bool,
    /// Application replies still being worked out (bounded: a client cannot queue endless work).
    replies_in_flight: usize,
    /// The client's event budget, one for the connection (all its namespaces); `None`: no limit.
    events: Option<EventLimit>,
    /// CONNECT packets admitted to the budget check so far: one per served namespace is free (a
    /// client joining what it needs), later ones (a CONNECT / DISCONNECT loop) spend the budget.
    connects: u16,
    /// Closed over polling with no GET pending (by the client, or by the server with DISCONNECT
    /// packets): what one late GET still gets (a noop, or the DISCONNECTs and the close).
    lingering: Option<Box<str>>,
    /// Its place under the session caps: marked joined on the first namespace joined, given back
    /// when the actor is dropped.
    ticket: Ticket,
    /// When each socket's token expires (JWT mode).
    expiry_timers: ExpiryTimers,
    /// Its place in the admin UI's counts (dropped with the actor); `None` when the UI is off.
    /// Boxed: the UI is off by default, and 48 bytes fewer in the actor bring its task (actor,
    /// context and mailbox, allocated in steps of 128 bytes by tokio) from 1024 to 896 bytes.
    admin_seat: Option<Box<crate::admin::stats::Seat>>,
    /// Whether the Hub writes a namespace's live frames to the WebSocket itself (see `hub::lane`).
    lane: Arc<Lane>,
}

/// How long a session closed by its polling client waits for the GET that may be on its way.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

impl Session {
    /// A session over long-polling; its open packet is the handshake GET's answer ([`Self::open_packet`]).
    pub fn polling(
        eio_sid: EioSid,
        parts: Arc<SessionParts>,
        outbound: Arc<Outbound>,
        handshake: Handshake,
        ticket: Ticket,
    ) -> Session {
        Session::new(
            eio_sid,
            parts,
            outbound,
            handshake,
            Transport::polling(),
            ticket,
        )
    }

    /// A session over the WebSocket `conn`, which will attach itself; the open packet goes first.
    pub fn websocket(
        eio_sid: EioSid,
        parts: Arc<SessionParts>,
        outbound: Arc<Outbound>,
        conn: WsConnId,
        handshake: Handshake,
        ticket: Ticket,
    ) -> Session {
        let open = Session::open_packet(&eio_sid, &parts.settings, &[]);
        let transport = Transport::Connecting {
            conn,
            pending: vec![Out::Text(open.into())],
        };
        Session::new(eio_sid, parts, outbound, handshake, transport, ticket)
    }

    fn new(
        eio_sid: EioSid,
        parts: Arc<SessionParts>,
        outbound: Arc<Outbound>,
        handshake: Handshake,
        transport: Transport,
        ticket: Ticket,
    ) -> Session {
        let next_ping_at = Moment::now() + parts.settings.ping_interval;
        let events = parts.settings.event_rate.as_ref().map(EventLimit::new);
        let polling = matches!(transport, Transport::Polling(_));
        let admin_seat = parts
            .admin
            .as_ref()
            .map(|monitor| Box::new(monitor.opened(polling)));
        Session {
            eio_sid,
            parts,
            handshake: Arc::new(handshake),
            outbound,
            conn: ConnId::next(),
            transport,
            upgrade: None,
            next_ping_at,
            pong_due: None,
            connect_deadline: None,
            next_refresh: next_ping_at,
            armed: None,
            sockets: Sockets::default(),
            held_bytes: 0,
            pending_binary: None,
            next_ticket: 0,
            closed: None,
            me: None,
            flush_scheduled: false,
            overflowed: false,
            replies_in_flight: 0,
            connects: 0,
            events,
            lingering: None,
            lane: Arc::default(),
            ticket,
            expiry_timers: ExpiryTimers::default(),
            admin_seat,
        }
    }

    /// `0{"sid":…,"upgrades":[…],"pingInterval":…,"pingTimeout":…,"maxPayload":…}`
    pub fn open_packet(eio_sid: &EioSid, settings: &SessionSettings, upgrades: &[&str]) -> String {
        OpenPacket {
            sid: eio_sid.as_str(),
            upgrades,
            ping_interval: settings.ping_interval.as_millis() as u64,
            ping_timeout: settings.ping_timeout.as_millis() as u64,
            max_payload: settings.max_payload as u64,
        }
        .encode()
    }

    fn settings(&self) -> &SessionSettings {
        &self.parts.settings
    }

    // ---- writing -------------------------------------------------------------------------------

    fn write_text(&mut self, text: impl Into<ByteString>) {
        self.write_all(vec![Out::Text(text.into())]);
    }

    /// An EVENT or ACK, with its attachments as binary frames right after it.
    fn emit(&mut self, nsp: &str, payload: Payload, ack_id: Option<u64>, kind: PacketKind) {
        let binary = !payload.attachments.is_empty();
        let kind = match (kind, binary) {
            (PacketKind::Event, true) => PacketKind::BinaryEvent,
            (PacketKind::Ack, true) => PacketKind::BinaryAck,
            (kind, _) => kind,
        };
        let packet = SioPacket {
            kind,
            nsp: nsp.to_owned(),
            attachments: payload.attachments.len(),
            ack_id,
            data: Some(Value::Array(payload.data)),
        };
        let frames = socket::messages(self.settings().parser, &packet, payload.attachments);
        self.write_all(frames);
    }

    /// A packet without binary values, in the session's parser.
    fn write_packet(&mut self, packet: &SioPacket) {
        let frames = socket::messages(self.settings().parser, packet, Vec::new());
        self.write_all(frames);
    }

    // ---- lifecycle -----------------------------------------------------------------------------

    /// Ends the session for `why`, the one way every session ends: logged once, records kept (unless
    /// the client left on purpose), sockets unregistered, the transport closed as the failure map
    /// says, the sid forgotten.
    fn close(&mut self, ctx: &mut Context<Self>, why: SessionError) {
        if self.closed.is_some() {
            return;
        }
        let consequence = why.consequence();
        if let Some(seat) = self.admin_seat.as_mut() {
            seat.closing(crate::admin::stats::reason_name(consequence.reason));
        }
        debug!(
            "session closing eio_sid={} reason={:?} why=\"{why}\"",
            self.eio_sid, consequence.reason
        );
        let metrics = &self.parts.metrics;
        if why == SessionError::SlowConsumer {
            metrics.slow_consumers.inc();
        }
        metrics.disconnects.inc(consequence.reason.as_str());
        if let Some(kind) = why.refused_kind() {
            metrics.frames_refused.inc(kind);
        }
        metrics
            .connections
            .of(!matches!(self.transport, Transport::Polling(_)))
            .add(-1);
        crate::memory::churn();
        // A client that closes over polling (`1` in a POST) may have its GET still on the way: that
        // GET gets the noop it would have got had it arrived first (Node's single thread always sees
        // it first), then the session is gone.
        let without_get = self.transport.is_polling_without_get();
        // Nothing the Hub writes itself may follow the DISCONNECTs or the close frame.
        self.lane.lock().close_all();
        // Node's `socket.disconnect(true)`: a DISCONNECT per namespace socket before the transport
        // closes, so the client knows the server ended it and does not reconnect.
        let mut farewell = Vec::new();
        for (nsp, socket) in self.sockets.take() {
            if consequence.server_disconnect {
                let packet = SioPacket::new(PacketKind::Disconnect, nsp.as_str(), None);
                farewell.extend(socket::messages(
                    self.settings().parser,
                    &packet,
                    Vec::new(),
                ));
            }
            let left = socket.leave();
            self.held_bytes = self.held_bytes.saturating_sub(left.held_bytes);
            self.outbound.received(left.held_bytes);
            // Release before Unregister: once the Hub has seen this session leave, its record is
            // already queued for saving, so a shutdown that waits for the Hub to empty can flush it.
            // A session of a replaced log, or one the server disconnected, is not resumable.
            if let Some(record) = left.record {
                self.give_back(record, consequence.recoverable);
            }
            if left.registered {
                self.parts.hub.do_send(Unregister {
                    conn: self.conn,
                    nsp,
                });
            }
        }
        // The answer one more GET still gets once the session is closed, if any.
        let mut linger_with = (without_get && why == SessionError::TransportClosed).then_some("6");
        if !farewell.is_empty() && matches!(self.transport, Transport::Polling(_)) {
            // Over polling the DISCONNECTs go after what was queued before them (the rate-limited
            // acks that led to them, as a WebSocket client gets them), and the close packet in the
            // next answer, as Node does: the official client handles a DISCONNECT a tick after it
            // decodes it, so a close in the same payload would be seen first, as a transport close
            // to reconnect from.
            let mut frames = self.take_polling_queue();
            frames.extend(farewell.iter().cloned());
            let payload = transport::encode_payload(frames);
            if without_get {
                self.lingering = Some(payload.into_boxed_str());
            } else {
                self.release_poll(&payload);
                linger_with = Some("1");
            }
        } else {
            self.release_poll(consequence.waiting_get);
        }
        if matches!(self.transport, Transport::WebSocket { .. }) {
            self.write_all(farewell);
        }
        if let Transport::WebSocket { link, .. } = &self.transport {
            link.close(why.clone());
        }
        if !matches!(self.transport, Transport::Polling(_)) {
            self.transport = Transport::Closed;
        }
        self.closed = Some(Box::new(why));
        if let Some(probe) = self.upgrade.take() {
            probe
                .link
                .close(SessionError::NotTheTransport("its session ended"));
        }
        if let Some(answer) = linger_with {
            self.lingering = Some(answer.into());
        }
        if self.lingering.is_some() {
            ctx.run_later(CLOSE_LINGER, |_, ctx| ctx.stop());
            return;
        }
        self.parts.registry.do_send(Remove(self.eio_sid.clone()));
        ctx.stop();
    }

    /// The earliest of the session's deadlines: the pong due (or else the next ping), the connect
    /// timeout, the records' refresh.
    fn next_deadline(&self) -> Moment {
        let heartbeat = self.pong_due.unwrap_or(self.next_ping_at);
        let deadline = heartbeat.min(self.next_refresh);
        self.connect_deadline
            .map_or(deadline, |connect| connect.min(deadline))
    }

    /// Makes sure the thread's timers tell this session at its earliest deadline (an entry at or
    /// before it is enough: it re-arms when that one comes).
    fn arm(&mut self) {
        let at = self.next_deadline();
        if self.armed.is_some_and(|armed| armed <= at) {
            return;
        }
        if let Some(me) = &self.me {
            self.armed = Some(at);
            timers::arm(at, me.clone());
        }
    }

    /// Whatever of its deadlines was reached: the pong overdue closes the session; the ping due is
    /// written, and its pong is due a timeout after the ping was *due*, not after the timer fired, so
    /// the deadline the client sees is exact (reference §1.7); the connect timeout (Socket.IO's
    /// connectTimeout: a connection that has joined no namespace by then, a CONNECT still being
    /// admitted or refused does not count, is closed); the records' refresh.
    fn on_due(&mut self, ctx: &mut Context<Self>) {
        if self.closed.is_some() {
            return;
        }
        let now = Moment::now();
        if self.pong_overdue() {
            return self.close(ctx, SessionError::PingTimeout);
        }
        if self.pong_due.is_none() && now >= self.next_ping_at {
            self.write_text("2");
            self.pong_due = Some(self.next_ping_at + self.settings().ping_timeout);
        }
        if self.connect_deadline.is_some_and(|at| now >= at) {
            self.connect_deadline = None;
            if !self.sockets.any_admitted() && !self.settings().engine_echo {
                return self.close(ctx, SessionError::ConnectTimeout);
            }
        }
        if now >= self.next_refresh {
            self.next_refresh = now + self.settings().record_refresh;
            for record in self.sockets.records() {
                self.parts.recovery.do_send(Keep(record.clone()));
            }
        }
        self.arm();
    }

    /// Whether the pong is overdue even if its timer has not fired yet (a request arriving right at
    /// the deadline sees the session closed, as with Node).
    fn pong_overdue(&self) -> bool {
        self.pong_due.is_some_and(|due| Moment::now() >= due)
    }

    // ---- Engine.IO -----------------------------------------------------------------------------

    fn on_eio(&mut self, packet: EioPacket<'_>, ctx: &mut Context<Self>) {
        match packet {
            EioPacket::Pong(_) => {
                // Only an answer to our ping counts; the next ping is due an interval after it.
                if self.pong_due.take().is_some() {
                    self.next_ping_at = Moment::now() + self.settings().ping_interval;
                    self.arm();
                }
            }
            EioPacket::Message(data) if self.settings().engine_echo => {
                self.write_text(format!("4{data}"))
            }
            EioPacket::Message(data) => self.on_sio(data, ctx),
            EioPacket::Binary(bytes) => self.on_binary(Bytes::from(bytes), ctx),
            EioPacket::Close => self.close(ctx, SessionError::TransportClosed),
            // v4: only the server pings.
            EioPacket::Ping(_) => self.close(
                ctx,
                SessionError::Parse("invalid heartbeat direction".into()),
            ),
            EioPacket::Open(_) | EioPacket::Upgrade | EioPacket::Noop => {}
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        match engineio::decode(text) {
            Ok(packet) => self.on_eio(packet, ctx),
            Err(err) => self.close(ctx, SessionError::Parse(format!("engine.io packet: {err}"))),
        }
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.me = Some(ctx.address().downgrade());
        // Counted down in `close`, which every started session goes through (`stopping` too).
        let websocket = !matches!(self.transport, Transport::Polling(_));
        self.parts.metrics.handshakes.of(websocket).inc();
        self.parts.metrics.connections.of(websocket).add(1);
        crate::memory::churn();
        // The first ping an interval after the handshake (`new`), the records' refresh every
        // `record_refresh`, the connect timeout: all on the thread's timers.
        let now = Moment::now();
        self.connect_deadline = Some(now + self.settings().connect_timeout);
        self.next_refresh = now + self.settings().record_refresh;
        self.arm();
        debug!("session opened eio_sid={}", self.eio_sid);
    }

    fn stopping(&mut self, ctx: &mut Self::Context) -> Running {
        // Stopped from outside (the system is stopping): end as a shutdown does.
        self.close(ctx, SessionError::ShuttingDown);
        // A lingering session's sid is forgotten when it stops.
        self.parts.registry.do_send(Remove(self.eio_sid.clone()));
        Running::Stop
    }
}

impl Handler<timers::Due> for Session {
    type Result = ();

    fn handle(&mut self, timers::Due(at): timers::Due, ctx: &mut Self::Context) {
        if self.armed == Some(at) {
            self.armed = None;
        }
        self.on_due(ctx);
    }
}

impl Handler<Disconnect> for Session {
    type Result = ();

    fn handle(&mut self, Disconnect(why): Disconnect, ctx: &mut Self::Context) {
        self.close(ctx, why);
    }
}

impl Handler<DisconnectSocket> for Session {
    type Result = ();

    fn handle(&mut self, msg: DisconnectSocket, ctx: &mut Self::Context) {
        // The Hub counted this kick as relayed: it writes nothing itself until it is taken, and the
        // lane closes as it is taken (one lock), so nothing the log has after the request is
        // written before the DISCONNECT. A kick that finds no socket only reroutes the lane: the
        // next live frame written opens it again.
        {
            let mut lane = self.lane.lock();
            lane.took_relayed();
            if msg.close {
                lane.close_all();
            } else {
                lane.close(msg.nsp.as_str());
            }
        }
        self.disconnected_by_server(msg.nsp.as_str(), msg.close, ctx);
    }
}

impl Handler<Deliver> for Session {
    type Result = ();

    fn handle(&mut self, deliver: Deliver, ctx: &mut Self::Context) {
        // Held until this batch is written: no frame the Hub writes itself may overtake it.
        let lane = self.lane.clone();
        let mut lane = lane.lock();
        lane.took_relayed();
        if self.outbound.is_aborted() {
            drop(lane);
            return self.close(ctx, SessionError::SlowConsumer);
        }
        let bytes = deliver.bytes;
        let nsp = deliver.nsp.clone();
        let Some(socket) = self.sockets.get_mut(nsp.as_str()) else {
            return self.outbound.received(bytes);
        };
        match socket.on_live(deliver) {
            Live::Write(batch) => {
                let metrics = &self.parts.metrics;
                if metrics.enabled {
                    // One clock read and one add per counter per batch; one observation per entry.
                    metrics.deliveries.add(batch.frames().len() as u64);
                    metrics.delivered_bytes.add(bytes as u64);
                    let now = crate::store::now_ms();
                    for frame in batch.frames() {
                        metrics
                            .delivery_lag
                            .observe_ms(now.saturating_sub(frame.id.ms));
                    }
                }
                self.outbound.received(bytes);
                self.write_batch(&batch);
                // A live frame written: every later entry is newer than what the client has, so
                // nothing is left to skip, and the Hub may write this namespace's frames itself.
                if let (true, Transport::WebSocket { link, .. }) =
                    (batch.wrote_any(), &self.transport)
                {
                    if self.closed.is_none() {
                        lane.open(&nsp, link);
                    }
                }
            }
            // Still counted as on its way until written, so a slow replay stays within the bound.
            Live::Held => self.held_bytes += bytes,
            Live::Dropped => self.outbound.received(bytes),
        }
    }
}

impl Session {
    /// A session record this session holds no more: resumable again (by a hub or a Node peer) when
    /// the way it ended allows it, else deleted (a replaced log, a server-side disconnect).
    fn give_back(&self, record: crate::store::SessionRecord, recoverable: bool) {
        if recoverable {
            self.parts.recovery.do_send(Release(record));
        } else {
            self.parts.recovery.do_send(Forget(record.pid));
        }
    }
}
