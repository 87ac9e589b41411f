//! Hub: the index of live sockets, and the fan-out of log entries to them.
//!
//! Owns: `namespace → {connection → member}` plus, per namespace, `room → {connection}`.
//! Receives: Register, Unregister (from Session); Fanout, DisconnectAll (from StreamBridge); CountSessions.
//! Sends: Deliver to sessions; Disconnect(SlowConsumer) to a session it gives up on (the session counts
//! it). Never touches the log or a socket.
//!
//! Each entry is framed **once** (`42["notification",{…},"<id>"]`) into a shared, immutable buffer;
//! delivering it to a session is a reference-count increment and one mailbox message per batch.
//! Each entry carries its [`Target`]; a batch of broadcasts is shared by every member of the namespace,
//! anything narrower is filtered per member (socket.io-adapter's `apply`), in log order either way.
//!
//! The Hub also enforces the slow-consumer bound (DESIGN.md §5) on each session's [`Outbound`]: past
//! the bound it stops delivering to it and gives up on it (the connection is dropped without
//! flushing), and the client recovers what it missed on reconnect.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use actix_web::web::Bytes;
use bytestring::ByteString;
use log::{debug, warn};

use super::disconnect::{Disconnect, SessionError};
use super::outbound::{wire_len, Out, Outbound};
use crate::config::Parser;
use crate::metrics::Metrics;
use crate::protocol::ids::StreamId;
use crate::protocol::target::{Namespace, Room, Target};
use crate::protocol::{socketio, socketio_msgpack};
use crate::store::LogEntry;

/// Names one session inside this process; never leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

impl ConnId {
    /// A process-unique id.
    pub fn next() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// One framed broadcast: its Engine.IO messages and the log id it carries as offset, shared by
/// every recipient.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The entry's log id, so a session can skip what it already sent (recovery handover).
    pub id: StreamId,
    /// The packet: `42[…,"<id>"]` as text (`45N-[…]` for a binary event, its attachments after
    /// it), or one binary message with the msgpack parser.
    pub packet: Out,
    /// A binary event's attachments, each one binary message, in order; empty otherwise.
    pub attachments: Arc<[Bytes]>,
}

impl Frame {
    /// A frame of one text packet.
    pub fn text(id: StreamId, text: ByteString) -> Frame {
        Frame {
            id,
            packet: Out::Text(text),
            attachments: Arc::from([]),
        }
    }

    /// Its Engine.IO messages, in the order they are written.
    pub fn messages(&self) -> impl Iterator<Item = Out> + '_ {
        std::iter::once(self.packet.clone())
            .chain(self.attachments.iter().cloned().map(Out::Binary))
    }

    /// Its payload bytes, all messages together.
    pub fn len(&self) -> usize {
        self.packet.len() + self.attachments.iter().map(Bytes::len).sum::<usize>()
    }

    /// The same packet as `socket.io-msgpack-parser` writes it: one binary message, the
    /// attachments inline (`None` if the text is not a Socket.IO packet).
    pub fn to_msgpack(&self) -> Option<Frame> {
        let Out::Text(text) = &self.packet else {
            return Some(self.clone());
        };
        let packet = socketio::decode(text.strip_prefix('4')?).ok()?;
        let bytes = socketio_msgpack::encode(&packet, &self.attachments);
        Some(Frame {
            id: self.id,
            packet: Out::Binary(Bytes::from(bytes)),
            attachments: Arc::from([]),
        })
    }

    /// Its size on the wire, all messages together (as [`Outbound`] counts it).
    pub fn wire_len(&self) -> usize {
        wire_len(self.packet.len())
            + self
                .attachments
                .iter()
                .map(|a| wire_len(a.len()))
                .sum::<usize>()
    }
}

/// Frames for a session, in log order.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Deliver {
    /// The namespace they are emitted on.
    pub nsp: Namespace,
    /// The batch, shared by every recipient of the same frames.
    pub frames: Arc<[Frame]>,
    /// Its size on the wire, as counted in the recipient's [`Outbound::delivered`].
    pub bytes: usize,
}

/// Start delivering what is emitted on `nsp` to `session`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    /// The session's connection.
    pub conn: ConnId,
    /// The namespace joined.
    pub nsp: Namespace,
    /// Where to deliver.
    pub session: Recipient<Deliver>,
    /// Where to say it was given up on.
    pub closer: Recipient<Disconnect>,
    /// What is on its way to that client.
    pub outbound: Arc<Outbound>,
}

/// Stop delivering what is emitted on `nsp` to the connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister {
    /// The session's connection.
    pub conn: ConnId,
    /// The namespace left.
    pub nsp: Namespace,
}

/// Entries read from the log, in log order, to deliver to every matching session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Fanout(pub Vec<LogEntry>);

/// End every registered session for this reason (the log was replaced under them). Each session
/// unregisters itself as it closes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DisconnectAll(pub SessionError);

