//! MessagePack for JSON values: the encoding of the Redis adapter's session records (reference §4.8)
//! and of its binary stream entries (§4.4).
//!
//! ```text
//! {"sid":"a","pid":"b","rooms":["a"],"data":null}
//!   → 84 a3"sid" a1"a" a3"pid" a1"b" a5"rooms" 91 a1"a" a4"data" c0
//! ```
//!
//! Maps keep their keys as strings and their order (Node's `@msgpack/msgpack` writes named maps). Values
//! JSON cannot hold (bin, ext, non-string keys) are refused on decode rather than guessed at.
//!
//! [`decode_binary`] and [`encode_binary`] are the Socket.IO flavour (`socket.io-msgpack-parser`, whose
//! encoder is `notepack.io`): binary values travel inline as `bin` (a Node `Buffer`) or as `ext` type 0
//! (an `ArrayBuffer` or typed array), and stand for themselves in the JSON value as the placeholders
//! of the JSON parser, `{"_placeholder":true,"num":N}`, the bytes beside it in order. `undefined`
//! (`fixext 1` type 0) leaves a map without the key and is `null` in an array, and a `Date`
//! (`fixext 8` type 0, milliseconds since the epoch) is its ISO 8601 text, as `JSON.stringify` (so the
//! JSON parser) gives them: the application reads the same value whichever parser carried it.

use serde_json::{Map, Number, Value};

/// Nesting deeper than this is refused, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Why bytes are not a MessagePack value this module can represent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgpackError {
    /// The input ends inside a value.
    #[error("truncated input")]
    Truncated,
    /// Bytes are left after the value.
    #[error("trailing bytes after the value")]
    Trailing,
    /// A format JSON cannot represent (bin, ext, timestamp) or a reserved byte.
    #[error("unsupported msgpack format 0x{0:02x}")]
    Unsupported(u8),
    /// A map key that is not a string.
    #[error("map key is not a string")]
    NonStringKey,
    /// A string that is not UTF-8.
    #[error("string is not UTF-8")]
    InvalidUtf8,
    /// A float that JSON cannot hold (NaN, infinity).
    #[error("float is not finite")]
    NonFiniteFloat,
    /// Deeper than [`MAX_DEPTH`].
    #[error("nested too deeply")]
    TooDeep,
    /// `undefined` where a value is required (the whole input).
    #[error("undefined is not a value")]
    Undefined,
}

/// Whether `value` is a binary placeholder, `{"_placeholder":true,"num":N}`: gives N.
pub fn placeholder_index(value: &Value) -> Option<usize> {
    let map = value.as_object()?;
    if map.len() != 2 || map.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    usize::try_from(map.get("num")?.as_u64()?).ok()
}

fn placeholder(num: usize) -> Value {
    let mut map = Map::new();
    map.insert("_placeholder".to_owned(), Value::Bool(true));
    map.insert("num".to_owned(), Value::from(num));
    Value::Object(map)
}

/// Encodes a JSON value whose placeholders stand for `attachments` (see the module doc): each
/// placeholder whose N names an attachment is written as that attachment's bytes (`bin`); any other
/// object, a placeholder-like one included, as a map.
pub fn encode_binary<B: AsRef<[u8]>>(value: &Value, attachments: &[B]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_inner(value, attachments, &mut out);
    out
}

