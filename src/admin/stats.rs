//! The admin UI's `server_stats`: what this instance reports every 2 s to every admin socket of the
//! cluster, as `@socket.io/admin-ui`'s `instrument()` does.
//!
//! ```text
//! Session ─opened/upgraded/closed─► EngineMonitor (atomics, and the events of the last 2 s)
//! StatsEmitter, every 2 s ─CountSockets─► Hub
//!                         ─Publish ["server_stats", {…}] to /admin─► StreamBridge ─► the log
//! the log ─► every instance's Hub ─► its /admin sockets (Node peers' admin sockets too)
//! ```
//!
//! The stats go out as a broadcast on `/admin`, the adapter's way (`adminNamespace.emit` writes to
//! the shared stream), so the UI sees every instance, Node or Rust, whichever one it is connected
//! to. Entries are filtered by namespace everywhere (the Hub's fan-out, a replay's scope), so `/`
//! sockets never get them.
//!
//! `server_stats` (the package's `ServerStats`):
//! `{serverId, hostname, pid, uptime (s), clientsCount, pollingClientsCount,
//!   aggregatedEvents: [{timestamp (ms, whole second), type, subType?, count}],
//!   namespaces: [{name, socketsCount}]}`.
//! Aggregated event types counted here: `rawConnection` (an Engine.IO session opened) and
//! `rawDisconnection` (closed; `subType` the Engine.IO reason). The package's `packetsIn/Out` and
//! `bytesIn/Out` are not counted (they would cost on every delivery).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use log::debug;
use serde_json::{json, Value};

use super::dev::{DevView, Joined};
use crate::actors::disconnect::DisconnectReason;
use crate::actors::hub::{CountSockets, Hub};
use crate::actors::stream_bridge::{Publish, StreamBridge};
use crate::app::Handshake;
use crate::protocol::target::{Namespace, Target};

/// How often every instance emits `server_stats` (the package's fixed 2 s).
pub const STATS_INTERVAL: Duration = Duration::from_secs(2);
/// Distinct (second, type, reason) buckets kept between two emissions; more are dropped (each
/// bucket is a few bytes in an entry every instance writes every 2 s).
pub const MAX_BUCKETS: usize = 256;

/// One bucket of the package's `aggregatedEvents`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bucket {
    /// The second it happened in, as Unix milliseconds.
    timestamp: u64,
    kind: &'static str,
    sub_kind: Option<&'static str>,
    count: u64,
}

/// The Engine.IO sessions of this instance, as the stats report them. Updated only when a session
/// opens, upgrades or closes, never per message.
#[derive(Default)]
pub struct EngineMonitor {
    clients: AtomicUsize,
    polling: AtomicUsize,
    events: Mutex<Vec<Bucket>>,
    /// The sockets and their events, in development mode.
    pub(crate) dev: Option<DevView>,
}

impl EngineMonitor {
    /// A monitor that also keeps the development mode's view, when given.
    pub fn new(dev: Option<DevView>) -> EngineMonitor {
        EngineMonitor {
            dev,
            ..EngineMonitor::default()
        }
    }

    /// A session opened, on long-polling or on WebSocket: counted until its [`Seat`] is dropped.
    pub fn opened(self: &Arc<Self>, polling: bool) -> Seat {
        self.clients.fetch_add(1, Ordering::Relaxed);
        if polling {
            self.polling.fetch_add(1, Ordering::Relaxed);
        }
        self.push("rawConnection", None);
        Seat {
            monitor: self.clone(),
            polling,
            reason: None,
            joined: Joined::default(),
        }
    }

    /// Engine.IO sessions open, and those on long-polling among them.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.clients.load(Ordering::Relaxed),
            self.polling.load(Ordering::Relaxed),
        )
    }

    fn push(&self, kind: &'static str, sub_kind: Option<&'static str>) {
        let timestamp = unix_millis() / 1000 * 1000;
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let full = events.len() >= MAX_BUCKETS;
        match events
            .iter_mut()
            .find(|b| b.timestamp == timestamp && b.kind == kind && b.sub_kind == sub_kind)
        {
            Some(bucket) => bucket.count += 1,
            None if !full => events.push(Bucket {
                timestamp,
                kind,
                sub_kind,
                count: 1,
            }),
            None => {}
        }
    }

    /// The events since the last call, as the package's `aggregatedEvents`.
    fn take_events(&self) -> Value {
        let events = std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()));
        events
            .into_iter()
            .map(|b| {
                let mut event = json!({"timestamp": b.timestamp, "type": b.kind, "count": b.count});
                if let Some(sub) = b.sub_kind {
                    event["subType"] = Value::from(sub);
                }
                event
            })
            .collect()
    }
}

