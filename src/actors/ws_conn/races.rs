//! The WsConn task under pressure from other threads and from its client: writes and a close asked
//! from another thread (the Hub's, the Session's), a give-up from another thread, a client that
//! resets, a client that does not close its side, a burst of pings. Written by a review that tried
//! to break the task; none broke it.

use std::io::{Read, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Instant as StdInstant;

use actix::Actor;

use super::tests::{client_frame, joined, launched_with, until, Recorder};
use super::*;

struct Launched {
    /// Its Session (the WsConn holds it weakly).
    _session: actix::Addr<Recorder>,
    client: std::net::TcpStream,
    open: Arc<AtomicUsize>,
    events: Arc<Mutex<Vec<String>>>,
    link: WsLink,
}

/// A WsConn over a small-buffered loopback connection, its Session a [`Recorder`] (kept alive);
/// `max_buffered` is the slow-consumer bound.
async fn launched(max_buffered: usize) -> Launched {
    let recorder = Recorder::default();
    let (events, link) = (recorder.events.clone(), recorder.link.clone());
    let session = recorder.start();
    let (client, open) = launched_with(session.downgrade().recipient(), max_buffered).await;
    until("attached", || link.lock().unwrap().is_some()).await;
    let link = link.lock().unwrap().clone().unwrap();
    Launched {
        _session: session,
        client,
        open,
        events,
        link,
    }
}

/// Reads on another thread until the end of the stream, in small reads (as a slow client).
fn read_on_a_thread(
    mut client: std::net::TcpStream,
) -> std::thread::JoinHandle<Result<Vec<u8>, (std::io::Error, usize)>> {
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut chunk = [0u8; 1500];
        loop {
            match client.read(&mut chunk) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(err) => return Err((err, got.len())),
            }
        }
    })
}

/// Another thread writes (as the Hub does) past what the socket takes, then asks the close (as a
/// Session on another arbiter does) while the client reads slowly: every frame, then the close
/// frame (a lost wake-up leaves bytes unwritten when the close's deadline drops the connection).
#[actix::test]
async fn writes_and_a_close_from_another_thread_all_leave_in_order() {
    for round in 0..20 {
        let Launched {
            _session,
            client,
            open,
            link,
            ..
        } = launched(1 << 30).await;
        let writer = std::thread::spawn(move || {
            let message = Out::Text(format!("4{}", "y".repeat(300)).into());
            let mut sent = 0usize;
            let mut waiting = 0;
            while waiting < 50 && sent < 100_000 {
                if link.send(std::slice::from_ref(&message)) == Wrote::Waiting {
                    waiting += 1;
                }
                sent += 1;
                if sent.is_multiple_of(7) {
                    std::thread::yield_now();
                }
            }
            link.close(SessionError::ServerDisconnect);
            sent
        });
        let reader = read_on_a_thread(client);
        let sent = joined(writer).await;
        let got = joined(reader).await.expect("the connection ends");
        assert_eq!(
            got.len(),
            sent * (4 + 301) + 2,
            "round {round}: every frame, then the close frame"
        );
        assert_eq!(&got[got.len() - 2..], b"\x88\x00", "round {round}");
        until("the WsConn is dropped", || {
            open.load(Ordering::Relaxed) == 0
        })
        .await;
    }
}

/// Another thread writes past twice the slow-consumer bound: the WsConn, woken, gives up.
#[actix::test]
async fn a_give_up_from_another_thread_ends_the_connection() {
    for round in 0..20 {
        let Launched {
            _session,
            client,
            open,
            events,
            link,
        } = launched(16 * 1024).await;
        let writer = std::thread::spawn(move || {
            let message = Out::Text(format!("4{}", "z".repeat(600)).into());
            for _ in 0..100_000 {
                if link.send(std::slice::from_ref(&message)) == Wrote::Refused {
                    return true;
                }
            }
            false
        });
        assert!(joined(writer).await, "round {round}: refused in the end");
        until("the WsConn is dropped", || {
            open.load(Ordering::Relaxed) == 0
        })
        .await;
        until("ended reported", || events.lock().unwrap().len() == 2).await;
        assert_eq!(
            events.lock().unwrap()[1],
            format!("ended {}", SessionError::SlowConsumer),
            "round {round}"
        );
        drop(client);
    }
}

/// Our close frame is out and the client reads it but never closes its side: it is dropped anyway
/// (CLOSE_GRACE later).
#[actix::test]
async fn a_client_that_never_closes_its_side_is_dropped_anyway() {
    let Launched {
        _session,
        client,
        open,
        link,
        ..
    } = launched(1 << 30).await;
    link.close(SessionError::ServerDisconnect);
    until("the WsConn is dropped", || {
        open.load(Ordering::Relaxed) == 0
    })
    .await;
    drop(client);
}

