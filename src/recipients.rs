//! Who a publish or a server-side disconnect is for: the `to` / `except` fields of a notify request
//! and their rules, shared by `POST /notifications/notify`, the socket `notify` event and
//! `POST /sockets/disconnect`.
//!
//! Owns: nothing; pure rules.
//!
//! ```text
//! "to": absent | null                 ─► everyone on `/` (a broadcast, as before rooms)
//! "to": "user:alice"                  ─► the sockets in room user:alice (every socket of Alice)
//! "to": ["ops", "user:bob"]           ─► the sockets in ops or user:bob, each once
//! "except": "muted" | ["a", "b"]      ─► never the sockets in these rooms (with or without `to`)
//! "to": []                            ─► 400 "to must name at least one room (for a broadcast leave `to` out)"
//! ```
//!
//! A room name is 1 to [`MAX_ROOM_NAME_BYTES`] bytes (`user:` and a [`MAX_SUBJECT_BYTES`] `sub`)
//! without control characters; a list names at most [`MAX_ROOMS_PER_LIST`] rooms (repeats count
//! once). These are wider than the names a client may `join`: a publisher may address any room a
//! socket can be in, a socket's own sid room and a Node peer's rooms included.

use std::collections::HashSet;

use serde_json::Value;

use crate::protocol::target::Room;
use crate::token::MAX_SUBJECT_BYTES;

use crate::rooms::USER_ROOM_PREFIX;

/// The longest room name a publisher may address, in bytes: `user:` and the longest `sub`.
pub const MAX_ROOM_NAME_BYTES: usize = USER_ROOM_PREFIX.len() + MAX_SUBJECT_BYTES;
/// The most rooms one `to` or `except` may name.
pub const MAX_ROOMS_PER_LIST: usize = 100;

/// Why a `to` / `except` (or a disconnect's `sid` / `user`) is refused; the text is what the
/// publisher is told, naming the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecipientsError(pub String);

/// Checks one room name of `field` (e.g. `to[2]`): 1 to [`MAX_ROOM_NAME_BYTES`] bytes, no control
/// characters.
pub fn check_room_name(field: &str, name: &str) -> Result<(), RecipientsError> {
    if name.is_empty() {
        return Err(RecipientsError(format!(
            "{field}: a room name is never empty"
        )));
    }
    if name.len() > MAX_ROOM_NAME_BYTES {
        return Err(RecipientsError(format!(
            "{field}: room name is {} bytes long (at most {MAX_ROOM_NAME_BYTES})",
            name.len()
        )));
    }
    if let Some((at, c)) = name.char_indices().find(|(_, c)| c.is_control()) {
        return Err(RecipientsError(format!(
            "{field}: room name has the control character {c:?} at byte {at}"
        )));
    }
    Ok(())
}

