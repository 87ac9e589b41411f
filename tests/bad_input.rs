//! Bad input closes only the connection that sent it: the hub keeps serving everyone else.

mod common;

use awc::ws::CloseCode;
use common::{event_args, start_hub, test_config, Received};

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
