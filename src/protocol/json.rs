//! JSON text from clients, read as JavaScript writes it: a `\uD83D` escape without its other half is
//! valid JSON (RFC 8259 §8.2 allows it) and `JSON.stringify` writes one for any string cut inside a
//! surrogate pair, but a Rust `String` cannot hold it, so `serde_json` refuses the whole text.
//!
//! ```text
//! ["x","\ud83d"]           → ["x","\ufffd"]            lone high surrogate
//! {"\udc00k":1}            → {"\ufffdk":1}             lone low surrogate, in a key
//! "\udc00\ud83d"           → "\ufffd\ufffd"            reversed pair
//! "\ud83d\ude00"           → "\ud83d\ude00"            a valid pair (😀) is left alone
//! "\\ud83d"                → "\\ud83d"                 an escaped backslash, then plain text
//! ```
//!
//! [`well_formed`] rewrites exactly the `\uD800`–`\uDFFF` escapes that are not half of a valid pair
//! into `\uFFFD` (U+FFFD REPLACEMENT CHARACTER), as a browser's `TextEncoder` and Node's
//! `Buffer.from` do when they meet one; every other byte is kept, so a text without such an escape
//! comes back borrowed, untouched. The rewrite keeps the JSON's validity and length class: what did not
//! parse before (bad hex, a bare backslash) still does not.

use std::borrow::Cow;

use serde_json::Value;

/// The escape that replaces a lone surrogate: U+FFFD, six bytes like the escape it replaces.
const REPLACEMENT: &[u8; 6] = b"\\uFFFD";

/// Parses JSON text as `JSON.parse` accepts it: lone surrogate escapes become U+FFFD (see the module).
pub fn from_str(text: &str) -> serde_json::Result<Value> {
    match well_formed(text.as_bytes()) {
        Cow::Borrowed(_) => serde_json::from_str(text),
        Cow::Owned(bytes) => serde_json::from_slice(&bytes),
    }
}

/// Parses JSON bytes (UTF-8) as [`from_str`] does.
pub fn from_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice(&well_formed(bytes))
}

/// `input` with every `\u` escape of a lone surrogate (a high one not followed by a low one, a low
/// one not preceded by a high one) rewritten to `\uFFFD`. Borrowed when there is none. Only ASCII is
/// replaced by ASCII, so UTF-8 input stays UTF-8.
pub fn well_formed(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    // Where the input was last copied up to, when rewriting.
    let mut copied = 0;
    while i < input.len() {
        if input[i] != b'\\' {
            i += 1;
            continue;
        }
        // A backslash starts a two-byte escape (`\"`, `\\`, ...), or a six-byte `\uXXXX`.
        match surrogate_at(input, i) {
            Some(0xD800..=0xDBFF) => {
                if matches!(surrogate_at(input, i + 6), Some(0xDC00..=0xDFFF)) {
                    i += 12;
                } else {
                    replace(&mut out, input, &mut copied, i);
                    i += 6;
                }
            }
            Some(_) => {
                replace(&mut out, input, &mut copied, i);
                i += 6;
            }
            None => i += 2,
        }
    }
    match out {
        None => Cow::Borrowed(input),
        Some(mut out) => {
            out.extend_from_slice(&input[copied..]);
            Cow::Owned(out)
        }
    }
}

/// The code unit of a `\uXXXX` escape at `at`, if it is one in `D800`–`DFFF`.
fn surrogate_at(input: &[u8], at: usize) -> Option<u16> {
    let escape = input.get(at..at + 6)?;
    if escape[0] != b'\\' || escape[1] != b'u' {
        return None;
    }
    let hex = std::str::from_utf8(&escape[2..]).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let unit = u16::from_str_radix(hex, 16).ok()?;
    (0xD800..=0xDFFF).contains(&unit).then_some(unit)
}

/// Copies what comes before the escape at `at`, then the replacement.
fn replace(out: &mut Option<Vec<u8>>, input: &[u8], copied: &mut usize, at: usize) {
    let out = out.get_or_insert_with(|| Vec::with_capacity(input.len()));
    out.extend_from_slice(&input[*copied..at]);
    out.extend_from_slice(REPLACEMENT);
    *copied = at + 6;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rewritten(text: &str) -> String {
        String::from_utf8(well_formed(text.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn lone_surrogates_become_the_replacement_character() {
        let cases = [
            (r#"["x","\ud83d"]"#, r#"["x","\uFFFD"]"#),
            (r#"["x","\uD83D"]"#, r#"["x","\uFFFD"]"#),
            (r#""\ude00""#, r#""\uFFFD""#),
            (r#""cut \ud83d""#, r#""cut \uFFFD""#),
            (r#""\ud83dx""#, r#""\uFFFDx""#),
            (r#""\ud83d\u0041""#, r#""\uFFFD\u0041""#),
            (r#""\ude00\ud83d""#, r#""\uFFFD\uFFFD""#),
            (r#""\ud83d\ud83d\ude00""#, r#""\uFFFD\ud83d\ude00""#),
            (r#"{"\udc00k":"\udbff"}"#, r#"{"\uFFFDk":"\uFFFD"}"#),
            (r#""\ud83d\\ude00""#, r#""\uFFFD\\ude00""#),
        ];
        for (input, expected) in cases {
            assert_eq!(rewritten(input), expected, "rewriting {input}");
            assert!(from_str(input).is_ok(), "parsing {input}");
        }
        assert_eq!(
            from_str(r#"["x","cut \ud83d",{"\udc00":"\ude00\ud83d"}]"#).unwrap(),
            json!(["x", "cut \u{fffd}", {"\u{fffd}": "\u{fffd}\u{fffd}"}])
        );
    }

    #[test]
    fn valid_pairs_and_other_escapes_are_left_alone() {
        for input in [
            r#""\ud83d\ude00""#,
            r#""\uD83D\uDE00""#,
            r#""\\ud83d""#,
            r#""\\\\ud83d""#,
            r#""\u00e9 \n \" \/ é 😀""#,
            r#"{"a":[1,2.5,null,true]}"#,
        ] {
            assert!(
                matches!(well_formed(input.as_bytes()), Cow::Borrowed(_)),
                "{input} must be left alone"
            );
        }
        assert_eq!(from_str(r#""\ud83d\ude00""#).unwrap(), json!("😀"));
        assert_eq!(from_str(r#""\\ud83d""#).unwrap(), json!("\\ud83d"));
    }

    #[test]
    fn what_is_not_json_stays_not_json() {
        for input in [
            r#""\ud83"#,
            r#""\ud8zz""#,
            r#""\u""#,
            r#""\"#,
            r#"\ud83d"#,
            r#""\ud83d"#,
            "{",
        ] {
            assert!(from_str(input).is_err(), "{input} must not parse");
        }
    }

    #[test]
    fn the_rewrite_is_total_over_any_bytes() {
        for input in [
            &b"\\"[..],
            b"\\u",
            b"\\ud8",
            b"\\ud83d\\",
            b"\\ud83d\\u",
            b"\xff\\ud83d",
        ] {
            let _ = well_formed(input);
        }
        assert_eq!(&*well_formed(b"\xff\\ud83d"), b"\xff\\uFFFD");
    }
}