/// One session's place in the counts; dropping it counts the session closed.
pub struct Seat {
    monitor: Arc<EngineMonitor>,
    polling: bool,
    reason: Option<&'static str>,
    /// Its sockets, in development mode.
    joined: Joined,
}

impl Seat {
    /// The session moved from long-polling to WebSocket.
    pub fn upgraded(&mut self) {
        if std::mem::take(&mut self.polling) {
            self.monitor.polling.fetch_sub(1, Ordering::Relaxed);
            if let Some(dev) = &self.monitor.dev {
                for (nsp, sid) in self.joined.iter() {
                    dev.upgraded(nsp, sid, "websocket");
                }
            }
        }
    }

    /// Why the session is ending (Engine.IO's close reason, e.g. `transport close`).
    pub fn closing(&mut self, reason: &'static str) {
        self.reason.get_or_insert(reason);
    }

    /// A socket of the session joined `nsp` as `sid` (development mode: listed, and told).
    pub fn socket_joined(&mut self, nsp: &str, sid: &str, client_id: &str, handshake: &Handshake) {
        if let Some(dev) = &self.monitor.dev {
            self.joined.add(nsp, sid);
            let transport = if self.polling { "polling" } else { "websocket" };
            dev.joined(nsp, sid, client_id, transport, handshake);
        }
    }

    /// The session's socket of `nsp` left, for `reason` (Socket.IO's disconnect reason).
    pub fn socket_left(&mut self, nsp: &str, reason: &str) {
        if let (Some(dev), Some(sid)) = (&self.monitor.dev, self.joined.remove(nsp)) {
            dev.left(nsp, &sid, reason);
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let reason = self.reason.unwrap_or("forced close");
        self.monitor.clients.fetch_sub(1, Ordering::Relaxed);
        if self.polling {
            self.monitor.polling.fetch_sub(1, Ordering::Relaxed);
        }
        self.monitor.push("rawDisconnection", Some(reason));
        if let Some(dev) = &self.monitor.dev {
            for (nsp, sid) in self.joined.take() {
                dev.left(&nsp, &sid, reason);
            }
        }
    }
}

/// The `subType` of a `rawDisconnection`: Engine.IO's close reason as a Node server reports it
/// (`transport close`, `ping timeout`, …; `forced close` when the server closed it), or the hub's
/// own reason where it has one Node does not (`slow consumer`, `log replaced`, `token expired`).
pub(crate) fn reason_name(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport close",
        DisconnectReason::TransportError | DisconnectReason::MessageTooBig => "transport error",
        DisconnectReason::PingTimeout => "ping timeout",
        DisconnectReason::ParseError => "parse error",
        DisconnectReason::ConnectTimeout | DisconnectReason::ServerNamespaceDisconnect => {
            "forced close"
        }
        DisconnectReason::ServerShuttingDown => "forced server close",
        DisconnectReason::SlowConsumer => "slow consumer",
        DisconnectReason::LogReplaced => "log replaced",
        DisconnectReason::TokenExpired => "token expired",
    }
}

/// Milliseconds since the Unix epoch.
fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Who this instance is in the stats.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    /// `serverId`: `HUB_ADMIN_SERVER_ID`, else `<hostname>#<pid>` (the package's name for a cluster
    /// worker: several instances may share a host).
    pub server_id: String,
    /// `hostname`.
    pub hostname: String,
    /// `pid`.
    pub pid: u32,
}

impl ServerIdentity {
    /// This process, named `server_id` when given.
    pub fn of_this_process(server_id: Option<String>) -> ServerIdentity {
        // The kernel's name for the host (what Node's os.hostname() returns), without a crate.
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        let pid = std::process::id();
        ServerIdentity {
            server_id: server_id.unwrap_or_else(|| format!("{hostname}#{pid}")),
            hostname,
            pid,
        }
    }
}

/// The actor that emits `server_stats` every [`STATS_INTERVAL`].
pub struct StatsEmitter {
    identity: ServerIdentity,
    started: Instant,
    monitor: Arc<EngineMonitor>,
    /// The namespaces served, reported with 0 sockets when none is there (as Node reports every
    /// namespace created).
    served: Vec<String>,
    hub: Addr<Hub>,
    bridge: Addr<StreamBridge>,
}

