//! Hub: the index of live sockets, and the fan-out of log entries to them.
//!
//! Owns: per namespace, `connection → (member, its rooms)` and `room → {connection}` ([`index`]).
//! Receives: Register, Unregister, Join, Leave (from Session); Fanout, DisconnectAll, DisconnectSockets (from
//! StreamBridge); CountSessions, CountSockets (admin UI).
//! Sends: Deliver to sessions; Disconnect(SlowConsumer) to a session it gives up on (the session counts
//! it); DisconnectSocket to the sockets a DISCONNECT_SOCKETS request names. Writes the live frames
//! of sockets whose [`lane`] is open straight to their WebSocket. Never touches the log.
//!
//! Each entry is framed **once** (`42["notification",{…},"<id>"]`) into a shared, immutable buffer;
//! delivering it is one `write` of it to the socket when the socket's lane is open (a WebSocket
//! past its recovery handover), else a reference-count increment and one mailbox message per batch
//! to the session.
//! Each entry carries its [`Target`]; a batch of broadcasts is shared by every member of the namespace.
//! A batch with narrower entries goes to its recipients only (socket.io-adapter's `apply`: the members
//! of an entry's rooms, each once, minus its `except`), found through the room index, so its cost
//! grows with its recipients, not with the sockets; recipients that get the same entries share one
//! batch, and each gets one Deliver per batch, in log order.
//!
//! The Hub also enforces the slow-consumer bound (DESIGN.md §5) on each session's [`Outbound`]: past
//! the bound it stops delivering to it and gives up on it (the connection is dropped without
//! flushing), and the client recovers what it missed on reconnect.

mod count_sockets;
mod disconnect_sockets;
mod index;
pub mod lane;

pub use self::count_sockets::CountSockets;
pub use self::disconnect_sockets::DisconnectSockets;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use actix::WeakAddr;
use actix_web::web::Bytes;
use bytestring::ByteString;
use log::{debug, trace, warn};

use super::disconnect::{Disconnect, DisconnectSocket, SessionError};
use super::outbound::{wire_len, Out, Outbound};
use super::ws_sink::{encode_frame, encode_message, Opcode};
use crate::config::Parser;
use crate::metrics::Metrics;
use crate::protocol::ids::StreamId;
use crate::protocol::offset::Offset;
use crate::protocol::target::{Namespace, Room, Target};
use crate::protocol::{socketio, socketio_msgpack};
use crate::store::LogEntry;
use index::NamespaceIndex;
use lane::Lane;

/// Names one session inside this process; never leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

impl ConnId {
    /// A process-unique id.
    pub fn next() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// One framed broadcast: its Engine.IO messages and the log id it carries as offset, shared by
/// every recipient.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The entry's log id, so a session can skip what it already sent (recovery handover).
    pub id: StreamId,
    /// The shard (stream) of `id`: ids of different shards are not ordered.
    pub shard: usize,
    /// The recovery offset a client is up to date to once it has this frame (the one the packet
    /// carries, unless volatile).
    pub offset: Arc<Offset>,
    /// The packet: `42[…,"<id>"]` as text (`45N-[…]` for a binary event, its attachments after
    /// it), or one binary message with the msgpack parser.
    pub packet: Out,
    /// A binary event's attachments, each one binary message, in order; empty otherwise.
    pub attachments: Arc<[Bytes]>,
}

impl Frame {
    /// A frame of one text packet.
    pub fn text(id: StreamId, text: ByteString) -> Frame {
        Frame {
            id,
            shard: 0,
            offset: Arc::new(Offset::one(id)),
            packet: Out::Text(text),
            attachments: Arc::from([]),
        }
    }

