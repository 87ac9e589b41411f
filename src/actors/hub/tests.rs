//! The Hub on a collector actor: shared batches, the slow-consumer bound, rooms and targeted
//! entries (recipients once each, except, log order, one Deliver per batch).

use super::*;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a test waits for something the Hub sends, so a fault fails the test, not hangs it.
const DEADLINE: Duration = Duration::from_secs(5);

/// Forwards every Deliver (and Disconnect) into a channel, so a test can see what a session gets.
struct Collector(
    mpsc::UnboundedSender<Deliver>,
    mpsc::UnboundedSender<Disconnect>,
);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Disconnect> for Collector {
    type Result = ();
    fn handle(&mut self, msg: Disconnect, _: &mut Self::Context) {
        let _ = self.1.send(msg);
    }
}

/// Server-side disconnects are tested in `hub/disconnect_sockets.rs`.
impl Handler<DisconnectSocket> for Collector {
    type Result = ();
    fn handle(&mut self, _: DisconnectSocket, _: &mut Self::Context) {}
}

impl Handler<Deliver> for Collector {
    type Result = ();
    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) {
        let _ = self.0.send(msg);
    }
}

async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("the hub sent nothing within the deadline")
        .expect("channel open")
}

fn texts(deliver: &Deliver) -> Vec<String> {
    deliver.frames.iter().map(text_of).collect()
}

fn text_of(frame: &Frame) -> String {
    match &frame.packet {
        Out::Text(text) => text.to_string(),
        Out::Binary(_) => panic!("a text frame"),
    }
}

fn entry(ms: u64, nsp: &str) -> LogEntry {
    LogEntry::event(
        StreamId::new(ms, 0),
        Target::broadcast(Namespace::from(nsp)),
        Arc::from("[\"n\",1]"),
    )
}

struct Session {
    conn: ConnId,
    outbound: Arc<Outbound>,
    goodbyes: mpsc::UnboundedReceiver<Disconnect>,
}

fn register(hub: &Addr<Hub>, tx: &mpsc::UnboundedSender<Deliver>) -> Session {
    register_in(hub, tx, &[])
}

fn register_in(hub: &Addr<Hub>, tx: &mpsc::UnboundedSender<Deliver>, rooms: &[&str]) -> Session {
    let (conn, outbound) = (ConnId::next(), Arc::new(Outbound::default()));
    let (bye_tx, goodbyes) = mpsc::unbounded_channel();
    let collector = Collector(tx.clone(), bye_tx).start();
    hub.do_send(Register {
        conn,
        nsp: Namespace::main(),
        session: Box::new(collector),
        outbound: outbound.clone(),
        rooms: rooms.iter().map(|room| Room::from(*room)).collect(),
        lane: Arc::default(),
    });
    Session {
        conn,
        outbound,
        goodbyes,
    }
}

fn hub(max_pending: usize) -> (Addr<Hub>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    (Hub::new(max_pending, metrics.clone()).start(), metrics)
}

