//! The Engine.IO v4 heartbeat: the server pings, the client pongs, silence closes (reference §1.7).

mod common;

use std::time::Duration;

use common::{start_hub, test_config, Received};

#[actix_web::test]
async fn server_pings_every_interval_and_a_pong_keeps_the_session() {
    let hub = start_hub(test_config());
    let (mut client, _) = hub.eio().await;
    client.send("40").await;
    client.recv_connect().await;
    client.recv_text().await; // hub:offset
    for _ in 0..3 {
        assert_eq!(client.recv_text().await, "2");
        client.send("3").await;
    }
}

#[actix_web::test]
async fn session_closes_after_ping_timeout_without_pong() {
    let hub = start_hub(test_config());
    let (mut client, _) = hub.eio().await;
    assert_eq!(client.recv_text().await, "2");
    // 200 ms ping timeout; anything but a close within the receive timeout fails.
    let next = client.recv().await;
    assert!(
        matches!(next, Received::Close(_) | Received::Ended),
        "got {next:?}"
    );
}

#[actix_web::test]
async fn ping_from_client_is_a_protocol_error() {
    let hub = start_hub(test_config());
    let (mut client, _) = hub.eio().await;
    client.send("2").await;
    client.expect_closed().await;
}

#[actix_web::test]
async fn connection_that_joins_no_namespace_is_closed_after_connect_timeout() {
    let mut config = test_config();
    config.connect_timeout = Duration::from_millis(400);
    config.ping_interval = Duration::from_secs(10);
    let hub = start_hub(config);
    let (mut client, _) = hub.eio().await;
    assert!(matches!(
        client.recv().await,
        Received::Close(_) | Received::Ended
    ));
}
