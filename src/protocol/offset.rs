//! Recovery offsets over one stream or several (the sharding design of README "Beyond one stream:
//! shards"): the codec, the per-shard handover test, and where a target's entries go.
//!
//! ```text
//! 1 shard   "1732740000000-3"                         one stream id, today's (and Node's) format
//! 4 shards  "1732740000000-3,1732740000001-0,0-0,1732740000000-9"
//!           the last id handed on of each shard, shard 0 first, when the entry was delivered
//! shard of a target: FNV-1a 64 of its smallest room name's UTF-8 bytes, mod N; no room: 0
//! stream key of shard i: "<key>" with 1 shard, "<key>#<i>" with more (no shared hash tag, so a
//! Redis Cluster spreads the shards over its slots)
//! ```
//!

use std::fmt;

use super::ids::StreamId;

/// A client's recovery offset: per shard, the last entry id it is up to date to. One id with one
/// shard (`<ms>-<seq>`, the adapter's format), one per shard otherwise.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Offset(Vec<StreamId>);

impl Clone for Offset {
    fn clone(&self) -> Offset {
        Offset(self.0.clone())
    }

    /// Reuses `self`'s ids (a socket's offset is overwritten on every delivery: no allocation once
    /// it has as many ids as the source).
    fn clone_from(&mut self, source: &Offset) {
        self.0.clone_from(&source.0);
    }
}

/// Why a text is not an offset of this log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetError {
    /// Not ids separated by `,`.
    #[error("malformed offset {0:?}")]
    Malformed(String),
    /// An offset of a log with another number of shards (a client of a hub configured otherwise).
    #[error("offset has {found} shard ids, the log has {shards} shards")]
    ShardCount {
        /// The log's shards.
        shards: usize,
        /// The ids in the offset.
        found: usize,
    },
}

impl Offset {
    /// `0-0` on every one of `shards` shards (at least 1): before every entry.
    pub fn zero(shards: usize) -> Offset {
        Offset(vec![StreamId::ZERO; shards.max(1)])
    }

    /// The offset of a log of one stream: `id` itself.
    pub fn one(id: StreamId) -> Offset {
        Offset(vec![id])
    }

    /// The ids, shard 0 first.
    pub fn ids(&self) -> &[StreamId] {
        &self.0
    }

    /// How many shards it has ids for.
    pub fn shards(&self) -> usize {
        self.0.len()
    }

    /// The id of `shard` (`0-0` for a shard it has none for).
    pub fn id(&self, shard: usize) -> StreamId {
        self.0.get(shard).copied().unwrap_or(StreamId::ZERO)
    }

    /// Whether it is past `other` in some shard: a client's offset ahead of what an instance's read
    /// loops handed on (their ids compared shard by shard, never across shards).
    pub fn ahead_of(&self, other: &Offset) -> bool {
        self.0
            .iter()
            .enumerate()
            .any(|(shard, id)| *id > other.id(shard))
    }

    /// Shard by shard the newer id of the two (the shards of `self`).
    pub fn max(mut self, other: &Offset) -> Offset {
        for (shard, id) in self.0.iter_mut().enumerate() {
            *id = (*id).max(other.id(shard));
        }
        self
    }

    /// Parses a client's offset for a log of `shards` shards: exactly one id per shard, so an offset
    /// of one stream is never read as a sharded one (or the other way round). Strict, as
    /// [`StreamId`]'s parser: a malformed or mismatched offset is refused, never guessed at.
    pub fn parse(text: &str, shards: usize) -> Result<Offset, OffsetError> {
        let malformed = || OffsetError::Malformed(text.chars().take(64).collect());
        let ids = text
            .split(',')
            .map(|part| part.parse::<StreamId>().map_err(|_| malformed()))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.len() != shards.max(1) {
            return Err(OffsetError::ShardCount {
                shards: shards.max(1),
                found: ids.len(),
            });
        }
        Ok(Offset(ids))
    }

    /// Whether entry `id` of `shard` is at or before this offset: what a resumed socket skips at
    /// the handover from replay to live. Per shard: ids of different shards are not ordered.
    /// An unknown shard is never covered.
    pub fn covers(&self, shard: usize, id: StreamId) -> bool {
        self.0.get(shard).is_some_and(|last| id <= *last)
    }

    /// The offset once entry `id` of `shard` is delivered (a shard never moves back; an unknown
    /// shard changes nothing).
    pub fn advanced(mut self, shard: usize, id: StreamId) -> Offset {
        self.advance(shard, id);
        self
    }

    /// Shard `shard` starts over at `id`, even behind where it was: its stream was replaced (a new
    /// epoch, whose ids are not comparable with the old one's). An unknown shard changes nothing.
    pub fn restart(&mut self, shard: usize, id: StreamId) {
        if let Some(last) = self.0.get_mut(shard) {
            *last = id;
        }
    }

    /// [`advanced`](Self::advanced), in place.
    pub fn advance(&mut self, shard: usize, id: StreamId) {
        if let Some(last) = self.0.get_mut(shard) {
            *last = (*last).max(id);
        }
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

/// The shard of an entry whose target's rooms are `rooms` (the smallest name, by its bytes,
/// decides: a target's rooms are a set, and `["a","b"]` and `["b","a"]` are one request under
/// one idempotency key, checked on one shard), over `shards` shards: FNV-1a 64-bit of that room
/// name's UTF-8 bytes, modulo `shards`. Stable across instances, restarts, platforms and versions
/// (it is part of the log's layout: changing it moves rooms). No room (a broadcast to the
/// namespace): shard 0.
pub fn shard_of(rooms: &[&str], shards: usize) -> usize {
    let shards = shards.max(1) as u64;
    match rooms.iter().min() {
        None => 0,
        Some(room) => (fnv1a64(room.as_bytes()) % shards) as usize,
    }
}

/// The stream key of shard `index`: `key` itself with one shard (today's key, the adapter's),
/// `<key>#<index>` with more.
pub fn shard_key(key: &str, index: usize, shards: usize) -> String {
    if shards <= 1 {
        key.to_owned()
    } else {
        format!("{key}#{index}")
    }
}

/// FNV-1a, 64-bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> StreamId {
        text.parse().unwrap()
    }

