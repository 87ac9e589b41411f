//! The log is an attack surface: a flood of malformed requests must not become a flood of log lines
//! (issue 11, fault 12). Runs the hub binary as an operator does and counts the lines on its stderr.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// Sends `request` on a new connection and reads the answer to its end (bounded).
fn send(port: u16, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.set_write_timeout(Some(WAIT)).unwrap();
    let _ = tcp.write_all(request);
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The hub binary on a free port with `env`: the child, its stderr lines, and its port.
fn start_hub(env: &[(&str, &str)]) -> (std::process::Child, mpsc::Receiver<String>, u16) {
    let mut hub = Command::new(env!("CARGO_BIN_EXE_realtime-hub"));
    hub.env("HUB_HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("RUST_LOG", "info");
    for (name, value) in env {
        hub.env(name, value);
    }
    let mut hub = hub
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the hub starts");
    let stderr = hub.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let port: u16 = loop {
        let line = lines
            .recv_timeout(WAIT)
            .expect("the hub logs where it listens");
        if let Some(addr) = line.split("listening on http://").nth(1) {
            break addr.rsplit(':').next().unwrap().trim().parse().unwrap();
        }
    };
    (hub, lines, port)
}

#[test]
fn a_flood_of_malformed_requests_writes_a_bounded_number_of_log_lines() {
    let (mut hub, lines, port) = start_hub(&[]);

    let long_uri = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(100_000));
    let long_header = format!(
        "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-big: {}\r\n\r\n",
        "b".repeat(100_000)
    );
    let bad: [&[u8]; 4] = [
        long_uri.as_bytes(),
        long_header.as_bytes(),
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n",
    ];
    for _ in 0..50 {
        for request in bad {
            // A 100 KB header still fits actix-http's 128 KB head buffer (answered 200, and
            // closed as it asks); only the log matters here.
            send(port, request);
        }
    }
    // Still serving, and every line the flood caused has been written by now.
    let healthy = send(
        port,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(healthy.starts_with("HTTP/1.1 200"), "{healthy}");
    hub.kill().expect("the hub stops");
    let _ = hub.wait();

    let flood: Vec<String> = lines.iter().filter(|line| !line.contains("INFO")).collect();
    assert!(
        flood.len() <= 12,
        "200 malformed requests wrote {} lines:\n{}",
        flood.len(),
        flood.join("\n")
    );
}

/// The Engine.IO sid of a polling handshake's answer (`0{"sid":"…",…}`).
fn handshake_sid(answer: &str) -> String {
    let body = &answer[answer.find("0{").expect("an open packet") + 1..];
    let open: serde_json::Value = serde_json::from_str(body.trim()).expect("open packet JSON");
    open["sid"].as_str().unwrap().to_owned()
}

#[test]
fn clients_joining_while_the_log_is_down_write_a_bounded_number_of_log_lines() {
    // Nothing listens on this port: the log backend stays unavailable, so every join opens a fresh
    // session without an offset (and without a record), each a line a client can cause.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_redis = format!("redis://{}", closed.local_addr().unwrap());
    drop(closed);
    let (mut hub, lines, port) = start_hub(&[("REDIS_URL", &dead_redis)]);
    let path = "/socket.io/?EIO=4&transport=polling";
    for _ in 0..60 {
        let open = send(
            port,
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        );
        let sid = handshake_sid(&open);
        let join = send(
            port,
            format!(
                "POST {path}&sid={sid} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
                 content-type: text/plain\r\ncontent-length: 2\r\n\r\n40"
            )
            .as_bytes(),
        );
        assert!(join.starts_with("HTTP/1.1 200"), "{join}");
        let reply = send(
            port,
            format!("GET {path}&sid={sid} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert!(reply.contains("40{"), "joined without the log: {reply}");
    }
    hub.kill().expect("the hub stops");
    let _ = hub.wait();
    let joins: Vec<String> = lines
        .iter()
        .filter(|line| line.contains("realtime_hub::actors::recovery"))
        .collect();
    assert!(
        joins.len() <= 12,
        "60 joins while the log was down wrote {} lines:\n{}",
        joins.len(),
        joins.join("\n")
    );
}