    /// Its Engine.IO messages, in the order they are written.
    pub fn messages(&self) -> impl Iterator<Item = Out> + '_ {
        std::iter::once(self.packet.clone())
            .chain(self.attachments.iter().cloned().map(Out::Binary))
    }

    /// Its payload bytes, all messages together.
    pub fn len(&self) -> usize {
        self.packet.len() + self.attachments.iter().map(Bytes::len).sum::<usize>()
    }

    /// The same packet as `socket.io-msgpack-parser` writes it: one binary message, the
    /// attachments inline (`None` if the text is not a Socket.IO packet).
    pub fn to_msgpack(&self) -> Option<Frame> {
        let Out::Text(text) = &self.packet else {
            return Some(self.clone());
        };
        let packet = socketio::decode(text.strip_prefix('4')?).ok()?;
        let bytes = socketio_msgpack::encode(&packet, &self.attachments);
        Some(Frame {
            id: self.id,
            shard: self.shard,
            offset: self.offset.clone(),
            packet: Out::Binary(Bytes::from(bytes)),
            attachments: Arc::from([]),
        })
    }

    /// Its size on the wire, all messages together (as [`Outbound`] counts it).
    pub fn wire_len(&self) -> usize {
        wire_len(self.packet.len())
            + self
                .attachments
                .iter()
                .map(|a| wire_len(a.len()))
                .sum::<usize>()
    }
}

/// Frames for a session, in log order.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Deliver {
    /// The namespace they are emitted on.
    pub nsp: Namespace,
    /// The batch, shared by every recipient of the same frames.
    pub frames: Arc<[Frame]>,
    /// Its size on the wire, as counted in the recipient's [`Outbound::delivered`].
    pub bytes: usize,
}

/// Start delivering what is emitted on `nsp` to `session`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    /// The session's connection.
    pub conn: ConnId,
    /// The namespace joined.
    pub nsp: Namespace,
    /// Where to deliver, say it was given up on, and say the server disconnects the socket.
    pub session: Box<dyn SessionHandle>,
    /// What is on its way to that client.
    pub outbound: Arc<Outbound>,
    /// The rooms it is in from the start (`user:<sub>`); the others follow with [`Join`] once known.
    pub rooms: Vec<Room>,
    /// Its session's lane: whether the Hub writes its live frames itself.
    pub lane: Arc<Lane>,
}

/// Put a registered socket in rooms (rooms it is in already are skipped).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Join {
    /// The session's connection.
    pub conn: ConnId,
    /// The socket's namespace.
    pub nsp: Namespace,
    /// The rooms.
    pub rooms: Vec<Room>,
}

/// Take a registered socket out of rooms (rooms it is not in are skipped).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Leave {
    /// The session's connection.
    pub conn: ConnId,
    /// The socket's namespace.
    pub nsp: Namespace,
    /// The rooms.
    pub rooms: Vec<Room>,
}

/// How the Hub reaches a registered socket's session: one address for its three messages. Each
/// actix address (and each `Recipient`, a boxed one) allocates its own sender state, so one handle
/// instead of three recipients is four allocations fewer per registered socket.
pub trait SessionHandle: Send {
    /// Frames to write.
    fn deliver(&self, msg: Deliver);
    /// The session must end (the Hub gave up on it, or every socket is disconnected).
    fn close(&self, msg: Disconnect);
    /// The server disconnects one of its sockets (a DISCONNECT_SOCKETS request).
    fn kick(&self, msg: DisconnectSocket);
}

/// An actor that takes what the Hub sends a session (the bound both handles below share).
pub trait SessionActor:
    Actor<Context = Context<Self>> + Handler<Deliver> + Handler<Disconnect> + Handler<DisconnectSocket>
{
}

impl<A> SessionActor for A where
    A: Actor<Context = Context<A>>
        + Handler<Deliver>
        + Handler<Disconnect>
        + Handler<DisconnectSocket>
{
}

impl<A: SessionActor> SessionHandle for Addr<A> {
    fn deliver(&self, msg: Deliver) {
        self.do_send(msg);
    }
    fn close(&self, msg: Disconnect) {
        self.do_send(msg);
    }
    fn kick(&self, msg: DisconnectSocket) {
        self.do_send(msg);
    }
}

