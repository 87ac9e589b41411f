//! Hub: the registry of live sessions, and the fan-out of log entries to them.
//!
//! Owns: `namespace → {connection → Recipient<Deliver>}`.
//! Receives: Register, Unregister (from Session); Fanout (from StreamBridge).
//! Sends: Deliver to sessions. Never touches the log or a socket.
//!
//! Each entry is framed **once** (`42["notification",{…},"<id>"]`) into a shared, immutable buffer;
//! delivering it to a session is a reference-count increment and one mailbox message per batch.
//!
//! The Hub also enforces the slow-consumer bound (DESIGN.md §5). Each session shares an [`Outbound`]
//! counter with the Hub and its WsConn: what was sent to the session, written by it, and not yet taken
//! by the kernel. Past the bound the Hub stops delivering to it and aborts it (the connection is
//! dropped without flushing), and the client recovers what it missed on reconnect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use bytestring::ByteString;
use log::{debug, warn};

use crate::protocol::{ids::StreamId, socketio};
use crate::store::LogEntry;

/// Names one transport connection inside this process; never leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

impl ConnId {
    /// A process-unique id.
    pub fn next() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// One framed broadcast: the complete Engine.IO text frame and the log id it carries as offset.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The entry's log id, so a session can skip what it already sent (recovery handover).
    pub id: StreamId,
    /// `42[…,"<id>"]`, shared by every recipient.
    pub text: ByteString,
}

/// Frames for a session, in log order.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Deliver {
    /// The namespace they are broadcast on.
    pub nsp: Arc<str>,
    /// The batch, shared by every recipient.
    pub frames: Arc<[Frame]>,
    /// Its size on the wire, as counted in the recipient's [`Outbound::unsent`].
    pub bytes: usize,
}

/// The bytes between the Hub and one client's socket, shared by the Hub (which delivers), the Session
/// (which writes) and its WsConn (which hands them to the kernel, keeping what the socket does not
/// take): this is the count the bound is checked against.
#[derive(Debug, Default)]
pub struct Outbound {
    /// Bytes delivered by the Hub that the session has not taken from its mailbox yet.
    unsent: AtomicUsize,
    /// Bytes the session wrote that the socket has not taken yet.
    queued: AtomicUsize,
    /// Set when the client was given up on: its WsConn then drops the connection unflushed.
    aborted: AtomicBool,
}

impl Outbound {
    /// The Hub sent a batch of `bytes`.
    pub fn sent(&self, bytes: usize) {
        self.unsent.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The session took a batch of `bytes` from its mailbox.
    pub fn taken(&self, bytes: usize) {
        saturating_sub(&self.unsent, bytes);
    }

    /// The session wrote a text frame with `len` payload bytes.
    pub fn pushed(&self, len: usize) {
        self.queued.fetch_add(wire_len(len), Ordering::Relaxed);
    }

    /// The socket took `len` encoded bytes. Control frames (pongs, close) were not pushed,
    /// hence the saturation.
    pub fn pulled(&self, len: usize) {
        saturating_sub(&self.queued, len);
    }

    /// What the session wrote that the client has not taken yet.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Everything on its way to the client.
    pub fn pending(&self) -> usize {
        self.unsent.load(Ordering::Relaxed) + self.queued.load(Ordering::Relaxed)
    }

    /// Gives up on the client.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::Relaxed);
    }

    /// Whether the client was given up on.
    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }
}

fn saturating_sub(counter: &AtomicUsize, n: usize) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

/// The size of a server-to-client text frame: payload plus its unmasked header (RFC 6455 §5.2).
pub fn wire_len(payload: usize) -> usize {
    payload
        + match payload {
            0..=125 => 2,
            126..=65_535 => 4,
            _ => 10,
        }
}