/// How many sockets are registered (what an orderly shutdown waits on).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CountSessions;

/// A registered socket.
struct Member {
    session: Recipient<Deliver>,
    closer: Recipient<Disconnect>,
    outbound: Arc<Outbound>,
}

/// The sockets of one namespace.
#[derive(Default)]
struct NamespaceIndex {
    members: HashMap<ConnId, Member>,
    /// Who is in which room (room membership arrives with the rooms issue; empty until then).
    rooms: HashMap<Room, HashSet<ConnId>>,
}

impl NamespaceIndex {
    /// Forgets `conn`: its membership and every room it was in (rooms left empty go too).
    fn remove(&mut self, conn: ConnId) {
        self.members.remove(&conn);
        self.rooms.retain(|_, members| {
            members.remove(&conn);
            !members.is_empty()
        });
    }

    /// Whether `conn` is a recipient of `target` (socket.io-adapter's `apply`).
    fn matches(&self, conn: ConnId, target: &Target) -> bool {
        target.matches(target.nsp.as_str(), |room| {
            self.rooms
                .get(room)
                .is_some_and(|members| members.contains(&conn))
        })
    }
}

/// The actor.
pub struct Hub {
    /// Who listens on which namespace.
    namespaces: HashMap<Namespace, NamespaceIndex>,
    /// Bytes a client may have on its way before it is given up on.
    max_pending: usize,
    /// `hub_sessions`, the unframed-entry and slow-consumer counters.
    metrics: Arc<Metrics>,
    /// How each entry is framed (`HUB_PARSER`).
    parser: Parser,
}

impl Hub {
    /// An index that gives up on clients with more than `max_pending` bytes on their way.
    pub fn new(max_pending: usize, metrics: Arc<Metrics>) -> Hub {
        Hub {
            namespaces: HashMap::new(),
            max_pending,
            metrics,
            parser: Parser::Json,
        }
    }

    /// Frames entries for clients of `parser` (the JSON parser unless told).
    pub fn with_parser(mut self, parser: Parser) -> Hub {
        self.parser = parser;
        self
    }

    fn count(&self) -> usize {
        self.namespaces.values().map(|n| n.members.len()).sum()
    }

    fn counted(&self) {
        self.metrics.sockets.set(self.count() as i64);
    }

    /// Sends `frames` to `member`, unless it is past the bound: then gives up on it (false).
    fn deliver(
        member: &Member,
        conn: ConnId,
        nsp: &Namespace,
        (frames, bytes): (Arc<[Frame]>, usize),
        max_pending: usize,
    ) -> bool {
        let pending = member.outbound.pending();
        if pending + bytes > max_pending {
            debug!("slow consumer dropped conn={conn:?} pending={pending}");
            member.outbound.give_up();
            // The session must end: no more broadcasts reach it, so staying would be a silent gap.
            member
                .closer
                .do_send(Disconnect(SessionError::SlowConsumer));
            return false;
        }
        member.outbound.delivered(bytes);
        member.session.do_send(Deliver {
            nsp: nsp.clone(),
            frames,
            bytes,
        });
        true
    }
}

impl Actor for Hub {
    type Context = Context<Self>;
}

impl Handler<Register> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Register, _: &mut Self::Context) {
        let member = Member {
            session: msg.session,
            closer: msg.closer,
            outbound: msg.outbound,
        };
        self.namespaces
            .entry(msg.nsp)
            .or_default()
            .members
            .insert(msg.conn, member);
        self.counted();
    }
}

impl Handler<Unregister> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Unregister, _: &mut Self::Context) {
        if let Some(index) = self.namespaces.get_mut(&msg.nsp) {
            index.remove(msg.conn);
            if index.members.is_empty() {
                self.namespaces.remove(&msg.nsp);
            }
        }
        self.counted();
    }
}

impl Handler<Fanout> for Hub {
    type Result = ();