/// What Sessions register with: a weak address costs no allocation of its own (a strong one is two:
/// actix gives every sender its own parking state), and the Registry keeps the session alive. A
/// message to a session that has stopped is dropped, as a strong address's would be. Upgraded per
/// message: only what goes through the Session's mailbox (polling, a joining socket, a kick), not
/// the lane's direct writes.
impl<A: SessionActor> SessionHandle for WeakAddr<A> {
    fn deliver(&self, msg: Deliver) {
        if let Some(addr) = self.upgrade() {
            addr.deliver(msg);
        }
    }
    fn close(&self, msg: Disconnect) {
        if let Some(addr) = self.upgrade() {
            addr.close(msg);
        }
    }
    fn kick(&self, msg: DisconnectSocket) {
        if let Some(addr) = self.upgrade() {
            addr.kick(msg);
        }
    }
}

/// Stop delivering what is emitted on `nsp` to the connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister {
    /// The session's connection.
    pub conn: ConnId,
    /// The namespace left.
    pub nsp: Namespace,
}

/// Entries read from the log, in log order, to deliver to every matching session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Fanout(pub Vec<LogEntry>);

/// End every registered session for this reason (the log was replaced under them). Each session
/// unregisters itself as it closes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DisconnectAll(pub SessionError);

/// How many sockets are registered (what an orderly shutdown waits on).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CountSessions;

/// A registered socket.
struct Member {
    session: Box<dyn SessionHandle>,
    outbound: Arc<Outbound>,
    lane: Arc<Lane>,
}

/// The actor.
pub struct Hub {
    /// Who listens on which namespace, and in which rooms.
    namespaces: HashMap<Namespace, NamespaceIndex<Member>>,
    /// Bytes a client may have on its way before it is given up on.
    max_pending: usize,
    /// `hub_sessions`, the unframed-entry and slow-consumer counters.
    metrics: Arc<Metrics>,
    /// How each entry is framed (`HUB_PARSER`).
    parser: Parser,
}

impl Hub {
    /// An index that gives up on clients with more than `max_pending` bytes on their way.
    pub fn new(max_pending: usize, metrics: Arc<Metrics>) -> Hub {
        Hub {
            namespaces: HashMap::new(),
            max_pending,
            metrics,
            parser: Parser::Json,
        }
    }

    /// Frames entries for clients of `parser` (the JSON parser unless told).
    pub fn with_parser(mut self, parser: Parser) -> Hub {
        self.parser = parser;
        self
    }

    fn count(&self) -> usize {
        self.namespaces.values().map(NamespaceIndex::len).sum()
    }

    fn counted(&self) {
        self.metrics.sockets.set(self.count() as i64);
    }

    /// Sends `frames` to `member`, unless it is past the bound: then gives up on it. Written to its
    /// socket here when its lane is open for `nsp`, else sent to its session.
    fn deliver(
        &self,
        member: &Member,
        conn: ConnId,
        nsp: &Namespace,
        (frames, bytes): (Arc<[Frame]>, usize),
    ) -> Delivered {
        let pending = member.outbound.pending();
        if pending + bytes > self.max_pending {
            debug!("slow consumer dropped conn={conn:?} pending={pending}");
            member.outbound.give_up();
            // Nothing more is written to it directly, in any namespace (its Session drops the rest).
            member.lane.lock().end();
            // The session must end: no more broadcasts reach it, so staying would be a silent gap.
            member.session.close(Disconnect(SessionError::SlowConsumer));
            return Delivered::GaveUp;
        }
        let mut lane = member.lane.lock();
        if let Some(link) = lane.direct_or_relay(nsp) {
            // A refused write is a socket that is ending: its session closes the lane and leaves.
            link.send_with(|out| encode_frames(out, &frames));
            return Delivered::Direct;
        }
        member.outbound.delivered(bytes);
        member.session.deliver(Deliver {
            nsp: nsp.clone(),
            frames,
            bytes,
        });
        Delivered::Relayed
    }