#[actix::test]
async fn hub_frames_each_entry_once_and_delivers_the_same_buffer_to_every_session() {
    let (hub, _) = hub(1 << 20);
    let (tx, mut rx) = mpsc::unbounded_channel();
    register(&hub, &tx);
    register(&hub, &tx);
    hub.do_send(Fanout(vec![
        entry(1, "/"),
        entry(2, "/other"),
        entry(3, "/"),
    ]));
    let (a, b) = (recv(&mut rx).await, recv(&mut rx).await);
    assert!(
        Arc::ptr_eq(&a.frames, &b.frames),
        "both sessions share one encoded batch"
    );
    let texts: Vec<String> = a.frames.iter().map(text_of).collect();
    assert_eq!(texts, vec![r#"42["n",1,"1-0"]"#, r#"42["n",1,"3-0"]"#]);
    assert_eq!(a.bytes, 2 * wire_len(r#"42["n",1,"1-0"]"#.len()));
}

#[actix::test]
async fn hub_counts_registered_sockets() {
    let (hub, metrics) = hub(1 << 20);
    let (tx, _rx) = mpsc::unbounded_channel();
    let first = register(&hub, &tx);
    register(&hub, &tx);
    assert_eq!(hub.send(CountSessions).await.unwrap(), 2);
    assert_eq!(metrics.sockets.get(), 2);
    hub.do_send(Unregister {
        conn: first.conn,
        nsp: Namespace::main(),
    });
    assert_eq!(hub.send(CountSessions).await.unwrap(), 1);
    assert_eq!(metrics.sockets.get(), 1);
}

#[actix::test]
async fn hub_gives_up_on_a_session_whose_pending_bytes_pass_the_bound() {
    let (hub, metrics) = hub(100);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut slow = register(&hub, &tx);
    let (healthy_tx, mut healthy) = mpsc::unbounded_channel();
    let fast = register(&hub, &healthy_tx);
    slow.outbound.queued_more(72); // written, never taken: the client does not read
    hub.do_send(Fanout(vec![entry(1, "/")]));
    assert_eq!(
        recv(&mut rx).await.bytes,
        17,
        "72 + 17 bytes is within the bound"
    );
    assert_eq!(slow.outbound.pending(), 89);
    recv(&mut healthy).await;
    fast.outbound.received(17);
    hub.do_send(Fanout(vec![entry(2, "/")]));
    assert_eq!(
        hub.send(CountSessions).await.unwrap(),
        1,
        "past the bound: dropped"
    );
    assert!(slow.outbound.is_aborted());
    assert_eq!(
        recv(&mut slow.goodbyes).await,
        Disconnect(SessionError::SlowConsumer)
    );
    assert_eq!(metrics.sockets.get(), 1, "the healthy one stays");
    assert!(rx.try_recv().is_err());
    let texts = texts(&recv(&mut healthy).await);
    assert_eq!(texts, vec![r#"42["n",1,"2-0"]"#]);
    assert!(!fast.outbound.is_aborted());
}

#[actix::test]
async fn hub_delivers_exactly_up_to_the_bound() {
    // 83 + 17 = 100: at the bound is still within it.
    let (hub, _) = hub(100);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let session = register(&hub, &tx);
    session.outbound.queued_more(83);
    hub.do_send(Fanout(vec![entry(1, "/")]));
    assert_eq!(recv(&mut rx).await.bytes, 17);
    assert_eq!(hub.send(CountSessions).await.unwrap(), 1);
    assert!(!session.outbound.is_aborted());
}

#[actix::test]
async fn hub_stops_delivering_after_unregister() {
    let (hub, _) = hub(1 << 20);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let session = register(&hub, &tx);
    hub.do_send(Unregister {
        conn: session.conn,
        nsp: Namespace::main(),
    });
    hub.do_send(Fanout(vec![entry(1, "/")]));
    assert_eq!(hub.send(CountSessions).await.unwrap(), 0);
    assert!(rx.try_recv().is_err());
}

#[actix::test]
async fn hub_counts_entries_it_cannot_frame_and_delivers_the_rest() {
    let (hub, metrics) = hub(1 << 20);
    let (tx, mut rx) = mpsc::unbounded_channel();
    register(&hub, &tx);
    let unframed = LogEntry {
        args: Arc::from("{}"),
        ..entry(1, "/")
    };
    hub.do_send(Fanout(vec![unframed, entry(2, "/")]));
    let texts = texts(&recv(&mut rx).await);
    assert_eq!(texts, vec![r#"42["n",1,"2-0"]"#]);
    assert_eq!(metrics.entries_unframed.get(), 1);
}

#[actix::test]
async fn hub_sends_a_targeted_entry_only_to_sockets_in_its_rooms() {
    let (hub, _) = hub(1 << 20);
    let (tx, mut rx) = mpsc::unbounded_channel();
    register(&hub, &tx);
    let to_room = LogEntry {
        target: Target {
            rooms: vec![Room::from("ops")],
            ..Target::broadcast(Namespace::main())
        },
        ..entry(1, "/")
    };
    hub.do_send(Fanout(vec![to_room, entry(2, "/")]));
    let texts = texts(&recv(&mut rx).await);
    assert_eq!(texts, vec![r#"42["n",1,"2-0"]"#], "no socket is in ops");
}

fn targeted(ms: u64, rooms: &[&str], except: &[&str]) -> LogEntry {
    let names = |names: &[&str]| names.iter().map(|room| Room::from(*room)).collect();
    LogEntry {
        target: Target {
            rooms: names(rooms),
            except: names(except),
            ..Target::broadcast(Namespace::main())
        },
        ..entry(ms, "/")
    }
}

/// Every Deliver a session gets until the Hub answered a message sent after the fan-out.
async fn delivered(hub: &Addr<Hub>, rx: &mut mpsc::UnboundedReceiver<Deliver>) -> Vec<Deliver> {
    // The Hub handled the Fanout before this; each Collector forwards in its own turn, so
    // collect what arrives within a short, bounded drain after that.
    hub.send(CountSessions).await.unwrap();
    let mut got = Vec::new();
    while let Ok(Some(deliver)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
    {
        got.push(deliver);
    }
    got
}

#[actix::test]
async fn hub_delivers_an_entry_to_a_socket_in_two_of_its_rooms_once() {
    let (hub, _) = hub(1 << 20);
    let (tx, mut rx) = mpsc::unbounded_channel();
    register_in(&hub, &tx, &["ops", "dev"]);
    let (other_tx, mut other) = mpsc::unbounded_channel();
    register_in(&hub, &other_tx, &["sales"]);
    hub.do_send(Fanout(vec![targeted(1, &["ops", "dev"], &[])]));
    let got = delivered(&hub, &mut rx).await;
    assert_eq!(got.len(), 1, "one Deliver");
    assert_eq!(texts(&got[0]), [r#"42["n",1,"1-0"]"#], "the entry once");
    assert!(
        delivered(&hub, &mut other).await.is_empty(),
        "not in its rooms"
    );
}

#[actix::test]
async fn hub_leaves_out_sockets_in_an_except_room() {
    let (hub, _) = hub(1 << 20);
    let (tx, mut rx) = mpsc::unbounded_channel();
    register_in(&hub, &tx, &["ops"]);
    let (muted_tx, mut muted) = mpsc::unbounded_channel();
    register_in(&hub, &muted_tx, &["ops", "muted"]);
    let (plain_tx, mut plain) = mpsc::unbounded_channel();
    register_in(&hub, &plain_tx, &[]);
    hub.do_send(Fanout(vec![
        targeted(1, &["ops"], &["muted"]),
        targeted(2, &[], &["muted"]),
    ]));
    let got = delivered(&hub, &mut rx).await;
    assert_eq!(texts(&got[0]), [r#"42["n",1,"1-0"]"#, r#"42["n",1,"2-0"]"#]);
    assert!(delivered(&hub, &mut muted).await.is_empty());
    let got = delivered(&hub, &mut plain).await;
    assert_eq!(
        texts(&got[0]),
        [r#"42["n",1,"2-0"]"#],
        "except-only reaches the rest"
    );
}

#[actix::test]
async fn hub_keeps_log_order_and_one_deliver_per_recipient_in_a_mixed_batch() {
    let (hub, _) = hub(1 << 20);
    let (tx, mut rx) = mpsc::unbounded_channel();
    register_in(&hub, &tx, &["ops"]);
    let (b_tx, mut b) = mpsc::unbounded_channel();
    register_in(&hub, &b_tx, &[]);
    let (c_tx, mut c) = mpsc::unbounded_channel();
    register_in(&hub, &c_tx, &[]);
    hub.do_send(Fanout(vec![
        targeted(1, &["ops"], &[]),
        entry(2, "/"),
        targeted(3, &["nobody"], &[]),
        targeted(4, &["ops"], &[]),
        entry(5, "/"),
    ]));
    let got = delivered(&hub, &mut rx).await;
    assert_eq!(got.len(), 1);
    let ids: Vec<String> = got[0].frames.iter().map(|f| f.id.to_string()).collect();
    assert_eq!(ids, ["1-0", "2-0", "4-0", "5-0"]);
    let (b, c) = (delivered(&hub, &mut b).await, delivered(&hub, &mut c).await);
    assert_eq!((b.len(), c.len()), (1, 1));
    assert_eq!(texts(&b[0]), [r#"42["n",1,"2-0"]"#, r#"42["n",1,"5-0"]"#]);
    assert!(
        Arc::ptr_eq(&b[0].frames, &c[0].frames),
        "recipients of the same entries share one batch"
    );
    assert_eq!(b[0].bytes, 2 * wire_len(r#"42["n",1,"2-0"]"#.len()));
}

#[actix::test]
async fn hub_follows_joins_and_leaves_and_forgets_rooms_on_unregister() {
    let (hub, _) = hub(1 << 20);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let session = register(&hub, &tx);
    let rooms = |names: &[&str]| names.iter().map(|r| Room::from(*r)).collect();
    hub.do_send(Join {
        conn: session.conn,
        nsp: Namespace::main(),
        rooms: rooms(&["ops", "dev"]),
    });
    hub.do_send(Fanout(vec![targeted(1, &["ops"], &[])]));
    assert_eq!(texts(&recv(&mut rx).await), [r#"42["n",1,"1-0"]"#]);
    hub.do_send(Leave {
        conn: session.conn,
        nsp: Namespace::main(),
        rooms: rooms(&["ops"]),
    });
    hub.do_send(Fanout(vec![
        targeted(2, &["ops"], &[]),
        targeted(3, &["dev"], &[]),
    ]));
    assert_eq!(
        texts(&recv(&mut rx).await),
        [r#"42["n",1,"3-0"]"#],
        "left ops only"
    );
    hub.do_send(Unregister {
        conn: session.conn,
        nsp: Namespace::main(),
    });
    hub.do_send(Fanout(vec![targeted(4, &["dev"], &[])]));
    assert!(delivered(&hub, &mut rx).await.is_empty());
    assert_eq!(hub.send(CountSessions).await.unwrap(), 0);
}
#[test]
fn frame_entry_frames_a_volatile_entry_without_its_offset() {
    // socket.io-adapter's addOffsetIfNecessary: no offset on volatile packets (reference §3.2).
    let volatile = LogEntry {
        volatile: true,
        ..entry(7, "/")
    };
    let frame = frame_entry(&volatile, Parser::Json).unwrap();
    assert_eq!(text_of(&frame), r#"42["n",1]"#);
    assert_eq!(
        frame.id,
        StreamId::new(7, 0),
        "the id still orders it for the session"
    );
    let in_admin = LogEntry {
        volatile: true,
        ..entry(7, "/admin")
    };
    assert_eq!(
        text_of(&frame_entry(&in_admin, Parser::Json).unwrap()),
        r#"42/admin,["n",1]"#
    );
}

#[test]
fn frame_entry_frames_attachments_as_a_binary_event_followed_by_its_binary_messages() {
    // reference §3.2, observed from Node: 451-["bin",{"_placeholder":true,"num":0},"<offset>"]
    let binary = LogEntry {
        args: Arc::from(r#"["bin",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
        attachments: Arc::from([Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[])]),
        ..entry(5, "/admin")
    };
    let frame = frame_entry(&binary, Parser::Json).unwrap();
    assert_eq!(
        text_of(&frame),
        r#"452-/admin,["bin",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},"5-0"]"#
    );
    let messages: Vec<Out> = frame.messages().collect();
    assert_eq!(messages.len(), 3);
    assert!(matches!(&messages[1], Out::Binary(b) if b.as_ref() == [1, 2, 3]));
    assert!(matches!(&messages[2], Out::Binary(b) if b.is_empty()));
    assert_eq!(frame.len(), frame.packet.len() + 3);
}

#[actix::test]
async fn hub_with_the_msgpack_parser_frames_each_entry_once_as_one_binary_message() {
    let metrics = Arc::new(Metrics::default());
    let hub = Hub::new(1 << 20, metrics)
        .with_parser(Parser::Msgpack)
        .start();
    let (tx, mut rx) = mpsc::unbounded_channel();
    register(&hub, &tx);
    register(&hub, &tx);
    hub.do_send(Fanout(vec![entry(1, "/"), entry(2, "/")]));
    let (a, b) = (recv(&mut rx).await, recv(&mut rx).await);
    assert!(Arc::ptr_eq(&a.frames, &b.frames), "one shared batch");
    let packets: Vec<serde_json::Value> = a
        .frames
        .iter()
        .map(|frame| {
            assert!(frame.attachments.is_empty());
            match &frame.packet {
                Out::Binary(bytes) => crate::protocol::msgpack::decode(bytes).unwrap(),
                Out::Text(text) => panic!("a binary frame, not {text}"),
            }
        })
        .collect();
    assert_eq!(
        packets,
        vec![
            serde_json::json!({"type": 2, "data": ["n", 1, "1-0"], "nsp": "/"}),
            serde_json::json!({"type": 2, "data": ["n", 1, "2-0"], "nsp": "/"}),
        ]
    );
}

#[test]
fn frame_to_msgpack_puts_a_binary_events_attachments_inline() {
    // What a Node peer's io.emit("bin", Buffer.from([1,2,3])) frames as for JSON clients.
    let frame = Frame {
        id: StreamId::new(5, 0),
        shard: 0,
        offset: Arc::new(crate::protocol::offset::Offset::one(StreamId::new(5, 0))),
        packet: Out::Text(r#"451-["bin",{"_placeholder":true,"num":0},"5-0"]"#.into()),
        attachments: Arc::from([Bytes::from_static(&[1, 2, 3])]),
    };
    let packed = frame.to_msgpack().unwrap();
    assert!(packed.attachments.is_empty());
    let Out::Binary(bytes) = &packed.packet else {
        panic!("a binary message");
    };
    let (value, attachments) = crate::protocol::msgpack::decode_binary(bytes).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"type": 2, "data": ["bin", {"_placeholder": true, "num": 0}, "5-0"],
                           "nsp": "/"})
    );
    assert_eq!(attachments, vec![vec![1, 2, 3]]);
}
