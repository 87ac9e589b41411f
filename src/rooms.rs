//! Rooms a client may join and leave: the name rules and the permission patterns.
//!
//! Owns: nothing; pure rules, used by the Session (the `join` / `leave` events) and by
//! [`crate::app::HubApp`] (who may join what).
//!
//! ```text
//! socket.emit("join", "ops", ack)   ─► name rules ─► not reserved ─► may_join ─► room limit ─► {"ok":true}
//! socket.emit("leave", "ops", ack)  ─► name rules ─► not reserved ─────────────────────────► {"ok":true}
//!                                   any refusal ─► {"error":"<reason>"}, the socket stays connected
//! ```
//!
//! A socket is in its own sid room and, with a token, in `user:<sub>`: neither can be joined or
//! left by the events, so no client can listen in on another socket's or another user's room.

use globset::{Glob, GlobSet, GlobSetBuilder};

/// The longest room name a client may join, in bytes.
pub const MAX_ROOM_BYTES: usize = 128;

/// The prefix of a user's personal room, `user:<sub>`: given by the token's `sub` only.
pub const USER_ROOM_PREFIX: &str = "user:";

/// The personal room of user `sub`: every socket of that user, on every instance.
pub fn user_room(sub: &str) -> String {
    format!("{USER_ROOM_PREFIX}{sub}")
}

/// Why a `join` or `leave` was refused; its [`Display`](std::fmt::Display) is the ack's `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoomRefusal {
    /// Not a string, empty, longer than [`MAX_ROOM_BYTES`], or a character outside the set.
    #[error("invalid room name")]
    Invalid,
    /// `user:…` or the shape of a socket id: those rooms are given, never joined or left.
    #[error("reserved room")]
    Reserved,
    /// Neither the token's `rooms` claim nor `HUB_PUBLIC_ROOMS` allows it.
    #[error("forbidden")]
    Forbidden,
    /// The socket is in `HUB_MAX_ROOMS_PER_SOCKET` joined rooms already.
    #[error("too many rooms")]
    TooMany,
}

/// Whether `byte` may appear in a room name: ASCII letters, digits and `_ - . : @ / + =`.
fn allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"_-.:@/+=".contains(&byte)
}

/// Whether `name` has the shape of a socket id: 20 (a Node peer's, `base64id`) or 22 (the hub's)
/// base64url characters.
pub fn sid_shaped(name: &str) -> bool {
    matches!(name.len(), 20 | 22)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks a room name from a `join` or `leave` event: 1 to [`MAX_ROOM_BYTES`] bytes of the allowed
/// characters ([`RoomRefusal::Invalid`]), not `user:…` nor shaped like a socket id
/// ([`RoomRefusal::Reserved`]).
pub fn check_name(name: &str) -> Result<(), RoomRefusal> {
    if name.is_empty() || name.len() > MAX_ROOM_BYTES || !name.bytes().all(allowed) {
        return Err(RoomRefusal::Invalid);
    }
    if name.starts_with(USER_ROOM_PREFIX) || sid_shaped(name) {
        return Err(RoomRefusal::Reserved);
    }
    Ok(())
}

/// Glob patterns of room names (`*` any run of characters, `?` one, `[…]` a class, `{a,b}` either),
/// matched against the whole name.
#[derive(Debug, Clone)]
pub struct RoomPatterns(GlobSet);

impl RoomPatterns {
    /// The set of `patterns`, or the first that does not parse.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<RoomPatterns, globset::Error> {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            set.add(Glob::new(pattern.as_ref())?);
        }
        Ok(RoomPatterns(set.build()?))
    }

    /// No pattern: matches nothing.
    pub fn empty() -> RoomPatterns {
        RoomPatterns(GlobSet::empty())
    }

    /// Whether `room` matches one of the patterns.
    pub fn matches(&self, room: &str) -> bool {
        self.0.is_match(room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_name_accepts_the_documented_characters_up_to_the_limit() {
        for name in [
            "ops",
            "team-a.eu:news@x/y+z=1_2",
            &"a".repeat(MAX_ROOM_BYTES),
        ] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn check_name_refuses_empty_long_and_foreign_characters() {
        let long = "a".repeat(MAX_ROOM_BYTES + 1);
        for name in ["", &long, "a b", "é", "ops\n", "a*", "a,b", "\"x\""] {
            assert_eq!(check_name(name), Err(RoomRefusal::Invalid), "{name:?}");
        }
    }

    #[test]
    fn check_name_refuses_user_rooms_and_socket_id_shapes() {
        for name in [
            "user:alice",
            "user:",
            "AbCdEfGhIjKlMnOpQrSt",   // 20: a Node peer's sid
            "AbCdEfGhIjKlMnOpQr_-12", // 22: the hub's
        ] {
            assert_eq!(check_name(name), Err(RoomRefusal::Reserved), "{name}");
        }
        // 21 base64url characters, or 20 with another character, are not socket ids.
        assert_eq!(check_name("AbCdEfGhIjKlMnOpQrStu"), Ok(()));
        assert_eq!(check_name("AbCdEfGhIjKlMnOpQrS."), Ok(()));
    }

    #[test]
    fn room_patterns_match_whole_names_with_globs() {
        let patterns = RoomPatterns::new(&["team-*", "news", "eu/{a,b}", "r?"]).unwrap();
        for room in ["team-a", "team-a/b", "news", "eu/a", "r1"] {
            assert!(patterns.matches(room), "{room}");
        }
        for room in ["team", "newsy", "xnews", "eu/c", "r12"] {
            assert!(!patterns.matches(room), "{room}");
        }
        assert!(!RoomPatterns::empty().matches("news"));
        assert!(RoomPatterns::new(&["[a"]).is_err());
    }
}
