//! hub-bench: the load tool. It speaks Engine.IO v4 / Socket.IO v5 over WebSocket itself (raw frames,
//! no client library), so the generator costs little per message, and drives any server that speaks
//! the protocol and `POST /notifications/notify`: this hub, or the Node original (benches/node-original).
//!
//! ```text
//! cargo bench --bench hub_bench -- fanout --urls http://127.0.0.1:3001,http://127.0.0.1:3002 \
//!     --clients 1000 --rate 50 --seconds 20 --pids hub=123,hub=456,redis=789
//! scenarios: fanout | idle | jitter | burst      (no arguments: a small smoke run on an in-process hub)
//!            targeted --jwt-secret S              (each client its own user room, one recipient each)
//!            floor [--writer-cpus 1]              (no server: the kernel's share of a delivery)
//!            publish [--batch N]                  (no sockets: POSTs per second to one instance)
//! ```
//! Every notification's body carries `seq=<n> t=<send time µs>`; each client checks it gets every
//! sequence number once and in order, and how long after its POST it arrived. The report is a table
//! and one JSON line (`RESULT {...}`), with the CPU seconds and peak RSS of the processes named by
//! `--pids`, read from /proc.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

#[path = "hub_bench/publish.rs"]
mod publish;

/// Connections the publisher keeps open (all instances together).
const PUBLISH_CONNECTIONS: usize = 64;

#[derive(Debug, Clone)]
struct Options {
    scenario: String,
    urls: Vec<String>,
    clients: usize,
    rate: f64,
    seconds: f64,
    pids: Vec<(String, u32)>,
    sources: Vec<IpAddr>,
    drain: Duration,
    /// soak: whether this process publishes (one does; the others only hold connections).
    publish: bool,
    /// soak: seconds to wait after connecting, before publishing (so every process is connected).
    warmup: f64,
    /// targeted: the hub's HS256 secret; client `i` connects with a token for `sub` `u<i>`.
    jwt_secret: Option<String>,
    /// floor: the CPUs (a `taskset` list) the writer thread runs on; none: wherever the process does.
    writer_cpus: Option<String>,
    /// publish: notifications per request (1: the single form; more: an array body).
    batch: usize,
}

fn parse_options(args: &[String]) -> Options {
    let mut o = Options {
        scenario: args.first().cloned().unwrap_or_default(),
        urls: vec!["http://127.0.0.1:3000".into()],
        clients: 100,
        rate: 50.0,
        seconds: 10.0,
        pids: Vec::new(),
        sources: vec!["127.0.0.1".parse().unwrap()],
        drain: Duration::from_secs(10),
        publish: true,
        warmup: 0.0,
        jwt_secret: None,
        writer_cpus: None,
        batch: 1,
    };
    let mut it = args.iter().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--urls" => o.urls = value.split(',').map(str::to_owned).collect(),
            "--clients" => o.clients = value.parse().expect("--clients"),
            "--rate" => o.rate = value.parse().expect("--rate"),
            "--seconds" => o.seconds = value.parse().expect("--seconds"),
            "--drain" => o.drain = Duration::from_secs_f64(value.parse().expect("--drain")),
            "--publish" => o.publish = value.parse().expect("--publish true|false"),
            "--warmup" => o.warmup = value.parse().expect("--warmup"),
            "--jwt-secret" => o.jwt_secret = Some(value.clone()),
            "--writer-cpus" => o.writer_cpus = Some(value.clone()),
            "--batch" => o.batch = value.parse().expect("--batch"),
            "--pids" => {
                o.pids = value
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (name, pid) = p.split_once('=').expect("--pids name=pid,...");
                        (name.to_owned(), pid.parse().expect("pid"))
                    })
                    .collect()
            }
            "--sources" => {
                o.sources = value
                    .split(',')
                    .map(|s| s.parse().expect("--sources ip,..."))
                    .collect()
            }
            // cargo bench passes --bench to harness=false targets
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// CPU seconds (user + system) and current RSS of a process, from /proc.
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()?;
    Some((ticks / 100.0, rss_kb * 1024))
}

/// Samples the processes' RSS until stopped; keeps the peaks.
struct Sampler {
    pids: Vec<(String, u32)>,
    start_cpu: Vec<f64>,
    start_rss: Vec<u64>,
    peak: Rc<RefCell<Vec<u64>>>,
    stop: Rc<Cell<bool>>,
}

