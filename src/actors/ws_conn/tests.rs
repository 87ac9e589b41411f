//! The WsConn task over loopback sockets: its session gone, never taken, the client heard and
//! answered, what the socket could not take.
use std::io::{Read, Write};
use std::sync::Mutex;

use actix::{Actor, ActorContext as _, Addr, Context as ActorContext, Handler};

use super::*;
use crate::metrics::Metrics;

/// Plays the Session: records what its WsConn reports, keeps the link it is given.
#[derive(Default)]
pub(super) struct Recorder {
    pub(super) events: Arc<Mutex<Vec<String>>>,
    pub(super) link: Arc<Mutex<Option<WsLink>>>,
}

impl Actor for Recorder {
    type Context = ActorContext<Self>;
}

impl Handler<WsEvent> for Recorder {
    type Result = ();
    fn handle(&mut self, event: WsEvent, _: &mut ActorContext<Self>) {
        let seen = match event.kind {
            WsEventKind::Attached(attach) => {
                *self.link.lock().unwrap() = Some(attach.take());
                "attached".to_owned()
            }
            WsEventKind::Text(text) => format!("text {text}"),
            WsEventKind::Binary(bytes) => format!("binary {}", bytes.len()),
            WsEventKind::Ended(why) => format!("ended {why}"),
        };
        self.events.lock().unwrap().push(seen);
    }
}

/// Stops itself at once: a session that ended before its WebSocket came up.
struct Gone;

impl Actor for Gone {
    type Context = ActorContext<Self>;
    fn started(&mut self, ctx: &mut ActorContext<Self>) {
        ctx.stop();
    }
}

impl Handler<WsEvent> for Gone {
    type Result = ();
    fn handle(&mut self, _: WsEvent, _: &mut ActorContext<Self>) {}
}

/// Drops every event it gets, as actix drops the mailbox of a session that ends with the
/// connection's Attached in it.
struct Drops;

impl Actor for Drops {
    type Context = ActorContext<Self>;
}

impl Handler<WsEvent> for Drops {
    type Result = ();
    fn handle(&mut self, event: WsEvent, _: &mut ActorContext<Self>) {
        drop(event);
    }
}

/// A WsConn launched for `session` over a small-buffered loopback connection, its slow-consumer
/// bound `max_buffered`: the client's end (blocking, with a read timeout) and the count of open
/// WebSockets.
pub(super) async fn launched_with(
    session: WeakRecipient<WsEvent>,
    max_buffered: usize,
) -> (std::net::TcpStream, Arc<AtomicUsize>) {
    let (server, client) = crate::actors::ws_sink::small_loopback().await;
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let limits = WsLimits {
        max_payload: 1 << 20,
        max_buffered,
        unfinished: Arc::new(UnfinishedBudget::new(
            1 << 20,
            64 * 1024,
            Arc::new(Metrics::default()),
        )),
    };
    WsConn::launch(
        WsConnId::next(),
        session,
        Arc::new(Outbound::default()),
        server,
        BytesMut::new(),
        limits,
        open.clone(),
    );
    (client, open)
}

async fn launched(session: WeakRecipient<WsEvent>) -> (std::net::TcpStream, Arc<AtomicUsize>) {
    launched_with(session, 1 << 30).await
}

/// A masked client frame (RFC 6455 §5.3) with a short payload.
pub(super) fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1u8, 2, 3, 4];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// Waits (this thread's tasks, the WsConn's among them, running) for a thread's result.
pub(super) async fn joined<T>(thread: std::thread::JoinHandle<T>) -> T {
    for _ in 0..4000 {
        if thread.is_finished() {
            return thread.join().unwrap();
        }
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the thread never finished");
}

/// Reads on another thread until the end of the stream (the client's blocking socket).
async fn read_to_end(mut client: std::net::TcpStream) -> Vec<u8> {
    let reading = std::thread::spawn(move || {
        let mut got = Vec::new();
        client.read_to_end(&mut got).map(|_| got)
    });
    joined(reading).await.expect("the connection ends")
}

/// Reads `n` bytes on another thread (the WsConn runs on this one).
async fn read_exact(client: &std::net::TcpStream, n: usize) -> Vec<u8> {
    let mut client = client.try_clone().unwrap();
    let reading = std::thread::spawn(move || {
        let mut got = vec![0; n];
        client.read_exact(&mut got).map(|_| got)
    });
    joined(reading).await.expect("the bytes come")
}

pub(super) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never: {what}");
}

/// An idle connection's task: tokio allocates it in steps of 128 bytes, its header and trailer
/// take 96; past 160 bytes of WsConn every WebSocket costs 128 bytes more (x86_64).
#[cfg(target_pointer_width = "64")]
#[test]
fn a_connection_fits_a_256_byte_task() {
    let conn = std::mem::size_of::<WsConn>();
    assert!(conn <= 160, "the WsConn is {conn} bytes");
}

/// A connection nobody will close: the client gets a bare close frame, then the end, and the
/// WsConn is gone.
async fn closes_itself(session: WeakRecipient<WsEvent>) {
    let (client, open) = launched(session).await;
    let got = read_to_end(client).await;
    assert_eq!(got, b"\x88\x00", "a bare close frame, then the end");
    until("the WsConn is dropped", || {
        open.load(Ordering::Relaxed) == 0
    })
    .await;
}

