//! WsConn: one WebSocket connection, the transport of a Session (from the start, or after an upgrade
//! from long-polling, reference §1.6).
//!
//! Owns: the TCP stream, taken over from the HTTP layer once the upgrade was answered
//! (`http::socketio::websocket`), the reassembly of fragmented messages, and the bytes the socket
//! has not taken yet.
//! Receives: WebSocket frames from the client; WsWrite and WsClose from its Session.
//! Sends: WsEvent to its Session (attached, text, binary, closed). It decodes nothing: the Session
//! speaks the protocol, whatever its transport.
//!
//! Why not the HTTP dispatcher's streaming body (`actix-web-actors`): that keeps an 8 KiB read and an
//! 8 KiB write buffer, the request and the dispatcher's state alive for the whole life of every
//! socket, most of an idle connection's memory, and adds a task wake-up to every write. Here what an
//! actor turn queued goes to the kernel when the turn is over, in one `write` (under load, the frames
//! of many batches in one), and a socket that keeps up holds no buffer at all.

use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll, Waker};
use std::time::Duration;

use actix::prelude::*;
use actix_codec::Decoder;
use actix_http::ws::{CloseCode, Codec, Frame, Item, ProtocolError};
use actix_web::rt::net::TcpStream;
use actix_web::web::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use futures_core::Stream;

use super::disconnect::SessionError;
use super::outbound::{Out, Outbound};

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

