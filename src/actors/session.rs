//! Session: one per Engine.IO session; speaks Engine.IO v4 and Socket.IO v5 to one client, over
//! HTTP long-polling, WebSocket, or polling then WebSocket after an upgrade (reference §1-§2).
//!
//! Owns: the transport (a polling queue and its pending GET, or a [`WsConn`]), the upgrade probe, the
//! heartbeat and connect timers, the sockets of every namespace joined (with their recovery state and
//! the log id of the last broadcast written to them), and binary packets being reassembled.
//! Receives: WsEvent (from its WsConn), Poll / PostBegin / PostBody / PostFailed / PollAbandoned
//! (from the HTTP handlers), Deliver and GoAway (from the Hub).
//! Sends: Register/Unregister to the Hub; Open, Keep, Forget to Recovery; Insert/Remove to the
//! Registry; WsWrite/WsClose to its WsConn; events to the [`Application`](crate::app::Application).
//!
//! Joining a namespace (reference §3.2, DESIGN.md §3), without gap or duplicate while broadcasts flow:
//! ```text
//! CONNECT ─► Register with Hub (live frames now arrive, and are held)
//!         ─► Recovery::Open ─► missed entries + offset (or a fresh session + the log tip)
//!         ─► write missed events a step at a time, then 40{"sid","pid"}, then (fresh) the offset event
//!         ─► release the held frames, skipping ids at or before the offset; from then on live
//! ```

use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::{CloseCode, CloseReason};
use actix_web::web::Bytes;
use bytestring::ByteString;
use log::{debug, trace};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::hub::{
    frame_entry, ConnId, Deliver, Frame, GoAway, Hub, Outbound, Register, Unregister,
};
use super::recovery::{random_bytes, Forget, Keep, Open, Opened, Recovery};
use super::registry::{Registry, Remove};
use super::ws_conn::{Out, WsClose, WsConn, WsEnd, WsEvent, WsEventKind, WsWrite};
use crate::app::{Payload, Reply, SharedApp};
use crate::protocol::engineio::{self, EioPacket, OpenPacket, PAYLOAD_SEPARATOR};
use crate::protocol::ids::{EioSid, Pid, Sid, StreamId};
use crate::protocol::socketio::{self, PacketKind, SioPacket};
use crate::store::{LogEntry, SessionRecord};

/// The event a fresh session receives right after CONNECT, carrying the log tip as its (last, string)
/// argument. The official client stores the last string argument of every event as its recovery
/// offset, so even a client that drops before its first notification can resume (DESIGN.md §3).
pub const OFFSET_EVENT: &str = "hub:offset";

/// A replay step writes while less than this is on its way to the client.
const REPLAY_HIGH_WATER: usize = 256 * 1024;
/// How long a replay waits for the client to take what was written before looking again.
const REPLAY_PAUSE: Duration = Duration::from_millis(5);

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
    /// Bytes a polling queue may hold for a client that does not poll (the outgoing bound).
    pub max_buffered: usize,
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
    pub registry: Addr<Registry>,
}

/// Why a session ends; mirrors Socket.IO's disconnect reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client closed the transport (or sent Engine.IO `1`).
    TransportClose,
    /// The transport failed (e.g. a WebSocket protocol error, an aborted poll).
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
    /// The WebSocket close frame: Node sends a bare close frame (the client sees 1005), except for
    /// oversized messages (1009); a shutdown says "going away" (1001).
    fn close_reason(self) -> Option<CloseReason> {
        match self {
            DisconnectReason::MessageTooBig => Some(CloseCode::Size.into()),
            DisconnectReason::TransportError => Some(CloseCode::Protocol.into()),
            DisconnectReason::ServerShuttingDown => Some(CloseCode::Away.into()),
            _ => None,
        }
    }
}

/// A polling GET waiting for packets.
struct Waiting {
    /// Matches the GET's `PollAbandoned`, so a stale one is ignored.
    ticket: u64,
    answer: oneshot::Sender<String>,
}

/// The transport carrying the session.
enum Transport {
    /// HTTP long-polling: packets wait in `queue` for the next GET.
    Polling {
        queue: Vec<Out>,
        /// Bytes in `queue`, counted as on their way (`Outbound::sent`).
        queued_bytes: usize,
        waiting: Option<Waiting>,
        post_in_progress: bool,
    },
    /// A WebSocket whose WsConn has not started yet; frames wait here.
    Connecting { conn: u64, pending: Vec<Out> },
    /// A WebSocket.
    WebSocket { conn: u64, addr: Addr<WsConn> },
}

/// An upgrade in progress: a second, probing WebSocket (reference §1.6).
struct Probe {
    conn: u64,
    addr: Addr<WsConn>,
    /// `3probe` was sent: polling GETs get `6` until the upgrade completes.
    probed: bool,
    timeout: SpawnHandle,
}

/// A namespace's socket.
enum Socket {
    /// CONNECT received: Recovery asked, then the replay written in steps; live frames are held.
    Joining {
        held: Vec<Deliver>,
        replay: Option<Replay>,
    },
    /// Joined: live frames go straight out.
    Joined(Joined),
}

/// A session's sockets by namespace. A session joins one or two namespaces, so a list sized to fit:
/// a map (or a growing Vec) would reserve room for four sockets in every session.
#[derive(Default)]
struct Sockets(Vec<(String, Socket)>);