impl Sampler {
    fn start(pids: &[(String, u32)]) -> Sampler {
        let mut pids = pids.to_vec();
        pids.push(("generator".into(), std::process::id()));
        let usage: Vec<(f64, u64)> = pids
            .iter()
            .map(|(_, pid)| proc_usage(*pid).unwrap_or((0.0, 0)))
            .collect();
        let peak = Rc::new(RefCell::new(usage.iter().map(|u| u.1).collect::<Vec<_>>()));
        let stop = Rc::new(Cell::new(false));
        let (p, s, ids) = (peak.clone(), stop.clone(), pids.clone());
        actix_web::rt::spawn(async move {
            while !s.get() {
                for (i, (_, pid)) in ids.iter().enumerate() {
                    if let Some((_, rss)) = proc_usage(*pid) {
                        let mut peak = p.borrow_mut();
                        peak[i] = peak[i].max(rss);
                    }
                }
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Sampler {
            start_cpu: usage.iter().map(|u| u.0).collect(),
            start_rss: usage.iter().map(|u| u.1).collect(),
            pids,
            peak,
            stop,
        }
    }

    /// name → (cpu seconds used, peak rss, rss now, rss at start)
    fn finish(&self) -> Vec<(String, f64, u64, u64, u64)> {
        self.stop.set(true);
        self.pids
            .iter()
            .enumerate()
            .map(|(i, (name, pid))| {
                let (cpu, rss) = proc_usage(*pid).unwrap_or((self.start_cpu[i], 0));
                (
                    name.clone(),
                    cpu - self.start_cpu[i],
                    self.peak.borrow()[i],
                    rss,
                    self.start_rss[i],
                )
            })
            .collect()
    }
}

/// What one client saw.
#[derive(Default, Debug)]
struct Seen {
    connected: bool,
    seqs: Vec<u32>,
    /// The log id (`<ms>-<seq>`) of the last event, and how many events came after one with a
    /// larger id: out of log order. (Sequence numbers cannot tell: concurrent POSTs to two
    /// instances reach the log in either order.)
    last_id: Option<(u64, u64)>,
    out_of_order: u32,
    latencies_us: Vec<u32>,
    reconnects: u32,
    recovered: u32,
    replay_us: Vec<u32>,
    /// Handshakes the hub refused with 503 or 429 (an admission cap) that this client retried.
    refusals: u32,
    errors: Vec<String>,
}

impl Seen {
    /// Records one text packet if it is an event (`42[…]`): its log id (the offset, the last string
    /// argument) for the order check, its `seq=` and its latency from the ` t=` (µs) in its body.
    /// Returns where the offset is in `text`. The fanout's clients and the floor's readers both
    /// record every frame with this, so the generator does the same work per delivery in both.
    fn record_event(&mut self, text: &str) -> Option<std::ops::Range<usize>> {
        if !text.starts_with("42") {
            return None;
        }
        let mut offset = None;
        if let Some(end) = text.rfind("\"]") {
            if let Some(start) = text[..end].rfind('"') {
                let id = text[start + 1..end]
                    .split_once('-')
                    .and_then(|(ms, seq)| Some((ms.parse().ok()?, seq.parse().ok()?)));
                if let (Some(id), Some(last)) = (id, self.last_id) {
                    self.out_of_order += u32::from(id < last);
                }
                self.last_id = id.or(self.last_id);
                offset = Some(start + 1..end);
            }
        }
        let number_after = |key: &str| -> Option<u64> {
            let at = text.find(key)? + key.len();
            let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
            text[at..at + digits].parse().ok()
        };
        if let (Some(seq), Some(sent)) = (number_after("seq="), number_after(" t=")) {
            self.seqs.push(seq as u32);
            self.latencies_us
                .push(now_us().saturating_sub(sent).min(u32::MAX as u64) as u32);
        }
        offset
    }
}

/// One raw Socket.IO client over a WebSocket written by hand on a TCP socket: reads are batched
/// (many frames per read) and parsed in place, so the generator costs little per message.
struct Client {
    url: String,
    source: IpAddr,
    seen: Rc<RefCell<Seen>>,
    pid: Option<String>,
    offset: Option<String>,
    sid: Option<String>,
    /// A connect token (JWT), sent as `auth.token` with every CONNECT.
    token: Option<String>,
}

/// A client-side WebSocket: frames from the server are unmasked, frames to it are masked.
struct Conn {
    tcp: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

/// A frame from the server, borrowed from the connection's read buffer (no copy per frame).
enum WsIn<'a> {
    Text(std::borrow::Cow<'a, str>),
    Ping(&'a [u8]),
    Other,
    Closed,
}

/// Leaves the choice of the local port to `connect` (Linux `IP_BIND_ADDRESS_NO_PORT`), where the
/// kernel picks one free for this destination. A `bind` to port 0 must pick a port free on the
/// source address for every destination: with tens of thousands of sockets and the TIME_WAITs of
/// the run before on it, that search took most of the load tool's CPU (perf: `inet_bind2_bucket_find`,
/// `inet_bhash2_conflict`), and connected clients waited past the hub's 5 s request-head timeout
/// for the request their thread had no time to write (408). Elsewhere: a plain `bind`.
fn bind_port_at_connect(socket: &TcpSocket) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor and a c_int option of the right size. Its result is
        // not needed: a kernel without the option leaves a plain bind, slower but correct.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

/// A TCP connection to `addr` from the loopback address `source` (the load is spread over
/// 127.0.0.1-8 for ports), without Nagle's delay.
async fn connect_from(addr: std::net::SocketAddr, source: IpAddr) -> Result<TcpStream, String> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    bind_port_at_connect(&socket);
    socket
        .bind(std::net::SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let tcp = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

impl Conn {
    async fn open(url: &str, source: IpAddr) -> Result<Conn, String> {
        let host = url.trim_start_matches("http://").trim_end_matches('/');
        let addr: std::net::SocketAddr = host.parse().map_err(|e| format!("{host}: {e}"))?;
        let mut tcp = connect_from(addr, source).await?;
        let request = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut conn = Conn {
            tcp,
            buf: Vec::with_capacity(4096),
            start: 0,
        };
        loop {
            if let Some(end) = conn.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                if !conn.buf.starts_with(b"HTTP/1.1 101") {
                    return Err(format!(
                        "upgrade refused: {}",
                        String::from_utf8_lossy(&conn.buf[..end])
                    ));
                }
                conn.start = end + 4;
                return Ok(conn);
            }
            conn.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), String> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        // Into spare capacity: no zeroing per read.
        self.buf.reserve(16 * 1024);
        let n = self
            .tcp
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed by the server".into());
        }
        Ok(())
    }

    /// A connection already open (the floor's: no HTTP upgrade, frames from the first byte).
    fn raw(tcp: TcpStream) -> Conn {
        Conn {
            tcp,
            buf: Vec::with_capacity(4096),
            start: 0,
        }
    }

    /// Where the next complete frame already read is: its opcode, its payload's range in `buf`,
    /// and where it ends.
    fn next_frame(&self) -> Option<(u8, std::ops::Range<usize>, usize)> {
        let b = &self.buf[self.start..];
        if b.len() < 2 {
            return None;
        }
        let (opcode, len7) = (b[0] & 0x0f, (b[1] & 0x7f) as usize);
        let (len, header) = match len7 {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().ok()?) as usize, 10),
            126 | 127 => return None,
            n => (n, 2),
        };
        if b.len() < header + len {
            return None;
        }
        let payload = self.start + header..self.start + header + len;
        let end = payload.end;
        Some((opcode, payload, end))
    }

    /// The next frame, read from the socket when the buffer has none complete.
    async fn next(&mut self) -> Result<WsIn<'_>, String> {
        loop {
            if let Some((opcode, payload, end)) = self.next_frame() {
                self.start = end;
                let payload = &self.buf[payload];
                return Ok(match opcode {
                    1 => WsIn::Text(String::from_utf8_lossy(payload)),
                    9 => WsIn::Ping(payload),
                    8 => WsIn::Closed,
                    _ => WsIn::Other,
                });
            }
            self.fill().await?;
        }
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) -> Result<(), String> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend((n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend((n as u64).to_be_bytes());
            }
        }
        frame.extend(mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tcp.write_all(&frame).await.map_err(|e| e.to_string())
    }

    async fn text(&mut self, text: &str) -> Result<(), String> {
        self.send(1, text.as_bytes()).await
    }

    async fn close(&mut self) {
        let _ = self.send(8, &[]).await;
        let _ = self.tcp.shutdown().await;
    }
}

impl Client {
    /// Connects; a handshake refused by an admission cap (503 past `--max-unjoined` or
    /// `--max-sessions`, 429 past a per-address cap) is tried again as socket.io-client's
    /// reconnection does (its defaults: 1 s doubling to at most 5 s, each ±50 %), at most
    /// [`REFUSAL_RETRIES`] times. A ramp of thousands of clients in a second or two passes the
    /// 10,000 sessions an instance lets wait for their CONNECT; real clients come back, so these do.
    async fn connect_or_retry(&mut self, rng: &mut Rng) -> Result<Conn, String> {
        let mut retries = 0;
        loop {
            match self.connect().await {
                Err(err) if retries < REFUSAL_RETRIES && is_admission_refusal(&err) => {
                    let delay = (1000u64 << retries).min(5000);
                    retries += 1;
                    self.seen.borrow_mut().refusals += 1;
                    actix_web::rt::time::sleep(Duration::from_millis(
                        rng.between(delay / 2, delay * 3 / 2),
                    ))
                    .await;
                }
                other => return other,
            }
        }
    }

