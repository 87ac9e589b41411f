//! The Session's side of the connection's event allowance ([`event_limit`](super::event_limit)):
//! charging each client packet that makes the hub work, answering what the allowance refuses, and
//! ending the connection for abuse.

use actix::prelude::*;
use serde_json::json;

use super::event_limit::Verdict;
use super::{Session, SessionError};
use crate::app::Payload;
use crate::limited_warn;
use crate::log_limit::LimitedLog;
use crate::protocol::socketio::{PacketKind, SioPacket};

/// Events refused for the rate limit: logged at most a few times a minute, whatever the clients do.
static EVENTS_RATE_LIMITED: LimitedLog = LimitedLog::per_minute(6);
/// CONNECTs refused for the rate limit: likewise.
static CONNECT_RATE_LIMITED: LimitedLog = LimitedLog::per_minute(6);
/// Connections disconnected for abuse: likewise.
static EVENT_ABUSE: LimitedLog = LimitedLog::per_minute(6);

impl Session {
    /// Charges one client packet that makes the hub work (an event, a CONNECT) to the connection's
    /// allowance. On [`Verdict::Abuse`] the session is already closed for abuse (counted, logged).
    pub(super) fn charge_allowance(&mut self, ctx: &mut Context<Self>) -> Verdict {
        let verdict = match (&mut self.events, &self.parts.settings.event_rate) {
            (Some(events), Some(rate)) => events.check(rate),
            _ => Verdict::Pass,
        };
        if verdict == Verdict::Abuse {
            self.parts.metrics.socket_abuse_disconnects.inc();
            limited_warn!(
                EVENT_ABUSE,
                "connection disconnected for abuse eio_sid={} addr={}: events past the rate \
                 limit beyond the abuse limit",
                self.eio_sid,
                self.client_addr()
            );
            self.close(ctx, SessionError::EventAbuse);
        }
        verdict
    }

    /// A CONNECT past the rate limit: refused as a middleware refuses one (reference §2.3), the
    /// connection kept; the client may CONNECT again once its allowance refills.
    pub(super) fn connect_rate_limited(&mut self, nsp: &str) {
        self.parts.metrics.socket_events_rate_limited.inc();
        limited_warn!(
            CONNECT_RATE_LIMITED,
            "CONNECT refused eio_sid={} nsp={nsp} addr={}: over the connection's rate limit",
            self.eio_sid,
            self.client_addr()
        );
        let refusal = json!({ "message": "rate limited" });
        let reply = SioPacket::new(PacketKind::ConnectError, nsp, Some(refusal));
        self.write_packet(&reply);
    }

    /// An event past the rate limit: not handed to the application; its ack, if the client asked
    /// for one, says why (as a refused `notify` says `{"error":"forbidden"}`).
    pub(super) fn rate_limited(&mut self, nsp: &str, ack_id: Option<u64>) {
        self.parts.metrics.socket_events_rate_limited.inc();
        limited_warn!(
            EVENTS_RATE_LIMITED,
            "event refused eio_sid={} nsp={nsp} addr={}: over the connection's rate limit",
            self.eio_sid,
            self.client_addr()
        );
        if let Some(id) = ack_id {
            let answer = Payload {
                data: vec![json!({ "error": "rate limited" })],
                attachments: Vec::new(),
            };
            self.emit(nsp, answer, Some(id), PacketKind::Ack);
        }
    }

    /// The client's address for a log line (`-` when unknown).
    fn client_addr(&self) -> String {
        self.handshake
            .remote_addr
            .map_or_else(|| "-".to_owned(), |addr| addr.ip().to_string())
    }
}
