//! The Redis append path: its own connection, so every failure of an append is classified where it
//! happens, and the keyed (idempotent) append script.
//!
//! Owns: the append connection (RESP3, so the client library tells us when it drops).
//!
//! ```text
//! connect (TCP + HELLO)  fails ─► Unavailable     never sent: nothing was published
//! connection known down       ─► reconnect first (a failure there: never sent)
//! command sent, Redis answers -ERR/-OOM/-LOADING/-READONLY… ─► Unavailable   refused: nothing written
//! command sent, no answer in time / connection lost ─► OutcomeUnknown (and the connection is replaced)
//! reply of an unexpected shape ─► OutcomeUnknown  (it was carried out, we cannot say how)
//! ```
//! Why a Redis error reply means nothing was written: XADD is one command and Redis refuses a
//! command before running it (OOM, LOADING, READONLY, NOPERM, WRONGTYPE on the key); the keyed
//! script does its only read first and XADD is its first write, and once a script has written
//! Redis refuses none of its later writes (the OOM check is made before the first write only), so
//! the script's SET after XADD cannot fail.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::{ProtocolVersion, Value};

use super::redis_link::{connection_spent, Endpoint, Link, LinkOptions};
use super::{AppendKey, KeyedAppend, StoreError};
use crate::protocol::ids::StreamId;

/// Key prefix of idempotency records: `hub:idempotency:{<stream key>}:<idempotency key>`. The
/// stream key in braces is a Redis Cluster hash tag equal to the stream key's own slot, so the
/// script's two keys live in one slot (a stream key with a hash tag of its own lends that one:
/// see [`stream_tag`]).
pub const IDEMPOTENCY_KEY_PREFIX: &str = "hub:idempotency:";

/// The hash tag on the stream key's slot (`{<stream>}`, or the stream key's own `{tag}`). A key no
/// tag can join is refused on a Cluster when the backend is built; elsewhere slots do not matter.
pub(super) fn stream_tag(stream: &str) -> String {
    super::redis_identity::slot_tag(stream).unwrap_or_else(|| format!("{{{stream}}}"))
}

/// The keyed append, atomically: a key already appended answers with what it stored and appends
/// nothing; otherwise XADD with the adapter's exact fields, then the key is stored with its TTL.
/// KEYS: stream, idempotency record. ARGV: max length, uid, nsp, type, data, stored value prefix
/// (`<fingerprint> <receipt>`), TTL in ms.
/// Returns {1, id} when it appended, {0, "<fingerprint> <receipt> <id>"} when the key was seen. A
/// seen key's TTL is refreshed: a write, so that the `WAIT` of `HUB_REDIS_MIN_REPLICAS` after a
/// retry covers the first append too (Redis sets a client's WAIT offset at its last propagated write).
const APPEND_ONCE_SCRIPT: &str = r"
local seen = redis.call('GET', KEYS[2])
if seen then
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
  return {0, seen}
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
                      'uid', ARGV[2], 'nsp', ARGV[3], 'type', ARGV[4], 'data', ARGV[5])
redis.call('SET', KEYS[2], ARGV[6] .. ' ' .. id, 'PX', ARGV[7])
return {1, id}
";

/// `HUB_REDIS_MIN_REPLICAS`: an append is acknowledged only once this many replicas have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinReplicas {
    /// Replicas that must acknowledge (`WAIT <replicas> …`); at least 1.
    pub replicas: u32,
    /// How long to wait for them (`WAIT … <timeout>`).
    pub timeout: Duration,
}

/// The append connection. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub(super) struct AppendLink {
    /// To the primary (over RESP3, for the disconnect notice); replaced when it drops or the node
    /// it holds answers that it is no longer the primary.
    link: Link,
    /// Replicas each append waits for, if any.
    min_replicas: Option<MinReplicas>,
}

impl AppendLink {
    /// A link to `endpoint` with `timeout` for connecting and for each answer.
    pub(super) fn new(endpoint: Arc<Endpoint>, timeout: Duration) -> AppendLink {
        AppendLink {
            link: Link::new(endpoint, LinkOptions::new(ProtocolVersion::RESP3, timeout)),
            min_replicas: None,
        }
    }

    /// Makes every append wait for `min` replicas before it counts as done.
    pub(super) fn with_min_replicas(mut self, min: Option<MinReplicas>) -> AppendLink {
        self.min_replicas = min;
        self
    }

    /// Sends `cmd` and classifies a failure: [`StoreError::Unavailable`] when nothing was written,
    /// [`StoreError::OutcomeUnknown`] when it may have been. With `replicated` (the key written to)
    /// and `HUB_REDIS_MIN_REPLICAS` set, [`StoreError::NotReplicated`] when it was written but fewer
    /// replicas acknowledged it in time than asked (and `OutcomeUnknown` when `WAIT` itself failed).
    pub(super) async fn send(
        &self,
        cmd: &redis::Cmd,
        replicated: Option<&str>,
    ) -> Result<Value, StoreError> {
        let (mut conn, spent) = self
            .link
            .connection()
            .await
            .map_err(|e| StoreError::Unavailable(format!("not sent, cannot connect: {e}")))?;
        let value = match cmd.query_async::<Value>(&mut conn).await {
            Ok(value) => value,
            // Redis answered: it refused the command before writing anything (see the module doc).
            Err(err) if err.code().is_some() => {
                if connection_spent(&err) {
                    // A demoted primary (READONLY): the next append asks Sentinel again.
                    spent.store(true, Ordering::Relaxed);
                }
                return Err(StoreError::Unavailable(format!(
                    "refused by redis, nothing written: {err}"
                )));
            }
            Err(err) => {
                // Sent, no answer: the next append starts on a fresh connection, so that a server
                // that stopped answering makes it fail at connect time (never sent) instead.
                spent.store(true, Ordering::Relaxed);
                return Err(StoreError::OutcomeUnknown(format!(
                    "sent, no answer from redis: {err}"
                )));
            }
        };
        let (Some(min), Some(stream)) = (self.min_replicas, replicated) else {
            return Ok(value);
        };
        // WAIT covers every write this connection made before it, ours included (and, for a key
        // already seen, the script's TTL refresh, which follows the first append in the
        // replication stream).
        match conn
            .wait_for_replicas(stream, min.replicas, min.timeout)
            .await
        {
            Ok(acked) if acked >= i64::from(min.replicas) => Ok(value),
            Ok(acked) => Err(StoreError::NotReplicated(format!(
                "written, but {acked} of {} replicas acknowledged it within {} ms \
                 (HUB_REDIS_MIN_REPLICAS): a failover now could lose it",
                min.replicas,
                min.timeout.as_millis()
            ))),
            Err(err) => {
                if connection_spent(&err) {
                    spent.store(true, Ordering::Relaxed);
                }
                Err(StoreError::OutcomeUnknown(format!(
                    "written, but WAIT for replicas failed: {err}"
                )))
            }
        }
    }
}