    /// Connects (resuming when it has a pid and offset) and reads up to the CONNECT reply.
    async fn connect(&mut self) -> Result<Conn, String> {
        let started = Instant::now();
        let mut conn = Conn::open(&self.url, self.source).await?;
        let open = next_text(&mut conn).await?;
        if !open.starts_with('0') {
            return Err(format!("expected open packet, got {open}"));
        }
        let mut auth = serde_json::Map::new();
        if let (Some(pid), Some(offset)) = (&self.pid, &self.offset) {
            auth.insert("pid".into(), json!(pid));
            auth.insert("offset".into(), json!(offset));
        }
        if let Some(token) = &self.token {
            auth.insert("token".into(), json!(token));
        }
        let connect = if auth.is_empty() {
            "40".to_owned()
        } else {
            format!("40{}", Value::Object(auth))
        };
        conn.text(&connect).await?;
        let resuming = self.pid.is_some();
        loop {
            let text = next_text(&mut conn).await?;
            if text == "2" {
                conn.text("3").await?;
            } else if let Some(reply) = text.strip_prefix("40") {
                let reply: Value = serde_json::from_str(reply).map_err(|e| e.to_string())?;
                let sid = reply["sid"].as_str().map(str::to_owned);
                if resuming {
                    let mut seen = self.seen.borrow_mut();
                    seen.reconnects += 1;
                    if sid.is_some() && sid == self.sid {
                        seen.recovered += 1;
                    }
                    seen.replay_us.push(started.elapsed().as_micros() as u32);
                }
                self.sid = sid;
                self.pid = reply["pid"].as_str().map(str::to_owned);
                return Ok(conn);
            } else {
                self.on_text(&text); // replayed events come before the CONNECT reply
            }
        }
    }

    fn on_text(&mut self, text: &str) {
        let offset = self.seen.borrow_mut().record_event(text);
        if let Some(offset) = offset {
            // Kept for the resume; the buffer is reused, not allocated per event.
            let kept = self.offset.get_or_insert_with(String::new);
            kept.clear();
            kept.push_str(&text[offset]);
        }
    }

    /// Reads until `stop`, answering pings; with `jitter`, drops the connection every ~15 s for
    /// ~2 s and resumes, half of the clients on the next instance.
    async fn run(mut self, stop: Rc<Cell<bool>>, jitter: Option<(Vec<String>, usize)>) {
        let mut rng = Rng::new(self.seen.as_ptr() as u64);
        let mut conn = match self.connect_or_retry(&mut rng).await {
            Ok(conn) => conn,
            Err(err) => {
                self.seen.borrow_mut().errors.push(err);
                return;
            }
        };
        self.seen.borrow_mut().connected = true;
        let mut next_drop = jitter
            .as_ref()
            .map(|_| Instant::now() + Duration::from_millis(rng.between(5_000, 25_000)));
        while !stop.get() {
            if let (Some(at), Some((urls, index))) = (next_drop, jitter.as_ref()) {
                if Instant::now() >= at {
                    conn.close().await;
                    actix_web::rt::time::sleep(Duration::from_millis(rng.between(1_500, 2_500)))
                        .await;
                    if index % 2 == 1 {
                        let here = urls.iter().position(|u| *u == self.url).unwrap_or(0);
                        self.url = urls[(here + 1) % urls.len()].clone();
                    }
                    match self.connect().await {
                        Ok(c) => conn = c,
                        Err(err) => {
                            self.seen.borrow_mut().errors.push(err);
                            return;
                        }
                    }
                    next_drop =
                        Some(Instant::now() + Duration::from_millis(rng.between(12_000, 18_000)));
                }
            }
            // Jittering clients wake up to drop on time; the others just read (a timer per read
            // would cost more than the read).
            let next = if next_drop.is_some() {
                match tokio::time::timeout(Duration::from_millis(200), conn.next()).await {
                    Err(_) => continue,
                    Ok(next) => next,
                }
            } else {
                conn.next().await
            };
            // The frame borrows the connection's buffer: answers are written once it is let go.
            let answer = match next {
                Ok(WsIn::Text(text)) if text == "2" => Some((1, b"3".to_vec())),
                Ok(WsIn::Text(text)) => {
                    self.on_text(&text);
                    None
                }
                Ok(WsIn::Ping(payload)) => Some((10, payload.to_vec())),
                Ok(WsIn::Other) => None,
                Ok(WsIn::Closed) | Err(_) => {
                    self.seen
                        .borrow_mut()
                        .errors
                        .push("closed by the server".into());
                    return;
                }
            };
            if let Some((opcode, payload)) = answer {
                let _ = conn.send(opcode, &payload).await;
            }
        }
        conn.close().await;
    }
}

/// How often a client tries again after an admission cap refused its handshake.
const REFUSAL_RETRIES: u32 = 5;

/// Whether `err` (from [`Client::connect`]) is an admission cap's refusal: 503 or 429 to the upgrade.
fn is_admission_refusal(err: &str) -> bool {
    ["503", "429"]
        .iter()
        .any(|code| err.starts_with(&format!("upgrade refused: HTTP/1.1 {code} ")))
}

async fn next_text(conn: &mut Conn) -> Result<String, String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), conn.next()).await {
            Err(_) => return Err("timed out".into()),
            Ok(Ok(WsIn::Text(text))) => return Ok(text.into_owned()),
            Ok(Ok(WsIn::Closed)) => return Err("closed".into()),
            Ok(Ok(_)) => continue,
            Ok(Err(err)) => return Err(err),
        }
    }
}