/// A client that sends without pause while its connection closes, and reads nothing, cannot keep
/// it open past CLOSE_LIMIT.
#[actix::test]
async fn a_client_that_floods_and_does_not_read_during_the_close_is_dropped_by_the_limit() {
    let Launched {
        _session,
        client,
        open,
        link,
        ..
    } = launched(1 << 30).await;
    // Output the client never reads.
    let message = Out::Text(format!("4{}", "w".repeat(600)).into());
    for _ in 0..100 {
        link.send(std::slice::from_ref(&message));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut sender = client.try_clone().unwrap();
    sender
        .set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let flooding = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let texts: Vec<u8> = (0..64).flat_map(|_| client_frame(0x1, b"4x")).collect();
            let deadline = StdInstant::now() + Duration::from_secs(9);
            while !stop.load(Ordering::Relaxed) && StdInstant::now() < deadline {
                match sender.write_all(&texts) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
        })
    };
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    link.close(SessionError::ServerDisconnect);
    // CLOSE_LIMIT is 5 s: 8 s is ample on a loaded machine.
    for _ in 0..1600 {
        if open.load(Ordering::Relaxed) == 0 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    joined(flooding).await;
    assert_eq!(
        open.load(Ordering::Relaxed),
        0,
        "still open 8 s after the close"
    );
    drop(client);
}

/// A client that resets its connection while more output waits for it than it is read for (its
/// input is not read then): the WsConn learns it from the socket's writability and ends.
#[actix::test]
async fn a_client_reset_while_its_output_waits_ends_the_connection() {
    let Launched {
        _session,
        client,
        open,
        events,
        link,
    } = launched(1 << 30).await;
    let message = Out::Text(format!("4{}", "r".repeat(1000)).into());
    for _ in 0..400 {
        assert_ne!(link.send(std::slice::from_ref(&message)), Wrote::Refused);
    }
    // Its input is no longer read: only the socket's writability can tell the WsConn.
    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);
    until("the WsConn is dropped", || {
        open.load(Ordering::Relaxed) == 0
    })
    .await;
    assert_eq!(
        *events.lock().unwrap(),
        ["attached", "ended closed by the client"]
    );
    assert_eq!(link.send(std::slice::from_ref(&message)), Wrote::Refused);
    link.close(SessionError::ServerDisconnect);
    actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(open.load(Ordering::Relaxed), 0, "counted down once");
}

/// The server's frames in `bytes` (unmasked, RFC 6455 §5.2): their opcodes, or None if the bytes
/// do not end at a frame's end.
fn opcodes(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    let mut found = Vec::new();
    while at < bytes.len() {
        let opcode = bytes[at] & 0x0f;
        let (len, header) = match *bytes.get(at + 1)? {
            126 => (
                usize::from(u16::from_be_bytes([
                    *bytes.get(at + 2)?,
                    *bytes.get(at + 3)?,
                ])),
                4,
            ),
            127 => return None,
            n => (usize::from(n), 2),
        };
        at += header + len;
        found.push(opcode);
    }
    (at == bytes.len()).then_some(found)
}

/// One thread writes (the Hub) until refused while another (the Session's) asks the close: the
/// close frame comes last, whole frames before it.
#[actix::test]
async fn a_close_asked_from_one_thread_while_another_writes_ends_with_the_close_frame() {
    for round in 0..20 {
        let Launched {
            _session,
            client,
            open,
            link,
            ..
        } = launched(1 << 30).await;
        // The client's kernel takes what it is sent (with a tiny window, Linux waits for its
        // persist timer, 200 ms a step, whoever writes).
        socket2::SockRef::from(&client)
            .set_recv_buffer_size(1 << 20)
            .unwrap();
        let writer = {
            let link = link.clone();
            std::thread::spawn(move || {
                let message = Out::Text(format!("4{}", "q".repeat(200)).into());
                let mut sent = 0usize;
                while sent < 1_000_000
                    && link.send(std::slice::from_ref(&message)) != Wrote::Refused
                {
                    sent += 1;
                }
                sent
            })
        };
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(round % 5 * 3));
            link.close(SessionError::ServerDisconnect);
        });
        let reader = read_on_a_thread(client);
        joined(closer).await;
        let sent = joined(writer).await;
        let got = joined(reader).await.expect("the connection ends");
        let found = opcodes(&got).unwrap_or_else(|| {
            panic!(
                "round {round}: a cut frame, {} bytes, {sent} sent",
                got.len()
            )
        });
        assert_eq!(
            found.last(),
            Some(&0x8),
            "round {round}: the close frame last"
        );
        assert_eq!(found.len(), sent + 1, "round {round}: every frame taken");
        until("the WsConn is dropped", || {
            open.load(Ordering::Relaxed) == 0
        })
        .await;
    }
}

/// More pings in one write than a turn handles, then nothing: every one is answered (the task
/// that yields after a turn's share wakes itself for the rest; no new bytes will).
#[actix::test]
async fn a_burst_of_more_pings_than_a_turn_handles_is_answered_in_full() {
    let Launched {
        _session,
        mut client,
        open,
        link,
        ..
    } = launched(1 << 30).await;
    let pings = 3 * EVENTS_PER_TURN + 5;
    let burst: Vec<u8> = (0..pings).flat_map(|_| client_frame(0x9, b"b")).collect();
    client.write_all(&burst).unwrap();
    let mut reading = client.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; pings * 3];
        reading.read_exact(&mut got).map(|_| got)
    });
    let got = joined(reader)
        .await
        .expect("a pong for every ping, without another byte from the client");
    assert!(got.chunks(3).all(|pong| pong == b"\x8a\x01b"));
    link.close(SessionError::ServerDisconnect);
    until("the WsConn is dropped", || {
        open.load(Ordering::Relaxed) == 0
    })
    .await;
}
