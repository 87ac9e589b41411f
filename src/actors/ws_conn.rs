//! WsConn: one WebSocket connection, the transport of a Session (from the start, or after an upgrade
//! from long-polling, reference §1.6).
//!
//! Owns: the TCP stream, taken over from the HTTP layer once the upgrade was answered
//! (`http::socketio::websocket`), its reader (`ws_read`: framing checks, reassembly, the budget
//! of unfinished bytes), and the writing side's waits (`ws_sink`: the Session writes its frames
//! itself; this task writes pongs and the close frame, and what the socket did not take once it
//! is writable again).
//! Receives: the client's messages and control frames (from its reader); what its sink asks (wait
//! for writability, give up, broken) and the Session's close, both through the sink's signal.
//! Sends: WsEvent to its Session (attached with a [`WsLink`], text, binary, closed). It decodes
//! nothing: the Session speaks the protocol, whatever its transport.
//!
//! Why not the HTTP dispatcher's streaming body (`actix-web-actors`): that keeps an 8 KiB read and an
//! 8 KiB write buffer, the request and the dispatcher's state alive for the whole life of every
//! socket, most of an idle connection's memory, and adds a task wake-up to every write. Here a
//! delivery is one `write` from the Session's turn, and a socket that keeps up holds no buffer.
//!
//! Why a plain task, not an actor: nobody sends it messages but its own sink, so an actor's
//! mailbox, addresses and context were about 800 bytes of every idle connection (a 512-byte task,
//! a 112-byte channel, the reader's stream box, the senders' parking states) for nothing. The
//! Session's close and the sink's needs are a few bits in the sink, and one waker.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix::{Message, WeakRecipient};
use actix_web::rt::net::TcpStream;
use actix_web::rt::time::{sleep_until, Instant, Sleep};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_core::Stream;

use super::disconnect::SessionError;
use super::outbound::{Out, Outbound};
use super::ws_frames::Incoming;
use super::ws_read::{FrameReader, ReadError, ReadGate, UnfinishedBudget};
use super::ws_sink::{Asked, Opcode, SinkNeeds, Wrote, WsSink};

/// How long a closing connection waits, once its close frame is written, for the client to close
/// its side before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The longest a closing connection lives, however slowly the client takes what is left.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);

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
    /// The connection is up; this is where to write ([`Attach::take`]).
    Attached(Attach),
    /// A text message (fragments already joined).
    Text(ByteString),
    /// A binary message.
    Binary(Bytes),
    /// The connection is gone, and why.
    Ended(SessionError),
}

/// A Session's hold on its WebSocket: frames go straight to the socket through the sink; the
/// close is asked of the WsConn through the sink too, and written after everything before it.
#[derive(Clone)]
pub struct WsLink {
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
        self.sink
            .ask_close(why.consequence().close_code.map(u16::from));
    }
}

/// A new connection's link, as its Session gets it. Taken, the Session holds the connection (and
/// closes it); dropped untaken, with the mailbox of a session that ended just as the connection
/// came up (actix drops what is left in it), or because the session had ended before, it closes
/// the connection: nobody else would.
pub struct Attach(Option<WsLink>);

impl Attach {
    /// The link; the Session is now who closes the connection.
    pub fn take(mut self) -> WsLink {
        self.0.take().expect("an Attach holds its link until taken")
    }
}

impl Drop for Attach {
    fn drop(&mut self) {
        if let Some(link) = self.0.take() {
            link.close(SessionError::NotTheTransport(
                "its session ended as it came up",
            ));
        }
    }
}

impl std::fmt::Debug for Attach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attach")
    }
}

/// The most events one turn of the task handles before it lets the thread's other tasks run.
const EVENTS_PER_TURN: usize = 32;

