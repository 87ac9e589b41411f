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
mod tests {
    use super::*;

    fn framed(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, opcode, payload);
        out
    }

    #[test]
    fn frame_headers_use_the_shortest_length_form() {
        assert_eq!(&framed(Opcode::Text, b"4hi")[..], b"\x81\x034hi");
        assert_eq!(&framed(Opcode::Close, b"")[..], b"\x88\x00");
        assert_eq!(&framed(Opcode::Pong, b"x")[..], b"\x8a\x01x");
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

        let mut bytes = BytesMut::from(&framed(Opcode::Text, "é".repeat(100).as_bytes())[..]);
        let frame = Codec::new().client_mode().decode(&mut bytes).unwrap();
        assert!(matches!(frame, Some(Frame::Text(t)) if t == "é".repeat(100).as_bytes()));
        assert!(bytes.is_empty());
    }

    #[test]
    fn a_batch_encodes_each_message_in_order() {
        let mut out = Vec::new();
        encode_all(
            &mut out,
            &[
                Out::Text("4a".into()),
                Out::Binary(actix_web::web::Bytes::from_static(&[1, 2])),
            ],
        );
        assert_eq!(out, b"\x81\x024a\x82\x02\x01\x02");
    }

    /// Plays the WsConn's side of the signal: looks at what was asked, as its task does on each
    /// turn, records it, and counts the wake-ups.
    #[derive(Default)]
    struct Looker {
        wakes: Arc<Wakes>,
        asked: Vec<Asked>,
    }

    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    impl Looker {
        fn look(&mut self, sink: &WsSink) {
            let asked = sink.take_asked(&Waker::from(self.wakes.clone()));
            if asked != Asked::default() {
                self.asked.push(asked);
            }
        }

        fn wakes(&self) -> usize {
            self.wakes.0.load(std::sync::atomic::Ordering::Relaxed)
        }

        fn needs(&self) -> Vec<SinkNeeds> {
            self.asked.iter().filter_map(|asked| asked.needs).collect()
        }
    }

    /// A sink over one end of a loopback connection with small kernel buffers, the other end (not
    /// read until the test reads it), and what is on its way.
    async fn pair(max_buffered: usize) -> (WsSink, std::net::TcpStream, Arc<Outbound>) {
        let (server, client) = small_loopback().await;
        let outbound = Arc::new(Outbound::default());
        let sink = WsSink::new(
            Arc::new(server),
            outbound.clone(),
            Arc::new(ReadGate::default()),
            max_buffered,
        );
        (sink, client, outbound)
    }

    /// Reads from `client` until `want` bytes came, flushing the sink as a WsConn would.
    async fn drain(sink: &WsSink, client: &mut std::net::TcpStream, want: usize) -> Vec<u8> {
        use std::io::Read;
        client.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 65536];
        for _ in 0..10_000 {
            match client.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    let _ = sink.flush();
                    actix_web::rt::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                Err(err) => panic!("{err}"),
            }
            if got.len() >= want {
                break;
            }
        }
        got
    }

    /// Reads everything the sink has, flushing it as a WsConn would, then lets the socket go and
    /// reads to the end of the stream.
    async fn drain_to_the_end(sink: &WsSink, client: &mut std::net::TcpStream) -> Vec<u8> {
        use std::io::Read;
        client.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            let _ = sink.flush();
            match client.read(&mut chunk) {
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if sink.is_flushed() {
                        break;
                    }
                    actix_web::rt::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                Err(err) => panic!("{err}"),
            }
        }
        sink.discard();
        client.set_nonblocking(false).unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        loop {
            match client.read(&mut chunk).unwrap() {
                0 => return got,
                n => got.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn message(n: usize) -> Out {
        Out::Text(format!("4{n:0>600}").into())
    }

    #[actix::test]
    async fn what_the_socket_does_not_take_waits_and_leaves_in_order() {
        let (sink, mut client, outbound) = pair(1 << 30).await;
        let mut looker = Looker::default();
        looker.look(&sink);
        let mut expected = Vec::new();
        let mut n = 0;
        // Written until the kernel's buffers are full, then 20 more behind what waits.
        let mut waiting_since = None;
        while waiting_since.is_none_or(|since| n < since + 20) {
            let wrote = sink.send(&[message(n)]);
            encode_message(&mut expected, &message(n));
            if wrote == Wrote::Waiting && waiting_since.is_none() {
                waiting_since = Some(n);
            }
            assert_ne!(wrote, Wrote::Refused);
            looker.look(&sink);
            n += 1;
            assert!(n < 100_000, "the socket never filled");
        }
        assert!(
            outbound.queued() > 0,
            "unwritten bytes count as on their way"
        );
        assert_eq!(
            looker.needs(),
            [SinkNeeds::Writable],
            "asked once to wait, however many writes queued behind"
        );
        assert_eq!(looker.wakes(), 1, "woken once, when asked");
        let got = drain(&sink, &mut client, expected.len()).await;
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "every frame once, in the order written");
        assert!(sink.is_flushed());
        assert_eq!(outbound.queued(), 0);
    }

    #[actix::test]
    async fn a_client_past_twice_the_bound_is_given_up_and_nothing_more_is_taken() {
        let (sink, _client, _outbound) = pair(16 * 1024).await;
        let mut looker = Looker::default();
        looker.look(&sink);
        let mut wrote = Wrote::Done;
        for n in 0..10_000 {
            wrote = sink.send(&[message(n)]);
            if wrote == Wrote::Refused {
                break;
            }
        }
        assert_eq!(wrote, Wrote::Refused);
        looker.look(&sink);
        assert_eq!(
            looker.needs(),
            [SinkNeeds::GiveUp],
            "the give-up outranks the wait asked before it was looked at"
        );
        assert_eq!(looker.wakes(), 1, "woken at the first ask");
        assert_eq!(sink.send(&[message(0)]), Wrote::Refused);
    }

    #[actix::test]
    async fn a_close_the_session_asks_wakes_the_conn_and_the_first_code_holds() {
        let (sink, _client, _outbound) = pair(1 << 30).await;
        let mut looker = Looker::default();
        looker.look(&sink);
        sink.ask_close(Some(1000));
        sink.ask_close(Some(4000));
        assert_eq!(looker.wakes(), 1);
        looker.look(&sink);
        looker.look(&sink);
        assert_eq!(
            looker.asked,
            [Asked {
                needs: None,
                close: Some(Some(1000)),
            }],
            "seen once, with the first code asked"
        );
    }

    #[actix::test]
    async fn the_close_frame_is_the_last_thing_written() {
        let (sink, mut client, _outbound) = pair(1 << 30).await;
        assert_eq!(sink.send(&[Out::Text("4a".into())]), Wrote::Done);
        assert_eq!(sink.close(Some(1000)).0, Wrote::Done);
        assert_eq!(sink.send(&[Out::Text("4b".into())]), Wrote::Refused);
        let got = drain(&sink, &mut client, 8).await;
        assert_eq!(got, b"\x81\x024a\x88\x02\x03\xe8");
    }

    /// Another thread (the Hub) writes while the WsConn queues the close frame (a client's close):
    /// no frame may come after the close frame, in any round.
    #[actix::test]
    async fn nothing_written_from_another_thread_follows_the_close_frame() {
        use std::sync::atomic::{AtomicBool, Ordering};
        for round in 0..300 {
            let (sink, mut client, _outbound) = pair(1 << 30).await;
            let sink = Arc::new(sink);
            let started = Arc::new(AtomicBool::new(false));
            let writer = {
                let (sink, started) = (sink.clone(), started.clone());
                std::thread::spawn(move || {
                    // Small frames, one after another, until the sink takes no more.
                    while sink.send(&[Out::Text("4x".into())]) != Wrote::Refused {
                        started.store(true, Ordering::Relaxed);
                    }
                })
            };
            while !started.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
            let _ = sink.close(Some(1000));
            writer.join().unwrap();
            let got = drain_to_the_end(&sink, &mut client).await;
            let close = [0x88, 0x02, 0x03, 0xe8];
            let at = got
                .windows(4)
                .position(|w| w == close)
                .unwrap_or_else(|| panic!("round {round}: no close frame"));
            assert_eq!(
                got.len(),
                at + 4,
                "round {round}: {} bytes after the close frame",
                got.len() - at - 4
            );
        }
    }

    #[actix::test]
    async fn a_discarded_sink_lets_the_socket_go() {
        use std::io::Read;
        let (sink, mut client, outbound) = pair(1 << 30).await;
        sink.discard();
        assert_eq!(sink.send(&[Out::Text("4a".into())]), Wrote::Refused);
        assert_eq!(outbound.queued(), 0);
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert_eq!(
            client.read(&mut [0u8; 8]).unwrap(),
            0,
            "closed: end of stream"
        );
    }
}
