//! The Redis backend's log identity and session claims: the Lua scripts that keep the stream's epoch
//! and take session records atomically, the record codec, and this instance's lease (see
//! [`super::redis`] for why the epoch is a consumer group and live sessions live under `hub:live:`).

use std::time::Duration;

use actix::Recipient;
use redis::Value;

use super::redis::unavailable;
use super::{Epoch, LogEvent, Position, SessionRecord, StoreError};
use crate::protocol::ids::StreamId;
use crate::protocol::{base64, msgpack};

/// Key prefix of the copies of live sessions (a hash: `owner`, `record`), which Node peers never read:
/// `hub:live:{sio:session:<pid>}` (see [`live_key`]).
pub(super) const LIVE_KEY_PREFIX: &str = "hub:live:";
/// Key prefix of instance leases: `hub:instance:<uid>` exists while that instance is alive.
pub(super) const INSTANCE_KEY_PREFIX: &str = "hub:instance:";

/// Lua: `epoch_of(key)`, the stream's epoch (the smallest `hub-epoch:` group name, without the
/// prefix), or nil; and `epoch_groups(key)`, every such group's name.
macro_rules! epoch_lua {
    () => {
        r"
local function epoch_groups(key)
  local names = {}
  if redis.call('EXISTS', key) == 0 then return names end
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    for i = 1, #group, 2 do
      if group[i] == 'name' and string.sub(group[i + 1], 1, 10) == 'hub-epoch:' then
        table.insert(names, group[i + 1])
      end
    end
  end
  table.sort(names)
  return names
end
local function epoch_of(key)
  local names = epoch_groups(key)
  if names[1] then return string.sub(names[1], 11) end
  return nil
end
local function older(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end
local function stream_info(key)
  local info = redis.call('XINFO', 'STREAM', key)
  local f = {}
  for i = 1, #info, 2 do f[info[i]] = info[i + 1] end
  return f
end
-- Whether the stream lost entries up to `read` (an id read from it before) other than by trimming
-- or XDEL: its newest id went back, or `read` is gone though it is neither before the first entry
-- (trimmed) nor at or before the newest deleted id (XDEL). A replica promoted without the primary's
-- newest entries does that.
local function lost_tail(key, f, read)
  if read == '0-0' then return false end
  if older(f['last-generated-id'], read) then return true end
  if #redis.call('XRANGE', key, read, read) > 0 then return false end
  local first = f['first-entry'] and f['first-entry'][1]
  return first ~= nil and not older(read, first) and older(f['max-deleted-entry-id'], read)
end
"
    };
}

/// The stream's epoch, created if it has none; replaced if the stream lost entries the caller read
/// (`lost_tail` above: ARGV[2] is the newest id the caller read, `0-0` for no check) and its epoch is
/// still ARGV[3], the one the caller read under ('' for any): of several instances noticing one
/// loss, the first replaces the epoch and the others adopt it. ARGV[1] is the epoch to create.
/// Returns {epoch, newest entry id or 0-0}.
pub(super) const ENSURE_EPOCH_SCRIPT: &str = concat!(
    epoch_lua!(),
    r"
local epoch = epoch_of(KEYS[1])
if epoch and (ARGV[3] == '' or ARGV[3] == epoch)
   and lost_tail(KEYS[1], stream_info(KEYS[1]), ARGV[2]) then
  for _, name in ipairs(epoch_groups(KEYS[1])) do
    redis.call('XGROUP', 'DESTROY', KEYS[1], name)
  end
  epoch = nil
end
if not epoch then
  redis.call('XGROUP', 'CREATE', KEYS[1], 'hub-epoch:' .. ARGV[1], '$', 'MKSTREAM')
  epoch = ARGV[1]
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id = '0-0'
if newest[1] then id = newest[1][1] end
return {epoch, id}
"
);

/// Looks at a session's record without taking it (the first half of a claim: the caller decodes it
/// and checks its owner, which Lua cannot read from the adapter's base64 msgpack): the dropped
/// session's record, else the live copy with its owner's uid (the caller checks that instance's
/// lease: `hub:instance:<uid>` is on another Redis Cluster slot, and a script may touch only the
/// keys it declares, all on one slot). KEYS: record, live copy (one slot: see [`live_key`]).
/// Returns {'record', base64 record}, {'live', base64 record, instance uid or ''} or {'none'}.
pub(super) const CLAIM_PEEK_SCRIPT: &str = r"
local record = redis.call('GET', KEYS[1])
if record then return {'record', record} end
local live = redis.call('HMGET', KEYS[2], 'owner', 'record')
if not live[2] then return {'none'} end
return {'live', live[2], live[1] or ''}
";

/// The second half of a claim: takes what CLAIM_PEEK_SCRIPT saw if it is still exactly that (compare
/// and delete), so of concurrent claims one wins, and a record rewritten meanwhile is not taken.
/// KEYS: record, live copy. ARGV: 'record' or 'orphan', the base64 record, the live copy's instance
/// uid ('' for a record). Returns 1 if taken, 0 if not.
pub(super) const CLAIM_TAKE_SCRIPT: &str = r"
if ARGV[1] == 'record' then
  if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
  redis.call('DEL', KEYS[1])
  return 1
end
local live = redis.call('HMGET', KEYS[2], 'owner', 'record')
if live[2] ~= ARGV[2] or (live[1] or '') ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[2])
return 1
";

