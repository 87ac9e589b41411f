//! The per-connection event limit (`HUB_SOCKET_EVENTS_PER_SECOND`, `HUB_SOCKET_ABUSE_LIMIT`): past
//! it a client's events are not handed to the application (acked `{"error":"rate limited"}` when
//! the client asked), refusals past the abuse limit disconnect it for good, and other clients are
//! served all along.
//!
//! Counts are bounded by what a token bucket can pass in the measured time (burst + rate × elapsed,
//! elapsed measured around the whole exchange), so a slow machine widens the bounds instead of
//! failing the test.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{event_args, start_hub, test_config, within, Received, WsClient, WAIT_TIMEOUT};
use realtime_hub::config::Config;
use serde_json::{json, Value};

/// The test config with the default limits, and no Engine.IO pings during a flood: a client busy
/// sending cannot answer one within 200 ms on a loaded machine.
fn quiet_config() -> Config {
    Config {
        ping_interval: Duration::from_secs(60),
        ping_timeout: Duration::from_secs(60),
        ..test_config()
    }
}

fn limited_config(per_second: u32, abuse_limit: u32) -> Config {
    let mut config = quiet_config();
    config.security.socket_events_per_second = per_second;
    config.security.socket_abuse_limit = abuse_limit;
    config
}

/// `42[<id>]["notify",{"title":…}]` on namespace `nsp`.
fn notify_frame(nsp: &str, ack: Option<u64>, title: &str) -> String {
    let nsp = if nsp == "/" {
        String::new()
    } else {
        format!("{nsp},")
    };
    let id = ack.map(|id| id.to_string()).unwrap_or_default();
    format!("42{nsp}{id}{}", json!(["notify", { "title": title }]))
}

/// An ack frame `43[<nsp>,]<id>[answer]`: its namespace, id and first argument.
fn parse_ack(frame: &str) -> Option<(String, u64, Value)> {
    let rest = frame.strip_prefix("43")?;
    let (nsp, rest) = match rest.strip_prefix('/') {
        Some(_) => {
            let (nsp, rest) = rest.split_once(',')?;
            (nsp.to_owned(), rest)
        }
        None => ("/".to_owned(), rest),
    };
    let digits = rest.find('[')?;
    let id = rest[..digits].parse().ok()?;
    let args: Vec<Value> = serde_json::from_str(&rest[digits..]).ok()?;
    Some((nsp, id, args.into_iter().next()?))
}

/// Reads until `n` acks came (events on the way, the flood's own broadcasts among them, skipped):
/// `(nsp, id)` → answer.
async fn read_acks(client: &mut WsClient, n: usize) -> HashMap<(String, u64), Value> {
    let reading = async {
        let mut acks = HashMap::new();
        while acks.len() < n {
            let frame = client.recv_text_answering_pings().await;
            if let Some((nsp, id, answer)) = parse_ack(&frame) {
                assert!(
                    acks.insert((nsp, id), answer).is_none(),
                    "acked twice: {frame}"
                );
            } else {
                assert!(frame.starts_with("42"), "not an event or an ack: {frame}");
            }
        }
        acks
    };
    within(2 * WAIT_TIMEOUT, "the acks of the flood", reading).await
}

/// How many of `answers` published (`{"id","offset"}`) and how many were rate limited; anything
/// else fails the test.
fn tally<'a>(answers: impl IntoIterator<Item = &'a Value>) -> (usize, usize) {
    let (mut accepted, mut limited) = (0, 0);
    for answer in answers {
        if answer["id"].is_string() && answer["offset"].is_string() {
            accepted += 1;
        } else if *answer == json!({ "error": "rate limited" }) {
            limited += 1;
        } else {
            panic!("unexpected answer {answer}");
        }
    }
    (accepted, limited)
}

/// The most a bucket of `burst` refilled at `per_second` can pass in `elapsed` (GCRA: the burst,
/// then one token every 1/rate).
fn most_passed(per_second: u32, burst: u32, elapsed: Duration) -> usize {
    burst as usize + (f64::from(per_second) * elapsed.as_secs_f64()).floor() as usize
}

