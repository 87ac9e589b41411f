//! An upgrade probe (a second WebSocket for a polling session) at the edges: one that never probes,
//! one whose session closes while it probes, one that arrives at a session that has just closed.
//! Since the WsConn holds its session weakly and hands it an `Attach` guard, a probe nobody holds
//! must still be closed, and polling must go on as it was.

mod common;

use std::time::Duration;

use common::{start_hub_with_app, TestHub};
use realtime_hub::config::Config;

const PATH: &str = "/engine.io/";

fn polling(sid: &str) -> String {
    format!("{PATH}?EIO=4&transport=polling&sid={sid}")
}

/// The Engine.IO echo server, with pings far apart (no heartbeat ends a session during a test) and
/// a short upgrade timeout.
async fn hub_and_session() -> (TestHub, String) {
    let config = Config {
        host: "127.0.0.1".into(),
        port: 0,
        ping_interval: Duration::from_secs(20),
        ping_timeout: Duration::from_secs(20),
        upgrade_timeout: Duration::from_millis(300),
        ..Config::conformance_suite(true)
    };
    let hub = start_hub_with_app(
        config,
        std::sync::Arc::new(realtime_hub::app::SuiteApp::default()),
    );
    let sid = hub.polling_session(PATH).await;
    (hub, sid)
}

async fn probe(hub: &TestHub, sid: &str) -> common::WsClient {
    hub.ws_at(PATH, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_probe_that_never_probes_is_closed_at_the_upgrade_timeout_and_polling_goes_on() {
    let (hub, sid) = hub_and_session().await;
    let mut ws = probe(&hub, &sid).await;
    ws.expect_closed().await;
    assert_eq!(hub.http("POST", &polling(&sid), "4after").await.0, 200);
    assert_eq!(hub.http("GET", &polling(&sid), "").await.1, "4after");
    // A second probe after the first timed out is a probe again, and upgrades.
    let mut ws = probe(&hub, &sid).await;
    ws.send("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    ws.send("5").await;
    ws.send("4upgraded").await;
    assert_eq!(ws.recv_text_answering_pings().await, "4upgraded");
}

#[actix_web::test]
async fn a_session_closed_by_its_client_mid_probe_closes_the_probe() {
    let (hub, sid) = hub_and_session().await;
    let mut ws = probe(&hub, &sid).await;
    ws.send("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    assert_eq!(hub.http("POST", &polling(&sid), "1").await.0, 200);
    ws.expect_closed().await;
}

#[actix_web::test]
async fn a_probe_that_comes_to_a_closed_session_is_closed() {
    let (hub, sid) = hub_and_session().await;
    // Closed with no GET pending: the session lingers for one late GET.
    assert_eq!(hub.http("POST", &polling(&sid), "1").await.0, 200);
    // Refused outright is fine too: the session may be gone already.
    if let Ok(mut ws) = hub
        .ws_at(PATH, &format!("EIO=4&transport=websocket&sid={sid}"))
        .await
    {
        ws.expect_closed().await;
    }
    let (status, body, _) = hub.http("GET", &polling(&sid), "").await;
    assert!(
        (status == 200 && body == "6") || status == 400,
        "the late GET: {status} {body}"
    );
}

#[actix_web::test]
async fn a_probe_that_comes_while_another_probes_is_closed_and_the_first_upgrades() {
    let (hub, sid) = hub_and_session().await;
    let mut first = probe(&hub, &sid).await;
    first.send("2probe").await;
    assert_eq!(first.recv_text().await, "3probe");
    let mut second = probe(&hub, &sid).await;
    second.expect_closed().await;
    first.send("5").await;
    first.send("4first").await;
    assert_eq!(first.recv_text_answering_pings().await, "4first");
}

/// The probe's Attached and the client's close race (each order, many times): the probe is closed
/// whether the session took its link, refused it, or ended with it in its mailbox.
#[actix_web::test]
async fn a_probe_racing_its_sessions_close_is_closed_every_time() {
    for round in 0..20 {
        let (hub, sid) = hub_and_session().await;
        let query = format!("EIO=4&transport=websocket&sid={sid}");
        let path = polling(&sid);
        let close = async {
            if round % 2 == 1 {
                actix_web::rt::time::sleep(Duration::from_millis(1)).await;
            }
            hub.http("POST", &path, "1").await
        };
        let (probe, (status, _, _)) =
            futures_util::future::join(hub.ws_at(PATH, &query), close).await;
        assert_eq!(status, 200, "round {round}: the close");
        if let Ok(mut ws) = probe {
            ws.expect_closed().await;
        }
    }
}

/// Probed (`2probe` answered, polling paused with noops) but never finished with `5`: at the upgrade
/// timeout the probe is closed and polling carries the session again.
#[actix_web::test]
async fn a_probe_answered_but_never_finished_times_out_and_polling_resumes() {
    let (hub, sid) = hub_and_session().await;
    let mut ws = probe(&hub, &sid).await;
    ws.send("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    let (status, body, _) = hub.http("GET", &polling(&sid), "").await;
    assert_eq!((status, body.as_str()), (200, "6"), "a noop while probed");
    ws.expect_closed().await;
    assert_eq!(hub.http("POST", &polling(&sid), "4resumed").await.0, 200);
    assert_eq!(hub.http("GET", &polling(&sid), "").await.1, "4resumed");
}

/// Session ids from the wire that name no session (odd lengths, unicode, percent-encoded bytes):
/// refused as unknown, over polling and for a WebSocket, and the real session is untouched.
#[actix_web::test]
async fn sids_from_the_wire_that_name_no_session_are_refused_as_unknown() {
    let (hub, sid) = hub_and_session().await;
    let long = "x".repeat(4000);
    let near = format!("{sid}%C3%A9");
    for odd in [
        "a",
        "%F0%9F%98%80",
        "%C3%A9%00",
        long.as_str(),
        &sid[..sid.len() - 1],
        near.as_str(),
    ] {
        let (status, body, _) = hub.http("GET", &polling(odd), "").await;
        assert_eq!(status, 400, "sid {odd:?}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"].as_u64(), Some(1), "sid {odd:?}: unknown");
        let ws = hub
            .ws_at(PATH, &format!("EIO=4&transport=websocket&sid={odd}"))
            .await;
        assert!(ws.is_err(), "sid {odd:?}: no WebSocket");
    }
    assert_eq!(hub.http("POST", &polling(&sid), "4still").await.0, 200);
    assert_eq!(hub.http("GET", &polling(&sid), "").await.1, "4still");
}