/// Writes a live session's copy unless another instance owns it now (it resumed the session after
/// this one's lease expired). KEYS: live copy. ARGV: uid, record, ttl ms. Returns 1 if written.
pub(super) const KEEP_LIVE_SCRIPT: &str = r"
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'record', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// A session dropped: its record becomes resumable and its live copy goes, unless another instance
/// owns the session now. KEYS: record, live copy. ARGV: uid, record, ttl ms. Returns 1 if written.
pub(super) const RELEASE_SCRIPT: &str = r"
local owner = redis.call('HGET', KEYS[2], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1
";
/// One atomic snapshot for a replay batch: what the stream lost so far, the entries after the offset,
/// the stream's epoch, and whether it lost entries up to ARGV[3] (the newest id this instance read
/// from it, or `0-0`: see `lost_tail`), which the epoch does not show until a read loop replaces it.
/// Returns {max-deleted-entry-id, last-generated-id, first entry id or "", entries-added, length,
/// entries, epoch or "", 1 if it lost its tail else 0}.
pub(super) const READ_AFTER_SCRIPT: &str = concat!(
    epoch_lua!(),
    r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'0-0', '0-0', '', 0, 0, {}, '', 0} end
local f = stream_info(KEYS[1])
if f['max-deleted-entry-id'] == nil then
  return redis.error_reply('Redis 7.0 or newer is needed (XINFO STREAM max-deleted-entry-id)')
end
local first = ''
if f['first-entry'] then first = f['first-entry'][1] end
local lost = 0
if lost_tail(KEYS[1], f, ARGV[3] or '0-0') then lost = 1 end
return {f['max-deleted-entry-id'], f['last-generated-id'], first, f['entries-added'], f['length'],
        redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2]), epoch_of(KEYS[1]) or '', lost}
"
);

/// One atomic snapshot for a history page: what [`READ_AFTER_SCRIPT`] returns, its range read with
/// ARGV[1] (`XRANGE` or `XREVRANGE`) from ARGV[2] to ARGV[3], at most ARGV[4] entries.
pub(super) const READ_RANGE_SCRIPT: &str = concat!(
    epoch_lua!(),
    r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'0-0', '0-0', '', 0, 0, {}, ''} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local f = {}
for i = 1, #info, 2 do f[info[i]] = info[i + 1] end
if f['max-deleted-entry-id'] == nil then
  return redis.error_reply('Redis 7.0 or newer is needed (XINFO STREAM max-deleted-entry-id)')
end
local first = ''
if f['first-entry'] then first = f['first-entry'][1] end
return {f['max-deleted-entry-id'], f['last-generated-id'], first, f['entries-added'], f['length'],
        redis.call(ARGV[1], KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4]), epoch_of(KEYS[1]) or ''}
