//! The actors of one hub instance, and who owns what (DESIGN.md §1).
//!
//! ```text
//! WS frame ─► Session ──Register/Unregister──► Hub ◄──Fanout(entries)── StreamBridge ◄── read loop ── log
//!               │                               │                          ▲   │ append (XADD MAXLEN ~)
//!               │◄──────Deliver(shared frames)──┘                          │   └────◄── POST /notifications/notify
//!               └─CONNECT{pid,offset}─► Recovery ──ReadAfter/Tip/records───┘
//! ```
//!
//! - [`session::Session`]: one per connection; the socket, heartbeat and handover state.
//! - [`hub::Hub`]: namespace → sessions; frames each log entry once and fans it out.
//! - [`stream_bridge::StreamBridge`]: the only owner of the log backend.
//! - [`recovery::Recovery`]: opens sockets, resuming them from a client's offset when it can.
//!
//! One owner per piece of state: actors hold each other's addresses and share nothing mutable.

pub mod hub;
pub mod recovery;
pub mod session;
pub mod stream_bridge;