/// xorshift: enough randomness for spreading drops, without a crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ now_us() ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low).max(1)
    }
}

/// The publisher's HTTP client: a bounded pool of keep-alive connections, so a burst queues on them.
/// (An unbounded pool opened a connection per POST in flight; binding each to a source address made
/// the kernel search the whole port range per connection: seconds of generator CPU, refused POSTs.)
fn publisher() -> awc::Client {
    let connector = awc::Connector::new()
        .limit(PUBLISH_CONNECTIONS)
        .timeout(Duration::from_secs(30));
    awc::Client::builder()
        .connector(connector)
        .timeout(Duration::from_secs(30))
        .finish()
}

/// Opens the clients, spread over the URLs and source addresses, and waits until all connected.
async fn open_clients(o: &Options, stop: &Rc<Cell<bool>>, jitter: bool) -> Vec<Rc<RefCell<Seen>>> {
    let mut seen = Vec::with_capacity(o.clients);
    for i in 0..o.clients {
        let s = Rc::new(RefCell::new(Seen::default()));
        seen.push(s.clone());
        let client = Client {
            url: o.urls[i % o.urls.len()].clone(),
            // Every source on every instance (`i % sources` alone gives each instance half of them).
            source: o.sources[(i / o.urls.len()) % o.sources.len()],
            seen: s,
            pid: None,
            offset: None,
            sid: None,
            token: o.jwt_secret.as_deref().map(|secret| token_for(secret, i)),
        };
        let jitter = jitter.then(|| (o.urls.clone(), i));
        actix_web::rt::spawn(client.run(stop.clone(), jitter));
        if i % 200 == 199 {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await; // no SYN storm
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let (up, failed) = seen.iter().fold((0, 0), |(u, f), s| {
            let s = s.borrow();
            (
                u + s.connected as usize,
                f + (!s.connected && !s.errors.is_empty()) as usize,
            )
        });
        if up + failed == o.clients {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

/// A connect token for client `i` (`sub` `u<i>`, valid for a day), signed with the hub's secret.
fn token_for(secret: &str, i: usize) -> String {
    let claims = realtime_hub::token::Mint {
        sub: &format!("u{i}"),
        ttl: Duration::from_secs(86_400),
        scope: "",
        audience: None,
        issuer: None,
        rooms: &[],
    };
    realtime_hub::token::mint(&realtime_hub::config::Secret::from(secret), &claims)
        .expect("an HS256 token signs")
}

/// Publishes at `rate` per second for `seconds` (open loop), spread over the URLs. Returns which
/// sequence numbers were accepted (201); the others were refused.
async fn publish(o: &Options, rate: f64, seconds: f64, first_seq: u32) -> Vec<bool> {
    publish_to(o, rate, seconds, first_seq, None).await
}

/// [`publish`], each notification `n` to `user:u<to[n]>` when `to` is given, else to everyone.
async fn publish_to(
    o: &Options,
    rate: f64,
    seconds: f64,
    first_seq: u32,
    to: Option<&[usize]>,
) -> Vec<bool> {
    let http = publisher();
    let total = (rate * seconds).round() as u32;
    let accepted = Rc::new(RefCell::new(vec![false; total as usize]));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..total {
        let due = started + Duration::from_secs_f64(n as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            actix_web::rt::time::sleep(wait).await;
        }
        let url = format!("{}/notifications/notify", o.urls[n as usize % o.urls.len()]);
        let mut body =
            json!({ "title": "bench", "body": format!("seq={} t={}", first_seq + n, now_us()) });
        if let Some(to) = to {
            body["to"] = json!(format!("user:u{}", to[n as usize]));
        }
        let body = body.to_string();
        let (http, accepted) = (http.clone(), accepted.clone());
        tasks.push(actix_web::rt::spawn(async move {
            // The answer's body is read to its end: awc returns a connection to its pool only
            // then, and drops (closes) it otherwise, so every POST would cost the server a TCP
            // accept and close, which no keep-alive publisher makes it pay.
            let ok = match http
                .post(url)
                .insert_header(("content-type", "application/json"))
                .send_body(body)
                .await
            {
                Ok(mut answer) => answer.body().await.is_ok() && answer.status().as_u16() == 201,
                Err(_) => false,
            };
            accepted.borrow_mut()[n as usize] = ok;
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let accepted = accepted.borrow().clone();
    accepted
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Delivery statistics over every client: `accepted[i]` says whether sequence number `i` was published.
fn delivery_report(seen: &[Rc<RefCell<Seen>>], accepted: &[bool]) -> Value {
    let (expected_seqs, first_seq) = (accepted.len() as u32, 0u32);
    let mut latencies = Vec::new();
    let (mut lost, mut duplicated, mut reordered, mut delivered) = (0u64, 0u64, 0u64, 0u64);
    let (mut reconnects, mut recovered) = (0u64, 0u64);
    let mut replay = Vec::new();
    let mut connected = 0;
    let mut refusals = 0u64;
    let mut errors: HashMap<String, u32> = HashMap::new();
    for s in seen {
        let s = s.borrow();
        connected += s.connected as u64;
        refusals += s.refusals as u64;
        for e in &s.errors {
            *errors.entry(e.chars().take(60).collect()).or_default() += 1;
        }
        if !s.connected {
            continue;
        }
        let mine: Vec<u32> = s.seqs.iter().copied().filter(|q| *q >= first_seq).collect();
        delivered += mine.len() as u64;
        let mut counts = vec![0u32; expected_seqs as usize];
        for q in &mine {
            let i = (q - first_seq) as usize;
            if i < counts.len() {
                counts[i] += 1;
            }
        }
        reordered += s.out_of_order as u64;
        lost += counts
            .iter()
            .zip(accepted)
            .filter(|(c, ok)| **c == 0 && **ok)
            .count() as u64;
        duplicated += counts
            .iter()
            .map(|c| c.saturating_sub(1) as u64)
            .sum::<u64>();
        latencies.extend(&s.latencies_us);
        reconnects += s.reconnects as u64;
        recovered += s.recovered as u64;
        replay.extend(&s.replay_us);
    }
    latencies.sort_unstable();
    replay.sort_unstable();
    json!({
        "connected": connected,
        "delivered": delivered,
        "lost": lost,
        "duplicated": duplicated,
        "reordered": reordered,
        "reconnects": reconnects,
        "recovered": recovered,
        "latency_ms": {
            "p50": percentile(&latencies, 50.0), "p90": percentile(&latencies, 90.0),
            "p99": percentile(&latencies, 99.0), "p99_9": percentile(&latencies, 99.9),
            "max": latencies.last().map(|l| *l as f64 / 1000.0).unwrap_or(f64::NAN),
        },
        "replay_ms": { "p50": percentile(&replay, 50.0), "p99": percentile(&replay, 99.0) },
        "handshakes_refused_then_retried": refusals,
        "errors": errors,
    })
}

fn process_report(usage: &[(String, f64, u64, u64, u64)]) -> Value {
    Value::Object(
        usage
            .iter()
            .enumerate()
            .map(|(i, (name, cpu, peak, now, start))| {
                (format!("{name}{i}"), json!({ "name": name, "cpu_s": cpu, "peak_rss": peak, "rss": now, "rss_start": start }))
            })
            .collect(),
    )
}

fn hub_cpu(usage: &[(String, f64, u64, u64, u64)]) -> f64 {
    usage.iter().filter(|u| u.0 == "hub").map(|u| u.1).sum()
}

async fn wait_delivered(seen: &[Rc<RefCell<Seen>>], expected: u64, drain: Duration) {
    let deadline = Instant::now() + drain;
    while Instant::now() < deadline {
        let got: u64 = seen.iter().map(|s| s.borrow().seqs.len() as u64).sum();
        if got >= expected {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// fanout and burst: N clients, notifications at a rate, every delivery checked.
async fn fanout(o: &Options, burst: bool) -> Value {
    let stop = Rc::new(Cell::new(false));
    let seen = open_clients(o, &stop, false).await;
    let connected = seen.iter().filter(|s| s.borrow().connected).count() as u64;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let sampler = Sampler::start(&o.pids);
    let started = Instant::now();
    let accepted = if burst {
        // A burst far above the sustainable rate, then the normal rate: what happens after.
        let mut accepted = publish(o, o.rate * 20.0, 1.0, 0).await;
        accepted.extend(publish(o, o.rate, o.seconds, accepted.len() as u32).await);
        accepted
    } else {
        publish(o, o.rate, o.seconds, 0).await
    };
    let ok = accepted.iter().filter(|a| **a).count() as u64;
    wait_delivered(&seen, connected * ok, o.drain).await;
    let elapsed = started.elapsed().as_secs_f64();
    let usage = sampler.finish();
    stop.set(true);
    let mut report = delivery_report(&seen, &accepted);
    let delivered = report["delivered"].as_u64().unwrap_or(0);
    report["scenario"] = json!(if burst { "burst" } else { "fanout" });
    report["clients"] = json!(o.clients);
    report["rate"] = json!(o.rate);
    report["accepted"] = json!(ok);
    report["refused"] = json!(accepted.len() as u64 - ok);
    report["deliveries_per_s"] = json!(delivered as f64 / elapsed);
    report["hub_cpu_us_per_delivery"] = json!(hub_cpu(&usage) * 1e6 / delivered.max(1) as f64);
    report["processes"] = process_report(&usage);
    report
}

/// targeted: N clients, client `i` connected as user `u<i>` (so alone in room `user:u<i>`), and
/// notifications at a rate, each to one random user: every recipient checked (its own once, nobody
/// else's). The hub's CPU while publishing, less its CPU over as long an idle stretch just before
/// (heartbeats of N connections), per notification: what one targeted notification costs, which
/// should not grow with N.
async fn targeted(o: &Options) -> Value {
    assert!(
        o.jwt_secret.is_some(),
        "targeted needs --jwt-secret (the hub's HUB_JWT_SECRET)"
    );
    let stop = Rc::new(Cell::new(false));
    let seen = open_clients(o, &stop, false).await;
    let connected = seen.iter().filter(|s| s.borrow().connected).count() as u64;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let idle = Sampler::start(&o.pids);
    actix_web::rt::time::sleep(Duration::from_secs_f64(o.seconds)).await;
    let idle_cpu = hub_cpu(&idle.finish());
    let total = (o.rate * o.seconds).round() as usize;
    let mut rng = Rng::new(total as u64);
    let to: Vec<usize> = (0..total)
        .map(|_| rng.between(0, o.clients as u64) as usize)
        .collect();
    let sampler = Sampler::start(&o.pids);
    let started = Instant::now();
    let accepted = publish_to(o, o.rate, o.seconds, 0, Some(&to)).await;
    let ok = accepted.iter().filter(|a| **a).count() as u64;
    let expected: u64 = (0..total)
        .filter(|&n| accepted[n] && seen[to[n]].borrow().connected)
        .count() as u64;
    wait_delivered(&seen, expected, o.drain).await;
    let usage = sampler.finish();
    let elapsed = started.elapsed().as_secs_f64();
    stop.set(true);
    let (mut lost, mut misdelivered, mut duplicated, mut delivered) = (0u64, 0u64, 0u64, 0u64);
    let mut latencies = Vec::new();
    let mut mine: Vec<Vec<u32>> = vec![Vec::new(); seen.len()];
    for (n, &k) in to.iter().enumerate() {
        if accepted[n] {
            mine[k].push(n as u32);
        }
    }
    for (i, s) in seen.iter().enumerate() {
        let s = s.borrow();
        if !s.connected {
            continue;
        }
        let mut got = s.seqs.clone();
        delivered += got.len() as u64;
        got.sort_unstable();
        let before = got.len();
        got.dedup();
        duplicated += (before - got.len()) as u64;
        misdelivered += got
            .iter()
            .filter(|q| mine[i].binary_search(q).is_err())
            .count() as u64;
        lost += mine[i]
            .iter()
            .filter(|q| got.binary_search(q).is_err())
            .count() as u64;
        latencies.extend(&s.latencies_us);
    }
    latencies.sort_unstable();
    let busy_cpu = hub_cpu(&usage);
    json!({
        "scenario": "targeted",
        "clients": o.clients,
        "connected": connected,
        "rate": o.rate,
        "accepted": ok,
        "refused": accepted.len() as u64 - ok,
        "expected": expected,
        "delivered": delivered,
        "lost": lost,
        "misdelivered": misdelivered,
        "duplicated": duplicated,
        "latency_ms": {
            "p50": percentile(&latencies, 50.0), "p90": percentile(&latencies, 90.0),
            "p99": percentile(&latencies, 99.0), "p99_9": percentile(&latencies, 99.9),
        },
        "hub_cpu_idle_s": idle_cpu,
        "hub_cpu_s": busy_cpu,
        // The stretch the processes' CPU seconds were measured over: publishing and the drain.
        "elapsed_s": elapsed,
        "hub_cpu_us_per_notification": (busy_cpu - idle_cpu).max(0.0) * 1e6 / ok.max(1) as f64,
        "processes": process_report(&usage),
    })
}

/// idle: N connections that only answer pings; the hub's RSS growth per connection.
async fn idle(o: &Options) -> Value {
    let before: Vec<u64> = o
        .pids
        .iter()
        .map(|(_, p)| proc_usage(*p).map(|u| u.1).unwrap_or(0))
        .collect();
    let stop = Rc::new(Cell::new(false));
    let seen = open_clients(o, &stop, false).await;
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    let after: Vec<u64> = o
        .pids
        .iter()
        .map(|(_, p)| proc_usage(*p).map(|u| u.1).unwrap_or(0))
        .collect();
    let connected = seen.iter().filter(|s| s.borrow().connected).count() as u64;
    stop.set(true);
    let growth: i64 = o
        .pids
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|((name, _), _)| name == "hub")
        .map(|(_, (b, a))| *a as i64 - *b as i64)
        .sum();
    json!({
        "scenario": "idle",
        "clients": o.clients,
        "connected": connected,
        "hub_rss_growth": growth,
        "hub_bytes_per_connection": growth as f64 / connected.max(1) as f64,
    })
}

/// jitter: clients drop every ~15 s for ~2 s and resume, half on another instance, while
/// notifications flow.
async fn jitter(o: &Options) -> Value {
    let stop = Rc::new(Cell::new(false));
    let seen = open_clients(o, &stop, true).await;
    let connected = seen.iter().filter(|s| s.borrow().connected).count() as u64;
    let sampler = Sampler::start(&o.pids);
    let accepted = publish(o, o.rate, o.seconds, 0).await;
    let ok = accepted.iter().filter(|a| **a).count() as u64;
    wait_delivered(&seen, connected * ok, o.drain).await;
    let usage = sampler.finish();
    stop.set(true);
    let mut report = delivery_report(&seen, &accepted);
    report["scenario"] = json!("jitter");
    report["accepted"] = json!(ok);
    report["refused"] = json!(accepted.len() as u64 - ok);
    report["processes"] = process_report(&usage);
    report
}

/// soak: hold N connections for the whole run while notifications trickle; at the end, which clients
/// are still connected and what each received. One process publishes; `scripts/soak.sh` adds the
/// processes up.
async fn soak(o: &Options) -> Value {
    let stop = Rc::new(Cell::new(false));
    let seen = open_clients(o, &stop, false).await;
    let connected = seen.iter().filter(|s| s.borrow().connected).count() as u64;
    let sampler = Sampler::start(&o.pids);
    actix_web::rt::time::sleep(Duration::from_secs_f64(o.warmup)).await;
    let total = (o.rate * o.seconds).round() as usize;
    let accepted = if o.publish {
        publish(o, o.rate, o.seconds, 0).await
    } else {
        actix_web::rt::time::sleep(Duration::from_secs_f64(o.seconds)).await;
        vec![true; total]
    };
    let ok = accepted.iter().filter(|a| **a).count() as u64;
    wait_delivered(&seen, connected * ok, o.drain).await;
    let usage = sampler.finish();
    let still = seen
        .iter()
        .filter(|s| s.borrow().connected && s.borrow().errors.is_empty())
        .count();
    stop.set(true);
    let mut report = delivery_report(&seen, &accepted);
    report["scenario"] = json!("soak");
    report["clients"] = json!(o.clients);
    report["still_connected"] = json!(still);
    report["published"] = json!(o.publish);
    report["accepted"] = json!(ok);
    report["refused"] = json!(accepted.len() as u64 - ok);
    report["processes"] = process_report(&usage);
    report
}

fn print(report: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(report).unwrap_or_default()
    );
    println!("RESULT {report}");
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    actix_web::rt::System::new().block_on(async move {
        if args.is_empty() {
            return smoke().await;
        }
        let o = parse_options(&args);
        let report = match o.scenario.as_str() {
            "fanout" => fanout(&o, false).await,
            "burst" => fanout(&o, true).await,
            "idle" => idle(&o).await,
            "jitter" => jitter(&o).await,
            "soak" => soak(&o).await,
            "floor" => floor(&o).await,
            "targeted" => targeted(&o).await,
            "publish" => publish::publish(&o).await,
            other => panic!(
                "unknown scenario {other:?}: fanout | idle | jitter | burst | targeted | floor | publish"
            ),
        };
        print(&report);
    });
}

/// Round `round`'s text frame, the hub's notification frame in shape and size (an id, title,
/// body and timestamp, then the offset), as a server sends it (unmasked): the round as `seq=`, its
/// due time (µs since the epoch) as ` t=`, an offset that grows with the round, so the floor's
/// readers parse and record it exactly as fanout's clients do a notification
/// ([`Seen::record_event`]).
fn floor_frame(out: &mut Vec<u8>, round: u64, due_us: u64) {
    let ms = due_us / 1000;
    let payload = format!(
        r#"42["notification",{{"id":"00000000-0000-4000-8000-{round:012}","title":"bench","body":"seq={round} t={due_us}","timestamp":{ms}}},"{ms}-{round}"]"#
    );
    // RFC 6455 §5.2: FIN + text; the 16-bit length form from 126 bytes (the hub's frames are ~160).
    out.push(0x81);
    match u16::try_from(payload.len()) {
        Ok(len) if len < 126 => out.push(len as u8),
        Ok(len) => {
            out.push(126);
            out.extend_from_slice(&len.to_be_bytes());
        }
        Err(_) => unreachable!("a notification frame is far below 64 KiB"),
    }
    out.extend_from_slice(payload.as_bytes());
}

/// CPU seconds of the calling thread, from /proc.
fn thread_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// When round `round` of the floor's writes is due: `start` plus `round / rate` seconds (the writer
/// and the readers compute it alike).
fn floor_due(start: Instant, round: u64, rate: f64) -> Instant {
    start + Duration::from_secs_f64(round as f64 / rate)
}

/// Pins the calling thread to `cpus` (a `taskset` CPU list such as `1` or `0,1`) with `taskset -p`
/// on its thread id, so a thread can sit apart from the rest of its process.
fn pin_this_thread(cpus: &str) {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    let tid = link
        .file_name()
        .and_then(|t| t.to_str())
        .expect("a thread id")
        .to_owned();
    let status = std::process::Command::new("taskset")
        .args(["-p", "-c", cpus, &tid])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("taskset runs (util-linux)");
    assert!(status.success(), "taskset -p -c {cpus} {tid} failed");
}

/// floor: the kernel's share of one delivery on this machine, with no server: a thread writes one
/// frame of the hub's size to each of `--clients` loopback TCP connections per round, `--rate`
/// rounds per second for `--seconds`, while this process reads them as the fanout clients do. The
/// writer's CPU per write is the least any server pays per delivery when every delivery is its own
/// `write` (at 50 notifications/s each client gets one frame per 20 ms: nothing to coalesce).
///
/// Timed and checked as fanout is: each round's frame carries its due time (`floor_due`, as µs
/// since the epoch, as a notification carries the time it was posted) and its sequence number,
/// and the readers parse every frame and record it with the same code as fanout's clients
/// (`Conn::next`, [`Seen::record_event`]): latency is receipt − due, and lost, duplicated and
/// reordered are counted the same way. So the floor's generator does per delivery what fanout's
/// does, and its highest rate is the kernel's with this generator. A writer that falls behind
/// writes every round due by then in one `write` per connection, as a server with a queue would,
/// so at high rates the figure is the kernel's ceiling, not the ceiling of one `write` per frame.
/// `--writer-cpus` pins the writer thread (`taskset` list) apart from the readers.
async fn floor(o: &Options) -> Value {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    let (clients, rate, seconds) = (o.clients, o.rate, o.seconds);
    let rounds = (rate * seconds).round() as u64;
    let writer_cpus = o.writer_cpus.clone();
    let writer = std::thread::spawn(move || {
        if let Some(cpus) = writer_cpus {
            pin_this_thread(&cpus);
        }
        let mut sockets = Vec::with_capacity(clients);
        while sockets.len() < clients {
            let (socket, _) = listener.accept().expect("accept");
            socket.set_nodelay(true).expect("nodelay");
            sockets.push(socket);
        }
        std::thread::sleep(Duration::from_millis(300));
        let (mut done, mut writes, mut batch) = (0u64, 0u64, Vec::new());
        let cpu_before = thread_cpu_s();
        let (start, start_us) = (Instant::now(), now_us());
        let due_us = |round: u64| start_us + (round as f64 * 1e6 / rate) as u64;
        while done < rounds {
            let due = floor_due(start, done, rate);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            // Every round due by now (at least the next one), in one write per connection.
            let due_by_now = (start.elapsed().as_secs_f64() * rate).floor() as u64 + 1;
            let upto = due_by_now.clamp(done + 1, rounds);
            batch.clear();
            for round in done..upto {
                floor_frame(&mut batch, round, due_us(round));
            }
            for socket in &mut sockets {
                std::io::Write::write_all(socket, &batch).expect("write");
            }
            writes += clients as u64;
            done = upto;
        }
        let cpu = thread_cpu_s() - cpu_before;
        (rounds * clients as u64, writes, cpu, start)
    });
    let mut seen = Vec::with_capacity(clients);
    for _ in 0..clients {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let _ = tcp.set_nodelay(true);
        let mine = Rc::new(RefCell::new(Seen {
            connected: true,
            ..Seen::default()
        }));
        seen.push(mine.clone());
        actix_web::rt::spawn(async move {
            let mut conn = Conn::raw(tcp);
            // Until the writer is done and its sockets close.
            while let Ok(frame) = conn.next().await {
                if let WsIn::Text(text) = frame {
                    mine.borrow_mut().record_event(&text);
                }
            }
        });
    }
    let received = || {
        seen.iter()
            .map(|s| s.borrow().seqs.len() as u64)
            .sum::<u64>()
    };
    let cpu_before = proc_usage(std::process::id()).map_or(0.0, |u| u.0);
    while !writer.is_finished() {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let (frames, writes, writer_cpu, start) = writer.join().expect("writer thread");
    let deadline = Instant::now() + o.drain;
    while received() < frames && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    // From the first round's due time, as fanout counts from its first notification.
    let elapsed = start.elapsed().as_secs_f64();
    let process_cpu = proc_usage(std::process::id()).map_or(0.0, |u| u.0) - cpu_before;
    let mut report = delivery_report(&seen, &vec![true; rounds as usize]);
    let delivered = report["delivered"].as_u64().unwrap_or(0);
    report["scenario"] = json!("floor");
    report["clients"] = json!(clients);
    report["rate"] = json!(rate);
    report["frames"] = json!(frames);
    report["writes"] = json!(writes);
    report["all_received"] = json!(delivered == frames);
    report["deliveries_per_s"] = json!(delivered as f64 / elapsed);
    report["writer_cpu_us_per_write"] = json!(writer_cpu / writes.max(1) as f64 * 1e6);
    report["writer_cpu_us_per_frame"] = json!(writer_cpu / frames.max(1) as f64 * 1e6);
    report["reader_cpu_us_per_read"] =
        json!((process_cpu - writer_cpu).max(0.0) / frames.max(1) as f64 * 1e6);
    report
}

/// No arguments (as `cargo test --all-targets` runs it): a small fanout against an in-process hub,
/// failing loudly if anything is lost, so the tool itself stays correct.
async fn smoke() {
    let config = realtime_hub::config::Config {
        host: "127.0.0.1".into(),
        port: 0,
        ..realtime_hub::config::Config::default()
    };
    let hub = realtime_hub::start(&config).expect("hub starts");
    let url = format!("http://{}", hub.addr);
    actix_web::rt::spawn(hub.server);
    let o = Options {
        scenario: "fanout".into(),
        urls: vec![url],
        clients: 10,
        rate: 100.0,
        seconds: 0.3,
        pids: vec![("hub".into(), std::process::id())],
        sources: vec!["127.0.0.1".parse().unwrap()],
        drain: Duration::from_secs(10),
        publish: true,
        warmup: 0.0,
        jwt_secret: None,
        writer_cpus: None,
        batch: 1,
    };
    let report = fanout(&o, false).await;
    assert_eq!(report["connected"], 10, "{report}");
    assert_eq!(
        (report["lost"].as_u64(), report["duplicated"].as_u64()),
        (Some(0), Some(0)),
        "{report}"
    );
    assert_eq!(report["delivered"], 300, "{report}");
    println!("hub-bench smoke run: 10 clients, 30 notifications, 300 deliveries, none lost: ok");

    // targeted, on a hub that requires tokens: each notification reaches its one user only.
    let secret = "hub-bench-smoke";
    let mut config = config.clone();
    config.security.jwt_secret = Some(realtime_hub::config::Secret::from(secret));
    let hub = realtime_hub::start(&config).expect("hub starts");
    let o = Options {
        scenario: "targeted".into(),
        urls: vec![format!("http://{}", hub.addr)],
        seconds: 0.5,
        jwt_secret: Some(secret.into()),
        ..o
    };
    actix_web::rt::spawn(hub.server);
    let report = targeted(&o).await;
    assert_eq!(report["connected"], 10, "{report}");
    assert_eq!(report["accepted"], 50, "{report}");
    assert_eq!(report["delivered"], 50, "{report}");
    let wrong = ["lost", "misdelivered", "duplicated"].map(|k| report[k].as_u64());
    assert_eq!(wrong, [Some(0); 3], "{report}");
    println!("hub-bench smoke run: 50 notifications to one user each among 10, each to its user only: ok");

    // publish: one short step of the sweep on the same hub: every POST answered 201.
    let o = Options {
        scenario: "publish".into(),
        clients: 4,
        rate: 200.0,
        seconds: 0.3,
        ..o
    };
    let addr: std::net::SocketAddr = o.urls[0].trim_start_matches("http://").parse().unwrap();
    let host = addr.to_string();
    let step = publish::run_step(&o, addr, &host, o.rate, 1, o.seconds).await;
    assert_eq!(
        (
            step["ok"].as_u64(),
            step["refused"].as_u64(),
            step["failed"].as_u64()
        ),
        (Some(60), Some(0), Some(0)),
        "{step}"
    );
    println!("hub-bench smoke run: 60 POSTs on 4 keep-alive connections, each answered 201: ok");

    // floor, its writer pinned (to the CPUs this process may use: any box has them): every frame
    // read, each with its tick-to-receipt time.
    let cpus = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Cpus_allowed_list:")
                    .map(|v| v.trim().to_owned())
            })
        })
        .expect("Cpus_allowed_list in /proc/self/status");
    let o = Options {
        scenario: "floor".into(),
        clients: 10,
        rate: 100.0,
        seconds: 0.3,
        writer_cpus: Some(cpus),
        ..o
    };
    let report = floor(&o).await;
    assert_eq!(
        (report["frames"].as_u64(), report["delivered"].as_u64()),
        (Some(300), Some(300)),
        "{report}"
    );
    assert_eq!(report["lost"], 0, "{report}");
    assert!(
        report["latency_ms"]["p99"]
            .as_f64()
            .is_some_and(f64::is_finite),
        "{report}"
    );
    println!(
        "hub-bench smoke run: floor, 10 connections, 30 rounds, 300 frames read and timed: ok"
    );
}
