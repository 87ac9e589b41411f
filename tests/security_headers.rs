//! The security headers on what the hub serves (README "Security"): the page gets the policy it
//! needs, everything else a policy that allows nothing, all of them `nosniff`, `DENY` and
//! `no-referrer`; and the Engine.IO endpoint works as before with them.

mod common;

use common::{start_hub, test_config, within, WAIT_TIMEOUT};

/// `GET path`: the status, the headers (lower-case names), the body.
async fn get(hub: &common::TestHub, path: &str) -> (u16, Vec<(String, String)>, String) {
    let what = format!("the answer to GET {path}");
    within(WAIT_TIMEOUT, &what, async {
        let mut res = awc::Client::new()
            .get(hub.url(path))
            .send()
            .await
            .expect("request");
        let headers = res
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = value.to_str().unwrap_or("<not text>").to_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        let body = res.body().limit(1 << 20).await.expect("body");
        (
            res.status().as_u16(),
            headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    })
    .await
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut values = headers.iter().filter(|(n, _)| n == name);
    let value = values.next().map(|(_, v)| v.as_str());
    assert!(values.next().is_none(), "{name} sent twice");
    value
}

/// Asserts the headers every answer carries, and returns its Content-Security-Policy.
fn assert_security_headers<'a>(path: &str, headers: &'a [(String, String)]) -> &'a str {
    assert_eq!(
        header(headers, "x-content-type-options"),
        Some("nosniff"),
        "{path}"
    );
    assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{path}");
    assert_eq!(
        header(headers, "referrer-policy"),
        Some("no-referrer"),
        "{path}"
    );
    let csp = header(headers, "content-security-policy")
        .unwrap_or_else(|| panic!("{path}: no Content-Security-Policy"));
    assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    csp
}

#[actix_web::test]
async fn the_page_gets_its_policy_and_every_other_answer_one_that_allows_nothing() {
    let hub = start_hub(test_config());
    let (status, headers, body) = get(&hub, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("<script src=\"loader.js\">"), "{body}");
    let csp = assert_security_headers("/", &headers);
    assert!(csp.starts_with("default-src 'self'; "), "{csp}");
    assert!(!csp.contains("unsafe-"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");

    for path in [
        "/app.js",
        "/loader.js",
        "/hub-client.js",
        "/styles.css",
        "/favicon.svg",
        "/socket.io/socket.io.min.js",
        "/healthz",
        "/metrics",
        "/no-such-file.js",
    ] {
        let (status, headers, _) = get(&hub, path).await;
        let expected = if path.starts_with("/no-such") {
            404
        } else {
            200
        };
        assert_eq!(status, expected, "{path}");
        let csp = assert_security_headers(path, &headers);
        assert_eq!(csp, "default-src 'none'; frame-ancestors 'none'", "{path}");
    }
}

#[actix_web::test]
async fn the_page_policy_allows_exactly_the_cdn_url_the_loader_falls_back_to() {
    let loader = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/public/loader.js"))
        .expect("public/loader.js");
    let src = loader
        .split("src: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the loader names its CDN fallback as src: \"…\"");
    assert!(src.starts_with("https://cdn.socket.io/"), "{src}");
    let integrity = loader
        .split("integrity: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the loader pins its CDN fallback as integrity: \"sha384-…\"");
    assert!(integrity.starts_with("sha384-"), "{integrity}");
    let hub = start_hub(test_config());
    let (_, headers, _) = get(&hub, "/").await;
    let csp = assert_security_headers("/", &headers);
    assert!(
        csp.contains(&format!("script-src 'self' {src} '{integrity}';")),
        "the policy does not allow {src} by its URL and its hash {integrity}: {csp}"
    );
}

#[actix_web::test]
async fn engine_io_long_polling_and_the_websocket_upgrade_work_with_the_headers() {
    let hub = start_hub(test_config());
    let (status, headers, open) = get(&hub, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(status, 200, "{open}");
    assert_security_headers("polling handshake", &headers);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; charset=UTF-8"),
        "nosniff needs the type polling clients expect"
    );
    let open: serde_json::Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));

    let session = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let (status, answer, _) = hub.http("POST", &session, "40").await;
    assert_eq!((status, answer.as_str()), (200, "ok"));
    let (status, headers, connect) = get(&hub, &session).await;
    assert_eq!(status, 200);
    assert_security_headers("polling GET", &headers);
    assert!(connect.starts_with("40{\"sid\":"), "{connect}");

    // The upgrade the official client makes next: 101, probe, upgrade.
    let mut ws = hub
        .ws(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("the WebSocket upgrade is accepted");
    ws.send("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    ws.send("5").await;
    ws.send("42[\"notify\",{\"title\":\"after the upgrade\"}]")
        .await;
    // The `hub:offset` event of the CONNECT may come first; the notification within a few frames.
    let mut frames = Vec::new();
    while !frames
        .iter()
        .any(|f: &String| f.contains("after the upgrade"))
    {
        assert!(
            frames.len() < 5,
            "no notification over the upgraded socket: {frames:?}"
        );
        frames.push(ws.recv_text_answering_pings().await);
    }
}

#[actix_web::test]
async fn a_refused_websocket_upgrade_carries_them_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = start_hub(test_config());
    // Engine.IO v3 is not served: the upgrade is answered 400 outside the app's middleware.
    let answer = within(WAIT_TIMEOUT, "the refused upgrade's answer", async {
        let mut tcp = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
        let request = "GET /socket.io/?EIO=3&transport=websocket HTTP/1.1\r\nhost: localhost\r\n\
            connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\
            sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await;
    let (head, _) = answer.split_once("\r\n\r\n").expect("an answer head");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect();
    let csp = assert_security_headers("refused upgrade", &headers);
    assert_eq!(csp, "default-src 'none'; frame-ancestors 'none'");
}
