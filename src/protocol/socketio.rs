//! Socket.IO v5 packets, carried inside Engine.IO `message` packets (reference §2.1).
//!
//! ```text
//! <type>[<#attachments>-][<nsp>,][<ack id>][<json>]
//! "0"                          Connect       nsp "/"       (auth {} implied)
//! "0/admin,{\"token\":\"x\"}"  Connect       nsp "/admin"  auth {"token":"x"}
//! "2[\"chat\",\"hi\"]"         Event         nsp "/"       data ["chat","hi"]
//! "3/admin,12[\"ok\"]"         Ack           nsp "/admin"  id 12
//! "51-[\"up\",{\"_placeholder\":true,\"num\":0}]"  BinaryEvent with 1 attachment
//! "4/nope,{\"message\":\"Invalid namespace\"}"     ConnectError
//! ```
//!
//! The decoder rejects exactly what Node's `socket.io-parser` rejects, so a client that works against
//! Node behaves the same here, and one that Node would disconnect is disconnected here too.

use serde_json::Value;

/// The largest number of binary attachments a packet may announce (Node's `maxAttachments`).
pub const MAX_ATTACHMENTS: usize = 10;

/// Event names a server must neither accept nor emit: the client reserves them (reference §2.1).
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// The seven packet types, with their spec names and wire digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// `0`: join a namespace (client), or accept the join (server).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event: `[name, ...args]`.
    Event,
    /// `3`: the answer to an event that carried an ack id.
    Ack,
    /// `4`: the server refuses a CONNECT.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an ack with binary attachments.
    BinaryAck,
}

impl PacketKind {
    fn from_digit(c: char) -> Option<PacketKind> {
        Some(match c {
            '0' => PacketKind::Connect,
            '1' => PacketKind::Disconnect,
            '2' => PacketKind::Event,
            '3' => PacketKind::Ack,
            '4' => PacketKind::ConnectError,
            '5' => PacketKind::BinaryEvent,
            '6' => PacketKind::BinaryAck,
            _ => return None,
        })
    }

    fn digit(self) -> char {
        match self {
            PacketKind::Connect => '0',
            PacketKind::Disconnect => '1',
            PacketKind::Event => '2',
            PacketKind::Ack => '3',
            PacketKind::ConnectError => '4',
            PacketKind::BinaryEvent => '5',
            PacketKind::BinaryAck => '6',
        }
    }

    fn is_binary(self) -> bool {
        matches!(self, PacketKind::BinaryEvent | PacketKind::BinaryAck)
    }
}

/// One Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct SioPacket {
    /// What the packet means.
    pub kind: PacketKind,
    /// The namespace, `/` when the wire omits it.
    pub nsp: String,
    /// How many binary frames follow (binary kinds only).
    pub attachments: usize,
    /// The acknowledgement id, when the sender wants an answer.
    pub ack_id: Option<u64>,
    /// The JSON payload, absent when the wire has none.
    pub data: Option<Value>,
}

impl SioPacket {
    /// A packet of `kind` on `nsp` with `data`, no ack id and no attachments.
    pub fn new(kind: PacketKind, nsp: &str, data: Option<Value>) -> SioPacket {
        SioPacket {
            kind,
            nsp: nsp.to_owned(),
            attachments: 0,
            ack_id: None,
            data,
        }
    }
}

/// Why a text is not a Socket.IO packet. Every variant closes the connection (reference §2.7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The packet is empty.
    #[error("empty packet")]
    Empty,
    /// The first character is not a digit 0-6.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A binary packet without a valid `<n>-` attachment count.
    #[error("illegal attachments")]
    IllegalAttachments,
    /// More attachments than [`MAX_ATTACHMENTS`].
    #[error("too many attachments")]
    TooManyAttachments,
    /// The ack id does not fit in 64 bits.
    #[error("invalid ack id")]
    InvalidAckId,
    /// The payload is not JSON.
    #[error("payload is not valid JSON")]
    InvalidJson,
    /// The JSON does not have the shape the packet type requires (an array for events, ...).
    #[error("invalid payload for a {0:?} packet")]
    InvalidPayload(PacketKind),
}