impl Sockets {
    fn get(&self, nsp: &str) -> Option<&Socket> {
        self.0.iter().find(|(name, _)| name == nsp).map(|(_, s)| s)
    }

    fn get_mut(&mut self, nsp: &str) -> Option<&mut Socket> {
        self.0
            .iter_mut()
            .find(|(name, _)| name == nsp)
            .map(|(_, s)| s)
    }

    /// Sets the socket of `nsp`, replacing the one it had.
    fn insert(&mut self, nsp: String, socket: Socket) {
        match self.get_mut(&nsp) {
            Some(slot) => *slot = socket,
            None => {
                self.0.reserve_exact(1);
                self.0.push((nsp, socket));
            }
        }
    }

    fn remove(&mut self, nsp: &str) -> Option<Socket> {
        let at = self.0.iter().position(|(name, _)| name == nsp)?;
        Some(self.0.remove(at).1)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn values(&self) -> impl Iterator<Item = &Socket> {
        self.0.iter().map(|(_, s)| s)
    }
}

impl IntoIterator for Sockets {
    type Item = (String, Socket);
    type IntoIter = std::vec::IntoIter<(String, Socket)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// A resume's missed entries, written a step at a time: a transport queues without bound, so a large
/// replay written at once would sit in memory whole.
struct Replay {
    sid: Sid,
    pid: Pid,
    recovered: bool,
    offset: Option<StreamId>,
    missed: std::vec::IntoIter<LogEntry>,
    count: usize,
    auth: Value,
}

/// A joined socket.
struct Joined {
    /// Its socket id.
    sid: Sid,
    /// The id of the next event emitted asking for an ack.
    next_ack_id: u64,
    /// Acks the client owes (ids of events emitted asking for one); others are ignored.
    awaiting_acks: std::collections::HashSet<u64>,
    /// Its session record, when recovery is on.
    record: Option<SessionRecord>,
    /// The newest log id written to the client (or known to it); frames at or before it are skipped.
    offset: Option<StreamId>,
}

/// A binary packet whose attachments are still arriving (across frames or POSTs).
struct PendingBinary {
    packet: SioPacket,
    attachments: Vec<Bytes>,
}

/// What a polling GET gets.
#[derive(Debug)]
pub enum PollAnswer {
    /// A payload, at once.
    Now(String),
    /// A payload, once there is one.
    Later {
        /// Identifies this GET in `PollAbandoned`.
        ticket: u64,
        /// Resolves with the payload.
        answer: oneshot::Receiver<String>,
    },
}

/// Why a polling request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollRefused {
    /// A second GET (or POST) while one is in progress: 400 with an empty body, the session closes.
    Duplicate,
    /// The session is on another transport now: 400 code 3.
    WrongTransport,
    /// A body that does not decode: 400, the session closes.
    Malformed,
    /// The session ended meanwhile: 400 code 1.
    Gone,
}

/// A polling GET.
#[derive(Message)]
#[rtype(result = "Result<PollAnswer, PollRefused>")]
pub struct Poll;

/// The client of a pending GET went away before its answer: the session closes (reference §1.4).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PollAbandoned(pub u64);

/// A polling POST starts (its body is being read).
#[derive(Message)]
#[rtype(result = "Result<(), PollRefused>")]
pub struct PostBegin;

/// A polling POST's body.
#[derive(Message)]
#[rtype(result = "Result<(), PollRefused>")]
pub struct PostBody(pub Bytes);

/// A polling POST's body could not be taken (too large, unreadable, binary content type).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PostFailed(pub DisconnectReason);

/// The actor.
pub struct Session {
    eio_sid: EioSid,
    parts: SessionParts,
    /// What is on its way to the client (the slow-consumer bound, see `hub::Outbound`).
    outbound: Arc<Outbound>,
    /// Names this session in the Hub.
    conn: ConnId,
    transport: Transport,
    upgrade: Option<Probe>,
    /// When the next ping is due: counted from the handshake, then from each pong.
    next_ping_at: Instant,
    /// When the pong to the ping sent is due.
    pong_due: Option<Instant>,
    pong_deadline: Option<SpawnHandle>,
    connect_deadline: Option<SpawnHandle>,
    sockets: Sockets,
    /// Bytes of broadcasts held by joining sockets: still counted as on their way, but not what a
    /// replay step waits for.
    held_bytes: usize,
    pending_binary: Option<PendingBinary>,
    next_ticket: u64,
    closed: Option<DisconnectReason>,
    /// This actor's address, for the end-of-turn polling flush.
    me: Option<Addr<Session>>,
    /// A FlushPoll is on its way.
    flush_scheduled: bool,
    /// The polling queue passed the outgoing bound: the session closes at the flush.
    overflowed: bool,
    /// Application replies still being worked out (bounded: a client cannot queue endless work).
    replies_in_flight: usize,
    /// Closed by the client over polling with no GET pending: one late GET still gets its noop.
    lingering: bool,
}

/// How long a session closed by its polling client waits for the GET that may be on its way.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Flush the polling queue at the end of the actor turn that wrote to it.
#[derive(Message)]
#[rtype(result = "()")]
struct FlushPoll;

/// Application replies a session may have in flight before it is closed.
const MAX_REPLIES_IN_FLIGHT: usize = 256;

impl Session {
    /// A session over long-polling; its open packet is the handshake GET's answer ([`Self::open_packet`]).
    pub fn polling(eio_sid: EioSid, parts: SessionParts, outbound: Arc<Outbound>) -> Session {
        let transport = Transport::Polling {
            queue: Vec::new(),
            queued_bytes: 0,
            waiting: None,
            post_in_progress: false,
        };
        Session::new(eio_sid, parts, outbound, transport)
    }

