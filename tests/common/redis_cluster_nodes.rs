//! A real Redis Cluster for one test: three masters (Debian's `redis-server --cluster-enabled yes`)
//! on free loopback ports, joined by `redis-cli --cluster create`, stopped on drop; and what a test
//! needs to look at it and to move a slot from one node to another, as `redis-cli --cluster
//! reshard` does. No Redis is a failure, never a skip.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A reply of a Redis server (RESP2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+…` or a bulk string.
    Text(String),
    /// `:…`
    Int(i64),
    /// `$-1` or `*-1`.
    Nil,
    /// `*…`
    Array(Vec<Reply>),
    /// `-…`
    Error(String),
}

impl Reply {
    /// The text of a `+`/bulk reply; panics otherwise.
    pub fn text(&self) -> &str {
        match self {
            Reply::Text(text) => text,
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// The number of a `:` reply; panics otherwise.
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            other => panic!("expected an integer, got {other:?}"),
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One cluster node.
#[derive(Clone)]
pub struct ClusterNode {
    /// Its client port on 127.0.0.1.
    pub port: u16,
}

impl ClusterNode {
    /// Sends one command and reads its whole reply (2 s at most).
    pub fn command(&self, args: &[&str]) -> Reply {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        (&tcp).write_all(request.as_bytes()).unwrap();
        read_reply(&mut BufReader::new(&tcp))
    }

    /// `CLUSTER MYID`
    pub fn id(&self) -> String {
        self.command(&["CLUSTER", "MYID"]).text().to_owned()
    }
}

fn read_reply(reader: &mut impl BufRead) -> Reply {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a reply line");
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" => Reply::Text(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Int(rest.parse().unwrap()),
        "$" => {
            let len: i64 = rest.parse().unwrap();
            if len < 0 {
                return Reply::Nil;
            }
            let mut bytes = vec![0u8; len as usize + 2];
            std::io::Read::read_exact(reader, &mut bytes).expect("a bulk string");
            bytes.truncate(len as usize);
            Reply::Text(String::from_utf8_lossy(&bytes).into_owned())
        }
        "*" => {
            let len: i64 = rest.parse().unwrap();
            if len < 0 {
                return Reply::Nil;
            }
            Reply::Array((0..len).map(|_| read_reply(reader)).collect())
        }
        other => panic!("unexpected RESP reply type {other:?} in {line:?}"),
    }
}

/// Three masters, every slot assigned, `cluster_state:ok` on each; its nodes ([`ClusterNodes`])
/// through `Deref`.
pub struct RedisCluster {
    nodes: ClusterNodes,
    children: Vec<Child>,
    dir: PathBuf,
}

/// The nodes of a running cluster, to look at them and change their slots (from any thread).
#[derive(Clone)]
pub struct ClusterNodes {
    /// The nodes, in the order `redis-cli --cluster create` got them (node 0 has slots 0–5460).
    pub nodes: Vec<ClusterNode>,
}

impl std::ops::Deref for RedisCluster {
    type Target = ClusterNodes;

    fn deref(&self) -> &ClusterNodes {
        &self.nodes
    }
}

impl RedisCluster {
    /// Starts three nodes and joins them into one cluster; returns once every node says it is ok.
    pub fn start() -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "hub-test-redis-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = RedisCluster {
            nodes: ClusterNodes { nodes: Vec::new() },
            children: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            // The bus port is set on its own: the default (port + 10000) may be taken or past 65535.
            let (port, bus) = (free_port(), free_port());
            let node_dir = cluster.dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).unwrap();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-port", &bus.to_string()])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "5000"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--dir", node_dir.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|err| {
                    panic!("cannot start redis-server ({err}); install it: apt-get install -y redis-server")
                });
            cluster.children.push(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "redis-server did not listen on port {port} within 10 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            cluster.nodes.nodes.push(ClusterNode { port });
        }
        let hosts: Vec<String> = cluster
            .nodes
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&hosts)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|err| {
                panic!("cannot run redis-cli ({err}); install it: apt-get install -y redis-tools")
            });
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        cluster.wait_ok();
        cluster
    }
}

