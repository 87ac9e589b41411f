//! The stream entry and session record formats of `@socket.io/redis-streams-adapter` 0.3.x
//! (reference §4.4, §4.8), so Node and Rust instances can share one stream.
//!
//! ```text
//! XADD socket.io MAXLEN ~ 10000 * uid 7d38b7221164adb4 nsp / type 3 data
//!      {"packet":{"type":2,"data":["notification",{…}]},"opts":{"rooms":[],"except":[],"flags":{}}}
//! SET sio:session:<pid> base64(msgpack {sid,pid,rooms,data}) PX <window>
//! ```
//!
//! Only untargeted, plain broadcasts are delivered: entries of other types (room joins, disconnects,
//! v0.2 heartbeats), targeted ones (rooms/except: the hub has no rooms yet), volatile ones, ones that
//! expect acks, and binary ones (no attachments yet) are skipped, never fatal.

use serde_json::Value;

use super::target::{Room, Target};
use super::{base64, msgpack};

/// `MessageType.BROADCAST` of socket.io-adapter's cluster adapter.
pub const BROADCAST: &str = "3";

/// The `data` field of a broadcast of `args` (the event array as compact JSON text) to `target`.
pub fn broadcast_data(target: &Target, args: &str) -> String {
    let names = |rooms: &[Room]| {
        Value::Array(rooms.iter().map(|r| Value::from(r.as_str())).collect()).to_string()
    };
    format!(
        r#"{{"packet":{{"type":2,"data":{args}}},"opts":{{"rooms":{},"except":{},"flags":{{}}}}}}"#,
        names(&target.rooms),
        names(&target.except)
    )
}

/// Why an entry is not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Not a BROADCAST (room operations, disconnects, v0.2 heartbeats and requests).
    #[error("message type {0} is not a broadcast")]
    NotBroadcast(String),
    /// `data` is neither JSON nor base64 msgpack of a JSON-representable value.
    #[error("data does not decode: {0}")]
    Malformed(String),
    /// Binary attachments (msgpack `bin`), which the hub cannot deliver yet.
    #[error("binary broadcast")]
    Binary,
    /// Sent to rooms, or excluding some: the hub has no rooms yet.
    #[error("targeted broadcast")]
    Targeted,
    /// A packet that is not a plain EVENT, or one that expects acks, or a volatile one.
    #[error("not a plain event")]
    NotPlainEvent,
}

/// The event array (compact JSON text, without offset) of a stream entry, if it is a plain broadcast.
pub fn decode_broadcast(kind: &str, data: Option<&str>) -> Result<String, Skip> {
    if kind != BROADCAST {
        return Err(Skip::NotBroadcast(kind.chars().take(8).collect()));
    }
    let data = data.ok_or_else(|| Skip::Malformed("no data field".into()))?;
    // The adapter's own rule: JSON starts with '{'; anything else is base64 of msgpack.
    let message: Value = if data.starts_with('{') {
        super::json::from_str(data).map_err(|e| Skip::Malformed(e.to_string()))?
    } else {
        let bytes = base64::decode(data).map_err(|e| Skip::Malformed(e.to_string()))?;
        match msgpack::decode(&bytes) {
            Ok(value) => value,
            Err(msgpack::MsgpackError::Unsupported(0xc4..=0xc6)) => return Err(Skip::Binary),
            Err(e) => return Err(Skip::Malformed(e.to_string())),
        }
    };
    let opts = &message["opts"];
    let non_empty = |v: &Value| v.as_array().is_some_and(|a| !a.is_empty());
    if non_empty(&opts["rooms"]) || non_empty(&opts["except"]) {
        return Err(Skip::Targeted);
    }
    if opts["flags"]["volatile"].as_bool() == Some(true) {
        return Err(Skip::NotPlainEvent);
    }
    let packet = &message["packet"];
    let args = &packet["data"];
    let plain_event = packet["type"] == 2
        && packet.get("id").is_none_or(Value::is_null)
        && args
            .as_array()
            .is_some_and(|a| a.first().is_some_and(|n| n.is_string() || n.is_number()));
    if !plain_event {
        return Err(Skip::NotPlainEvent);
    }
    Ok(args.to_string())
}

/// socket.io-adapter's `shouldIncludePacket(sessionRooms, opts)`: `rooms` empty or one of them is the
/// session's, and none of `except` is.
pub fn included(session_rooms: &[String], rooms: &[&str], except: &[&str]) -> bool {
    let member = |room: &&str| session_rooms.iter().any(|own| own == room);
    (rooms.is_empty() || rooms.iter().any(member)) && !except.iter().any(member)
}

