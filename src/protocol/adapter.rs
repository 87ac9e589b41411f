//! The stream entry and session record formats of `@socket.io/redis-streams-adapter` 0.3.x
//! (reference §4.4, §4.8), so Node and Rust instances can share one stream.
//!
//! ```text
//! XADD socket.io MAXLEN ~ 10000 * uid 7d38b7221164adb4 nsp / type 3 data
//!      {"packet":{"type":2,"data":["notification",{…}]},"opts":{"rooms":[],"except":[],"flags":{}}}
//! SET sio:session:<pid> base64(msgpack {sid,pid,rooms,data}) PX <window>
//! ```
//!
//! Every BROADCAST entry a Node peer writes decodes to a [`Broadcast`]: its rooms and except (the
//! adapter's `opts`), whether it is volatile, whether its emitter expects acknowledgements, and its event
//! array with binary values taken out as Socket.IO attachments (§2.2). What the hub then does with each
//! kind (deliver live, replay, refuse and count) is decided by the store and the Hub, not here.

use serde_json::Value;

use super::target::{Room, Target};
use super::{base64, msgpack};

/// `MessageType.BROADCAST` of socket.io-adapter's cluster adapter.
pub const BROADCAST: &str = "3";
/// `MessageType.SOCKETS_JOIN`: `io.in(…).socketsJoin(rooms)`.
pub const SOCKETS_JOIN: &str = "4";
/// `MessageType.SOCKETS_LEAVE`: `io.in(…).socketsLeave(rooms)`.
pub const SOCKETS_LEAVE: &str = "5";

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

/// A BROADCAST entry, decoded (reference §4.3, §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// `opts.rooms`: only sockets in one of them; empty: the whole namespace.
    pub rooms: Vec<String>,
    /// `opts.except`: never sockets in one of them.
    pub except: Vec<String>,
    /// `packet.data` as compact JSON text, each binary value replaced by socket.io-parser's
    /// placeholder `{"_placeholder":true,"num":N}`: `["bin",{"_placeholder":true,"num":0}]`.
    pub args: String,
    /// The binary values of `packet.data` (msgpack `bin`), in placeholder order; empty: a plain event.
    pub attachments: Vec<Vec<u8>>,
    /// `opts.flags.volatile`: `io.volatile.emit(…)`, delivered without an offset (socket.io-adapter's
    /// `addOffsetIfNecessary`).
    pub volatile: bool,
    /// The emitter waits for acknowledgements: `packet.id` (`socket.emit(…, ack)` with connection
    /// state recovery on, reference §3.2) or `requestId` (a broadcast with acks, answered with
    /// BROADCAST_CLIENT_COUNT and BROADCAST_ACK over Pub/Sub, §4.7).
    pub expects_ack: bool,
    /// `packet.type` is EVENT (2) and `packet.data` an event array (`[name, …]`, the name a string
    /// or a number): what socket.io's broadcast writes. Anything else is not delivered.
    pub event: bool,
}

impl Broadcast {
    /// socket.io-adapter's `shouldIncludePacket`: whether a socket in `session_rooms` is addressed.
    pub fn includes(&self, session_rooms: &[String]) -> bool {
        fn names(rooms: &[String]) -> Vec<&str> {
            rooms.iter().map(String::as_str).collect()
        }
        included(session_rooms, &names(&self.rooms), &names(&self.except))
    }
}

/// Why an entry is not a [`Broadcast`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Not a BROADCAST (room operations, disconnects, v0.2 heartbeats and requests).
    #[error("message type {0} is not a broadcast")]
    NotBroadcast(String),
    /// `data` is neither JSON nor base64 msgpack of a broadcast message.
    #[error("data does not decode: {0}")]
    Malformed(String),
}

/// Decodes the `data` of a stream entry of type `kind` (the adapter's own rule: JSON if it starts with
/// `{`, base64 of msgpack otherwise).
pub fn decode_broadcast(kind: &str, data: Option<&str>) -> Result<Broadcast, Skip> {
    if kind != BROADCAST {
        return Err(Skip::NotBroadcast(kind.chars().take(8).collect()));
    }
    let data = data.ok_or_else(|| Skip::Malformed("no data field".into()))?;
    let (message, attachments): (Value, Vec<Vec<u8>>) = if data.starts_with('{') {
        let value = super::json::from_str(data).map_err(|e| Skip::Malformed(e.to_string()))?;
        (value, Vec::new())
    } else {
        let bytes = base64::decode(data).map_err(|e| Skip::Malformed(e.to_string()))?;
        msgpack::decode_binary(&bytes).map_err(|e| Skip::Malformed(e.to_string()))?
    };
    let opts = &message["opts"];
    // Rooms are strings (socket.io's `Room`); absent lists are empty (the emitter package's
    // entries of older versions), anything else is malformed.
    let names = |field: &str| -> Result<Vec<String>, Skip> {
        match &opts[field] {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .map(|room| room.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| Skip::Malformed(format!("opts.{field} holds a non-string"))),
            _ => Err(Skip::Malformed(format!("opts.{field} is not an array"))),
        }
    };
    let (rooms, except) = (names("rooms")?, names("except")?);
    let packet = &message["packet"];
    let args = &packet["data"];
    let event = packet["type"] == 2
        && args
            .as_array()
            .is_some_and(|a| a.first().is_some_and(|n| n.is_string() || n.is_number()));
    Ok(Broadcast {
        rooms,
        except,
        args: args.to_string(),
        attachments,
        volatile: opts["flags"]["volatile"].as_bool() == Some(true),
        expects_ack: !packet.get("id").is_none_or(Value::is_null)
            || !message["requestId"].is_null(),
        event,
    })
}

