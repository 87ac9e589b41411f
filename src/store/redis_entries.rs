//! The Redis backend's entries: what a Node peer (or this hub) wrote in the stream, as the log entries
//! the Hub delivers live and a replay returns (see `redis.rs`; the entry formats are the adapter's,
//! `protocol::adapter`).

use actix_web::web::Bytes;
use redis::Value;

use super::redis::{entry_field, parse_id};
use super::{LogEntry, ReplayScope, StoreError};
use crate::metrics::Metrics;
use crate::protocol::adapter;
use crate::protocol::cluster::DISCONNECT_SOCKETS;
use crate::protocol::ids::StreamId;
use crate::protocol::target::{Namespace, Room, Target};

/// The entries of an XREAD / XRANGE reply, and the id of the newest one read.
///
/// Live (`scope` `None`): every BROADCAST a Node peer (or this hub) writes, whatever its target, volatile
/// or binary; the rest is counted in `metrics`: entries that expect acks, that are not events, and room
/// operations as refused, other message types and malformed ones as skipped.
///
/// Replay (`scope` `Some`): what the adapter's `restoreSession` replays to that socket
/// ([`ReplayScope::restores`]), acks' entries as plain events (as the adapter does); a BROADCAST of its
/// namespace that does not decode as an event fails the read with `Unreplayable` when it may be
/// addressed to the socket (the adapter's restore fails on it too). Nothing is counted: the read loop
/// counts each entry once.
pub(super) fn decode_entries(
    value: &Value,
    metrics: &Metrics,
    scope: Option<&ReplayScope>,
) -> Result<(Vec<LogEntry>, Option<StreamId>), StoreError> {
    let Value::Array(items) = value else {
        return Ok((Vec::new(), None));
    };
    let mut entries = Vec::with_capacity(items.len());
    let mut last = None;
    for item in items {
        let Value::Array(pair) = item else { continue };
        let [id, Value::Array(fields)] = pair.as_slice() else {
            continue;
        };
        let id = parse_id(id)?;
        last = Some(id);
        let field = |name: &str| entry_field(fields, name);
        let (Some(nsp), Some(kind)) = (field("nsp"), field("type")) else {
            if scope.is_none() {
                metrics.entries_skipped.inc();
            }
            continue;
        };
        if kind == DISCONNECT_SOCKETS {
            // A command, not a broadcast: the read loop acts on it (`redis_commands.rs`); never replayed.
            continue;
        }
        if let Some(scope) = scope {
            // restoreSession looks at BROADCASTs of the socket's namespace only.
            if nsp != scope.nsp.as_str() || kind != adapter::BROADCAST {
                continue;
            }
        }
        let decoded = adapter::decode_broadcast(&kind, field("data").as_deref());
        match (decoded, scope) {
            (Ok(broadcast), Some(scope)) => {
                if !broadcast.event {
                    if broadcast.includes(&scope.rooms) {
                        return Err(StoreError::Unreplayable(id));
                    }
                    continue;
                }
                let entry = log_entry(id, nsp, broadcast);
                if scope.restores(&entry) {
                    entries.push(entry);
                }
            }
            (Err(_), Some(_)) => return Err(StoreError::Unreplayable(id)),
            (Ok(broadcast), None) => {
                let refused = &metrics.entries_refused;
                if !broadcast.event {
                    refused.not_event.inc();
                    log::debug!("stream entry not delivered id={id} reason=\"not an event\"");
                } else if broadcast.expects_ack {
                    refused.ack.inc();
                    log::debug!(
                        "stream entry not delivered id={id} reason=\"its emitter expects acks\""
                    );
                } else {
                    entries.push(log_entry(id, nsp, broadcast));
                }
            }
            (Err(skip), None) => {
                if kind == adapter::SOCKETS_JOIN || kind == adapter::SOCKETS_LEAVE {
                    metrics.entries_refused.room_operation.inc();
                } else {
                    metrics.entries_skipped.inc();
                }
                log::debug!("stream entry not delivered id={id} reason=\"{skip}\"");
            }
        }
    }
    Ok((entries, last))
}

/// The log entry of a decoded broadcast on `nsp`.
pub(super) fn log_entry(id: StreamId, nsp: String, broadcast: adapter::Broadcast) -> LogEntry {
    let rooms = |names: Vec<String>| names.into_iter().map(Room::from).collect();
    LogEntry {
        id,
        target: Target {
            nsp: Namespace::from(nsp),
            rooms: rooms(broadcast.rooms),
            except: rooms(broadcast.except),
        },
        args: broadcast.args.into(),
        volatile: broadcast.volatile,
        attachments: broadcast.attachments.into_iter().map(Bytes::from).collect(),
        shard: 0,
        position: None,
    }
}

