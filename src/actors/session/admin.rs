//! A Session's side of the admin UI (`crate::admin`): what its [`Seat`](crate::admin::stats::Seat)
//! is told as its sockets join and leave (the development mode's socket list and live events).
//! Nothing happens when the admin UI is off (no seat).

use super::Session;

impl Session {
    /// The socket of `nsp` joined as `sid`.
    pub(super) fn admin_joined(&mut self, nsp: &str, sid: &str) {
        if let Some(seat) = self.admin_seat.as_mut() {
            seat.socket_joined(nsp, sid, self.eio_sid.as_str(), &self.handshake);
        }
    }

    /// The socket of `nsp` left for `reason` (Socket.IO's disconnect reason).
    pub(super) fn admin_left(&mut self, nsp: &str, reason: &str) {
        if let Some(seat) = self.admin_seat.as_mut() {
            seat.socket_left(nsp, reason);
        }
    }
}
