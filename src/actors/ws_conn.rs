//! WsConn: one WebSocket connection, the transport of a Session (from the start, or after an upgrade
//! from long-polling, reference §1.6).
//!
//! Owns: the TCP stream, taken over from the HTTP layer once the upgrade was answered
//! (`http::socketio::websocket`), its reader (`ws_read`: framing checks, reassembly, the budget
//! of unfinished bytes), and the bytes the socket has not taken yet.
//! Receives: the client's messages and control frames (from its reader); WsWrite and WsClose from
//! its Session.
//! Sends: WsEvent to its Session (attached, text, binary, closed). It decodes nothing: the Session
//! speaks the protocol, whatever its transport.
//!
//! Why not the HTTP dispatcher's streaming body (`actix-web-actors`): that keeps an 8 KiB read and an
//! 8 KiB write buffer, the request and the dispatcher's state alive for the whole life of every
//! socket, most of an idle connection's memory, and adds a task wake-up to every write. Here what an
//! actor turn queued goes to the kernel when the turn is over, in one `write` (under load, the frames
//! of many batches in one), and a socket that keeps up holds no buffer at all.

use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_http::ws::CloseCode;
use actix_web::rt::net::TcpStream;
use actix_web::web::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::disconnect::SessionError;
use super::outbound::{Out, Outbound};
use super::ws_frames::Incoming;
use super::ws_read::{FrameReader, ReadError, ReadGate, UnfinishedBudget};

/// How long a closing connection waits, once its close frame is written, for the client to close
/// its side before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The longest a closing connection lives, however slowly the client takes what is left.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);
/// Queued output past which the client's input is no longer read (a client that does not read is
/// not read either: its pings and requests would queue answers), and below which reading resumes.
const READ_PAUSE_ABOVE: usize = 256 * 1024;
const READ_RESUME_BELOW: usize = 64 * 1024;
/// Queued output that is written at once rather than at the end of the turn.
const WRITE_NOW_ABOVE: usize = 64 * 1024;
/// When a new connection checks that its session took it (a session may end just as it comes up).
const ATTACH_CHECK: Duration = Duration::from_secs(5);

/// Names one WebSocket connection, so a Session tells its transport from an upgrade probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WsConnId(u64);

impl WsConnId {
    /// A process-unique id.
    pub fn next() -> WsConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        WsConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl std::fmt::Display for WsConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a connection may hold: the session settings it needs, and no more.
#[derive(Debug, Clone)]
pub struct WsLimits {
    /// Largest message accepted, fragments included (`HUB_MAX_PAYLOAD`).
    pub max_payload: usize,
    /// The slow-consumer bound (`HUB_MAX_BUFFERED_BYTES`).
    pub max_buffered: usize,
    /// The instance's budget of bytes held by unfinished frames (`HUB_MAX_UNFINISHED_BYTES`).
    pub unfinished: Arc<UnfinishedBudget>,
}

/// What a WsConn reports to its Session; `conn` tells which socket (a session may have two during
/// an upgrade).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct WsEvent {
    /// The reporting connection.
    pub conn: WsConnId,
    /// What happened.
    pub kind: WsEventKind,
}

/// The events of a WebSocket.
#[derive(Debug)]
pub enum WsEventKind {
    /// The connection is up; this is where to write.
    Attached(Addr<WsConn>),
    /// A text message (fragments already joined).
    Text(ByteString),
    /// A binary message.
    Binary(Bytes),
    /// The connection is gone, and why.
    Ended(SessionError),
}

/// Frames to write, in order. `bytes` is what the Session counted as on its way for them.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct WsWrite {
    /// The frames.
    pub frames: Vec<Out>,
    /// Their size as counted in `Outbound::sent`.
    pub bytes: usize,
}

/// Close the connection for this reason; its close frame is what [`SessionError::consequence`] says.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct WsClose(pub SessionError);

/// The WebSocket opcodes the server sends (RFC 6455 §5.2).
#[derive(Clone, Copy)]
enum Opcode {
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Pong = 0xA,
}

