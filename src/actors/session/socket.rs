//! The state of one namespace socket, without the actor: joining (held live frames and a replay
//! cursor) then joined. Its methods take an input and return the frames to write, so the handover of
//! DESIGN.md §3 is tested on literal frames here, without starting anything.
//!
//! ```text
//! Admitting ──admitted──► Joining { held, replay } ──replay steps──► complete ──► Joined { offset }
//!   (the application decides)  (registered with the Hub: live batches are held)   (live batches written,
//!                                                                                  ids ≤ offset skipped)
//! replay: first page ─steps─► page written ─Next::Read─► (page read) ─on_replay_page─► steps … ─► Done
//!                      │                     └─ read failed ─► replay_failed ─► (fresh Opened) ─► Done
//!                      └─ no room, and the client took nothing for the stall bound ─► Next::Stalled
//! ```
//!
//! A replay holds one page of the log at a time: the next is read only once the client took the
//! previous one (the actor steps while less than its high-water mark is on the way), so a client
//! that does not read pins a page, not the backlog; one that takes nothing for the stall bound gives
//! its replay up ([`replay`]).

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::{json, Value};

use actix_web::web::Bytes;

use crate::actors::hub::{Deliver, Frame};
use crate::actors::outbound::Out;
use crate::actors::recovery::{Opened, ReplayCursor, ReplaySlot};
use crate::app::Identity;
use crate::config::Parser;
use crate::protocol::ids::{Pid, Sid};
use crate::protocol::offset::Offset;
use crate::protocol::socketio::{self, PacketKind, SioPacket};
use crate::protocol::socketio_msgpack;
use crate::protocol::target::{Namespace, Room};
use crate::rooms::{self, RoomRefusal};
use crate::store::{LogEntry, SessionRecord};
use acks::Acks;
use replay::Waiting;
pub(crate) use replay::{Next, Pace};

/// The event a fresh session receives right after CONNECT, carrying the log tip as its (last, string)
/// argument. The official client stores the last string argument of every event as its recovery
/// offset, so even a client that drops before its first notification can resume (DESIGN.md §3).
pub const OFFSET_EVENT: &str = "hub:offset";

/// A namespace's socket.
pub(crate) enum NsSocket {
    /// CONNECT received; the application is deciding. The Hub and Recovery have not seen it.
    Admitting {
        /// The CONNECT's auth, for the application's `on_connect`.
        auth: Value,
    },
    /// Admitted and registered: Recovery asked, then the replay written in steps; live batches held.
    Joining(Joining),
    /// Joined: live frames go straight out.
    Joined(Joined),
}

/// A socket between its registration and its CONNECT reply.
pub(crate) struct Joining {
    /// Live batches that arrived meanwhile, released after the replay.
    held: Vec<Deliver>,
    /// What Recovery answered; `None` until it did.
    replay: Option<Box<Replay>>,
    auth: Value,
    /// Who the application admitted.
    identity: Identity,
    /// The rooms the Hub has for it: `user:<sub>` from its Register, then its record's once
    /// Recovery answered (see [`NsSocket::on_opened`]).
    hub_rooms: Vec<Room>,
}

/// A resume's missed entries, read a page and written a step at a time: a transport queues without
/// bound, so a large replay read or written at once would sit in memory whole.
struct Replay {
    sid: Sid,
    pid: Pid,
    /// The record to keep once joined (a resumed one as loaded).
    record: SessionRecord,
    recovered: bool,
    /// The newest entry read so far (per shard); the socket's offset once joined.
    offset: Option<Offset>,
    /// The current page's entries not written yet.
    missed: VecDeque<LogEntry>,
    /// Entries replayed (for the log).
    count: usize,
    /// Pages still to read.
    pages: Pages,
    /// Its replay slot, released when the replay is dropped (joined, left, or failed).
    _slot: Option<ReplaySlot>,
    /// Since when, and with how much on its way, the replay has waited for a client that took
    /// nothing (see [`Pace`]); `None` while the client keeps up.
    waiting: Option<Waiting>,
}

/// The pages of a replay after the current one.
enum Pages {
    /// More to read, from here.
    More(ReplayCursor),
    /// The next page is being read.
    Reading,
    /// The last page was read.
    End,
}

