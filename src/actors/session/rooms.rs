//! The `join` and `leave` client events: a joined socket changes its rooms, acknowledged
//! `{"ok":true}` or `{"error":"<reason>"}`, and stays connected either way.
//!
//! ```text
//! 42["join","ops"]  / 421["join","ops"]   ─► name rules ─► (in it already: ok) ─► Application::may_join
//!                                              ─► HUB_MAX_ROOMS_PER_SOCKET ─► Hub Join, record kept ─► 431[{"ok":true}]
//! 421["leave","ops"]                      ─► name rules ─► Hub Leave, record kept ─► 431[{"ok":true}]
//! a refusal                               ─► counted, logged (rate limited) ─► 431[{"error":"forbidden"}]
//! ```
//!
//! The socket's rooms live in its [`Joined`](super::socket::Joined) state and its session record
//! (refreshed at once, so a socket whose instance dies resumes in its current rooms).

use serde_json::{json, Value};

use super::socket::NsSocket;
use super::Session;
use crate::actors::hub::{Join, Leave};
use crate::actors::recovery::{Keep, RoomCheck};
use crate::app::{Identity, Payload};
use crate::limited_info;
use crate::log_limit::LimitedLog;
use crate::protocol::socketio::PacketKind;
use crate::protocol::target::Namespace;
use crate::rooms::{self, RoomRefusal};

/// Refused joins and leaves: a client can cause them at will, so a few lines a minute at most.
static ROOM_REFUSED: LimitedLog = LimitedLog::per_minute(6);

/// Whether `event` is a room event: `Some(true)` for `join`, `Some(false)` for `leave`.
pub(super) fn room_event(event: &Payload) -> Option<bool> {
    match event.data.first().and_then(Value::as_str) {
        Some("join") => Some(true),
        Some("leave") => Some(false),
        _ => None,
    }
}

impl Session {
    /// Which joined rooms of a resumed record the socket of `nsp` admitted as `identity` stays in:
    /// those the application lets it join now (a resume is not a way around a revoked claim).
    pub(super) fn room_check(&self, nsp: &Namespace, identity: &Identity) -> RoomCheck {
        let (app, nsp, identity) = (self.parts.app.clone(), nsp.clone(), identity.clone());
        RoomCheck::new(move |room| app.may_join(nsp.as_str(), &identity, room))
    }

    /// A `join` (`join` true) or `leave` of the room named by the event's first argument.
    pub(super) fn on_room_event(
        &mut self,
        nsp: &str,
        join: bool,
        event: &Payload,
        ack_id: Option<u64>,
    ) {
        let answer = match self.change_room(nsp, join, event.data.get(1)) {
            Ok(()) => json!({ "ok": true }),
            Err(refusal) => {
                let metrics = &self.parts.metrics;
                match refusal {
                    RoomRefusal::Invalid => metrics.rooms_refused_invalid.inc(),
                    RoomRefusal::Reserved => metrics.rooms_refused_reserved.inc(),
                    RoomRefusal::Forbidden => metrics.rooms_refused_forbidden.inc(),
                    RoomRefusal::TooMany => metrics.rooms_refused_too_many.inc(),
                }
                limited_info!(
                    ROOM_REFUSED,
                    "{} refused eio_sid={} nsp={nsp}: {refusal}",
                    if join { "join" } else { "leave" },
                    self.eio_sid
                );
                json!({ "error": refusal.to_string() })
            }
        };
        if let Some(id) = ack_id {
            let answer = Payload {
                data: vec![answer],
                attachments: Vec::new(),
            };
            self.emit(nsp, answer, Some(id), PacketKind::Ack);
        }
    }

    fn change_room(
        &mut self,
        nsp: &str,
        join: bool,
        room: Option<&Value>,
    ) -> Result<(), RoomRefusal> {
        let Some(Value::String(room)) = room else {
            return Err(RoomRefusal::Invalid);
        };
        rooms::check_name(room)?;
        // Room events are handled for joined sockets only (see `on_packet`).
        let Some(NsSocket::Joined(joined)) = self.sockets.get_mut(nsp) else {
            return Ok(());
        };
        let member = joined.rooms().iter().any(|own| own.as_str() == room);
        let changed = if join {
            if !member && !self.parts.app.may_join(nsp, &joined.identity, room) {
                return Err(RoomRefusal::Forbidden);
            }
            joined.join_room(room, self.parts.settings.max_rooms)?
        } else {
            joined.leave_room(room)
        };
        let Some(room) = changed else {
            return Ok(());
        };
        let (conn, nsp, rooms) = (self.conn, Namespace::from(nsp), vec![room]);
        if join {
            self.parts.hub.do_send(Join { conn, nsp, rooms });
        } else {
            self.parts.hub.do_send(Leave { conn, nsp, rooms });
        }
        // The live copy follows at once: a socket whose instance dies resumes in these rooms.
        if let Some(record) = &joined.record {
            self.parts.recovery.do_send(Keep(record.clone()));
        }
        Ok(())
    }
}
