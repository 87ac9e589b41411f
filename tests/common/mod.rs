//! Test fixture: a hub started in-process on a free loopback port, and a raw Engine.IO client that
//! asserts frames byte for byte. Every wait has a deadline, so a hang fails fast instead of hanging CI.

#![allow(dead_code)] // each test crate uses a different part of the fixture

pub mod raw_ws;
pub mod redis_cluster_nodes;
pub mod redis_server;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use awc::ws::{self, CloseCode, Frame};
use futures_util::{SinkExt, StreamExt};
use realtime_hub::config::Config;
use serde_json::Value;

/// How long a frame may take to arrive before the test fails.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a wait that spans several frames (pings answered or skipped on the way), an HTTP exchange
/// with its body, or a send may take overall before the test fails.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the test with "waited <limit> for <what>" if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("waited {limit:?} for {what}"))
}

/// A running hub.
pub struct TestHub {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Stops it.
    pub handle: ServerHandle,
    /// Its session registry.
    pub hub: realtime_hub::SessionCount,
}

/// A test config on Redis at `url`, with its own stream key.
pub fn redis_config(url: &str, stream_key: &str) -> Config {
    Config {
        redis_url: Some(url.to_owned()),
        stream_key: stream_key.to_owned(),
        ..test_config()
    }
}

/// Loopback, free port, fast heartbeat (the conformance suites' 300/200 ms).
pub fn test_config() -> Config {
    Config {
        host: "127.0.0.1".into(),
        port: 0,
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..Config::default()
    }
}

/// The server the official conformance suites expect (reference §5), on a free loopback port:
/// Engine.IO echo at `/engine.io/`, or the Socket.IO suite's application at `/socket.io/`.
pub fn start_suite_hub(engine_io: bool) -> TestHub {
    let config = Config {
        host: "127.0.0.1".into(),
        port: 0,
        ..Config::conformance_suite(engine_io)
    };
    start_hub_with(config, true)
}

/// Starts a hub on the current actix system.
pub fn start_hub(config: Config) -> TestHub {
    start_hub_with(config, false)
}

/// Starts a hub and waits (bounded) until it is ready: on Redis, until its read loop reads.
pub async fn start_ready_hub(config: Config) -> TestHub {
    let hub = start_hub(config);
    hub.wait_ready().await;
    hub
}

/// Starts a hub whose sockets `app` answers (e.g. an application that refuses some CONNECTs).
pub fn start_hub_with_app(config: Config, app: realtime_hub::app::SharedApp) -> TestHub {
    let _ = env_logger::builder().is_test(true).try_init();
    let running = realtime_hub::start_with(&config, |_| app).expect("hub starts");
    serve(running)
}

fn start_hub_with(config: Config, suite: bool) -> TestHub {
    let _ = env_logger::builder().is_test(true).try_init();
    let running = if suite {
        realtime_hub::start_with(&config, |_| {
            std::sync::Arc::new(realtime_hub::app::SuiteApp::default())
        })
    } else {
        realtime_hub::start(&config)
    }
    .expect("hub starts");
    serve(running)
}

fn serve(running: realtime_hub::RunningHub) -> TestHub {
    let handle = running.server.handle();
    actix_web::rt::spawn(running.server);
    TestHub {
        addr: running.addr,
        handle,
        hub: running.sessions,
    }
}

impl TestHub {
    /// `http://127.0.0.1:<port><path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Opens a WebSocket to the Engine.IO endpoint with `query` (e.g. `EIO=4&transport=websocket`).
    pub async fn ws(&self, query: &str) -> Result<WsClient, awc::error::WsClientError> {
        let (_, framed) = awc::Client::new()
            .ws(format!("ws://{}/socket.io/?{}", self.addr, query))
            .max_frame_size(16 * 1024 * 1024)
            .connect()
            .await?;
        Ok(WsClient { framed })
    }

    /// A WebSocket past the Engine.IO handshake; returns the client and the open packet's JSON.
    pub async fn eio(&self) -> (WsClient, Value) {
        let mut client = self
            .ws("EIO=4&transport=websocket")
            .await
            .expect("websocket connects");
        let open = client.recv_text().await;
        let json = open
            .strip_prefix('0')
            .unwrap_or_else(|| panic!("expected an open packet, got {open:?}"));
        (
            client,
            serde_json::from_str(json).expect("open packet is JSON"),
        )
    }

