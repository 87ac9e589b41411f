//! Socket.IO v5 packets as `socket.io-msgpack-parser` encodes them: every packet ONE Engine.IO binary
//! message, the MessagePack map of the packet object (reference §2.1, the parser's `index.js`).
//!
//! ```text
//! {"type":0,"nsp":"/","data":{"token":"x"}}                 Connect with auth
//! {"type":0,"nsp":"/","data":{"sid":"…","pid":"…"}}         the server's CONNECT reply
//! {"type":2,"nsp":"/","data":["up",<bin 01 02 03>],"id":7}  Event asking for an ack, a Buffer inline
//! {"type":3,"nsp":"/admin","data":[{"ok":true}],"id":7}     Ack
//! {"type":4,"nsp":"/","data":{"message":"…"}}              ConnectError
//! {"type":1,"nsp":"/admin"}                                 Disconnect
//! ```
//!
//! There are no BINARY_EVENT / BINARY_ACK types and no attachments on the wire: binary values sit
//! inline (msgpack `bin`, or `ext` type 0 for an `ArrayBuffer`). In the [`SioPacket`] they are the JSON
//! parser's placeholders with the bytes beside them ([`super::msgpack::decode_binary`]), so everything
//! after the decoder sees one packet shape whichever parser the hub speaks. Keys other than `type`,
//! `nsp`, `data` and `id` (the client's `options`) are ignored, as the parser ignores them.
//!
//! The decoder refuses what the parser's `checkPacket` refuses (type an integer 0-4, `nsp` a string,
//! `data` as the type requires, `id` absent or an integer) and, like the JSON decoder, an EVENT
//! whose name is not a string or number, or is reserved: the hub's application reads the same
//! packet whichever parser carried it.

use serde_json::{Map, Value};

use super::msgpack::{self, MsgpackError};
use super::socketio::{PacketKind, SioPacket, RESERVED_EVENTS};

/// Why bytes are not a msgpack Socket.IO packet. Every variant closes the connection, as a bad JSON
/// packet does (reference §2.7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not MessagePack, or a value it cannot carry (an `ext` other than an `ArrayBuffer`).
    #[error("invalid msgpack: {0}")]
    Msgpack(#[from] MsgpackError),
    /// Not a map, or its `type` is not an integer 0-4 (the parser's "invalid packet type").
    #[error("invalid packet type")]
    InvalidType,
    /// `nsp` missing or not a string.
    #[error("invalid namespace")]
    InvalidNamespace,
    /// `data` is not what the packet type requires.
    #[error("invalid payload for a {0:?} packet")]
    InvalidPayload(PacketKind),
    /// `id` is not a non-negative integer.
    #[error("invalid packet id")]
    InvalidAckId,
}

/// Decodes one binary message: the packet and the bytes its placeholders point to.
pub fn decode(bytes: &[u8]) -> Result<(SioPacket, Vec<Vec<u8>>), DecodeError> {
    let (value, attachments) = msgpack::decode_binary(bytes)?;
    let Value::Object(mut map) = value else {
        return Err(DecodeError::InvalidType);
    };
    let kind = match integer(map.get("type")) {
        Some(0) => PacketKind::Connect,
        Some(1) => PacketKind::Disconnect,
        Some(2) => PacketKind::Event,
        Some(3) => PacketKind::Ack,
        Some(4) => PacketKind::ConnectError,
        _ => return Err(DecodeError::InvalidType),
    };
    let Some(Value::String(nsp)) = map.remove("nsp") else {
        return Err(DecodeError::InvalidNamespace);
    };
    let data = map.remove("data");
    if !data_is_valid(kind, data.as_ref()) {
        return Err(DecodeError::InvalidPayload(kind));
    }
    let ack_id = match map.get("id") {
        None => None,
        Some(id) => Some(
            integer(Some(id))
                .and_then(|id| u64::try_from(id).ok())
                .ok_or(DecodeError::InvalidAckId)?,
        ),
    };
    let packet = SioPacket {
        kind,
        nsp,
        attachments: 0,
        ack_id,
        data,
    };
    Ok((packet, attachments))
}

