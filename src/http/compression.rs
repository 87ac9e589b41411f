//! Compression of long-polling answers, as Engine.IO's polling transport does it (`httpCompression`,
//! `transports/polling.ts` `doWrite`):
//!
//! ```text
//! payload bytes < threshold (or compression off)          → as is
//! Accept-Encoding allows neither gzip nor deflate          → as is
//! otherwise gzip or deflate (the client's preference; gzip on a tie) → Content-Encoding: gzip|deflate
//! ```
//!
//! Every GET answer of a polling session is a polling write, the handshake's included. POST answers
//! (`ok`) and WebSockets never are. `deflate` is the zlib format (RFC 1950), which is what HTTP's
//! `deflate` names and what Node's `zlib.createDeflate` writes. The level is zlib's default (6), as
//! Node's.
//!
//! The choice follows Node's `negotiator` 0.6 (what `accepts(req).encodings(["gzip","deflate"])`
//! asks): a coding named in the header takes its q-value, otherwise `*`'s; q=0 or absent is
//! refused; the highest q wins, then one named over one matched by `*`, then the one the header
//! lists first, then gzip. No header: no compression. A header actix cannot parse counts as absent
//! (negotiator would skip the bad entry and use the rest).

use std::cmp::Reverse;
use std::io::Write;

use actix_web::http::header::{AcceptEncoding, Encoding, Header, Preference, Quality};
use actix_web::HttpRequest;
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;

/// Payloads up to this many bytes are compressed on the worker that answers; larger ones on the
/// blocking pool (they take milliseconds).
pub const INLINE_MAX: usize = 64 * 1024;

/// A content coding the hub compresses polling answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` (RFC 1952).
    Gzip,
    /// `deflate`: zlib (RFC 1950).
    Deflate,
}

impl Coding {
    /// Its `Content-Encoding` value.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }
}

/// The coding `req` accepts that a polling answer of `len` bytes gets, if any: `None` below
/// `threshold` (`None` threshold: compression off) or when the client accepts neither.
pub fn choose(req: &HttpRequest, len: usize, threshold: Option<usize>) -> Option<Coding> {
    // Node: `if (len < threshold) respond(data)`: a payload of exactly the threshold is compressed.
    if len < threshold? {
        return None;
    }
    // An unparsable header is treated as absent (Node's negotiator skips what it cannot read).
    let accepted = AcceptEncoding::parse(req).ok()?;
    negotiate(&accepted)
}

/// Node's `negotiator` over `[gzip, deflate]` (see the module doc).
fn negotiate(accepted: &AcceptEncoding) -> Option<Coding> {
    // What decides for `coding`, as negotiator ranks it: its q-value, whether the entry names it
    // (over `*`), then the entry's position in the header (earlier first). The entry used is the
    // most specific one, then the highest q, then the earliest.
    let rank = |coding: Coding| -> Option<(Quality, bool, Reverse<usize>)> {
        let best = accepted
            .0
            .iter()
            .enumerate()
            .filter_map(|(at, item)| match &item.item {
                Preference::Specific(enc) if *enc == encoding(coding) => Some((true, item, at)),
                Preference::Any => Some((false, item, at)),
                Preference::Specific(_) => None,
            })
            .max_by_key(|(named, item, at)| (*named, item.quality, Reverse(*at)))?;
        let (named, item, at) = best;
        (item.quality > Quality::ZERO).then_some((item.quality, named, Reverse(at)))
    };
    match (rank(Coding::Gzip), rank(Coding::Deflate)) {
        // gzip first on a complete tie: the order Engine.IO lists them in.
        (Some(gzip), Some(deflate)) if deflate > gzip => Some(Coding::Deflate),
        (Some(_), _) => Some(Coding::Gzip),
        (None, Some(_)) => Some(Coding::Deflate),
        (None, None) => None,
    }
}

fn encoding(coding: Coding) -> Encoding {
    match coding {
        Coding::Gzip => Encoding::gzip(),
        Coding::Deflate => Encoding::deflate(),
    }
}

/// `body` compressed with `coding`.
pub fn compress(body: &[u8], coding: Coding) -> Vec<u8> {
    // Writing into a Vec cannot fail; flate2 reports only the writer's errors.
    let written = match coding {
        Coding::Gzip => {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(body).and_then(|()| encoder.finish())
        }
        Coding::Deflate => {
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(body).and_then(|()| encoder.finish())
        }
    };
    written.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use std::io::Read;

    fn chosen(accept: Option<&str>, len: usize, threshold: Option<usize>) -> Option<Coding> {
        let mut req = TestRequest::get();
        if let Some(accept) = accept {
            req = req.insert_header(("accept-encoding", accept));
        }
        choose(&req.to_http_request(), len, threshold)
    }

    #[test]
    fn choose_compresses_from_the_threshold_up_as_engine_io_does() {
        assert_eq!(chosen(Some("gzip"), 1023, Some(1024)), None);
        assert_eq!(chosen(Some("gzip"), 1024, Some(1024)), Some(Coding::Gzip));
        assert_eq!(chosen(Some("gzip"), 1 << 20, None), None, "off");
        assert_eq!(chosen(None, 1 << 20, Some(0)), None, "no Accept-Encoding");
    }

    #[test]
    fn choose_follows_the_clients_preference_as_node_negotiator_does() {
        let cases = [
            ("gzip", Some(Coding::Gzip)),
            ("deflate", Some(Coding::Deflate)),
            ("gzip, deflate", Some(Coding::Gzip)),
            ("deflate, gzip", Some(Coding::Deflate)),
            ("gzip, deflate, br", Some(Coding::Gzip)),
            ("br", None),
            ("identity", None),
            ("*", Some(Coding::Gzip)),
            ("gzip;q=0.5, deflate", Some(Coding::Deflate)),
            ("gzip;q=0, *", Some(Coding::Deflate)),
            ("gzip;q=0, deflate;q=0", None),
            ("*;q=0", None),
            ("deflate;q=0.8, *;q=0.9", Some(Coding::Gzip)),
            ("*, gzip", Some(Coding::Gzip)),
            ("*, deflate", Some(Coding::Deflate)),
            ("deflate;q=0.5, gzip;q=0.5", Some(Coding::Deflate)),
            ("GZIP", Some(Coding::Gzip)),
        ];
        for (accept, expected) in cases {
            assert_eq!(chosen(Some(accept), 2000, Some(1024)), expected, "{accept}");
        }
    }

    #[test]
    fn compress_writes_gzip_and_zlib_that_decompress_to_the_body() {
        let body = "4{\"x\":1}\u{1e}".repeat(500);
        let mut out = String::new();
        flate2::read::GzDecoder::new(&compress(body.as_bytes(), Coding::Gzip)[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, body);
        out.clear();
        flate2::read::ZlibDecoder::new(&compress(body.as_bytes(), Coding::Deflate)[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, body);
    }
}