    #[test]
    fn one_shard_keeps_the_single_stream_id_format() {
        let offset = Offset::parse("1732740000000-3", 1).unwrap();
        assert_eq!(offset.ids(), &[id("1732740000000-3")]);
        assert_eq!(offset.to_string(), "1732740000000-3");
        assert_eq!(Offset::zero(1).to_string(), "0-0");
        assert_eq!(shard_key("socket.io", 0, 1), "socket.io");
    }

    #[test]
    fn composite_offsets_round_trip_shard_0_first() {
        let text = "1732740000000-3,1732740000001-0,0-0,1732740000000-9";
        let offset = Offset::parse(text, 4).unwrap();
        assert_eq!(offset.ids()[1], id("1732740000001-0"));
        assert_eq!(offset.ids()[2], StreamId::ZERO);
        assert_eq!(offset.to_string(), text);
        assert_eq!(Offset::zero(4).to_string(), "0-0,0-0,0-0,0-0");
    }

    #[test]
    fn offsets_of_another_shard_count_or_malformed_are_refused() {
        assert_eq!(
            Offset::parse("1-0,2-0", 1),
            Err(OffsetError::ShardCount {
                shards: 1,
                found: 2
            })
        );
        assert_eq!(
            Offset::parse("1-0", 4),
            Err(OffsetError::ShardCount {
                shards: 4,
                found: 1
            })
        );
        for bad in [
            "", ",", "1-0,", ",1-0", "1-0,,2-0", "1-0;2-0", "1-0, 2-0", "1-0,x",
        ] {
            assert!(
                matches!(Offset::parse(bad, 2), Err(OffsetError::Malformed(_))),
                "{bad:?} should be malformed"
            );
        }
    }

    #[test]
    fn handover_is_decided_per_shard() {
        let offset = Offset::parse("5-0,9-0", 2).unwrap();
        // Shard 0 up to 5-0, shard 1 up to 9-0: an id is covered only against its own shard.
        assert!(offset.covers(0, id("5-0")));
        assert!(!offset.covers(0, id("6-0")));
        assert!(offset.covers(1, id("6-0")));
        assert!(!offset.covers(1, id("9-1")));
        assert!(!offset.covers(2, StreamId::ZERO), "no such shard");
        let offset = offset.advanced(0, id("7-0")).advanced(1, id("8-0"));
        assert_eq!(offset.to_string(), "7-0,9-0", "a shard never moves back");
        assert_eq!(offset.clone().advanced(5, id("1-0")), offset);
    }

    #[test]
    fn clone_from_copies_the_ids_into_the_existing_ones() {
        let mut mine = Offset::parse("1-0,2-0", 2).unwrap();
        let before = mine.ids().as_ptr();
        mine.clone_from(&Offset::parse("3-0,4-0", 2).unwrap());
        assert_eq!(mine.to_string(), "3-0,4-0");
        assert_eq!(mine.ids().as_ptr(), before, "the same ids, overwritten");
    }

    #[test]
    fn ahead_and_max_compare_shard_by_shard() {
        let loop_at = Offset::parse("5-0,9-0", 2).unwrap();
        assert!(!Offset::parse("5-0,9-0", 2).unwrap().ahead_of(&loop_at));
        assert!(!Offset::parse("4-0,1-0", 2).unwrap().ahead_of(&loop_at));
        assert!(Offset::parse("6-0,1-0", 2).unwrap().ahead_of(&loop_at));
        assert!(Offset::parse("1-0,9-1", 2).unwrap().ahead_of(&loop_at));
        let merged = Offset::parse("6-0,1-0", 2).unwrap().max(&loop_at);
        assert_eq!(merged.to_string(), "6-0,9-0");
        assert_eq!(loop_at.id(1), id("9-0"));
        assert_eq!(loop_at.id(7), StreamId::ZERO);
        assert_eq!(Offset::one(id("3-1")).to_string(), "3-1");
        assert_eq!(loop_at.shards(), 2);
    }

    #[test]
    fn shard_of_is_the_documented_fnv1a_of_the_smallest_room() {
        // FNV-1a 64 reference values: "" → 0xcbf29ce484222325, "a" → 0xaf63dc4c8601ec8c.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            shard_of(&["a"], 4),
            (0xaf63_dc4c_8601_ec8c_u64 % 4) as usize
        );
        assert_eq!(shard_of(&["a", "b"], 4), shard_of(&["a"], 4));
        assert_eq!(
            shard_of(&["b", "a"], 4),
            shard_of(&["a"], 4),
            "the rooms are a set: the smallest name decides, whatever their order"
        );
        assert_eq!(shard_of(&[], 4), 0, "a broadcast goes to shard 0");
        assert_eq!(shard_of(&["user:42"], 1), 0);
        // Rooms spread over every shard.
        let used: std::collections::HashSet<usize> = (0..1000)
            .map(|n| shard_of(&[format!("user:{n}").as_str()], 4))
            .collect();
        assert_eq!(used.len(), 4);
        assert_eq!(shard_key("socket.io", 3, 4), "socket.io#3");
    }
}