/// Decodes one packet (the payload of an Engine.IO message). Total over `&str`: never panics.
pub fn decode(input: &str) -> Result<SioPacket, DecodeError> {
    let first = input.chars().next().ok_or(DecodeError::Empty)?;
    let kind = PacketKind::from_digit(first).ok_or(DecodeError::UnknownType(first))?;
    let mut rest = &input[1..];

    let mut attachments = 0;
    if kind.is_binary() {
        let (count, after) = rest
            .split_once('-')
            .ok_or(DecodeError::IllegalAttachments)?;
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DecodeError::IllegalAttachments);
        }
        attachments = count
            .parse::<usize>()
            .map_err(|_| DecodeError::TooManyAttachments)?;
        if attachments > MAX_ATTACHMENTS {
            return Err(DecodeError::TooManyAttachments);
        }
        // A binary packet announces at least one attachment (Node: `n < 1` is illegal).
        if attachments == 0 {
            return Err(DecodeError::IllegalAttachments);
        }
        rest = after;
    }

    // The namespace runs to the next ',' or to the end: both "0/custom" and "0/custom," are valid.
    let mut nsp = "/";
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        nsp = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
    }

    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack_id = if digits > 0 {
        let id = rest[..digits]
            .parse::<u64>()
            .map_err(|_| DecodeError::InvalidAckId)?;
        rest = &rest[digits..];
        Some(id)
    } else {
        None
    };

    let data = if rest.is_empty() {
        None
    } else {
        let mut value = super::json::from_str(rest).map_err(|_| DecodeError::InvalidJson)?;
        if !payload_is_valid(kind, &value) {
            return Err(DecodeError::InvalidPayload(kind));
        }
        if kind.is_binary() && !placeholders_are_valid(&mut value, attachments) {
            return Err(DecodeError::IllegalAttachments);
        }
        Some(value)
    };

    Ok(SioPacket {
        kind,
        nsp: nsp.to_owned(),
        attachments,
        ack_id,
        data,
    })
}

/// Node's `reconstructPacket` check, at header time: every placeholder (an object whose
/// `_placeholder` is `true`) names an attachment by a `num` in `0..attachments`. As in Node, a
/// placeholder's other keys are ignored, two placeholders may name the same attachment, and an
/// attachment no placeholder names is allowed. Stricter than Node on one input no encoder writes: a
/// fractional `num` (Node resolves it to `undefined`) is refused. An integral float (`1.0`) is
/// rewritten as the integer, so applications read every `num` with `as_u64`.
fn placeholders_are_valid(value: &mut Value, attachments: usize) -> bool {
    match value {
        Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)) => {
            let Some(num) = map.get_mut("num") else {
                return false;
            };
            let index = match num.as_u64() {
                Some(index) => index,
                None => match num.as_f64() {
                    Some(f) if f >= 0.0 && f.fract() == 0.0 && f < attachments as f64 => f as u64,
                    _ => return false,
                },
            };
            if index >= attachments as u64 {
                return false;
            }
            *num = Value::from(index);
            true
        }
        Value::Object(map) => map
            .values_mut()
            .all(|v| placeholders_are_valid(v, attachments)),
        Value::Array(items) => items
            .iter_mut()
            .all(|v| placeholders_are_valid(v, attachments)),
        _ => true,
    }
}

/// Node's `isPayloadValid`: the JSON shape each packet type requires.
fn payload_is_valid(kind: PacketKind, value: &Value) -> bool {
    match kind {
        PacketKind::Connect => value.is_object(),
        PacketKind::Disconnect => false,
        PacketKind::ConnectError => value.is_object() || value.is_string(),
        PacketKind::Event | PacketKind::BinaryEvent => {
            match value.as_array().and_then(|a| a.first()) {
                Some(Value::Number(_)) => true,
                Some(Value::String(name)) => !RESERVED_EVENTS.contains(&name.as_str()),
                _ => false,
            }
        }
        PacketKind::Ack | PacketKind::BinaryAck => value.is_array(),
    }
}

/// Encodes a packet as it goes inside an Engine.IO message (without the leading `4`).
pub fn encode(packet: &SioPacket) -> String {
    let mut out = String::new();
    encode_into(packet, &mut out);
    out
}

/// Appends the encoded packet to `out`, so a caller can write the Engine.IO `4` first without a copy.
pub fn encode_into(packet: &SioPacket, out: &mut String) {
    out.push(packet.kind.digit());
    if packet.kind.is_binary() {
        out.push_str(&packet.attachments.to_string());
        out.push('-');
    }
    push_nsp(&packet.nsp, out);
    if let Some(id) = packet.ack_id {
        out.push_str(&id.to_string());
    }
    if let Some(data) = &packet.data {
        out.push_str(&data.to_string());
    }
}

