//! Engine.IO v4 packets (reference §1.2).
//!
//! ```text
//! "0{\"sid\":\"…\",\"upgrades\":[],…}"  Open      server → client, first packet of a session
//! "1"                                 Close
//! "2" / "2probe"                      Ping      server → client (v4: the server pings)
//! "3" / "3probe"                      Pong      client → server
//! "4hello"                            Message   carries one Socket.IO packet
//! "5"                                 Upgrade
//! "6"                                 Noop
//! "bAQIDBA=="                         binary Message inside a polling payload (WebSocket: a binary frame)
//! "4hello\x1e2\x1e4world"             polling payload: packets joined by 0x1E
//! ```

use serde::Serialize;

use super::base64;

/// The record separator that joins packets in a polling payload.
pub const PAYLOAD_SEPARATOR: char = '\x1e';

/// One decoded Engine.IO packet; text payloads borrow from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EioPacket<'a> {
    /// `0`: only the server sends it in v4.
    Open(&'a str),
    /// `1`: the peer closes the session.
    Close,
    /// `2`: heartbeat probe; `2probe` during an upgrade.
    Ping(&'a str),
    /// `3`: heartbeat answer; `3probe` during an upgrade.
    Pong(&'a str),
    /// `4`: a text message (one Socket.IO packet).
    Message(&'a str),
    /// `5`: the client finished upgrading to WebSocket.
    Upgrade,
    /// `6`: nothing; used to release a pending poll.
    Noop,
    /// `b<base64>`: a binary message inside a polling payload.
    Binary(Vec<u8>),
}

/// Why a text is not an Engine.IO packet. Any of these closes the session with reason "parse error".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A packet must have at least its type character.
    #[error("empty packet")]
    Empty,
    /// The first character is not `0`-`6` or `b`.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A `b` packet whose payload is not base64.
    #[error("binary packet is not base64: {0}")]
    Base64(#[from] base64::Base64Error),
}

/// Decodes one text packet (a WebSocket text frame, or one element of a polling payload).
pub fn decode(text: &str) -> Result<EioPacket<'_>, DecodeError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(DecodeError::Empty)?;
    let rest = chars.as_str();
    Ok(match kind {
        '0' => EioPacket::Open(rest),
        '1' => EioPacket::Close,
        '2' => EioPacket::Ping(rest),
        '3' => EioPacket::Pong(rest),
        '4' => EioPacket::Message(rest),
        '5' => EioPacket::Upgrade,
        '6' => EioPacket::Noop,
        'b' => EioPacket::Binary(base64::decode(rest)?),
        other => return Err(DecodeError::UnknownType(other)),
    })
}

/// Decodes a polling payload from the left, stopping after the first error: the packets before it
/// are still yielded, as Node processes them (reference §1.2).
pub fn decode_payload(payload: &str) -> impl Iterator<Item = Result<EioPacket<'_>, DecodeError>> {
    let mut failed = false;
    payload.split(PAYLOAD_SEPARATOR).map_while(move |part| {
        if failed {
            return None;
        }
        let packet = decode(part);
        failed = packet.is_err();
        Some(packet)
    })
}

/// Encodes a text packet. Binary messages are raw frames on WebSocket; see [`encode_binary_for_polling`].
pub fn encode(packet: &EioPacket<'_>) -> String {
    match packet {
        EioPacket::Open(json) => format!("0{json}"),
        EioPacket::Close => "1".to_owned(),
        EioPacket::Ping(data) => format!("2{data}"),
        EioPacket::Pong(data) => format!("3{data}"),
        EioPacket::Message(data) => format!("4{data}"),
        EioPacket::Upgrade => "5".to_owned(),
        EioPacket::Noop => "6".to_owned(),
        EioPacket::Binary(bytes) => encode_binary_for_polling(bytes),
    }
}

/// A binary message as it travels inside a polling payload: `b` + standard base64.
pub fn encode_binary_for_polling(bytes: &[u8]) -> String {
    format!("b{}", base64::encode(bytes))
}

/// The handshake's open packet. Exactly these five keys, in this order, without spaces (reference §1.3).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenPacket<'a> {
    /// The Engine.IO session id.
    pub sid: &'a str,
    /// Transports the client may upgrade to: `[]` on a WebSocket session.
    pub upgrades: &'a [&'a str],
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    pub ping_timeout: u64,
    /// Largest message the server accepts, in bytes.
    pub max_payload: u64,
}

impl OpenPacket<'_> {
    /// `0{"sid":…,"upgrades":[…],"pingInterval":…,"pingTimeout":…,"maxPayload":…}`
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self)
            .expect("a struct of strings and integers always serializes");
        format!("0{json}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_reads_every_packet_type() {
        let cases: &[(&str, EioPacket)] = &[
            ("0", EioPacket::Open("")),
            ("1", EioPacket::Close),
            ("2", EioPacket::Ping("")),
            ("2probe", EioPacket::Ping("probe")),
            ("3", EioPacket::Pong("")),
            ("3probe", EioPacket::Pong("probe")),
            ("4hello", EioPacket::Message("hello")),
            ("4", EioPacket::Message("")),
            ("5", EioPacket::Upgrade),
            ("6", EioPacket::Noop),
            ("bAQIDBA==", EioPacket::Binary(vec![1, 2, 3, 4])),
        ];
        for (text, packet) in cases {
            assert_eq!(decode(text).as_ref(), Ok(packet), "decoding {text:?}");
        }
    }

    #[test]
    fn decode_rejects_unknown_type_and_empty_packet() {
        assert_eq!(decode("abc"), Err(DecodeError::UnknownType('a')));
        assert_eq!(decode("7"), Err(DecodeError::UnknownType('7')));
        assert_eq!(decode(""), Err(DecodeError::Empty));
        assert!(matches!(decode("b!!"), Err(DecodeError::Base64(_))));
    }

    #[test]
    fn decode_payload_splits_on_record_separator_and_stops_at_first_error() {
        let packets: Vec<_> = decode_payload("4hello\x1e2\x1ebAQIDBA==").collect();
        assert_eq!(
            packets,
            vec![
                Ok(EioPacket::Message("hello")),
                Ok(EioPacket::Ping("")),
                Ok(EioPacket::Binary(vec![1, 2, 3, 4]))
            ]
        );
        let packets: Vec<_> = decode_payload("4a\x1exyz\x1e4b").collect();
        assert_eq!(
            packets,
            vec![
                Ok(EioPacket::Message("a")),
                Err(DecodeError::UnknownType('x'))
            ]
        );
    }

    #[test]
    fn encode_writes_type_digit_then_payload() {
        assert_eq!(encode(&EioPacket::Message("42[\"a\"]")), "442[\"a\"]");
        assert_eq!(encode(&EioPacket::Pong("probe")), "3probe");
        assert_eq!(encode(&EioPacket::Noop), "6");
        assert_eq!(encode(&EioPacket::Binary(vec![1, 2, 3, 4])), "bAQIDBA==");
    }

    #[test]
    fn open_packet_has_exactly_five_keys_in_order() {
        let open = OpenPacket {
            sid: "abc",
            upgrades: &[],
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1_000_000,
        };
        assert_eq!(
            open.encode(),
            r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
    }
}
