//! WsConn: one WebSocket connection, the transport of a Session (from the start, or after an upgrade
//! from long-polling, reference §1.6).
//!
//! Owns: the TCP stream, taken over from the HTTP layer once the upgrade was answered
//! (`http::socketio::websocket`), its reader (`ws_read`: framing checks, reassembly, the budget
//! of unfinished bytes), and the writing side's waits (`ws_sink`: the Session writes its frames
//! itself; this actor writes pongs and the close frame, and what the socket did not take once it
//! is writable again).
//! Receives: the client's messages and control frames (from its reader); WsClose from its Session;
//! SinkNeeds from its sink (wait for writability, give up, broken).
//! Sends: WsEvent to its Session (attached with a [`WsLink`], text, binary, closed). It decodes
//! nothing: the Session speaks the protocol, whatever its transport.
//!
//! Why not the HTTP dispatcher's streaming body (`actix-web-actors`): that keeps an 8 KiB read and an
//! 8 KiB write buffer, the request and the dispatcher's state alive for the whole life of every
//! socket, most of an idle connection's memory, and adds a task wake-up to every write. Here a
//! delivery is one `write` from the Session's turn, and a socket that keeps up holds no buffer.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix::WeakAddr;
use actix_web::rt::net::TcpStream;
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;

use super::disconnect::SessionError;
use super::outbound::{Out, Outbound};
use super::ws_frames::Incoming;
use super::ws_read::{FrameReader, ReadError, ReadGate, UnfinishedBudget};
use super::ws_sink::{Opcode, SinkNeeds, Wrote, WsSink};

/// How long a closing connection waits, once its close frame is written, for the client to close
/// its side before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The longest a closing connection lives, however slowly the client takes what is left.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);
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
    Attached(WsLink),
    /// A text message (fragments already joined).
    Text(ByteString),
    /// A binary message.
    Binary(Bytes),
    /// The connection is gone, and why.
    Ended(SessionError),
}

/// A Session's hold on its WebSocket: frames go straight to the socket through the sink; the
/// close goes through the WsConn, after everything written before it.
#[derive(Clone)]
pub struct WsLink {
    /// Weak: a strong address is two allocations per connection (actix gives every sender its own
    /// parking state), and a WsConn lives by its reader, not by who may close it.
    addr: WeakAddr<WsConn>,
    sink: Arc<WsSink>,
}

impl std::fmt::Debug for WsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WsLink")
    }
}

impl WsLink {
    /// Writes `frames`, in order, after everything written before (see [`WsSink`]).
    pub fn send(&self, frames: &[Out]) -> Wrote {
        self.sink.send(frames)
    }

    /// Writes what `encode` appends (RFC 6455 frames, e.g. with [`encode_message`](super::ws_sink::encode_message)),
    /// after everything written before.
    pub fn send_with(&self, encode: impl FnOnce(&mut Vec<u8>)) -> Wrote {
        self.sink.send_with(encode)
    }

    /// Closes the connection for `why`, after what was written; its close frame is what
    /// [`SessionError::consequence`] says.
    pub fn close(&self, why: SessionError) {
        if let Some(addr) = self.addr.upgrade() {
            addr.do_send(WsClose(why));
        }
    }
}

/// Close the connection for this reason; its close frame is what [`SessionError::consequence`] says.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct WsClose(pub SessionError);

/// The actor.
pub struct WsConn {
    /// Its id, in every WsEvent.
    id: WsConnId,
    /// Who speaks the protocol over this socket.
    session: Recipient<WsEvent>,
    /// What is on its way to the client.
    outbound: Arc<Outbound>,
    /// The connection (shared with the frame reader and the sink).
    socket: Arc<TcpStream>,
    /// The reading side, until `started` makes it this actor's stream.
    /// Boxed: it leaves at `started`, and the field would stay in the actor as dead space.
    reader: Option<Box<FrameReader>>,
    /// The writing side, shared with the Session.
    sink: Arc<WsSink>,
    /// Whether a wait for the socket to become writable is running.
    awaiting_writable: bool,
    /// Whether the Session was already told the connection ended.
    ended: bool,
    /// Our close frame is written (or queued): nothing follows it; the client closes its side.
    closing: bool,
    /// The server's count of open WebSockets (its orderly shutdown waits for them).
    open: Arc<AtomicUsize>,
}

