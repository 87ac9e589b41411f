//! WebSocket framing for a server reading its clients (RFC 6455 §5): each frame checked when its
//! header arrives, fragments reassembled into messages. No I/O: bytes in, [`Incoming`] out.
//!
//! ```text
//!  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7  (+16 or +64 bits of length)   +32 bits    payload
//! |F|R R R| opcode|M| length (7)  |  extended length (126, 127)  | mask key | …
//! "\x81\x85" mask "H"… : a masked text frame of 5 bytes, FIN set
//! "\x01\x82" … "\x80\x83" …: a text message in two fragments (a continuation, opcode 0, ends it)
//! ```
//!
//! Why checks at the header: actix-http's `ws::Parser` (which still cuts and unmasks each frame
//! here) checks a frame's size only once the whole announced payload is buffered, so a header that
//! announces 2^62 bytes would wait forever, and every connection could hold a max payload of
//! unfinished bytes. Here every rule that the header alone decides (RFC 6455 §5.1, §5.2, §5.4,
//! §5.5 and the max payload, counted over the whole message) is applied before a payload byte is
//! kept.

use actix_http::ws::{OpCode, Parser, ProtocolError};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;

/// The largest payload of a control frame (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// A frame or message that breaks RFC 6455 or the max payload. Each variant names its rule; what it
/// means on the wire is decided in `disconnect` (via `SessionError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// RSV1–3 set, and no extension was negotiated (§5.2).
    #[error("reserved bits set without an extension")]
    ReservedBits,
    /// An opcode RFC 6455 reserves (3–7, 0xB–0xF) (§5.2).
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A client frame without a mask (§5.1).
    #[error("unmasked client frame")]
    Unmasked,
    /// A control frame without FIN (§5.5: control frames are never fragmented).
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload (§5.5).
    #[error("control frame payload over 125 bytes")]
    ControlTooLong,
    /// A 64-bit length with its most significant bit set (§5.2).
    #[error("64-bit payload length with its most significant bit set")]
    LengthMsbSet,
    /// A continuation frame with no message to continue (§5.4).
    #[error("continuation frame without a message to continue")]
    ContinuationWithoutStart,
    /// A new text or binary frame while a fragmented message is unfinished (§5.4).
    #[error("new data frame inside an unfinished message")]
    MessageNotFinished,
    /// The message (all its fragments) would pass the max payload (`HUB_MAX_PAYLOAD`).
    #[error("message larger than the max payload")]
    TooBig,
    /// A close frame with a 1-byte payload (§5.5.1: a code is two bytes).
    #[error("close frame payload of 1 byte")]
    CloseTooShort,
    /// A close code that may not be sent (§7.4.1, §7.4.2).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A text message that is not UTF-8 (§8.1), checked as fragments arrive: a code point split
    /// between fragments is fine, bytes no continuation can make valid are not.
    #[error("text message is not UTF-8")]
    InvalidUtf8,
    /// A close reason that is not UTF-8 (§5.5.1, §8.1).
    #[error("close reason is not UTF-8")]
    CloseReasonNotUtf8,
}

impl FramingError {
    /// A fixed description (for `SessionError`, which carries `&'static str`).
    pub fn as_str(&self) -> &'static str {
        match self {
            FramingError::ReservedBits => "websocket reserved bits set without an extension",
            FramingError::UnknownOpcode(_) => "websocket frame with an unknown opcode",
            FramingError::Unmasked => "unmasked websocket client frame",
            FramingError::FragmentedControl => "fragmented websocket control frame",
            FramingError::ControlTooLong => "websocket control frame over 125 bytes",
            FramingError::LengthMsbSet => "websocket 64-bit length with its top bit set",
            FramingError::ContinuationWithoutStart => "websocket continuation without a start",
            FramingError::MessageNotFinished => "websocket data frame inside an unfinished message",
            FramingError::TooBig => "websocket message larger than the max payload",
            FramingError::CloseTooShort => "websocket close payload of 1 byte",
            FramingError::InvalidCloseCode(_) => "websocket close frame with an invalid code",
            FramingError::InvalidUtf8 => "websocket text is not UTF-8",
            FramingError::CloseReasonNotUtf8 => "websocket close reason is not UTF-8",
        }
    }
}

