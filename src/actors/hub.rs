//! Hub: the registry of live sessions, and the fan-out of log entries to them.
//!
//! Owns: `namespace → {connection → Recipient<Deliver>}`.
//! Receives: Register, Unregister (from Session); Fanout (from StreamBridge).
//! Sends: Deliver to sessions. Never touches the log or a socket.
//!
//! Each entry is framed **once** (`42["notification",{…},"<id>"]`) into a shared, immutable buffer;
//! delivering it to a session is a reference-count increment and one mailbox message per batch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use bytestring::ByteString;
use log::warn;

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
pub struct Deliver(pub Arc<[Frame]>);

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

/// The registry actor.
#[derive(Default)]
pub struct Hub {
    /// Who listens on which namespace.
    namespaces: HashMap<String, HashMap<ConnId, Recipient<Deliver>>>,
}

impl Actor for Hub {
    type Context = Context<Self>;
}

impl Handler<Register> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Register, _: &mut Self::Context) {
        self.namespaces
            .entry(msg.nsp)
            .or_default()
            .insert(msg.conn, msg.session);
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
            let Some(members) = self.namespaces.get(&*nsp) else {
                continue;
            };
            let frames: Arc<[Frame]> = frames.into();
            for session in members.values() {
                session.do_send(Deliver(frames.clone()));
            }
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

    #[actix::test]
    async fn hub_frames_each_entry_once_and_delivers_the_same_buffer_to_every_session() {
        let hub = Hub::default().start();
        let (tx, mut rx) = mpsc::unbounded_channel();
        for _ in 0..2 {
            let session = Collector(tx.clone()).start().recipient();
            hub.do_send(Register {
                conn: ConnId::next(),
                nsp: "/".into(),
                session,
            });
        }
        hub.do_send(Fanout(vec![
            entry(1, "/"),
            entry(2, "/other"),
            entry(3, "/"),
        ]));
        let (Deliver(a), Deliver(b)) = (rx.recv().await.unwrap(), rx.recv().await.unwrap());
        assert!(Arc::ptr_eq(&a, &b), "both sessions share one encoded batch");
        let texts: Vec<&str> = a.iter().map(|f| &*f.text).collect();
        assert_eq!(texts, vec![r#"42["n",1,"1-0"]"#, r#"42["n",1,"3-0"]"#]);
    }

    #[actix::test]
    async fn hub_stops_delivering_after_unregister() {
        let hub = Hub::default().start();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = ConnId::next();
        hub.do_send(Register {
            conn,
            nsp: "/".into(),
            session: Collector(tx).start().recipient(),
        });
        hub.do_send(Unregister {
            conn,
            nsp: "/".into(),
        });
        hub.do_send(Fanout(vec![entry(1, "/")]));
        assert_eq!(hub.send(CountSessions).await.unwrap(), 0);
        assert!(rx.try_recv().is_err());
    }
}
