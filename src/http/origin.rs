//! Which web pages may use the hub from a browser: the `Origin` check of publishes and of every
//! Engine.IO request, and the origins CORS answers for (one predicate, so they never disagree).
//!
//! ```text
//! no Origin header                      admitted: not a browser (Node, Python, curl), or a browser's
//!                                       same-origin GET, which it does not mark
//! Origin = the hub's own                admitted: scheme http or https (behind a TLS proxy the hub
//!                                       sees http), host and port those of the request's `Host`
//! Origin listed in HUB_CORS_ORIGINS     admitted (`*`: every origin; `null` only when listed)
//! any other Origin                      refused: 403, before anything happens
//! ```
//!
//! Why: a page on any site can make a visitor's browser send a "simple" request (a form POST, a
//! `fetch` with `text/plain`, a WebSocket) to the hub without asking it first; the browser marks it
//! with the page's `Origin`, which the page cannot forge.

use actix_web::http::header::{self, HeaderMap, HeaderValue};

/// The origins allowed besides the hub's own (`HUB_CORS_ORIGINS`).
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    listed: Vec<String>,
    any: bool,
}

impl OriginPolicy {
    /// The policy for `HUB_CORS_ORIGINS` (`*` allows any origin).
    pub fn new(cors_origins: &[String]) -> OriginPolicy {
        OriginPolicy {
            any: cors_origins.iter().any(|o| o == "*"),
            listed: cors_origins.to_vec(),
        }
    }

    /// Whether `*` is configured.
    pub fn any(&self) -> bool {
        self.any
    }

    /// Whether `origin` is allowed cross-site (listed, or `*`): what CORS answers for.
    pub fn listed(&self, origin: &HeaderValue) -> bool {
        self.any
            || self
                .listed
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin.as_bytes()))
    }

    /// Whether a request with `headers` may act: it has no `Origin`, or its own, or a listed one.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        match headers.get(header::ORIGIN) {
            None => true,
            Some(origin) => self.listed(origin) || own_origin(origin, headers.get(header::HOST)),
        }
    }
}

/// Whether `origin` is `http://<host>` or `https://<host>` for the request's `Host` (default ports
/// as the origin's scheme has them; host names case-insensitive).
fn own_origin(origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), host.map(HeaderValue::to_str)) else {
        return false;
    };
    let lower = origin.to_ascii_lowercase();
    let (authority, default_port) = if let Some(rest) = lower.strip_prefix("http://") {
        (rest, 80)
    } else if let Some(rest) = lower.strip_prefix("https://") {
        (rest, 443)
    } else {
        return false;
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return false;
    }
    match (
        host_port(authority, default_port),
        host_port(&host.to_ascii_lowercase(), default_port),
    ) {
        (Some(origin), Some(host)) => origin == host,
        _ => false,
    }
}

/// `host[:port]` (host possibly `[v6]`) as host and port, the port `default` when absent.
fn host_port(authority: &str, default: u16) -> Option<(&str, u16)> {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            Some((host, port.parse().ok()?)).filter(|(host, _)| !host.is_empty())
        }
        _ => Some((authority, default)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderName;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        headers.insert(
            HeaderName::from_static("x-other"),
            HeaderValue::from_static("1"),
        );
        headers
    }

    #[test]
    fn origin_policy_admits_no_origin_the_hubs_own_and_listed_ones_only() {
        let none = OriginPolicy::new(&[]);
        let host = "hub.example:3000";
        assert!(none.admits(&headers(None, host)));
        for own in [
            "http://hub.example:3000",
            "https://hub.example:3000",
            "HTTP://Hub.Example:3000",
        ] {
            assert!(none.admits(&headers(Some(own), host)), "{own}");
        }
        for foreign in [
            "http://evil.example",
            "http://hub.example",
            "http://hub.example:3001",
            "http://hub.example:3000.evil.example",
            "http://evil.example/hub.example:3000",
            "http://user@hub.example:3000",
            "ws://hub.example:3000",
            "null",
            "",
        ] {
            assert!(!none.admits(&headers(Some(foreign), host)), "{foreign}");
        }
        // Default ports: behind a proxy the Host may carry them or not.
        assert!(none.admits(&headers(Some("https://hub.example"), "hub.example")));
        assert!(none.admits(&headers(Some("https://hub.example"), "hub.example:443")));
        assert!(none.admits(&headers(Some("http://hub.example"), "hub.example:80")));
        assert!(!none.admits(&headers(Some("http://hub.example"), "hub.example:443")));
        assert!(none.admits(&headers(Some("http://[::1]:3000"), "[::1]:3000")));
        // An IPv6 host without a port: its colons are not a port separator.
        assert!(none.admits(&headers(Some("http://[::1]"), "[::1]")));
        assert!(none.admits(&headers(Some("http://[::1]"), "[::1]:80")));
        assert!(!none.admits(&headers(Some("http://[::1]:3000"), "[::2]:3000")));

        let listed = OriginPolicy::new(&["https://app.example".into(), "null".into()]);
        assert!(listed.admits(&headers(Some("https://app.example"), host)));
        assert!(listed.admits(&headers(Some("null"), host)));
        assert!(!listed.admits(&headers(Some("https://app.example:8443"), host)));
        assert!(!listed.any());

        let any = OriginPolicy::new(&["*".into()]);
        assert!(any.admits(&headers(Some("http://evil.example"), host)));
        assert!(any.admits(&headers(Some("null"), host)));
        assert!(any.any());
    }
}