/// What a client sent: a whole message, or a control frame (RFC 6455 §5.5).
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A text message (fragments joined, UTF-8 checked).
    Text(ByteString),
    /// A binary message (fragments joined).
    Binary(Bytes),
    /// A ping, with its payload for the pong.
    Ping(Bytes),
    /// A pong (ignored: the heartbeat is Engine.IO's).
    Pong,
    /// A valid close frame.
    Close,
}

/// What a frame header says, once it passed the header-time checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    /// Header, extended length and mask key.
    header_len: usize,
    payload_len: usize,
}

/// Checks the header at the start of `buf`; `None` while it is incomplete (a violation is reported
/// as soon as the bytes that show it are there). `unfinished` is the size of the fragmented message
/// being reassembled, if one is.
fn check_header(
    buf: &[u8],
    unfinished: Option<usize>,
    max_payload: usize,
) -> Result<Option<Header>, FramingError> {
    let (Some(&first), Some(&second)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    let fin = first & 0x80 != 0;
    if first & 0x70 != 0 {
        return Err(FramingError::ReservedBits);
    }
    let opcode = first & 0x0f;
    if !matches!(opcode, 0x0..=0x2 | 0x8..=0xa) {
        return Err(FramingError::UnknownOpcode(opcode));
    }
    if second & 0x80 == 0 {
        return Err(FramingError::Unmasked);
    }
    let control = opcode >= 0x8;
    let short_len = second & 0x7f;
    if control && !fin {
        return Err(FramingError::FragmentedControl);
    }
    if control && u64::from(short_len) > MAX_CONTROL_PAYLOAD {
        return Err(FramingError::ControlTooLong);
    }
    match (opcode, unfinished) {
        (0x0, None) => return Err(FramingError::ContinuationWithoutStart),
        (0x1 | 0x2, Some(_)) => return Err(FramingError::MessageNotFinished),
        _ => {}
    }
    let (len, len_bytes) = match short_len {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 2),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut be = [0; 8];
                be.copy_from_slice(b);
                (u64::from_be_bytes(be), 8)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 0),
    };
    if len > i64::MAX as u64 {
        return Err(FramingError::LengthMsbSet);
    }
    // Control frames do not count towards the message they interrupt (§5.4).
    let so_far = if control { 0 } else { unfinished.unwrap_or(0) };
    let payload_len = usize::try_from(len).map_err(|_| FramingError::TooBig)?;
    if so_far.saturating_add(payload_len) > max_payload {
        return Err(FramingError::TooBig);
    }
    let header_len = 2 + len_bytes + 4;
    if buf.len() < header_len {
        return Ok(None);
    }
    Ok(Some(Header {
        fin,
        opcode,
        header_len,
        payload_len,
    }))
}

/// Checks a close frame's payload (§5.5.1): empty, or a code that may be sent (§7.4) and a UTF-8
/// reason.
fn check_close(payload: &[u8]) -> Result<(), FramingError> {
    match payload {
        [] => Ok(()),
        [_] => Err(FramingError::CloseTooShort),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            // 1000–1003 and 1007–1014 are defined (RFC 6455 and the IANA registry); 1004–1006 and
            // 1015 must never be sent; 3000–4999 are for libraries and applications.
            if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                return Err(FramingError::InvalidCloseCode(code));
            }
            std::str::from_utf8(reason).map_err(|_| FramingError::CloseReasonNotUtf8)?;
            Ok(())
        }
    }
}

/// A fragmented message being reassembled.
struct Unfinished {
    text: bool,
    bytes: BytesMut,
    /// How much of `bytes` is known to be UTF-8 (text only).
    utf8_checked: usize,
}