impl StatsEmitter {
    /// Emits this instance's stats through `bridge`, counting sockets with `hub`.
    pub fn new(
        identity: ServerIdentity,
        monitor: Arc<EngineMonitor>,
        served: Vec<String>,
        hub: Addr<Hub>,
        bridge: Addr<StreamBridge>,
    ) -> StatsEmitter {
        StatsEmitter {
            identity,
            started: Instant::now(),
            monitor,
            served,
            hub,
            bridge,
        }
    }

    /// The `server_stats` object for these socket counts.
    fn stats(&self, sockets: &[(Namespace, usize)]) -> Value {
        let mut namespaces: Vec<Value> = self
            .served
            .iter()
            .map(|name| {
                let count = sockets
                    .iter()
                    .find(|(nsp, _)| nsp.as_str() == name)
                    .map_or(0, |(_, n)| *n);
                json!({"name": name, "socketsCount": count})
            })
            .collect();
        for (nsp, count) in sockets {
            if !self.served.iter().any(|name| name == nsp.as_str()) {
                namespaces.push(json!({"name": nsp.as_str(), "socketsCount": count}));
            }
        }
        let (clients, polling) = self.monitor.counts();
        json!({
            "serverId": self.identity.server_id,
            "hostname": self.identity.hostname,
            "pid": self.identity.pid,
            "uptime": self.started.elapsed().as_secs_f64(),
            "clientsCount": clients,
            "pollingClientsCount": polling,
            "aggregatedEvents": self.monitor.take_events(),
            "namespaces": namespaces,
        })
    }

    fn emit(&mut self, ctx: &mut Context<Self>) {
        let counting = self
            .hub
            .send(CountSockets)
            .into_actor(self)
            .map(|sockets, act, ctx| {
                let Ok(sockets) = sockets else {
                    return;
                };
                let args = json!(["server_stats", act.stats(&sockets)]).to_string();
                let publish = Publish {
                    target: Target {
                        nsp: Namespace::from(super::NAMESPACE),
                        rooms: Vec::new(),
                        except: Vec::new(),
                    },
                    args: Arc::from(args),
                    source: crate::notification::Source::Admin,
                };
                // A failed append is counted and logged by the bridge; the next one is 2 s away.
                let sent = act
                    .bridge
                    .send(publish)
                    .into_actor(act)
                    .map(|result, _, _| {
                        if let Ok(Err(err)) = result {
                            debug!("server_stats not published: {err}");
                        }
                    });
                ctx.spawn(sent);
            });
        ctx.spawn(counting);
    }
}

impl Actor for StatsEmitter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.emit(ctx);
        ctx.run_interval(STATS_INTERVAL, |act, ctx| act.emit(ctx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_count_sessions_until_dropped_and_their_reasons() {
        let monitor = Arc::new(EngineMonitor::default());
        let mut polling = monitor.opened(true);
        let websocket = monitor.opened(false);
        assert_eq!(monitor.counts(), (2, 1));
        polling.upgraded();
        assert_eq!(monitor.counts(), (2, 0));
        polling.closing("ping timeout");
        drop(polling);
        drop(websocket);
        assert_eq!(monitor.counts(), (0, 0));
        let events = monitor.take_events();
        let count = |kind: &str, sub: Option<&str>| -> u64 {
            events
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == kind && e["subType"].as_str() == sub)
                .map(|e| e["count"].as_u64().unwrap())
                .sum()
        };
        assert_eq!(count("rawConnection", None), 2);
        assert_eq!(count("rawDisconnection", Some("ping timeout")), 1);
        assert_eq!(count("rawDisconnection", Some("forced close")), 1);
        for event in events.as_array().unwrap() {
            assert_eq!(event["timestamp"].as_u64().unwrap() % 1000, 0, "{event}");
        }
        assert_eq!(monitor.take_events(), json!([]), "taken once");
    }

    #[test]
    fn buckets_are_bounded() {
        let monitor = EngineMonitor::default();
        let reasons: Vec<&'static str> = (0..MAX_BUCKETS + 10)
            .map(|i| &*Box::leak(format!("r{i}").into_boxed_str()))
            .collect();
        for reason in reasons {
            monitor.push("rawDisconnection", Some(reason));
        }
        assert!(monitor.take_events().as_array().unwrap().len() <= MAX_BUCKETS);
    }
}
