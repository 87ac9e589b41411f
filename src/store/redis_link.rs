//! How the hub reaches Redis: one server, the primary of a group watched by Sentinel, or a Redis
//! Cluster; and the self-healing connection every part of the Redis backend talks through.
//!
//! Owns: the parsed `REDIS_URL` ([`Endpoint`]) and, per [`Link`], one live connection.
//!
//! ```text
//! redis://[user:pass@]host:port[/db]                      one server (also rediss:// is refused: no TLS build)
//! redis+sentinel://[user:pass@]host:port[,host:port…]/<master name>[/db]
//!        the sentinels; the credentials and db are the primary's; `?sentinel_username=&sentinel_password=`
//!        authenticate to the sentinels when they need it
//! redis+cluster://[user:pass@]host:port[,host:port…]      seed nodes of a Redis Cluster
//! ```
//!
//! **Failover.** A [`Link`] keeps its connection until a command on it fails without an answer
//! (connection lost, timed out), is answered `READONLY`/`MASTERDOWN` (its node was demoted), or the
//! sentinels name another node (asked each second); the next command connects again, asking the
//! sentinels for the primary again (the `redis` crate's `SentinelClient` checks the node's `ROLE`
//! before handing it out). So appends, replays and records move to the new primary by themselves.
//! On a Cluster the `redis` crate's `ClusterConnection` follows `MOVED`/`ASK` and slot changes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    Pipeline, ProtocolVersion, PushInfo, PushKind, RedisError, RedisFuture, RedisResult, Value,
};
use tokio::sync::Mutex;

/// Where Redis is, from `REDIS_URL`.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// One server.
    Server(ConnectionInfo),
    /// The primary of `master`, as the sentinels at `sentinels` name it.
    Sentinel {
        /// The sentinels (`host:port` each).
        sentinels: Vec<ConnectionAddr>,
        /// The name the sentinels monitor the group under (`sentinel monitor <name> …`).
        master: String,
        /// Credentials and db of the primary.
        primary: ConnectionInfo,
        /// Credentials for the sentinels: (username, password).
        sentinel_auth: (Option<String>, Option<String>),
        /// The primary's address as last named by the sentinels, to log each change once.
        named: Arc<std::sync::Mutex<Option<String>>>,
    },
    /// Seed nodes of a Redis Cluster (every node shares the credentials).
    Cluster(Vec<ConnectionInfo>),
}