/// A joined socket.
pub(crate) struct Joined {
    /// The acks the server asked for; boxed, and only once it asked: few applications emit
    /// events asking for one, and every joined socket would carry 56 bytes for it.
    acks: Option<Box<Acks>>,
    /// Its session record, when recovery is on.
    pub record: Option<SessionRecord>,
    /// The offset of the newest entry written to the client (or known to it); frames it covers
    /// are skipped.
    offset: Option<Offset>,
    /// Who the application admitted: handed to it with every event.
    pub identity: Identity,
    /// The rooms it is in (its sid room, `user:<sub>` with a token, and those it joined), as the
    /// Hub has them; mirrored in `record.rooms`.
    rooms: Vec<Room>,
    /// How many of `rooms` were given rather than joined (its sid room, `user:<sub>`): not
    /// counted against the room limit.
    given: usize,
}

/// How the Hub's rooms for a socket change once Recovery answered.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RoomChange {
    /// Rooms to put it in.
    pub join: Vec<Room>,
    /// Rooms to take it out of (a fresh session that replaced a failed resume).
    pub leave: Vec<Room>,
}

/// What a live batch means for a socket.
#[derive(Debug)]
pub(crate) enum Live {
    /// Write these now (the batch is taken).
    Write(Batch),
    /// Held until the join completes (still counted as on its way).
    Held,
    /// Not for this socket (the batch is taken, nothing written).
    Dropped,
}

/// A live batch for a joined socket: the delivered frames, but those the client has already (the
/// recovery handover's), borrowed from the shared batch: writing it clones no frame.
#[derive(Debug)]
pub(crate) struct Batch {
    frames: Arc<[Frame]>,
    /// Positions in `frames` the client has; empty (and unallocated) once the handover is over.
    skipped: Vec<usize>,
}

impl Batch {
    /// Each Engine.IO message to write, in order.
    pub(crate) fn for_each_message(&self, mut write: impl FnMut(&Out)) {
        for (at, frame) in self.frames.iter().enumerate() {
            if self.skipped.contains(&at) {
                continue;
            }
            write(&frame.packet);
            for attachment in frame.attachments.iter() {
                write(&Out::Binary(attachment.clone()));
            }
        }
    }

    /// The messages, as owned frames (for the polling queue).
    pub(crate) fn to_vec(&self) -> Vec<Out> {
        let mut out = Vec::with_capacity(self.frames.len());
        self.for_each_message(|message| out.push(message.clone()));
        out
    }

    /// Whether any frame is written (not all were skipped).
    pub(crate) fn wrote_any(&self) -> bool {
        self.skipped.len() < self.frames.len()
    }

    /// The whole delivered batch, skipped frames included.
    pub(crate) fn frames(&self) -> &[Frame] {
        &self.frames
    }
}

/// A join completed: what to write, in order, around the application's `on_connect` events.
pub(crate) struct Completed {
    /// The CONNECT reply, then (fresh sessions) the offset event.
    pub reply: Vec<Out>,
    /// The held live frames the client does not have yet, to write after `on_connect`'s events.
    pub held: Vec<Out>,
    /// Bytes of the held batches, as counted when they were delivered.
    pub held_bytes: usize,
    /// The CONNECT's auth.
    pub auth: Value,
    /// For the log: the socket id, whether it resumed, and how many entries were replayed.
    pub sid: Sid,
    /// Whether it resumed a previous session.
    pub recovered: bool,
    /// Entries replayed before the reply.
    pub replayed: usize,
    /// On a resume: the record to keep live from now on. Recovery writes no live copy while the
    /// replay is being written, so an instance that dies mid-replay leaves nothing resumable (a second
    /// replay from the old offset would duplicate what the client already holds).
    pub keep: Option<SessionRecord>,
}

/// What a socket that goes leaves behind.
#[derive(Debug, PartialEq)]
pub(crate) struct Left {
    /// Whether the Hub knows it (to unregister).
    pub registered: bool,
    /// Its session record, if it had joined with recovery on.
    pub record: Option<SessionRecord>,
    /// Bytes of live batches it held, still counted as on their way.
    pub held_bytes: usize,
}

impl NsSocket {
    /// A CONNECT the application is asked about.
    pub(crate) fn admitting(auth: Value) -> NsSocket {
        NsSocket::Admitting { auth }
    }

    /// The rooms a socket admitted as `identity` is registered with: `user:<sub>` when it has a
    /// `sub` (its sid room, and a resumed record's rooms, are known only once Recovery answered).
    pub(crate) fn registered_rooms(identity: &Identity) -> Vec<Room> {
        identity.user_room().map(Room::from).into_iter().collect()
    }

