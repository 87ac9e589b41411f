//! Who may change something through the HTTP API (publish today, every later mutating endpoint
//! too): the [`Publisher`] extractor, and the JSON-only rule of endpoints that take a body.
//!
//! ```text
//! Origin foreign (crate::http::origin)              ─► 403 {"error"}
//! over --publish-per-second-per-address (client)     ─► 429 {"error"}, Retry-After: <s>
//! API keys set, none given                           ─► 401 {"error"}, WWW-Authenticate: Bearer realm="realtime-hub"
//! API keys set, a wrong one                          ─► 401 {"error"}, WWW-Authenticate: Bearer realm="realtime-hub", error="invalid_token"
//! over --publish-per-second-per-key (that key)       ─► 429 {"error"}, Retry-After: <s>
//! then, for a JSON body: Content-Type not application/json ─► 415 {"error"}
//! ```
//!
//! The per-address limit comes before the key check, so guessing keys is as slow as publishing.
//! A key is taken from `Authorization: Bearer <key>` or `X-API-Key: <key>`, never from the URL
//! (URLs end up in access logs, proxies and browser history). Keys are compared as SHA-256 digests
//! in constant time, against every configured key whatever matched: neither timing nor length
//! tells which key, or how much of one, a guess got right. No log line carries a key.

use std::future::{ready, Ready};
use std::net::{IpAddr, SocketAddr};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::error::ApiError;
use super::AppState;
use crate::admission::address_key;
use crate::config::Secret;
use crate::limited_warn;
use crate::log_limit::LimitedLog;
use crate::metrics::Metrics;
use crate::rate_limit::KeyedLimit;

/// The header that may carry an API key instead of `Authorization: Bearer`.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The API keys and the publish rate limits, shared by every worker.
pub struct Publishers {
    /// SHA-256 of each configured key, in configuration order; empty: open mode.
    keys: Vec<[u8; 32]>,
    per_address: KeyedLimit<IpAddr>,
    /// Keyed by the key's position in the configuration (never the key itself).
    per_key: KeyedLimit<usize>,
}

impl Publishers {
    /// From `HUB_API_KEYS` (empty: anyone may publish) and the two publish rates (0: no limit).
    pub fn new(api_keys: &[Secret], per_address: u32, per_key: u32) -> Publishers {
        Publishers {
            keys: api_keys.iter().map(|key| digest(key.expose())).collect(),
            per_address: KeyedLimit::per_second(per_address),
            per_key: KeyedLimit::per_second(per_key),
        }
    }

    /// Whether API keys are required (not open mode).
    pub fn keys_required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The position of the configured key `given` is, if any: every key is compared, in constant
    /// time, whichever matches.
    fn key_index(&self, given: &str) -> Option<usize> {
        let given = digest(given);
        let mut found = 0usize;
        let mut any = Choice::from(0);
        for (index, key) in self.keys.iter().enumerate() {
            let equal = key.ct_eq(&given);
            // Branch-free select of the index: no early exit, no data-dependent branch.
            let mask = usize::from(equal.unwrap_u8()).wrapping_neg();
            found |= index & mask;
            any |= equal;
        }
        bool::from(any).then_some(found)
    }

    /// Whether `given` is one of the configured keys (compared as [`Self::admit`] compares them),
    /// for endpoints that read rather than change (`GET /notifications`).
    pub fn is_key(&self, given: &str) -> bool {
        self.key_index(given).is_some()
    }