impl Unfinished {
    /// Fails as soon as the text can no longer become UTF-8; a code point cut at the end of a
    /// fragment waits for the next one, unless this was the last.
    fn check_utf8(&mut self, last: bool) -> Result<(), FramingError> {
        if !self.text {
            return Ok(());
        }
        match std::str::from_utf8(&self.bytes[self.utf8_checked..]) {
            Ok(_) => self.utf8_checked = self.bytes.len(),
            Err(err) if err.error_len().is_none() && !last => {
                self.utf8_checked += err.valid_up_to()
            }
            Err(_) => return Err(FramingError::InvalidUtf8),
        }
        Ok(())
    }
}

/// The pure part of a reader: bytes in, messages and control frames out.
pub struct Deframer {
    /// Bytes read and not decoded yet; unallocated between frames.
    buffer: BytesMut,
    /// Boxed: fragmented messages are rare, and every idle connection would carry its room (its
    /// WsConn's task fits a smaller allocation without it).
    unfinished: Option<Box<Unfinished>>,
    max_payload: usize,
}

impl Deframer {
    pub fn new(buffer: BytesMut, max_payload: usize) -> Deframer {
        Deframer {
            buffer,
            unfinished: None,
            max_payload,
        }
    }

    /// Bytes this connection holds for unfinished frames and messages.
    pub fn held(&self) -> usize {
        self.buffer.len() + self.unfinished.as_ref().map_or(0, |u| u.bytes.len())
    }

    /// Bytes read from the socket.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Drops everything (after an error: nothing more is decoded).
    pub fn clear(&mut self) {
        self.buffer = BytesMut::new();
        self.unfinished = None;
    }

    /// The next message or control frame, once all its bytes are in; fragments are absorbed.
    pub fn next(&mut self) -> Result<Option<Incoming>, FramingError> {
        loop {
            let unfinished = self.unfinished.as_ref().map(|u| u.bytes.len());
            let Some(header) = check_header(&self.buffer, unfinished, self.max_payload)? else {
                return Ok(None);
            };
            if self.buffer.len() < header.header_len + header.payload_len {
                return Ok(None);
            }
            // actix-http cuts and unmasks the frame; its own checks agree with the ones above.
            let (_, _, payload) = Parser::parse(&mut self.buffer, true, self.max_payload)
                .map_err(|err| parser_error(err, header))?
                .ok_or(FramingError::TooBig)?;
            if self.buffer.is_empty() {
                // Between frames nothing is held.
                self.buffer = BytesMut::new();
            }
            let payload = payload.unwrap_or_default();
            if let Some(incoming) = self.on_frame(header, payload)? {
                return Ok(Some(incoming));
            }
        }
    }

    fn on_frame(
        &mut self,
        header: Header,
        payload: BytesMut,
    ) -> Result<Option<Incoming>, FramingError> {
        match OpCode::from(header.opcode) {
            OpCode::Ping => Ok(Some(Incoming::Ping(payload.freeze()))),
            OpCode::Pong => Ok(Some(Incoming::Pong)),
            OpCode::Close => check_close(&payload).map(|()| Some(Incoming::Close)),
            OpCode::Text if header.fin => text(payload.freeze()).map(Some),
            OpCode::Binary if header.fin => Ok(Some(Incoming::Binary(payload.freeze()))),
            OpCode::Text | OpCode::Binary => {
                let mut started = Unfinished {
                    text: OpCode::from(header.opcode) == OpCode::Text,
                    bytes: payload,
                    utf8_checked: 0,
                };
                started.check_utf8(false)?;
                self.unfinished = Some(Box::new(started));
                Ok(None)
            }
            OpCode::Continue => {
                let Some(message) = self.unfinished.as_mut() else {
                    return Err(FramingError::ContinuationWithoutStart);
                };
                message.bytes.extend_from_slice(&payload);
                message.check_utf8(header.fin)?;
                if !header.fin {
                    return Ok(None);
                }
                let Some(message) = self.unfinished.take() else {
                    return Err(FramingError::ContinuationWithoutStart);
                };
                let Unfinished {
                    text: is_text,
                    bytes,
                    ..
                } = *message;
                let bytes = bytes.freeze();
                if is_text {
                    text(bytes).map(Some)
                } else {
                    Ok(Some(Incoming::Binary(bytes)))
                }
            }
            OpCode::Bad => Err(FramingError::UnknownOpcode(header.opcode)),
        }
    }
}