/// How many of `delivered` (entries decoded from `items`, in id order) another instance appended:
/// their `uid` field is not `own_uid` (`hub_notifications_published_total{source="peer"}`).
pub(super) fn from_peers(items: &Value, delivered: &[LogEntry], own_uid: &str) -> u64 {
    let Value::Array(items) = items else {
        return 0;
    };
    let mut count = 0;
    for item in items {
        let Value::Array(pair) = item else { continue };
        let [id, Value::Array(fields)] = pair.as_slice() else {
            continue;
        };
        let Ok(id) = parse_id(id) else { continue };
        let ours = entry_field(fields, "uid").is_some_and(|uid| uid == own_uid);
        if !ours
            && delivered
                .binary_search_by(|entry| entry.id.cmp(&id))
                .is_ok()
        {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    /// An XRANGE / XREAD reply of entries `(id, nsp, type, data)`, as a Node peer writes them.
    fn reply(entries: &[(&str, &str, &str, &str)]) -> Value {
        Value::Array(
            entries
                .iter()
                .map(|(id, nsp, kind, data)| {
                    let fields = [
                        "uid",
                        "7d38b7221164adb4",
                        "nsp",
                        nsp,
                        "type",
                        kind,
                        "data",
                        data,
                    ];
                    Value::Array(vec![
                        bulk(id),
                        Value::Array(fields.iter().map(|f| bulk(f)).collect()),
                    ])
                })
                .collect(),
        )
    }

    fn data(event: &str, opts: &str) -> String {
        format!(r#"{{"packet":{{"type":2,"data":{event}}},"opts":{opts}}}"#)
    }

    const EVERYONE: &str = r#"{"rooms":[],"except":[],"flags":{}}"#;
    const EXCEPT_OPS: &str = r#"{"rooms":[],"except":["ops"],"flags":{}}"#;
    const TO_OPS: &str = r#"{"rooms":["ops"],"except":[],"flags":{}}"#;
    const TO_S1: &str = r#"{"rooms":["S1"],"except":[],"flags":{}}"#;
    const VOLATILE: &str = r#"{"rooms":[],"except":[],"flags":{"volatile":true}}"#;
    /// reference §4.4: io.emit("bin", Buffer.from([1,2,3]))
    const BINARY: &str =
        "gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQDAQIDpG9wdHODpXJvb21zkKZleGNlcHSQpWZsYWdzgA==";

    fn scope(rooms: &[&str]) -> ReplayScope {
        ReplayScope {
            epoch: super::super::Epoch::from("e"),
            nsp: Namespace::main(),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn from_peers_counts_the_delivered_entries_of_other_uids_only() {
        let metrics = Metrics::default();
        let items = reply(&[
            ("1-0", "/", "3", &data(r#"["a",1]"#, EVERYONE)),
            ("2-0", "/", "3", &data(r#"["b",2]"#, EVERYONE)),
            ("3-0", "/", "3", "{broken"),
        ]);
        let (entries, _) = decode_entries(&items, &metrics, None).unwrap();
        assert_eq!(entries.len(), 2);
        // `reply` writes every entry with uid 7d38b7221164adb4; the broken one is not delivered.
        assert_eq!(from_peers(&items, &entries, "0000000000000000"), 2);
        assert_eq!(from_peers(&items, &entries, "7d38b7221164adb4"), 0);
        assert_eq!(from_peers(&items, &entries[1..], "0000000000000000"), 1);
    }

    #[test]
    fn decode_entries_hands_every_kind_of_a_node_peers_broadcast_to_the_hub_live() {
        let metrics = Metrics::default();
        let with_ack = r#"{"packet":{"type":2,"data":["a"],"id":3},"opts":{"rooms":["S9"],"except":[],"flags":{}}}"#;
        let not_event =
            r#"{"packet":{"type":3,"data":["a"]},"opts":{"rooms":[],"except":[],"flags":{}}}"#;
        let join = r#"{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":["ops"]}"#;
        let (entries, last) = decode_entries(
            &reply(&[
                ("1-0", "/", "3", &data(r#"["all",1]"#, EVERYONE)),
                ("2-0", "/", "3", &data(r#"["notops",2]"#, EXCEPT_OPS)),
                ("3-0", "/admin", "3", &data(r#"["ops",3]"#, TO_OPS)),
                ("4-0", "/", "3", &data(r#"["vol",4]"#, VOLATILE)),
                ("5-0", "/", "3", BINARY),
                ("6-0", "/", "3", with_ack),
                ("7-0", "/", "3", not_event),
                ("8-0", "/", "4", join),
                ("9-0", "/", "5", join),
                ("10-0", "/", "2", ""),
                ("11-0", "/", "3", "{broken"),
            ]),
            &metrics,
            None,
        )
        .unwrap();
        assert_eq!(last, Some(StreamId::new(11, 0)));
        let room = |names: &[&str]| names.iter().map(|n| Room::from(*n)).collect::<Vec<_>>();
        let ids: Vec<String> = entries.iter().map(|e| e.id.to_string()).collect();
        assert_eq!(ids, ["1-0", "2-0", "3-0", "4-0", "5-0"]);
        assert_eq!(entries[1].target.except, room(&["ops"]));
        assert_eq!(entries[2].target.nsp.as_str(), "/admin");
        assert_eq!(entries[2].target.rooms, room(&["ops"]));
        assert!(entries[3].volatile && !entries[0].volatile);
        assert_eq!(
            &*entries[4].args,
            r#"["bin",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(&*entries[4].attachments, [Bytes::from_static(&[1, 2, 3])]);
        assert_eq!(metrics.entries_refused.ack.get(), 1);
        assert_eq!(metrics.entries_refused.not_event.get(), 1);
        assert_eq!(metrics.entries_refused.room_operation.get(), 2);
        assert_eq!(
            metrics.entries_skipped.get(),
            2,
            "type 2 and the malformed one"
        );
    }

    #[test]
    fn decode_entries_replays_what_the_adapters_restore_session_replays_to_the_socket() {
        let metrics = Metrics::default();
        let with_ack = r#"{"packet":{"type":2,"data":["a",6],"id":3},"opts":{"rooms":["S1"],"except":[],"flags":{}}}"#;
        let entries = [
            ("1-0", "/", "3", data(r#"["all",1]"#, EVERYONE)),
            ("2-0", "/", "3", data(r#"["notops",2]"#, EXCEPT_OPS)),
            ("3-0", "/", "3", data(r#"["ops",3]"#, TO_OPS)),
            ("4-0", "/", "3", data(r#"["vol",4]"#, VOLATILE)),
            ("5-0", "/", "3", BINARY.to_owned()),
            ("6-0", "/", "3", with_ack.to_owned()),
            ("7-0", "/", "3", data(r#"["mine",7]"#, TO_S1)),
            ("8-0", "/admin", "3", data(r#"["admin",8]"#, EVERYONE)),
            ("9-0", "/", "4", r#"{"opts":{},"rooms":["x"]}"#.to_owned()),
            ("10-0", "/admin", "3", "{broken".to_owned()),
        ];
        let borrowed: Vec<(&str, &str, &str, &str)> = entries
            .iter()
            .map(|(a, b, c, d)| (*a, *b, *c, d.as_str()))
            .collect();
        let replayed = |rooms: &[&str]| {
            let (entries, last) =
                decode_entries(&reply(&borrowed), &metrics, Some(&scope(rooms))).unwrap();
            assert_eq!(last, Some(StreamId::new(10, 0)));
            entries
                .iter()
                .map(|e| e.args.to_string())
                .collect::<Vec<_>>()
        };
        // Volatile left out; binary with its placeholder (attachments kept); the ack's entry as a
        // plain event (restoreSession replays packet.data without the id).
        assert_eq!(
            replayed(&["S1"]),
            [
                r#"["all",1]"#,
                r#"["notops",2]"#,
                r#"["bin",{"_placeholder":true,"num":0}]"#,
                r#"["a",6]"#,
                r#"["mine",7]"#
            ]
        );
        assert_eq!(
            replayed(&["S2", "ops"]),
            [
                r#"["all",1]"#,
                r#"["ops",3]"#,
                r#"["bin",{"_placeholder":true,"num":0}]"#
            ]
        );
        let (binary, _) =
            decode_entries(&reply(&borrowed[4..5]), &metrics, Some(&scope(&["S1"]))).unwrap();
        assert_eq!(&*binary[0].attachments, [Bytes::from_static(&[1, 2, 3])]);
        let counted = [
            metrics.entries_skipped.get(),
            metrics.entries_refused.ack.get(),
            metrics.entries_refused.room_operation.get(),
        ];
        assert_eq!(
            counted,
            [0, 0, 0],
            "a replay counts nothing: the read loop does"
        );
    }

    #[test]
    fn decode_entries_refuses_a_replay_across_an_entry_of_its_namespace_that_does_not_decode() {
        let metrics = Metrics::default();
        let not_event =
            r#"{"packet":{"type":3,"data":["a"]},"opts":{"rooms":["S1"],"except":[],"flags":{}}}"#;
        for bad in ["{broken", not_event] {
            let read = decode_entries(
                &reply(&[
                    ("1-0", "/", "3", &data("[\"a\"]", EVERYONE)),
                    ("2-0", "/", "3", bad),
                ]),
                &metrics,
                Some(&scope(&["S1"])),
            );
            assert_eq!(
                read,
                Err(StoreError::Unreplayable(StreamId::new(2, 0))),
                "{bad}"
            );
        }
        // Not the socket's: a non-event packet for other rooms is passed over.
        let elsewhere =
            r#"{"packet":{"type":3,"data":["a"]},"opts":{"rooms":["S2"],"except":[],"flags":{}}}"#;
        let read = decode_entries(
            &reply(&[("1-0", "/", "3", elsewhere)]),
            &metrics,
            Some(&scope(&["S1"])),
        );
        assert_eq!(read, Ok((vec![], Some(StreamId::new(1, 0)))));
    }
}
