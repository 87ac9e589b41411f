//! Who a broadcast is for: the Socket.IO adapter's `opts` (`{rooms, except, flags}`) plus the
//! namespace it is emitted on, as `@socket.io/redis-streams-adapter` writes them (reference §4.4).
//!
//! ```text
//! Target { nsp: "/", rooms: [], except: [] }             everyone on "/" (a broadcast)
//! Target { nsp: "/", rooms: ["user:alice"], except: [] } the sockets in room user:alice
//! ```
//! A socket matches a target when it is on the namespace, in one of `rooms` (or `rooms` is empty),
//! and in none of `except` (socket.io-adapter's `apply`).

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

macro_rules! shared_name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The name as it travels on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(name: &str) -> Self {
                $name(Arc::from(name))
            }
        }

        impl From<String> for $name {
            fn from(name: String) -> Self {
                $name(Arc::from(name))
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

shared_name!(
    /// A Socket.IO namespace, e.g. `/` or `/admin` (Socket.IO v5 §2: the `nsp` of a packet).
    /// Cloning shares the text.
    Namespace
);
shared_name!(
    /// A room of a namespace, e.g. a socket's own sid or `user:alice` (socket.io-adapter's `Room`).
    Room
);

impl Namespace {
    /// `/`, the main namespace.
    pub fn main() -> Namespace {
        Namespace::from("/")
    }
}

/// The recipients of a broadcast: the adapter's `BroadcastOptions` without its flags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The namespace it is emitted on.
    pub nsp: Namespace,
    /// Only sockets in one of these rooms; empty: every socket of the namespace.
    pub rooms: Vec<Room>,
    /// Never sockets in one of these rooms.
    pub except: Vec<Room>,
}

impl Target {
    /// Every socket of `nsp`.
    pub fn broadcast(nsp: Namespace) -> Target {
        Target {
            nsp,
            rooms: Vec::new(),
            except: Vec::new(),
        }
    }

    /// Whether it reaches every socket of its namespace.
    pub fn is_broadcast(&self) -> bool {
        self.rooms.is_empty() && self.except.is_empty()
    }

    /// Whether a socket of `nsp` in `rooms` is a recipient (socket.io-adapter's `apply`).
    pub fn matches(&self, nsp: &str, mut rooms: impl FnMut(&Room) -> bool) -> bool {
        self.nsp.as_str() == nsp
            && (self.rooms.is_empty() || self.rooms.iter().any(&mut rooms))
            && !self.except.iter().any(rooms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rooms(names: &[&str]) -> Vec<Room> {
        names.iter().map(|n| Room::from(*n)).collect()
    }

    #[test]
    fn target_broadcast_matches_every_socket_of_its_namespace_only() {
        let target = Target::broadcast(Namespace::main());
        assert!(target.is_broadcast());
        assert!(target.matches("/", |_| false));
        assert!(!target.matches("/admin", |_| true));
    }

    #[test]
    fn target_rooms_and_except_select_as_the_adapter_does() {
        let target = Target {
            nsp: Namespace::main(),
            rooms: rooms(&["a", "b"]),
            except: rooms(&["banned"]),
        };
        assert!(!target.is_broadcast());
        let member = |of: &'static [&'static str]| move |room: &Room| of.contains(&room.as_str());
        assert!(target.matches("/", member(&["b"])));
        assert!(!target.matches("/", member(&["c"])), "in none of the rooms");
        assert!(!target.matches("/", member(&["a", "banned"])), "excepted");
        let except_only = Target {
            except: rooms(&["banned"]),
            ..Target::broadcast(Namespace::main())
        };
        assert!(except_only.matches("/", member(&["c"])));
        assert!(!except_only.matches("/", member(&["banned"])));
    }
}