    /// A client joined to `/`: sends `40<auth>`, reads the CONNECT reply and the offset event.
    pub async fn joined(&self) -> Joined {
        let (mut client, _) = self.eio().await;
        client.send("40").await;
        let (sid, pid) = client.recv_connect().await;
        let offset_event = client.recv_text().await;
        let offset = event_args(&offset_event)
            .and_then(|a| a.get(1).and_then(Value::as_str).map(str::to_owned));
        Joined {
            client,
            sid,
            pid,
            offset: offset.expect("hub:offset event after CONNECT"),
        }
    }

    /// An HTTP request to `path` (with its query); returns the status, the body and the content type.
    pub async fn http(&self, method: &str, path: &str, body: &str) -> (u16, String, String) {
        // awc bounds the wait for the response head, not for its body.
        let what = format!("the answer to {method} {path}");
        within(WAIT_TIMEOUT, &what, self.http_unbounded(method, path, body)).await
    }

    async fn http_unbounded(&self, method: &str, path: &str, body: &str) -> (u16, String, String) {
        let client = awc::Client::new();
        let url = self.url(path);
        let req = match method {
            "GET" => client.get(url),
            "POST" => client.post(url),
            "PUT" => client.put(url),
            "OPTIONS" => client.request(awc::http::Method::OPTIONS, url),
            other => panic!("method {other}"),
        };
        let mut res = req.send_body(body.to_owned()).await.expect("request");
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = res.body().limit(16 << 20).await.expect("body");
        (
            res.status().as_u16(),
            String::from_utf8_lossy(&bytes).into_owned(),
            content_type,
        )
    }

    /// A GET to `poll_path` left pending, and 100 ms later (long enough for it to be pending on a
    /// loaded machine) `method` to `path` with `body`; returns both answers.
    pub async fn while_polling(
        &self,
        poll_path: &str,
        method: &str,
        path: &str,
        body: &str,
    ) -> ((u16, String, String), (u16, String, String)) {
        let pending = self.http("GET", poll_path, "");
        let second = async {
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            self.http(method, path, body).await
        };
        futures_util::future::join(pending, second).await
    }

    /// A polling handshake at `path` (`/engine.io/` or `/socket.io/`); returns the sid.
    pub async fn polling_session(&self, path: &str) -> String {
        let (status, body, _) = self
            .http("GET", &format!("{path}?EIO=4&transport=polling"), "")
            .await;
        assert_eq!(status, 200, "{body}");
        let open: Value =
            serde_json::from_str(body.strip_prefix('0').expect("open packet")).unwrap();
        open["sid"].as_str().unwrap().to_owned()
    }

    /// Opens a WebSocket at `path` with `query`.
    pub async fn ws_at(
        &self,
        path: &str,
        query: &str,
    ) -> Result<WsClient, awc::error::WsClientError> {
        let (_, framed) = awc::Client::new()
            .ws(format!("ws://{}{path}?{query}", self.addr))
            .max_frame_size(16 * 1024 * 1024)
            .connect()
            .await?;
        Ok(WsClient { framed })
    }

