//! Admission: how many Engine.IO sessions are open, in all, per client address, and not yet joined
//! to a namespace (in all and per client address), and how many a client address opens per second;
//! a handshake past a cap or the rate is refused before a session exists for it.
//!
//! Owns: the counts, behind one mutex (handshakes and session ends are rare next to messages),
//! and the gauges and refusal counters of `/metrics` they feed.
//! Used by: the Engine.IO endpoint (polling handshakes, WebSocket handshakes without a sid), which
//! asks [`Admission::admit`] and hands the [`Ticket`] to the new Session; the Session marks it
//! joined on its first namespace and drops it when it ends, which gives the places back.
//!
//! ```text
//! handshake ─► admit(peer) ─► Ticket ─► Session ─ first namespace joined ─► Ticket::joined
//!                 │                         └─ session ends ─► Ticket dropped: counts given back
//!                 └─► Refusal::{Sessions, Unjoined} → 503,
//!                     Refusal::{PerAddress, UnjoinedPerAddress, ConnectionRate} → 429
//! ```
//!
//! Why a per-address share of the unjoined places: a handshake costs nothing and holds its place
//! for the connect timeout, so without it a few addresses renewing handshakes fill `--max-unjoined`
//! and lock every new client out; with it, filling the pool takes
//! `--max-unjoined / --max-unjoined-per-address` addresses (100 with the defaults).
//!
//! A client address is the TCP peer's: behind a proxy every client has the proxy's, so the
//! per-address caps and rate must be off there (`--max-sessions-per-address 0`,
//! `--max-unjoined-per-address 0`, `--connections-per-second-per-address 0`) and done by the proxy.
//! IPv6 addresses count per /64 prefix, the block one subscriber gets: per address, one host could
//! take as many places as it likes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::limited_warn;
use crate::log_limit::LimitedLog;
use crate::metrics::Metrics;
use crate::rate_limit::{KeyedLimit, RetryAfter};

/// The caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sessions open at once (`--max-sessions`).
    pub sessions: usize,
    /// Sessions open at once per client address (`--max-sessions-per-address`); 0: no cap.
    pub per_address: usize,
    /// Sessions open at once that have not joined a namespace yet (`--max-unjoined`).
    pub unjoined: usize,
    /// Sessions open at once per client address that have not joined a namespace yet
    /// (`--max-unjoined-per-address`); 0: no cap.
    pub unjoined_per_address: usize,
    /// New sessions per second per client address (`--connections-per-second-per-address`); 0: no
    /// limit.
    pub connections_per_second: u32,
}

/// Why a handshake was refused; its text is the answer's `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `--max-sessions` reached: 503.
    #[error("Too many sessions")]
    Sessions,
    /// `--max-sessions-per-address` reached for this client's address: 429.
    #[error("Too many sessions from this address")]
    PerAddress,
    /// `--max-unjoined` reached: 503.
    #[error("Too many sessions not joined to a namespace")]
    Unjoined,
    /// `--max-unjoined-per-address` reached for this client's address: 429.
    #[error("Too many sessions not joined to a namespace from this address")]
    UnjoinedPerAddress,
    /// `--connections-per-second-per-address` reached for this client's address: 429, with the
    /// whole seconds until it may try again.
    #[error("Too many new sessions per second from this address")]
    ConnectionRate(RetryAfter),
}

#[derive(Default)]
struct Counts {
    sessions: usize,
    unjoined: usize,
    per_address: HashMap<IpAddr, FromAddress>,
}

/// One client address's sessions; the entry is removed when both are 0.
#[derive(Default, Clone, Copy)]
struct FromAddress {
    sessions: usize,
    unjoined: usize,
}

/// The counts and their caps, shared by the endpoint and every session's ticket.
pub struct Admission {
    limits: Limits,
    counts: Mutex<Counts>,
    /// New sessions per second per address key.
    rate: KeyedLimit<IpAddr>,
    metrics: Arc<Metrics>,
}

static REFUSED_SESSIONS: LimitedLog = LimitedLog::per_minute(6);
static REFUSED_PER_ADDRESS: LimitedLog = LimitedLog::per_minute(6);
static REFUSED_UNJOINED: LimitedLog = LimitedLog::per_minute(6);
static REFUSED_UNJOINED_PER_ADDRESS: LimitedLog = LimitedLog::per_minute(6);
static REFUSED_RATE: LimitedLog = LimitedLog::per_minute(6);

