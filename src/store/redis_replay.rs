//! A page of a replay from one stream: the READ_AFTER script's atomic snapshot (entries, trim and
//! epoch checks, the lost-tail check against what this instance handed on), decoded.

use redis::Value;

use super::redis::{as_int, as_string, parse_id, unavailable, StreamState};
use super::redis_entries::decode_entries;
use super::redis_identity::READ_AFTER_SCRIPT;
use super::redis_link::Link;
use super::{LogRead, ReplayScope, StoreError};
use crate::metrics::Metrics;
use crate::protocol::ids::StreamId;

/// A replay batch: up to `count` entries after `after`, checked against `handed_on`, the newest id
/// this instance's read loop handed on.
pub(super) struct ReadAfter {
    pub(super) after: StreamId,
    pub(super) count: usize,
    pub(super) handed_on: StreamId,
}

/// A batch of stream entries, in one atomic snapshot with the checks of
/// [`LogBackend::read_after`].
pub(super) async fn read_batch(
    conn: &mut Link,
    key: &str,
    read: ReadAfter,
    scope: &ReplayScope,
    metrics: &Metrics,
) -> Result<LogRead, StoreError> {
    let ReadAfter {
        after,
        count,
        handed_on,
    } = read;
    let reply: Value = redis::cmd("EVAL")
        .arg(READ_AFTER_SCRIPT)
        .arg(1)
        .arg(key)
        .arg(after.next().to_string())
        .arg(count)
        .arg(handed_on.to_string())
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    let Value::Array(parts) = reply else {
        return Err(StoreError::Unavailable(format!(
            "unexpected reply {reply:?}"
        )));
    };
    let [deleted, last, first, added, length, entries, epoch, lost_tail] = parts.as_slice() else {
        return Err(StoreError::Unavailable("unexpected reply length".into()));
    };
    let found = as_string(epoch).unwrap_or_default();
    if as_int(lost_tail) == Some(1) {
        // A failover lost entries this instance handed on: the epoch is about to be replaced (by
        // this instance's read loop, or another's); offsets into the lost tail mean nothing now.
        return Err(StoreError::EpochChanged {
            expected: scope.epoch.clone(),
            found: format!("{found} (lost entries up to {handed_on})"),
        });
    }
    if found != scope.epoch.as_str() {
        return Err(StoreError::EpochChanged {
            expected: scope.epoch.clone(),
            found,
        });
    }
    let state = StreamState {
        max_deleted: parse_id(deleted)?,
        last_generated: parse_id(last)?,
        first: parse_id(first).ok(),
        lost_any: as_int(added) != as_int(length),
    };
    state.covers(after)?;
    let read = match entries {
        Value::Array(items) => items.len(),
        _ => 0,
    };
    let bytes = raw_bytes(entries);
    let (entries, last) = decode_entries(entries, metrics, Some(scope))?;
    Ok(LogRead {
        entries,
        read,
        last,
        bytes,
    })
}

/// Bytes of the field values of an XRANGE reply's entries, delivered or not: a page of large entries
/// the hub skips (a Node peer's other kinds) sizes the next page as much as one it delivers.
fn raw_bytes(entries: &Value) -> usize {
    let Value::Array(items) = entries else {
        return 0;
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Array(pair) => match pair.get(1) {
                Some(Value::Array(fields)) => Some(fields),
                _ => None,
            },
            _ => None,
        })
        .flatten()
        .map(|field| match field {
            Value::BulkString(bytes) => bytes.len(),
            Value::SimpleString(text) => text.len(),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_counts_every_entry_read_delivered_or_skipped() {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let entry = |id: &str, fields: &[&str]| {
            Value::Array(vec![
                bulk(id),
                Value::Array(fields.iter().map(|f| bulk(f)).collect()),
            ])
        };
        let big = "x".repeat(60_000);
        let reply = Value::Array(vec![
            // A broadcast the hub delivers, and an entry of another kind it skips.
            entry("1-0", &["uid", "ab", "nsp", "/", "type", "3", "data", "{}"]),
            entry("2-0", &["uid", "ab", "nsp", "/", "type", "5", "data", &big]),
        ]);
        let delivered = 3 + 2 + 3 + 1 + 4 + 1 + 4 + 2;
        let skipped = 3 + 2 + 3 + 1 + 4 + 1 + 4 + 60_000;
        assert_eq!(raw_bytes(&reply), delivered + skipped);
        assert_eq!(raw_bytes(&Value::Nil), 0);
    }
}