#[actix::test]
async fn a_connection_whose_session_is_gone_is_closed_with_a_bare_close_frame() {
    let gone = Gone.start();
    until("the session stops", || !gone.connected()).await;
    closes_itself(gone.downgrade().recipient()).await;
}

#[actix::test]
async fn a_link_its_session_never_took_closes_the_connection() {
    let session = Drops.start();
    closes_itself(session.downgrade().recipient()).await;
}

/// Plays a Session that ends with its connection's Attached still in its mailbox: busy with a
/// message (on its own arbiter) until the Attached was sent, it then stops. Were the Attached
/// handled, its link would be kept and the connection would stay open.
struct EndsWithMail {
    sent: Arc<std::sync::atomic::AtomicBool>,
    kept: Arc<Mutex<Option<WsLink>>>,
}

impl Actor for EndsWithMail {
    type Context = ActorContext<Self>;
}

#[derive(actix::Message)]
#[rtype(result = "()")]
struct Busy;

impl Handler<Busy> for EndsWithMail {
    type Result = ();
    fn handle(&mut self, _: Busy, ctx: &mut ActorContext<Self>) {
        for _ in 0..500 {
            if self.sent.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        ctx.stop();
    }
}

impl Handler<WsEvent> for EndsWithMail {
    type Result = ();
    fn handle(&mut self, event: WsEvent, _: &mut ActorContext<Self>) {
        if let WsEventKind::Attached(attach) = event.kind {
            *self.kept.lock().unwrap() = Some(attach.take());
        }
    }
}

#[actix::test]
async fn a_session_that_ends_with_the_attached_in_its_mailbox_closes_the_connection() {
    let sent = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let kept = Arc::new(Mutex::new(None));
    let arbiter = actix::Arbiter::new();
    let (s, k) = (sent.clone(), kept.clone());
    let session = EndsWithMail::start_in_arbiter(&arbiter.handle(), move |_| EndsWithMail {
        sent: s,
        kept: k,
    });
    session.do_send(Busy);
    let (client, open) = launched(session.downgrade().recipient()).await;
    sent.store(true, Ordering::SeqCst);
    let got = read_to_end(client).await;
    assert_eq!(got, b"\x88\x00", "a bare close frame, then the end");
    assert!(
        kept.lock().unwrap().is_none(),
        "the Attached was never handled"
    );
    until("the WsConn is dropped", || {
        open.load(Ordering::Relaxed) == 0
    })
    .await;
    drop(session);
    arbiter.stop();
}

#[actix::test]
async fn the_client_is_heard_answered_and_its_close_ends_the_transport() {
    let recorder = Recorder::default();
    let events = recorder.events.clone();
    let session: Addr<Recorder> = recorder.start();
    let (mut client, open) = launched(session.downgrade().recipient()).await;
    assert_eq!(open.load(Ordering::Relaxed), 1);
    client.write_all(&client_frame(0x1, b"2probe")).unwrap();
    client.write_all(&client_frame(0x9, b"hi")).unwrap();
    let pong = read_exact(&client, 4).await;
    assert_eq!(
        pong, b"\x8a\x02hi",
        "a ping's payload comes back in its pong"
    );
    client
        .write_all(&client_frame(0x8, &1000u16.to_be_bytes()))
        .unwrap();
    let got = read_to_end(client).await;
    assert_eq!(
        got, b"\x88\x00",
        "the client's close is answered, then the end"
    );
    until("the WsConn is dropped", || {
        open.load(Ordering::Relaxed) == 0
    })
    .await;
    assert_eq!(
        *events.lock().unwrap(),
        ["attached", "text 2probe", "ended closed by the client"]
    );
}

#[actix::test]
async fn what_the_socket_could_not_take_follows_once_the_client_reads_then_the_close_asked() {
    let recorder = Recorder::default();
    let (events, link) = (recorder.events.clone(), recorder.link.clone());
    let session = recorder.start();
    let (client, open) = launched(session.downgrade().recipient()).await;
    until("attached", || link.lock().unwrap().is_some()).await;
    let link = link.lock().unwrap().clone().unwrap();
    // Written (as the Hub and the Session do) until the kernel's buffers are full, then more:
    // only the WsConn, woken through the sink, can write the rest.
    let message = Out::Text(format!("4{}", "x".repeat(600)).into());
    let mut sent = 0;
    while link.send(std::slice::from_ref(&message)) == Wrote::Done {
        sent += 1;
        assert!(sent < 100_000, "the socket never filled");
    }
    for _ in 0..20 {
        assert_eq!(link.send(std::slice::from_ref(&message)), Wrote::Waiting);
    }
    sent += 21;
    link.close(SessionError::ServerDisconnect);
    let got = read_to_end(client).await;
    let frame_len = 4 + 601;
    assert_eq!(
        got.len(),
        sent * frame_len + 2,
        "every frame, then the close frame"
    );
    assert_eq!(&got[got.len() - 2..], b"\x88\x00");
    until("the WsConn is dropped", || {
        open.load(Ordering::Relaxed) == 0
    })
    .await;
    assert_eq!(
        *events.lock().unwrap(),
        ["attached"],
        "the Session closed it: nothing to report"
    );
}
