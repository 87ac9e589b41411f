//! The actors of one hub instance, and who owns what (DESIGN.md §1).
//!
//! ```text
//! WS frames ─► WsConn ─WsEvent─►┐
//! GET/POST  ─► (Registry: sid) ─► Session ──Register/Unregister──► Hub ◄──Fanout── StreamBridge ◄── read loop ── log
//!                               │   ▲ ◄──────Deliver(shared frames)─┘                 ▲   │ append (XADD MAXLEN ~)
//!                               │   └──CONNECT{pid,offset}─► Recovery ──ReadAfter──────┘   └─◄ POST /notifications/notify
//!                               └─► Application (events, acks)
//! ```
//!
//! - [`session::Session`]: one per Engine.IO session, whatever its transport: the protocol, heartbeat,
//!   namespaces and handover state.
//! - [`ws_conn::WsConn`]: one per WebSocket; carries frames between the socket and its Session.
//! - [`registry::Registry`]: Engine.IO sid → Session, for polling requests and upgrades.
//! - [`hub::Hub`]: namespace → sessions; frames each log entry once and fans it out.
//! - [`stream_bridge::StreamBridge`]: the only owner of the log backend.
//! - [`recovery::Recovery`]: opens sockets, resuming them from a client's offset when it can.
//!
//! One owner per piece of state: actors hold each other's addresses and share nothing mutable.

pub mod hub;
pub mod recovery;
pub mod registry;
pub mod session;
pub mod stream_bridge;
pub mod ws_conn;