fn encode_bin(bytes: &[u8], out: &mut Vec<u8>) {
    let len = bytes.len();
    match len {
        0..=0xff => out.extend([0xc4, len as u8]),
        0x100..=0xffff => {
            out.push(0xc5);
            out.extend((len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xc6);
            out.extend((len as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(bytes);
}

/// Encodes a JSON value.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_inner::<&[u8]>(value, &[], &mut out);
    out
}

fn encode_inner<B: AsRef<[u8]>>(value: &Value, attachments: &[B], out: &mut Vec<u8>) {
    if !attachments.is_empty() {
        if let Some(bytes) = placeholder_index(value).and_then(|num| attachments.get(num)) {
            return encode_bin(bytes.as_ref(), out);
        }
    }
    match value {
        Value::Null => out.push(0xc0),
        Value::Bool(false) => out.push(0xc2),
        Value::Bool(true) => out.push(0xc3),
        Value::Number(n) => encode_number(n, out),
        Value::String(s) => encode_str(s, out),
        Value::Array(items) => {
            encode_len(items.len(), 0x90, 0xdc, 0xdd, out);
            items
                .iter()
                .for_each(|item| encode_inner(item, attachments, out));
        }
        Value::Object(map) => {
            encode_len(map.len(), 0x80, 0xde, 0xdf, out);
            for (key, item) in map {
                encode_str(key, out);
                encode_inner(item, attachments, out);
            }
        }
    }
}

fn encode_number(n: &Number, out: &mut Vec<u8>) {
    if let Some(u) = n.as_u64() {
        match u {
            0..=0x7f => out.push(u as u8),
            0x80..=0xff => out.extend([0xcc, u as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend((u as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend((u as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend(u.to_be_bytes());
            }
        }
    } else if let Some(i) = n.as_i64() {
        // Negative here: as_u64 took every non-negative integer.
        match i {
            -32..=-1 => out.push(i as i8 as u8),
            -128..=-33 => out.extend([0xd0, i as i8 as u8]),
            -32_768..=-129 => {
                out.push(0xd1);
                out.extend((i as i16).to_be_bytes());
            }
            -2_147_483_648..=-32_769 => {
                out.push(0xd2);
                out.extend((i as i32).to_be_bytes());
            }
            _ => {
                out.push(0xd3);
                out.extend(i.to_be_bytes());
            }
        }
    } else {
        out.push(0xcb);
        out.extend(n.as_f64().unwrap_or(0.0).to_be_bytes());
    }
}

fn encode_str(s: &str, out: &mut Vec<u8>) {
    let len = s.len();
    match len {
        0..=31 => out.push(0xa0 | len as u8),
        32..=0xff => out.extend([0xd9, len as u8]),
        0x100..=0xffff => {
            out.push(0xda);
            out.extend((len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdb);
            out.extend((len as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(s.as_bytes());
}

fn encode_len(len: usize, fix: u8, mark16: u8, mark32: u8, out: &mut Vec<u8>) {
    match len {
        0..=15 => out.push(fix | len as u8),
        16..=0xffff => {
            out.push(mark16);
            out.extend((len as u16).to_be_bytes());
        }
        _ => {
            out.push(mark32);
            out.extend((len as u32).to_be_bytes());
        }
    }
}

/// Decodes exactly one value that fills `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Value, MsgpackError> {
    let mut reader = Reader {
        bytes,
        pos: 0,
        binary: None,
    };
    let value = reader.value(0)?;
    if reader.pos != bytes.len() {
        return Err(MsgpackError::Trailing);
    }
    Ok(value)
}

/// Decodes exactly one value that fills `bytes`, Socket.IO's way (see the module doc): its binary
/// values become placeholders, their bytes returned beside it in order.
pub fn decode_binary(bytes: &[u8]) -> Result<(Value, Vec<Vec<u8>>), MsgpackError> {
    let mut reader = Reader {
        bytes,
        pos: 0,
        binary: Some(Vec::new()),
    };
    let value = reader.item(0)?.ok_or(MsgpackError::Undefined)?;
    if reader.pos != bytes.len() {
        return Err(MsgpackError::Trailing);
    }
    Ok((value, reader.binary.unwrap_or_default()))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Socket.IO's flavour: the binary values read so far (`None`: binary is refused).
    binary: Option<Vec<Vec<u8>>>,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], MsgpackError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(MsgpackError::Truncated)?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, MsgpackError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], MsgpackError> {
        let mut buf = [0u8; N];
        buf.copy_from_slice(self.take(N)?);
        Ok(buf)
    }

    fn len(&mut self, width: usize) -> Result<usize, MsgpackError> {
        Ok(match width {
            1 => self.byte()? as usize,
            2 => u16::from_be_bytes(self.be()?) as usize,
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    fn string(&mut self, len: usize) -> Result<String, MsgpackError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| MsgpackError::InvalidUtf8)
    }

    fn float(f: f64) -> Result<Value, MsgpackError> {
        Number::from_f64(f)
            .map(Value::Number)
            .ok_or(MsgpackError::NonFiniteFloat)
    }

    /// A value, `null` for `undefined`.
    fn value(&mut self, depth: usize) -> Result<Value, MsgpackError> {
        Ok(self.item(depth)?.unwrap_or(Value::Null))
    }

    /// A binary value's bytes, as an attachment: its placeholder.
    fn attachment(&mut self, marker: u8, len: usize) -> Result<Value, MsgpackError> {
        let bytes = self.take(len)?.to_vec();
        let Some(binary) = self.binary.as_mut() else {
            return Err(MsgpackError::Unsupported(marker));
        };
        binary.push(bytes);
        Ok(placeholder(binary.len() - 1))
    }

    /// An `ext` of `len` bytes: type 0 is notepack's `ArrayBuffer`, an attachment; others refused.
    fn ext(&mut self, marker: u8, len: usize) -> Result<Value, MsgpackError> {
        let kind = self.byte()?;
        if kind != 0 || self.binary.is_none() {
            return Err(MsgpackError::Unsupported(marker));
        }
        self.attachment(marker, len)
    }

    /// A value, `None` for notepack's `undefined` (`fixext 1` type 0, Socket.IO's flavour only).
    fn item(&mut self, depth: usize) -> Result<Option<Value>, MsgpackError> {
        if depth > MAX_DEPTH {
            return Err(MsgpackError::TooDeep);
        }
        let marker = self.byte()?;
        Ok(Some(match marker {
            0x00..=0x7f => Value::from(marker),
            0x80..=0x8f => self.map((marker & 0x0f) as usize, depth)?,
            0x90..=0x9f => self.array((marker & 0x0f) as usize, depth)?,
            0xa0..=0xbf => Value::String(self.string((marker & 0x1f) as usize)?),
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xca => Self::float(f32::from_be_bytes(self.be()?) as f64)?,
            0xcb => Self::float(f64::from_be_bytes(self.be()?))?,
            0xcc => Value::from(self.byte()?),
            0xcd => Value::from(u16::from_be_bytes(self.be()?)),
            0xce => Value::from(u32::from_be_bytes(self.be()?)),
            0xcf => Value::from(u64::from_be_bytes(self.be()?)),
            0xd0 => Value::from(self.byte()? as i8),
            0xd1 => Value::from(i16::from_be_bytes(self.be()?)),
            0xd2 => Value::from(i32::from_be_bytes(self.be()?)),
            0xd3 => Value::from(i64::from_be_bytes(self.be()?)),
            0xd9 => {
                let len = self.len(1)?;
                Value::String(self.string(len)?)
            }
            0xda => {
                let len = self.len(2)?;
                Value::String(self.string(len)?)
            }
            0xdb => {
                let len = self.len(4)?;
                Value::String(self.string(len)?)
            }
            0xdc => {
                let len = self.len(2)?;
                self.array(len, depth)?
            }
            0xdd => {
                let len = self.len(4)?;
                self.array(len, depth)?
            }
            0xde => {
                let len = self.len(2)?;
                self.map(len, depth)?
            }
            0xdf => {
                let len = self.len(4)?;
                self.map(len, depth)?
            }
            0xe0..=0xff => Value::from(marker as i8),
            0xc4..=0xc6 if self.binary.is_some() => {
                let len = self.len(1 << (marker - 0xc4))?;
                self.attachment(marker, len)?
            }
            0xc7..=0xc9 if self.binary.is_some() => {
                let len = self.len(1 << (marker - 0xc7))?;
                self.ext(marker, len)?
            }
            0xd7 if self.binary.is_some() => {
                let [kind] = self.be::<1>()?;
                let millis = i64::from_be_bytes(self.be()?);
                if kind != 0 {
                    return Err(MsgpackError::Unsupported(marker));
                }
                Value::String(iso_8601(millis))
            }
            0xd4 if self.binary.is_some() => {
                let [kind, _] = self.be::<2>()?;
                if kind != 0 {
                    return Err(MsgpackError::Unsupported(marker));
                }
                return Ok(None);
            }
            other => return Err(MsgpackError::Unsupported(other)),
        }))
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<Value, MsgpackError> {
        // Every element takes at least one byte: a length beyond the input is a lie, not an allocation.
        if len > self.bytes.len() - self.pos {
            return Err(MsgpackError::Truncated);
        }
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Value, MsgpackError> {
        if len > self.bytes.len() - self.pos {
            return Err(MsgpackError::Truncated);
        }
        let mut map = Map::new();
        for _ in 0..len {
            let Value::String(key) = self.value(depth + 1)? else {
                return Err(MsgpackError::NonStringKey);
            };
            // `undefined` leaves the key out, as JSON.stringify does.
            if let Some(value) = self.item(depth + 1)? {
                map.insert(key, value);
            }
        }
        Ok(Value::Object(map))
    }
}

/// `Date.prototype.toISOString` of `millis` since the Unix epoch: `1970-01-01T00:00:00.000Z`, years
/// outside 0-9999 as `±YYYYYY`. (Howard Hinnant's days-to-civil algorithm.)
fn iso_8601(millis: i64) -> String {
    let (days, ms_of_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let year = match year {
        0..=9999 => format!("{year:04}"),
        _ if year < 0 => format!("-{:06}", -year),
        _ => format!("+{year:06}"),
    };
    let (h, m, sec, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{year}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    /// The first bytes of `value`'s encoding: its type marker and length or value.
    fn head(value: serde_json::Value, n: usize) -> Vec<u8> {
        encode(&value)[..n].to_vec()
    }

    #[test]
    fn decode_accepts_nesting_up_to_max_depth_and_refuses_deeper() {
        // k single-item arrays around 0: the 0 sits at depth k.
        let nested = |k: usize| {
            let mut bytes = vec![0x91; k];
            bytes.push(0x00);
            bytes
        };
        assert!(decode(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(decode(&nested(MAX_DEPTH + 1)), Err(MsgpackError::TooDeep));
        // The same through maps: {"k": {"k": … 0}}; both the keys and the values count a level.
        let nested_maps = |k: usize| {
            let mut bytes = Vec::new();
            for _ in 0..k {
                bytes.extend([0x81, 0xa1, b'k']);
            }
            bytes.push(0x00);
            bytes
        };
        assert!(decode(&nested_maps(MAX_DEPTH)).is_ok());
        assert_eq!(
            decode(&nested_maps(MAX_DEPTH + 1)),
            Err(MsgpackError::TooDeep)
        );
        // A map whose key is itself too deep: keys are read one level down too.
        let mut deep_key = vec![0x81];
        deep_key.extend(nested(MAX_DEPTH));
        assert_eq!(decode(&deep_key), Err(MsgpackError::TooDeep));
    }

    #[test]
    fn decode_refuses_a_declared_length_longer_than_the_input_before_allocating() {
        // array 32 / map 32 announcing 4 294 967 295 items, with none present.
        assert_eq!(
            decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(
            decode(&[0xdf, 0xff, 0xff, 0xff, 0xff]),
            Err(MsgpackError::Truncated)
        );
    }

    #[test]
    fn encode_uses_the_smallest_form_as_the_adapter_does() {
        use serde_json::json;
        // Integers, at each boundary (msgpack spec: positive fixint, uint 8/16/32/64).
        assert_eq!(encode(&json!(0x7f)), [0x7f]);
        assert_eq!(encode(&json!(0x80)), [0xcc, 0x80]);
        assert_eq!(encode(&json!(0xff)), [0xcc, 0xff]);
        assert_eq!(encode(&json!(0x100)), [0xcd, 0x01, 0x00]);
        assert_eq!(encode(&json!(0xffff)), [0xcd, 0xff, 0xff]);
        assert_eq!(encode(&json!(0x1_0000)), [0xce, 0, 1, 0, 0]);
        assert_eq!(
            encode(&json!(0xffff_ffffu64)),
            [0xce, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(head(json!(0x1_0000_0000u64), 1), [0xcf]);
        // Negative fixint, int 8/16/32/64.
        assert_eq!(encode(&json!(-1)), [0xff]);
        assert_eq!(encode(&json!(-32)), [0xe0]);
        assert_eq!(encode(&json!(-33)), [0xd0, 0xdf]);
        assert_eq!(encode(&json!(-128)), [0xd0, 0x80]);
        assert_eq!(encode(&json!(-129)), [0xd1, 0xff, 0x7f]);
        assert_eq!(encode(&json!(-32_768)), [0xd1, 0x80, 0x00]);
        assert_eq!(encode(&json!(-32_769)), [0xd2, 0xff, 0xff, 0x7f, 0xff]);
        assert_eq!(head(json!(-2_147_483_648i64), 1), [0xd2]);
        assert_eq!(head(json!(-2_147_483_649i64), 1), [0xd3]);
        // Strings: fixstr up to 31 bytes, str 8 / 16 / 32.
        assert_eq!(head(json!("a".repeat(31)), 1), [0xa0 | 31]);
        assert_eq!(head(json!("a".repeat(32)), 2), [0xd9, 32]);
        assert_eq!(head(json!("a".repeat(0xff)), 2), [0xd9, 0xff]);
        assert_eq!(head(json!("a".repeat(0x100)), 3), [0xda, 0x01, 0x00]);
        assert_eq!(head(json!("a".repeat(0xffff)), 3), [0xda, 0xff, 0xff]);
        assert_eq!(head(json!("a".repeat(0x1_0000)), 5), [0xdb, 0, 1, 0, 0]);
        // Arrays and maps: fix up to 15 items, then 16- and 32-bit lengths.
        assert_eq!(head(json!(vec![0; 15]), 1), [0x90 | 15]);
        assert_eq!(head(json!(vec![0; 16]), 3), [0xdc, 0, 16]);
        assert_eq!(head(json!(vec![0; 0xffff]), 3), [0xdc, 0xff, 0xff]);
        assert_eq!(head(json!(vec![0; 0x1_0000]), 5), [0xdd, 0, 1, 0, 0]);
        let map = |n: usize| {
            serde_json::Value::Object((0..n).map(|i| (i.to_string(), json!(0))).collect())
        };
        assert_eq!(head(map(15), 1), [0x80 | 15]);
        assert_eq!(head(map(16), 3), [0xde, 0, 16]);
        assert_eq!(head(map(0x1_0000), 5), [0xdf, 0, 1, 0, 0]);
    }

    use super::*;
    use crate::protocol::base64;
    use serde_json::json;

    #[test]
    fn decode_reads_the_session_record_node_wrote() {
        // reference §4.8, observed from @socket.io/redis-streams-adapter 0.3.1
        let stored = "hKNzaWS0dmM5WFNpUkcwOFk1WDh5QUFBQUGjcGlktFE4X2d6blNpWGtKWng1ZGFBQUFCpXJvb21zkrR2YzlYU2lSRzA4WTVYOHlBQUFBQaVyb29tMaRkYXRhgaR1c2VypWFsaWNl";
        let value = decode(&base64::decode(stored).unwrap()).unwrap();
        assert_eq!(
            value,
            json!({"sid": "vc9XSiRG08Y5X8yAAAAA", "pid": "Q8_gznSiXkJZx5daAAAB",
                   "rooms": ["vc9XSiRG08Y5X8yAAAAA", "room1"], "data": {"user": "alice"}})
        );
        assert_eq!(
            base64::encode(&encode(&value)),
            stored,
            "we write the same bytes"
        );
    }

    #[test]
    fn encode_then_decode_keeps_every_json_value() {
        let value = json!({
            "ints": [0, 127, 128, 255, 256, 65535, 65536, 4294967295u64, 4294967296u64, u64::MAX,
                     -1, -32, -33, -128, -129, -32768, -32769, -2147483648i64, -2147483649i64, i64::MIN],
            "floats": [0.5, -1.25, 1e300],
            "strings": ["", "x".repeat(31), "y".repeat(32), "z".repeat(300), "é".repeat(40000)],
            "nested": {"a": [null, true, false, {"b": []}]},
            "long": (0..20).collect::<Vec<_>>(),
        });
        assert_eq!(decode(&encode(&value)), Ok(value));
    }

    #[test]
    fn decode_refuses_what_json_cannot_hold_and_broken_input() {
        assert_eq!(
            decode(&[0xc4, 1, 0]),
            Err(MsgpackError::Unsupported(0xc4)),
            "bin"
        );
        assert_eq!(
            decode(&[0xd4, 0xff, 0]),
            Err(MsgpackError::Unsupported(0xd4)),
            "ext"
        );
        assert_eq!(decode(&[0x81, 0x01, 0x02]), Err(MsgpackError::NonStringKey));
        assert_eq!(decode(&[0xa3, b'a']), Err(MsgpackError::Truncated));
        assert_eq!(
            decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(decode(&[0xc0, 0xc0]), Err(MsgpackError::Trailing));
        assert_eq!(decode(&[0xa1, 0xff]), Err(MsgpackError::InvalidUtf8));
        assert_eq!(decode(&[0x91; 100]), Err(MsgpackError::TooDeep));
        assert_eq!(decode(&[]), Err(MsgpackError::Truncated));
    }

    #[test]
    fn decode_binary_takes_bin_values_out_in_socket_io_parser_order() {
        // reference §4.4: io.emit("bin", Buffer.from([1,2,3])), as the adapter wrote it
        let stored =
            "gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQDAQIDpG9wdHODpXJvb21zkKZleGNlcHSQpWZsYWdzgA==";
        let bytes = base64::decode(stored).unwrap();
        assert_eq!(decode(&bytes), Err(MsgpackError::Unsupported(0xc4)));
        let (value, attachments) = decode_binary(&bytes).unwrap();
        assert_eq!(
            value["packet"]["data"],
            json!(["bin", {"_placeholder": true, "num": 0}])
        );
        assert_eq!(attachments, [vec![1, 2, 3]]);
        // Depth first: array index order, then map entry order; bin 8, 16 and 32 alike.
        let mut nested = vec![0x93, 0xc4, 0x01, 0xaa, 0x81, 0xa1, b'k'];
        nested.extend([0xc5, 0x00, 0x02, 0xbb, 0xcc]);
        nested.extend([0xc6, 0x00, 0x00, 0x00, 0x00]);
        let (value, attachments) = decode_binary(&nested).unwrap();
        assert_eq!(
            value,
            json!([
                {"_placeholder": true, "num": 0},
                {"k": {"_placeholder": true, "num": 1}},
                {"_placeholder": true, "num": 2}
            ])
        );
        assert_eq!(attachments, [vec![0xaa], vec![0xbb, 0xcc], vec![]]);
        // A bin longer than the input is truncated input, not an allocation.
        assert_eq!(
            decode_binary(&[0xc6, 0xff, 0xff, 0xff, 0xff]),
            Err(MsgpackError::Truncated)
        );
        // Without bin values: the same as decode.
        let plain = encode(&json!({"a": [1, "x"]}));
        assert_eq!(decode_binary(&plain), Ok((json!({"a": [1, "x"]}), vec![])));
    }
}