impl WsConn {
    /// Starts the connection for `session` over `socket`, whose upgrade was answered; `early` is
    /// what the client sent after its upgrade request.
    pub fn launch(
        id: WsConnId,
        session: Recipient<WsEvent>,
        outbound: Arc<Outbound>,
        socket: TcpStream,
        early: BytesMut,
        limits: WsLimits,
        open: Arc<AtomicUsize>,
    ) -> Addr<WsConn> {
        WsConn::create(move |ctx| {
            let socket = Arc::new(socket);
            let reading = Arc::new(ReadGate::default());
            let reader = FrameReader::new(
                socket.clone(),
                early,
                limits.max_payload,
                reading.clone(),
                limits.unfinished,
            );
            let sink = WsSink::new(
                socket.clone(),
                outbound.clone(),
                reading,
                limits.max_buffered,
                ctx.address().downgrade().recipient(),
            );
            WsConn {
                id,
                session,
                outbound,
                socket,
                reader: Some(Box::new(reader)),
                sink: Arc::new(sink),
                awaiting_writable: false,
                ended: false,
                closing: false,
                open,
            }
        })
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
        self.close(ctx, code.map(u16::from));
    }

    /// Writes a close frame after everything written, then closes our side; the connection is
    /// dropped when the client closes its side, CLOSE_GRACE after the close frame is written, or
    /// CLOSE_LIMIT after this call, whichever comes first.
    fn close(&mut self, ctx: &mut Context<Self>, code: Option<u16>) {
        if self.closing {
            return;
        }
        self.closing = true;
        if self.outbound.is_aborted() {
            // Given up on (it does not read): nothing more is written to it.
            self.sink.discard();
            return ctx.stop();
        }
        let (wrote, needs) = self.sink.close(code);
        self.act_on(ctx, wrote, needs);
        ctx.run_later(CLOSE_LIMIT, |_, ctx| ctx.stop());
    }

    /// What a write through the sink asks of this connection.
    fn act_on(&mut self, ctx: &mut Context<Self>, wrote: Wrote, needs: Option<SinkNeeds>) {
        match needs {
            Some(SinkNeeds::Writable) => self.await_writable(ctx),
            Some(SinkNeeds::GiveUp) => self.give_up(ctx),
            Some(SinkNeeds::Broken) => self.broken(ctx),
            None if wrote == Wrote::Done && self.closing && self.sink.is_flushed() => {
                self.shutdown_write();
                ctx.run_later(CLOSE_GRACE, |_, ctx| ctx.stop());
            }
            None => {}
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
        self.sink.discard();
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
                Ok(()) => {
                    let (wrote, needs) = conn.sink.flush();
                    conn.act_on(ctx, wrote, needs);
                }
                Err(_) => conn.broken(ctx),
            }
        }));
    }

    /// Sends FIN after our close frame (RFC 6455 §7.1.1: the server closes the TCP connection).
    fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(&*self.socket).shutdown(std::net::Shutdown::Write);
    }

    /// The socket failed: nothing can be written or read any more.
    fn broken(&mut self, ctx: &mut Context<Self>) {
        self.closing = true;
        self.sink.discard();
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
            return self.close(ctx, why.consequence().close_code.map(u16::from));
        }
        self.report(WsEventKind::Attached(WsLink {
            addr: ctx.address().downgrade(),
            sink: self.sink.clone(),
        }));
        // A session that ended just as this message reached it never answers; a session that
        // lives tells this connection when it closes.
        ctx.run_later(ATTACH_CHECK, |conn, ctx| {
            if !conn.session.connected() {
                conn.ended = true;
                let why = SessionError::NotTheTransport("its session ended as it came up");
                conn.close(ctx, why.consequence().close_code.map(u16::from));
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        // A Session that still holds the sink writes nowhere: the socket goes with this actor.
        self.sink.discard();
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(SessionError::TransportClosed));
        }
    }
}

impl Handler<SinkNeeds> for WsConn {
    type Result = ();

    fn handle(&mut self, needs: SinkNeeds, ctx: &mut Self::Context) {
        self.act_on(ctx, Wrote::Waiting, Some(needs));
    }
}

impl Handler<WsClose> for WsConn {
    type Result = ();

    fn handle(&mut self, WsClose(why): WsClose, ctx: &mut Self::Context) {
        // The Session asked: it knows already.
        self.ended = true;
        self.close(ctx, why.consequence().close_code.map(u16::from));
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
                let (wrote, needs) = self.sink.send_control(Opcode::Pong, &bytes);
                self.act_on(ctx, wrote, needs);
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
