//! The wire protocol, sans I/O: pure functions over strings and bytes.
//!
//! Two layers nest on the wire (reference §1-§2):
//!
//! ```text
//! WebSocket text frame    "42[\"notification\",{…},\"1732740000000-0\"]"
//!                          │└─ Socket.IO v5 packet: type 2 (EVENT), nsp "/", data [...]
//!                          └── Engine.IO v4 packet: type 4 (message)
//! ```
//!
//! Nothing here touches actix, tokio, redis, clocks or logging (`scripts/check-pure.sh` enforces it), so
//! every codec can be unit-tested, property-tested and benchmarked alone. Decoders are total over their
//! input and return a `Result`; encoders cannot fail.

pub mod adapter;
pub mod base64;
pub mod cluster;
pub mod engineio;
pub mod ids;
pub mod json;
pub mod msgpack;
pub mod offset;
pub mod socketio;
pub mod socketio_msgpack;
pub mod target;