/// Reads `client` until a notification titled `title` arrives (others skipped).
async fn await_notification(client: &mut WsClient, title: &str) {
    let waiting = async {
        loop {
            let frame = client.recv_text_answering_pings().await;
            if event_args(&frame)
                .is_some_and(|args| args[0] == "notification" && args[1]["title"] == title)
            {
                return;
            }
        }
    };
    within(
        WAIT_TIMEOUT,
        &format!("the notification {title:?}"),
        waiting,
    )
    .await
}

#[actix_web::test]
async fn rate_limit_acks_a_flood_past_the_default_limit_without_disconnecting_it_while_others_are_served(
) {
    let config = quiet_config();
    let (per_second, abuse_limit) = (
        config.security.socket_events_per_second,
        config.security.socket_abuse_limit,
    );
    assert_eq!(
        (per_second, abuse_limit),
        (50, 1000),
        "the documented defaults"
    );
    let hub = start_hub(config);
    let mut flooder = hub.joined().await;
    let mut other = hub.joined().await;
    let started = Instant::now();
    for id in 0..500 {
        flooder
            .client
            .send(&notify_frame("/", Some(id), "flood"))
            .await;
    }
    // Mid-flood, another client gets what is published.
    hub.publish("during the flood").await;
    await_notification(&mut other.client, "during the flood").await;
    for id in 500..1000 {
        flooder
            .client
            .send(&notify_frame("/", Some(id), "flood"))
            .await;
    }
    let answers = read_acks(&mut flooder.client, 1000).await;
    let elapsed = started.elapsed();
    let (accepted, limited) = tally(answers.values());
    assert_eq!(accepted + limited, 1000);
    assert!(
        accepted >= per_second as usize,
        "the burst passes: {accepted}"
    );
    assert!(
        accepted <= most_passed(per_second, per_second, elapsed),
        "{accepted} published in {elapsed:?}"
    );
    assert!(limited > 0, "past the limit, rate limited ({elapsed:?})");
    // Not disconnected: under the abuse limit the connection keeps being answered.
    flooder
        .client
        .send(&notify_frame("/", Some(1000), "after"))
        .await;
    let last = read_acks(&mut flooder.client, 1).await;
    assert!(last.contains_key(&("/".to_owned(), 1000)));
    assert!(hub.metric("hub_socket_events_rate_limited_total").await >= limited as u64);
    assert_eq!(hub.metric("hub_socket_abuse_disconnects_total").await, 0);
}

/// Reads a connection the hub disconnects for abuse up to its close: the rate-limited acks before
/// it, and whether the DISCONNECT came last.
async fn read_until_disconnected(client: &mut WsClient) -> (usize, bool) {
    let reading = async {
        let (mut limited, mut disconnected) = (0, false);
        loop {
            match client.recv().await {
                Received::Text(frame) if frame == "41" => disconnected = true,
                Received::Text(frame) => {
                    assert!(!disconnected, "{frame} after the DISCONNECT");
                    if let Some((_, _, answer)) = parse_ack(&frame) {
                        limited += usize::from(answer == json!({ "error": "rate limited" }));
                    }
                }
                Received::Binary(bytes) => panic!("binary {bytes:?}"),
                Received::Close(_) | Received::Ended => return (limited, disconnected),
            }
        }
    };
    within(
        2 * WAIT_TIMEOUT,
        "the flooding connection to close",
        reading,
    )
    .await
}