    /// Admitted as `identity` and registered with [`Self::registered_rooms`]: from now on live
    /// batches are held until the join completes.
    pub(crate) fn admitted(&mut self, identity: Identity) {
        if let NsSocket::Admitting { auth } = self {
            *self = NsSocket::Joining(Joining {
                held: Vec::new(),
                replay: None,
                auth: std::mem::take(auth),
                hub_rooms: NsSocket::registered_rooms(&identity),
                identity,
            });
        }
    }

    /// Joined at once, without recovery (`HUB_RECOVERY=off`): the socket and its CONNECT reply
    /// `40{"sid":…}` (no pid: the client does not try to recover). It was registered with
    /// [`Self::registered_rooms`]; its sid room is the Hub's to add.
    pub(crate) fn joined_without_recovery(
        nsp: &Namespace,
        sid: Sid,
        identity: Identity,
        parser: Parser,
    ) -> (NsSocket, Out) {
        let ids = json!({ "sid": sid.as_str() });
        let reply = frame(parser, PacketKind::Connect, nsp, ids);
        let mut rooms = NsSocket::registered_rooms(&identity);
        rooms.insert(0, Room::from(sid.as_str()));
        let joined = Joined::new(None, None, identity, rooms);
        (NsSocket::Joined(joined), reply)
    }

    /// Who the application admitted (joining or joined); `None` while it is deciding.
    pub(crate) fn identity(&self) -> Option<&Identity> {
        match self {
            NsSocket::Admitting { .. } => None,
            NsSocket::Joining(joining) => Some(&joining.identity),
            NsSocket::Joined(joined) => Some(&joined.identity),
        }
    }

    /// A live batch from the Hub.
    pub(crate) fn on_live(&mut self, deliver: Deliver) -> Live {
        match self {
            NsSocket::Joined(joined) => {
                let skipped = joined.skip_seen(&deliver.frames);
                Live::Write(Batch {
                    frames: deliver.frames,
                    skipped,
                })
            }
            NsSocket::Joining(joining) => {
                joining.held.push(deliver);
                Live::Held
            }
            NsSocket::Admitting { .. } => Live::Dropped,
        }
    }

    /// The socket goes (the client left, or the session ends), in whatever state it is: what the
    /// actor must undo. Nothing more is written for it.
    pub(crate) fn leave(self) -> Left {
        match self {
            NsSocket::Admitting { .. } => Left {
                registered: false,
                record: None,
                held_bytes: 0,
            },
            NsSocket::Joining(joining) => Left {
                registered: true,
                held_bytes: joining.held.iter().map(|d| d.bytes).sum(),
                // A resume's claim took its record from the store: it goes back, else the owner's
                // next resume (the client still holds its pid and offset) would find nothing. A
                // fresh session's client never learnt its pid: nothing to keep.
                record: joining
                    .replay
                    .and_then(|replay| replay.recovered.then_some(replay.record)),
            },
            NsSocket::Joined(joined) => Left {
                registered: true,
                record: joined.record,
                held_bytes: 0,
            },
        }
    }

    /// Recovery's answer: the replay to write before the CONNECT reply. Also the fresh session that
    /// replaces a replay that failed ([`Self::replay_failed`]): what was held is kept. Returns how
    /// the Hub's rooms for the socket change: its record's rooms (its sid room, a resumed socket's
    /// joined rooms), which the actor tells the Hub before the replay's next read (see
    /// `Session::opened`).
    pub(crate) fn on_opened(&mut self, opened: Opened) -> RoomChange {
        let mut change = RoomChange::default();
        if let NsSocket::Joining(joining) = self {
            let rooms: Vec<Room> = opened
                .record
                .rooms
                .iter()
                .map(|r| Room::from(r.as_str()))
                .collect();
            change.join = rooms
                .iter()
                .filter(|r| !joining.hub_rooms.contains(r))
                .cloned()
                .collect();
            change.leave = joining
                .hub_rooms
                .iter()
                .filter(|r| !rooms.contains(r))
                .cloned()
                .collect();
            joining.hub_rooms = rooms;
            let count = opened.missed.len();
            joining.replay = Some(Box::new(Replay {
                sid: opened.sid,
                pid: opened.pid,
                record: opened.record,
                recovered: opened.recovered,
                offset: opened.offset,
                missed: opened.missed.into(),
                count,
                pages: opened.more.map_or(Pages::End, Pages::More),
                _slot: opened.slot,
                waiting: None,
            }));
        }
        change
    }

