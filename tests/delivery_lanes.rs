//! Who writes a live frame: the Hub itself once a WebSocket socket is joined and past its recovery
//! handover (its lane open), the socket's Session before that and for polling. Each path must still
//! deliver every notification once, in log order.

mod common;

use std::time::Duration;

use common::{event_args, event_offset, start_hub, test_config, within, TestHub};

/// The next `n` notification events on `client` as (title, offset), in the order they arrived.
async fn notifications(client: &mut common::WsClient, n: usize) -> Vec<(String, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        let frame = client.recv_text_answering_pings().await;
        if let Some(args) = event_args(&frame) {
            if args[0] == "notification" {
                let title = args[1]["title"].as_str().unwrap().to_owned();
                got.push((title, event_offset(&frame)));
            }
        }
    }
    got
}

/// The titles of the next `n` notification events on `client`, in the order they arrived.
async fn titles(client: &mut common::WsClient, n: usize) -> Vec<String> {
    let got = notifications(client, n).await;
    got.into_iter().map(|(title, _)| title).collect()
}

async fn direct(hub: &TestHub) -> u64 {
    hub.metric("hub_deliveries_direct_total").await
}

#[actix_web::test]
async fn a_joined_websocket_gets_its_first_live_frame_through_its_session_and_the_rest_from_the_hub(
) {
    let hub = start_hub(test_config());
    let mut a = hub.joined().await;
    hub.publish("first").await;
    assert_eq!(titles(&mut a.client, 1).await, ["first"]);
    assert_eq!(direct(&hub).await, 0, "the first goes through the session");
    for n in 0..20 {
        hub.publish(&format!("n{n}")).await;
    }
    let expected: Vec<String> = (0..20).map(|n| format!("n{n}")).collect();
    assert_eq!(
        titles(&mut a.client, 20).await,
        expected,
        "once each, in order"
    );
    assert_eq!(direct(&hub).await, 20, "the Hub wrote the rest itself");
    assert_eq!(hub.metric("hub_deliveries_total").await, 21);
}

#[actix_web::test]
async fn a_resumed_socket_gets_the_hubs_direct_frames_only_after_its_replay() {
    let hub = start_hub(test_config());
    let mut a = hub.joined().await;
    hub.publish("seen").await;
    let seen = notifications(&mut a.client, 1).await;
    hub.publish("seen too").await;
    assert_eq!(titles(&mut a.client, 1).await, ["seen too"]);
    // Resuming from the offset of "seen" replays "seen too" and what follows.
    let offset = seen[0].1.clone();
    a.client.close().await;
    for n in 0..5 {
        hub.publish(&format!("missed{n}")).await;
    }
    let from = direct(&hub).await;
    let mut resumed = hub.resume(&a.pid, &offset).await;
    let replayed: Vec<String> = resumed
        .replayed
        .iter()
        .filter_map(|frame| event_args(frame))
        .map(|args| args[1]["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        replayed,
        ["seen too", "missed0", "missed1", "missed2", "missed3", "missed4"]
    );
    for n in 0..5 {
        hub.publish(&format!("live{n}")).await;
    }
    let expected: Vec<String> = (0..5).map(|n| format!("live{n}")).collect();
    assert_eq!(
        titles(&mut resumed.client, 5).await,
        expected,
        "once each, in order"
    );
    assert_eq!(
        direct(&hub).await - from,
        4,
        "the first live frame after the replay through the session, the rest from the Hub"
    );
}

#[actix_web::test]
async fn a_polling_session_gets_every_frame_through_its_session() {
    let hub = start_hub(test_config());
    let sid = hub.polling_session("/socket.io/").await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let (status, _, _) = hub.http("POST", &path, "40").await;
    assert_eq!(status, 200);
    let (_, connect, _) = hub.http("GET", &path, "").await;
    assert!(connect.starts_with("40"), "{connect}");
    let mut got = String::new();
    for n in 0..3 {
        hub.publish(&format!("p{n}")).await;
    }
    within(
        Duration::from_secs(10),
        "three notifications polled",
        async {
            while !got.contains("p2") {
                let (_, body, _) = hub.http("GET", &path, "").await;
                got.push_str(&body);
            }
        },
    )
    .await;
    assert!(got.find("p0") < got.find("p1") && got.find("p1") < got.find("p2"));
    assert_eq!(
        direct(&hub).await,
        0,
        "polling never takes the Hub's direct path"
    );
}

/// The Hub counts its direct writes once per fan-out (shared atomics, not one update per socket):
/// the totals must still be per socket and frame, bytes as on the wire, one lag observation each.
#[actix_web::test]
async fn direct_writes_are_counted_for_every_socket_and_frame() {
    let hub = start_hub(test_config());
    let mut a = hub.joined().await;
    let mut b = hub.joined().await;
    // Through each session first: their lanes open after it.
    hub.publish("open").await;
    assert_eq!(titles(&mut a.client, 1).await, ["open"]);
    assert_eq!(titles(&mut b.client, 1).await, ["open"]);
    let before = (
        direct(&hub).await,
        hub.metric("hub_deliveries_total").await,
        hub.metric("hub_delivered_bytes_total").await,
        hub.metric("hub_delivery_lag_seconds_count").await,
    );
    let mut wire_bytes = 0;
    for n in 0..5 {
        hub.publish(&format!("n{n}")).await;
    }
    for client in [&mut a.client, &mut b.client] {
        let mut got = 0;
        while got < 5 {
            let frame = client.recv_text_answering_pings().await;
            if event_args(&frame).is_some_and(|args| args[0] == "notification") {
                // RFC 6455 §5.2: payload and its unmasked header (2 bytes up to 125, else 4).
                wire_bytes += frame.len() + if frame.len() <= 125 { 2 } else { 4 };
                got += 1;
            }
        }
    }
    let after = (
        direct(&hub).await,
        hub.metric("hub_deliveries_total").await,
        hub.metric("hub_delivered_bytes_total").await,
        hub.metric("hub_delivery_lag_seconds_count").await,
    );
    assert_eq!(
        after.0 - before.0,
        10,
        "direct: 5 frames to each of 2 sockets"
    );
    assert_eq!(after.1 - before.1, 10, "deliveries: the same 10");
    assert_eq!(after.2 - before.2, wire_bytes as u64, "bytes as written");
    assert_eq!(after.3 - before.3, 10, "one lag observation per delivery");
}