#[actix_web::test]
async fn rate_limit_past_the_abuse_limit_disconnects_the_flooder_for_good_while_others_stay() {
    let (per_second, abuse_limit) = (10, 20);
    let hub = start_hub(limited_config(per_second, abuse_limit));
    let mut flooder = hub.joined().await;
    let mut other = hub.joined().await;
    let started = Instant::now();
    for id in 0..300 {
        // The hub closes the connection partway: later sends may fail.
        if !flooder
            .client
            .try_send(&notify_frame("/", Some(id), "flood"))
            .await
        {
            break;
        }
    }
    let (limited, disconnected) = read_until_disconnected(&mut flooder.client).await;
    let elapsed = started.elapsed();
    assert!(
        disconnected,
        "a DISCONNECT (41) before the close: the client does not reconnect"
    );
    assert!(
        (abuse_limit as usize..=most_passed(per_second, abuse_limit, elapsed)).contains(&limited),
        "{limited} refusals acked before the disconnect, in {elapsed:?}"
    );
    assert_eq!(hub.metric("hub_socket_abuse_disconnects_total").await, 1);
    // The others are still served.
    hub.publish("after the abuse").await;
    await_notification(&mut other.client, "after the abuse").await;
    // And the disconnected session cannot be resumed: a fresh session, not the flooder's.
    let mut resume = hub.send_resume(&flooder.pid, &flooder.offset).await;
    let (replayed, pid) = within(WAIT_TIMEOUT, "the resume's CONNECT reply", async {
        let mut before = Vec::new();
        loop {
            let frame = resume.recv_text_answering_pings().await;
            if let Some(reply) = frame.strip_prefix("40") {
                let reply: Value = serde_json::from_str(reply).expect("CONNECT reply is JSON");
                return (before, reply["pid"].as_str().map(str::to_owned));
            }
            before.push(frame);
        }
    })
    .await;
    assert!(
        replayed.is_empty(),
        "replayed to the abusive session: {replayed:?}"
    );
    assert_ne!(
        pid.as_deref(),
        Some(flooder.pid.as_str()),
        "the abusive session was resumed"
    );
}

#[actix_web::test]
async fn rate_limit_abuse_over_polling_answers_the_acks_and_the_disconnect_then_the_close() {
    let hub = start_hub(limited_config(10, 20));
    let sid = hub.polling_session("/socket.io/").await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(hub.http("POST", &path, "40").await.0, 200);
    let mut joined = String::new();
    while !joined.contains("hub:offset") {
        let (status, body, _) = hub.http("GET", &path, "").await;
        assert_eq!(status, 200, "{body}");
        joined.push_str(&body);
    }
    let flood: Vec<String> = (0..300)
        .map(|id| notify_frame("/", Some(id), "flood"))
        .collect();
    let ((get_status, answer, _), (post_status, _, _)) = hub
        .while_polling(&path, "POST", &path, &flood.join("\u{1e}"))
        .await;
    assert_eq!((get_status, post_status), (200, 200), "{answer}");
    let packets: Vec<&str> = answer.split('\u{1e}').collect();
    assert_eq!(packets.last(), Some(&"41"), "the DISCONNECT last: {answer}");
    // Until that close is taken, the session is closing, not gone: a POST the client's flood still
    // had on the way is taken ("ok", ignored) as Node takes it, not refused as a transport error.
    let late = notify_frame("/", Some(1000), "late");
    let (status, body, _) = hub.http("POST", &path, &late).await;
    assert_eq!((status, body.as_str()), (200, "ok"), "a POST while closing");
    // The close in the next answer, as Node does: the official client handles a DISCONNECT a tick
    // after decoding it, so a close in the same payload would read as a transport close first.
    assert_eq!(
        hub.http("GET", &path, "").await.1,
        "1",
        "then the Engine.IO close"
    );
    assert_eq!(
        hub.http("POST", &path, &late).await.0,
        400,
        "then the session is gone"
    );
    let limited = packets
        .iter()
        .filter_map(|packet| parse_ack(packet))
        .filter(|(_, _, answer)| *answer == json!({ "error": "rate limited" }))
        .count();
    assert!(
        limited >= 20,
        "the refusals' acks first, as over a WebSocket: {answer}"
    );
    assert_eq!(hub.metric("hub_socket_abuse_disconnects_total").await, 1);
}

#[actix_web::test]
async fn rate_limit_drops_events_without_ack_silently_and_counts_them() {
    let per_second = 10;
    let hub = start_hub(limited_config(per_second, 1000));
    let mut flooder = hub.joined().await;
    let started = Instant::now();
    for _ in 0..200 {
        flooder
            .client
            .send(&notify_frame("/", None, "unacked"))
            .await;
    }
    // The one event that asks for an ack comes last: every frame the others caused is before its ack.
    flooder
        .client
        .send(&notify_frame("/", Some(999), "acked"))
        .await;
    let acks = read_acks(&mut flooder.client, 1).await;
    let elapsed = started.elapsed();
    assert!(
        acks.contains_key(&("/".to_owned(), 999)),
        "events without an ack got none: {acks:?}"
    );
    let refused = hub.metric("hub_socket_events_rate_limited_total").await as usize;
    let passed_at_most = most_passed(per_second, per_second, elapsed);
    assert!(
        refused >= 201 - passed_at_most.min(201) && refused <= 201 - per_second as usize,
        "{refused} of 201 refused in {elapsed:?}"
    );
    assert!(refused > 0, "past the limit, refused ({elapsed:?})");
}