/// The rooms of `field` (`to` or `except`) in a request object: absent or `null` is none, a string
/// is one room, an array of strings is those rooms in order, repeats dropped. `[]` is none for
/// `except`, and refused for `to` (an empty `to` reaching nobody is a mistake, never a broadcast).
pub fn rooms_of(request: &Value, field: &str) -> Result<Vec<Room>, RecipientsError> {
    let names: Vec<(String, &str)> = match request.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(name)) => vec![(field.to_owned(), name.as_str())],
        Some(Value::Array(items)) => {
            if items.is_empty() && field == "to" {
                return Err(RecipientsError(
                    "to must name at least one room (for a broadcast leave `to` out)".into(),
                ));
            }
            let mut names = Vec::with_capacity(items.len());
            for (at, item) in items.iter().enumerate() {
                let Some(name) = item.as_str() else {
                    return Err(RecipientsError(format!(
                        "{field}[{at}] must be a room name (a string)"
                    )));
                };
                names.push((format!("{field}[{at}]"), name));
            }
            names
        }
        Some(_) => {
            return Err(RecipientsError(format!(
                "{field} must be a room name or an array of room names"
            )))
        }
    };
    // Node's rooms are a Set: a room named twice is addressed once, and counts once against
    // MAX_ROOMS_PER_LIST. The list itself is bounded by the body limit (HUB_MAX_NOTIFY_BYTES, or
    // HUB_MAX_PAYLOAD on a socket), so the set stays small.
    let mut seen: HashSet<&str> = HashSet::with_capacity(names.len().min(MAX_ROOMS_PER_LIST + 1));
    let mut rooms: Vec<Room> = Vec::new();
    for (at, name) in names {
        check_room_name(&at, name)?;
        if seen.insert(name) {
            rooms.push(Room::from(name));
        }
    }
    if rooms.len() > MAX_ROOMS_PER_LIST {
        return Err(RecipientsError(format!(
            "{field} names {} rooms (at most {MAX_ROOMS_PER_LIST})",
            rooms.len()
        )));
    }
    Ok(rooms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(rooms: &[Room]) -> Vec<&str> {
        rooms.iter().map(Room::as_str).collect()
    }

    #[test]
    fn rooms_of_reads_absent_null_a_name_or_a_list_without_repeats() {
        assert!(rooms_of(&json!({}), "to").unwrap().is_empty());
        assert!(rooms_of(&json!({"to": null}), "to").unwrap().is_empty());
        assert_eq!(
            names(&rooms_of(&json!({"to": "user:alice"}), "to").unwrap()),
            ["user:alice"]
        );
        let list = rooms_of(&json!({"to": ["ops", "user:bob", "ops"]}), "to").unwrap();
        assert_eq!(names(&list), ["ops", "user:bob"]);
        assert!(rooms_of(&json!({"except": []}), "except")
            .unwrap()
            .is_empty());
        // Any name a socket can be in: spaces, non-ASCII, a sid, the longest user room.
        let longest = format!("user:{}", "s".repeat(MAX_SUBJECT_BYTES));
        for name in ["a b", "équipe", "vc9XSiRG08Y5X8yAAAAA", longest.as_str()] {
            assert_eq!(
                names(&rooms_of(&json!({ "to": name }), "to").unwrap()),
                [name]
            );
        }
    }

    #[test]
    fn rooms_of_refusals_name_the_field_and_the_rule() {
        let over = "r".repeat(MAX_ROOM_NAME_BYTES + 1);
        let many: Vec<String> = (0..=MAX_ROOMS_PER_LIST).map(|i| format!("r{i}")).collect();
        for (request, field, why) in [
            (json!({"to": []}), "to", "to must name at least one room"),
            (json!({"to": ""}), "to", "to: a room name is never empty"),
            (
                json!({"to": ["ok", ""]}),
                "to",
                "to[1]: a room name is never empty",
            ),
            (
                json!({"except": [over]}),
                "except",
                "except[0]: room name is 262 bytes long (at most 261)",
            ),
            (
                json!({"to": "a\u{0}b"}),
                "to",
                "control character '\\0' at byte 1",
            ),
            (
                json!({"to": ["x\ny"]}),
                "to",
                "to[0]: room name has the control character '\\n'",
            ),
            (
                json!({"to": 5}),
                "to",
                "to must be a room name or an array of room names",
            ),
            (
                json!({"except": {"a": 1}}),
                "except",
                "except must be a room name or an array",
            ),
            (
                json!({"to": ["a", 7]}),
                "to",
                "to[1] must be a room name (a string)",
            ),
            (
                json!({ "to": many }),
                "to",
                "to names 101 rooms (at most 100)",
            ),
        ] {
            match rooms_of(&request, field) {
                Err(RecipientsError(text)) => assert!(text.contains(why), "{request}: {text}"),
                Ok(rooms) => panic!("{request}: expected a refusal, got {rooms:?}"),
            }
        }
        let hundred: Vec<String> = (0..MAX_ROOMS_PER_LIST).map(|i| format!("r{i}")).collect();
        assert_eq!(
            rooms_of(&json!({ "to": hundred }), "to").unwrap().len(),
            100
        );
    }

    #[test]
    fn a_room_named_twice_counts_once_against_the_list_limit() {
        // 100 distinct rooms plus repeats is 100 rooms, as documented; 101 distinct is refused.
        let mut list: Vec<String> = (0..MAX_ROOMS_PER_LIST).map(|i| format!("r{i}")).collect();
        list.extend(["r0".to_owned(), "r99".to_owned(), "r0".to_owned()]);
        for field in ["to", "except"] {
            let rooms = rooms_of(&json!({ field: list }), field).unwrap();
            assert_eq!(rooms.len(), MAX_ROOMS_PER_LIST, "{field}");
            assert_eq!(rooms[0].as_str(), "r0", "{field}: order kept");
            assert_eq!(rooms[99].as_str(), "r99", "{field}: order kept");
        }
        let mut over = list.clone();
        over.push("r100".to_owned());
        match rooms_of(&json!({ "to": over }), "to") {
            Err(RecipientsError(text)) => assert_eq!(text, "to names 101 rooms (at most 100)"),
            Ok(rooms) => panic!("expected a refusal, got {} rooms", rooms.len()),
        }
    }
}
