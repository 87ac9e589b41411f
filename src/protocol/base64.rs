//! Base64, in the two alphabets the protocol uses.
//!
//! - URL-safe without padding for the ids we mint (`Sid`, `Pid`, Engine.IO sids): they travel in query
//!   strings and JSON, and the client treats them as opaque.
//! - Standard with `=` padding for binary packets inside polling payloads (`b<base64>`, reference §1.2)
//!   and for the Redis session records of the streams adapter (reference §4).
//!
//! Twenty lines of table lookups do not justify a dependency.

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Why a base64 text could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// A character outside the standard alphabet (padding aside).
    #[error("invalid base64 character {0:?}")]
    InvalidChar(char),
    /// The length (without padding) leaves a single dangling character.
    #[error("invalid base64 length")]
    InvalidLength,
}

/// Standard alphabet, padded: `01 02 03 04` → `AQIDBA==`.
pub fn encode(bytes: &[u8]) -> String {
    encode_with(bytes, STANDARD, true)
}

/// URL-safe alphabet, unpadded: suitable for ids in URLs.
pub fn encode_url_safe(bytes: &[u8]) -> String {
    encode_with(bytes, URL_SAFE, false)
}

fn encode_with(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes the standard alphabet; padding is optional, whitespace is not allowed.
pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    let trimmed = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in trimmed.chars() {
        let value = match c {
            'A'..='Z' => c as u32 - 'A' as u32,
            'a'..='z' => c as u32 - 'a' as u32 + 26,
            '0'..='9' => c as u32 - '0' as u32 + 52,
            '+' => 62,
            '/' => 63,
            _ => return Err(Base64Error::InvalidChar(c)),
        };
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if trimmed.len() % 4 == 1 {
        return Err(Base64Error::InvalidLength);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_matches_reference_examples() {
        // reference §1.2: bytes 01 02 03 04 become bAQIDBA== in a polling payload
        assert_eq!(encode(&[1, 2, 3, 4]), "AQIDBA==");
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg==");
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
        assert_eq!(encode_url_safe(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn decode_inverts_encode() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| i.wrapping_mul(37).wrapping_add(200))
                .collect();
            assert_eq!(decode(&encode(&bytes)), Ok(bytes));
        }
    }

    #[test]
    fn decode_reads_the_two_symbols_of_the_standard_alphabet() {
        // 62 and 63: 111110 111111 111110 111111
        assert_eq!(decode("+/+/"), Ok(vec![0xfb, 0xff, 0xbf]));
        assert_eq!(encode(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn decode_rejects_foreign_characters_and_bad_length() {
        assert_eq!(decode("AQ-D"), Err(Base64Error::InvalidChar('-')));
        assert_eq!(decode("AQIDB"), Err(Base64Error::InvalidLength));
    }
}