#[actix_web::test]
async fn rate_limit_refills_at_its_rate() {
    let hub = start_hub(limited_config(1, 1000));
    let mut client = hub.joined().await;
    let started = Instant::now();
    for id in 0..10 {
        client
            .client
            .send(&notify_frame("/", Some(id), "burst"))
            .await;
    }
    let (accepted, limited) = tally(read_acks(&mut client.client, 10).await.values());
    let elapsed = started.elapsed();
    assert!(
        (1..=most_passed(1, 1, elapsed)).contains(&accepted),
        "{accepted} passed in {elapsed:?}"
    );
    assert!(
        limited > 0,
        "the second event within a second is refused ({elapsed:?})"
    );
    // Waiting is the behaviour under test: a second later a token is back.
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    client
        .client
        .send(&notify_frame("/", Some(100), "refilled"))
        .await;
    let answer = read_acks(&mut client.client, 1).await;
    assert_eq!(tally(answer.values()), (1, 0), "{answer:?}");
}

#[actix_web::test]
async fn rate_limit_is_one_allowance_per_connection_whatever_its_namespaces() {
    let mut config = limited_config(1, 1000);
    config.namespaces = vec!["/".into(), "/admin".into()];
    let hub = start_hub(config);
    let (mut client, _) = hub.eio().await;
    client.send("40").await;
    client.recv_connect().await;
    client.send("40/admin,").await;
    let reply = within(WAIT_TIMEOUT, "the /admin CONNECT reply", async {
        loop {
            let frame = client.recv_text_answering_pings().await;
            if frame.starts_with("40/admin,") {
                return frame;
            }
        }
    })
    .await;
    assert!(reply.contains("\"sid\""), "{reply}");
    let started = Instant::now();
    for id in 0..5 {
        client.send(&notify_frame("/", Some(id), "main")).await;
        client
            .send(&notify_frame("/admin", Some(id), "admin"))
            .await;
    }
    let answers = read_acks(&mut client, 10).await;
    let elapsed = started.elapsed();
    assert!(answers.keys().filter(|(nsp, _)| nsp == "/admin").count() == 5);
    let (accepted, limited) = tally(answers.values());
    assert!(
        accepted <= most_passed(1, 1, elapsed),
        "{accepted} passed in {elapsed:?} over two namespaces: one allowance, not one each"
    );
    assert_eq!(accepted + limited, 10);
}

#[actix_web::test]
async fn rate_limit_applies_at_its_setting_and_zero_disables_it() {
    for (per_second, limited_expected) in [(20, true), (0, false)] {
        let hub = start_hub(limited_config(per_second, 1000));
        let mut client = hub.joined().await;
        let started = Instant::now();
        // Within the 256 replies a connection may have in flight, which an unlimited flood meets.
        for id in 0..200 {
            client
                .client
                .send(&notify_frame("/", Some(id), "flood"))
                .await;
        }
        let (accepted, limited) = tally(read_acks(&mut client.client, 200).await.values());
        let elapsed = started.elapsed();
        if limited_expected {
            assert!(limited > 0, "limited at {per_second}/s ({elapsed:?})");
            assert!(accepted <= most_passed(per_second, per_second, elapsed));
        } else {
            assert_eq!((accepted, limited), (200, 0), "0 disables the limit");
        }
        hub.handle.stop(false).await;
    }
}

/// Reads `client` until the answer to a CONNECT on `/`: `Ok(())` admitted, `Err(frame)` refused.
async fn connect_answer(client: &mut WsClient) -> Result<(), String> {
    within(WAIT_TIMEOUT, "the CONNECT answer", async {
        loop {
            match client.recv().await {
                Received::Text(frame) if frame.starts_with("40") => return Ok(()),
                Received::Text(frame) if frame.starts_with("44") => return Err(frame),
                Received::Text(_) => {}
                other => panic!("connection ended while connecting: {other:?}"),
            }
        }
    })
    .await
}

