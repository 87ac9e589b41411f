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

// ----
// The heartbeat and the connect timeout at their edges, on the session's `Moment` deadlines: a late
// pong within the timeout, pongs nobody asked for, a joined session past its connect timeout.

#[actix_web::test]
async fn a_pong_late_but_within_the_timeout_keeps_the_session_ping_after_ping() {
    let mut config = test_config();
    config.ping_interval = Duration::from_millis(200);
    config.ping_timeout = Duration::from_millis(1500);
    let hub = start_hub(config);
    let (mut client, _) = hub.eio().await;
    for _ in 0..3 {
        assert_eq!(client.recv_text().await, "2");
        actix_web::rt::time::sleep(Duration::from_millis(150)).await;
        client.send("3").await;
    }
    assert_eq!(
        client.recv_text().await,
        "2",
        "still pinged: the session lives"
    );
}

#[actix_web::test]
async fn pongs_nobody_asked_for_neither_close_the_session_nor_stop_its_pings() {
    let hub = start_hub(test_config());
    let (mut client, _) = hub.eio().await;
    for _ in 0..5 {
        client.send("3").await;
    }
    for _ in 0..3 {
        assert_eq!(client.recv_text().await, "2");
        client.send("3").await;
        client.send("3").await; // answered twice: the second is ignored
    }
}

#[actix_web::test]
async fn a_session_that_joined_outlives_its_connect_timeout() {
    let mut config = test_config();
    config.connect_timeout = Duration::from_millis(300);
    let hub = start_hub(config);
    let (mut client, _) = hub.eio().await;
    client.send("40").await;
    client.recv_connect().await;
    client.recv_text().await; // hub:offset
                              // Three pings (300 ms apart) take the session well past its connect timeout.
    for _ in 0..3 {
        assert_eq!(client.recv_text().await, "2");
        client.send("3").await;
    }
    let next = client.recv_within(Duration::from_millis(250)).await;
    assert!(
        !matches!(next, Some(Received::Close(_) | Received::Ended)),
        "closed: {next:?}"
    );
}

/// Many sessions on one thread's timers, their deadlines close together or tied: every one is
/// pinged, and each pong keeps its own session (none is skipped or told for another).
#[actix_web::test]
async fn many_sessions_with_close_deadlines_are_each_pinged_in_turn() {
    let mut config = test_config();
    config.ping_timeout = Duration::from_millis(1500); // 30 clients answered one after another
    let hub = start_hub(config);
    let mut clients = Vec::new();
    for _ in 0..30 {
        clients.push(hub.eio().await.0);
    }
    for _ in 0..2 {
        for client in &mut clients {
            assert_eq!(client.recv_text().await, "2");
            client.send("3").await;
        }
    }
}
