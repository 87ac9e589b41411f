//! Replays on a real Redis read page by page as the client takes them: resumes that do not read pin
//! a page each, not the backlog (measured on the hub binary's RSS); a replay of many pages arrives
//! whole and in order to a slow reader; replays at once are capped (`--max-replays`), and a replay
//! whose client takes nothing gives its slot back (`--replay-stall-ms`); a trim between pages ends in
//! a fresh session, never in a resume with a gap; a resume cut before it joined leaves the session
//! resumable.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::raw_ws::RawClient;
use common::redis_server::RedisServer;
use common::{
    event_args, event_offset, redis_config, start_ready_hub, within, Received, TestHub, WsClient,
    WAIT_TIMEOUT,
};
use realtime_hub::config::Config;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;

/// A heartbeat that never fires during a test: stalled clients stay until the test closes them.
fn config(redis: &RedisServer, key: &str) -> Config {
    Config {
        ping_interval: Duration::from_secs(120),
        ping_timeout: Duration::from_secs(60),
        ..redis_config(&redis.url(), key)
    }
}

/// `n` sessions joined then dropped: their (pid, offset) to resume from.
async fn dropped_sessions(hub: &TestHub, n: usize) -> Vec<(String, String)> {
    let mut sessions = Vec::new();
    for _ in 0..n {
        let mut joined = hub.joined().await;
        joined.client.close().await;
        sessions.push((joined.pid, joined.offset));
    }
    sessions
}

/// Publishes `n` notifications with a body of `bytes` bytes; their offsets.
async fn publish_large(hub: &TestHub, n: usize, bytes: usize) -> Vec<String> {
    let body = json!({ "title": "t", "body": "x".repeat(bytes) }).to_string();
    let mut offsets = Vec::with_capacity(n);
    for _ in 0..n {
        let (status, answer) = hub.notify(&body).await;
        assert_eq!(status, 201, "{answer}");
        offsets.push(answer["offset"].as_str().unwrap().to_owned());
    }
    offsets
}

/// A WebSocket that resumes `(pid, offset)` and then reads nothing; its receive buffer is small so
/// what the hub writes piles up on the hub's side, as behind a client that stopped reading.
async fn stalled_resume(addr: SocketAddr, pid: &str, offset: &str) -> RawClient {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = within(WAIT_TIMEOUT, "a TCP connection", socket.connect(addr))
        .await
        .unwrap();
    let mut client = RawClient::handshake(tcp).await;
    let open = client.read_text().await;
    assert!(open.starts_with('0'), "{open}");
    let connect = format!("40{}", json!({ "pid": pid, "offset": offset }));
    client.send_text(&connect).await;
    client
}

/// Waits until the hub has written something after the open packet to `client`: its replay began.
async fn replay_began(client: &RawClient) {
    let mut byte = [0u8; 1];
    let peeked = within(
        WAIT_TIMEOUT * 6,
        "the first replayed bytes",
        client.tcp.peek(&mut byte),
    )
    .await
    .unwrap();
    assert_eq!(peeked, 1);
}

/// The hub binary as a child process, so its memory is its own.
struct HubProcess {
    child: Child,
    addr: SocketAddr,
}

impl HubProcess {
    fn start(redis: &RedisServer, key: &str) -> HubProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_realtime-hub"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("REDIS_URL", redis.url())
            .env("HUB_STREAM_KEY", key)
            .env("HUB_HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("HUB_PING_INTERVAL_MS", "120000")
            .env("HUB_PING_TIMEOUT_MS", "60000")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the hub binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the log until the hub says where it listens, then keeps draining it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(at.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(WAIT_TIMEOUT)
            .expect("the hub logs where it listens")
            .parse()
            .unwrap();
        HubProcess { child, addr }
    }

    /// Resident memory, from /proc.
    fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kb * 1024
    }

