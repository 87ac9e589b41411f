//! The Socket.IO admin UI (`@socket.io/admin-ui` 0.5, the hosted UI at admin.socket.io or its
//! static build): the server side of its protocol on the `/admin` namespace, off by default
//! (`HUB_ADMIN`).
//!
//! ```text
//! CONNECT /admin {username, password} ─► auth.rs: bcrypt check, or CONNECT_ERROR
//!                                        {"message":"invalid credentials"}
//!   ◄─ session <id>                      (reconnects may present {sessionId} instead)
//!   ◄─ config {supportedFeatures}
//!   ◄─ server_stats {…}                  every 2 s from every instance (stats.rs)
//! emit        (nsp, room?, event, …args) ─► a broadcast through the log    (unless read-only)
//! _disconnect (nsp, close, room?)        ─► DISCONNECT_SOCKETS through the log (unless read-only)
//! join, leave                            ─► not supported: the hub does not apply room operations
//! ```
//!
//! It is an [`Application`] around the hub's: `/admin` is answered here, every other namespace by
//! the inner application, so the session and the Hub treat admin sockets as any socket (admission
//! before registering, the connection's event budget, the `/admin` entries of the log fanned out to
//! them).

pub mod auth;
pub mod dev;
pub mod stats;

use std::future::{ready, Future};
use std::pin::Pin;
use std::sync::Arc;

use actix::Addr;
use log::debug;
use serde_json::{json, Value};

use crate::actors::stream_bridge::{Publish, RequestDisconnect, StreamBridge};
use crate::app::{
    AdmitFuture, Application, Handshake, Identity, Payload, Reply, ReplyFuture, SharedApp,
};
use crate::config::{Admin, AdminMode, AdminSwitch};
use crate::protocol::cluster::DisconnectSockets;
use crate::protocol::socketio::RESERVED_EVENTS;
use crate::protocol::target::{Namespace, Room, Target};
use crate::store::StoreError;

/// The admin UI's namespace (the package's `namespaceName` default).
pub const NAMESPACE: &str = "/admin";

/// The package's `Feature` names this hub supports: the UI shows what they enable.
const EMIT: &str = "EMIT";
const DISCONNECT: &str = "DISCONNECT";
const MDISCONNECT: &str = "MDISCONNECT";
const AGGREGATED_EVENTS: &str = "AGGREGATED_EVENTS";
const ALL_EVENTS: &str = "ALL_EVENTS";

/// An operation handed to the log: its append's outcome, or the bridge gone.
type Pending = Pin<Box<dyn Future<Output = Result<Result<(), StoreError>, actix::MailboxError>>>>;

/// The hub's application with `/admin` added.
pub struct AdminApp {
    inner: SharedApp,
    namespaces: Vec<String>,
    /// `None`: `HUB_ADMIN=on-without-auth`.
    credentials: Option<auth::Credentials>,
    readonly: bool,
    bridge: Addr<StreamBridge>,
    /// The sessions' counts, and the development view.
    monitor: Arc<stats::EngineMonitor>,
}

impl AdminApp {
    /// `inner` plus `/admin` as `settings` say (whose [`Admin::check`] passed), acting through
    /// `bridge`. `None` when the admin UI is off. Fails if `inner` serves `/admin` itself.
    pub fn wrap(
        inner: SharedApp,
        settings: &Admin,
        bridge: Addr<StreamBridge>,
        monitor: Arc<stats::EngineMonitor>,
    ) -> Result<Option<AdminApp>, String> {
        let credentials = match settings.admin {
            AdminSwitch::Off => return Ok(None),
            AdminSwitch::OnWithoutAuth => None,
            AdminSwitch::On => {
                let (Some(user), Some(hash)) =
                    (&settings.admin_username, &settings.admin_password_hash)
                else {
                    return Err(settings.check().err().unwrap_or_default());
                };
                Some(auth::Credentials::new(user.clone(), hash.clone()))
            }
        };
        if inner.namespaces().iter().any(|nsp| nsp == NAMESPACE) {
            return Err(format!(
                "HUB_NAMESPACES lists {NAMESPACE}, which the admin UI (HUB_ADMIN) serves"
            ));
        }
        let mut namespaces = inner.namespaces().to_vec();
        namespaces.push(NAMESPACE.to_owned());
        Ok(Some(AdminApp {
            inner,
            namespaces,
            credentials,
            readonly: settings.readonly(),
            bridge,
            monitor,
        }))
    }