    /// `GET <path>`: the status code.
    pub async fn get_status(&self, path: &str) -> u16 {
        match awc::Client::new().get(self.url(path)).send().await {
            Ok(res) => res.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// A new WebSocket connection that has sent CONNECT with `pid` and `offset` (a resume attempt);
    /// nothing read yet.
    pub async fn send_resume(&self, pid: &str, offset: &str) -> WsClient {
        let (mut client, _) = self.eio().await;
        client
            .send(&format!(
                "40{}",
                serde_json::json!({ "pid": pid, "offset": offset })
            ))
            .await;
        client
    }

    /// Sends `40{pid, offset}` on a new connection and reads up to the CONNECT reply: the reply's
    /// ids, the frames before it (the replayed events, as sent), and the open connection.
    pub async fn resume(&self, pid: &str, offset: &str) -> Resumed {
        let mut client = self.send_resume(pid, offset).await;
        let mut replayed = Vec::new();
        loop {
            let frame = client.recv_text_answering_pings().await;
            if let Some(ids) = frame.strip_prefix("40") {
                let reply: Value = serde_json::from_str(ids).expect("CONNECT reply is JSON");
                let id = |name: &str| reply[name].as_str().unwrap_or_default().to_owned();
                return Resumed {
                    sid: id("sid"),
                    pid: id("pid"),
                    replayed,
                    client,
                };
            }
            replayed.push(frame);
        }
    }

    /// Waits (bounded) until `/readyz` answers 200: the log is reachable and being read.
    pub async fn wait_ready(&self) {
        for _ in 0..250 {
            if self.get_status("/readyz").await == 200 {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("hub at {} never became ready", self.addr);
    }

    /// How many sessions are registered with the Hub.
    pub async fn sessions(&self) -> usize {
        within(
            WAIT_TIMEOUT,
            "the Hub to count its sessions",
            self.hub.get(),
        )
        .await
        .expect("hub answers")
    }

    /// A counter or gauge of `GET /metrics` (Prometheus text: the line `<name> <value>`).
    pub async fn metric(&self, name: &str) -> u64 {
        let (status, text, _) = self.http("GET", "/metrics", "").await;
        assert_eq!(status, 200, "{text}");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
    }

    /// `POST /notifications/notify` with a raw body; returns the status and the JSON answer.
    pub async fn notify(&self, body: &str) -> (u16, Value) {
        // awc bounds the wait for the response head, not for its body.
        within(
            WAIT_TIMEOUT,
            "the answer to POST /notifications/notify",
            self.notify_unbounded(body),
        )
        .await
    }

    async fn notify_unbounded(&self, body: &str) -> (u16, Value) {
        let mut res = awc::Client::new()
            .post(self.url("/notifications/notify"))
            .insert_header(("content-type", "application/json"))
            .send_body(body.to_owned())
            .await
            .expect("notify request");
        let status = res.status().as_u16();
        let bytes = res.body().limit(1 << 20).await.expect("notify body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Publishes a notification and returns its offset.
    pub async fn publish(&self, title: &str) -> String {
        let (status, answer) = self
            .notify(&serde_json::json!({ "title": title }).to_string())
            .await;
        assert_eq!(status, 201, "notify answered {answer}");
        answer["offset"].as_str().expect("offset").to_owned()
    }
}

/// A resume attempt answered (see [`TestHub::resume`]).
pub struct Resumed {
    /// The CONNECT reply's sid.
    pub sid: String,
    /// The CONNECT reply's pid: the one sent if the session was recovered.
    pub pid: String,
    /// The frames written before the CONNECT reply (the replay).
    pub replayed: Vec<String>,
    /// The connection, open.
    pub client: WsClient,
}

/// The offset (last argument) of an event frame.
pub fn event_offset(frame: &str) -> String {
    let args = event_args(frame).unwrap_or_else(|| panic!("expected an event, got {frame}"));
    let last = args.last().and_then(Value::as_str);
    last.unwrap_or_else(|| panic!("no offset in {frame}"))
        .to_owned()
}

/// The offsets of the next `n` notification events `joined` receives (pings answered on the way).
pub async fn notification_offsets(joined: &mut Joined, n: usize) -> Vec<String> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let frame = joined.client.recv_text_answering_pings().await;
        let args = event_args(&frame).unwrap_or_else(|| panic!("expected an event, got {frame}"));
        assert_eq!(args[0], "notification", "{frame}");
        got.push(event_offset(&frame));
    }
    got
}

/// Stream ids (`<ms>-<seq>`) in log order.
pub fn in_log_order(mut ids: Vec<String>) -> Vec<String> {
    let key = |id: &String| {
        let (ms, seq) = id.split_once('-').expect("a stream id");
        (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
    };
    ids.sort_by_key(key);
    ids
}

/// A client joined to `/`.
pub struct Joined {
    /// Its connection.
    pub client: WsClient,
    /// `socket.id`.
    pub sid: String,
    /// The private session id.
    pub pid: String,
    /// The offset the hub handed it right after CONNECT.
    pub offset: String,
}

/// A raw WebSocket client.
pub struct WsClient {
    framed: actix_codec::Framed<awc::BoxedSocket, ws::Codec>,
}

/// What the next thing on the socket was.
#[derive(Debug, PartialEq)]
pub enum Received {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A close frame, with its code if it had one.
    Close(Option<CloseCode>),
    /// The TCP stream ended without a close frame.
    Ended,
}

impl WsClient {
    /// Sends a text frame.
    pub async fn send(&mut self, text: &str) {
        let sent = self.framed.send(ws::Message::Text(text.to_owned().into()));
        within(WAIT_TIMEOUT, "a text frame to be sent", sent)
            .await
            .expect("send text");
    }

    /// Sends a text frame; whether it was sent (false once the hub has closed the connection).
    pub async fn try_send(&mut self, text: &str) -> bool {
        let sent = self.framed.send(ws::Message::Text(text.to_owned().into()));
        within(WAIT_TIMEOUT, "a text frame to be sent", sent)
            .await
            .is_ok()
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        let sent = self.framed.send(ws::Message::Binary(bytes.into()));
        within(WAIT_TIMEOUT, "a binary frame to be sent", sent)
            .await
            .expect("send binary");
    }

    /// Sends a close frame.
    pub async fn close(&mut self) {
        let sent = self
            .framed
            .send(ws::Message::Close(Some(CloseCode::Normal.into())));
        let _ = within(WAIT_TIMEOUT, "a close frame to be sent", sent).await;
    }

    /// The next frame (WebSocket pings are skipped), failing the test after [`RECV_TIMEOUT`].
    pub async fn recv(&mut self) -> Received {
        self.recv_within(RECV_TIMEOUT)
            .await
            .expect("a frame within the timeout")
    }

    /// The next frame, or `None` if nothing came within `limit` (WebSocket pings skipped on the way
    /// count against it).
    pub async fn recv_within(&mut self, limit: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let next = tokio::time::timeout_at(deadline, self.framed.next())
                .await
                .ok()?;
            return Some(match next {
                Some(Ok(Frame::Text(bytes))) => {
                    Received::Text(String::from_utf8(bytes.to_vec()).expect("utf-8"))
                }
                Some(Ok(Frame::Binary(bytes))) => Received::Binary(bytes.to_vec()),
                Some(Ok(Frame::Close(reason))) => Received::Close(reason.map(|r| r.code)),
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => continue,
                Some(Ok(Frame::Continuation(_))) => panic!("the hub does not fragment frames"),
                Some(Err(_)) | None => Received::Ended,
            });
        }
    }

    /// The next frame, which must be text.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Received::Text(text) => text,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame that is not an Engine.IO ping (answered with a pong, as a client does), failing
    /// the test after [`RECV_TIMEOUT`] without a frame or [`WAIT_TIMEOUT`] of nothing but pings.
    pub async fn recv_text_answering_pings(&mut self) -> String {
        let answering = async {
            loop {
                let text = self.recv_text().await;
                if text != "2" {
                    return text;
                }
                self.send("3").await;
            }
        };
        within(
            WAIT_TIMEOUT,
            "a text frame other than an Engine.IO ping (only pings came)",
            answering,
        )
        .await
    }

    /// Reads a CONNECT reply `40{"sid","pid"}` (exactly those keys) and returns both ids.
    pub async fn recv_connect(&mut self) -> (String, String) {
        let text = self.recv_text_answering_pings().await;
        let json = text
            .strip_prefix("40")
            .unwrap_or_else(|| panic!("expected a CONNECT reply, got {text:?}"));
        let reply: Value = serde_json::from_str(json).expect("CONNECT reply is JSON");
        let keys: Vec<&str> = reply
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["sid", "pid"], "CONNECT reply {text}");
        (
            reply["sid"].as_str().unwrap().to_owned(),
            reply["pid"].as_str().unwrap().to_owned(),
        )
    }

    /// Asserts that the hub closes the connection (close frame or end of stream) soon: within
    /// [`WAIT_TIMEOUT`], Engine.IO pings skipped on the way.
    pub async fn expect_closed(&mut self) -> Received {
        let closing = async {
            loop {
                match self.recv().await {
                    Received::Text(text) if text == "2" => continue,
                    Received::Text(text) => {
                        panic!("expected the connection to close, got {text:?}")
                    }
                    Received::Binary(bytes) => {
                        panic!("expected the connection to close, got binary {bytes:?}")
                    }
                    closed => return closed,
                }
            }
        };
        within(
            WAIT_TIMEOUT,
            "the connection to close (only pings came)",
            closing,
        )
        .await
    }
}

/// The argument array of an event frame `42[...]`, if it is one.
pub fn event_args(frame: &str) -> Option<Vec<Value>> {
    let json = frame.strip_prefix("42")?;
    serde_json::from_str::<Vec<Value>>(json).ok()
}
