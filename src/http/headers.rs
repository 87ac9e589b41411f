//! Security headers on every answer the hub serves through its HTTP routes: the page, its files,
//! the official client, the Engine.IO long-polling answers, `/metrics`, and error answers.
//!
//! ```text
//! every answer:   X-Content-Type-Options: nosniff
//!                 X-Frame-Options: DENY
//!                 Referrer-Policy: no-referrer
//! text/html:      Content-Security-Policy: PAGE_POLICY   (what public/index.html needs, nothing more)
//! anything else:  Content-Security-Policy: default-src 'none'; frame-ancestors 'none'
//! ```
//!
//! A header a handler set itself is kept. A WebSocket upgrade leaves the HTTP dispatcher before
//! any route (see `crate::http::socketio::websocket`): a refused one gets them there; the `101`
//! carries none, as a browser applies none of them to a WebSocket.
//!
//! Why `no-referrer` rather than `strict-origin-when-cross-origin`: neither the hub nor the page
//! reads `Referer`, and the page's one cross-site request (the CDN fallback of the official
//! client, with `?client=official`) then tells the CDN nothing about where the hub runs. It does not change the `Origin` that `fetch`,
//! XHR and WebSocket requests carry (Fetch §3.1: a CORS-mode or WebSocket request always sends its
//! real origin); only a no-cors POST (a plain HTML form) would send `Origin: null`, and the page
//! publishes with `fetch` or over its socket.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::Error;

/// Where the page loads the official client from when the hub has no local copy: the same version
/// as `tests/package.json` pins, checked by its `integrity` (sha384) in `public/loader.js`
/// (tests/security_headers.rs checks that the two name the same URL).
macro_rules! socket_io_cdn {
    () => {
        "https://cdn.socket.io/4.8.1/socket.io.min.js"
    };
}

/// The sha384 of that file (npm's bytes), as `public/loader.js` gives it in `integrity`
/// (tests/security_headers.rs checks that the two agree; the browser test, that it is the npm copy's).
macro_rules! socket_io_cdn_hash {
    () => {
        "sha384-mkQ3/7FUtcGyoppY6bz/PORYoGqOl7/aSUMn2ymDOJcapfS6PHqxhRTMh1RR0Q6+"
    };
}

/// The page's policy: its own scripts, styles, images and connections (same-origin `ws:`/`wss:`
/// included: CSP Level 3 lets `'self'` match them), the pinned CDN copy of the client by its exact
/// URL and by its hash (CSP Level 3 §8.3: a hash source matches an external script whose
/// `integrity` has that hash; the URL keeps browsers without that rule working, and the
/// `integrity` itself refuses other bytes either way), and nothing inline, no plugins, no
/// `<base>`, no framing.
pub const PAGE_POLICY: &str = concat!(
    "default-src 'self'; script-src 'self' ",
    socket_io_cdn!(),
    " '",
    socket_io_cdn_hash!(),
    "'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; ",
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
);

/// Everything else (JSON, scripts, text) renders nothing, so it may load nothing and be framed
/// nowhere (a browser opening such a URL directly gets no active content from it).
pub const RESOURCE_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// The middleware: adds the headers to the answer. An error that escapes every route becomes its
/// answer outside the app (`crate::serve`), which adds them with [`add`].
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut response = next.call(req).await?;
    add(response.headers_mut());
    Ok(response)
}

/// The headers for an answer with these `headers` (its content type decides the policy).
pub fn add(headers: &mut HeaderMap) {
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let policy = if html { PAGE_POLICY } else { RESOURCE_POLICY };
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, policy),
    ] {
        keep_or_insert(headers, name, value);
    }
}

fn keep_or_insert(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(content_type: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(content_type) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        add(&mut headers);
        headers
    }

    #[test]
    fn html_gets_the_page_policy_everything_else_the_empty_one() {
        let csp = |h: &HeaderMap| h.get(header::CONTENT_SECURITY_POLICY).cloned().unwrap();
        assert_eq!(csp(&answer(Some("text/html; charset=utf-8"))), PAGE_POLICY);
        assert_eq!(csp(&answer(Some("Text/HTML"))), PAGE_POLICY);
        for other in [Some("application/json"), Some("text/javascript"), None] {
            assert_eq!(csp(&answer(other)), RESOURCE_POLICY, "{other:?}");
        }
    }

    #[test]
    fn a_header_the_handler_set_is_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
        add(&mut headers);
        assert_eq!(headers.get(header::X_FRAME_OPTIONS).unwrap(), "SAMEORIGIN");
        assert_eq!(
            headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
            "nosniff"
        );
    }

    #[test]
    fn the_page_policy_allows_no_inline_code_and_the_cdn_by_its_exact_url_and_hash() {
        assert!(!PAGE_POLICY.contains("unsafe"), "{PAGE_POLICY}");
        assert!(PAGE_POLICY.contains(concat!(
            "script-src 'self' ",
            socket_io_cdn!(),
            " '",
            socket_io_cdn_hash!(),
            "';"
        )));
        assert!(PAGE_POLICY.contains("frame-ancestors 'none'"));
        assert!(RESOURCE_POLICY.contains("frame-ancestors 'none'"));
    }
}