/// Appends one unmasked, unfragmented frame (RFC 6455 §5.2: servers never mask).
fn encode_frame(out: &mut BytesMut, opcode: Opcode, payload: &[u8]) {
    out.reserve(payload.len() + 10);
    out.put_u8(0x80 | opcode as u8);
    match payload.len() {
        len @ 0..=125 => out.put_u8(len as u8),
        len @ 126..=65_535 => {
            out.put_u8(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.put_u8(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// The actor.
pub struct WsConn {
    /// Its id, in every WsEvent.
    id: WsConnId,
    /// Who speaks the protocol over this socket.
    session: Recipient<WsEvent>,
    /// What is on its way to the client.
    outbound: Arc<Outbound>,
    /// The connection (shared with the frame reader).
    socket: Rc<TcpStream>,
    /// The reading side, until `started` makes it this actor's stream.
    /// Boxed: it leaves at `started`, and the field would stay in the actor as dead space.
    reader: Option<Box<FrameReader>>,
    /// The slow-consumer bound (`HUB_MAX_BUFFERED_BYTES`); twice that much unwritten ends the
    /// connection whatever its cause.
    max_buffered: usize,
    /// Encoded bytes the socket has not taken yet; empty and unallocated while it keeps up.
    unwritten: BytesMut,
    /// Stops the reader while too much output waits (see READ_PAUSE_ABOVE).
    reading: Rc<ReadGate>,
    /// The server's count of open WebSockets (its orderly shutdown waits for them).
    open: Arc<AtomicUsize>,
    /// Whether a wait for the socket to become writable is running.
    awaiting_writable: bool,
    /// Whether a Flush is on its way.
    flush_scheduled: bool,
    /// Whether the Session was already told the connection ended.
    ended: bool,
    /// Our close frame is written (or queued): nothing follows it; the client closes its side.
    closing: bool,
}

impl WsConn {
    /// A connection for `session` over `socket`, whose upgrade was answered; `early` is what the
    /// client sent after its upgrade request.
    pub fn new(
        id: WsConnId,
        session: Recipient<WsEvent>,
        outbound: Arc<Outbound>,
        socket: TcpStream,
        early: BytesMut,
        limits: WsLimits,
        open: Arc<AtomicUsize>,
    ) -> WsConn {
        let socket = Rc::new(socket);
        let reading = Rc::new(ReadGate::default());
        let reader = FrameReader::new(
            socket.clone(),
            early,
            limits.max_payload,
            reading.clone(),
            limits.unfinished,
        );
        WsConn {
            id,
            session,
            outbound,
            socket,
            reader: Some(Box::new(reader)),
            max_buffered: limits.max_buffered,
            unwritten: BytesMut::new(),
            reading,
            open,
            awaiting_writable: false,
            flush_scheduled: false,
            ended: false,
            closing: false,
        }
    }

    fn report(&self, kind: WsEventKind) {
        self.session.do_send(WsEvent {
            conn: self.id,
            kind,
        });
    }

    /// The connection ends for `why`: its Session is told, and the close frame says what the
    /// failure map decides.
    fn end(&mut self, ctx: &mut Context<Self>, why: SessionError) {
        let code = why.consequence().close_code;
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(why));
        }
        self.close(ctx, code);
    }

    /// Writes a close frame after everything queued, then closes our side; the connection is
    /// dropped when the client closes its side, CLOSE_GRACE after the close frame is written, or
    /// CLOSE_LIMIT after this call, whichever comes first.
    fn close(&mut self, ctx: &mut Context<Self>, code: Option<CloseCode>) {
        if self.closing {
            return;
        }
        self.closing = true;
        if self.outbound.is_aborted() {
            // Given up on (it does not read): nothing more is written to it.
            return ctx.stop();
        }
        let mut payload = Vec::new();
        if let Some(code) = code {
            payload.extend_from_slice(&u16::from(code).to_be_bytes());
        }
        self.outbound.encoded(payload.len());
        encode_frame(&mut self.unwritten, Opcode::Close, &payload);
        // Now, not at the end of the turn: the reader may end the actor before then.
        if !self.awaiting_writable {
            self.write_unwritten(ctx);
        }
        ctx.run_later(CLOSE_LIMIT, |_, ctx| ctx.stop());
    }

    /// Writes what was queued once this actor turn is over (after every message already in the
    /// mailbox): under load, frames of many batches leave in one `write`.
    fn schedule_flush(&mut self, ctx: &mut Context<Self>) {
        // A safety net: broadcasts are bounded by the Hub (at max_buffered), replays by their
        // session's pacing, answers to the client's own frames by pausing its reader.
        if self.unwritten.len() > self.max_buffered.saturating_mul(2) {
            return self.give_up(ctx);
        }
        if self.unwritten.len() > READ_PAUSE_ABOVE {
            self.reading.pause();
        }
        if self.awaiting_writable {
            return;
        }
        if self.unwritten.len() > WRITE_NOW_ABOVE {
            // A mailbox that never empties must not hold everything back.
            return self.write_unwritten(ctx);
        }
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.notify(Flush);
        }
    }

    /// The client takes less than it is sent (or than it asks to be sent): cut it off, as the Hub
    /// does with broadcasts; it recovers what it missed when it comes back.
    fn give_up(&mut self, ctx: &mut Context<Self>) {
        log::debug!(
            "websocket dropped conn={} reason=\"client does not take its output\"",
            self.id
        );
        self.outbound.give_up();
        self.closing = true;
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(SessionError::SlowConsumer));
        }
        ctx.stop();
    }

    fn await_writable(&mut self, ctx: &mut Context<Self>) {
        if self.awaiting_writable {
            return;
        }
        self.awaiting_writable = true;
        let socket = self.socket.clone();
        let writable = async move { socket.writable().await };
        ctx.spawn(writable.into_actor(self).map(|ready, conn, ctx| {
            conn.awaiting_writable = false;
            match ready {
                Ok(()) => conn.write_unwritten(ctx),
                Err(_) => conn.broken(ctx),
            }
        }));
    }

    /// Writes as much of what is queued as the socket takes; waits for it to take the rest.
    fn write_unwritten(&mut self, ctx: &mut Context<Self>) {
        let mut written = 0;
        while written < self.unwritten.len() {
            match self.socket.try_write(&self.unwritten[written..]) {
                Ok(0) => return self.broken(ctx),
                Ok(n) => written += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.broken(ctx),
            }
        }
        self.outbound.written(written);
        if written < self.unwritten.len() {
            let _ = self.unwritten.split_to(written);
            if self.unwritten.len() < READ_RESUME_BELOW {
                self.reading.resume();
            }
            return self.await_writable(ctx);
        }
        // Caught up: a connection that keeps up holds no buffer.
        self.unwritten = BytesMut::new();
        self.reading.resume();
        if self.closing {
            self.shutdown_write();
            ctx.run_later(CLOSE_GRACE, |_, ctx| ctx.stop());
        }
    }

    /// Sends FIN after our close frame (RFC 6455 §7.1.1: the server closes the TCP connection).
    fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(&*self.socket).shutdown(std::net::Shutdown::Write);
    }

    /// The socket failed: nothing can be written or read any more.
    fn broken(&mut self, ctx: &mut Context<Self>) {
        self.closing = true;
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(SessionError::TransportClosed));
        }
        ctx.stop();
    }
}