    /// Counts a batch written directly to `sockets` sockets: once per batch, not per socket (the
    /// counters are atomics shared with every worker thread; a batch's frames have one lag, read
    /// from one clock reading per fan-out). Relayed batches are counted by their sessions.
    fn count_direct(&self, frames: &[Frame], bytes: usize, sockets: u64, now_ms: u64) {
        let metrics = &self.metrics;
        if !metrics.enabled || sockets == 0 {
            return;
        }
        let delivered = frames.len() as u64 * sockets;
        metrics.deliveries.add(delivered);
        metrics.deliveries_direct.add(delivered);
        metrics.delivered_bytes.add(bytes as u64 * sockets);
        for frame in frames {
            metrics
                .delivery_lag
                .observe_ms_times(now_ms.saturating_sub(frame.id.ms), sockets);
        }
    }
}

/// The frames shared by the recipients of the same entries, framed and measured once, and how
/// many of them the Hub wrote it to itself.
struct Batch {
    frames: Arc<[Frame]>,
    bytes: usize,
    direct: u64,
}

/// What became of a batch for one socket.
enum Delivered {
    /// Written to its WebSocket by the Hub (counted by [`Hub::count_direct`]).
    Direct,
    /// Sent to its session.
    Relayed,
    /// The socket was past the slow-consumer bound: given up on, to be removed.
    GaveUp,
}

/// Appends the WebSocket frames of `frames`' messages, in order (RFC 6455 §5.2, as the session's
/// own writes encode them).
fn encode_frames(out: &mut Vec<u8>, frames: &[Frame]) {
    for frame in frames {
        encode_message(out, &frame.packet);
        for attachment in frame.attachments.iter() {
            encode_frame(out, Opcode::Binary, attachment);
        }
    }
}

impl Actor for Hub {
    type Context = Context<Self>;
}

impl Handler<Register> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Register, _: &mut Self::Context) {
        let member = Member {
            session: msg.session,
            outbound: msg.outbound,
            lane: msg.lane,
        };
        self.namespaces
            .entry(msg.nsp)
            .or_default()
            .insert(msg.conn, member, msg.rooms);
        self.counted();
    }
}

impl Handler<Join> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Join, _: &mut Self::Context) {
        if let Some(index) = self.namespaces.get_mut(&msg.nsp) {
            index.join(msg.conn, msg.rooms);
        }
    }
}

impl Handler<Leave> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Leave, _: &mut Self::Context) {
        if let Some(index) = self.namespaces.get_mut(&msg.nsp) {
            index.leave(msg.conn, &msg.rooms);
        }
    }
}

impl Handler<Unregister> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Unregister, _: &mut Self::Context) {
        if let Some(index) = self.namespaces.get_mut(&msg.nsp) {
            index.remove(msg.conn);
            if index.is_empty() {
                self.namespaces.remove(&msg.nsp);
            }
        }
        self.counted();
    }
}

impl Handler<Fanout> for Hub {
    type Result = ();

