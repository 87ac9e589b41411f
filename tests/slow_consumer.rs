//! A client that stops reading is cut off once its unread bytes pass the bound, and can recover.

mod common;

use std::time::Duration;

use common::raw_ws::RawClient;
use common::{event_args, start_hub, test_config, within};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[actix_web::test]
async fn client_that_stops_reading_is_dropped_and_recovers_on_reconnect() {
    let mut config = test_config();
    config.max_buffered_bytes = 256 * 1024;
    // Pings do not reach a client whose window is shut, so they cannot end this session; the kernel
    // drops the connection once nothing was taken for interval + timeout (TCP_USER_TIMEOUT).
    config.ping_interval = Duration::from_secs(2);
    config.ping_timeout = Duration::from_secs(2);
    let hub = start_hub(config);

    let mut slow = RawClient::connect(hub.addr).await;
    assert!(slow.read_text().await.starts_with("0{"));
    slow.send_text("40").await;
    let reply: Value =
        serde_json::from_str(slow.read_text().await.strip_prefix("40").unwrap()).unwrap();
    let offset = event_args(&slow.read_text().await).unwrap()[1]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(hub.sessions().await, 1);

    // From here on the client reads nothing. Publish until the hub gives up on it (bounded).
    let body = json!({ "body": "x".repeat(60_000) }).to_string();
    let mut published = 0;
    while hub.sessions().await == 1 {
        assert!(
            published < 1000,
            "a client that never reads was never dropped"
        );
        assert_eq!(hub.notify(&body).await.0, 201);
        published += 1;
    }
    // The kernel buffers several MB on loopback before the hub's own queue grows.
    assert!(
        published > 4,
        "dropped after {published} notifications: before its bound was reached"
    );

    let (mut client, _) = hub.eio().await;
    client
        .send(&format!(
            "40{}",
            json!({ "pid": reply["pid"], "offset": offset })
        ))
        .await;
    for _ in 0..published {
        assert!(event_args(&client.recv_text_answering_pings().await).is_some());
    }
    let (sid, pid) = client.recv_connect().await;
    assert_eq!(
        (json!(sid), json!(pid)),
        (reply["sid"].clone(), reply["pid"].clone()),
        "the session recovered"
    );

    // The hub gave up on the client: after a heartbeat's worth of not taking anything, its connection
    // is gone, not parked with megabytes queued for it.
    actix_web::rt::time::sleep(Duration::from_secs(6)).await;
    let mut buf = vec![0u8; 1 << 20];
    let mut drained = 0usize;
    let drain = async {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), slow.tcp.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => drained += n,
                Err(_) => {
                    panic!("the slow client's connection is still open after {drained} more bytes")
                }
            }
        }
    };
    within(
        Duration::from_secs(30),
        "the slow client's connection to end (bytes kept coming)",
        drain,
    )
    .await;
    // Only what already sat in this side's receive buffer: the server's queue (megabytes) was
    // dropped with the connection, not delivered once the client read again.
    assert!(
        drained < 1 << 20,
        "{drained} bytes were still delivered: the connection was parked, not dropped"
    );
}

#[actix_web::test]
async fn client_that_reads_late_gets_everything_queued_for_it_in_order() {
    let mut config = test_config();
    // Within the bound: the hub must keep what the socket does not take, not give up.
    config.max_buffered_bytes = 64 * 1024 * 1024;
    config.ping_interval = Duration::from_secs(60);
    let hub = start_hub(config);

    let mut late = RawClient::connect(hub.addr).await;
    assert!(late.read_text().await.starts_with("0{"));
    late.send_text("40").await;
    assert!(late.read_text().await.starts_with("40{"));
    assert!(
        event_args(&late.read_text().await).is_some(),
        "the offset event"
    );

    // The client reads nothing while 18 MB are published: more than loopback socket buffers hold,
    // so most of it waits in the hub until the socket takes it.
    let filler = "x".repeat(60_000);
    let mut offsets = Vec::new();
    for n in 0..300 {
        let body = json!({ "title": n.to_string(), "body": filler }).to_string();
        let (status, answer) = hub.notify(&body).await;
        assert_eq!(status, 201, "{answer}");
        offsets.push(answer["offset"].as_str().unwrap().to_owned());
    }
    assert_eq!(hub.sessions().await, 1, "not given up on");

    for (n, offset) in offsets.iter().enumerate() {
        let frame = tokio::time::timeout(Duration::from_secs(10), late.read_text())
            .await
            .unwrap_or_else(|_| panic!("notification {n} never came"));
        let args = event_args(&frame).expect("a notification");
        assert_eq!(
            (args[1]["title"].as_str(), args[2].as_str()),
            (Some(n.to_string().as_str()), Some(offset.as_str())),
            "notification {n} in log order"
        );
    }
}

#[actix_web::test]
async fn client_that_floods_pings_without_reading_is_no_longer_read() {
    let mut config = test_config();
    config.ping_interval = Duration::from_secs(60);
    let hub = start_hub(config);
    let mut flooder = RawClient::connect(hub.addr).await;
    // Each ping asks for a pong of the same size. 64 MB of them, never reading a pong: if the hub
    // kept reading, it would keep as much queued for a client that takes nothing.
    let ping = {
        let mut frame = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
        frame.extend([b'p' ^ 1; 125]);
        frame.repeat(512)
    };
    let flood = async {
        for _ in 0..(64 << 20) / ping.len() {
            flooder.tcp.write_all(&ping).await.unwrap();
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(5), flood)
            .await
            .is_err(),
        "the hub read 64 MB of pings from a client that reads nothing"
    );
    // Everyone else is served as usual.
    let mut other = hub.joined().await;
    let offset = hub.publish("still here").await;
    let args = event_args(&other.client.recv_text_answering_pings().await).unwrap();
    assert_eq!(args[2], offset.as_str());
}

#[actix_web::test]
async fn polling_client_that_stops_polling_is_closed_not_left_behind() {
    let mut config = test_config();
    config.max_buffered_bytes = 16 * 1024;
    config.ping_interval = Duration::from_secs(60);
    let hub = start_hub(config);
    let sid = hub.polling_session("/socket.io/").await;
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(hub.http("POST", &url, "40").await.0, 200);
    assert!(hub.http("GET", &url, "").await.1.starts_with("40{"));
    assert_eq!(hub.sessions().await, 1);
    // The client stops polling; broadcasts pile up past the bound.
    let body = json!({ "body": "x".repeat(2000) }).to_string();
    for _ in 0..20 {
        assert_eq!(hub.notify(&body).await.0, 201);
    }
    for _ in 0..100 {
        if hub.sessions().await == 0 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        hub.sessions().await,
        0,
        "the session was closed, not left without broadcasts"
    );
    let (status, _, _) = hub.http("GET", &url, "").await;
    assert_eq!(
        status, 400,
        "the client learns its session is gone (and reconnects, recovering)"
    );
}