    /// The `config` event's `supportedFeatures`.
    pub fn features(&self) -> Vec<&'static str> {
        let mut features = Vec::new();
        if !self.readonly {
            features.extend([EMIT, DISCONNECT, MDISCONNECT]);
        }
        features.push(AGGREGATED_EVENTS);
        if self.monitor.dev.is_some() {
            features.push(ALL_EVENTS);
        }
        features
    }

    /// `emit` (nsp, room or null, event, …args): the event broadcast through the log to `nsp`'s
    /// sockets (in the room, when given), on every instance (`io.of(nsp).in(room).emit(…)`).
    fn emit(args: &[Value]) -> Result<Publish, String> {
        let nsp = args
            .first()
            .and_then(Value::as_str)
            .ok_or("nsp is not a string")?;
        let target = target(nsp, args.get(1))?;
        let event = args
            .get(2)
            .and_then(Value::as_str)
            .ok_or("event is not a string")?;
        // As socket.io's `emit` refuses them: every client refuses a packet with a reserved name as
        // a parse error, and the log would replay it to each resuming client, again and again.
        if RESERVED_EVENTS.contains(&event) {
            return Err(format!("{event:?} is a reserved event name"));
        }
        let mut data = vec![Value::from(event)];
        data.extend(args.iter().skip(3).cloned());
        Ok(Publish {
            target,
            args: Arc::from(Value::Array(data).to_string()),
            source: crate::notification::Source::Admin,
        })
    }

    /// `_disconnect` (nsp, close, room or null): the sockets of `nsp` (in the room, when given)
    /// disconnected on every instance (`io.of(nsp).in(room).disconnectSockets(close)`).
    fn disconnect(args: &[Value]) -> Result<DisconnectSockets, String> {
        let nsp = args
            .first()
            .and_then(Value::as_str)
            .ok_or("nsp is not a string")?;
        let close = args.get(1).and_then(Value::as_bool).unwrap_or(false);
        Ok(DisconnectSockets {
            target: target(nsp, args.get(2))?,
            close,
        })
    }
}

/// The target of an admin operation: namespace `nsp`, and the room `filter` when it is a string.
fn target(nsp: &str, filter: Option<&Value>) -> Result<Target, String> {
    if !nsp.starts_with('/') {
        return Err("nsp does not start with /".into());
    }
    let rooms = match filter {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(room)) => {
            crate::recipients::check_room_name("filter", room).map_err(|e| e.to_string())?;
            vec![Room::from(room.as_str())]
        }
        Some(_) => return Err("the room filter is not a string".into()),
    };
    Ok(Target {
        nsp: Namespace::from(nsp),
        rooms,
        except: Vec::new(),
    })
}

impl Application for AdminApp {
    fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    fn authorize(&self, nsp: &str, handshake: &Handshake, auth: &Value) -> AdmitFuture {
        if nsp != NAMESPACE {
            return self.inner.authorize(nsp, handshake, auth);
        }
        match &self.credentials {
            Some(credentials) => credentials.check(handshake, auth),
            None => Box::pin(ready(Ok(Identity::default()))),
        }
    }

    /// On `/admin`: `session` (after a password login), then `config`.
    fn on_connect(&self, nsp: &str, auth: &Value) -> Vec<Payload> {
        if nsp != NAMESPACE {
            return self.inner.on_connect(nsp, auth);
        }
        let mut events = Vec::new();
        if let Some(credentials) = &self.credentials {
            let resumed = auth
                .get("sessionId")
                .and_then(Value::as_str)
                .is_some_and(|id| credentials.knows(id));
            if !resumed {
                events.push(Payload::event(
                    "session",
                    [Value::from(credentials.new_session())],
                ));
            }
        }
        let config = json!({ "supportedFeatures": self.features() });
        events.push(Payload::event("config", [config]));
        if let Some(dev) = &self.monitor.dev {
            events.push(Payload::event("all_sockets", [dev.all_sockets()]));
        }
        events
    }

    /// On `/admin`: the UI's operations, when not read-only. Other events, or any in read-only mode,
    /// are ignored as the package ignores events it registered no handler for (an ack, if asked
    /// for, says why).
    fn on_event(
        &self,
        nsp: &str,
        identity: &Identity,
        event: Payload,
        wants_ack: bool,
    ) -> ReplyFuture {
        if nsp != NAMESPACE {
            return self.inner.on_event(nsp, identity, event, wants_ack);
        }
        let answer = move |value: Value| Reply {
            ack: wants_ack.then(|| Payload {
                data: vec![value],
                attachments: Vec::new(),
            }),
            ..Reply::default()
        };
        let name = event.data.first().and_then(Value::as_str).unwrap_or("");
        let args = event.data.get(1..).unwrap_or_default();
        let supported = matches!(name, "emit" | "_disconnect");
        if self.readonly || !supported {
            debug!("admin event {name:?} ignored (read-only or not supported)");
            let why = if self.readonly {
                "read-only"
            } else {
                "not supported"
            };
            return Box::pin(ready(answer(json!({ "error": why }))));
        }
        if !event.attachments.is_empty() {
            return Box::pin(ready(answer(
                json!({ "error": "binary arguments are not supported" }),
            )));
        }
        let bridge = self.bridge.clone();
        let sent: Result<Pending, String> = if name == "emit" {
            AdminApp::emit(args).map(|publish| -> Pending {
                Box::pin(async move { bridge.send(publish).await.map(|r| r.map(|_| ())) })
            })
        } else {
            AdminApp::disconnect(args).map(|request| -> Pending {
                Box::pin(async move { bridge.send(RequestDisconnect(request)).await })
            })
        };
        match sent {
            Err(err) => Box::pin(ready(answer(json!({ "error": err })))),
            Ok(sent) => Box::pin(async move {
                match sent.await {
                    Ok(Ok(())) => answer(json!({ "ok": true })),
                    Ok(Err(err)) => answer(json!({ "error": err.to_string() })),
                    Err(_) => answer(json!({ "error": "the log is unreachable" })),
                }
            }),
        }
    }

