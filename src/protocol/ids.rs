//! Identifiers: newtypes, so a stream id is never confused with a session id.
//!
//! ```text
//! StreamId  "1732740000000-3"   Redis stream id: <ms since epoch>-<sequence>; the client's recovery offset
//! Sid       "q1Wc…"             Socket.IO socket id (public: `socket.id` in the client)
//! Pid       "Xk9…"              private session id for recovery (reference §3.2); 128 random bits
//! ```
//!
//! Minting a `Sid`/`Pid` needs randomness, which is I/O: callers pass the random bytes in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A log entry id in Redis stream format, `<ms>-<seq>`, ordered by time then sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds since the Unix epoch when the entry was appended.
    pub ms: u64,
    /// Sequence number within that millisecond.
    pub seq: u64,
}

/// Why a text is not a stream id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed stream id {0:?}: expected <ms>-<seq>")]
pub struct StreamIdError(pub String);

impl StreamId {
    /// `0-0`: before every entry. Redis never assigns it.
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };

    /// Builds an id from its two parts.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The smallest id strictly after this one: an exclusive range start for XRANGE.
    pub fn next(self) -> StreamId {
        match self.seq.checked_add(1) {
            Some(seq) => StreamId::new(self.ms, seq),
            None => StreamId::new(self.ms.saturating_add(1), 0),
        }
    }

    /// The id the log assigns to an entry appended at `now_ms` after `last`, as Redis does for `*`:
    /// the clock's millisecond, or `last`'s sequence plus one when the clock has not moved past it.
    pub fn following(last: StreamId, now_ms: u64) -> StreamId {
        if now_ms > last.ms {
            StreamId::new(now_ms, 0)
        } else {
            last.next()
        }
    }
}

impl FromStr for StreamId {
    type Err = StreamIdError;

    /// Strict: two non-empty runs of ASCII digits around one `-`, each fitting a u64. Redis also accepts a
    /// bare `<ms>`, but an offset from a client always carries both parts, so anything else is malformed.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || StreamIdError(text.chars().take(64).collect());
        let (ms, seq) = text.split_once('-').ok_or_else(malformed)?;
        let digits = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse::<u64>().ok()
        };
        match (digits(ms), digits(seq)) {
            (Some(ms), Some(seq)) => Ok(StreamId::new(ms, seq)),
            _ => Err(malformed()),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        // Boxed, not a String: ids never grow, and every session, socket and record holds some (8
        // bytes each fewer; a session's actor task is allocated in steps of 128 bytes).
        pub struct $name(Box<str>);

        impl $name {
            /// Encodes 16 random bytes (128 bits) as 22 URL-safe characters.
            pub fn from_random(bytes: [u8; 16]) -> Self {
                $name(super::base64::encode_url_safe(&bytes).into_boxed_str())
            }

            /// Wraps an id received from a peer (a client's auth, a session record).
            pub fn from_wire(text: impl Into<Box<str>>) -> Self {
                $name(text.into())
            }

            /// The id as it travels on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

random_id!(
    /// A Socket.IO socket id: public, shown to the client as `socket.id`.
    Sid
);
random_id!(
    /// A private session id: whoever presents it may resume the session, so it is never logged above
    /// trace level and never shared with other clients.
    Pid
);
random_id!(
    /// An Engine.IO session id: names one transport connection (and, with polling, its HTTP requests).
    EioSid
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_parses_and_prints_redis_format() {
        let id: StreamId = "1732740000000-3".parse().unwrap();
        assert_eq!(id, StreamId::new(1_732_740_000_000, 3));
        assert_eq!(id.to_string(), "1732740000000-3");
    }

    #[test]
    fn stream_id_rejects_malformed_offsets() {
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1",
            "a-1",
            "1-b",
            "1-2-3",
            "+1-2",
            "1 -2",
            "99999999999999999999-0",
            "Q8UkR62",
        ] {
            assert!(
                bad.parse::<StreamId>().is_err(),
                "{bad:?} should be malformed"
            );
        }
    }

    #[test]
    fn stream_id_orders_by_time_then_sequence() {
        let ids =
            ["0-0", "5-0", "5-1", "5-10", "6-0", "10-0"].map(|s| s.parse::<StreamId>().unwrap());
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn stream_id_following_is_monotonic_even_when_the_clock_goes_back() {
        let last = StreamId::new(100, 4);
        assert_eq!(StreamId::following(last, 101), StreamId::new(101, 0));
        assert_eq!(StreamId::following(last, 100), StreamId::new(100, 5));
        assert_eq!(StreamId::following(last, 50), StreamId::new(100, 5));
        assert_eq!(StreamId::new(7, u64::MAX).next(), StreamId::new(8, 0));
    }

    #[test]
    fn random_ids_are_22_url_safe_characters() {
        let pid = Pid::from_random([0xff; 16]);
        assert_eq!(pid.as_str().len(), 22);
        assert!(pid
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}