/// Start delivering broadcasts on `nsp` to `session`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    /// The session's connection.
    pub conn: ConnId,
    /// The namespace joined.
    pub nsp: String,
    /// Where to deliver.
    pub session: Recipient<Deliver>,
    /// Where to say goodbye at shutdown.
    pub closer: Recipient<GoAway>,
    /// What is on its way to that client.
    pub outbound: Arc<Outbound>,
}

/// Close now; the client reconnects (to another instance, after a shutdown) and recovers.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum GoAway {
    /// The server is shutting down: "going away".
    ShuttingDown,
    /// The client does not take what is sent to it: the Hub gave up on it (outgoing bound).
    TooSlow,
}

/// Stop delivering broadcasts on `nsp` to the connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister {
    /// The session's connection.
    pub conn: ConnId,
    /// The namespace left.
    pub nsp: String,
}

/// Entries read from the log, in log order, to deliver to every matching session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Fanout(pub Vec<LogEntry>);

/// How many sessions are registered (for tests and readiness).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CountSessions;

/// A registered session.
struct Member {
    session: Recipient<Deliver>,
    closer: Recipient<GoAway>,
    outbound: Arc<Outbound>,
}

/// The registry actor.
pub struct Hub {
    /// Who listens on which namespace.
    namespaces: HashMap<String, HashMap<ConnId, Member>>,
    /// Bytes a client may have on its way before it is given up on.
    max_pending: usize,
}

impl Hub {
    /// A registry that gives up on clients with more than `max_pending` bytes on their way.
    pub fn new(max_pending: usize) -> Hub {
        Hub {
            namespaces: HashMap::new(),
            max_pending,
        }
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
            .insert(msg.conn, member);
    }
}

impl Handler<Unregister> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Unregister, _: &mut Self::Context) {
        if let Some(members) = self.namespaces.get_mut(&msg.nsp) {
            members.remove(&msg.conn);
            if members.is_empty() {
                self.namespaces.remove(&msg.nsp);
            }
        }
    }
}

impl Handler<Fanout> for Hub {
    type Result = ();

    fn handle(&mut self, Fanout(entries): Fanout, _: &mut Self::Context) {
        // Entries arrive in log order; group them per namespace, keeping that order.
        let mut batches: Vec<(Arc<str>, Vec<Frame>)> = Vec::new();
        for entry in entries {
            let Some(frame) = frame_entry(&entry) else {
                warn!("log entry is not an event array, skipped id={}", entry.id);
                continue;
            };
            match batches.iter_mut().find(|(nsp, _)| *nsp == entry.nsp) {
                Some((_, frames)) => frames.push(frame),
                None => batches.push((entry.nsp.clone(), vec![frame])),
            }
        }
        for (nsp, frames) in batches {
            let Some(members) = self.namespaces.get_mut(&*nsp) else {
                continue;
            };
            let bytes = frames.iter().map(|f| wire_len(f.text.len())).sum();
            let frames: Arc<[Frame]> = frames.into();
            let max_pending = self.max_pending;
            members.retain(|conn, member| {
                let pending = member.outbound.pending();
                if pending + bytes > max_pending {
                    debug!("slow consumer dropped conn={conn:?} pending={pending}");
                    member.outbound.abort();
                    // The session must end: no more broadcasts reach it, so staying would be a silent gap.
                    member.closer.do_send(GoAway::TooSlow);
                    return false;
                }
                member.outbound.sent(bytes);
                member.session.do_send(Deliver {
                    nsp: nsp.clone(),
                    frames: frames.clone(),
                    bytes,
                });
                true
            });
        }
    }
}

impl Handler<CountSessions> for Hub {
    type Result = usize;

    fn handle(&mut self, _: CountSessions, _: &mut Self::Context) -> usize {
        self.namespaces.values().map(HashMap::len).sum()
    }
}