impl Admission {
    /// Counts under `limits`, reported in `metrics`.
    pub fn new(limits: Limits, metrics: Arc<Metrics>) -> Arc<Admission> {
        Arc::new(Admission {
            limits,
            counts: Mutex::default(),
            rate: KeyedLimit::per_second(limits.connections_per_second),
            metrics,
        })
    }

    /// A place for a new session of a client at `peer` (unknown: counted in all only), or why not.
    /// The refusal is counted in `/metrics` and logged (rate-limited) here.
    pub fn admit(self: &Arc<Self>, peer: Option<IpAddr>) -> Result<Ticket, Refusal> {
        let key = peer.map(address_key);
        // The rate first, outside the lock: a client opening sessions in a loop is told to slow
        // down whatever the counts are.
        if let Some(Err(wait)) = key.map(|key| self.rate.check(&key)) {
            self.metrics.handshakes_refused_rate.inc();
            limited_warn!(
                REFUSED_RATE,
                "handshake refused from {}: over {} new sessions per second from it \
                 (--connections-per-second-per-address)",
                peer.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string()),
                self.limits.connections_per_second
            );
            return Err(Refusal::ConnectionRate(wait));
        }
        let mut counts = self.lock();
        let from_peer = key
            .and_then(|key| counts.per_address.get(&key).copied())
            .unwrap_or_default();
        let known = key.is_some();
        // The address's own shares before the pool's: a client that filled its share is told so
        // (429), not that the instance is full.
        let refusal = if counts.sessions >= self.limits.sessions {
            Some(Refusal::Sessions)
        } else if self.limits.per_address > 0
            && known
            && from_peer.sessions >= self.limits.per_address
        {
            Some(Refusal::PerAddress)
        } else if self.limits.unjoined_per_address > 0
            && known
            && from_peer.unjoined >= self.limits.unjoined_per_address
        {
            Some(Refusal::UnjoinedPerAddress)
        } else if counts.unjoined >= self.limits.unjoined {
            Some(Refusal::Unjoined)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            drop(counts);
            let peer = peer.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
            match refusal {
                Refusal::Sessions => {
                    self.metrics.handshakes_refused_sessions.inc();
                    limited_warn!(
                        REFUSED_SESSIONS,
                        "handshake refused from {peer}: {} sessions open (--max-sessions)",
                        self.limits.sessions
                    );
                }
                Refusal::PerAddress => {
                    self.metrics.handshakes_refused_per_address.inc();
                    limited_warn!(
                        REFUSED_PER_ADDRESS,
                        "handshake refused from {peer}: {} sessions open from it (--max-sessions-per-address)",
                        self.limits.per_address
                    );
                }
                Refusal::Unjoined => {
                    self.metrics.handshakes_refused_unjoined.inc();
                    limited_warn!(
                        REFUSED_UNJOINED,
                        "handshake refused from {peer}: {} sessions not joined to a namespace (--max-unjoined)",
                        self.limits.unjoined
                    );
                }
                // Answered above, before the counts.
                Refusal::ConnectionRate(_) => {}
                Refusal::UnjoinedPerAddress => {
                    self.metrics.handshakes_refused_unjoined_per_address.inc();
                    limited_warn!(
                        REFUSED_UNJOINED_PER_ADDRESS,
                        "handshake refused from {peer}: {} sessions from it not joined to a \
                         namespace (--max-unjoined-per-address)",
                        self.limits.unjoined_per_address
                    );
                }
            }
            return Err(refusal);
        }
        counts.sessions += 1;
        counts.unjoined += 1;
        if let Some(key) = key {
            let from_peer = counts.per_address.entry(key).or_default();
            from_peer.sessions += 1;
            from_peer.unjoined += 1;
        }
        self.publish(&counts);
        Ok(Ticket {
            admission: self.clone(),
            key,
            joined: false,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent whatever panicked while holding them: each update is one step.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, counts: &Counts) {
        self.metrics.engine_sessions.set(counts.sessions as i64);
        self.metrics.unjoined_sessions.set(counts.unjoined as i64);
    }
}

/// A client address as the per-address caps and limits count it: IPv4 (IPv4-mapped IPv6 too) as it
/// is; IPv6 by its /64 prefix.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// One session's place; given back when dropped (the session ended).
pub struct Ticket {
    admission: Arc<Admission>,
    key: Option<IpAddr>,
    joined: bool,
}

impl Ticket {
    /// The session joined a namespace: it no longer counts as not joined (once).
    pub fn joined(&mut self) {
        if self.joined {
            return;
        }
        self.joined = true;
        let mut counts = self.admission.lock();
        counts.unjoined = counts.unjoined.saturating_sub(1);
        if let Some(from_peer) = self.key.and_then(|key| counts.per_address.get_mut(&key)) {
            from_peer.unjoined = from_peer.unjoined.saturating_sub(1);
        }
        self.admission.publish(&counts);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.sessions = counts.sessions.saturating_sub(1);
        if !self.joined {
            counts.unjoined = counts.unjoined.saturating_sub(1);
        }
        if let Some(key) = self.key {
            if let Some(from_peer) = counts.per_address.get_mut(&key) {
                from_peer.sessions = from_peer.sessions.saturating_sub(1);
                if !self.joined {
                    from_peer.unjoined = from_peer.unjoined.saturating_sub(1);
                }
                if from_peer.sessions == 0 {
                    counts.per_address.remove(&key);
                }
            }
        }
        self.admission.publish(&counts);
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("key", &self.key)
            .field("joined", &self.joined)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(sessions: usize, per_address: usize, unjoined: usize) -> Arc<Admission> {
        let limits = Limits {
            sessions,
            per_address,
            unjoined,
            unjoined_per_address: 0,
            connections_per_second: 0,
        };
        Admission::new(limits, Arc::new(Metrics::default()))
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn admission_refuses_past_the_total_and_gives_places_back_when_tickets_drop() {
        let admission = admission(2, 0, 10);
        let a = admission.admit(ip("10.0.0.1")).unwrap();
        let _b = admission.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(
            admission.admit(ip("10.0.0.3")).unwrap_err(),
            Refusal::Sessions
        );
        assert_eq!(admission.metrics.handshakes_refused_sessions.get(), 1);
        assert_eq!(admission.metrics.engine_sessions.get(), 2);
        drop(a);
        assert!(
            admission.admit(ip("10.0.0.3")).is_ok(),
            "a place was given back"
        );
    }

    #[test]
    fn admission_caps_each_address_ipv6_by_its_64_prefix_and_zero_turns_it_off() {
        let admission = admission(100, 2, 100);
        let _a = admission.admit(ip("10.0.0.1")).unwrap();
        let _b = admission.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(
            admission.admit(ip("10.0.0.1")).unwrap_err(),
            Refusal::PerAddress,
            "an IPv4-mapped address is the same client"
        );
        assert!(
            admission.admit(ip("10.0.0.2")).is_ok(),
            "other addresses still admitted"
        );
        let _c = admission.admit(ip("2001:db8:0:1::1")).unwrap();
        let _d = admission.admit(ip("2001:db8:0:1::2")).unwrap();
        assert_eq!(
            admission.admit(ip("2001:db8:0:1:ffff::9")).unwrap_err(),
            Refusal::PerAddress
        );
        assert!(admission.admit(ip("2001:db8:0:2::1")).is_ok());
        assert_eq!(admission.metrics.handshakes_refused_per_address.get(), 2);

        let off = super::tests::admission(100, 0, 100);
        let tickets: Vec<_> = (0..50)
            .map(|_| off.admit(ip("10.0.0.1")).unwrap())
            .collect();
        assert_eq!(tickets.len(), 50);
    }

    #[test]
    fn admission_caps_sessions_not_joined_and_a_join_frees_the_place() {
        let admission = admission(100, 0, 2);
        let mut a = admission.admit(None).unwrap();
        let _b = admission.admit(None).unwrap();
        assert_eq!(admission.admit(None).unwrap_err(), Refusal::Unjoined);
        a.joined();
        a.joined();
        assert_eq!(admission.metrics.unjoined_sessions.get(), 1, "joined once");
        let c = admission.admit(None).unwrap();
        assert_eq!(admission.admit(None).unwrap_err(), Refusal::Unjoined);
        drop(c);
        drop(a);
        assert_eq!(admission.metrics.unjoined_sessions.get(), 1);
        assert_eq!(admission.metrics.engine_sessions.get(), 1);
        assert_eq!(admission.metrics.handshakes_refused_unjoined.get(), 2);
    }
}

#[cfg(test)]
mod unjoined_per_address {
    use super::*;

    fn admission(unjoined: usize, unjoined_per_address: usize) -> Arc<Admission> {
        let limits = Limits {
            sessions: 100,
            per_address: 0,
            unjoined,
            unjoined_per_address,
            connections_per_second: 0,
        };
        Admission::new(limits, Arc::new(Metrics::default()))
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn admission_caps_unjoined_sessions_per_address_and_ipv6_per_64_prefix() {
        let admission = admission(100, 2);
        let mut a = admission.admit(ip("10.0.0.1")).unwrap();
        let _b = admission.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(
            admission.admit(ip("10.0.0.1")).unwrap_err(),
            Refusal::UnjoinedPerAddress
        );
        assert!(admission.admit(ip("10.0.0.2")).is_ok(), "other addresses");
        // Joined sessions do not count against the share: a join frees one place, once.
        a.joined();
        a.joined();
        let _c = admission.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(
            admission.admit(ip("10.0.0.1")).unwrap_err(),
            Refusal::UnjoinedPerAddress
        );
        let _d = admission.admit(ip("2001:db8:0:1::1")).unwrap();
        let _e = admission.admit(ip("2001:db8:0:1::2")).unwrap();
        assert_eq!(
            admission.admit(ip("2001:db8:0:1:ffff::9")).unwrap_err(),
            Refusal::UnjoinedPerAddress
        );
        assert_eq!(
            admission
                .metrics
                .handshakes_refused_unjoined_per_address
                .get(),
            3
        );
        assert_eq!(admission.metrics.handshakes_refused_unjoined.get(), 0);
    }

    #[test]
    fn unjoined_share_is_given_back_when_a_session_ends_joined_or_not() {
        let admission = admission(100, 1);
        let unjoined = admission.admit(ip("10.0.0.1")).unwrap();
        drop(unjoined);
        let mut joined = admission.admit(ip("10.0.0.1")).unwrap();
        joined.joined();
        // A joined session keeps its address entry (it still counts in all); its end removes it.
        let waiting = admission.admit(ip("10.0.0.1")).unwrap();
        drop(joined);
        assert_eq!(
            admission.admit(ip("10.0.0.1")).unwrap_err(),
            Refusal::UnjoinedPerAddress,
            "the unjoined one still holds the share"
        );
        drop(waiting);
        assert!(admission.lock().per_address.is_empty(), "nothing left over");
        assert_eq!(admission.metrics.unjoined_sessions.get(), 0);
        assert_eq!(admission.metrics.engine_sessions.get(), 0);
        assert!(admission.admit(ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn zero_turns_the_unjoined_share_off_and_unknown_addresses_count_in_all_only() {
        let off = admission(3, 0);
        let tickets: Vec<_> = (0..3).map(|_| off.admit(ip("10.0.0.1")).unwrap()).collect();
        assert_eq!(
            off.admit(ip("10.0.0.2")).unwrap_err(),
            Refusal::Unjoined,
            "the pool's own cap still holds"
        );
        drop(tickets);
        let on = admission(3, 1);
        let _a = on.admit(None).unwrap();
        let _b = on.admit(None).unwrap();
        assert!(on.admit(ip("10.0.0.1")).is_ok());
    }
}

#[cfg(test)]
mod connection_rate {
    use super::*;

    #[test]
    fn admission_refuses_new_sessions_past_the_rate_per_address_ipv6_per_64_prefix() {
        let limits = Limits {
            sessions: 100,
            per_address: 0,
            unjoined: 100,
            unjoined_per_address: 0,
            connections_per_second: 2,
        };
        let admission = Admission::new(limits, Arc::new(Metrics::default()));
        let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        let _a = admission.admit(ip("10.0.0.1")).unwrap();
        let _b = admission.admit(ip("::ffff:10.0.0.1")).unwrap();
        let refusal = admission.admit(ip("10.0.0.1")).unwrap_err();
        assert!(
            matches!(refusal, Refusal::ConnectionRate(RetryAfter(1))),
            "{refusal:?}"
        );
        assert!(admission.admit(ip("10.0.0.2")).is_ok(), "other addresses");
        let _c = admission.admit(ip("2001:db8:0:1::1")).unwrap();
        let _d = admission.admit(ip("2001:db8:0:1::2")).unwrap();
        assert!(matches!(
            admission.admit(ip("2001:db8:0:1:ffff::9")),
            Err(Refusal::ConnectionRate(_))
        ));
        assert!(admission.admit(ip("2001:db8:0:2::1")).is_ok());
        assert!(
            admission.admit(None).is_ok(),
            "an unknown address has no rate"
        );
        assert_eq!(admission.metrics.handshakes_refused_rate.get(), 2);
        assert_eq!(
            admission.metrics.engine_sessions.get(),
            4,
            "refusals hold no place"
        );
    }
}