/// `XADD <stream> MAXLEN ~ <max> * uid <uid> nsp <nsp> type <type> data <data>` as its parts, for
/// the plain command and the script alike.
pub(super) struct Fields<'a> {
    pub(super) stream: &'a str,
    pub(super) max_len: usize,
    pub(super) uid: &'a str,
    pub(super) nsp: &'a str,
    pub(super) kind: &'a str,
    pub(super) data: String,
}

/// The keyed append's command (one EVAL: the script is short, Redis caches its compiled form).
pub(super) fn append_once_command(
    fields: &Fields<'_>,
    key: &AppendKey,
    ttl: Duration,
) -> redis::Cmd {
    let mut eval = redis::cmd("EVAL");
    eval.arg(APPEND_ONCE_SCRIPT)
        .arg(2)
        .arg(fields.stream)
        .arg(format!(
            "{IDEMPOTENCY_KEY_PREFIX}{}:{}",
            stream_tag(fields.stream),
            key.key
        ))
        .arg(fields.max_len)
        .arg(fields.uid)
        .arg(fields.nsp)
        .arg(fields.kind)
        .arg(&fields.data)
        .arg(format!("{} {}", key.fingerprint, key.receipt))
        .arg(ttl.as_millis().max(1) as u64);
    eval
}

/// The script's reply. A reply of another shape is an unknown outcome: the script ran.
pub(super) fn parse_append_once(reply: &Value, key: &AppendKey) -> Result<KeyedAppend, StoreError> {
    let unexpected = || StoreError::OutcomeUnknown(format!("unexpected reply {reply:?}"));
    let Value::Array(parts) = reply else {
        return Err(unexpected());
    };
    let [flag, text] = parts.as_slice() else {
        return Err(unexpected());
    };
    let text = match text {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        _ => return Err(unexpected()),
    };
    match flag {
        Value::Int(1) => text
            .parse()
            .map(KeyedAppend::Appended)
            .map_err(|_| unexpected()),
        Value::Int(0) => {
            let mut stored = text.splitn(3, ' ');
            let (Some(fingerprint), Some(receipt), Some(id)) =
                (stored.next(), stored.next(), stored.next())
            else {
                return Err(unexpected());
            };
            let id: StreamId = id.parse().map_err(|_| unexpected())?;
            Ok(if fingerprint == key.fingerprint {
                KeyedAppend::Replayed {
                    receipt: receipt.to_owned(),
                    id,
                }
            } else {
                KeyedAppend::Conflict
            })
        }
        _ => Err(unexpected()),
    }
}

/// A write Redis refuses exactly when it would refuse an append (OOM, LOADING, READONLY on a
/// replica, NOPERM) and that changes nothing: SETRANGE with an empty value on a missing key
/// creates nothing (on an existing string it leaves it as it is).
pub(super) fn probe_command(stream: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SETRANGE");
    cmd.arg(format!(
        "{IDEMPOTENCY_KEY_PREFIX}{}:probe",
        stream_tag(stream)
    ))
    .arg(0)
    .arg("");
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fingerprint: &str) -> AppendKey {
        AppendKey {
            key: "k".into(),
            fingerprint: fingerprint.into(),
            receipt: "r".into(),
        }
    }

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn append_once_reply_parses_appended_replayed_and_conflict() {
        let appended = Value::Array(vec![Value::Int(1), bulk("5-1")]);
        assert_eq!(
            parse_append_once(&appended, &key("f")),
            Ok(KeyedAppend::Appended(StreamId::new(5, 1)))
        );
        let seen = Value::Array(vec![Value::Int(0), bulk("f r 7-0")]);
        assert_eq!(
            parse_append_once(&seen, &key("f")),
            Ok(KeyedAppend::Replayed {
                receipt: "r".into(),
                id: StreamId::new(7, 0)
            })
        );
        assert_eq!(
            parse_append_once(&seen, &key("g")),
            Ok(KeyedAppend::Conflict)
        );
    }

    #[test]
    fn append_once_reply_of_another_shape_is_an_unknown_outcome() {
        for reply in [
            Value::Nil,
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Int(2), bulk("1-0")]),
            Value::Array(vec![Value::Int(0), bulk("f r")]),
            Value::Array(vec![Value::Int(1), bulk("x")]),
        ] {
            assert!(
                matches!(
                    parse_append_once(&reply, &key("f")),
                    Err(StoreError::OutcomeUnknown(_))
                ),
                "{reply:?}"
            );
        }
    }
}