    fn handle(&mut self, Fanout(entries): Fanout, _: &mut Self::Context) {
        // Entries arrive in log order; group them per namespace, keeping that order.
        let mut batches: Vec<(Namespace, Vec<(Target, Frame)>)> = Vec::new();
        for entry in entries {
            let Some(frame) = frame_entry(&entry, self.parser) else {
                warn!("log entry is not an event array, skipped id={}", entry.id);
                self.metrics.entries_unframed.inc();
                continue;
            };
            let nsp = &entry.target.nsp;
            match batches.iter_mut().find(|(name, _)| name == nsp) {
                Some((_, frames)) => frames.push((entry.target, frame)),
                None => batches.push((nsp.clone(), vec![(entry.target, frame)])),
            }
        }
        let max_pending = self.max_pending;
        for (nsp, framed) in batches {
            let Some(index) = self.namespaces.get_mut(&nsp) else {
                continue;
            };
            let everyone = framed.iter().all(|(target, _)| target.is_broadcast());
            // Framed and measured once, shared by every member, when the batch is for everyone.
            let shared: Arc<[Frame]> = if everyone {
                framed.iter().map(|(_, frame)| frame.clone()).collect()
            } else {
                Arc::from([])
            };
            let shared_bytes = wire_bytes(&shared);
            let mut gone = Vec::new();
            for (conn, member) in &index.members {
                let batch = if everyone {
                    (shared.clone(), shared_bytes)
                } else {
                    let mine: Arc<[Frame]> = framed
                        .iter()
                        .filter(|(target, _)| index.matches(*conn, target))
                        .map(|(_, frame)| frame.clone())
                        .collect();
                    if mine.is_empty() {
                        continue;
                    }
                    let bytes = wire_bytes(&mine);
                    (mine, bytes)
                };
                if !Hub::deliver(member, *conn, &nsp, batch, max_pending) {
                    gone.push(*conn);
                }
            }
            for conn in gone {
                index.remove(conn);
            }
        }
        // Slow consumers may have left a namespace empty (a few namespaces: cheap either way).
        self.namespaces.retain(|_, index| !index.members.is_empty());
        self.counted();
    }
}

impl Handler<DisconnectAll> for Hub {
    type Result = ();

    fn handle(&mut self, DisconnectAll(why): DisconnectAll, _: &mut Self::Context) {
        // A session in several namespaces is told once per namespace; it closes on the first.
        for index in self.namespaces.values() {
            for member in index.members.values() {
                member.closer.do_send(Disconnect(why.clone()));
            }
        }
    }
}

impl Handler<CountSessions> for Hub {
    type Result = usize;

    fn handle(&mut self, _: CountSessions, _: &mut Self::Context) -> usize {
        self.count()
    }
}

/// The size of a batch on the wire.
fn wire_bytes(frames: &[Frame]) -> usize {
    frames.iter().map(Frame::wire_len).sum()
}

/// The Engine.IO frame of a log entry, its id appended as the recovery offset, in `parser`'s
/// encoding: `42[…,"<id>"]`, or with the msgpack parser one binary message
/// `{type:2, data:[…,"<id>"], nsp}` (its binary values inline).
pub fn frame_entry(entry: &LogEntry, parser: Parser) -> Option<Frame> {
    let text = socketio::broadcast_frame(
        entry.target.nsp.as_str(),
        &entry.args,
        &entry.id.to_string(),
    )?;
    let frame = Frame::text(entry.id, ByteString::from(text));
    match parser {
        Parser::Json => Some(frame),
        // Converted from the JSON frame, so every kind of entry framed for JSON clients (binary
        // ones with their attachments too) reaches msgpack clients the same; once per entry.
        Parser::Msgpack => frame.to_msgpack(),
    }
}

#[cfg(test)]
mod tests {
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
        LogEntry {
            id: StreamId::new(ms, 0),
            target: Target::broadcast(Namespace::from(nsp)),
            args: Arc::from("[\"n\",1]"),
        }
    }

    struct Session {
        conn: ConnId,
        outbound: Arc<Outbound>,
        goodbyes: mpsc::UnboundedReceiver<Disconnect>,
    }

    fn register(hub: &Addr<Hub>, tx: &mpsc::UnboundedSender<Deliver>) -> Session {
        let (conn, outbound) = (ConnId::next(), Arc::new(Outbound::default()));
        let (bye_tx, goodbyes) = mpsc::unbounded_channel();
        let collector = Collector(tx.clone(), bye_tx).start();
        let (session, closer) = (collector.clone().recipient(), collector.recipient());
        hub.do_send(Register {
            conn,
            nsp: Namespace::main(),
            session,
            closer,
            outbound: outbound.clone(),
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
        slow.outbound.encoded(70); // written, never taken: the client does not read
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
        session.outbound.encoded(81);
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

    #[test]
    fn namespace_index_matches_by_room_and_forgets_a_removed_connection_everywhere() {
        let (a, b) = (ConnId::next(), ConnId::next());
        let mut index = NamespaceIndex::default();
        index.rooms.insert(Room::from("ops"), HashSet::from([a, b]));
        index.rooms.insert(Room::from("solo"), HashSet::from([a]));
        let to = |room: &str| Target {
            rooms: vec![Room::from(room)],
            ..Target::broadcast(Namespace::main())
        };
        assert!(index.matches(a, &to("solo")) && !index.matches(b, &to("solo")));
        assert!(index.matches(b, &to("ops")));
        index.remove(a);
        assert!(!index.matches(a, &to("ops")));
        assert!(index.matches(b, &to("ops")), "others stay in the room");
        assert_eq!(
            index.rooms.keys().map(Room::as_str).collect::<Vec<_>>(),
            ["ops"],
            "a room left empty is dropped"
        );
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
}
