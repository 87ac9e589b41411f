//! Outbound: what is on its way to one client, and the frame type both transports carry.
//!
//! Owns: nothing; an [`Outbound`] is shared (`Arc`) by the Hub, the Session and its WebSocket's
//! sink, and each operation has one caller:
//!
//! ```text
//! Hub ──delivered──► [Session mailbox] ──received──► Session ──► sink: what the socket takes now ──► kernel
//!     (give_up past the bound)                                   └─ the rest: queued_more ──written──► kernel
//!                                                    Session ──forwarded──► [polling queue] ──polled──► a GET
//! ```
//! `pending()` (everything between the Hub and the kernel) is what the slow-consumer bound is checked
//! against (DESIGN.md §5); `queued()` (encoded, not yet taken by the kernel) paces replays.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use actix_web::web::Bytes;
use bytestring::ByteString;

/// A frame for the client: one Engine.IO packet (a WebSocket message, or one item of a polling payload).
#[derive(Debug, Clone)]
pub enum Out {
    /// A text frame (one Engine.IO packet).
    Text(ByteString),
    /// A binary frame (a binary message: raw bytes, no type digit).
    Binary(Bytes),
}

impl Out {
    /// Payload length on the wire.
    pub fn len(&self) -> usize {
        match self {
            Out::Text(text) => text.len(),
            Out::Binary(bytes) => bytes.len(),
        }
    }
}

/// The bytes between the Hub and one client's socket (see the module doc for who calls what).
#[derive(Debug, Default)]
pub struct Outbound {
    /// Bytes in a mailbox or a polling queue: delivered or forwarded, not yet received or polled.
    unsent: AtomicUsize,
    /// Encoded bytes the socket has not taken yet.
    queued: AtomicUsize,
    /// Set when the client was given up on: its WsConn then drops the connection unflushed.
    aborted: AtomicBool,
}

impl Outbound {
    /// Hub: a batch of `bytes` was delivered to the session's mailbox.
    pub fn delivered(&self, bytes: usize) {
        self.unsent.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Session: a delivered batch of `bytes` was taken from its mailbox.
    pub fn received(&self, bytes: usize) {
        saturating_sub(&self.unsent, bytes);
    }

    /// Session: `bytes` were put in the polling queue.
    pub fn forwarded(&self, bytes: usize) {
        self.unsent.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Session: a polling GET (or the upgrade) took `bytes` from the polling queue.
    pub fn polled(&self, bytes: usize) {
        saturating_sub(&self.unsent, bytes);
    }

    /// Sink: `len` encoded bytes wait for the socket (it did not take them at once).
    pub fn queued_more(&self, len: usize) {
        self.queued.fetch_add(len, Ordering::Relaxed);
    }

    /// Sink: the socket took `len` of the waiting bytes (saturating: a count never wraps below zero).
    pub fn written(&self, len: usize) {
        saturating_sub(&self.queued, len);
    }

    /// Encoded bytes the client has not taken yet.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Everything on its way to the client.
    pub fn pending(&self) -> usize {
        self.unsent.load(Ordering::Relaxed) + self.queued.load(Ordering::Relaxed)
    }

    /// Hub or WsConn: give up on the client (it does not read).
    pub fn give_up(&self) {
        self.aborted.store(true, Ordering::Relaxed);
    }

    /// Whether the client was given up on.
    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }
}

fn saturating_sub(counter: &AtomicUsize, n: usize) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

/// The size of a server-to-client frame: payload plus its unmasked header (RFC 6455 §5.2: 2 bytes up
/// to 125, 4 up to 65535, 10 above).
pub fn wire_len(payload: usize) -> usize {
    payload
        + match payload {
            0..=125 => 2,
            126..=65_535 => 4,
            _ => 10,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_len_is_the_payload_length_of_either_kind() {
        assert_eq!(Out::Text("4hé".into()).len(), 4, "bytes, not characters");
        assert_eq!(Out::Binary(Bytes::from_static(&[1, 2, 3])).len(), 3);
        assert_eq!(Out::Text("".into()).len(), 0);
    }

    #[test]
    fn wire_len_adds_the_header_of_each_length_form() {
        assert_eq!(wire_len(0), 2);
        assert_eq!(wire_len(125), 127);
        assert_eq!(wire_len(126), 130);
        assert_eq!(wire_len(65_535), 65_539);
        assert_eq!(wire_len(65_536), 65_546);
    }

    #[test]
    fn outbound_counts_each_stage_until_the_socket_takes_it() {
        let out = Outbound::default();
        out.delivered(100);
        assert_eq!((out.pending(), out.queued()), (100, 0));
        out.received(100);
        out.forwarded(60);
        assert_eq!(out.pending(), 60);
        out.polled(60);
        out.queued_more(12);
        out.queued_more(204);
        assert_eq!((out.pending(), out.queued()), (216, 216));
        out.written(16);
        assert_eq!((out.pending(), out.queued()), (200, 200));
        out.forwarded(7);
        out.polled(7);
        assert_eq!(out.pending(), 200);
        out.written(1_000); // a pong, never counted when encoded: saturates
        assert_eq!((out.pending(), out.queued()), (0, 0));
        out.received(5);
        assert_eq!(out.pending(), 0, "never below zero");
        assert!(!out.is_aborted());
        out.give_up();
        assert!(out.is_aborted());
    }
}