    fn may_join(&self, nsp: &str, identity: &Identity, room: &str) -> bool {
        nsp != NAMESPACE && self.inner.may_join(nsp, identity, room)
    }

    fn on_ack(&self, nsp: &str, answer: Payload) -> Vec<Payload> {
        if nsp == NAMESPACE {
            return Vec::new();
        }
        self.inner.on_ack(nsp, answer)
    }
}

/// What [`start`] gives the sessions: their application, and the monitor of their Engine.IO
/// sessions when the admin UI is on.
pub struct Started {
    /// The application, with `/admin` when the admin UI is on.
    pub app: SharedApp,
    /// Counts Engine.IO sessions for `server_stats`; `None` when the admin UI is off (no cost).
    pub monitor: Option<Arc<stats::EngineMonitor>>,
}

/// With the admin UI on (`settings`): `app` wrapped in [`AdminApp`], and the [`stats::StatsEmitter`]
/// started; `path` is `HUB_PATH`. Off: `app` as it is. Fails on settings that do not go together ([`Admin::check`]).
pub fn start(
    settings: &Admin,
    path: &str,
    app: SharedApp,
    hub: Addr<crate::actors::hub::Hub>,
    bridge: Addr<StreamBridge>,
) -> Result<Started, String> {
    use actix::Actor;

    settings.check()?;
    let dev = (settings.admin_mode == AdminMode::Development)
        .then(|| dev::DevView::new(bridge.clone(), path.to_owned()));
    let monitor = Arc::new(stats::EngineMonitor::new(dev));
    let Some(admin) = AdminApp::wrap(app.clone(), settings, bridge.clone(), monitor.clone())?
    else {
        return Ok(Started { app, monitor: None });
    };
    let identity = stats::ServerIdentity::of_this_process(settings.admin_server_id.clone());
    log::info!(
        "admin UI: {NAMESPACE} on ({}, {:?} mode, {}), server id {:?}; server_stats every {:?}",
        if admin.credentials.is_some() {
            "basic authentication"
        } else {
            "WITHOUT authentication"
        },
        settings.admin_mode,
        if admin.readonly {
            "read-only"
        } else {
            "may emit and disconnect"
        },
        identity.server_id,
        stats::STATS_INTERVAL
    );
    stats::StatsEmitter::new(
        identity,
        monitor.clone(),
        admin.namespaces.clone(),
        hub,
        bridge,
    )
    .start();
    Ok(Started {
        app: Arc::new(admin),
        monitor: Some(monitor),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: Value) -> Vec<Value> {
        value.as_array().cloned().unwrap_or_default()
    }

    #[test]
    fn emit_is_a_broadcast_to_the_namespace_or_its_room() {
        let publish =
            AdminApp::emit(&args(json!(["/", null, "notification", {"title": "t"}, 2]))).unwrap();
        assert_eq!(publish.target.nsp.as_str(), "/");
        assert!(publish.target.rooms.is_empty() && publish.target.except.is_empty());
        assert_eq!(&*publish.args, r#"["notification",{"title":"t"},2]"#);
        let narrow = AdminApp::emit(&args(json!(["/", "team", "e"]))).unwrap();
        assert_eq!(narrow.target.rooms, [Room::from("team")]);
        assert_eq!(&*narrow.args, r#"["e"]"#);
        for bad in [
            json!([]),
            json!(["/"]),
            json!(["/", null]),
            json!(["/", null, 1]),
            json!(["nsp", null, "e"]),
            json!(["/", 1, "e"]),
            json!(["/", "", "e"]),
            json!(["/", null, "disconnect"]),
            json!(["/", null, "connect"]),
            json!(["/", null, "connect_error"]),
            json!(["/", null, "disconnecting"]),
            json!(["/", null, "newListener"]),
            json!(["/", null, "removeListener"]),
        ] {
            assert!(AdminApp::emit(&args(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn disconnect_names_the_namespace_the_room_and_close() {
        let all = AdminApp::disconnect(&args(json!(["/", true]))).unwrap();
        assert_eq!(all.target.nsp.as_str(), "/");
        assert!(all.target.rooms.is_empty());
        assert!(all.close);
        let one = AdminApp::disconnect(&args(json!(["/", false, "sid1"]))).unwrap();
        assert_eq!(one.target.rooms, [Room::from("sid1")]);
        assert!(!one.close);
        assert!(
            !AdminApp::disconnect(&args(json!(["/"]))).unwrap().close,
            "close defaults to false"
        );
        assert!(AdminApp::disconnect(&args(json!([1, false]))).is_err());
        assert!(AdminApp::disconnect(&args(json!(["/", false, ["r"]]))).is_err());
    }
}
