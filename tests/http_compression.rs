//! Long-polling answers compressed as Engine.IO's `httpCompression` does (HUB_HTTP_COMPRESSION_THRESHOLD):
//! gzip or deflate per the request's Accept-Encoding, from the threshold up; nothing else changes.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{start_ready_hub, test_config, within, Received, TestHub, WAIT_TIMEOUT};
use realtime_hub::config::Config;

/// A config whose heartbeat does not interrupt a test's polls.
fn config(threshold: Option<usize>) -> Config {
    Config {
        ping_interval: Duration::from_secs(20),
        ping_timeout: Duration::from_secs(20),
        http_compression_threshold: threshold,
        ..test_config()
    }
}

/// A GET's answer, as sent: status, Content-Encoding, the body's bytes (not decompressed).
struct Raw {
    status: u16,
    encoding: Option<String>,
    body: Vec<u8>,
}

async fn get_raw(hub: &TestHub, path: &str, accept: Option<&str>) -> Raw {
    let answer = async {
        // no_decompress: awc would otherwise ask for compression itself and undo it.
        let mut req = awc::Client::new().get(hub.url(path)).no_decompress();
        if let Some(accept) = accept {
            req = req.insert_header(("accept-encoding", accept));
        }
        let mut res = req.send().await.expect("GET");
        let encoding = res
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = res.body().limit(16 << 20).await.expect("body").to_vec();
        Raw {
            status: res.status().as_u16(),
            encoding,
            body,
        }
    };
    within(WAIT_TIMEOUT, "a polling answer", answer).await
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut out)
        .expect("gzip");
    out
}

fn inflate(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::ZlibDecoder::new(bytes)
        .read_to_string(&mut out)
        .expect("zlib (HTTP deflate)");
    out
}

/// A polling socket joined to `/`, its CONNECT reply and offset event taken; returns its poll path.
async fn joined_polling(hub: &TestHub) -> String {
    let sid = hub.polling_session("/socket.io/").await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let (status, body, _) = hub.http("POST", &path, "40").await;
    assert_eq!(status, 200, "{body}");
    let reply = get_raw(hub, &path, None).await;
    let text = String::from_utf8(reply.body).unwrap();
    assert!(text.starts_with("40{"), "CONNECT reply, got {text}");
    path
}

/// A notification whose frame is about `size` bytes.
async fn publish_sized(hub: &TestHub, size: usize) {
    hub.publish(&"x".repeat(size)).await;
}

#[actix_web::test]
async fn polling_answers_over_the_threshold_come_gzipped_or_deflated_and_decompress_exactly() {
    let hub = start_ready_hub(config(Some(1024))).await;
    let (gzip, deflate, plain) = (
        joined_polling(&hub).await,
        joined_polling(&hub).await,
        joined_polling(&hub).await,
    );
    publish_sized(&hub, 5000).await;

    let plain = get_raw(&hub, &plain, None).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.encoding, None, "no Accept-Encoding: as is");
    let payload = String::from_utf8(plain.body).unwrap();
    assert!(
        payload.starts_with("42[\"notification\"") && payload.len() > 5000,
        "{payload:.80}"
    );

    let zipped = get_raw(&hub, &gzip, Some("gzip, deflate, br")).await;
    assert_eq!(zipped.encoding.as_deref(), Some("gzip"));
    assert!(zipped.body.len() < payload.len() / 4, "compressed");
    assert_eq!(gunzip(&zipped.body), payload);

    let deflated = get_raw(&hub, &deflate, Some("deflate")).await;
    assert_eq!(deflated.encoding.as_deref(), Some("deflate"));
    assert_eq!(inflate(&deflated.body), payload);
}

