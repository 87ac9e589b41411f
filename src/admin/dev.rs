//! The admin UI's development mode (`HUB_ADMIN_MODE=development`): this instance's sockets, and
//! their connects, transport upgrades and disconnects, live.
//!
//! ```text
//! CONNECT /admin                ◄─ all_sockets [socket…]          this instance's sockets
//! a socket joins                ─► socket_connected (socket, date)      ┐ broadcast on /admin
//! its session upgrades          ─► socket_updated {id, nsp, transport}   │ through the log: every
//! it leaves, or its session ends ─► socket_disconnected (nsp, id, reason, date) ┘ admin socket
//! ```
//! `socket` is the package's `SerializedSocket`: `{id, clientId, transport, nsp, data: {},
//! handshake: {address, headers, query, issued, secure, time, url, xdomain}, rooms}`; `date` an ISO
//! 8601 string, as a JavaScript `Date` serializes. `all_sockets` lists this instance's sockets only
//! (the package asks every server with `fetchSockets`; the hub has no such cluster request), live
//! events come from every instance. Headers that carry credentials (`authorization`, `cookie`) are
//! left out. Rooms are those the socket had when it joined.
//!
//! Each live event is one stream entry: development mode costs an append per socket connect and
//! disconnect, so it is for development.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix::Addr;
use serde_json::{json, Map, Value};

use crate::actors::stream_bridge::{Publish, StreamBridge};
use crate::app::Handshake;
use crate::protocol::target::{Namespace, Target};

/// Headers never shown to the admin UI: they carry credentials.
const HIDDEN_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// This instance's sockets, as the admin UI lists them, and the way to tell every admin socket.
pub struct DevView {
    bridge: Addr<StreamBridge>,
    /// The Engine.IO endpoint's path (`HUB_PATH`), for the handshake's `url`.
    path: String,
    /// `(nsp, sid)` → the serialized socket.
    sockets: Mutex<HashMap<(String, String), Value>>,
}

impl DevView {
    /// A view that broadcasts through `bridge`; `path` is `HUB_PATH`.
    pub fn new(bridge: Addr<StreamBridge>, path: String) -> DevView {
        DevView {
            bridge,
            path,
            sockets: Mutex::new(HashMap::new()),
        }
    }

    /// `all_sockets`' argument: every socket of this instance.
    pub fn all_sockets(&self) -> Value {
        let sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        Value::Array(sockets.values().cloned().collect())
    }

    /// A socket joined `nsp` as `sid` over `transport`, on the session `client_id` opened by
    /// `handshake`.
    pub fn joined(
        &self,
        nsp: &str,
        sid: &str,
        client_id: &str,
        transport: &str,
        handshake: &Handshake,
    ) {
        let socket = self.serialize(nsp, sid, client_id, transport, handshake);
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((nsp.to_owned(), sid.to_owned()), socket.clone());
        self.emit(json!(["socket_connected", socket, now()]));
    }

    /// The socket `sid` of `nsp` moved to `transport`.
    pub fn upgraded(&self, nsp: &str, sid: &str, transport: &str) {
        if let Some(socket) = self
            .sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&(nsp.to_owned(), sid.to_owned()))
        {
            socket["transport"] = Value::from(transport);
        }
        self.emit(json!(["socket_updated", {"id": sid, "nsp": nsp, "transport": transport}]));
    }

    /// The socket `sid` of `nsp` left, for `reason` (Socket.IO's disconnect reason).
    pub fn left(&self, nsp: &str, sid: &str, reason: &str) {
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(nsp.to_owned(), sid.to_owned()));
        self.emit(json!(["socket_disconnected", nsp, sid, reason, now()]));
    }

    fn emit(&self, args: Value) {
        self.bridge.do_send(Publish {
            target: Target {
                nsp: Namespace::from(super::NAMESPACE),
                rooms: Vec::new(),
                except: Vec::new(),
            },
            args: Arc::from(args.to_string()),
            source: crate::notification::Source::Admin,
        });
    }

    fn serialize(
        &self,
        nsp: &str,
        sid: &str,
        client_id: &str,
        transport: &str,
        handshake: &Handshake,
    ) -> Value {
        let mut headers = Map::new();
        for (name, value) in handshake.headers() {
            if !HIDDEN_HEADERS.contains(&name) && !headers.contains_key(name) {
                headers.insert(name.to_owned(), Value::from(value));
            }
        }
        let query: Map<String, Value> = handshake
            .query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .filter(|(name, _)| !name.is_empty())
            .map(|(name, value)| (name.to_owned(), Value::from(value)))
            .collect();
        let address = ["cf-connecting-ip", "x-forwarded-for"]
            .iter()
            .find_map(|name| handshake.header(name).map(str::to_owned))
            .or_else(|| handshake.remote_addr.map(|addr| addr.ip().to_string()));
        let issued = jiff::Timestamp::now();
        json!({
            "id": sid,
            "clientId": client_id.chars().take(12).collect::<String>(),
            "transport": transport,
            "nsp": nsp,
            "data": {},
            "handshake": {
                "address": address,
                "headers": headers,
                "query": query,
                "issued": issued.as_millisecond(),
                "secure": false,
                "time": issued.strftime("%a %b %d %Y %H:%M:%S GMT+0000").to_string(),
                "url": format!("{}?{}", self.path, handshake.query),
                "xdomain": handshake.header("origin").is_some(),
            },
            "rooms": [sid],
        })
    }
}

/// Now as a JavaScript `Date` serializes to JSON: ISO 8601, milliseconds, UTC.
fn now() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_millisecond(now.as_millisecond())
        .unwrap_or(now)
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// What a session's [`super::stats::Seat`] remembers of its sockets for the development view.
#[derive(Debug, Default)]
pub(crate) struct Joined(Vec<(String, String)>);

impl Joined {
    pub(crate) fn add(&mut self, nsp: &str, sid: &str) {
        self.0.push((nsp.to_owned(), sid.to_owned()));
    }

    pub(crate) fn remove(&mut self, nsp: &str) -> Option<String> {
        let at = self.0.iter().position(|(name, _)| name == nsp)?;
        Some(self.0.swap_remove(at).1)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.0.iter()
    }

    pub(crate) fn take(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_read_as_javascript_writes_them() {
        let date = super::now();
        assert_eq!(date.len(), "2026-01-01T00:00:00.000Z".len(), "{date}");
        assert!(date.ends_with('Z') && date.as_bytes()[10] == b'T', "{date}");
    }
}
