//! The value parsers of the settings: each refuses what would stop the hub from working, with a
//! message saying what is expected.

use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Duration;

/// A path inside the project: relative to the working directory when it exists there (a deployment
/// that copies `public/` next to the binary), else to the source tree the binary was built from
/// (`cargo run` and the tests, from any directory).
pub(super) fn project_path(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        here
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
    }
}

/// A size or a count: zero would stop the hub from working, so it is refused rather than obeyed.
pub(super) fn at_least_one(value: &str) -> Result<usize, &'static str> {
    match value.parse() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1"),
    }
}

/// The most streams the log may be sharded over: every instance runs a read loop per shard, and
/// every offset a client holds has an id per shard.
pub const MAX_STREAM_SHARDS: usize = 64;

/// `HUB_STREAM_SHARDS`: 1 (one stream, the Node-compatible mode) to [`MAX_STREAM_SHARDS`].
pub(super) fn stream_shards(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n @ 1..=MAX_STREAM_SHARDS) => Ok(n),
        _ => Err(format!(
            "expected a whole number of streams from 1 (one stream, the default) to \
             {MAX_STREAM_SHARDS}"
        )),
    }
}

/// `REDIS_URL` in one of the forms [`crate::store::Endpoint::parse`] takes; an empty value is the
/// embedded log (see `Config::from_env_and_args`).
pub(super) fn redis_url(value: &str) -> Result<String, String> {
    crate::store::Endpoint::parse(value).map(|_| value.to_owned())
}

/// A duration in milliseconds, at least 1 (a zero timer would fire at once).
pub(super) fn millis(value: &str) -> Result<Duration, &'static str> {
    match value.parse() {
        Ok(n) if n >= 1 => Ok(Duration::from_millis(n)),
        _ => Err("expected a whole number of milliseconds, at least 1"),
    }
}

/// The endpoint's path with exactly one trailing slash, as the router matches it.
pub(super) fn endpoint_path(value: &str) -> Result<String, &'static str> {
    if !value.starts_with('/') {
        return Err("expected a path starting with /");
    }
    Ok(format!("{}/", value.trim_end_matches('/')))
}

/// The non-empty items of a comma-separated list, trimmed.
pub(super) fn list(value: &str) -> Result<Vec<String>, Infallible> {
    Ok(value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect())
}

/// A byte count, or `off` for none (`HUB_HTTP_COMPRESSION_THRESHOLD`).
pub(super) fn threshold_or_off(value: &str) -> Result<Option<usize>, &'static str> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| "expected a number of bytes, or off")
}

/// At least one namespace, each starting with `/` as Socket.IO names them.
pub(super) fn namespaces(value: &str) -> Result<Vec<String>, &'static str> {
    let Ok(namespaces) = list(value);
    if namespaces.is_empty() || namespaces.iter().any(|n| !n.starts_with('/')) {
        return Err("expected namespaces starting with /, e.g. /,/admin");
    }
    Ok(namespaces)
}

/// The origins of `HUB_CORS_ORIGINS` as browsers send them in `Origin` (RFC 6454 §6.2):
/// `scheme://host[:port]`, lowercase, without a default port (80 for http, 443 for https) or a
/// trailing `/`; or `*`, or `null`. Anything else (a path, a query, user info, no scheme) is
/// refused here: it could never match, and every request from that page would get 403.
pub(super) fn origins(value: &str) -> Result<Vec<String>, String> {
    let Ok(items) = list(value);
    items.iter().map(|item| origin(item)).collect()
}

fn origin(item: &str) -> Result<String, String> {
    if item == "*" || item == "null" {
        return Ok(item.to_owned());
    }
    let refused = || {
        format!("{item:?} is not an origin: expected scheme://host[:port] (e.g. https://app.example), * or null")
    };
    let lower = item.trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://").ok_or_else(refused)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(refused());
    }
    let default_port = match scheme {
        "http" => Some(":80"),
        "https" => Some(":443"),
        _ => None,
    };
    let authority = match default_port {
        Some(port) => authority.strip_suffix(port).unwrap_or(authority),
        None => authority,
    };
    Ok(format!("{scheme}://{authority}"))
}
