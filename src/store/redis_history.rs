//! The Redis backend's history reads ([`LogBackend::read_range`](super::LogBackend::read_range)):
//! `XRANGE` / `XREVRANGE … COUNT` with exclusive bounds, in one script with the stream's state and
//! epoch, so the offset checks and the entries come from one snapshot.
//!
//! ```text
//! forward   XRANGE    <key> (<from> + COUNT <n>     (no from: -)
//! backward  XREVRANGE <key> (<from> - COUNT <n>     (no from: +)
//! ```
//! Entries are decoded as the read loop decodes them (the adapter's BROADCAST format), without
//! counting anything: the read loop counts each entry once. What is not a broadcast event (room
//! operations, DISCONNECT_SOCKETS, other message types, malformed entries, events whose emitter
//! expects acks, which are never delivered) is read and left out.

use redis::Value;

use super::redis::{as_int, as_string, entry_field, parse_id, unavailable, StreamState};
use super::redis_entries::log_entry;
use super::redis_identity::READ_RANGE_SCRIPT;
use super::{Direction, Epoch, LogEntry, LogRange, RangeQuery, StoreError};
use crate::protocol::adapter;
use crate::protocol::ids::StreamId;

impl StreamState {
    /// Whether a backward read before `before` finds what the stream held before it: refused as
    /// trimmed when something was removed and `before` is older than the oldest entry kept
    /// (everything before it is gone), as ahead when the stream never issued it.
    pub(super) fn covers_before(&self, before: StreamId) -> Result<(), StoreError> {
        if before > self.last_generated {
            return Err(StoreError::OffsetAhead(before));
        }
        if self.lost_any && self.first.is_none_or(|first| before < first) {
            return Err(StoreError::OffsetTrimmed(before));
        }
        Ok(())
    }
}

/// [`LogBackend::read_range`](super::LogBackend::read_range) on stream `key`.
pub(super) async fn read_range(
    conn: &mut super::redis_link::Link,
    key: &str,
    query: &RangeQuery,
) -> Result<LogRange, StoreError> {
    // Redis refuses an exclusive bound it cannot step past ("invalid start/end ID for the
    // interval"), which would read as the log being unavailable: before `0-0` is read from `0-0`
    // itself (never an entry's id), after the greatest id from `+` (nothing can follow it).
    let exclusive = |id: StreamId| match id {
        StreamId::ZERO => id.to_string(),
        StreamId {
            ms: u64::MAX,
            seq: u64::MAX,
        } => "+".to_owned(),
        id => format!("({id}"),
    };
    let (command, start, end) = match query.direction {
        Direction::Forward => ("XRANGE", query.from.map_or("-".into(), exclusive), "+"),
        Direction::Backward => ("XREVRANGE", query.from.map_or("+".into(), exclusive), "-"),
    };
    let reply: Value = redis::cmd("EVAL")
        .arg(READ_RANGE_SCRIPT)
        .arg(1)
        .arg(key)
        .arg(command)
        .arg(start)
        .arg(end)
        .arg(query.count.max(1))
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    let Value::Array(parts) = reply else {
        return Err(StoreError::Unavailable(format!(
            "unexpected reply {reply:?}"
        )));
    };
    let [deleted, last, first, added, length, entries, epoch] = parts.as_slice() else {
        return Err(StoreError::Unavailable("unexpected reply length".into()));
    };
    let found = as_string(epoch).unwrap_or_default();
    if let Some(expected) = query.epoch.as_ref().filter(|e| e.as_str() != found) {
        return Err(StoreError::EpochChanged {
            expected: expected.clone(),
            found,
        });
    }
    if let Some(from) = query.from {
        let state = StreamState {
            max_deleted: parse_id(deleted)?,
            last_generated: parse_id(last)?,
            first: parse_id(first).ok(),
            lost_any: as_int(added) != as_int(length),
        };
        match query.direction {
            Direction::Forward => state.covers(from)?,
            Direction::Backward => state.covers_before(from)?,
        }
    }
    let (entries, read, last) = decode_history(entries)?;
    Ok(LogRange {
        entries,
        read,
        last,
        epoch: Epoch::from(found.as_str()),
    })
}

/// The broadcast events of an XRANGE / XREVRANGE reply (in its order), how many entries it had,
/// and the id of its last one.
fn decode_history(value: &Value) -> Result<(Vec<LogEntry>, usize, Option<StreamId>), StoreError> {
    let Value::Array(items) = value else {
        return Ok((Vec::new(), 0, None));
    };
    let mut entries = Vec::new();
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
            continue;
        };
        if kind != adapter::BROADCAST {
            continue;
        }
        match adapter::decode_broadcast(&kind, field("data").as_deref()) {
            Ok(broadcast) if broadcast.event && !broadcast.expects_ack => {
                entries.push(log_entry(id, nsp, broadcast));
            }
            _ => {}
        }
    }
    Ok((entries, items.len(), last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(last: u64, first: Option<u64>, lost_any: bool) -> StreamState {
        StreamState {
            max_deleted: StreamId::ZERO,
            last_generated: StreamId::new(last, 0),
            first: first.map(|ms| StreamId::new(ms, 0)),
            lost_any,
        }
    }

    #[test]
    fn covers_before_refuses_offsets_older_than_the_oldest_kept_entry_once_something_was_trimmed() {
        let id = |ms| StreamId::new(ms, 0);
        assert_eq!(state(10, Some(1), false).covers_before(id(5)), Ok(()));
        assert_eq!(state(10, Some(5), true).covers_before(id(5)), Ok(()));
        assert_eq!(state(10, Some(5), true).covers_before(id(10)), Ok(()));
        assert_eq!(
            state(10, Some(5), true).covers_before(id(4)),
            Err(StoreError::OffsetTrimmed(id(4)))
        );
        assert_eq!(
            state(10, None, true).covers_before(id(10)),
            Err(StoreError::OffsetTrimmed(id(10)))
        );
        assert_eq!(
            state(10, Some(1), false).covers_before(id(11)),
            Err(StoreError::OffsetAhead(id(11)))
        );
    }

    #[test]
    fn decode_history_keeps_broadcast_events_and_reads_past_the_rest() {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let entry = |id: &str, kind: &str, data: &str| {
            Value::Array(vec![
                bulk(id),
                Value::Array(vec![
                    bulk("uid"),
                    bulk("peer"),
                    bulk("nsp"),
                    bulk("/"),
                    bulk("type"),
                    bulk(kind),
                    bulk("data"),
                    bulk(data),
                ]),
            ])
        };
        let event = r#"{"packet":{"type":2,"data":["notification",{"id":"a"}],"nsp":"/"},"opts":{"rooms":[],"except":[],"flags":{}}}"#;
        let reply = Value::Array(vec![
            entry("3-0", "3", event),
            entry("2-0", "3", "not json"),
            entry("1-0", "4", "{}"),
        ]);
        let (entries, read, last) = decode_history(&reply).unwrap();
        assert_eq!(read, 3);
        assert_eq!(last, Some(StreamId::new(1, 0)));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, StreamId::new(3, 0));
        assert_eq!(&*entries[0].args, r#"["notification",{"id":"a"}]"#);
    }
}