    /// A session over the WebSocket `conn`, which will attach itself; the open packet goes first.
    pub fn websocket(
        eio_sid: EioSid,
        parts: SessionParts,
        outbound: Arc<Outbound>,
        conn: u64,
    ) -> Session {
        let open = Session::open_packet(&eio_sid, &parts.settings, &[]);
        let transport = Transport::Connecting {
            conn,
            pending: vec![Out::Text(open.into())],
        };
        Session::new(eio_sid, parts, outbound, transport)
    }

    fn new(
        eio_sid: EioSid,
        parts: SessionParts,
        outbound: Arc<Outbound>,
        transport: Transport,
    ) -> Session {
        let next_ping_at = Instant::now() + parts.settings.ping_interval;
        Session {
            eio_sid,
            parts,
            outbound,
            conn: ConnId::next(),
            transport,
            upgrade: None,
            next_ping_at,
            pong_due: None,
            pong_deadline: None,
            connect_deadline: None,
            sockets: Sockets::default(),
            held_bytes: 0,
            pending_binary: None,
            next_ticket: 0,
            closed: None,
            me: None,
            flush_scheduled: false,
            overflowed: false,
            replies_in_flight: 0,
            lingering: false,
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

    /// Writes frames to whatever transport carries the session now.
    fn write_all(&mut self, frames: Vec<Out>) {
        if frames.is_empty() || self.closed.is_some() {
            return;
        }
        let bytes: usize = frames.iter().map(Out::len).sum();
        self.outbound.sent(bytes);
        match &mut self.transport {
            Transport::Polling {
                queue,
                queued_bytes,
                ..
            } => {
                queue.extend(frames);
                *queued_bytes += bytes;
                // A client that does not poll cannot grow its queue without bound.
                self.overflowed |= *queued_bytes > self.parts.settings.max_buffered;
                // Everything written in this actor turn goes out in one GET answer (a CONNECT reply
                // and the offset event after it, a replay step...): flushed when the turn is over.
                if !self.flush_scheduled {
                    self.flush_scheduled = true;
                    if let Some(me) = &self.me {
                        me.do_send(FlushPoll);
                    }
                }
            }
            Transport::Connecting { pending, .. } => {
                self.outbound.taken(bytes);
                pending.extend(frames);
            }
            Transport::WebSocket { addr, .. } => addr.do_send(WsWrite { frames, bytes }),
        }
    }

    fn write_text(&mut self, text: impl Into<ByteString>) {
        self.write_all(vec![Out::Text(text.into())]);
    }

    /// Answers a waiting GET with everything queued, if there is a GET and something queued (and no
    /// upgrade has paused polling).
    /// Answers a waiting GET with everything queued. False if that GET's client had gone away: the
    /// session must then close (its packets have nowhere to go).
    fn flush_poll(&mut self) -> bool {
        if self.upgrade.as_ref().is_some_and(|probe| probe.probed) {
            return true;
        }
        let Transport::Polling {
            queue,
            queued_bytes,
            waiting,
            ..
        } = &mut self.transport
        else {
            return true;
        };
        if queue.is_empty() || waiting.is_none() {
            return true;
        }
        if waiting.as_ref().is_some_and(|w| w.answer.is_closed()) {
            return false;
        }
        let payload = encode_payload(mem::take(queue));
        self.outbound.taken(mem::take(queued_bytes));
        if let Some(waiting) = waiting.take() {
            let _ = waiting.answer.send(payload);
        }
        true
    }

    /// Answers a waiting GET with `text` (a noop or a close), whatever is queued.
    fn release_poll(&mut self, text: &str) {
        if let Transport::Polling { waiting, .. } = &mut self.transport {
            if let Some(waiting) = waiting.take() {
                let _ = waiting.answer.send(text.to_owned());
            }
        }
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
        let mut frames = vec![Out::Text(format!("4{}", socketio::encode(&packet)).into())];
        frames.extend(payload.attachments.into_iter().map(Out::Binary));
        self.write_all(frames);
    }

    // ---- lifecycle -----------------------------------------------------------------------------

    /// Ends the session: records kept (unless the client left on purpose), sockets unregistered, the
    /// transport closed, the sid forgotten.
    fn close(&mut self, ctx: &mut Context<Self>, reason: DisconnectReason) {
        if self.closed.is_some() {
            return;
        }
        debug!("session closing eio_sid={} reason={reason:?}", self.eio_sid);
        // A client that closes over polling (`1` in a POST) may have its GET still on the way: that
        // GET gets the noop it would have got had it arrived first (Node's single thread always sees
        // it first), then the session is gone.
        let awaited_get = matches!(&self.transport, Transport::Polling { waiting: None, .. })
            && reason == DisconnectReason::TransportClose;
        // A pending GET learns of the close: `6` if the client asked for it, `1` otherwise.
        self.release_poll(if reason == DisconnectReason::TransportClose {
            "6"
        } else {
            "1"
        });
        self.closed = Some(reason);
        for (nsp, socket) in mem::take(&mut self.sockets) {
            // Keep before Unregister: once the Hub has seen this session leave, its record is
            // already queued for saving, so a shutdown that waits for the Hub to empty can flush it.
            if let Socket::Joined(Joined {
                record: Some(record),
                ..
            }) = socket
            {
                self.parts.recovery.do_send(Keep(record));
            }
            self.parts.hub.do_send(Unregister {
                conn: self.conn,
                nsp,
            });
        }
        if let Transport::WebSocket { addr, .. } = &self.transport {
            addr.do_send(WsClose(reason.close_reason()));
        }
        if let Some(probe) = self.upgrade.take() {
            probe.addr.do_send(WsClose(None));
        }
        if awaited_get {
            self.lingering = true;
            ctx.run_later(CLOSE_LINGER, |_, ctx| ctx.stop());
            return;
        }
        self.parts
            .registry
            .do_send(Remove(self.eio_sid.to_string()));
        ctx.stop();
    }

    /// The next ping, at `next_ping_at`. The pong is due a timeout after the ping was *due*, not after
    /// the timer fired: the deadline the client sees is exact (reference §1.7).
    fn schedule_ping(&mut self, ctx: &mut Context<Self>) {
        let delay = self.next_ping_at.saturating_duration_since(Instant::now());
        ctx.run_later(delay, |act, ctx| {
            act.write_text("2");
            let due = act.next_ping_at + act.settings().ping_timeout;
            act.pong_due = Some(due);
            let left = due.saturating_duration_since(Instant::now());
            act.pong_deadline = Some(ctx.run_later(left, |act, ctx| {
                act.close(ctx, DisconnectReason::PingTimeout)
            }));
        });
    }

    /// Whether the pong is overdue even if its timer has not fired yet (a request arriving right at
    /// the deadline sees the session closed, as with Node).
    fn pong_overdue(&self) -> bool {
        self.pong_due.is_some_and(|due| Instant::now() >= due)
    }

    // ---- Engine.IO -----------------------------------------------------------------------------

    fn on_eio(&mut self, packet: EioPacket<'_>, ctx: &mut Context<Self>) {
        match packet {
            EioPacket::Pong(_) => {
                // Only an answer to our ping counts; the next ping is due an interval after it.
                if let Some(deadline) = self.pong_deadline.take() {
                    ctx.cancel_future(deadline);
                    self.pong_due = None;
                    self.next_ping_at = Instant::now() + self.settings().ping_interval;
                    self.schedule_ping(ctx);
                }
            }
            EioPacket::Message(data) if self.settings().engine_echo => {
                self.write_text(format!("4{data}"))
            }
            EioPacket::Message(data) => self.on_sio(data, ctx),
            EioPacket::Binary(bytes) => self.on_binary(Bytes::from(bytes), ctx),
            EioPacket::Close => self.close(ctx, DisconnectReason::TransportClose),
            // v4: only the server pings ("invalid heartbeat direction").
            EioPacket::Ping(_) => self.close(ctx, DisconnectReason::ParseError),
            EioPacket::Open(_) | EioPacket::Upgrade | EioPacket::Noop => {}
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        match engineio::decode(text) {
            Ok(packet) => self.on_eio(packet, ctx),
            Err(err) => {
                debug!("bad engine.io packet eio_sid={}: {err}", self.eio_sid);
                self.close(ctx, DisconnectReason::ParseError);
            }
        }
    }

    fn on_binary(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        if self.settings().engine_echo {
            return self.write_all(vec![Out::Binary(bytes)]);
        }
        let Some(pending) = self.pending_binary.as_mut() else {
            debug!(
                "binary message without a binary packet eio_sid={}",
                self.eio_sid
            );
            return self.close(ctx, DisconnectReason::ParseError);
        };
        pending.attachments.push(bytes);
        if pending.attachments.len() == pending.packet.attachments {
            if let Some(done) = self.pending_binary.take() {
                self.on_packet(done.packet, done.attachments, ctx);
            }
        }
    }

    // ---- upgrade -------------------------------------------------------------------------------

    fn on_attached(&mut self, conn: u64, addr: Addr<WsConn>, ctx: &mut Context<Self>) {
        if self.closed.is_some() {
            return addr.do_send(WsClose(None));
        }
        match &mut self.transport {
            Transport::Connecting {
                conn: expected,
                pending,
            } if *expected == conn => {
                let frames = mem::take(pending);
                self.transport = Transport::WebSocket { conn, addr };
                self.write_all(frames);
            }
            // A second WebSocket: an upgrade probe, if the session is on polling and not upgrading.
            Transport::Polling { .. } if self.upgrade.is_none() => {
                let timeout = ctx.run_later(self.settings().upgrade_timeout, move |act, _| {
                    if let Some(probe) = act.upgrade.take_if(|probe| probe.conn == conn) {
                        debug!("upgrade timed out eio_sid={}", act.eio_sid);
                        probe.addr.do_send(WsClose(None));
                    }
                });
                self.upgrade = Some(Probe {
                    conn,
                    addr,
                    probed: false,
                    timeout,
                });
            }
            // Already upgraded or upgrading: that WebSocket is closed at once (reference §1.6).
            _ => addr.do_send(WsClose(None)),
        }
    }

    fn on_probe_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let Some(probe) = self.upgrade.as_mut() else {
            return;
        };
        match (text, probe.probed) {
            ("2probe", false) => {
                probe.probed = true;
                probe.addr.do_send(WsWrite {
                    frames: vec![Out::Text("3probe".into())],
                    bytes: 0,
                });
                // The pending GET ends with a noop, so the client can pause polling.
                self.release_poll("6");
            }
            ("5", true) => {
                let Some(probe) = self.upgrade.take() else {
                    return;
                };
                ctx.cancel_future(probe.timeout);
                self.release_poll("6");
                let queued = match mem::replace(
                    &mut self.transport,
                    Transport::WebSocket {
                        conn: probe.conn,
                        addr: probe.addr,
                    },
                ) {
                    Transport::Polling {
                        queue,
                        queued_bytes,
                        ..
                    } => {
                        self.outbound.taken(queued_bytes);
                        queue
                    }
                    _ => Vec::new(),
                };
                debug!("upgraded to websocket eio_sid={}", self.eio_sid);
                self.write_all(queued);
            }
            // Anything else on the probing WebSocket closes it; the polling session goes on.
            _ => {
                if let Some(probe) = self.upgrade.take() {
                    ctx.cancel_future(probe.timeout);
                    probe.addr.do_send(WsClose(None));
                }
            }
        }
    }

    // ---- Socket.IO -----------------------------------------------------------------------------

    fn on_sio(&mut self, data: &str, ctx: &mut Context<Self>) {
        if self.pending_binary.is_some() {
            debug!(
                "text while waiting for attachments eio_sid={}",
                self.eio_sid
            );
            return self.close(ctx, DisconnectReason::ParseError);
        }
        let packet = match socketio::decode(data) {
            Ok(packet) => packet,
            Err(err) => {
                debug!("bad socket.io packet eio_sid={}: {err}", self.eio_sid);
                return self.close(ctx, DisconnectReason::ParseError);
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
        self.on_packet(packet, Vec::new(), ctx);
    }

    fn on_packet(&mut self, packet: SioPacket, attachments: Vec<Bytes>, ctx: &mut Context<Self>) {
        let nsp = packet.nsp.clone();
        match (self.sockets.get(&nsp), packet.kind) {
            (None, PacketKind::Connect) if !self.parts.app.namespaces().contains(&nsp) => {
                let refusal = json!({ "message": "Invalid namespace" });
                let reply = SioPacket::new(PacketKind::ConnectError, &nsp, Some(refusal));
                self.write_text(format!("4{}", socketio::encode(&reply)));
            }
            (None, PacketKind::Connect) => {
                self.join(nsp, packet.data.unwrap_or_else(|| json!({})), ctx)
            }
            (Some(Socket::Joined(_)), PacketKind::Disconnect) => self.leave(&nsp),
            (Some(Socket::Joined(_)), PacketKind::Event | PacketKind::BinaryEvent) => {
                if let Some(Value::Array(data)) = packet.data {
                    self.on_event(nsp, Payload { data, attachments }, packet.ack_id, ctx);
                }
            } // Acks of events the server emitted asking for one; an unknown id is ignored (§2.4).
            (Some(Socket::Joined(_)), PacketKind::Ack | PacketKind::BinaryAck) => {
                if let (Some(id), Some(Value::Array(data))) = (packet.ack_id, packet.data) {
                    self.on_client_ack(&nsp, id, Payload { data, attachments });
                }
            }
            // A second CONNECT, a CONNECT_ERROR from a client, a packet for a namespace not joined (or
            // before its CONNECT reply): invalid state (reference §2.7).
            _ => self.close(ctx, DisconnectReason::ParseError),
        }
    }

    fn on_event(
        &mut self,
        nsp: String,
        event: Payload,
        ack_id: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        if self.replies_in_flight >= MAX_REPLIES_IN_FLIGHT {
            debug!("too many events awaiting replies eio_sid={}", self.eio_sid);
            return self.close(ctx, DisconnectReason::TransportError);
        }
        self.replies_in_flight += 1;
        let reply = self.parts.app.on_event(&nsp, event, ack_id.is_some());
        ctx.spawn(reply.into_actor(self).map(move |reply: Reply, act, _| {
            act.replies_in_flight -= 1;
            if act.closed.is_some() || !matches!(act.sockets.get(&nsp), Some(Socket::Joined(_))) {
                return;
            }
            for payload in reply.emit {
                act.emit(&nsp, payload, None, PacketKind::Event);
            }
            for payload in reply.ask {
                let Some(Socket::Joined(joined)) = act.sockets.get_mut(&nsp) else {
                    return;
                };
                let id = joined.next_ack_id;
                joined.next_ack_id += 1;
                joined.awaiting_acks.insert(id);
                act.emit(&nsp, payload, Some(id), PacketKind::Event);
            }
            if let (Some(id), Some(ack)) = (ack_id, reply.ack) {
                act.emit(&nsp, ack, Some(id), PacketKind::Ack);
            }
        }));
    }
    fn on_client_ack(&mut self, nsp: &str, id: u64, answer: Payload) {
        let Some(Socket::Joined(joined)) = self.sockets.get_mut(nsp) else {
            return;
        };
        if !joined.awaiting_acks.remove(&id) {
            return;
        }
        for payload in self.parts.app.on_ack(nsp, answer) {
            self.emit(nsp, payload, None, PacketKind::Event);
        }
    }

    fn join(&mut self, nsp: String, auth: Value, ctx: &mut Context<Self>) {
        // Register first: every entry read from the log from now on reaches this socket, so the
        // replay only has to cover what came before (DESIGN.md §3, the handover).
        self.parts.hub.do_send(Register {
            conn: self.conn,
            nsp: nsp.clone(),
            session: ctx.address().recipient(),
            closer: ctx.address().recipient(),
            outbound: self.outbound.clone(),
        });
        if let Some(deadline) = self.connect_deadline.take() {
            ctx.cancel_future(deadline);
        }
        if !self.settings().recovery {
            let sid = Sid::from_random(random_bytes());
            self.sockets.insert(
                nsp.clone(),
                Socket::Joined(Joined::new(sid.clone(), None, None)),
            );
            let reply = SioPacket::new(
                PacketKind::Connect,
                &nsp,
                Some(json!({ "sid": sid.as_str() })),
            );
            self.write_text(format!("4{}", socketio::encode(&reply)));
            for payload in self.parts.app.on_connect(&nsp, &auth) {
                self.emit(&nsp, payload, None, PacketKind::Event);
            }
            return;
        }
        let field = |key: &str| auth.get(key).and_then(Value::as_str).map(str::to_owned);
        let open = Open {
            nsp: nsp.clone(),
            pid: field("pid"),
            offset: field("offset"),
        };
        self.sockets.insert(
            nsp.clone(),
            Socket::Joining {
                held: Vec::new(),
                replay: None,
            },
        );
        // Spawned, not awaited: pongs and live frames keep being handled while Recovery works.
        let opening = self.parts.recovery.send(open).into_actor(self).map(
            move |opened, act, ctx| match opened {
                Ok(opened) => act.opened(nsp, auth, opened, ctx),
                Err(err) => {
                    debug!("recovery unreachable eio_sid={}: {err}", act.eio_sid);
                    act.close(ctx, DisconnectReason::TransportError);
                }
            },
        );
        ctx.spawn(opening);
    }

    fn opened(&mut self, nsp: String, auth: Value, opened: Opened, ctx: &mut Context<Self>) {
        let Some(Socket::Joining { replay, .. }) = self.sockets.get_mut(&nsp) else {
            return; // the session left or closed meanwhile
        };
        let count = opened.missed.len();
        *replay = Some(Replay {
            sid: opened.sid,
            pid: opened.pid,
            recovered: opened.recovered,
            offset: opened.offset,
            missed: opened.missed.into_iter(),
            count,
            auth,
        });
        self.replay_step(nsp, ctx);
    }

    /// Writes missed events while the client keeps up, then the CONNECT reply (reference §3.2: the
    /// missed events come first).
    fn replay_step(&mut self, nsp: String, ctx: &mut Context<Self>) {
        if self.closed.is_some() {
            return;
        }
        if self.outbound.is_aborted() {
            return self.close(ctx, DisconnectReason::SlowConsumer);
        }
        let in_flight = self.outbound.pending().saturating_sub(self.held_bytes);
        let Some(Socket::Joining {
            replay: Some(replay),
            ..
        }) = self.sockets.get_mut(&nsp)
        else {
            return;
        };
        let mut frames = Vec::new();
        let mut bytes = 0;
        let mut done = false;
        while in_flight + bytes < REPLAY_HIGH_WATER {
            let Some(entry) = replay.missed.next() else {
                done = true;
                break;
            };
            if let Some(frame) = frame_entry(&entry) {
                bytes += frame.text.len();
                frames.push(Out::Text(frame.text));
            }
        }
        self.write_all(frames);
        if done {
            self.finish_join(nsp);
        } else {
            ctx.run_later(REPLAY_PAUSE, move |act, ctx| act.replay_step(nsp, ctx));
        }
    }

    fn finish_join(&mut self, nsp: String) {
        let Some(Socket::Joining {
            held,
            replay: Some(replay),
        }) = self.sockets.remove(&nsp)
        else {
            return;
        };
        let ids = json!({ "sid": replay.sid.as_str(), "pid": replay.pid.as_str() });
        let reply = SioPacket::new(PacketKind::Connect, &nsp, Some(ids));
        self.write_text(format!("4{}", socketio::encode(&reply)));
        if let (false, Some(tip)) = (replay.recovered, replay.offset) {
            let event = SioPacket::new(
                PacketKind::Event,
                &nsp,
                Some(json!([OFFSET_EVENT, tip.to_string()])),
            );
            self.write_text(format!("4{}", socketio::encode(&event)));
        }
        debug!(
            "socket joined eio_sid={} nsp={nsp} sid={} recovered={} replayed={}",
            self.eio_sid, replay.sid, replay.recovered, replay.count
        );
        for payload in self.parts.app.on_connect(&nsp, &replay.auth) {
            self.emit(&nsp, payload, None, PacketKind::Event);
        }
        let record = SessionRecord::new(&replay.sid, &replay.pid);
        let mut joined = Joined::new(replay.sid, Some(record), replay.offset);
        for deliver in held {
            self.held_bytes = self.held_bytes.saturating_sub(deliver.bytes);
            self.outbound.taken(deliver.bytes);
            let frames = joined.unseen(&deliver.frames);
            self.write_all(frames);
        }
        self.sockets.insert(nsp, Socket::Joined(joined));
    }

    /// The client left a namespace on purpose (`41`): nothing is sent back, and it is not recoverable.
    fn leave(&mut self, nsp: &str) {
        if let Some(Socket::Joined(joined)) = self.sockets.remove(nsp) {
            self.parts.hub.do_send(Unregister {
                conn: self.conn,
                nsp: nsp.to_owned(),
            });
            if let Some(record) = joined.record {
                self.parts
                    .recovery
                    .do_send(Forget(Pid::from_wire(record.pid)));
            }
            debug!(
                "socket left eio_sid={} nsp={nsp} sid={}",
                self.eio_sid, joined.sid
            );
        }
    }
}

impl Joined {
    fn new(sid: Sid, record: Option<SessionRecord>, offset: Option<StreamId>) -> Joined {
        Joined {
            sid,
            next_ack_id: 0,
            awaiting_acks: Default::default(),
            record,
            offset,
        }
    }

    /// The frames the client does not have yet, in order; advances the offset past them.
    fn unseen(&mut self, frames: &[Frame]) -> Vec<Out> {
        let mut out = Vec::with_capacity(frames.len());
        for frame in frames {
            if self.offset.is_some_and(|offset| frame.id <= offset) {
                continue;
            }
            out.push(Out::Text(frame.text.clone()));
            self.offset = Some(frame.id);
        }
        out
    }
}

/// A polling payload: packets joined by the record separator; binary messages as `b<base64>`.
fn encode_payload(frames: Vec<Out>) -> String {
    let mut payload = String::new();
    for (i, frame) in frames.into_iter().enumerate() {
        if i > 0 {
            payload.push(PAYLOAD_SEPARATOR);
        }
        match frame {
            Out::Text(text) => payload.push_str(&text),
            Out::Binary(bytes) => payload.push_str(&engineio::encode_binary_for_polling(&bytes)),
        }
    }
    payload
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.me = Some(ctx.address());
        self.schedule_ping(ctx);
        self.connect_deadline = Some(ctx.run_later(self.settings().connect_timeout, |act, ctx| {
            if act.sockets.is_empty() && !act.settings().engine_echo {
                act.close(ctx, DisconnectReason::ConnectTimeout);
            }
        }));
        ctx.run_interval(self.settings().record_refresh, |act, _| {
            for socket in act.sockets.values() {
                if let Socket::Joined(Joined {
                    record: Some(record),
                    ..
                }) = socket
                {
                    act.parts.recovery.do_send(Keep(record.clone()));
                }
            }
        });
        debug!("session opened eio_sid={}", self.eio_sid);
    }

    fn stopping(&mut self, ctx: &mut Self::Context) -> Running {
        // Stopped from outside (the system is stopping): end as a shutdown does.
        self.close(ctx, DisconnectReason::ServerShuttingDown);
        // A lingering session's sid is forgotten when it stops.
        self.parts
            .registry
            .do_send(Remove(self.eio_sid.to_string()));
        Running::Stop
    }
}

impl Handler<WsEvent> for Session {
    type Result = ();

    fn handle(&mut self, WsEvent { conn, kind }: WsEvent, ctx: &mut Self::Context) {
        let main = matches!(&self.transport, Transport::WebSocket { conn: c, .. } if *c == conn);
        let probe = self
            .upgrade
            .as_ref()
            .is_some_and(|probe| probe.conn == conn);
        match kind {
            WsEventKind::Attached(addr) => self.on_attached(conn, addr, ctx),
            WsEventKind::Text(text) if main => self.on_text(&text, ctx),
            WsEventKind::Text(text) if probe => self.on_probe_text(&text, ctx),
            WsEventKind::Binary(bytes) if main => self.on_binary(bytes, ctx),
            WsEventKind::Binary(_) if probe => self.on_probe_text("", ctx),
            WsEventKind::Ended(end) if main => {
                // The WebSocket is already closing: no close frame to send.
                self.transport = Transport::Connecting {
                    conn: u64::MAX,
                    pending: Vec::new(),
                };
                let reason = match end {
                    WsEnd::Closed => DisconnectReason::TransportClose,
                    WsEnd::TooBig => DisconnectReason::MessageTooBig,
                    WsEnd::Error => DisconnectReason::TransportError,
                };
                self.close(ctx, reason);
            }
            WsEventKind::Ended(_) if probe => {
                if let Some(probe) = self.upgrade.take() {
                    ctx.cancel_future(probe.timeout);
                }
            }
            // From a WebSocket that is no longer this session's.
            _ => {}
        }
    }
}

impl Handler<Poll> for Session {
    type Result = Result<PollAnswer, PollRefused>;

    fn handle(&mut self, _: Poll, ctx: &mut Self::Context) -> Self::Result {
        if self.pong_overdue() {
            self.close(ctx, DisconnectReason::PingTimeout);
        }
        if self.lingering {
            // The GET that was on its way when the client closed: its noop, then the session is gone.
            self.lingering = false;
            self.parts
                .registry
                .do_send(Remove(self.eio_sid.to_string()));
            ctx.stop();
            return Ok(PollAnswer::Now("6".to_owned()));
        }
        if self.closed.is_some() {
            return Err(PollRefused::Gone);
        }
        let probed = self.upgrade.as_ref().is_some_and(|probe| probe.probed);
        let Transport::Polling { waiting, queue, .. } = &mut self.transport else {
            return Err(PollRefused::WrongTransport);
        };
        if waiting.is_some() {
            // A second GET while one waits: the first ends with a close, the second is refused.
            self.close(ctx, DisconnectReason::TransportError);
            return Err(PollRefused::Duplicate);
        }
        if probed {
            return Ok(PollAnswer::Now("6".to_owned()));
        }
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let (answer, receiver) = oneshot::channel();
        *waiting = Some(Waiting { ticket, answer });
        if !queue.is_empty() {
            self.flush_poll();
        }
        Ok(PollAnswer::Later {
            ticket,
            answer: receiver,
        })
    }
}

impl Handler<FlushPoll> for Session {
    type Result = ();

    fn handle(&mut self, _: FlushPoll, ctx: &mut Self::Context) {
        self.flush_scheduled = false;
        if self.overflowed {
            debug!(
                "polling client does not take its packets eio_sid={}",
                self.eio_sid
            );
            return self.close(ctx, DisconnectReason::SlowConsumer);
        }
        if !self.flush_poll() {
            debug!(
                "poll connection closed prematurely eio_sid={}",
                self.eio_sid
            );
            self.close(ctx, DisconnectReason::TransportError);
        }
    }
}

impl Handler<PollAbandoned> for Session {
    type Result = ();

    fn handle(&mut self, PollAbandoned(ticket): PollAbandoned, ctx: &mut Self::Context) {
        let abandoned = matches!(&self.transport, Transport::Polling { waiting: Some(w), .. } if w.ticket == ticket);
        if abandoned {
            debug!(
                "poll connection closed prematurely eio_sid={}",
                self.eio_sid
            );
            self.close(ctx, DisconnectReason::TransportError);
        }
    }
}

impl Handler<PostBegin> for Session {
    type Result = Result<(), PollRefused>;

    fn handle(&mut self, _: PostBegin, ctx: &mut Self::Context) -> Self::Result {
        if self.closed.is_some() {
            return Err(PollRefused::Gone);
        }
        let Transport::Polling {
            post_in_progress, ..
        } = &mut self.transport
        else {
            return Err(PollRefused::WrongTransport);
        };
        if mem::replace(post_in_progress, true) {
            self.close(ctx, DisconnectReason::TransportError);
            return Err(PollRefused::Duplicate);
        }
        Ok(())
    }
}

impl Handler<PostBody> for Session {
    type Result = Result<(), PollRefused>;

    fn handle(&mut self, PostBody(body): PostBody, ctx: &mut Self::Context) -> Self::Result {
        if let Transport::Polling {
            post_in_progress, ..
        } = &mut self.transport
        {
            *post_in_progress = false;
        }
        let Ok(text) = std::str::from_utf8(&body) else {
            self.close(ctx, DisconnectReason::ParseError);
            return Err(PollRefused::Malformed);
        };
        // Packets before a bad one are still processed, as Node does (reference §1.2).
        for packet in engineio::decode_payload(text) {
            if self.closed.is_some() {
                break;
            }
            match packet {
                Ok(packet) => self.on_eio(packet, ctx),
                Err(err) => {
                    debug!("bad polling payload eio_sid={}: {err}", self.eio_sid);
                    self.close(ctx, DisconnectReason::ParseError);
                    return Err(PollRefused::Malformed);
                }
            }
        }
        Ok(())
    }
}

impl Handler<PostFailed> for Session {
    type Result = ();

    fn handle(&mut self, PostFailed(reason): PostFailed, ctx: &mut Self::Context) {
        self.close(ctx, reason);
    }
}

impl Handler<GoAway> for Session {
    type Result = ();

    fn handle(&mut self, why: GoAway, ctx: &mut Self::Context) {
        let reason = match why {
            GoAway::ShuttingDown => DisconnectReason::ServerShuttingDown,
            GoAway::TooSlow => DisconnectReason::SlowConsumer,
        };
        self.close(ctx, reason);
    }
}

impl Handler<Deliver> for Session {
    type Result = ();

    fn handle(&mut self, deliver: Deliver, ctx: &mut Self::Context) {
        if self.outbound.is_aborted() {
            return self.close(ctx, DisconnectReason::SlowConsumer);
        }
        match self.sockets.get_mut(&deliver.nsp) {
            Some(Socket::Joined(joined)) => {
                self.outbound.taken(deliver.bytes);
                let frames = joined.unseen(&deliver.frames);
                self.write_all(frames);
            }
            // Still counted as on its way until written, so a slow replay stays within the bound.
            Some(Socket::Joining { held, .. }) => {
                self.held_bytes += deliver.bytes;
                held.push(deliver);
            }
            None => self.outbound.taken(deliver.bytes),
        }
    }
}