impl Endpoint {
    /// Parses `REDIS_URL` (forms in the module doc). Errors name what is wrong, without the password.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            "REDIS_URL needs a scheme: redis://, redis+sentinel:// or redis+cluster://".to_owned()
        })?;
        match scheme {
            "redis" | "unix" | "redis+unix" => url
                .into_connection_info()
                .map(Endpoint::Server)
                .map_err(|e| format!("invalid REDIS_URL: {e}")),
            "redis+sentinel" => parse_sentinel(rest),
            "redis+cluster" => {
                let (auth, hosts, path) = split_authority(rest)?;
                if !path.trim_matches('/').is_empty() {
                    return Err("redis+cluster:// takes no path (a Cluster has only db 0)".into());
                }
                let nodes = hosts
                    .iter()
                    .map(|host| node_info(&auth, host, ""))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Endpoint::Cluster(nodes))
            }
            "rediss" | "rediss+sentinel" | "rediss+cluster" => {
                Err(format!("{scheme}:// (TLS) is not supported by this build; put a TLS tunnel in front, or use redis://"))
            }
            other => Err(format!(
                "unknown REDIS_URL scheme {other:?}: use redis://, redis+sentinel:// or redis+cluster://"
            )),
        }
    }

    /// What to call it in logs: the kind and the addresses, never the credentials.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Server(info) => format!("redis://{}", info.addr()),
            Endpoint::Sentinel {
                sentinels, master, ..
            } => {
                let hosts: Vec<String> = sentinels.iter().map(ToString::to_string).collect();
                format!("redis+sentinel://{}/{master}", hosts.join(","))
            }
            Endpoint::Cluster(nodes) => {
                let hosts: Vec<String> = nodes.iter().map(|n| n.addr().to_string()).collect();
                format!("redis+cluster://{}", hosts.join(","))
            }
        }
    }

    /// A new connection with `options` (for Sentinel: to the primary the sentinels name now), and
    /// with Sentinel the address (`host:port`) of the primary it reached.
    pub(super) async fn connect_named(
        &self,
        options: &LinkOptions,
    ) -> RedisResult<(Conn, Option<String>)> {
        let config = options.config();
        match self {
            Endpoint::Server(info) => {
                let info = with_protocol(info.clone(), options.protocol);
                let conn = Client::open(info)?
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok((Conn::Server(conn), None))
            }
            Endpoint::Sentinel {
                sentinels,
                master,
                primary,
                sentinel_auth,
                named,
            } => {
                let redis = primary.redis_settings();
                let mut builder = SentinelClientBuilder::new(
                    sentinels.iter().cloned(),
                    master.clone(),
                    SentinelServerType::Master,
                )?
                .set_client_to_redis_protocol(options.protocol)
                .set_client_to_redis_db(redis.db());
                if let Some(user) = redis.username() {
                    builder = builder.set_client_to_redis_username(user);
                }
                if let Some(password) = redis.password() {
                    builder = builder.set_client_to_redis_password(password);
                }
                if let Some(user) = &sentinel_auth.0 {
                    builder = builder.set_client_to_sentinel_username(user);
                }
                if let Some(password) = &sentinel_auth.1 {
                    builder = builder.set_client_to_sentinel_password(password);
                }
                let client = builder.build()?.async_get_client().await?;
                let address = client.get_connection_info().addr().to_string();
                let changed = {
                    let mut last = named.lock().expect("never poisoned");
                    let changed = last.as_deref() != Some(address.as_str());
                    *last = Some(address.clone());
                    changed
                };
                if changed {
                    log::info!("redis primary of {master:?} is {address} (named by Sentinel)");
                }
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok((Conn::Server(conn), Some(address)))
            }
            Endpoint::Cluster(nodes) => {
                let mut builder = ClusterClientBuilder::new(nodes.iter().cloned())
                    .connection_timeout(options.connect_timeout)
                    .response_timeout(options.response_timeout)
                    .use_protocol(options.protocol)
                    .retries(2);
                if let Some(flag) = &options.disconnected {
                    let flag = flag.clone();
                    builder = builder.push_sender(move |push: PushInfo| {
                        if push.kind == PushKind::Disconnection {
                            flag.store(true, Ordering::Relaxed);
                        }
                        Ok::<(), std::convert::Infallible>(())
                    });
                }
                let conn = builder.build()?.get_async_connection().await?;
                Ok((Conn::Cluster(conn), None))
            }
        }
    }

    /// The primary (`host:port`) the first sentinel that answers names now
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`); `None` if not Sentinel or no sentinel answered within
    /// `timeout` each.
    pub(super) async fn named_by_sentinels(&self, timeout: Duration) -> Option<String> {
        let Endpoint::Sentinel {
            sentinels,
            master,
            sentinel_auth,
            ..
        } = self
        else {
            return None;
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        for addr in sentinels {
            let Ok(info) = addr.clone().into_connection_info() else {
                continue;
            };
            let mut settings = info.redis_settings().clone();
            if let Some(user) = &sentinel_auth.0 {
                settings = settings.set_username(user);
            }
            if let Some(password) = &sentinel_auth.1 {
                settings = settings.set_password(password);
            }
            let Ok(client) = Client::open(info.set_redis_settings(settings)) else {
                continue;
            };
            let Ok(mut conn) = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
            else {
                continue;
            };
            let named: RedisResult<Option<(String, u16)>> = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(master)
                .query_async(&mut conn)
                .await;
            if let Ok(Some((host, port))) = named {
                return Some(ConnectionAddr::Tcp(host, port).to_string());
            }
        }
        None
    }
}

fn parse_sentinel(rest: &str) -> Result<Endpoint, String> {
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (auth, hosts, path) = split_authority(rest)?;
    let mut parts = path.trim_matches('/').splitn(2, '/');
    let master = parts.next().unwrap_or_default();
    if master.is_empty() {
        return Err(
            "redis+sentinel:// needs the master name as its path: redis+sentinel://host:26379/mymaster"
                .into(),
        );
    }
    let db = parts.next().unwrap_or_default();
    let sentinels = hosts
        .iter()
        .map(|host| node_info(&None, host, "").map(|info| info.addr().clone()))
        .collect::<Result<Vec<_>, _>>()?;
    // Any host stands for the primary's settings (credentials, db): its address is asked of the sentinels.
    let primary = node_info(&auth, hosts[0], db)?;
    let mut sentinel_auth = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sentinel_username", v)) => sentinel_auth.0 = Some(percent_decode(v)),
            Some(("sentinel_password", v)) => sentinel_auth.1 = Some(percent_decode(v)),
            _ => {
                return Err(format!(
                "unknown redis+sentinel:// parameter {:?}: sentinel_username, sentinel_password",
                pair.split('=').next().unwrap_or_default()
            ))
            }
        }
    }
    Ok(Endpoint::Sentinel {
        sentinels,
        master: percent_decode(master),
        primary,
        sentinel_auth,
        named: Arc::default(),
    })
}

/// `[user:pass@]h:p,h:p/path` → (userinfo, hosts, path).
fn split_authority(rest: &str) -> Result<(Option<String>, Vec<&str>, &str), String> {
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let (auth, hosts) = match authority.rsplit_once('@') {
        Some((auth, hosts)) => (Some(auth.to_owned()), hosts),
        None => (None, authority),
    };
    let hosts: Vec<&str> = hosts.split(',').map(str::trim).collect();
    if hosts.iter().any(|h| h.is_empty()) {
        return Err("REDIS_URL names an empty host: list them as host:port,host:port".into());
    }
    Ok((auth, hosts, path))
}

/// `redis://[auth@]host[/db]` as connection info (the `redis` crate parses and checks it).
fn node_info(auth: &Option<String>, host: &str, db: &str) -> Result<ConnectionInfo, String> {
    let auth = auth.as_deref().map(|a| format!("{a}@")).unwrap_or_default();
    let db = if db.is_empty() {
        String::new()
    } else {
        format!("/{db}")
    };
    format!("redis://{auth}{host}{db}")
        .as_str()
        .into_connection_info()
        .map_err(|e| format!("invalid REDIS_URL host {host:?}: {e}"))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn with_protocol(info: ConnectionInfo, protocol: ProtocolVersion) -> ConnectionInfo {
    let redis = info.redis_settings().clone().set_protocol(protocol);
    info.set_redis_settings(redis)
}

/// How a [`Link`] connects.
#[derive(Clone)]
pub(super) struct LinkOptions {
    /// RESP2 for the read loop and commands (their reply shapes); RESP3 for appends, whose
    /// connection must say when it drops.
    pub(super) protocol: ProtocolVersion,
    pub(super) connect_timeout: Duration,
    /// How long an answer may take (the read loop's covers its `XREAD BLOCK`).
    pub(super) response_timeout: Duration,
    /// Set when the connection reports it dropped (RESP3 only).
    pub(super) disconnected: Option<Arc<AtomicBool>>,
}

impl LinkOptions {
    pub(super) fn new(protocol: ProtocolVersion, timeout: Duration) -> LinkOptions {
        LinkOptions {
            protocol,
            connect_timeout: timeout,
            response_timeout: timeout,
            disconnected: None,
        }
    }

    fn config(&self) -> AsyncConnectionConfig {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout));
        match &self.disconnected {
            Some(flag) => {
                let flag = flag.clone();
                config.set_push_sender(move |push: PushInfo| {
                    if push.kind == PushKind::Disconnection {
                        flag.store(true, Ordering::Relaxed);
                    }
                    Ok::<(), std::convert::Infallible>(())
                })
            }
            None => config,
        }
    }
}