impl Actor for WsConn {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.open.fetch_add(1, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            ctx.add_stream(*reader);
        }
        if !self.session.connected() {
            // Its session ended before this socket came up (e.g. a late upgrade probe).
            self.ended = true;
            let why = SessionError::NotTheTransport("its session ended before it came up");
            return self.close(ctx, why.consequence().close_code);
        }
        self.report(WsEventKind::Attached(ctx.address()));
        // A session that ended just as this message reached it never answers; a session that
        // lives tells this connection when it closes.
        ctx.run_later(ATTACH_CHECK, |conn, ctx| {
            if !conn.session.connected() {
                conn.ended = true;
                let why = SessionError::NotTheTransport("its session ended as it came up");
                conn.close(ctx, why.consequence().close_code);
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(SessionError::TransportClosed));
        }
    }
}

impl Handler<WsWrite> for WsConn {
    type Result = ();

    fn handle(&mut self, msg: WsWrite, ctx: &mut Self::Context) {
        self.outbound.accepted(msg.bytes);
        if self.closing {
            return;
        }
        for frame in &msg.frames {
            self.outbound.encoded(frame.len());
            match frame {
                Out::Text(text) => encode_frame(&mut self.unwritten, Opcode::Text, text.as_bytes()),
                Out::Binary(bytes) => encode_frame(&mut self.unwritten, Opcode::Binary, bytes),
            }
        }
        self.schedule_flush(ctx);
    }
}

