//! WsSink: the writing side of one WebSocket, shared by its WsConn and its Session.
//!
//! Owns: the encoded bytes the socket has not taken yet (none while the client keeps up).
//! Called by: the Session (frames of deliveries, replies, replays), its WsConn (pongs, the close
//! frame, and the rest once the socket is writable again).
//!
//! Why the Session writes itself, not through the WsConn: a delivery used to be a
//! message to the WsConn, a wake-up of its task (whose turn also polled its reader and timers),
//! a copy into its buffer, and a second message to flush at the end of the turn. Now the frames
//! leave in the Session's own turn, in one `write` (RFC 6455 §5.2 frames, encoded into a buffer
//! of the thread), which is all the kernel floor pays. What the socket does not take waits here
//! in order; the WsConn waits for the socket to be writable and writes it. Every write that finds
//! bytes waiting queues behind them, so the client gets bytes in the order they were written.
//!
//! ```text
//! Session ──send──► [socket keeps up] ──► kernel
//!                   [socket full]     ──► unwritten ──(WsConn: writable)──► kernel
//! WsConn ──pong / close──► (same)
//! ```

use std::cell::RefCell;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use actix_web::rt::net::TcpStream;
use actix_web::web::{BufMut, BytesMut};

use super::outbound::{Out, Outbound};
use super::ws_read::ReadGate;

/// Queued output past which the client's input is no longer read (a client that does not read is
/// not read either: its pings and requests would queue answers), and below which reading resumes.
const READ_PAUSE_ABOVE: usize = 256 * 1024;
const READ_RESUME_BELOW: usize = 64 * 1024;
/// A thread's encoding buffer is given back past this size once used (a large replay step).
const SCRATCH_KEEP: usize = 64 * 1024;

/// The WebSocket opcodes the server sends (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Pong = 0xA,
}

/// Appends one unmasked, unfragmented frame (RFC 6455 §5.2: servers never mask).
pub(crate) fn encode_frame(out: &mut impl BufMut, opcode: Opcode, payload: &[u8]) {
    out.put_u8(0x80 | opcode as u8);
    match payload.len() {
        len @ 0..=125 => out.put_u8(len as u8),
        len @ 126..=65_535 => {
            out.put_u8(126);
            out.put_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.put_u8(127);
            out.put_slice(&(len as u64).to_be_bytes());
        }
    }
    out.put_slice(payload);
}

/// Appends one Engine.IO message as its frame (a text or a binary message).
pub(crate) fn encode_message(out: &mut impl BufMut, message: &Out) {
    match message {
        Out::Text(text) => encode_frame(out, Opcode::Text, text.as_bytes()),
        Out::Binary(bytes) => encode_frame(out, Opcode::Binary, bytes),
    }
}

/// Appends the frames of `frames`, in order.
fn encode_all(out: &mut impl BufMut, frames: &[Out]) {
    for frame in frames {
        encode_message(out, frame);
    }
}

thread_local! {
    /// Where a thread encodes the frames of one write (no allocation per delivery).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What the WsConn must do after a write through the sink (asked through the sink's signal when
/// another thread wrote: see [`WsSink::take_asked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkNeeds {
    /// Bytes wait: wait for the socket to be writable, then [`WsSink::flush`].
    Writable,
    /// The client takes less than it is sent: past twice the slow-consumer bound. Cut it off.
    GiveUp,
    /// The socket failed.
    Broken,
}

/// The writing side of one WebSocket (see the module doc).
pub struct WsSink {
    /// What is on its way to the client (`queued` counts the unwritten bytes here).
    outbound: Arc<Outbound>,
    /// The client's reader, paused while too much output waits.
    reading: Arc<ReadGate>,
    /// Twice this much unwritten ends the connection whatever its cause (`HUB_MAX_BUFFERED_BYTES`).
    max_buffered: usize,
    state: Mutex<SinkState>,
}

/// What the WsConn was asked since it last looked (see [`WsSink::take_asked`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    /// What a write from another thread needs of it (the gravest, if several).
    pub needs: Option<SinkNeeds>,
    /// The Session closes the connection, with this close code (if any).
    pub close: Option<Option<u16>>,
}

struct SinkState {
    /// The connection, until the WsConn stops (a sink a Session still holds keeps no socket open).
    socket: Option<Arc<TcpStream>>,
    /// Encoded bytes the socket has not taken; empty and unallocated while it keeps up.
    unwritten: BytesMut,
    /// The WsConn was told to wait for writability (`unwritten` is not empty).
    waiting: bool,
    /// Nothing more is taken: the close frame is queued, or the client was given up on or is gone.
    closed: bool,
    /// What the WsConn has not seen yet, and how to wake it.
    asked: Asked,
    waker: Option<Waker>,
}