    /// The checks of the module's table but the content type, for a request with `headers` from
    /// `peer`; each refusal is counted in `metrics` and logged (rate-limited), without the key.
    pub fn admit(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<Publisher, ApiError> {
        let metrics: &Metrics = &state.metrics;
        let client = peer.map(|peer| address_key(peer.ip()));
        // The peer as it connected (the bucket above is its /64 for IPv6, not an address).
        let shown = || peer.map_or_else(|| "an unknown address".to_owned(), |p| p.ip().to_string());
        if !state.origins.admits(headers) {
            metrics.origin_refused.inc();
            limited_warn!(
                REFUSED_ORIGIN,
                "publish from {} refused (403): Origin {:?} is neither this hub nor in HUB_CORS_ORIGINS",
                shown(),
                headers.get(header::ORIGIN).map(|o| String::from_utf8_lossy(o.as_bytes()))
            );
            return Err(ApiError::ForeignOrigin);
        }
        if let Some(Err(wait)) = client.map(|client| self.per_address.check(&client)) {
            metrics.publish_rate_limited_per_address.inc();
            limited_warn!(
                RATE_LIMITED_ADDRESS,
                "publish from {} refused (429): over --publish-per-second-per-address",
                shown()
            );
            return Err(ApiError::TooManyPublishes {
                retry_after: wait.0,
                per: "client address",
            });
        }
        if !self.keys_required() {
            return Ok(Publisher { key: None });
        }
        let given = credentials(headers);
        let Some(index) = given.and_then(|given| self.key_index(given)) else {
            metrics.publish_unauthorized.inc();
            // What was given is never logged: a near-miss of a real key is itself a secret.
            limited_warn!(
                UNAUTHORIZED,
                "publish from {} refused (401): {}",
                shown(),
                if given.is_some() {
                    "wrong API key"
                } else {
                    "no API key"
                }
            );
            return Err(ApiError::Unauthorized {
                invalid: given.is_some(),
            });
        };
        if let Err(wait) = self.per_key.check(&index) {
            metrics.publish_rate_limited_per_key.inc();
            limited_warn!(
                RATE_LIMITED_KEY,
                "publish from {} refused (429): API key #{} over --publish-per-second-per-key",
                shown(),
                index + 1
            );
            return Err(ApiError::TooManyPublishes {
                retry_after: wait.0,
                per: "API key",
            });
        }
        Ok(Publisher { key: Some(index) })
    }
}

static REFUSED_ORIGIN: LimitedLog = LimitedLog::per_minute(6);
static RATE_LIMITED_ADDRESS: LimitedLog = LimitedLog::per_minute(6);
static UNAUTHORIZED: LimitedLog = LimitedLog::per_minute(6);
static RATE_LIMITED_KEY: LimitedLog = LimitedLog::per_minute(6);
static UNSUPPORTED_MEDIA_TYPE: LimitedLog = LimitedLog::per_minute(6);

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The key a request presents: `Authorization: Bearer <key>` (scheme case-insensitive), else
/// `X-API-Key: <key>`; the first of each header only.
pub fn credentials(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    bearer.or_else(|| {
        headers
            .get(API_KEY_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|key| !key.is_empty())
    })
}

/// A request allowed to publish (see the module's table): an extractor, so an endpoint that takes
/// one cannot run without the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publisher {
    /// Which configured API key (its position), or `None` in open mode.
    pub key: Option<usize>,
}

impl FromRequest for Publisher {
    type Error = ApiError;
    type Future = Ready<Result<Publisher, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            // Not reachable: the app always has its state. Refuse rather than run unchecked.
            return ready(Err(ApiError::Unavailable));
        };
        ready(
            state
                .publishers
                .admit(state, req.headers(), req.peer_addr()),
        )
    }
}

/// Refuses (415) a body not declared `application/json` (parameters such as `; charset=utf-8`
/// allowed, the type case-insensitive), an empty one without a content type too: the cross-site
/// "simple" requests a page can send without asking (`text/plain`, forms) are never JSON.
pub fn require_json(headers: &HeaderMap, metrics: &Metrics) -> Result<(), ApiError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or("").trim());
    if media_type.is_some_and(|media_type| media_type.eq_ignore_ascii_case("application/json")) {
        return Ok(());
    }
    metrics.publish_unsupported_media_type.inc();
    limited_warn!(
        UNSUPPORTED_MEDIA_TYPE,
        "publish refused (415): Content-Type {:?} is not application/json",
        media_type.unwrap_or("(none)")
    );
    Err(ApiError::UnsupportedMediaType)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
        headers
    }

    #[test]
    fn credentials_come_from_bearer_or_x_api_key_headers_only() {
        assert_eq!(credentials(&with("authorization", "Bearer k1")), Some("k1"));
        assert_eq!(
            credentials(&with("authorization", "bearer  k1 ")),
            Some("k1")
        );
        assert_eq!(credentials(&with("authorization", "Basic azE6")), None);
        assert_eq!(credentials(&with("authorization", "Bearer ")), None);
        assert_eq!(credentials(&with("x-api-key", "k2")), Some("k2"));
        assert_eq!(credentials(&HeaderMap::new()), None);
    }

    #[test]
    fn every_configured_key_is_found_and_nothing_else() {
        let publishers = Publishers::new(&["k1".into(), "key-two".into(), "k3".into()], 0, 0);
        assert_eq!(publishers.key_index("k1"), Some(0));
        assert_eq!(publishers.key_index("key-two"), Some(1));
        assert_eq!(publishers.key_index("k3"), Some(2));
        for wrong in ["", "k", "k2", "k1 ", "K1", "key-two-and-more"] {
            assert_eq!(publishers.key_index(wrong), None, "{wrong:?}");
        }
        assert!(!Publishers::new(&[], 0, 0).keys_required());
    }

    #[test]
    fn only_json_media_types_pass() {
        let metrics = Metrics::default();
        for json in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            " application/json ",
        ] {
            assert_eq!(
                require_json(&with("content-type", json), &metrics),
                Ok(()),
                "{json}"
            );
        }
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/json-seq",
            "",
        ] {
            assert_eq!(
                require_json(&with("content-type", other), &metrics),
                Err(ApiError::UnsupportedMediaType),
                "{other}"
            );
        }
        assert_eq!(
            require_json(&HeaderMap::new(), &metrics),
            Err(ApiError::UnsupportedMediaType)
        );
        assert_eq!(metrics.publish_unsupported_media_type.get(), 7);
    }
}