/// The connection's task: spawned by [`launch`](WsConn::launch) on the worker thread that
/// answered the upgrade, done when the connection is dropped.
pub struct WsConn {
    /// Its id, in every WsEvent.
    id: WsConnId,
    /// Who speaks the protocol over this socket. Weak: a strong sender is three allocations per
    /// connection (actix gives every sender its own parking state), and a WsConn lives by its
    /// reader, not by its session; upgraded for each report (the client's messages, not the
    /// deliveries).
    session: WeakRecipient<WsEvent>,
    /// The reading side (it holds the connection; the sink shares it).
    reader: FrameReader,
    /// The writing side, shared with the Session (it holds what is on its way to the client).
    sink: Arc<WsSink>,
    /// Once `closing`, when the connection is dropped (CLOSE_LIMIT, or CLOSE_GRACE once our side is
    /// shut, whichever is first). Boxed and only while closing: an open connection holds none, and
    /// its task fits a smaller allocation.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether it waits for the socket to become writable.
    awaiting_writable: bool,
    /// The reader ended (the client closed its side, or the socket failed).
    read_all: bool,
    /// Whether the Session was already told the connection ended.
    ended: bool,
    /// Our close frame is written (or queued): nothing follows it; the client closes its side.
    closing: bool,
    /// Done: the task returns, and the connection is dropped.
    stopped: bool,
    /// The server's count of open WebSockets (its orderly shutdown waits for them).
    open: Arc<AtomicUsize>,
}

impl WsConn {
    /// Starts the connection for `session` over `socket`, whose upgrade was answered; `early` is
    /// what the client sent after its upgrade request. Spawned on the current thread (an actix
    /// worker's or arbiter's).
    pub fn launch(
        id: WsConnId,
        session: WeakRecipient<WsEvent>,
        outbound: Arc<Outbound>,
        socket: TcpStream,
        early: BytesMut,
        limits: WsLimits,
        open: Arc<AtomicUsize>,
    ) {
        let socket = Arc::new(socket);
        let reading = Arc::new(ReadGate::default());
        let reader = FrameReader::new(
            socket.clone(),
            early,
            limits.max_payload,
            reading.clone(),
            limits.unfinished,
        );
        let sink = Arc::new(WsSink::new(socket, outbound, reading, limits.max_buffered));
        open.fetch_add(1, Ordering::Relaxed);
        let mut conn = WsConn {
            id,
            session,
            reader,
            sink,
            timer: None,
            awaiting_writable: false,
            read_all: false,
            ended: false,
            closing: false,
            stopped: false,
            open,
        };
        conn.start();
        actix_web::rt::spawn(conn);
    }

    /// Hands its Session the link. A session that already ended (e.g. for a late upgrade probe),
    /// or ends with this in its mailbox, drops it untaken, which closes the connection.
    fn start(&mut self) {
        self.report(WsEventKind::Attached(Attach(Some(WsLink {
            sink: self.sink.clone(),
        }))));
    }

    fn report(&self, kind: WsEventKind) {
        if let Some(session) = self.session.upgrade() {
            session.do_send(WsEvent {
                conn: self.id,
                kind,
            });
        }
    }