/// What a write came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrote {
    /// All of it (and all before it) is with the kernel.
    Done,
    /// Some waits for the socket.
    Waiting,
    /// Not taken: the sink is closed (or was closed by this write: given up or broken).
    Refused,
}

impl WsSink {
    /// A sink for `socket`.
    pub fn new(
        socket: Arc<TcpStream>,
        outbound: Arc<Outbound>,
        reading: Arc<ReadGate>,
        max_buffered: usize,
    ) -> WsSink {
        WsSink {
            outbound,
            reading,
            max_buffered,
            state: Mutex::new(SinkState {
                socket: Some(socket),
                unwritten: BytesMut::new(),
                waiting: false,
                closed: false,
                asked: Asked::default(),
                waker: None,
            }),
        }
    }

    /// What is on its way to the client.
    pub(crate) fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// The WsConn's side of the signal: what it was asked since it last looked (taken), and
    /// `waker` to wake when it is asked more. Stored under the same lock as what is asked, so
    /// nothing asked after this call goes unwoken.
    pub(crate) fn take_asked(&self, waker: &Waker) -> Asked {
        let mut state = self.state();
        if !state.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            state.waker = Some(waker.clone());
        }
        std::mem::take(&mut state.asked)
    }

    /// The Session closes the connection: its WsConn writes the close frame (with `code`) after
    /// everything written, then closes.
    pub(crate) fn ask_close(&self, code: Option<u16>) {
        self.ask(|asked| {
            asked.close.get_or_insert(code);
        });
    }

    /// Records what is asked of the WsConn and wakes it.
    fn ask(&self, what: impl FnOnce(&mut Asked)) {
        let waker = {
            let mut state = self.state();
            what(&mut state.asked);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn state(&self) -> MutexGuard<'_, SinkState> {
        // A panic while holding the lock leaves bytes that are still valid to send.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes `frames` after whatever is still unwritten (the Session's path). A sink that needs its
    /// WsConn tells it.
    pub fn send(&self, frames: &[Out]) -> Wrote {
        self.send_with(|out| encode_all(out, frames))
    }

    /// Writes what `encode` appends to an empty buffer (whole frames), as [`send`](Self::send).
    pub fn send_with(&self, encode: impl FnOnce(&mut Vec<u8>)) -> Wrote {
        let (wrote, needs) = self.encode_and_write(encode);
        self.tell(needs);
        wrote
    }

    /// Encodes into the thread's buffer, then writes it.
    fn encode_and_write(&self, encode: impl FnOnce(&mut Vec<u8>)) -> (Wrote, Option<SinkNeeds>) {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            encode(&mut scratch);
            let outcome = self.write(&scratch);
            if scratch.capacity() > SCRATCH_KEEP {
                *scratch = Vec::new();
            }
            outcome
        })
    }

    /// Writes one control frame (a pong) after whatever is unwritten; the WsConn's path.
    pub(crate) fn send_control(
        &self,
        opcode: Opcode,
        payload: &[u8],
    ) -> (Wrote, Option<SinkNeeds>) {
        let mut frame = Vec::with_capacity(payload.len() + 2);
        encode_frame(&mut frame, opcode, payload);
        self.write(&frame)
    }

    /// Queues the close frame (with `code`, if any) after everything else; nothing is taken after
    /// it. Returns whether everything, the close frame included, is with the kernel now.
    pub(crate) fn close(&self, code: Option<u16>) -> (Wrote, Option<SinkNeeds>) {
        let payload = code.map(u16::to_be_bytes);
        let mut frame = Vec::with_capacity(4);
        encode_frame(
            &mut frame,
            Opcode::Close,
            payload.as_ref().map_or(&[][..], |p| p),
        );
        // One lock for the frame and the refusal of what follows: a write from another thread
        // (the Hub's) between the two would land after the close frame.
        let mut state = self.state();
        let outcome = self.write_locked(&mut state, &frame);
        state.closed = true;
        outcome
    }

    /// Nothing more is taken, and what waits is dropped (the client was given up on, or is gone):
    /// the WsConn's last word, which lets the socket go.
    pub(crate) fn discard(&self) {
        let mut state = self.state();
        state.closed = true;
        state.socket = None;
        // Its WsConn is going: its waker would keep the task's allocation as long as the link
        // lives (a running one stores it again at its next look).
        state.waker = None;
        self.outbound.written(state.unwritten.len());
        state.unwritten = BytesMut::new();
    }

    /// Whether every byte taken is with the kernel.
    pub(crate) fn is_flushed(&self) -> bool {
        self.state().unwritten.is_empty()
    }

    /// The socket is writable again: writes what waits (the WsConn's path).
    pub(crate) fn flush(&self) -> (Wrote, Option<SinkNeeds>) {
        let mut state = self.state();
        state.waiting = false;
        let Some(socket) = state.socket.clone() else {
            return (Wrote::Refused, None);
        };
        let mut written = 0;
        let result = write_some(&socket, &state.unwritten, &mut written);
        self.outbound.written(written);
        if written == state.unwritten.len() {
            // Caught up: a connection that keeps up holds no buffer.
            state.unwritten = BytesMut::new();
        } else {
            let _ = state.unwritten.split_to(written);
        }
        if state.unwritten.len() < READ_RESUME_BELOW {
            self.reading.resume();
        }
        match result {
            Err(_) => {
                state.closed = true;
                (Wrote::Refused, Some(SinkNeeds::Broken))
            }
            Ok(()) if state.unwritten.is_empty() => (Wrote::Done, None),
            Ok(()) => {
                state.waiting = true;
                (Wrote::Waiting, Some(SinkNeeds::Writable))
            }
        }
    }

    /// Tells the WsConn what it must do, if anything (a failure outranks a wait).
    fn tell(&self, needs: Option<SinkNeeds>) {
        if let Some(needs) = needs {
            self.ask(|asked| {
                asked.needs = match asked.needs {
                    Some(SinkNeeds::GiveUp | SinkNeeds::Broken) => asked.needs,
                    _ => Some(needs),
                };
            });
        }
    }

    /// Writes `bytes` to the socket if nothing waits, else (and whatever the socket does not take)
    /// queues them.
    fn write(&self, bytes: &[u8]) -> (Wrote, Option<SinkNeeds>) {
        self.write_locked(&mut self.state(), bytes)
    }

    /// [`write`](Self::write), under the lock its caller holds.
    fn write_locked(&self, state: &mut SinkState, bytes: &[u8]) -> (Wrote, Option<SinkNeeds>) {
        let socket = match &state.socket {
            Some(socket) if !state.closed => socket,
            _ => return (Wrote::Refused, None),
        };
        let mut written = 0;
        if state.unwritten.is_empty() {
            if write_some(socket, bytes, &mut written).is_err() {
                state.closed = true;
                return (Wrote::Refused, Some(SinkNeeds::Broken));
            }
            if written == bytes.len() {
                return (Wrote::Done, None);
            }
        }
        let rest = &bytes[written..];
        state.unwritten.extend_from_slice(rest);
        self.outbound.queued_more(rest.len());
        if state.unwritten.len() > self.max_buffered.saturating_mul(2) {
            // A safety net: broadcasts are bounded by the Hub (at max_buffered), replays by their
            // session's pacing, answers to the client's own frames by pausing its reader.
            state.closed = true;
            return (Wrote::Refused, Some(SinkNeeds::GiveUp));
        }
        if state.unwritten.len() > READ_PAUSE_ABOVE {
            self.reading.pause();
        }
        if state.waiting {
            return (Wrote::Waiting, None);
        }
        state.waiting = true;
        (Wrote::Waiting, Some(SinkNeeds::Writable))
    }
}

/// Writes as much of `bytes` as the socket takes without blocking, counting it in `written`. An
/// error means the connection failed (a socket that takes nothing reports WouldBlock, not 0).
fn write_some(socket: &TcpStream, bytes: &[u8], written: &mut usize) -> io::Result<()> {
    while *written < bytes.len() {
        match socket.try_write(&bytes[*written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *written += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// A loopback connection with small kernel buffers (4 KiB), so tests fill them quickly: the
/// server's end (non-blocking, in the reactor, known writable as after an upgrade's answer) and
/// the client's (blocking; not read until the test reads it).
#[cfg(test)]
pub(crate) async fn small_loopback() -> (TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    socket2::SockRef::from(&server)
        .set_send_buffer_size(4096)
        .unwrap();
    socket2::SockRef::from(&client)
        .set_recv_buffer_size(4096)
        .unwrap();
    server.set_nonblocking(true).unwrap();
    let server = TcpStream::from_std(server).unwrap();
    server.writable().await.unwrap();
    (server, client)
}

#[cfg(test)]
mod tests;