/// Bytes read from the socket per `read`.
const READ_CHUNK: usize = 4096;

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
#[derive(Debug, Clone, Copy)]
pub struct WsLimits {
    /// Largest message accepted, fragments included (`HUB_MAX_PAYLOAD`).
    pub max_payload: usize,
    /// The slow-consumer bound (`HUB_MAX_BUFFERED_BYTES`).
    pub max_buffered: usize,
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
    /// What the client sent before the upgrade was answered (a pipelined first frame).
    early: Option<BytesMut>,
    /// Largest message accepted, fragments included.
    max_payload: usize,
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
    /// A fragmented message being reassembled: (is text, bytes so far).
    fragments: Option<(bool, BytesMut)>,
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
        WsConn {
            id,
            session,
            outbound,
            socket: Rc::new(socket),
            early: Some(early),
            max_payload: limits.max_payload,
            max_buffered: limits.max_buffered,
            unwritten: BytesMut::new(),
            reading: Rc::default(),
            open,
            awaiting_writable: false,
            flush_scheduled: false,
            fragments: None,
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
            "websocket client does not take its output, dropped conn={}",
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

    fn on_fragment(&mut self, item: Item, ctx: &mut Context<Self>) {
        let (is_text, bytes, last) = match item {
            Item::FirstText(b) => (Some(true), b, false),
            Item::FirstBinary(b) => (Some(false), b, false),
            Item::Continue(b) => (None, b, false),
            Item::Last(b) => (None, b, true),
        };
        match (is_text, self.fragments.as_mut()) {
            (Some(text), None) => self.fragments = Some((text, BytesMut::from(&bytes[..]))),
            (None, Some((_, buffer))) => buffer.extend_from_slice(&bytes),
            _ => {
                return self.end(
                    ctx,
                    SessionError::Transport("websocket fragments out of order"),
                )
            }
        }
        if self
            .fragments
            .as_ref()
            .is_some_and(|(_, buffer)| buffer.len() > self.max_payload)
        {
            return self.end(ctx, SessionError::MessageTooBig);
        }
        if let (true, Some((is_text, buffer))) = (last, self.fragments.take()) {
            let bytes = buffer.freeze();
            if is_text {
                self.on_text(bytes, ctx);
            } else {
                self.report(WsEventKind::Binary(bytes));
            }
        }
    }

    fn on_text(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        match ByteString::try_from(bytes) {
            Ok(text) => self.report(WsEventKind::Text(text)),
            Err(_) => self.end(ctx, SessionError::Transport("websocket text is not UTF-8")),
        }
    }
}

impl Actor for WsConn {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.open.fetch_add(1, Ordering::Relaxed);
        let early = self.early.take().unwrap_or_default();
        ctx.add_stream(FrameReader {
            socket: self.socket.clone(),
            buffer: early,
            codec: Codec::new().max_size(self.max_payload),
            // A frame's header and mask on top of its payload.
            max_frame: self.max_payload + 14,
            gate: self.reading.clone(),
            discarding: false,
            done: false,
        });
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

impl StreamHandler<Result<Frame, ProtocolError>> for WsConn {
    fn handle(&mut self, frame: Result<Frame, ProtocolError>, ctx: &mut Self::Context) {
        if self.closing {
            // Only the client's side of the close is awaited now.
            return;
        }
        match frame {
            Ok(Frame::Text(bytes)) => self.on_text(bytes, ctx),
            Ok(Frame::Binary(bytes)) => self.report(WsEventKind::Binary(bytes)),
            Ok(Frame::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(Frame::Ping(bytes)) => {
                self.outbound.encoded(bytes.len());
                encode_frame(&mut self.unwritten, Opcode::Pong, &bytes);
                self.schedule_flush(ctx);
            }
            Ok(Frame::Pong(_)) => {}
            Ok(Frame::Close(_)) => self.end(ctx, SessionError::TransportClosed),
            Err(ProtocolError::Overflow) => self.end(ctx, SessionError::MessageTooBig),
            Err(ProtocolError::Io(_)) => self.broken(ctx),
            Err(_) => self.end(ctx, SessionError::Transport("websocket protocol error")),
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

/// Whether a connection's reader may read; shared by the WsConn (which pauses and resumes it) and
/// its FrameReader (which waits while paused).
#[derive(Default)]
struct ReadGate {
    paused: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl ReadGate {
    fn pause(&self) {
        self.paused.set(true);
    }

    fn resume(&self) {
        if self.paused.replace(false) {
            if let Some(waker) = self.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }

    /// Whether paused; if so, `cx` is woken on resume.
    fn is_paused(&self, cx: &TaskContext<'_>) -> bool {
        if self.paused.get() {
            *self.waker.borrow_mut() = Some(cx.waker().clone());
        }
        self.paused.get()
    }
}

/// The client's frames, read from the socket as they come. Between messages it holds no buffer.
/// After a bad frame nothing more is decoded: the rest is read and dropped until the client closes
/// (so our close frame is not lost to a reset), and the stream ends there.
struct FrameReader {
    socket: Rc<TcpStream>,
    buffer: BytesMut,
    codec: Codec,
    /// The largest frame accepted: the codec only checks a frame's size once all of it is read.
    max_frame: usize,
    gate: Rc<ReadGate>,
    /// A bad frame was read: discard until the end.
    discarding: bool,
    /// The end was reached.
    done: bool,
}

impl Stream for FrameReader {
    type Item = Result<Frame, ProtocolError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.gate.is_paused(cx) {
                return Poll::Pending;
            }
            if this.discarding {
                this.buffer.clear();
            } else {
                match this.codec.decode(&mut this.buffer) {
                    Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                    Ok(None) if this.buffer.len() > this.max_frame => {
                        this.discarding = true;
                        return Poll::Ready(Some(Err(ProtocolError::Overflow)));
                    }
                    Ok(None) => {}
                    Err(err) => {
                        this.discarding = true;
                        return Poll::Ready(Some(Err(err)));
                    }
                }
            }
            if this.buffer.is_empty() {
                this.buffer = BytesMut::new();
            }
            if let Err(err) = ready!(this.socket.poll_read_ready(cx)) {
                this.done = true;
                return Poll::Ready(Some(Err(ProtocolError::Io(err))));
            }
            let mut chunk = [0u8; READ_CHUNK];
            match this.socket.try_read(&mut chunk) {
                Ok(0) => this.done = true,
                Ok(n) => this.buffer.extend_from_slice(&chunk[..n]),
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(err) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(ProtocolError::Io(err))));
                }
            }
        }
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
        let mut bytes = framed(Opcode::Text, "é".repeat(100).as_bytes());
        let frame = Codec::new().client_mode().decode(&mut bytes).unwrap();
        assert!(matches!(frame, Some(Frame::Text(t)) if t == "é".repeat(100).as_bytes()));
        assert!(bytes.is_empty());
    }
}