    /// The replay is written: the CONNECT reply (the same sid and pid on a resume, reference §3.2),
    /// the offset event for a fresh session, and the held frames the client does not have yet. The
    /// socket is joined from here on. `None` if it was not joining with a finished replay.
    pub(crate) fn complete(&mut self, nsp: &Namespace, parser: Parser) -> Option<Completed> {
        let finished = matches!(
            self,
            NsSocket::Joining(Joining { replay: Some(replay), .. })
                if replay.missed.is_empty() && matches!(replay.pages, Pages::End)
        );
        if !finished {
            return None;
        }
        let NsSocket::Joining(Joining {
            held,
            replay: Some(replay),
            auth,
            identity,
            hub_rooms,
        }) = std::mem::replace(self, NsSocket::Admitting { auth: Value::Null })
        else {
            unreachable!("matched as joining with a replay above");
        };
        let ids = json!({ "sid": replay.sid.as_str(), "pid": replay.pid.as_str() });
        let mut reply = vec![frame(parser, PacketKind::Connect, nsp, ids)];
        if let (false, Some(tip)) = (replay.recovered, &replay.offset) {
            reply.push(frame(
                parser,
                PacketKind::Event,
                nsp,
                json!([OFFSET_EVENT, tip.to_string()]),
            ));
        }
        let keep = replay.recovered.then(|| replay.record.clone());
        let mut joined = Joined::new(Some(replay.record), replay.offset, identity, hub_rooms);
        let mut frames = Vec::new();
        let mut held_bytes = 0;
        for deliver in held {
            held_bytes += deliver.bytes;
            frames.extend(joined.unseen(&deliver.frames));
        }
        *self = NsSocket::Joined(joined);
        Some(Completed {
            reply,
            held: frames,
            held_bytes,
            auth,
            sid: replay.sid,
            recovered: replay.recovered,
            replayed: replay.count,
            keep,
        })
    }
}

impl Joined {
    fn new(
        record: Option<SessionRecord>,
        offset: Option<Offset>,
        identity: Identity,
        rooms: Vec<Room>,
    ) -> Joined {
        let given = rooms
            .iter()
            .filter(|room| rooms::check_name(room.as_str()) == Err(RoomRefusal::Reserved))
            .count();
        Joined {
            acks: None,
            record,
            offset,
            identity,
            rooms,
            given,
        }
    }

    /// The rooms it is in.
    pub(crate) fn rooms(&self) -> &[Room] {
        &self.rooms
    }

    /// Joins `room` (a name that passed [`rooms::check_name`] and the application's permission):
    /// `Ok(Some(room))` for the Hub and the record (which is updated), `Ok(None)` if it is in the
    /// room already, [`RoomRefusal::TooMany`] past `max` joined rooms.
    pub(crate) fn join_room(
        &mut self,
        room: &str,
        max: usize,
    ) -> Result<Option<Room>, RoomRefusal> {
        if self.rooms.iter().any(|own| own.as_str() == room) {
            return Ok(None);
        }
        if self.rooms.len() - self.given >= max {
            return Err(RoomRefusal::TooMany);
        }
        let room = Room::from(room);
        self.rooms.push(room.clone());
        if let Some(record) = &mut self.record {
            record.rooms.push(room.to_string());
        }
        Ok(Some(room))
    }

    /// Leaves `room` (a name that passed [`rooms::check_name`]): the room for the Hub and the record
    /// (which is updated), or `None` if it was not in it.
    pub(crate) fn leave_room(&mut self, room: &str) -> Option<Room> {
        let at = self.rooms.iter().position(|own| own.as_str() == room)?;
        let room = self.rooms.remove(at);
        if let Some(record) = &mut self.record {
            record.rooms.retain(|own| own != room.as_str());
        }
        Some(room)
    }

    /// The positions of the frames the client has already; advances the offset past the others.
    fn skip_seen(&mut self, frames: &[Frame]) -> Vec<usize> {
        let mut skipped = Vec::new();
        for (at, frame) in frames.iter().enumerate() {
            if self.has(frame) {
                skipped.push(at);
            } else {
                self.advance(frame);
            }
        }
        skipped
    }

    /// Whether the client has `frame` (its offset covers the frame's id).
    fn has(&self, frame: &Frame) -> bool {
        (self.offset.as_ref()).is_some_and(|offset| offset.covers(frame.shard, frame.id))
    }

