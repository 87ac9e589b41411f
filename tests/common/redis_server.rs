//! A real `redis-server` (Debian's package) on a free loopback port, for one test; stopped on drop.
//! No Redis is a failure, never a skip: a green run that skipped Redis would hide a missing install.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its working directory (AOF files live here).
    dir: PathBuf,
    persistent: bool,
    /// The primary's port, for a replica (`--replicaof`).
    replica_of: Option<u16>,
}

impl RedisServer {
    /// A throwaway server: no persistence.
    pub fn start() -> RedisServer {
        Self::launch(false, None)
    }

    /// A server with AOF persistence, fsynced on every write, so a restart keeps every entry.
    pub fn start_persistent() -> RedisServer {
        Self::launch(true, None)
    }

    /// A throwaway replica of `primary` (`--replicaof`), returned once it is in sync with it.
    pub fn start_replica_of(primary: &RedisServer) -> RedisServer {
        let replica = Self::launch(false, Some(primary.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !replica
            .command(&["INFO", "replication"])
            .contains("master_link_status:up")
        {
            assert!(
                Instant::now() < deadline,
                "the replica on port {} did not sync with its primary within 10 s",
                replica.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        replica
    }

    fn launch(persistent: bool, replica_of: Option<u16>) -> RedisServer {
        // A port found free can be taken by another test's server before ours binds it: ours then
        // exits and the other answers our PING. Such a start is found out and tried on another port.
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir =
                std::env::temp_dir().join(format!("hub-test-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut server = RedisServer {
                child: None,
                port,
                dir,
                persistent,
                replica_of,
            };
            if server.start_on_port() {
                return server;
            }
            server.child = None;
        }
        panic!("redis-server never got a port of its own in 10 tries");
    }

    /// `redis://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and directory.
    pub fn restart(&mut self) {
        assert!(
            self.start_on_port(),
            "port {} was taken by another process while this redis-server was down",
            self.port
        );
    }

    /// Starts on `self.port`; false if the server that answers there is not ours (the port was
    /// taken: ours exited).
    fn start_on_port(&mut self) -> bool {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--dir", self.dir.to_str().unwrap()])
        .args([
            "--appendonly",
            if self.persistent { "yes" } else { "no" },
            "--appendfsync",
            "always",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(primary) = self.replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        let child = cmd.spawn().unwrap_or_else(|err| {
            panic!("cannot start redis-server ({err}); install it: apt-get install -y redis-server")
        });
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let info = self.command(&["INFO", "server"]);
        let ours = info.contains(&format!("process_id:{pid}\r\n"));
        if !ours {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        ours
    }

    /// Stops the server (SIGTERM: it flushes and exits) and waits for it, at most 10 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("redis-server did not exit within 10 s of SIGTERM; killed it");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the server process: SIGSTOP freezes it with its
    /// connections open (the kernel still accepts new ones), SIGCONT resumes it.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", child.id());
    }

    /// Sends a raw command and returns the raw reply (for checks that bypass the hub).
    pub fn command(&self, args: &[&str]) -> String {
        let mut tcp = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        tcp.write_all(request.as_bytes()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut reply = vec![0u8; 65536];
        let n = tcp.read(&mut reply).unwrap_or(0);
        String::from_utf8_lossy(&reply[..n]).into_owned()
    }

    fn ping(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port)).is_ok_and(|mut tcp| {
            let _ = tcp.set_read_timeout(Some(Duration::from_millis(500)));
            let mut reply = [0u8; 7];
            tcp.write_all(b"PING\r\n").is_ok()
                && tcp
                    .read(&mut reply)
                    .is_ok_and(|n| reply[..n].starts_with(b"+PONG"))
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL ends a stopped process too.
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The first bulk string of a raw RESP reply (from [`RedisServer::command`]), if any.
pub fn bulk(reply: &str) -> Option<String> {
    let mut lines = reply.split("\r\n");
    let head = lines.next()?;
    if !head.starts_with('$') || head == "$-1" {
        return None;
    }
    lines.next().map(str::to_owned)
}