/// socket.io-adapter's `shouldIncludePacket(sessionRooms, opts)`: `rooms` empty or one of them is the
/// session's, and none of `except` is.
pub fn included(session_rooms: &[String], rooms: &[&str], except: &[&str]) -> bool {
    let member = |room: &&str| session_rooms.iter().any(|own| own == room);
    (rooms.is_empty() || rooms.iter().any(member)) && !except.iter().any(member)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_peers_lone_surrogate_is_delivered_as_the_replacement_character() {
        // The adapter writes `JSON.stringify` of what a Node client sent: a lone half stays escaped.
        let data = r#"{"packet":{"type":2,"data":["x","cut \ud83d"],"nsp":"/"},"opts":{"rooms":[],"except":[],"flags":{}}}"#;
        assert_eq!(
            decode_broadcast(BROADCAST, Some(data)).unwrap().args,
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

    /// A decoded broadcast with `args` and every other field at its plain-broadcast value.
    fn plain(args: &str) -> Broadcast {
        Broadcast {
            rooms: vec![],
            except: vec![],
            args: args.into(),
            attachments: vec![],
            volatile: false,
            expects_ack: false,
            event: true,
        }
    }

    fn names(rooms: &[&str]) -> Vec<String> {
        rooms.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn decode_broadcast_reads_json_and_msgpack_entries() {
        let json = broadcast_data(&everyone(), r#"["notification",{"title":"t"}]"#);
        let expected = plain(r#"["notification",{"title":"t"}]"#);
        assert_eq!(decode_broadcast("3", Some(&json)), Ok(expected.clone()));
        let packed = base64::encode(&msgpack::encode(&serde_json::from_str(&json).unwrap()));
        assert_eq!(decode_broadcast("3", Some(&packed)), Ok(expected));
    }

    #[test]
    fn decode_broadcast_reads_a_node_peers_targeted_entries() {
        // reference §4.4, captured with MONITOR: io.to("room1").except("room9").emit("inroom", "x")
        let targeted = r#"{"packet":{"type":2,"data":["inroom","x"]},"opts":{"rooms":["room1"],"except":["room9"],"flags":{}}}"#;
        assert_eq!(
            decode_broadcast("3", Some(targeted)),
            Ok(Broadcast {
                rooms: names(&["room1"]),
                except: names(&["room9"]),
                ..plain(r#"["inroom","x"]"#)
            })
        );
        // reference §4.4: a direct emit (CSR on) is a broadcast to the socket's own sid room.
        let direct = r#"{"packet":{"type":2,"data":["direct",42]},"opts":{"rooms":["vc9XSiRG08Y5X8yAAAAA"],"except":[],"flags":{}}}"#;
        assert_eq!(
            decode_broadcast("3", Some(direct)).map(|b| b.rooms),
            Ok(names(&["vc9XSiRG08Y5X8yAAAAA"]))
        );
        // io.except("ops").emit(…): everyone but ops.
        let except = r#"{"packet":{"type":2,"data":["n",1]},"opts":{"rooms":[],"except":["ops"],"flags":{}}}"#;
        let decoded = decode_broadcast("3", Some(except)).unwrap();
        assert!(decoded.includes(&names(&["S1"])));
        assert!(!decoded.includes(&names(&["S1", "ops"])));
    }

    #[test]
    fn decode_broadcast_reads_a_node_peers_volatile_entry() {
        // reference §4.4: io.volatile.emit("vol", 1)
        let volatile = r#"{"packet":{"type":2,"data":["vol",1]},"opts":{"rooms":[],"except":[],"flags":{"volatile":true}}}"#;
        assert_eq!(
            decode_broadcast("3", Some(volatile)),
            Ok(Broadcast {
                volatile: true,
                ..plain(r#"["vol",1]"#)
            })
        );
    }

    #[test]
    fn decode_broadcast_reads_absent_rooms_and_except_as_empty_and_refuses_other_shapes() {
        // Older emitters write opts without the lists: everyone, as the adapter's decodeOptions reads it.
        let bare = r#"{"packet":{"type":2,"data":["n",1]},"opts":{"flags":{}}}"#;
        assert_eq!(decode_broadcast("3", Some(bare)), Ok(plain(r#"["n",1]"#)));
        let only_except = r#"{"packet":{"type":2,"data":["n",1]},"opts":{"except":["ops"]}}"#;
        assert_eq!(
            decode_broadcast("3", Some(only_except)).map(|b| (b.rooms, b.except)),
            Ok((vec![], vec!["ops".to_owned()]))
        );
        for bad in [r#"{"rooms":"ops"}"#, r#"{"rooms":[],"except":[1]}"#] {
            let data = format!(r#"{{"packet":{{"type":2,"data":["n",1]}},"opts":{bad}}}"#);
            assert!(
                matches!(decode_broadcast("3", Some(&data)), Err(Skip::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn decode_broadcast_takes_a_node_peers_binary_values_out_as_attachments() {
        // reference §4.4: io.emit("bin", Buffer.from([1,2,3])), base64 of msgpack with `bin`
        let binary =
            "gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQDAQIDpG9wdHODpXJvb21zkKZleGNlcHSQpWZsYWdzgA==";
        assert_eq!(
            decode_broadcast("3", Some(binary)),
            Ok(Broadcast {
                attachments: vec![vec![1, 2, 3]],
                ..plain(r#"["bin",{"_placeholder":true,"num":0}]"#)
            })
        );
    }

    #[test]
    fn decode_broadcast_marks_entries_whose_emitter_expects_acks() {
        // socket.emit("a", ack) with CSR on (packet.id), and a broadcast with acks (requestId, v0.2
        // wrote it to the stream; v0.3 publishes it).
        let with_id = r#"{"packet":{"type":2,"data":["a"],"id":3},"opts":{"rooms":["S1"],"except":[],"flags":{}}}"#;
        let with_request = r#"{"packet":{"type":2,"data":["a"]},"requestId":"572d0e0b5a3c4c1f","opts":{"rooms":[],"except":[],"flags":{"timeout":5000}}}"#;
        for data in [with_id, with_request] {
            let decoded = decode_broadcast("3", Some(data)).unwrap();
            assert!(decoded.expects_ack, "{data}");
            assert_eq!(decoded.args, r#"["a"]"#);
        }
        let null_id = r#"{"packet":{"type":2,"data":["a"],"id":null},"opts":{"rooms":[],"except":[],"flags":{}}}"#;
        assert!(!decode_broadcast("3", Some(null_id)).unwrap().expects_ack);
    }

    #[test]
    fn decode_broadcast_marks_packets_that_are_not_events() {
        let with = |packet: &str| {
            format!(r#"{{"packet":{packet},"opts":{{"rooms":[],"except":[],"flags":{{}}}}}}"#)
        };
        for packet in [
            r#"{"type":3,"data":["a"]}"#,
            r#"{"type":2,"data":[]}"#,
            r#"{"type":2,"data":[{"a":1}]}"#,
            r#"{"type":2,"data":"a"}"#,
            r#"{"type":2}"#,
        ] {
            let decoded = decode_broadcast("3", Some(&with(packet))).unwrap();
            assert!(!decoded.event, "{packet}");
        }
        assert!(
            decode_broadcast("3", Some(&with(r#"{"type":2,"data":[7]}"#)))
                .unwrap()
                .event
        );
    }

    #[test]
    fn decode_broadcast_skips_other_types_and_malformed_data() {
        assert_eq!(
            decode_broadcast("1", None),
            Err(Skip::NotBroadcast("1".into()))
        );
        // reference §4.3: io.in("a").socketsJoin("b")
        let join = r#"{"opts":{"rooms":["a"],"except":[],"flags":{}},"rooms":["b"]}"#;
        assert_eq!(
            decode_broadcast(SOCKETS_JOIN, Some(join)),
            Err(Skip::NotBroadcast("4".into()))
        );
        for data in [
            "{nope",
            "not base64!",
            // base64 of msgpack ext 8 (a timestamp): no JSON value
            "1P8AAAAA",
            r#"{"packet":{"type":2,"data":["a"]},"opts":{"rooms":"r","except":[],"flags":{}}}"#,
            r#"{"packet":{"type":2,"data":["a"]},"opts":{"rooms":[1],"except":[],"flags":{}}}"#,
            r#"{"packet":{"type":2,"data":["a"]},"opts":{"rooms":[],"except":{},"flags":{}}}"#,
        ] {
            assert!(
                matches!(decode_broadcast("3", Some(data)), Err(Skip::Malformed(_))),
                "{data}"
            );
        }
        assert!(matches!(
            decode_broadcast("3", None),
            Err(Skip::Malformed(_))
        ));
    }

    #[test]
    fn included_follows_the_adapters_should_include_packet() {
        let rooms = names(&["S1", "ops"]);
        assert!(included(&rooms, &[], &[]));
        assert!(included(&rooms, &[], &["other"]));
        assert!(included(&rooms, &["S1"], &[]));
        assert!(included(&rooms, &["x", "ops"], &[]));
        assert!(!included(&rooms, &["x"], &[]));
        assert!(!included(&rooms, &[], &["ops"]));
        assert!(!included(&rooms, &["S1"], &["S1"]));
    }
}
