//! The cluster adapter's DISCONNECT_SOCKETS message (socket.io-adapter's `ClusterAdapter`,
//! `MessageType.DISCONNECT_SOCKETS` = 6; reference §4.3), as `@socket.io/redis-streams-adapter`
//! writes it to the stream, so `io.in(room).disconnectSockets(close)` on a Node peer and
//! `POST /sockets/disconnect` on a hub reach every instance of a mixed cluster.
//!
//! ```text
//! XADD socket.io MAXLEN ~ 10000 * uid <uid> nsp / type 6 data
//!      {"opts":{"rooms":["vc9XSiRG08Y5X8yAAAAA"],"except":[],"flags":{}},"close":false}
//! ```
//! Each instance disconnects its local sockets that match `opts` (socket.io-adapter's `apply`: in one
//! of `rooms`, or every socket when `rooms` is empty, and in none of `except`): a DISCONNECT packet
//! `41<nsp>` to the socket, and with `close` its whole Engine.IO connection closed after it.
//! The data is always JSON (the adapter encodes only broadcasts and responses as msgpack).

use serde_json::Value;

use super::target::{Namespace, Room, Target};

/// `MessageType.DISCONNECT_SOCKETS` of socket.io-adapter's cluster adapter.
pub const DISCONNECT_SOCKETS: &str = "6";

/// A request to disconnect the sockets of a target, on every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisconnectSockets {
    /// Whose sockets (namespace, rooms, except).
    pub target: Target,
    /// Whether their Engine.IO connections close too (`disconnectSockets(true)`), not only the
    /// namespace sockets.
    pub close: bool,
}

/// Why a DISCONNECT_SOCKETS entry's data is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("disconnect_sockets data does not decode: {0}")]
pub struct CommandError(pub String);

impl DisconnectSockets {
    /// The entry's `data` field, as the adapter writes it (`{"opts":…,"close":…}`).
    pub fn data(&self) -> String {
        let names = |rooms: &[Room]| {
            Value::Array(rooms.iter().map(|r| Value::from(r.as_str())).collect()).to_string()
        };
        format!(
            r#"{{"opts":{{"rooms":{},"except":{},"flags":{{}}}},"close":{}}}"#,
            names(&self.target.rooms),
            names(&self.target.except),
            self.close
        )
    }

    /// The request in an entry of namespace `nsp` whose `data` is `data`. A missing `except` is
    /// none, a missing `close` is false (the adapter always writes both); rooms must be strings.
    pub fn decode(nsp: &str, data: Option<&str>) -> Result<DisconnectSockets, CommandError> {
        let data = data.ok_or_else(|| CommandError("no data field".into()))?;
        let message: Value =
            super::json::from_str(data).map_err(|e| CommandError(e.to_string()))?;
        let opts = &message["opts"];
        if !opts.is_object() {
            return Err(CommandError("no opts".into()));
        }
        let rooms = |field: &str| -> Result<Vec<Room>, CommandError> {
            match &opts[field] {
                Value::Null => Ok(Vec::new()),
                Value::Array(items) => items
                    .iter()
                    .map(|room| {
                        room.as_str()
                            .map(Room::from)
                            .ok_or_else(|| CommandError(format!("{field} holds a non-string")))
                    })
                    .collect(),
                _ => Err(CommandError(format!("{field} is not an array"))),
            }
        };
        Ok(DisconnectSockets {
            target: Target {
                nsp: Namespace::from(nsp),
                rooms: rooms("rooms")?,
                except: rooms("except")?,
            },
            close: message["close"].as_bool().unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(rooms: &[&str], close: bool) -> DisconnectSockets {
        DisconnectSockets {
            target: Target {
                rooms: rooms.iter().map(|r| Room::from(*r)).collect(),
                ..Target::broadcast(Namespace::main())
            },
            close,
        }
    }

    #[test]
    fn data_is_what_the_adapter_writes_and_decodes_back() {
        // socket.io-adapter's encodeOptions of `io.in(sid).disconnectSockets()`.
        let one = to(&["vc9XSiRG08Y5X8yAAAAA"], false);
        assert_eq!(
            one.data(),
            r#"{"opts":{"rooms":["vc9XSiRG08Y5X8yAAAAA"],"except":[],"flags":{}},"close":false}"#
        );
        assert_eq!(DisconnectSockets::decode("/", Some(&one.data())), Ok(one));
        let user = to(&["user:a\"b"], true);
        assert_eq!(
            user.data(),
            r#"{"opts":{"rooms":["user:a\"b"],"except":[],"flags":{}},"close":true}"#
        );
        assert_eq!(DisconnectSockets::decode("/", Some(&user.data())), Ok(user));
    }

    #[test]
    fn decode_reads_a_node_peers_every_socket_and_except_forms() {
        // `io.except("ops").disconnectSockets(true)` on the namespace /admin.
        let data = r#"{"opts":{"rooms":[],"except":["ops"],"flags":{}},"close":true}"#;
        let decoded = DisconnectSockets::decode("/admin", Some(data)).unwrap();
        assert_eq!(decoded.target.nsp.as_str(), "/admin");
        assert!(decoded.target.rooms.is_empty());
        assert_eq!(decoded.target.except, vec![Room::from("ops")]);
        assert!(decoded.close);
        let bare = DisconnectSockets::decode("/", Some(r#"{"opts":{"rooms":["r"]}}"#)).unwrap();
        assert!(!bare.close && bare.target.except.is_empty());
    }

    #[test]
    fn decode_refuses_what_is_not_a_disconnect_request() {
        for bad in [
            None,
            Some("{nope"),
            Some("{}"),
            Some(r#"{"opts":{"rooms":[1]}}"#),
            Some(r#"{"opts":{"rooms":"r"}}"#),
            Some(r#"{"opts":{"rooms":[],"except":{}}}"#),
        ] {
            assert!(DisconnectSockets::decode("/", bad).is_err(), "{bad:?}");
        }
    }
}