/// A connection to one server (directly or found through Sentinel) or to a Cluster.
#[derive(Clone)]
pub(super) enum Conn {
    Server(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Conn {
    /// `WAIT <replicas> <timeout ms>` on the node that holds `key` (the primary the caller's writes
    /// went to): the number of replicas that acknowledged every write this connection made before.
    pub(super) async fn wait_for_replicas(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> RedisResult<i64> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout.as_millis() as u64);
        match self {
            Conn::Server(conn) => wait.query_async(conn).await,
            Conn::Cluster(conn) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let reply = conn.route_command(wait, routing).await?;
                Ok(redis::from_redis_value(reply)?)
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Server(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Server(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Server(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Whether `err` means the connection (or the node it holds) is no longer the one to talk to: no
/// answer, or an answer saying it is not a writable primary (a demoted primary after a failover).
pub(super) fn connection_spent(err: &RedisError) -> bool {
    match err.code() {
        Some(code) => matches!(code, "READONLY" | "MASTERDOWN"),
        None => true,
    }
}

/// A connection and the flag that marks it spent (it is replaced before the next command).
type Spendable = (Conn, Arc<AtomicBool>);

/// How often a connection found through Sentinel checks that the sentinels still name its node. A
/// primary the sentinels replaced while it stayed up (a planned `SENTINEL FAILOVER`, or one cut off
/// by a partition) accepts writes until they reconfigure it, seconds later, and loses them then; so
/// writes may go on to it for at most this long (the check runs beside them, never delaying one).
pub(super) const RENAMED_CHECK_EVERY: Duration = Duration::from_secs(1);

/// A live connection of a [`Link`].
struct Held {
    conn: Conn,
    spent: Arc<AtomicBool>,
    /// With Sentinel: the primary it reached, and when the sentinels were last asked about it.
    named: Option<(String, std::time::Instant)>,
    /// A check of the sentinels is under way.
    checking: Arc<AtomicBool>,
}

/// One shared connection that replaces itself: cheap to clone (clones share it), usable wherever the
/// `redis` crate takes an async connection.
#[derive(Clone)]
pub(super) struct Link {
    endpoint: Arc<Endpoint>,
    options: LinkOptions,
    /// The live connection and its "dropped" flag; the lock is held while connecting so concurrent
    /// callers share one attempt.
    live: Arc<Mutex<Option<Held>>>,
}

impl Link {
    pub(super) fn new(endpoint: Arc<Endpoint>, options: LinkOptions) -> Link {
        Link {
            endpoint,
            options,
            live: Arc::new(Mutex::new(None)),
        }
    }

    /// The connection to send on, and the flag that marks it spent: the current one unless it is
    /// spent, else a new one. An error here means nothing was sent.
    pub(super) async fn connection(&self) -> RedisResult<Spendable> {
        let mut slot = self.live.lock().await;
        if let Some(held) = slot.as_mut() {
            if !held.spent.load(Ordering::Relaxed) {
                self.check_named(held);
                return Ok((held.conn.clone(), held.spent.clone()));
            }
        }
        *slot = None;
        let spent = Arc::new(AtomicBool::new(false));
        let options = LinkOptions {
            disconnected: Some(spent.clone()),
            ..self.options.clone()
        };
        // Push notices (the drop notice among them) exist only in RESP3.
        let options = if options.protocol == ProtocolVersion::RESP3 {
            options
        } else {
            LinkOptions {
                disconnected: None,
                ..options
            }
        };
        let (conn, named) = self.endpoint.connect_named(&options).await?;
        *slot = Some(Held {
            conn: conn.clone(),
            spent: spent.clone(),
            named: named.map(|address| (address, std::time::Instant::now())),
            checking: Arc::default(),
        });
        Ok((conn, spent))
    }

    /// With Sentinel, every [`RENAMED_CHECK_EVERY`]: asks the sentinels (in a task of its own) which
    /// primary they name, and marks the connection spent if it is another one than `held`'s.
    fn check_named(&self, held: &mut Held) {
        let Some((address, checked)) = held.named.as_mut() else {
            return;
        };
        if checked.elapsed() < RENAMED_CHECK_EVERY || held.checking.swap(true, Ordering::Relaxed) {
            return;
        }
        *checked = std::time::Instant::now();
        let (endpoint, address) = (self.endpoint.clone(), address.clone());
        let (spent, checking) = (held.spent.clone(), held.checking.clone());
        let timeout = self.options.connect_timeout;
        tokio::spawn(async move {
            if let Some(now) = endpoint.named_by_sentinels(timeout).await {
                if now != address {
                    log::warn!(
                        "redis primary {address} is no longer the one Sentinel names ({now}): reconnecting"
                    );
                    spent.store(true, Ordering::Relaxed);
                }
            }
            checking.store(false, Ordering::Relaxed);
        });
    }
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let (mut conn, spent) = self.connection().await?;
            let reply = conn.req_packed_command(cmd).await;
            if let Err(err) = &reply {
                if connection_spent(err) {
                    spent.store(true, Ordering::Relaxed);
                }
            }
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let (mut conn, spent) = self.connection().await?;
            let reply = conn.req_packed_commands(pipeline, offset, count).await;
            if let Err(err) = &reply {
                if connection_spent(err) {
                    spent.store(true, Ordering::Relaxed);
                }
            }
            reply
        })
    }

    fn get_db(&self) -> i64 {
        match self.endpoint.as_ref() {
            Endpoint::Server(info) => info.redis_settings().db(),
            Endpoint::Sentinel { primary, .. } => primary.redis_settings().db(),
            Endpoint::Cluster(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_stay_what_the_redis_crate_parses() {
        let Endpoint::Server(info) = Endpoint::parse("redis://:secret@127.0.0.1:6380/2").unwrap()
        else {
            panic!("a redis:// URL is one server");
        };
        assert_eq!(info.addr().to_string(), "127.0.0.1:6380");
        assert_eq!(info.redis_settings().db(), 2);
        assert_eq!(info.redis_settings().password(), Some("secret"));
    }

    #[test]
    fn sentinel_urls_name_the_sentinels_the_master_and_the_primarys_settings() {
        let endpoint = Endpoint::parse(
            "redis+sentinel://u:p%40ss@127.0.0.1:26379, 127.0.0.1:26380/my%20master/3?sentinel_password=s%26t",
        )
        .unwrap();
        let Endpoint::Sentinel {
            sentinels,
            master,
            primary,
            sentinel_auth,
            ..
        } = &endpoint
        else {
            panic!("a redis+sentinel:// URL is a sentinel group");
        };
        let hosts: Vec<String> = sentinels.iter().map(ToString::to_string).collect();
        assert_eq!(hosts, ["127.0.0.1:26379", "127.0.0.1:26380"]);
        assert_eq!(master, "my master");
        assert_eq!(primary.redis_settings().db(), 3);
        assert_eq!(primary.redis_settings().username(), Some("u"));
        assert_eq!(primary.redis_settings().password(), Some("p@ss"));
        assert_eq!(sentinel_auth, &(None, Some("s&t".to_owned())));
        assert_eq!(
            endpoint.describe(),
            "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/my master",
            "logs never carry the credentials"
        );
    }

    #[test]
    fn cluster_urls_list_seed_nodes_with_shared_credentials() {
        let endpoint =
            Endpoint::parse("redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001").unwrap();
        let Endpoint::Cluster(nodes) = &endpoint else {
            panic!("a redis+cluster:// URL is a cluster");
        };
        assert_eq!(nodes.len(), 2);
        assert!(nodes
            .iter()
            .all(|n| n.redis_settings().password() == Some("pw")));
        assert_eq!(
            endpoint.describe(),
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
        );
    }

    #[test]
    fn malformed_urls_are_refused_with_what_to_write_instead() {
        for (url, says) in [
            ("127.0.0.1:6379", "needs a scheme"),
            ("http://127.0.0.1", "unknown REDIS_URL scheme"),
            ("rediss://127.0.0.1", "TLS"),
            ("redis+sentinel://127.0.0.1:26379", "master name"),
            ("redis+sentinel://127.0.0.1:26379/", "master name"),
            ("redis+sentinel://127.0.0.1:26379,/m", "empty host"),
            (
                "redis+sentinel://127.0.0.1:26379/m?password=x",
                "unknown redis+sentinel:// parameter",
            ),
            ("redis+cluster://127.0.0.1:7000/1", "no path"),
            (
                "redis+cluster://127.0.0.1:notaport",
                "invalid REDIS_URL host",
            ),
        ] {
            let err = Endpoint::parse(url).expect_err(url);
            assert!(err.contains(says), "{url}: {err}");
            assert!(
                !err.contains("x\""),
                "{url}: the error does not echo values"
            );
        }
    }

    #[test]
    fn only_lost_connections_and_demoted_nodes_spend_a_connection() {
        // A server's error reply, as the client library parses it.
        let parse = |text: &str| -> RedisError {
            match redis::parse_redis_value(format!("-{text}\r\n").as_bytes()) {
                Ok(Value::ServerError(err)) => err.into(),
                other => panic!("not an error reply: {other:?}"),
            }
        };
        assert!(connection_spent(&parse(
            "READONLY You can't write against a read only replica."
        )));
        assert!(connection_spent(&parse(
            "MASTERDOWN Link with MASTER is down"
        )));
        assert!(!connection_spent(&parse("OOM command not allowed")));
        assert!(!connection_spent(&parse("NOSCRIPT No matching script")));
        let io = RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert!(connection_spent(&io));
    }
}