fn push_nsp(nsp: &str, out: &mut String) {
    if nsp != "/" {
        out.push_str(nsp);
        out.push(',');
    }
}

/// The complete Engine.IO frame of a broadcast EVENT with its recovery offset appended as the last
/// argument: `42[<name>,<args…>,"<offset>"]`, or `42/nsp,[…]`.
///
/// `args` is the compact JSON text of the event array without the offset, e.g.
/// `["notification",{…}]`, as stored in the log. Splicing the offset into that text means a broadcast is
/// serialized once, when it is published, and framed once per log entry, never per client.
/// Returns `None` if `args` is not a non-empty JSON array text.
pub fn broadcast_frame(nsp: &str, args: &str, offset: &str) -> Option<String> {
    event_frame(nsp, args, Some(offset), 0)
}

/// The complete Engine.IO frame of a broadcast event, as [`broadcast_frame`], with or without an
/// offset, and with `attachments` binary attachments: a BINARY_EVENT `45<N>-[…]` whose `args` hold
/// the placeholders `{"_placeholder":true,"num":N}` (§2.2); its attachments are sent after it.
pub fn event_frame(
    nsp: &str,
    args: &str,
    offset: Option<&str>,
    attachments: usize,
) -> Option<String> {
    let inner = args.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
    if inner.is_empty() {
        return None;
    }
    let offset_len = offset.map_or(0, str::len);
    let mut out = String::with_capacity(args.len() + nsp.len() + offset_len + 16);
    if attachments > 0 {
        out.push_str("45");
        out.push_str(&attachments.to_string());
        out.push('-');
    } else {
        out.push_str("42");
    }
    push_nsp(nsp, &mut out);
    out.push('[');
    out.push_str(inner);
    if let Some(offset) = offset {
        out.push_str(",\"");
        // Offsets are stream ids (digits and '-'); escaping keeps the frame valid JSON whatever they are.
        for c in offset.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn packet(kind: PacketKind, nsp: &str, ack_id: Option<u64>, data: Option<Value>) -> SioPacket {
        SioPacket {
            kind,
            nsp: nsp.into(),
            attachments: 0,
            ack_id,
            data,
        }
    }

    #[test]
    fn decode_reads_the_reference_examples() {
        let cases = [
            ("0", packet(PacketKind::Connect, "/", None, None)),
            (
                "0{\"token\":\"123\"}",
                packet(
                    PacketKind::Connect,
                    "/",
                    None,
                    Some(json!({"token": "123"})),
                ),
            ),
            (
                "0/admin,",
                packet(PacketKind::Connect, "/admin", None, None),
            ),
            (
                "0/custom",
                packet(PacketKind::Connect, "/custom", None, None),
            ),
            (
                "0/admin,{\"token\":\"abc\"}",
                packet(
                    PacketKind::Connect,
                    "/admin",
                    None,
                    Some(json!({"token": "abc"})),
                ),
            ),
            ("1", packet(PacketKind::Disconnect, "/", None, None)),
            (
                "1/admin,",
                packet(PacketKind::Disconnect, "/admin", None, None),
            ),
            (
                "2[\"hey\",\"Jude\"]",
                packet(PacketKind::Event, "/", None, Some(json!(["hey", "Jude"]))),
            ),
            (
                "2[12,\"a\"]",
                packet(PacketKind::Event, "/", None, Some(json!([12, "a"]))),
            ),
            (
                "212[\"foo\"]",
                packet(PacketKind::Event, "/", Some(12), Some(json!(["foo"]))),
            ),
            (
                "3/admin,13[\"bar\"]",
                packet(PacketKind::Ack, "/admin", Some(13), Some(json!(["bar"]))),
            ),
            (
                "3456[]",
                packet(PacketKind::Ack, "/", Some(456), Some(json!([]))),
            ),
            (
                "4{\"message\":\"no\"}",
                packet(
                    PacketKind::ConnectError,
                    "/",
                    None,
                    Some(json!({"message": "no"})),
                ),
            ),
            ("2", packet(PacketKind::Event, "/", None, None)),
        ];
        for (text, expected) in cases {
            assert_eq!(decode(text), Ok(expected), "decoding {text:?}");
        }
    }

    #[test]
    fn decode_reads_binary_headers() {
        let p = decode("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!(
            (p.kind, p.attachments, p.ack_id),
            (PacketKind::BinaryEvent, 1, None)
        );
        let p = decode("61-/admin,1[{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!(
            (p.kind, p.attachments, p.nsp.as_str(), p.ack_id),
            (PacketKind::BinaryAck, 1, "/admin", Some(1))
        );
    }

    #[test]
    fn decode_rejects_what_node_rejects() {
        let cases = [
            ("", DecodeError::Empty),
            ("abc", DecodeError::UnknownType('a')),
            ("7", DecodeError::UnknownType('7')),
            ("2{}", DecodeError::InvalidPayload(PacketKind::Event)),
            ("2abc[]", DecodeError::InvalidJson),
            ("2[]", DecodeError::InvalidPayload(PacketKind::Event)),
            ("2[{}]", DecodeError::InvalidPayload(PacketKind::Event)),
            (
                "2[\"disconnect\"]",
                DecodeError::InvalidPayload(PacketKind::Event),
            ),
            (
                "2[\"connect\",1]",
                DecodeError::InvalidPayload(PacketKind::Event),
            ),
            ("2[\"a\"]garbage", DecodeError::InvalidJson),
            ("0\"abc\"", DecodeError::InvalidPayload(PacketKind::Connect)),
            ("0[]", DecodeError::InvalidPayload(PacketKind::Connect)),
            ("1{}", DecodeError::InvalidPayload(PacketKind::Disconnect)),
            ("3{}", DecodeError::InvalidPayload(PacketKind::Ack)),
            ("4[]", DecodeError::InvalidPayload(PacketKind::ConnectError)),
            ("5[\"a\"]", DecodeError::IllegalAttachments),
            ("5x-[\"a\"]", DecodeError::IllegalAttachments),
            ("511-[\"a\"]", DecodeError::TooManyAttachments),
            ("299999999999999999999999[\"a\"]", DecodeError::InvalidAckId),
        ];
        for (text, expected) in cases {
            assert_eq!(decode(text), Err(expected), "decoding {text:?}");
        }
    }

    #[test]
    fn decode_reads_lone_surrogates_as_the_replacement_character() {
        // Text cut inside an emoji: `JSON.stringify` writes the lone half as an escape.
        let p = decode(r#"2["x","\ud83d"]"#).unwrap();
        assert_eq!(p.data, Some(json!(["x", "\u{fffd}"])));
        let p = decode(r#"21["notify",{"title":"cut \ud83d"}]"#).unwrap();
        assert_eq!(p.data, Some(json!(["notify", {"title": "cut \u{fffd}"}])));
        let p = decode(r#"0{"tok\udc00":"\ude00\ud83d"}"#).unwrap();
        assert_eq!(p.data, Some(json!({"tok\u{fffd}": "\u{fffd}\u{fffd}"})));
        let p = decode(r#"3/admin,4["\ud83d\ude00","\udbff"]"#).unwrap();
        assert_eq!(p.data, Some(json!(["😀", "\u{fffd}"])));
        let p = decode(r#"51-["\ud83d",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(p.data.unwrap()[0], "\u{fffd}");
    }

    #[test]
    fn decode_refuses_placeholders_that_name_no_attachment() {
        for text in [
            r#"51-["notify",{"_placeholder":true,"num":5}]"#,
            r#"51-["a",{"_placeholder":true,"num":1}]"#,
            r#"51-["a",{"_placeholder":true,"num":-1}]"#,
            r#"51-["a",{"_placeholder":true,"num":0.5}]"#,
            r#"51-["a",{"_placeholder":true,"num":"0"}]"#,
            r#"51-["a",{"_placeholder":true,"num":null}]"#,
            r#"51-["a",{"_placeholder":true}]"#,
            r#"52-["a",{"x":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":2}]}]"#,
            r#"61-3[{"_placeholder":true,"num":1}]"#,
            r#"50-["a"]"#,
            r#"50-["a",{"_placeholder":true,"num":0}]"#,
        ] {
            assert_eq!(
                decode(text),
                Err(DecodeError::IllegalAttachments),
                "decoding {text}"
            );
        }
    }

    #[test]
    fn decode_accepts_placeholders_as_node_reconstructs_them() {
        // Extra keys are ignored, a num may repeat, an attachment may go unnamed, and a placeholder
        // whose `_placeholder` is not `true` is plain data (socket.io-parser's `_reconstructPacket`).
        for text in [
            r#"51-["a",{"_placeholder":true,"num":0,"extra":1}]"#,
            r#"52-["a",{"_placeholder":true,"num":1},{"_placeholder":true,"num":1}]"#,
            r#"52-["a",{"_placeholder":true,"num":0}]"#,
            r#"51-["a",{"_placeholder":"true","num":9}]"#,
            r#"51-["a",{"_placeholder":false}]"#,
        ] {
            assert!(decode(text).is_ok(), "decoding {text}");
        }
        // A placeholder in a plain EVENT is plain data: Node reconstructs only binary packets.
        assert!(decode(r#"2["a",{"_placeholder":true,"num":7}]"#).is_ok());
        let p = decode(r#"51-["a",{"_placeholder":true,"num":0.0}]"#).unwrap();
        assert_eq!(p.data.unwrap()[1]["num"].as_u64(), Some(0));
    }

    #[test]
    fn decode_accepts_exactly_max_attachments() {
        let p = decode("510-[\"a\"]").unwrap();
        assert_eq!((p.kind, p.attachments), (PacketKind::BinaryEvent, 10));
        assert_eq!(decode("511-[\"a\"]"), Err(DecodeError::TooManyAttachments));
    }

    #[test]
    fn decode_survives_multibyte_input() {
        assert_eq!(decode("é"), Err(DecodeError::UnknownType('é')));
        assert_eq!(
            decode("2/é"),
            Ok(packet(PacketKind::Event, "/é", None, None))
        );
    }

    #[test]
    fn encode_writes_the_reference_frames() {
        let sid = json!({"sid": "wZX3oN0bSVIhsaknAAAI"});
        assert_eq!(
            encode(&packet(PacketKind::Connect, "/", None, Some(sid))),
            "0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}"
        );
        let err = json!({"message": "Invalid namespace"});
        assert_eq!(
            encode(&packet(
                PacketKind::ConnectError,
                "/random",
                None,
                Some(err)
            )),
            "4/random,{\"message\":\"Invalid namespace\"}"
        );
        assert_eq!(
            encode(&packet(PacketKind::Disconnect, "/", None, None)),
            "1"
        );
        assert_eq!(
            encode(&packet(PacketKind::Disconnect, "/admin", None, None)),
            "1/admin,"
        );
        assert_eq!(
            encode(&packet(
                PacketKind::Ack,
                "/admin",
                Some(13),
                Some(json!(["bar"]))
            )),
            "3/admin,13[\"bar\"]"
        );
        let mut binary = packet(
            PacketKind::BinaryAck,
            "/",
            Some(789),
            Some(json!([{"_placeholder": true, "num": 0}])),
        );
        binary.attachments = 1;
        assert_eq!(encode(&binary), "61-789[{\"_placeholder\":true,\"num\":0}]");
    }

    #[test]
    fn broadcast_frame_appends_the_offset_as_last_argument() {
        assert_eq!(
            broadcast_frame("/", r#"["notification",{"a":1}]"#, "1795811771375-0").as_deref(),
            Some(r#"42["notification",{"a":1},"1795811771375-0"]"#)
        );
        assert_eq!(
            broadcast_frame("/admin", r#"["x"]"#, "1-2").as_deref(),
            Some(r#"42/admin,["x","1-2"]"#)
        );
        assert_eq!(broadcast_frame("/", "[]", "1-2"), None);
        assert_eq!(broadcast_frame("/", "{}", "1-2"), None);
    }

    #[test]
    fn broadcast_frame_decodes_back_to_the_event_with_offset() {
        let frame = broadcast_frame("/", r#"["n",{"t":"a\"b"}]"#, "5-0").unwrap();
        let packet = decode(&frame[1..]).unwrap();
        assert_eq!(packet.data, Some(json!(["n", {"t": "a\"b"}, "5-0"])));
    }

    #[test]
    fn broadcast_frame_escapes_quotes_backslashes_and_control_characters_in_the_offset() {
        // Everything in Unicode's Cc category (U+0000-U+001F, U+007F-U+009F) becomes \u00xx; JSON
        // requires it only below U+0020. Printable text, non-ASCII included, passes through.
        let offset = "1-\"\\\u{0}\u{1}\n\u{1f} ~\u{7f}\u{9f}é";
        let frame = broadcast_frame("/", r#"["n"]"#, offset).unwrap();
        assert_eq!(
            frame,
            r#"42["n","1-\"\\\u0000\u0001\u000a\u001f ~\u007f\u009fé"]"#
        );
        let packet = decode(&frame[1..]).unwrap();
        assert_eq!(packet.data, Some(json!(["n", offset])));
    }
}