    fn handle(&mut self, Fanout(entries): Fanout, _: &mut Self::Context) {
        // Entries arrive in log order; group them per namespace, keeping that order.
        let mut batches: Vec<(Namespace, Vec<(Target, Frame)>)> = Vec::new();
        for entry in entries {
            let Some(frame) = frame_entry(&entry, self.parser) else {
                warn!("log entry is not an event array, skipped id={}", entry.id);
                self.metrics.entries_unframed.inc();
                continue;
            };
            let nsp = &entry.target.nsp;
            match batches.iter_mut().find(|(name, _)| name == nsp) {
                Some((_, frames)) => frames.push((entry.target, frame)),
                None => batches.push((nsp.clone(), vec![(entry.target, frame)])),
            }
        }
        // One clock read per fan-out, for the delivery lag of what is written here.
        let now_ms = if self.metrics.enabled {
            crate::store::now_ms()
        } else {
            0
        };
        for (nsp, framed) in batches {
            let Some(index) = self.namespaces.get(&nsp) else {
                continue;
            };
            let mut gone = Vec::new();
            if framed.iter().all(|(target, _)| target.is_broadcast()) {
                // Framed and measured once, shared by every member.
                let shared: Arc<[Frame]> = framed.into_iter().map(|(_, frame)| frame).collect();
                let bytes = wire_bytes(&shared);
                let mut direct = 0;
                for (conn, member) in index.members() {
                    match self.deliver(member, conn, &nsp, (shared.clone(), bytes)) {
                        Delivered::Direct => direct += 1,
                        Delivered::Relayed => {}
                        Delivered::GaveUp => gone.push(conn),
                    }
                }
                self.count_direct(&shared, bytes, direct, now_ms);
            } else {
                let targets: Vec<&Target> = framed.iter().map(|(target, _)| target).collect();
                let recipients = index.recipients(&targets);
                trace!(
                    "fanout nsp={nsp} entries={} recipients={} visited={}",
                    framed.len(),
                    recipients.picks.len(),
                    recipients.visited
                );
                // Recipients of the same entries share one batch, framed and measured once.
                let mut batches: HashMap<Vec<usize>, Batch> = HashMap::new();
                for (conn, picks) in recipients.picks {
                    let Some(member) = index.get(conn) else {
                        continue;
                    };
                    let batch = batches.entry(picks).or_insert_with_key(|picks| {
                        let frames: Arc<[Frame]> =
                            picks.iter().map(|&at| framed[at].1.clone()).collect();
                        let bytes = wire_bytes(&frames);
                        Batch {
                            frames,
                            bytes,
                            direct: 0,
                        }
                    });
                    match self.deliver(member, conn, &nsp, (batch.frames.clone(), batch.bytes)) {
                        Delivered::Direct => batch.direct += 1,
                        Delivered::Relayed => {}
                        Delivered::GaveUp => gone.push(conn),
                    }
                }
                for batch in batches.values() {
                    self.count_direct(&batch.frames, batch.bytes, batch.direct, now_ms);
                }
            }
            if let Some(index) = self.namespaces.get_mut(&nsp) {
                for conn in gone {
                    index.remove(conn);
                }
            }
        }
        // Slow consumers may have left a namespace empty (a few namespaces: cheap either way).
        self.namespaces.retain(|_, index| !index.is_empty());
        self.counted();
    }
}

impl Handler<DisconnectAll> for Hub {
    type Result = ();

    fn handle(&mut self, DisconnectAll(why): DisconnectAll, _: &mut Self::Context) {
        // A session in several namespaces is told once per namespace; it closes on the first.
        for index in self.namespaces.values() {
            for (_, member) in index.members() {
                // What the log has after this goes through the Session, which drops it once closed.
                member.lane.lock().end();
                member.session.close(Disconnect(why.clone()));
            }
        }
    }
}

impl Handler<CountSessions> for Hub {
    type Result = usize;

    fn handle(&mut self, _: CountSessions, _: &mut Self::Context) -> usize {
        self.count()
    }
}

/// The size of a batch on the wire.
fn wire_bytes(frames: &[Frame]) -> usize {
    frames.iter().map(Frame::wire_len).sum()
}

/// The Engine.IO frames of a log entry, as socket.io writes a broadcast (Socket.IO §2.1, §2.2, §3.2):
/// `42[…,"<id>"]`, its id appended as the recovery offset; a volatile entry without the offset
/// (`42[…]`, as socket.io-adapter's `addOffsetIfNecessary` leaves it); with attachments a
/// BINARY_EVENT `45N-[…,"<id>"]` followed by its N binary messages. `None` if `args` is not an event
/// array. With the msgpack parser: one binary message `{type:2, data:[…,"<id>"], nsp}`, its binary
/// values inline.
pub fn frame_entry(entry: &LogEntry, parser: Parser) -> Option<Frame> {
    let offset = entry.offset();
    let text = socketio::event_frame(
        entry.target.nsp.as_str(),
        &entry.args,
        (!entry.volatile).then(|| offset.to_string()).as_deref(),
        entry.attachments.len(),
    )?;
    let frame = Frame {
        id: entry.id,
        shard: entry.shard,
        offset,
        packet: Out::Text(ByteString::from(text)),
        attachments: entry.attachments.clone(),
    };
    match parser {
        Parser::Json => Some(frame),
        // Converted from the JSON frame, so every kind of entry framed for JSON clients (binary
        // ones with their attachments too) reaches msgpack clients the same; once per entry.
        Parser::Msgpack => frame.to_msgpack(),
    }
}

#[cfg(test)]
mod tests;
