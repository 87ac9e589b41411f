//! Log lines that clients can cause, rate-limited: a flood of bad requests or of clients past a
//! bound must not become a flood of log lines (the log is an attack surface too).
//!
//! Owns: one rate limiter per kind of line (`governor`, the token bucket the rest of the hub's rate
//! limits use too) and the count of lines it held back, which the next line that passes reports.
//!
//! ```ignore
//! static REFUSED: LimitedLog = LimitedLog::per_minute(6);
//! limited_warn!(REFUSED, "handshake refused from {addr}: too many sessions");
//! // → "handshake refused from 10.0.0.7: too many sessions (41 similar lines suppressed)"
//! ```

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// One kind of log line and its budget: a burst of `per_minute` lines, refilled evenly over a minute.
/// Meant as a `static`; the limiter is built on first use.
pub struct LimitedLog {
    per_minute: u32,
    limiter: OnceLock<DefaultDirectRateLimiter>,
    suppressed: AtomicU64,
}

impl LimitedLog {
    /// A budget of `per_minute` lines per minute (at least one).
    pub const fn per_minute(per_minute: u32) -> LimitedLog {
        LimitedLog {
            per_minute,
            limiter: OnceLock::new(),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether a line may be written now; if so, also how many were held back since the last one.
    /// Counts the line as suppressed otherwise.
    pub fn admit(&self) -> Option<u64> {
        let limiter = self.limiter.get_or_init(|| {
            let n = NonZeroU32::new(self.per_minute.max(1)).expect("at least one");
            RateLimiter::direct(Quota::per_minute(n))
        });
        if limiter.check().is_ok() {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Writes `args` at `level` if the budget allows, with the count of lines held back before it.
    pub fn log(&self, level: log::Level, args: fmt::Arguments<'_>) {
        if !log::log_enabled!(level) {
            return;
        }
        match self.admit() {
            Some(0) => log::log!(level, "{args}"),
            Some(held) => log::log!(level, "{args} ({held} similar lines suppressed)"),
            None => {}
        }
    }
}

/// Log targets outside the hub whose lines any client can cause, one per malformed request: actix-http's
/// HTTP/1 dispatcher logs every request it cannot parse (a 100 KB URI, oversized or malformed headers)
/// at ERROR as `stream error: …`.
const CLIENT_CAUSED_TARGETS: [&str; 1] = ["actix_http::h1::dispatcher"];

/// The lines of [`CLIENT_CAUSED_TARGETS`], all kinds together.
static CLIENT_CAUSED: LimitedLog = LimitedLog::per_minute(6);

/// A logger that passes every record to `inner`, but those of [`CLIENT_CAUSED_TARGETS`] only under a
/// budget (six a minute, with the count held back): lines the hub's own code writes go through
/// `limited_warn!`, lines its libraries write come through here.
pub struct ClientCausedLimit<L> {
    inner: L,
}

impl<L: log::Log> ClientCausedLimit<L> {
    /// Wraps `inner`.
    pub fn new(inner: L) -> Self {
        ClientCausedLimit { inner }
    }
}

impl<L: log::Log> log::Log for ClientCausedLimit<L> {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.inner.enabled(record.metadata()) {
            return;
        }
        if !CLIENT_CAUSED_TARGETS.contains(&record.target()) {
            return self.inner.log(record);
        }
        match CLIENT_CAUSED.admit() {
            None => {}
            Some(0) => self.inner.log(record),
            Some(held) => self.inner.log(
                &log::Record::builder()
                    .metadata(record.metadata().clone())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .args(format_args!(
                        "{} ({held} similar lines suppressed)",
                        record.args()
                    ))
                    .build(),
            ),
        }
    }

    fn flush(&self) {
        self.inner.flush()
    }
}

/// Installs `env_logger` (its filter from `RUST_LOG`, `default_filter` otherwise) behind
/// [`ClientCausedLimit`]. For binaries; panics if a logger is already installed.
pub fn init_logging(default_filter: &str) {
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter))
            .build();
    let max_level = logger.filter();
    log::set_boxed_logger(Box::new(ClientCausedLimit::new(logger))).expect("one logger");
    log::set_max_level(max_level);
}

/// `limited_warn!(STATIC, "format", args…)`: a warning under that static's budget.
#[macro_export]
macro_rules! limited_warn {
    ($limit:expr, $($arg:tt)+) => {
        $limit.log(::log::Level::Warn, format_args!($($arg)+))
    };
}

/// `limited_info!(STATIC, "format", args…)`: an info line under that static's budget.
#[macro_export]
macro_rules! limited_info {
    ($limit:expr, $($arg:tt)+) => {
        $limit.log(::log::Level::Info, format_args!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limited_log_admits_its_burst_then_counts_what_it_holds_back() {
        let log = LimitedLog::per_minute(2);
        assert_eq!(log.admit(), Some(0));
        assert_eq!(log.admit(), Some(0));
        assert_eq!(log.admit(), None);
        assert_eq!(log.admit(), None);
        assert_eq!(log.suppressed.load(Ordering::Relaxed), 2);
    }
}
