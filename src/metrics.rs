//! Metrics: every counter and gauge of one hub instance, and their Prometheus text rendering.
//!
//! Owns: the numbers, as atomics. The code that counts holds an `Arc<Metrics>` and increments a field;
//! `GET /metrics` calls [`Metrics::render`]. Nothing here asks an actor: rendering reads atomics only.
//!
//! Adding a metric: a field here, its increment where it happens, and one line in `render`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A number that only goes up (Prometheus `counter`).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A number that goes up and down (Prometheus `gauge`).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The metrics of one instance (tests run several in one process, so not a global).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Sockets joined to a namespace on this instance (set by the Hub).
    pub sockets: Gauge,
    /// 1 while the log backend is reachable and its read loop reading (set by the backend).
    pub log_reading: Gauge,
    /// Stream entries read but not delivered: other message types, targeted, volatile, binary, or
    /// malformed (Node peers write them; reference §4.4).
    pub entries_skipped: Counter,
    /// Log entries that do not frame as an event array (never delivered).
    pub entries_unframed: Counter,
    /// Clients dropped because they did not take what was sent to them (the outgoing bound).
    pub slow_consumers: Counter,
    /// Session-record refreshes that failed (their resumes may fail).
    pub record_refreshes_failed: Counter,
    /// Times the read loop found the log's epoch changed (the log was deleted, flushed or replaced;
    /// every client was disconnected and starts a fresh session).
    pub log_epoch_changes: Counter,
}

impl Metrics {
    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: i64| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
            );
        };
        gauge(
            "hub_sessions",
            "Sockets joined to a namespace on this instance.",
            self.sockets.get(),
        );
        gauge(
            "hub_ready",
            "Whether the log backend is reachable and being read.",
            self.log_reading.get(),
        );
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            );
        };
        counter(
            "hub_stream_entries_skipped_total",
            "Stream entries read but not delivered (not a plain broadcast, or malformed).",
            self.entries_skipped.get(),
        );
        counter(
            "hub_entries_unframed_total",
            "Log entries whose event is not a JSON array, never delivered.",
            self.entries_unframed.get(),
        );
        counter(
            "hub_slow_consumers_total",
            "Clients dropped for not taking what was sent to them.",
            self.slow_consumers.get(),
        );
        counter(
            "hub_session_record_refreshes_failed_total",
            "Session record refreshes that failed; those sessions may not resume.",
            self.record_refreshes_failed.get(),
        );
        counter(
            "hub_log_epoch_changes_total",
            "Times the log was found replaced (deleted, flushed, restarted empty); clients were disconnected.",
            self.log_epoch_changes.get(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_every_number_in_prometheus_text_format() {
        let metrics = Metrics::default();
        metrics.sockets.set(3);
        metrics.log_reading.set(1);
        metrics.entries_skipped.add(2);
        metrics.entries_unframed.inc();
        metrics.slow_consumers.add(4);
        metrics.record_refreshes_failed.add(5);
        metrics.log_epoch_changes.add(6);
        let text = metrics.render();
        for line in [
            "# TYPE hub_sessions gauge\nhub_sessions 3\n",
            "# TYPE hub_ready gauge\nhub_ready 1\n",
            "# TYPE hub_stream_entries_skipped_total counter\nhub_stream_entries_skipped_total 2\n",
            "hub_entries_unframed_total 1\n",
            "hub_slow_consumers_total 4\n",
            "hub_session_record_refreshes_failed_total 5\n",
            "hub_log_epoch_changes_total 6\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
        assert_eq!(text.matches("# HELP ").count(), 7);
    }
}