/// Whether the adapter's `restoreSession` would replay a stream entry (of the socket's namespace) to
/// a socket in `session_rooms`, or fail on it: a BROADCAST whose `opts` include the socket, or whose
/// `data` does not decode (binary attachments included: the hub's msgpack reader has no `bin`).
/// Entries of other types are never replayed.
pub fn may_address(kind: &str, data: Option<&str>, session_rooms: &[String]) -> bool {
    if kind != BROADCAST {
        return false;
    }
    let Some(data) = data else { return true };
    let message: Option<Value> = if data.starts_with('{') {
        serde_json::from_str(data).ok()
    } else {
        base64::decode(data)
            .ok()
            .and_then(|bytes| msgpack::decode(&bytes).ok())
    };
    let Some(message) = message else { return true };
    let names = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|room| room.as_str().map(str::to_owned))
            .collect()
    };
    let opts = &message["opts"];
    match (names(&opts["rooms"]), names(&opts["except"])) {
        (Some(rooms), Some(except)) => {
            let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
            let except: Vec<&str> = except.iter().map(String::as_str).collect();
            included(session_rooms, &rooms, &except)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_peers_lone_surrogate_is_delivered_as_the_replacement_character() {
        // The adapter writes `JSON.stringify` of what a Node client sent: a lone half stays escaped.
        let data = r#"{"packet":{"type":2,"data":["x","cut \ud83d"],"nsp":"/"},"opts":{"rooms":[],"except":[],"flags":{}}}"#;
        assert_eq!(
            decode_broadcast(BROADCAST, Some(data)).unwrap(),
            "[\"x\",\"cut \u{fffd}\"]"
        );
    }

    #[test]
    fn broadcast_data_matches_the_adapter_bytes() {
        // reference §4.4, captured with MONITOR (rooms/except emptied)
        assert_eq!(
            broadcast_data(&everyone(), r#"["inroom","x"]"#),
            r#"{"packet":{"type":2,"data":["inroom","x"]},"opts":{"rooms":[],"except":[],"flags":{}}}"#
        );
        // reference §4.4: io.to("room1").except("b\"ad").emit(...)
        let target = Target {
            rooms: vec![Room::from("room1")],
            except: vec![Room::from("b\"ad")],
            ..everyone()
        };
        assert_eq!(
            broadcast_data(&target, r#"["inroom","x"]"#),
            r#"{"packet":{"type":2,"data":["inroom","x"]},"opts":{"rooms":["room1"],"except":["b\"ad"],"flags":{}}}"#
        );
    }

    fn everyone() -> Target {
        Target::broadcast(crate::protocol::target::Namespace::main())
    }

    #[test]
    fn decode_broadcast_reads_json_and_msgpack_entries() {
        let json = broadcast_data(&everyone(), r#"["notification",{"title":"t"}]"#);
        assert_eq!(
            decode_broadcast("3", Some(&json)).as_deref(),
            Ok(r#"["notification",{"title":"t"}]"#)
        );
        let packed = base64::encode(&msgpack::encode(&serde_json::from_str(&json).unwrap()));
        assert_eq!(
            decode_broadcast("3", Some(&packed)).as_deref(),
            Ok(r#"["notification",{"title":"t"}]"#)
        );
    }

    #[test]
    fn decode_broadcast_skips_what_it_cannot_deliver() {
        let targeted = r#"{"packet":{"type":2,"data":["inroom","x"]},"opts":{"rooms":["room1"],"except":[],"flags":{}}}"#;
        let volatile = r#"{"packet":{"type":2,"data":["vol",1]},"opts":{"rooms":[],"except":[],"flags":{"volatile":true}}}"#;
        let with_ack = r#"{"packet":{"type":2,"data":["a"],"id":3},"opts":{"rooms":[],"except":[],"flags":{}}}"#;
        // reference §4.4: io.emit("bin", Buffer.from([1,2,3]))
        let binary =
            "gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQDAQIDpG9wdHODpXJvb21zkKZleGNlcHSQpWZsYWdzgA==";
        assert_eq!(
            decode_broadcast("1", None),
            Err(Skip::NotBroadcast("1".into()))
        );
        assert_eq!(
            decode_broadcast("4", Some("{}")),
            Err(Skip::NotBroadcast("4".into()))
        );
        assert_eq!(decode_broadcast("3", Some(targeted)), Err(Skip::Targeted));
        assert_eq!(
            decode_broadcast("3", Some(volatile)),
            Err(Skip::NotPlainEvent)
        );
        assert_eq!(
            decode_broadcast("3", Some(with_ack)),
            Err(Skip::NotPlainEvent)
        );
        assert_eq!(decode_broadcast("3", Some(binary)), Err(Skip::Binary));
        assert!(matches!(
            decode_broadcast("3", Some("{nope")),
            Err(Skip::Malformed(_))
        ));
        assert!(matches!(
            decode_broadcast("3", None),
            Err(Skip::Malformed(_))
        ));
    }

    #[test]
    fn may_address_follows_the_adapters_should_include_packet_on_the_sessions_rooms() {
        let rooms = vec!["S1".to_owned(), "ops".to_owned()];
        let with =
            |opts: &str| format!(r#"{{"packet":{{"type":2,"data":["n",1]}},"opts":{opts}}}"#);
        let addressed = [
            with(r#"{"rooms":[],"except":["other"],"flags":{}}"#),
            with(r#"{"rooms":["S1"],"except":[],"flags":{}}"#),
            with(r#"{"rooms":["x","ops"],"except":[],"flags":{}}"#),
            with(r#"{"rooms":[],"except":[],"flags":{"volatile":true}}"#),
            // reference §4.4: io.emit("bin", Buffer.from([1,2,3])), msgpack with bin
            "gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQDAQIDpG9wdHODpXJvb21zkKZleGNlcHSQpWZsYWdzgA=="
                .into(),
            "{not json".into(),
            with(r#"{"flags":{}}"#),
        ];
        for data in &addressed {
            assert!(may_address("3", Some(data), &rooms), "{data}");
        }
        assert!(may_address("3", None, &rooms));
        let elsewhere = [
            with(r#"{"rooms":["x"],"except":[],"flags":{}}"#),
            with(r#"{"rooms":[],"except":["ops"],"flags":{}}"#),
            with(r#"{"rooms":["S1"],"except":["S1"],"flags":{}}"#),
        ];
        for data in &elsewhere {
            assert!(!may_address("3", Some(data), &rooms), "{data}");
        }
        assert!(!may_address("4", Some("{}"), &rooms), "not a broadcast");
    }
}