/// The Engine.IO frame of a log entry, its id appended as the recovery offset.
pub fn frame_entry(entry: &LogEntry) -> Option<Frame> {
    let text = socketio::broadcast_frame(&entry.nsp, &entry.args, &entry.id.to_string())?;
    Some(Frame {
        id: entry.id,
        text: ByteString::from(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    /// Forwards every Deliver into a channel, so a test can see what a session would get.
    struct Collector(mpsc::UnboundedSender<Deliver>);

    impl Actor for Collector {
        type Context = Context<Self>;
    }

    impl Handler<GoAway> for Collector {
        type Result = ();
        fn handle(&mut self, _: GoAway, _: &mut Self::Context) {}
    }

    impl Handler<Deliver> for Collector {
        type Result = ();
        fn handle(&mut self, msg: Deliver, _: &mut Self::Context) {
            let _ = self.0.send(msg);
        }
    }

    fn entry(ms: u64, nsp: &str) -> LogEntry {
        LogEntry {
            id: StreamId::new(ms, 0),
            nsp: Arc::from(nsp),
            args: Arc::from("[\"n\",1]"),
        }
    }

    /// The next Deliver a session got, failing the test after 5 s without one (the test holds a
    /// sender, so the channel never closes by itself).
    async fn next_deliver(rx: &mut mpsc::UnboundedReceiver<Deliver>) -> Deliver {
        tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("waited 5 s for a Deliver")
            .expect("the channel stays open")
    }

    fn register(hub: &Addr<Hub>, tx: &mpsc::UnboundedSender<Deliver>) -> (ConnId, Arc<Outbound>) {
        let (conn, outbound) = (ConnId::next(), Arc::new(Outbound::default()));
        let collector = Collector(tx.clone()).start();
        let (session, closer) = (collector.clone().recipient(), collector.recipient());
        let nsp = "/".to_owned();
        hub.do_send(Register {
            conn,
            nsp,
            session,
            closer,
            outbound: outbound.clone(),
        });
        (conn, outbound)
    }

    #[actix::test]
    async fn hub_frames_each_entry_once_and_delivers_the_same_buffer_to_every_session() {
        let hub = Hub::new(1 << 20).start();
        let (tx, mut rx) = mpsc::unbounded_channel();
        register(&hub, &tx);
        register(&hub, &tx);
        hub.do_send(Fanout(vec![
            entry(1, "/"),
            entry(2, "/other"),
            entry(3, "/"),
        ]));
        let (a, b) = (next_deliver(&mut rx).await, next_deliver(&mut rx).await);
        assert!(
            Arc::ptr_eq(&a.frames, &b.frames),
            "both sessions share one encoded batch"
        );
        let texts: Vec<&str> = a.frames.iter().map(|f| &*f.text).collect();
        assert_eq!(texts, vec![r#"42["n",1,"1-0"]"#, r#"42["n",1,"3-0"]"#]);
        assert_eq!(a.bytes, 2 * wire_len(r#"42["n",1,"1-0"]"#.len()));
    }

    #[actix::test]
    async fn hub_gives_up_on_a_session_whose_pending_bytes_pass_the_bound() {
        let hub = Hub::new(100).start();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (_, slow) = register(&hub, &tx);
        slow.pushed(70); // written, never pulled: the client does not read
        hub.do_send(Fanout(vec![entry(1, "/")]));
        assert_eq!(
            next_deliver(&mut rx).await.bytes,
            17,
            "72 + 17 bytes is within the bound"
        );
        hub.do_send(Fanout(vec![entry(2, "/")]));
        assert_eq!(
            hub.send(CountSessions).await.unwrap(),
            0,
            "past the bound: dropped"
        );
        assert!(slow.is_aborted());
        assert!(rx.try_recv().is_err());
    }

    #[actix::test]
    async fn hub_stops_delivering_after_unregister() {
        let hub = Hub::new(1 << 20).start();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (conn, _) = register(&hub, &tx);
        hub.do_send(Unregister {
            conn,
            nsp: "/".into(),
        });
        hub.do_send(Fanout(vec![entry(1, "/")]));
        assert_eq!(hub.send(CountSessions).await.unwrap(), 0);
        assert!(rx.try_recv().is_err());
    }
}
