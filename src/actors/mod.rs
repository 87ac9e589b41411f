//! The actors of one hub instance, and who owns what (DESIGN.md §1).
//!
//! ```text
//! WS frames ─► WsConn ─WsEvent─►┐
//! GET/POST  ─► (Registry: sid) ─► Session ──Register/Unregister──► Hub ◄──Fanout── StreamBridge ◄── read loop ── log
//!                               │   ▲ ◄──────Deliver(shared frames)─┘                 ▲   │ append (XADD MAXLEN ~)
//!                               │   └──CONNECT{pid,offset}─► Recovery ──ReadAfter──────┘   └─◄ notification::publish
//!                               └─► Application (authorize, events, acks)                   (HTTP notify, socket notify)
//!
//! Hub ──(lane open: a joined WebSocket past its handover)── one write ──► WsSink ──► socket
//! ```
//!
//! - [`session::Session`] (a folder): one per Engine.IO session, whatever its transport: the actor and
//!   its messages (`mod.rs`), the Engine.IO transports (`transport.rs`), the Socket.IO side
//!   (`namespaces.rs`) and each namespace socket's state machine (`socket.rs`, no actor).
//! - [`ws_conn::WsConn`]: one per WebSocket, a plain task (no mailbox: its Session and its sink
//!   ask through the sink's signal); reads the client's frames for its Session, closes.
//! - [`ws_sink`]: a WebSocket's writing side, shared by its Session (which writes its frames in
//!   its own turn) and its WsConn (which writes what the socket could not take yet).
//! - [`ws_frames`]: RFC 6455 framing of what clients send: checks at each frame header, reassembly.
//! - [`ws_read`]: a WebSocket's reading side, and the instance's budget of bytes held by unfinished
//!   frames (no actor).
//! - [`registry::Registry`]: Engine.IO sid → Session, for polling requests and upgrades.
//! - [`hub::Hub`]: namespace → room → sockets; frames each log entry once and fans it out to its target.
//! - [`stream_bridge::StreamBridge`]: the only owner of the log backend.
//! - [`recovery::Recovery`]: opens sockets, resuming them from a client's offset when it can.
//! - [`disconnect`]: why a session ends and what that means on the wire (one place).
//! - [`outbound`]: the per-client byte count of the slow-consumer bound, and the frame type.
//!
//! Imports go one way: session → {hub, recovery, registry, ws_conn}; recovery → stream_bridge → hub;
//! all → {disconnect, outbound}; ws_conn → {ws_sink, ws_read} → ws_frames; disconnect → ws_frames, which
//! imports no actor file.
//!
//! One owner per piece of state: actors hold each other's addresses and share nothing mutable.

pub(crate) mod disconnect;
pub(crate) mod hub;
pub(crate) mod outbound;
pub(crate) mod recovery;
pub(crate) mod registry;
pub(crate) mod session;
pub mod stream_bridge;
pub(crate) mod ws_conn;
pub(crate) mod ws_frames;
pub(crate) mod ws_read;
pub(crate) mod ws_sink;