fn text(bytes: Bytes) -> Result<Incoming, FramingError> {
    ByteString::try_from(bytes)
        .map(Incoming::Text)
        .map_err(|_| FramingError::InvalidUtf8)
}

/// actix-http's parser re-checks what `check_header` already did; should it still refuse a frame,
/// this says which rule it names.
fn parser_error(err: ProtocolError, header: Header) -> FramingError {
    match err {
        ProtocolError::UnmaskedFrame => FramingError::Unmasked,
        ProtocolError::InvalidOpcode(op) => FramingError::UnknownOpcode(op),
        ProtocolError::InvalidLength(_) => FramingError::ControlTooLong,
        ProtocolError::Io(_) => FramingError::ReservedBits,
        _ => FramingError::UnknownOpcode(header.opcode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

    /// A masked client frame; `first` is FIN/RSV/opcode.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=65_535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        out
    }

    fn deframe(bytes: &[u8], max_payload: usize) -> Vec<Result<Incoming, FramingError>> {
        let mut d = Deframer::new(BytesMut::from(bytes), max_payload);
        let mut out = Vec::new();
        loop {
            match d.next() {
                Ok(Some(incoming)) => out.push(Ok(incoming)),
                Ok(None) => return out,
                Err(err) => {
                    out.push(Err(err));
                    return out;
                }
            }
        }
    }

    fn text_of(s: &str) -> Result<Incoming, FramingError> {
        Ok(Incoming::Text(ByteString::from(s)))
    }

    #[test]
    fn deframer_joins_fragments_around_control_frames() {
        let mut wire = frame(0x01, b"42[\"no");
        wire.extend(frame(0x89, b"p"));
        wire.extend(frame(0x00, b"tify\","));
        wire.extend(frame(0x8a, b""));
        wire.extend(frame(0x80, b"{}]"));
        wire.extend(frame(0x02, &[1, 2]));
        wire.extend(frame(0x80, &[3]));
        assert_eq!(
            deframe(&wire, 100),
            [
                Ok(Incoming::Ping(Bytes::from_static(b"p"))),
                Ok(Incoming::Pong),
                text_of("42[\"notify\",{}]"),
                Ok(Incoming::Binary(Bytes::from_static(&[1, 2, 3]))),
            ]
        );
    }

    #[test]
    fn deframer_accepts_a_code_point_split_between_fragments() {
        let euro = "€".as_bytes();
        let mut wire = frame(0x01, &euro[..1]);
        wire.extend(frame(0x00, &euro[1..2]));
        wire.extend(frame(0x80, &euro[2..]));
        assert_eq!(deframe(&wire, 100), [text_of("€")]);
    }

    #[test]
    fn deframer_refuses_each_framing_violation() {
        let cases: &[(&str, Vec<u8>, FramingError)] = &[
            ("rsv1", frame(0xc1, b"x"), FramingError::ReservedBits),
            ("rsv3", frame(0x91, b"x"), FramingError::ReservedBits),
            ("opcode 3", frame(0x83, b""), FramingError::UnknownOpcode(3)),
            (
                "opcode 0xb",
                frame(0x8b, b""),
                FramingError::UnknownOpcode(0xb),
            ),
            ("unmasked", vec![0x81, 0x01, b'x'], FramingError::Unmasked),
            (
                "ping without fin",
                frame(0x09, b""),
                FramingError::FragmentedControl,
            ),
            (
                "ping of 126",
                frame(0x89, &[0; 126]),
                FramingError::ControlTooLong,
            ),
            (
                "lone continuation",
                frame(0x80, b"x"),
                FramingError::ContinuationWithoutStart,
            ),
            (
                "text inside a message",
                [frame(0x01, b"a"), frame(0x81, b"b")].concat(),
                FramingError::MessageNotFinished,
            ),
            (
                "invalid utf-8",
                frame(0x81, &[0xff]),
                FramingError::InvalidUtf8,
            ),
            (
                "invalid utf-8 in a fragment",
                [frame(0x01, b"ok"), frame(0x00, &[0xc0, 0x80])].concat(),
                FramingError::InvalidUtf8,
            ),
            (
                "cut code point at the end",
                [frame(0x01, b"ok"), frame(0x80, &"€".as_bytes()[..2])].concat(),
                FramingError::InvalidUtf8,
            ),
            (
                "close of 1 byte",
                frame(0x88, &[3]),
                FramingError::CloseTooShort,
            ),
            (
                "close 1005",
                frame(0x88, &1005u16.to_be_bytes()),
                FramingError::InvalidCloseCode(1005),
            ),
            (
                "close 999",
                frame(0x88, &999u16.to_be_bytes()),
                FramingError::InvalidCloseCode(999),
            ),
            (
                "close 5000",
                frame(0x88, &5000u16.to_be_bytes()),
                FramingError::InvalidCloseCode(5000),
            ),
            (
                "close reason",
                frame(0x88, &[0x03, 0xe8, 0xff]),
                FramingError::CloseReasonNotUtf8,
            ),
            (
                "frame over max",
                frame(0x82, &[0; 11]),
                FramingError::TooBig,
            ),
            (
                "message over max",
                [frame(0x02, &[0; 6]), frame(0x80, &[0; 5])].concat(),
                FramingError::TooBig,
            ),
        ];
        for (name, wire, expected) in cases {
            assert_eq!(deframe(wire, 10).pop(), Some(Err(*expected)), "{name}");
        }
    }

    #[test]
    fn header_checks_need_only_the_header() {
        // 2^62 announced, nothing else sent: refused on the 10 bytes of header and length.
        let mut huge = vec![0x82, 0x80 | 127];
        huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
        assert_eq!(check_header(&huge, None, 1000), Err(FramingError::TooBig));
        let mut msb = vec![0x82, 0x80 | 127];
        msb.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(
            check_header(&msb, None, 1000),
            Err(FramingError::LengthMsbSet)
        );
        // A continuation that would take the message past the max, before its payload.
        assert_eq!(
            check_header(&[0x80, 0x80 | 100], Some(950), 1000),
            Err(FramingError::TooBig)
        );
        // A ping does not count towards the message it interrupts.
        assert!(matches!(
            check_header(&[0x89, 0x80 | 100, 0, 0, 0, 0], Some(950), 1000),
            Ok(Some(_))
        ));
        assert_eq!(check_header(&[0x82, 0x80 | 126, 0], None, 1000), Ok(None));
        assert_eq!(
            check_header(&[0x89, 0x80 | 126], None, 1000),
            Err(FramingError::ControlTooLong)
        );
    }

    #[test]
    fn close_codes_follow_section_7_4() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1011, 1013, 3000, 3999, 4000, 4999,
        ] {
            assert_eq!(check_close(&u16::to_be_bytes(code)), Ok(()), "{code}");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert_eq!(
                check_close(&u16::to_be_bytes(code)),
                Err(FramingError::InvalidCloseCode(code))
            );
        }
        assert_eq!(check_close(&[]), Ok(()));
        assert_eq!(check_close(&[0x03, 0xe8, b'o', b'k']), Ok(()));
    }

    #[test]
    fn deframer_holds_only_unfinished_bytes() {
        let mut d = Deframer::new(BytesMut::from(&frame(0x01, b"abc")[..]), 100);
        assert_eq!(d.next(), Ok(None));
        assert_eq!(d.held(), 3);
        d.buffer.extend_from_slice(&frame(0x80, b"d")[..3]);
        assert_eq!(d.next(), Ok(None));
        assert_eq!(d.held(), 6);
        d.buffer.extend_from_slice(&frame(0x80, b"d")[3..]);
        assert_eq!(d.next(), Ok(Some(Incoming::Text(ByteString::from("abcd")))));
        assert_eq!(d.held(), 0);
    }

    #[test]
    fn header_lengths_and_limits_at_their_edges() {
        // A header is 2 bytes, the extended length (0, 2 or 8), then the 4-byte mask key.
        let header = |bytes: &[u8], unfinished, max| check_header(bytes, unfinished, max);
        let short = frame(0x81, &[b'a'; 125]);
        assert_eq!(
            header(&short, None, 1 << 20).unwrap().unwrap().header_len,
            6
        );
        let medium = frame(0x81, &[b'a'; 126]);
        let parsed = header(&medium, None, 1 << 20).unwrap().unwrap();
        assert_eq!((parsed.header_len, parsed.payload_len), (8, 126));
        let long = frame(0x82, &vec![0; 65_536]);
        let parsed = header(&long, None, 1 << 20).unwrap().unwrap();
        assert_eq!((parsed.header_len, parsed.payload_len), (14, 65_536));
        // A control frame may carry 125 bytes, not 126 (RFC 6455 §5.5).
        assert!(header(&frame(0x89, &[0; 125]), None, 1 << 20)
            .unwrap()
            .is_some());
        assert_eq!(
            header(&frame(0x89, &[0; 126]), None, 1 << 20),
            Err(FramingError::ControlTooLong)
        );
        // A message may reach the max payload exactly, over its fragments too.
        assert!(header(&frame(0x00, &[0; 10]), Some(90), 100)
            .unwrap()
            .is_some());
        assert_eq!(
            header(&frame(0x00, &[0; 11]), Some(90), 100),
            Err(FramingError::TooBig)
        );
        // The largest 64-bit length without its top bit is only too big; with it, illegal (§5.2).
        let mut top = vec![0x82, 0x80 | 127];
        top.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
        assert_eq!(header(&top, None, 1 << 20), Err(FramingError::TooBig));
        top[2] = 0x80;
        assert_eq!(header(&top, None, 1 << 20), Err(FramingError::LengthMsbSet));
        // A continuation with nothing to continue (§5.4).
        assert_eq!(
            header(&frame(0x80, b"x"), None, 1 << 20),
            Err(FramingError::ContinuationWithoutStart)
        );
    }

    #[test]
    fn code_points_cut_at_several_fragment_edges_make_one_text() {
        // "aé€b" with é (C3 A9) and € (E2 82 AC) each cut between two fragments.
        let mut bytes = frame(0x01, b"a\xC3");
        bytes.extend(frame(0x00, b"\xA9\xE2\x82"));
        bytes.extend(frame(0x80, b"\xACb"));
        assert_eq!(deframe(&bytes, 1 << 20), [text_of("aé€b")]);
        // The checked prefix grows by what each fragment adds: "ab", then "cde" and half of é.
        let mut grows = frame(0x01, b"ab");
        grows.extend(frame(0x00, b"cde\xC3"));
        grows.extend(frame(0x80, b"\xA9"));
        assert_eq!(deframe(&grows, 1 << 20), [text_of("abcdeé")]);
        // A byte no continuation can make valid, after a cut code point that was completed.
        let mut bad = frame(0x01, b"a\xC3");
        bad.extend(frame(0x00, b"\xA9\xFF"));
        assert_eq!(deframe(&bad, 1 << 20), [Err(FramingError::InvalidUtf8)]);
    }

    #[test]
    fn each_framing_error_names_its_violation() {
        // The description is what the session's close logs: one per violation, each naming it.
        let all = [
            FramingError::ReservedBits,
            FramingError::UnknownOpcode(3),
            FramingError::Unmasked,
            FramingError::FragmentedControl,
            FramingError::ControlTooLong,
            FramingError::LengthMsbSet,
            FramingError::ContinuationWithoutStart,
            FramingError::MessageNotFinished,
            FramingError::TooBig,
            FramingError::CloseTooShort,
            FramingError::InvalidCloseCode(1005),
            FramingError::InvalidUtf8,
            FramingError::CloseReasonNotUtf8,
        ];
        let names: std::collections::HashSet<&str> = all.iter().map(|e| e.as_str()).collect();
        assert_eq!(names.len(), all.len(), "{names:?}");
        assert!(
            names.iter().all(|name| name.contains("websocket")),
            "{names:?}"
        );
    }
}