    /// The connection ends for `why`: its Session is told, and the close frame says what the
    /// failure map decides.
    fn end(&mut self, why: SessionError) {
        let code = why.consequence().close_code;
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(why));
        }
        self.close(code.map(u16::from));
    }

    /// Writes a close frame after everything written, then closes our side; the connection is
    /// dropped when the client closes its side, CLOSE_GRACE after the close frame is written, or
    /// CLOSE_LIMIT after this call, whichever comes first.
    fn close(&mut self, code: Option<u16>) {
        if self.closing {
            return;
        }
        self.closing = true;
        if self.sink.outbound().is_aborted() {
            // Given up on (it does not read): nothing more is written to it.
            self.sink.discard();
            self.stopped = true;
            return;
        }
        self.drop_within(CLOSE_LIMIT);
        let (wrote, needs) = self.sink.close(code);
        self.act_on(wrote, needs);
    }

    /// The connection is dropped `within` from now, or sooner if so planned already.
    fn drop_within(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        match &mut self.timer {
            Some(sleep) if sleep.deadline() <= deadline => {}
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(sleep_until(deadline))),
        }
    }

    /// What a write through the sink asks of this connection.
    fn act_on(&mut self, wrote: Wrote, needs: Option<SinkNeeds>) {
        match needs {
            Some(SinkNeeds::Writable) => self.awaiting_writable = true,
            Some(SinkNeeds::GiveUp) => self.give_up(),
            Some(SinkNeeds::Broken) => self.broken(),
            None if wrote == Wrote::Done && self.closing && self.sink.is_flushed() => {
                self.shutdown_write();
                self.drop_within(CLOSE_GRACE);
            }
            None => {}
        }
    }

    /// The client takes less than it is sent (or than it asks to be sent): cut it off, as the Hub
    /// does with broadcasts; it recovers what it missed when it comes back.
    fn give_up(&mut self) {
        log::debug!(
            "websocket dropped conn={} reason=\"client does not take its output\"",
            self.id
        );
        self.sink.outbound().give_up();
        self.sink.discard();
        self.closing = true;
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(SessionError::SlowConsumer));
        }
        self.stopped = true;
    }

    /// Sends FIN after our close frame (RFC 6455 §7.1.1: the server closes the TCP connection).
    fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(self.reader.socket()).shutdown(std::net::Shutdown::Write);
    }

    /// The socket failed: nothing can be written or read any more.
    fn broken(&mut self) {
        self.closing = true;
        self.sink.discard();
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(SessionError::TransportClosed));
        }
        self.stopped = true;
    }

    /// One message or control frame from the client, or why its reader stopped.
    fn on_incoming(&mut self, incoming: Result<Incoming, ReadError>) {
        if self.closing {
            // Only the client's side of the close is awaited now.
            return;
        }
        match incoming {
            Ok(Incoming::Text(text)) => self.report(WsEventKind::Text(text)),
            Ok(Incoming::Binary(bytes)) => self.report(WsEventKind::Binary(bytes)),
            Ok(Incoming::Ping(bytes)) => {
                let (wrote, needs) = self.sink.send_control(Opcode::Pong, &bytes);
                self.act_on(wrote, needs);
            }
            Ok(Incoming::Pong) => {}
            Ok(Incoming::Close) => self.end(SessionError::TransportClosed),
            Err(ReadError::Framing(err)) => self.end(err.into()),
            Err(ReadError::OverBudget) => self.end(SessionError::UnfinishedOverBudget),
            Err(ReadError::Io(err)) => {
                log::debug!("websocket read failed conn={} error=\"{err}\"", self.id);
                self.broken()
            }
        }
    }

    /// The client closed its side (or the connection failed): nothing more can come.
    fn on_read_all(&mut self) {
        self.read_all = true;
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(SessionError::TransportClosed));
        }
        self.stopped = true;
    }

    /// Handles one thing that is ready, if any: what was asked through the sink, then the
    /// socket's writability, the close's deadline and the client's input. False when nothing is.
    fn handle_one(&mut self, cx: &mut Context<'_>) -> bool {
        let asked = self.sink.take_asked(cx.waker());
        if asked != Asked::default() {
            // Both may come in one look (the Session wrote, then closed): a wait before the close,
            // or the close frame would never leave.
            if let Some(needs) = asked.needs {
                self.act_on(Wrote::Waiting, Some(needs));
            }
            if let Some(code) = asked.close {
                // The Session asked: it knows already.
                self.ended = true;
                self.close(code);
            }
            return true;
        }
        if self.awaiting_writable {
            if let Poll::Ready(ready) = self.reader.socket().poll_write_ready(cx) {
                self.awaiting_writable = false;
                match ready {
                    Ok(()) => {
                        let (wrote, needs) = self.sink.flush();
                        self.act_on(wrote, needs);
                    }
                    Err(_) => self.broken(),
                }
                return true;
            }
        }
        if let Some(sleep) = &mut self.timer {
            if sleep.as_mut().poll(cx).is_ready() {
                // The close's deadline: the connection goes.
                self.timer = None;
                self.stopped = true;
                return true;
            }
        }
        if !self.read_all {
            if let Poll::Ready(incoming) = Pin::new(&mut self.reader).poll_next(cx) {
                match incoming {
                    Some(incoming) => self.on_incoming(incoming),
                    None => self.on_read_all(),
                }
                return true;
            }
        }
        false
    }
}

impl Future for WsConn {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let conn = self.get_mut();
        for _ in 0..EVENTS_PER_TURN {
            if conn.stopped {
                return Poll::Ready(());
            }
            if !conn.handle_one(cx) {
                return Poll::Pending;
            }
        }
        if conn.stopped {
            return Poll::Ready(());
        }
        // More may be ready: the thread's other tasks go first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for WsConn {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        // A Session that still holds the sink writes nowhere: the socket goes with this task.
        self.sink.discard();
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(SessionError::TransportClosed));
        }
    }
}

#[cfg(test)]
mod races;

#[cfg(test)]
mod tests;
