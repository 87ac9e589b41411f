//! The Hub's side of a DISCONNECT_SOCKETS request: which of this instance's sockets it names.

use actix::prelude::*;
use log::debug;

use super::Hub;
use crate::actors::disconnect::DisconnectSocket;
use crate::protocol::cluster;

/// Disconnect this instance's sockets that match a request read from the log (socket.io-adapter's
/// `disconnectSockets(opts, close)`): each gets [`DisconnectSocket`], and unregisters as it goes.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct DisconnectSockets(pub cluster::DisconnectSockets);

impl Handler<DisconnectSockets> for Hub {
    type Result = ();

    fn handle(&mut self, DisconnectSockets(request): DisconnectSockets, _: &mut Self::Context) {
        let target = &request.target;
        let Some(index) = self.namespaces.get(&target.nsp) else {
            return;
        };
        // The fan-out's own rule (rooms, each socket once, except), so a request costs what the
        // sockets it names cost.
        let mut told = 0usize;
        for (conn, _) in index.recipients(&[target]).picks {
            if let Some(member) = index.get(conn) {
                // Counted as relayed: what the Hub fans out next goes behind the kick, through the
                // Session, so the socket never gets what the log has after the request (the
                // Session closes its lane as it takes the kick).
                let mut lane = member.lane.lock();
                lane.hold();
                member.session.kick(DisconnectSocket {
                    nsp: target.nsp.clone(),
                    close: request.close,
                });
                told += 1;
            }
        }
        self.metrics.server_disconnects.add(told as u64);
        debug!(
            "disconnect_sockets nsp={} rooms={:?} except={:?} close={} sockets={told}",
            target.nsp, target.rooms, target.except, request.close
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::*;
    use crate::actors::hub::{ConnId, Member};
    use crate::actors::outbound::Outbound;
    use crate::metrics::Metrics;
    use crate::protocol::target::{Namespace, Room, Target};

    /// Forwards every DisconnectSocket, with who got it.
    struct Collector(
        &'static str,
        mpsc::UnboundedSender<(&'static str, DisconnectSocket)>,
    );

    impl Actor for Collector {
        type Context = Context<Self>;
    }

    impl Handler<DisconnectSocket> for Collector {
        type Result = ();
        fn handle(&mut self, msg: DisconnectSocket, _: &mut Self::Context) {
            let _ = self.1.send((self.0, msg));
        }
    }

    /// Answered once the collector handled everything sent to it before.
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Flush;

    impl Handler<Flush> for Collector {
        type Result = ();
        fn handle(&mut self, _: Flush, _: &mut Self::Context) {}
    }

    impl Handler<crate::actors::hub::Deliver> for Collector {
        type Result = ();
        fn handle(&mut self, _: crate::actors::hub::Deliver, _: &mut Self::Context) {}
    }

    impl Handler<crate::actors::disconnect::Disconnect> for Collector {
        type Result = ();
        fn handle(&mut self, _: crate::actors::disconnect::Disconnect, _: &mut Self::Context) {}
    }

    fn request(rooms: &[&str], except: &[&str], close: bool) -> DisconnectSockets {
        let names = |of: &[&str]| of.iter().map(|r| Room::from(*r)).collect();
        DisconnectSockets(cluster::DisconnectSockets {
            target: Target {
                rooms: names(rooms),
                except: names(except),
                ..Target::broadcast(Namespace::main())
            },
            close,
        })
    }

    /// Who got a DisconnectSocket, with `close`: the Hub sends them all in one handler, before it
    /// answers the next message, and each collector handles them before its next message.
    async fn told(
        hub: &Addr<Hub>,
        collectors: &[Addr<Collector>],
        rx: &mut mpsc::UnboundedReceiver<(&'static str, DisconnectSocket)>,
    ) -> Vec<(&'static str, bool)> {
        let barrier = async {
            hub.send(crate::actors::hub::CountSessions).await.unwrap();
            for collector in collectors {
                collector.send(Flush).await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(5), barrier)
            .await
            .expect("the hub and the collectors answer");
        let mut got = Vec::new();
        while let Ok((who, msg)) = rx.try_recv() {
            assert_eq!(msg.nsp.as_str(), "/");
            got.push((who, msg.close));
        }
        got.sort();
        got
    }

    #[actix::test]
    async fn hub_disconnects_the_sockets_a_request_names_by_room_and_except_only() {
        let metrics = Arc::new(Metrics::default());
        let mut hub = Hub::new(1 << 20, metrics.clone());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let index = hub.namespaces.entry(Namespace::main()).or_default();
        let mut collectors = Vec::new();
        for (name, rooms) in [
            ("a", &["sid-a", "user:alice"][..]),
            ("b", &["sid-b", "user:alice"]),
            ("c", &["sid-c", "user:bob"]),
        ] {
            let conn = ConnId::next();
            let collector = Collector(name, tx.clone()).start();
            collectors.push(collector.clone());
            let rooms = rooms.iter().map(|room| Room::from(*room)).collect();
            index.insert(
                conn,
                Member {
                    session: Box::new(collector),
                    outbound: Arc::new(Outbound::default()),
                    lane: Arc::default(),
                },
                rooms,
            );
        }
        let hub = hub.start();
        hub.do_send(request(&["sid-b"], &[], false));
        assert_eq!(told(&hub, &collectors, &mut rx).await, [("b", false)]);
        hub.do_send(request(&["user:alice"], &[], true));
        assert_eq!(
            told(&hub, &collectors, &mut rx).await,
            [("a", true), ("b", true)]
        );
        hub.do_send(request(&["user:alice", "sid-a"], &["sid-b"], false));
        assert_eq!(
            told(&hub, &collectors, &mut rx).await,
            [("a", false)],
            "once, b excepted"
        );
        hub.do_send(request(&[], &["user:bob"], false));
        assert_eq!(
            told(&hub, &collectors, &mut rx).await,
            [("a", false), ("b", false)]
        );
        hub.do_send(request(&["nobody"], &[], true));
        assert_eq!(told(&hub, &collectors, &mut rx).await, []);
        let mut elsewhere = request(&[], &[], true);
        elsewhere.0.target.nsp = Namespace::from("/admin");
        hub.do_send(elsewhere);
        assert_eq!(
            told(&hub, &collectors, &mut rx).await,
            [],
            "another namespace"
        );
        assert_eq!(metrics.server_disconnects.get(), 6);
    }
}