#[actix_web::test]
async fn rate_limit_counts_connects_so_a_connect_disconnect_loop_is_refused_and_then_disconnected()
{
    let hub = start_hub(limited_config(1, 1000));
    let (mut client, _) = hub.eio().await;
    let started = Instant::now();
    let (mut admitted, mut refused) = (0, 0);
    for _ in 0..10 {
        client.send("40").await;
        match connect_answer(&mut client).await {
            Ok(()) => {
                admitted += 1;
                client.send("41").await;
            }
            Err(frame) => {
                assert_eq!(frame, r#"44{"message":"rate limited"}"#);
                refused += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    // The first CONNECT (one per served namespace) is free; the rest spend the allowance.
    assert!(
        admitted <= 1 + most_passed(1, 1, elapsed),
        "{admitted} CONNECTs admitted in {elapsed:?} at 1 a second"
    );
    assert_eq!(admitted + refused, 10);
    assert!(hub.metric("hub_socket_events_rate_limited_total").await >= refused as u64);
    // Refused, not closed: once the allowance refills, the same connection joins.
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    client.send("40").await;
    assert_eq!(connect_answer(&mut client).await, Ok(()));

    // Past the abuse limit the loop ends the connection, as a flood of events does.
    let hub = start_hub(limited_config(1, 3));
    let (mut client, _) = hub.eio().await;
    for _ in 0..2 {
        client.send("40").await;
        assert_eq!(connect_answer(&mut client).await, Ok(()));
        client.send("41").await;
    }
    for _ in 0..10 {
        if !client.try_send("40").await {
            break;
        }
    }
    let (_, disconnected) = read_until_disconnected(&mut client).await;
    assert!(
        !disconnected,
        "no namespace was joined by the loop's end: no DISCONNECT packet, the connection closed"
    );
    assert!(hub.metric("hub_socket_abuse_disconnects_total").await >= 1);
}

#[actix_web::test]
async fn rate_limit_counts_client_acks_so_a_flood_of_them_is_dropped_then_disconnected() {
    let hub = start_hub(limited_config(5, 20));
    let mut client = hub.joined().await;
    // Acks of ids the server never asked: each costs a parse and a lookup, and spends the budget.
    for id in 0..200 {
        if !client.client.try_send(&format!("43{id}[\"x\"]")).await {
            break;
        }
    }
    let (_, disconnected) = read_until_disconnected(&mut client.client).await;
    assert!(
        disconnected,
        "a DISCONNECT for the joined namespace before the close"
    );
    assert!(hub.metric("hub_socket_events_rate_limited_total").await >= 20);
    assert_eq!(hub.metric("hub_socket_abuse_disconnects_total").await, 1);
}

#[actix_web::test]
async fn rate_limit_counts_connects_to_namespaces_not_served_so_a_loop_of_them_is_refused_then_disconnected(
) {
    // Within the allowance: Node's answer to a namespace it does not serve.
    let hub = start_hub(limited_config(1, 1000));
    let (mut client, _) = hub.eio().await;
    client.send("40/nowhere,").await;
    let answer = client.recv_text().await;
    assert_eq!(answer, r#"44/nowhere,{"message":"Invalid namespace"}"#);
    // Past it, each is refused as any CONNECT past the allowance is, and counted.
    client.send("40/nowhere,").await;
    let answer = client.recv_text().await;
    assert_eq!(answer, r#"44/nowhere,{"message":"rate limited"}"#);
    assert_eq!(hub.metric("hub_socket_events_rate_limited_total").await, 1);

    // Past the abuse limit the loop ends the connection, as a flood of events does.
    let hub = start_hub(limited_config(1, 3));
    let (mut client, _) = hub.eio().await;
    for _ in 0..50 {
        if !client.try_send("40/nowhere,").await {
            break;
        }
    }
    let (_, disconnected) = read_until_disconnected(&mut client).await;
    assert!(
        !disconnected,
        "no namespace joined: no DISCONNECT, the connection closed"
    );
    assert_eq!(hub.metric("hub_socket_abuse_disconnects_total").await, 1);
}