"
);

/// The hash tag (`{…}`, braces included) that puts a key on the same Redis Cluster slot as `key`.
/// Redis hashes only what lies between a key's first `{` and the first `}` after it when that is not
/// empty, else the whole key; so the tag is `key`'s own tag if it has one, else the whole key in
/// braces. `None` when no tag can: the whole key is hashed and holds a `}`, which would end the tag
/// early (`a}b`, `a{}b`).
pub(super) fn slot_tag(key: &str) -> Option<String> {
    if let Some(open) = key.find('{') {
        if let Some(len) = key[open + 1..].find('}') {
            if len > 0 {
                return Some(key[open..open + len + 2].to_owned());
            }
        }
    }
    (!key.contains('}')).then(|| format!("{{{key}}}"))
}

/// The key of a live session's copy: `hub:live:{<record key>}`, tagged onto the slot of the session
/// record `record_key` (the adapter's `sio:session:<pid>`, whose name Node peers read and which
/// therefore stays as it is), so that the scripts that move a session between the two touch one
/// slot. `None` for a record key no tag can join (a pid with a `}`, which no hub or adapter mints).
pub(super) fn live_key(record_key: &str) -> Option<String> {
    slot_tag(record_key).map(|tag| format!("{LIVE_KEY_PREFIX}{tag}"))
}

/// base64(msgpack(record)), as the adapter's `persistSession` encodes it.
pub(super) fn encode_record(record: &SessionRecord) -> String {
    let value = serde_json::to_value(record).expect("a session record always serializes");
    base64::encode(&msgpack::encode(&value))
}

/// The inverse of [`encode_record`]; `None` for anything that does not decode as a record.
pub(super) fn decode_record(text: &str) -> Option<SessionRecord> {
    let bytes = base64::decode(text).ok()?;
    serde_json::from_value(msgpack::decode(&bytes).ok()?).ok()
}

/// The stream's epoch (created if it has none; replaced if the stream lost entries up to `read`, the
/// newest id the caller read from it, while its epoch was still `read_under`) and its newest entry's
/// id (`0-0` if empty).
pub(super) async fn ensure_epoch<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    key: &str,
    read: StreamId,
    read_under: Option<&Epoch>,
) -> Result<Position, StoreError> {
    let (epoch, id): (String, String) = redis::cmd("EVAL")
        .arg(ENSURE_EPOCH_SCRIPT)
        .arg(1)
        .arg(key)
        .arg(Epoch::random().as_str())
        .arg(read.to_string())
        .arg(read_under.map_or("", Epoch::as_str))
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    Ok(Position {
        id: id
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("{e}")))?,
        epoch: Epoch::from(epoch.as_str()),
    })
}

/// Keeps this instance's lease alive (a third of its time to live apart) while the bridge lives; a
/// failed refresh is retried at the next tick (the read loop reports Redis being down).
pub(super) async fn keep_lease(
    mut conn: super::redis_link::Link,
    key: String,
    ttl: Duration,
    sink: Recipient<LogEvent>,
) {
    let ttl_ms = ttl.as_millis().max(1) as u64;
    while sink.connected() {
        let refreshed: Result<Value, _> = redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut conn)
            .await;
        if let Err(err) = refreshed {
            log::debug!("instance lease not refreshed error=\"{err}\"");
        }
        actix::clock::sleep(ttl / 3).await;
    }
}

/// The key holding the shard count of the log on stream key `<key>` (`HUB_STREAM_SHARDS`), which
/// every hub instance on that key keeps alive ([`keep_layout`]).
pub(super) const LAYOUT_KEY_PREFIX: &str = "hub:shards:";

/// Keeps the layout key at ARGV[1] (the shard count) for ARGV[2] ms, unless it holds another count:
/// then returns that count and changes nothing.
const LAYOUT_SCRIPT: &str = r"
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
";