/// Polls `path` until `count` notifications came; gives each answer decompressed, and whether each
/// came gzipped.
async fn poll_notifications(
    hub: &TestHub,
    path: &str,
    gzip: bool,
    count: usize,
) -> Vec<(String, bool)> {
    let mut answers = Vec::new();
    let mut seen = 0;
    while seen < count {
        let accept = gzip.then_some("gzip");
        let answer = get_raw(hub, path, accept).await;
        let zipped = answer.encoding.as_deref() == Some("gzip");
        let text = if zipped {
            gunzip(&answer.body)
        } else {
            String::from_utf8(answer.body).unwrap()
        };
        seen += text.matches("42[\"notification\"").count();
        answers.push((text, zipped));
    }
    answers
}

#[actix_web::test]
async fn a_polling_answer_too_large_to_compress_inline_decompresses_exactly_too() {
    let hub = start_ready_hub(config(Some(1024))).await;
    let (zipped, plain) = (joined_polling(&hub).await, joined_polling(&hub).await);
    // Many notifications queued for one answer: past the size compressed on the blocking pool
    // (64 KiB, src/http/compression.rs's INLINE_MAX).
    for _ in 0..40 {
        publish_sized(&hub, 3000).await;
    }
    let plain = poll_notifications(&hub, &plain, false, 40).await;
    let zipped = poll_notifications(&hub, &zipped, true, 40).await;
    assert!(plain.iter().all(|(_, gz)| !gz));
    assert!(
        zipped.iter().all(|(_, gz)| *gz),
        "every answer over the threshold"
    );
    assert!(
        zipped.iter().any(|(text, _)| text.len() > 64 * 1024),
        "one answer large enough for the blocking pool"
    );
    let joined = |answers: &[(String, bool)]| {
        answers
            .iter()
            .map(|(text, _)| text.as_str())
            .collect::<Vec<_>>()
            .join("\u{1e}")
    };
    assert_eq!(joined(&zipped), joined(&plain), "the same frames, exactly");
}

#[actix_web::test]
async fn polling_answers_below_the_threshold_or_not_accepted_or_with_compression_off_are_not_compressed(
) {
    let hub = start_ready_hub(config(Some(1024))).await;
    let (small, refused) = (joined_polling(&hub).await, joined_polling(&hub).await);
    publish_sized(&hub, 10).await;
    let answer = get_raw(&hub, &small, Some("gzip")).await;
    assert_eq!(answer.encoding, None, "below the threshold");
    assert!(String::from_utf8(answer.body)
        .unwrap()
        .starts_with("42[\"notification\""));
    publish_sized(&hub, 5000).await;
    let answer = get_raw(&hub, &refused, Some("br, gzip;q=0")).await;
    assert_eq!(answer.encoding, None, "neither gzip nor deflate accepted");

    let off = start_ready_hub(config(None)).await;
    let path = joined_polling(&off).await;
    publish_sized(&off, 5000).await;
    let answer = get_raw(&off, &path, Some("gzip")).await;
    assert_eq!(answer.encoding, None, "compression off");
    assert!(answer.body.len() > 5000);
}

#[actix_web::test]
async fn polling_handshake_is_compressed_from_the_threshold_as_engine_io_compresses_every_polling_write(
) {
    let hub = start_ready_hub(config(Some(16))).await;
    let open = get_raw(&hub, "/socket.io/?EIO=4&transport=polling", Some("gzip")).await;
    assert_eq!(open.status, 200);
    assert_eq!(open.encoding.as_deref(), Some("gzip"));
    assert!(gunzip(&open.body).starts_with("0{\"sid\":"));
}

#[actix_web::test]
async fn websocket_frames_are_unaffected_by_http_compression() {
    let hub = start_ready_hub(config(Some(16))).await;
    let mut ws = hub.joined().await.client;
    let polling = joined_polling(&hub).await;
    publish_sized(&hub, 5000).await;
    let polled = get_raw(&hub, &polling, Some("gzip")).await;
    assert_eq!(polled.encoding.as_deref(), Some("gzip"));
    match ws.recv().await {
        Received::Text(text) => assert_eq!(text, gunzip(&polled.body)),
        other => panic!("the notification as a text frame, got {other:?}"),
    }
}