/// A JavaScript integer (`Number.isInteger`): an integral number, in a float or not.
fn integer(value: Option<&Value>) -> Option<i64> {
    let n = value?.as_number()?;
    n.as_i64().or_else(|| {
        let f = n.as_f64()?;
        (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
    })
}

/// The parser's `isDataValid`, plus the JSON decoder's event-name rule (see the module doc).
fn data_is_valid(kind: PacketKind, data: Option<&Value>) -> bool {
    match (kind, data) {
        (PacketKind::Connect, None) => true,
        (PacketKind::Connect, Some(data)) => data.is_object(),
        (PacketKind::Disconnect, data) => data.is_none(),
        (PacketKind::ConnectError, Some(data)) => data.is_string() || data.is_object(),
        (PacketKind::Event | PacketKind::BinaryEvent, Some(Value::Array(items))) => {
            match items.first() {
                Some(Value::Number(_)) => true,
                Some(Value::String(name)) => !RESERVED_EVENTS.contains(&name.as_str()),
                _ => false,
            }
        }
        (PacketKind::Ack | PacketKind::BinaryAck, Some(data)) => data.is_array(),
        _ => false,
    }
}

/// Encodes `packet` as one binary message, its placeholders written as the bytes of `attachments`
/// they point to. BINARY_EVENT / BINARY_ACK are written as EVENT / ACK (the parser has no others).
pub fn encode<B: AsRef<[u8]>>(packet: &SioPacket, attachments: &[B]) -> Vec<u8> {
    let kind: u8 = match packet.kind {
        PacketKind::Connect => 0,
        PacketKind::Disconnect => 1,
        PacketKind::Event | PacketKind::BinaryEvent => 2,
        PacketKind::Ack | PacketKind::BinaryAck => 3,
        PacketKind::ConnectError => 4,
    };
    // The key order Node's encoder writes a server packet in: `{type, data, nsp, id}`.
    let mut map = Map::new();
    map.insert("type".to_owned(), Value::from(kind));
    if let Some(data) = &packet.data {
        map.insert("data".to_owned(), data.clone());
    }
    map.insert("nsp".to_owned(), Value::from(packet.nsp.as_str()));
    if let Some(id) = packet.ack_id {
        map.insert("id".to_owned(), Value::from(id));
    }
    msgpack::encode_binary(&Value::Object(map), attachments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What notepack.io (socket.io-msgpack-parser 3.0.2's encoder) writes for
    /// `{type: 2, data: ["hi", Buffer.from([1,2,3])], nsp: "/", id: 5, options: {compress: true}}`.
    const CLIENT_EVENT: &[u8] = &[
        0x85, 0xa4, b't', b'y', b'p', b'e', 0x02, 0xa4, b'd', b'a', b't', b'a', 0x92, 0xa2, b'h',
        b'i', 0xc4, 0x03, 1, 2, 3, 0xa3, b'n', b's', b'p', 0xa1, b'/', 0xa2, b'i', b'd', 0x05,
        0xa7, b'o', b'p', b't', b'i', b'o', b'n', b's', 0x81, 0xa8, b'c', b'o', b'm', b'p', b'r',
        b'e', b's', b's', 0xc3,
    ];

    fn packed(value: Value) -> Vec<u8> {
        msgpack::encode(&value)
    }

    #[test]
    fn decode_reads_a_client_event_with_an_inline_buffer_and_ignores_options() {
        let (packet, attachments) = decode(CLIENT_EVENT).unwrap();
        assert_eq!(packet.kind, PacketKind::Event);
        assert_eq!(packet.nsp, "/");
        assert_eq!(packet.ack_id, Some(5));
        assert_eq!(
            packet.data,
            Some(json!(["hi", {"_placeholder": true, "num": 0}]))
        );
        assert_eq!(attachments, vec![vec![1, 2, 3]]);
    }

    #[test]
    fn decode_reads_every_packet_type_with_and_without_namespace_and_ack_id() {
        let cases = [
            (
                json!({"type": 0, "nsp": "/"}),
                PacketKind::Connect,
                "/",
                None,
                None,
            ),
            (
                json!({"type": 0, "nsp": "/admin", "data": {"token": "x", "pid": "p", "offset": "1-0"}}),
                PacketKind::Connect,
                "/admin",
                None,
                Some(json!({"token": "x", "pid": "p", "offset": "1-0"})),
            ),
            (
                json!({"type": 1, "nsp": "/admin"}),
                PacketKind::Disconnect,
                "/admin",
                None,
                None,
            ),
            (
                json!({"type": 2, "nsp": "/", "data": ["notify", {"title": "t"}], "id": 0}),
                PacketKind::Event,
                "/",
                Some(0),
                Some(json!(["notify", {"title": "t"}])),
            ),
            (
                json!({"type": 2, "nsp": "/admin", "data": [7]}),
                PacketKind::Event,
                "/admin",
                None,
                Some(json!([7])),
            ),
            (
                json!({"type": 3, "nsp": "/", "data": [], "id": 12.0}),
                PacketKind::Ack,
                "/",
                Some(12),
                Some(json!([])),
            ),
            (
                json!({"type": 4, "nsp": "/", "data": "nope"}),
                PacketKind::ConnectError,
                "/",
                None,
                Some(json!("nope")),
            ),
        ];
        for (value, kind, nsp, ack_id, data) in cases {
            let (packet, attachments) = decode(&packed(value.clone())).unwrap();
            let expected = SioPacket {
                kind,
                nsp: nsp.into(),
                attachments: 0,
                ack_id,
                data,
            };
            assert_eq!(packet, expected, "decoding {value}");
            assert!(attachments.is_empty());
        }
    }

    #[test]
    fn decode_reads_notepack_undefined_and_array_buffers() {
        // {type: 0, data: undefined, nsp: "/"}: a CONNECT without auth, as the client writes it.
        let mut bytes = vec![0x83, 0xa4, b't', b'y', b'p', b'e', 0x00];
        bytes.extend([0xa4, b'd', b'a', b't', b'a', 0xd4, 0x00, 0x00]);
        bytes.extend([0xa3, b'n', b's', b'p', 0xa1, b'/']);
        let (packet, _) = decode(&bytes).unwrap();
        assert_eq!((packet.kind, packet.data), (PacketKind::Connect, None));
        // {type: 2, data: ["b", new Uint8Array([9]).buffer, undefined], nsp: "/"}: ext 8 type 0.
        let mut bytes = vec![0x83, 0xa4, b't', b'y', b'p', b'e', 0x02];
        bytes.extend([
            0xa4, b'd', b'a', b't', b'a', 0x93, 0xa1, b'b', 0xc7, 0x01, 0x00, 0x09,
        ]);
        bytes.extend([0xd4, 0x00, 0x00, 0xa3, b'n', b's', b'p', 0xa1, b'/']);
        let (packet, attachments) = decode(&bytes).unwrap();
        assert_eq!(
            packet.data,
            Some(json!(["b", {"_placeholder": true, "num": 0}, null]))
        );
        assert_eq!(attachments, vec![vec![9]]);
    }

    #[test]
    fn decode_refuses_what_the_parser_refuses() {
        let cases = [
            (json!([2, "/"]), DecodeError::InvalidType),
            (json!({"nsp": "/"}), DecodeError::InvalidType),
            (
                json!({"type": 5, "nsp": "/", "data": ["a"]}),
                DecodeError::InvalidType,
            ),
            (
                json!({"type": 6, "nsp": "/", "data": ["a"]}),
                DecodeError::InvalidType,
            ),
            (json!({"type": -1, "nsp": "/"}), DecodeError::InvalidType),
            (json!({"type": 1.5, "nsp": "/"}), DecodeError::InvalidType),
            (
                json!({"type": "2", "nsp": "/", "data": ["a"]}),
                DecodeError::InvalidType,
            ),
            (
                json!({"type": 2, "data": ["a"]}),
                DecodeError::InvalidNamespace,
            ),
            (
                json!({"type": 2, "nsp": 1, "data": ["a"]}),
                DecodeError::InvalidNamespace,
            ),
            (
                json!({"type": 0, "nsp": "/", "data": "x"}),
                DecodeError::InvalidPayload(PacketKind::Connect),
            ),
            (
                json!({"type": 0, "nsp": "/", "data": null}),
                DecodeError::InvalidPayload(PacketKind::Connect),
            ),
            (
                json!({"type": 1, "nsp": "/", "data": {}}),
                DecodeError::InvalidPayload(PacketKind::Disconnect),
            ),
            (
                json!({"type": 2, "nsp": "/", "data": {"a": 1}}),
                DecodeError::InvalidPayload(PacketKind::Event),
            ),
            (
                json!({"type": 2, "nsp": "/"}),
                DecodeError::InvalidPayload(PacketKind::Event),
            ),
            (
                json!({"type": 2, "nsp": "/", "data": []}),
                DecodeError::InvalidPayload(PacketKind::Event),
            ),
            (
                json!({"type": 2, "nsp": "/", "data": ["disconnect"]}),
                DecodeError::InvalidPayload(PacketKind::Event),
            ),
            (
                json!({"type": 3, "nsp": "/", "data": "x", "id": 1}),
                DecodeError::InvalidPayload(PacketKind::Ack),
            ),
            (
                json!({"type": 4, "nsp": "/", "data": [1]}),
                DecodeError::InvalidPayload(PacketKind::ConnectError),
            ),
            (
                json!({"type": 2, "nsp": "/", "data": ["a"], "id": "1"}),
                DecodeError::InvalidAckId,
            ),
            (
                json!({"type": 2, "nsp": "/", "data": ["a"], "id": 1.5}),
                DecodeError::InvalidAckId,
            ),
            (
                json!({"type": 2, "nsp": "/", "data": ["a"], "id": -1}),
                DecodeError::InvalidAckId,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(
                decode(&packed(value.clone())),
                Err(expected),
                "decoding {value}"
            );
        }
    }

    #[test]
    fn decode_refuses_bad_msgpack_without_panicking() {
        let cases: [&[u8]; 8] = [
            &[],
            &[0x85],
            &[0xc1],
            &[0xa3, b'a'],
            &[0xc6, 0xff, 0xff, 0xff, 0xff],
            &[0xd4, 0x00, 0x00],
            &[0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0x80, 0x80],
        ];
        for bytes in cases {
            assert!(
                matches!(decode(bytes), Err(DecodeError::Msgpack(_))),
                "decoding {bytes:02x?}"
            );
        }
        // A text message's bytes (what a JSON-parser client sends) are not a packet either.
        assert!(decode(b"40").is_err());
        assert!(decode(b"42[\"notify\",{}]").is_err());
    }

    #[test]
    fn encode_writes_the_packet_map_with_inline_binary_and_decode_reads_it_back() {
        let packet = SioPacket {
            kind: PacketKind::BinaryAck,
            nsp: "/admin".into(),
            attachments: 1,
            ack_id: Some(3),
            data: Some(json!([{"_placeholder": true, "num": 0}, "x"])),
        };
        let bytes = encode(&packet, &[vec![1u8, 2]]);
        let (value, attachments) = msgpack::decode_binary(&bytes).unwrap();
        assert_eq!(
            value,
            json!({"type": 3, "data": [{"_placeholder": true, "num": 0}, "x"], "nsp": "/admin", "id": 3})
        );
        assert_eq!(attachments, vec![vec![1, 2]]);
        assert!(
            bytes.windows(4).any(|w| w == [0xc4, 2, 1, 2]),
            "the bytes are inline as bin 8"
        );
        let (decoded, _) = decode(&bytes).unwrap();
        assert_eq!(
            (decoded.kind, decoded.ack_id),
            (PacketKind::Ack, Some(3)),
            "no binary packet types on the wire"
        );
    }

    #[test]
    fn encode_writes_the_connect_reply_and_connect_error() {
        let reply = SioPacket::new(
            PacketKind::Connect,
            "/",
            Some(json!({"sid": "s", "pid": "p"})),
        );
        assert_eq!(
            msgpack::decode(&encode::<&[u8]>(&reply, &[])).unwrap(),
            json!({"type": 0, "data": {"sid": "s", "pid": "p"}, "nsp": "/"})
        );
        let refusal = SioPacket::new(
            PacketKind::ConnectError,
            "/x",
            Some(json!({"message": "Invalid namespace"})),
        );
        assert_eq!(
            msgpack::decode(&encode::<&[u8]>(&refusal, &[])).unwrap(),
            json!({"type": 4, "data": {"message": "Invalid namespace"}, "nsp": "/x"})
        );
        let bye = SioPacket::new(PacketKind::Disconnect, "/admin", None);
        assert_eq!(
            msgpack::decode(&encode::<&[u8]>(&bye, &[])).unwrap(),
            json!({"type": 1, "nsp": "/admin"})
        );
    }

    // The Socket.IO flavour of the msgpack codec (msgpack::decode_binary / encode_binary).

    #[test]
    fn decode_binary_reads_bin_and_array_buffers_as_placeholders_in_order() {
        // ["a", bin8 [1,2], {"k": ext8 type 0 [3]}, bin16 (300 bytes)]
        let mut bytes = vec![
            0x94, 0xa1, b'a', 0xc4, 2, 1, 2, 0x81, 0xa1, b'k', 0xc7, 1, 0, 3,
        ];
        bytes.extend([0xc5, 0x01, 0x2c]);
        bytes.extend([7u8; 300]);
        let (value, attachments) = msgpack::decode_binary(&bytes).unwrap();
        assert_eq!(
            value,
            json!(["a", {"_placeholder": true, "num": 0}, {"k": {"_placeholder": true, "num": 1}},
                   {"_placeholder": true, "num": 2}])
        );
        assert_eq!(attachments, vec![vec![1, 2], vec![3], vec![7; 300]]);
        // The plain decoder still refuses binary (the adapter's records and entries are JSON).
        assert_eq!(
            msgpack::decode(&bytes),
            Err(MsgpackError::Unsupported(0xc4))
        );
    }

    #[test]
    fn decode_binary_reads_undefined_as_json_stringify_does_and_refuses_other_extensions() {
        // {"a": undefined, "b": [undefined]} → {"b": [null]}
        let bytes = [0x82, 0xa1, b'a', 0xd4, 0, 0, 0xa1, b'b', 0x91, 0xd4, 0, 0];
        assert_eq!(
            msgpack::decode_binary(&bytes),
            Ok((json!({"b": [null]}), vec![]))
        );
        assert_eq!(
            msgpack::decode_binary(&[0xd4, 0, 0]),
            Err(MsgpackError::Undefined)
        );
        assert_eq!(
            msgpack::decode_binary(&[0xd4, 1, 0]),
            Err(MsgpackError::Unsupported(0xd4))
        );
        assert_eq!(
            msgpack::decode_binary(&[0xc7, 1, 5, 0]),
            Err(MsgpackError::Unsupported(0xc7)),
            "ext type 5"
        );
        assert_eq!(
            msgpack::decode_binary(&[0xc6, 0xff, 0xff, 0xff, 0xff]),
            Err(MsgpackError::Truncated),
            "a bin longer than the input"
        );
    }

    #[test]
    fn encode_binary_writes_placeholders_as_bin_of_their_attachment() {
        let value = json!(["x", {"_placeholder": true, "num": 1}, {"_placeholder": true, "num": 0},
                           {"_placeholder": true, "num": 2}]);
        let big = vec![9u8; 0x1_0000];
        let bytes = msgpack::encode_binary(&value, &[&[1u8][..], &big[..]]);
        assert_eq!(&bytes[..3], [0x94, 0xa1, b'x']);
        assert_eq!(&bytes[3..8], [0xc6, 0, 1, 0, 0], "bin 32 for 64 KiB");
        let (decoded, attachments) = msgpack::decode_binary(&bytes).unwrap();
        assert_eq!(
            decoded,
            json!(["x", {"_placeholder": true, "num": 0}, {"_placeholder": true, "num": 1},
                   {"_placeholder": true, "num": 2}]),
            "a placeholder naming no attachment stays a map"
        );
        assert_eq!(attachments, vec![big, vec![1]]);
        assert_eq!(
            msgpack::encode_binary::<&[u8]>(&json!({"a": [1, "b"]}), &[]),
            msgpack::encode(&json!({"a": [1, "b"]}))
        );
    }

    #[test]
    fn decode_binary_reads_a_notepack_date_as_its_iso_8601_text() {
        let date = |millis: i64| {
            let mut bytes = vec![0xd7, 0x00];
            bytes.extend(millis.to_be_bytes());
            msgpack::decode_binary(&bytes).unwrap().0
        };
        // Values checked against Node's `new Date(ms).toISOString()`.
        assert_eq!(date(0), json!("1970-01-01T00:00:00.000Z"));
        assert_eq!(date(1_732_740_000_123), json!("2024-11-27T20:40:00.123Z"));
        assert_eq!(date(951_782_400_000), json!("2000-02-29T00:00:00.000Z"));
        assert_eq!(date(-1), json!("1969-12-31T23:59:59.999Z"));
        assert_eq!(
            date(-62_198_755_200_000),
            json!("-000001-01-01T00:00:00.000Z")
        );
        assert_eq!(
            date(253_402_300_800_000),
            json!("+010000-01-01T00:00:00.000Z")
        );
        assert_eq!(
            msgpack::decode_binary(&[0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(MsgpackError::Unsupported(0xd7)),
            "fixext 8 of another type"
        );
        assert_eq!(
            msgpack::decode(&[0xd7, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(MsgpackError::Unsupported(0xd7))
        );
    }
}