    async fn metric(&self, name: &str) -> i64 {
        let mut res = within(
            WAIT_TIMEOUT,
            "/metrics",
            awc::Client::new()
                .get(format!("http://{}/metrics", self.addr))
                .send(),
        )
        .await
        .expect("/metrics answers");
        let body = within(WAIT_TIMEOUT, "/metrics body", res.body())
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body).into_owned();
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
            .parse()
            .unwrap()
    }

    async fn wait_ready(&self) {
        for _ in 0..250 {
            let status = awc::Client::new()
                .get(format!("http://{}/readyz", self.addr))
                .send()
                .await
                .map(|res| res.status().as_u16());
            if matches!(status, Ok(200)) {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the hub process never became ready");
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const MB: u64 = 1024 * 1024;

#[actix_web::test]
async fn stalled_resumes_pin_a_page_each_not_the_backlog_and_give_it_back_when_they_close() {
    let redis = RedisServer::start();
    let key = "test:replay-rss";
    // Sessions and a 90 MB backlog made on one instance; resumed on another, whose memory is
    // measured (its read loop starts at the stream's end, so only the resumes read the backlog).
    let maker = start_ready_hub(config(&redis, key)).await;
    let sessions = dropped_sessions(&maker, 5).await;
    publish_large(&maker, 1500, 60_000).await;
    let hub = HubProcess::start(&redis, key);
    hub.wait_ready().await;
    let baseline = hub.rss_bytes();

    let mut stalled = Vec::new();
    for (pid, offset) in &sessions {
        stalled.push(stalled_resume(hub.addr, pid, offset).await);
    }
    for client in &stalled {
        replay_began(client).await;
    }
    // The replays are under way and stuck behind clients that read nothing: watch for a while
    // (a window to sample, not a speed assertion: the bound holds at every sample).
    let mut peak = hub.rss_bytes();
    let watch_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch_until {
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(hub.rss_bytes());
    }
    assert!(
        peak < baseline + 40 * MB,
        "5 stalled resumes of a 90 MB backlog took RSS from {} to {} MB",
        baseline / MB,
        peak / MB
    );

    drop(stalled);
    let closed = async {
        while hub.metric("hub_engine_sessions").await > 0 {
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    };
    within(WAIT_TIMEOUT, "the stalled sessions to end", closed).await;
    let after = hub.rss_bytes();
    assert!(
        after < baseline + 40 * MB,
        "after the clients closed RSS is {} MB, from {} MB",
        after / MB,
        baseline / MB
    );
}

#[actix_web::test]
async fn replay_of_many_pages_reaches_a_slow_reader_whole_and_in_order_then_goes_live() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:replay-slow")).await;
    let (pid, offset) = dropped_sessions(&hub, 1).await.remove(0);
    // About 2 MB of 30 KB entries: pages of a few entries, many of them.
    let missed = publish_large(&hub, 70, 30_000).await;
    let mut client = hub.send_resume(&pid, &offset).await;
    // Every event until the one published after the join, and where the CONNECT reply came.
    let (mut events, mut connect_at, mut live, mut after) = (Vec::new(), None, None, None);
    while after.is_none() || events.last() != after.as_ref() {
        let frame = client.recv_text_answering_pings().await;
        if let Some(reply) = frame.strip_prefix("40") {
            let reply: Value = serde_json::from_str(reply).unwrap();
            assert_eq!(reply["pid"], pid.as_str(), "recovered");
            connect_at = Some(events.len());
            after = Some(hub.publish("after").await);
            continue;
        }
        let args = event_args(&frame).unwrap_or_else(|| panic!("expected an event, got {frame}"));
        events.push(args[2].as_str().unwrap().to_owned());
        if events.len() == 10 {
            // Published during the replay: replayed or delivered live after it, once either way.
            live = Some(hub.publish("during the replay").await);
        }
        // A slow reader: the hub must wait for it, not read ahead.
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let mut expected = missed.clone();
    expected.extend([live.unwrap(), after.unwrap()]);
    assert_eq!(events, expected, "whole, in order, no duplicate");
    assert!(
        connect_at.unwrap() >= missed.len(),
        "every missed entry before the CONNECT reply"
    );
}

/// Reads a fresh session's CONNECT reply and offset event after any events; asserts it is not `pid`.
async fn expect_fresh_session(client: &mut WsClient, old_pid: &str) -> usize {
    let mut events = 0;
    loop {
        let frame = client.recv_text_answering_pings().await;
        if let Some(reply) = frame.strip_prefix("40") {
            let reply: Value = serde_json::from_str(reply).unwrap();
            assert_ne!(reply["pid"], old_pid, "a fresh session: recovered is false");
            let offset_event = client.recv_text_answering_pings().await;
            assert_eq!(event_args(&offset_event).unwrap()[0], "hub:offset");
            return events;
        }
        assert!(event_args(&frame).is_some(), "{frame}");
        events += 1;
    }
}

#[actix_web::test]
async fn replays_past_the_cap_wait_then_get_a_fresh_session_while_others_are_served() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(Config {
        max_replays: 1,
        replay_wait: Duration::from_millis(300),
        ..config(&redis, "test:replay-cap")
    })
    .await;
    let sessions = dropped_sessions(&hub, 2).await;
    // 24 MB: more than a client that reads nothing can take into its kernel buffers.
    publish_large(&hub, 400, 60_000).await;
    let mut healthy = hub.joined().await;

    let holding = stalled_resume(hub.addr, &sessions[0].0, &sessions[0].1).await;
    replay_began(&holding).await;
    let mut refused = hub.send_resume(&sessions[1].0, &sessions[1].1).await;
    assert_eq!(
        expect_fresh_session(&mut refused, &sessions[1].0).await,
        0,
        "nothing replayed, never a partial replay"
    );
    let (status, metrics, _) = hub.http("GET", "/metrics", "").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("hub_replays_refused_total 1\n"),
        "{metrics}"
    );

    let live = hub.publish("served meanwhile").await;
    for client in [&mut healthy.client, &mut refused] {
        let frame = client.recv_text_answering_pings().await;
        assert_eq!(event_args(&frame).unwrap()[2], live.as_str(), "{frame}");
    }
    drop(holding);
}

#[actix_web::test]
async fn replay_whose_client_takes_nothing_gives_its_slot_back_within_the_stall_bound_and_is_closed(
) {
    let redis = RedisServer::start();
    let hub = start_ready_hub(Config {
        max_replays: 1,
        // Far longer than the stall bound: the resume past the cap waits for the stalled one's slot
        // (and, were it never given back, would fail the test on its first frame, not time out).
        replay_wait: WAIT_TIMEOUT * 2,
        replay_stall: Duration::from_millis(300),
        // The heartbeat never fires: the stalled client stays connected, as one answering pings
        // blindly would.
        ..config(&redis, "test:replay-stall")
    })
    .await;
    let stalling = dropped_sessions(&hub, 1).await.remove(0);
    // 24 MB: more than a client that reads nothing can take into its kernel buffers.
    publish_large(&hub, 400, 60_000).await;
    let waiting = dropped_sessions(&hub, 1).await.remove(0);
    let missed = vec![hub.publish("a").await, hub.publish("b").await];

    let mut stalled = stalled_resume(hub.addr, &stalling.0, &stalling.1).await;
    replay_began(&stalled).await;
    let mut client = hub.send_resume(&waiting.0, &waiting.1).await;
    let first = client.recv_within(WAIT_TIMEOUT).await;
    let Some(Received::Text(first)) = first else {
        panic!("no answer to the resume past the cap: {first:?}");
    };
    let (mut frame, mut replayed) = (first, Vec::new());
    while !frame.starts_with("40") {
        replayed.push(event_offset(&frame));
        frame = client.recv_text_answering_pings().await;
    }
    let reply: Value = serde_json::from_str(&frame[2..]).unwrap();
    assert_eq!(reply["pid"], waiting.0.as_str(), "recovered: {reply}");
    assert_eq!(replayed, missed, "whole, in order, once");
    assert_eq!(hub.metric("hub_replays_stalled_total").await, 1);
    assert_eq!(hub.metric("hub_replays_refused_total").await, 0);

    // The stalled connection is dropped: what reached its buffers, then the end of the stream.
    let ended = async {
        let mut buf = vec![0u8; 64 * 1024];
        while matches!(stalled.tcp.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    within(WAIT_TIMEOUT, "the stalled connection to end", ended).await;
}

#[actix_web::test]
async fn a_stalled_replay_does_not_make_the_next_resume_replay_again_what_its_client_received() {
    // The official client keeps events received before a CONNECT reply (receiveBuffer) across a
    // reconnect and emits them at its next CONNECT reply, without moving its offset before that:
    // its next resume sends the same offset. A replay given up for the stall bound must not
    // then be replayed again from that offset under a recovered CONNECT reply, or the client
    // emits the entries it received twice (see `replay_interrupted` and README, Recovery).
    let redis = RedisServer::start();
    let hub = start_ready_hub(Config {
        replay_stall: Duration::from_millis(300),
        ..config(&redis, "test:replay-stall-again")
    })
    .await;
    let (pid, offset) = dropped_sessions(&hub, 1).await.remove(0);
    // 24 MB: more than a client that reads nothing can take into its kernel buffers.
    publish_large(&hub, 400, 60_000).await;

    // The client takes the first entries of its replay, then nothing.
    let mut stalled = stalled_resume(hub.addr, &pid, &offset).await;
    let mut received = Vec::new();
    while received.len() < 2 {
        received.push(event_offset(&stalled.read_text().await));
    }
    let given_up = async {
        while hub.metric("hub_replays_stalled_total").await < 1 {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    };
    within(WAIT_TIMEOUT, "the replay to be given up", given_up).await;
    drop(stalled);

    // Its next resume, with the offset it still holds.
    let mut client = hub.send_resume(&pid, &offset).await;
    let mut replayed = Vec::new();
    let reply = loop {
        let frame = client.recv_text_answering_pings().await;
        if let Some(reply) = frame.strip_prefix("40") {
            break serde_json::from_str::<Value>(reply).unwrap();
        }
        replayed.push(event_offset(&frame));
    };
    // Its record was dropped with the stalled replay: a fresh session (the client knows the rest
    // may be missing), nothing replayed again.
    assert_ne!(
        reply["pid"],
        pid.as_str(),
        "recovered after a stalled replay: {reply}"
    );
    assert!(
        replayed.is_empty(),
        "a fresh session replayed {} entries, {:?} of them delivered before the stall",
        replayed.len(),
        received
            .iter()
            .filter(|o| replayed.contains(o))
            .collect::<Vec<_>>()
    );
}

#[actix_web::test]
async fn trim_between_pages_ends_in_a_fresh_session_after_the_entries_written() {
    let redis = RedisServer::start();
    let key = "test:replay-trim";
    let hub = start_ready_hub(config(&redis, key)).await;
    let (pid, offset) = dropped_sessions(&hub, 1).await.remove(0);
    // 12 MB: more than the connection's buffers hold, so the replay is still paging after the
    // first entry is read.
    let missed = publish_large(&hub, 400, 30_000).await;
    let mut client = stalled_resume(hub.addr, &pid, &offset).await;
    let first = client.read_text().await;
    assert_eq!(event_args(&first).unwrap()[2], missed[0].as_str());
    // The stream loses its history under the replay.
    redis.command(&["XTRIM", key, "MAXLEN", "0"]);
    let mut written = 1;
    let reply = loop {
        let frame = client.read_text().await;
        if let Some(reply) = frame.strip_prefix("40") {
            break serde_json::from_str::<Value>(reply).unwrap();
        }
        let args = event_args(&frame).unwrap_or_else(|| panic!("expected an event, got {frame}"));
        assert_eq!(args[2].as_str(), Some(missed[written].as_str()), "in order");
        written += 1;
    };
    assert!(written < missed.len(), "the trim cut the replay");
    assert_ne!(
        reply["pid"],
        pid.as_str(),
        "a fresh session: recovered is false"
    );
    let offset_event = client.read_text().await;
    assert_eq!(event_args(&offset_event).unwrap()[0], "hub:offset");
    let (_, metrics, _) = hub.http("GET", "/metrics", "").await;
    assert!(
        metrics.contains("hub_replays_interrupted_total 1\n"),
        "{metrics}"
    );
    let live = hub.publish("after the trim").await;
    let frame = client.read_text().await;
    assert_eq!(event_args(&frame).unwrap()[2], live.as_str(), "{frame}");
}

#[actix_web::test]
async fn resume_cut_before_its_join_leaves_the_session_resumable_with_everything_it_missed() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:replay-cut")).await;
    let (pid, offset) = dropped_sessions(&hub, 1).await.remove(0);
    // About 2 MB: the replay stalls behind a client that reads nothing, so the socket is still
    // joining (its record claimed from Redis) when the connection drops.
    let missed = publish_large(&hub, 70, 30_000).await;
    let stalled = stalled_resume(hub.addr, &pid, &offset).await;
    replay_began(&stalled).await;
    drop(stalled);
    let ended = async {
        while hub.sessions().await > 0 {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    };
    within(WAIT_TIMEOUT, "the cut session to end", ended).await;

    // The claim took the record; the cut gives it back: the next resume recovers, whole.
    let mut client = hub.send_resume(&pid, &offset).await;
    let mut events = Vec::new();
    loop {
        let frame = client.recv_text_answering_pings().await;
        if let Some(reply) = frame.strip_prefix("40") {
            let reply: Value = serde_json::from_str(reply).unwrap();
            assert_eq!(reply["pid"], pid.as_str(), "recovered: {reply}");
            break;
        }
        let args = event_args(&frame).unwrap_or_else(|| panic!("expected an event, got {frame}"));
        events.push(args[2].as_str().unwrap().to_owned());
    }
    assert_eq!(events, missed, "every missed entry, in order, once");
}
