//! Bad input closes only the connection that sent it: the hub keeps serving everyone else.

mod common;

use std::time::Duration;

use awc::ws::CloseCode;
use common::raw_ws::RawClient;
use common::{event_args, start_hub, test_config, within, Received, WAIT_TIMEOUT};
use tokio::io::AsyncWriteExt;

#[actix_web::test]
async fn oversized_frame_is_closed_with_1009() {
    let mut config = test_config();
    config.max_payload = 1000;
    let hub = start_hub(config);
    let (mut client, open) = hub.eio().await;
    assert_eq!(open["maxPayload"], 1000);
    client.send(&format!("4{}", "x".repeat(1200))).await;
    assert_eq!(
        client.expect_closed().await,
        Received::Close(Some(CloseCode::Size))
    );
}

#[actix_web::test]
async fn frame_announcing_more_than_the_limit_is_refused_before_it_arrives() {
    let mut config = test_config();
    config.max_payload = 1000;
    config.ping_interval = Duration::from_secs(60);
    let hub = start_hub(config);
    let mut client = RawClient::connect(hub.addr).await;
    assert!(client.read_text().await.starts_with("0{"));
    // A text frame announcing a terabyte, then a little of it: the hub must not wait for (and
    // buffer) the whole frame before refusing it.
    let mut head = vec![0x81, 0x80 | 127];
    head.extend((1u64 << 40).to_be_bytes());
    head.extend([1, 2, 3, 4]);
    let write = async {
        client.tcp.write_all(&head).await.unwrap();
        client.tcp.write_all(&[b'x'; 4096]).await.unwrap();
    };
    within(WAIT_TIMEOUT, "the frame head and 4 KB to be written", write).await;
    let (opcode, payload) = tokio::time::timeout(Duration::from_secs(3), client.read_frame())
        .await
        .expect("closed within 3 s");
    assert_eq!(opcode, 8, "a close frame");
    assert_eq!(payload[..2], 1009u16.to_be_bytes(), "1009: message too big");
}

#[actix_web::test]
async fn frame_at_the_limit_is_accepted() {
    let mut config = test_config();
    config.max_payload = 1000;
    let hub = start_hub(config);
    let mut joined = hub.joined().await;
    let event = format!(
        r#"42["chat","{}"]"#,
        "x".repeat(1000 - r#"42["chat",""]"#.len())
    );
    assert_eq!(event.len(), 1000);
    joined.client.send(&event).await;
    let offset = hub.publish("after").await;
    let args = event_args(&joined.client.recv_text_answering_pings().await).unwrap();
    assert_eq!(args[2], offset.as_str());
}

#[actix_web::test]
async fn bad_clients_and_bad_bodies_do_not_disturb_other_clients() {
    let mut config = test_config();
    config.max_payload = 1000;
    // The healthy client reads only at the end: no heartbeat may end it meanwhile.
    config.ping_interval = std::time::Duration::from_secs(60);
    let hub = start_hub(config);
    let mut healthy = hub.joined().await;

    let mut offenders = Vec::new();
    for frames in [
        vec!["4abc"],
        vec!["42{}"],
        vec![r#"42abc["x"]"#],
        vec!["zzz"],
    ] {
        let mut joined = hub.joined().await;
        for frame in frames {
            joined.client.send(frame).await;
        }
        offenders.push(joined.client);
    }
    let mut oversized = hub.joined().await;
    oversized.client.send(&"4".repeat(5000)).await;
    assert_eq!(
        oversized.client.expect_closed().await,
        Received::Close(Some(CloseCode::Size))
    );
    for offender in &mut offenders {
        offender.expect_closed().await;
    }
    assert_eq!(hub.notify("{not json").await.0, 400);
    assert_eq!(hub.notify(&"x".repeat(100_000)).await.0, 413);

    let offset = hub.publish("everyone else still served").await;
    let args = event_args(&healthy.client.recv_text_answering_pings().await).unwrap();
    assert_eq!(
        (args[1]["title"].as_str(), args[2].as_str()),
        (Some("everyone else still served"), Some(&*offset))
    );
}
