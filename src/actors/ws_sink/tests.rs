//! The sink over small-buffered loopback sockets: framing, waits in order, the give-up, the close
//! frame last, the signal to its WsConn.
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