    /// The client is up to date to `frame`'s offset.
    fn advance(&mut self, frame: &Frame) {
        // Copied into the socket's own ids (no allocation once it has some): sharing the frame's
        // `Arc` instead would make every delivery touch one reference count from every thread.
        match &mut self.offset {
            Some(offset) => offset.clone_from(&frame.offset),
            None => self.offset = Some(Offset::clone(&frame.offset)),
        }
    }

    /// The frames the client does not have yet, in order; advances the offset past them.
    fn unseen(&mut self, frames: &[Frame]) -> Vec<Out> {
        let mut out = Vec::with_capacity(frames.len());
        for frame in frames {
            if self.has(frame) {
                continue;
            }
            out.extend(frame.messages());
            self.advance(frame);
        }
        out
    }

    /// An id for an event the server emits asking for an ack; the client's answer is awaited.
    pub(crate) fn ask(&mut self) -> u64 {
        self.acks.get_or_insert_default().ask()
    }

    /// Whether `id` answers an event this socket asked about (each is answered once, §2.4).
    pub(crate) fn answered(&mut self, id: u64) -> bool {
        self.acks.as_mut().is_some_and(|acks| acks.answered(id))
    }
}

/// The Engine.IO messages of `packet` in `parser`'s encoding: with the JSON parser the text packet
/// then its attachments (`attachments` holds the bytes its placeholders point to); with msgpack one
/// binary message, the attachments inline.
pub(crate) fn messages(parser: Parser, packet: &SioPacket, attachments: Vec<Bytes>) -> Vec<Out> {
    match parser {
        Parser::Json => {
            let mut out = Vec::with_capacity(1 + attachments.len());
            out.push(Out::Text(format!("4{}", socketio::encode(packet)).into()));
            out.extend(attachments.into_iter().map(Out::Binary));
            out
        }
        Parser::Msgpack => {
            let bytes = socketio_msgpack::encode(packet, &attachments);
            vec![Out::Binary(Bytes::from(bytes))]
        }
    }
}

/// An Engine.IO message carrying a Socket.IO packet with `data` (no binary values).
fn frame(parser: Parser, kind: PacketKind, nsp: &Namespace, data: Value) -> Out {
    let packet = SioPacket::new(kind, nsp.as_str(), Some(data));
    let mut out = messages(parser, &packet, Vec::new());
    out.pop()
        .expect("a packet without attachments is one message")
}

/// A session's sockets by namespace. A session joins one or two namespaces, so a list sized to fit:
/// a map (or a growing Vec) would reserve room for four sockets in every session.
#[derive(Default)]
pub(crate) struct Sockets(Vec<(Namespace, NsSocket)>);

impl Sockets {
    pub(crate) fn get(&self, nsp: &str) -> Option<&NsSocket> {
        self.0
            .iter()
            .find(|(name, _)| name.as_str() == nsp)
            .map(|(_, s)| s)
    }

    pub(crate) fn get_mut(&mut self, nsp: &str) -> Option<&mut NsSocket> {
        self.0
            .iter_mut()
            .find(|(name, _)| name.as_str() == nsp)
            .map(|(_, s)| s)
    }

    /// Sets the socket of `nsp`, replacing the one it had.
    pub(crate) fn insert(&mut self, nsp: Namespace, socket: NsSocket) {
        match self.get_mut(nsp.as_str()) {
            Some(slot) => *slot = socket,
            None => {
                self.0.reserve_exact(1);
                self.0.push((nsp, socket));
            }
        }
    }

    pub(crate) fn remove(&mut self, nsp: &str) -> Option<NsSocket> {
        let at = self.0.iter().position(|(name, _)| name.as_str() == nsp)?;
        Some(self.0.remove(at).1)
    }

    /// Whether a socket was admitted (joining or joined): what the connect timeout asks.
    pub(crate) fn any_admitted(&self) -> bool {
        self.0
            .iter()
            .any(|(_, socket)| !matches!(socket, NsSocket::Admitting { .. }))
    }

    /// The joined sockets' records (to refresh them).
    pub(crate) fn records(&self) -> impl Iterator<Item = &SessionRecord> {
        self.0.iter().filter_map(|(_, socket)| match socket {
            NsSocket::Joined(joined) => joined.record.as_ref(),
            _ => None,
        })
    }

    /// Every socket, leaving none.
    pub(crate) fn take(&mut self) -> Vec<(Namespace, NsSocket)> {
        std::mem::take(&mut self.0)
    }
}

mod acks;
mod replay;
#[cfg(test)]
mod tests;