/// Keeps `key` (the layout key of this instance's stream key) at `shards` for `ttl` past the last
/// refresh, every third of it, and tells `sink` when another count holds it (another instance on
/// the same stream key runs another `HUB_STREAM_SHARDS`: each would append where the other does not
/// read, and notifications would be lost without an error) or stops holding it. The key outlives
/// the last instance of a count by `ttl`, so a new count starts once every instance of the old one
/// stopped.
pub(super) async fn keep_layout(
    mut conn: super::redis_link::Link,
    key: String,
    shards: usize,
    ttl: Duration,
    sink: Recipient<LogEvent>,
) {
    let ttl_ms = ttl.as_millis().max(1) as u64;
    let mut reported: Option<String> = None;
    while sink.connected() {
        let held: Result<Value, _> = redis::cmd("EVAL")
            .arg(LAYOUT_SCRIPT)
            .arg(1)
            .arg(&key)
            .arg(shards)
            .arg(ttl_ms)
            .query_async(&mut conn)
            .await;
        match held {
            Ok(value) => {
                let other = super::redis::as_string(&value);
                if other != reported {
                    sink.do_send(LogEvent::LayoutConflict {
                        shards: other.clone(),
                    });
                    reported = other;
                }
            }
            Err(err) => log::debug!("log layout not refreshed error=\"{err}\""),
        }
        actix::clock::sleep(ttl / 3).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_tags_hash_as_the_key_they_join() {
        // No tag of its own: the whole key, in braces.
        assert_eq!(slot_tag("socket.io").as_deref(), Some("{socket.io}"));
        assert_eq!(
            live_key("sio:session:Xk9_-a").as_deref(),
            Some("hub:live:{sio:session:Xk9_-a}")
        );
        // Its own tag: that one (wrapping the key would hash `{app`).
        assert_eq!(slot_tag("{app}:stream").as_deref(), Some("{app}"));
        assert_eq!(slot_tag("x{a}{b}").as_deref(), Some("{a}"));
        // A `{` without a closing `}` is hashed whole, and can be wrapped.
        assert_eq!(slot_tag("a{b").as_deref(), Some("{a{b}"));
        // Hashed whole but holding a `}`: no tag can join it.
        assert_eq!(slot_tag("a}b"), None);
        assert_eq!(slot_tag("a{}b"), None);
        assert_eq!(live_key("sio:session:a}b"), None);
    }
}

#[cfg(test)]
mod node_record_tests {
    use serde_json::json;

    use super::*;

    /// A record as a Node peer's `persistSession` writes it (base64 of msgpack of
    /// `{sid, pid, rooms, data}`), for `data`.
    fn from_node(data: serde_json::Value) -> (serde_json::Value, String) {
        let written = json!({"sid": "s1", "pid": "p1", "rooms": ["s1", "r"], "data": data});
        let text = base64::encode(&msgpack::encode(&written));
        (written, text)
    }

    #[test]
    fn a_node_peers_record_is_written_back_as_the_peer_wrote_it_whatever_its_data() {
        for data in [
            json!({}),
            json!({"a": {}}),
            json!({"user": {"id": 7, "tags": ["x", {}], "none": null}}),
            json!([{}]),
            json!(""),
            json!(false),
            json!(null),
            json!(-1.5),
        ] {
            let (written, text) = from_node(data.clone());
            let record = decode_record(&text).expect("a Node peer's record decodes");
            let again = msgpack::decode(&base64::decode(&encode_record(&record)).unwrap()).unwrap();
            assert_eq!(
                again, written,
                "data {data} comes back as the peer wrote it"
            );
        }
    }

    #[test]
    fn a_node_peers_record_without_data_is_written_back_with_an_empty_object() {
        let written = json!({"sid": "s1", "pid": "p1", "rooms": ["s1"]});
        let record = decode_record(&base64::encode(&msgpack::encode(&written))).unwrap();
        let again = msgpack::decode(&base64::decode(&encode_record(&record)).unwrap()).unwrap();
        assert_eq!(again["data"], json!({}));
    }
}