/// Write what this turn queued (see `WsConn::schedule_flush`).
#[derive(Message)]
#[rtype(result = "()")]
struct Flush;

impl Handler<Flush> for WsConn {
    type Result = ();

    fn handle(&mut self, _: Flush, ctx: &mut Self::Context) {
        self.flush_scheduled = false;
        if !self.awaiting_writable {
            self.write_unwritten(ctx);
        }
    }
}

impl Handler<WsClose> for WsConn {
    type Result = ();

    fn handle(&mut self, WsClose(why): WsClose, ctx: &mut Self::Context) {
        // The Session asked: it knows already.
        self.ended = true;
        self.close(ctx, why.consequence().close_code);
    }
}

impl StreamHandler<Result<Incoming, ReadError>> for WsConn {
    fn handle(&mut self, incoming: Result<Incoming, ReadError>, ctx: &mut Self::Context) {
        if self.closing {
            // Only the client's side of the close is awaited now.
            return;
        }
        match incoming {
            Ok(Incoming::Text(text)) => self.report(WsEventKind::Text(text)),
            Ok(Incoming::Binary(bytes)) => self.report(WsEventKind::Binary(bytes)),
            Ok(Incoming::Ping(bytes)) => {
                self.outbound.encoded(bytes.len());
                encode_frame(&mut self.unwritten, Opcode::Pong, &bytes);
                self.schedule_flush(ctx);
            }
            Ok(Incoming::Pong) => {}
            Ok(Incoming::Close) => self.end(ctx, SessionError::TransportClosed),
            Err(ReadError::Framing(err)) => self.end(ctx, err.into()),
            Err(ReadError::OverBudget) => self.end(ctx, SessionError::UnfinishedOverBudget),
            Err(ReadError::Io(err)) => {
                log::debug!("websocket read failed conn={} error=\"{err}\"", self.id);
                self.broken(ctx)
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        // The client closed its side (or the connection failed): nothing more can come.
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(SessionError::TransportClosed));
        }
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(opcode: Opcode, payload: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        encode_frame(&mut out, opcode, payload);
        out
    }

    #[test]
    fn frame_headers_use_the_shortest_length_form() {
        assert_eq!(&framed(Opcode::Text, b"4hi")[..], b"\x81\x034hi");
        assert_eq!(&framed(Opcode::Close, b"")[..], b"\x88\x00");
        let medium = framed(Opcode::Binary, &[7; 126]);
        assert_eq!(&medium[..4], &[0x82, 126, 0, 126]);
        assert_eq!(medium.len(), 4 + 126);
        let large = framed(Opcode::Text, &[b'a'; 70_000]);
        assert_eq!(&large[..2], &[0x81, 127]);
        assert_eq!(&large[2..10], &70_000u64.to_be_bytes());
        assert_eq!(large.len(), 10 + 70_000);
    }

    #[test]
    fn frames_decode_back_with_the_client_codec() {
        use actix_codec::Decoder;
        use actix_http::ws::{Codec, Frame};

        let mut bytes = framed(Opcode::Text, "é".repeat(100).as_bytes());
        let frame = Codec::new().client_mode().decode(&mut bytes).unwrap();
        assert!(matches!(frame, Some(Frame::Text(t)) if t == "é".repeat(100).as_bytes()));
        assert!(bytes.is_empty());
    }
}