impl ClusterNodes {
    /// Waits (10 s at most) until every node reports `cluster_state:ok` and knows every other node.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok = self.nodes.iter().all(|node| {
                let info = node.command(&["CLUSTER", "INFO"]);
                let Reply::Text(info) = info else {
                    return false;
                };
                info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster was not ok within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis+cluster://127.0.0.1:<p0>,127.0.0.1:<p1>,127.0.0.1:<p2>`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// `CLUSTER KEYSLOT <key>`
    pub fn slot(&self, key: &str) -> u16 {
        self.nodes[0].command(&["CLUSTER", "KEYSLOT", key]).int() as u16
    }

    /// The index of the node that serves `slot`, as every node agrees (panics if they do not).
    pub fn owner(&self, slot: u16) -> usize {
        let ids: Vec<String> = self.nodes.iter().map(ClusterNode::id).collect();
        let owners: Vec<Option<String>> = self.nodes.iter().map(|n| served_by(n, slot)).collect();
        assert!(
            owners.windows(2).all(|w| w[0] == w[1]),
            "the nodes disagree on who serves slot {slot}: {owners:?}"
        );
        let owner = owners[0].as_deref().expect("the slot is served");
        ids.iter().position(|id| id == owner).unwrap()
    }

    /// Moves `slot` and every key in it from node `from` to node `to`, as a reshard does:
    /// IMPORTING on the target, MIGRATING on the source, MIGRATE the keys (a stream with its
    /// consumer groups), then `SETSLOT … NODE` on the target, the source and the others. `pause`
    /// is spent after MIGRATING and after MIGRATE, so commands meet each stage of the move.
    pub fn move_slot(&self, slot: u16, from: usize, to: usize, pause: Duration) {
        let slot_arg = slot.to_string();
        let (source, target) = (&self.nodes[from], &self.nodes[to]);
        let (source_id, target_id) = (source.id(), target.id());
        let ok = |reply: Reply, what: &str| {
            assert_eq!(reply, Reply::Text("OK".into()), "{what}");
        };
        ok(
            target.command(&["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &source_id]),
            "SETSLOT IMPORTING",
        );
        ok(
            source.command(&["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &target_id]),
            "SETSLOT MIGRATING",
        );
        std::thread::sleep(pause);
        for _ in 0..1000 {
            let Reply::Array(keys) =
                source.command(&["CLUSTER", "GETKEYSINSLOT", &slot_arg, "100"])
            else {
                panic!("GETKEYSINSLOT answers an array");
            };
            if keys.is_empty() {
                break;
            }
            let port = target.port.to_string();
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            let names: Vec<String> = keys.iter().map(|k| k.text().to_owned()).collect();
            migrate.extend(names.iter().map(String::as_str));
            ok(source.command(&migrate), "MIGRATE");
        }
        std::thread::sleep(pause);
        let node_arg = ["CLUSTER", "SETSLOT", &slot_arg, "NODE", &target_id];
        ok(target.command(&node_arg), "SETSLOT NODE on the target");
        ok(source.command(&node_arg), "SETSLOT NODE on the source");
        for (i, node) in self.nodes.iter().enumerate() {
            if i != from && i != to {
                ok(node.command(&node_arg), "SETSLOT NODE on another node");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .nodes
            .iter()
            .any(|node| served_by(node, slot).as_deref() != Some(target_id.as_str()))
        {
            assert!(
                Instant::now() < deadline,
                "the nodes did not agree on slot {slot}'s new node within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The id of the node that serves `slot`, as `node` sees it (`CLUSTER SLOTS`).
fn served_by(node: &ClusterNode, slot: u16) -> Option<String> {
    let Reply::Array(ranges) = node.command(&["CLUSTER", "SLOTS"]) else {
        panic!("CLUSTER SLOTS answers an array");
    };
    ranges.iter().find_map(|range| match range {
        Reply::Array(parts) if (parts[0].int()..=parts[1].int()).contains(&i64::from(slot)) => {
            match &parts[2] {
                Reply::Array(master) => Some(master[2].text().to_owned()),
                _ => None,
            }
        }
        _ => None,
    })
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
