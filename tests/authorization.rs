//! The authorization seam: the application decides whether a socket may join a namespace, from the
//! handshake's request parts and the CONNECT auth, before the Hub registers it or Recovery replays
//! anything to it. A refusal is the protocol's CONNECT_ERROR (`44<nsp>,{"message":…}`, reference
//! §2.3), and the connection stays open for another CONNECT, as with a Node middleware's `next(err)`.

mod common;

use std::future::ready;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{event_args, start_hub_with_app, test_config, Received, TestHub};
use realtime_hub::app::{
    AdmitFuture, Application, ConnectRefusal, Handshake, Identity, Payload, ReplyFuture, SuiteApp,
};
use serde_json::{json, Value};

/// What `authorize` was asked with.
#[derive(Debug, Clone)]
struct Asked {
    nsp: String,
    query: String,
    remote_addr: Option<SocketAddr>,
    host: Option<String>,
    auth: Value,
}

/// Admits a CONNECT whose auth carries `token: "letmein"`; records every question.
#[derive(Default)]
struct TokenApp {
    suite: SuiteApp,
    asked: Mutex<Vec<Asked>>,
}

impl Application for TokenApp {
    fn namespaces(&self) -> &[String] {
        self.suite.namespaces()
    }

    fn authorize(&self, nsp: &str, handshake: &Handshake, auth: &Value) -> AdmitFuture {
        self.asked.lock().unwrap().push(Asked {
            nsp: nsp.to_owned(),
            query: handshake.query.to_string(),
            remote_addr: handshake.remote_addr,
            host: handshake.header("host").map(str::to_owned),
            auth: auth.clone(),
        });
        let decision = if auth["token"] == "letmein" {
            Ok(Identity::default())
        } else {
            Err(ConnectRefusal {
                message: "not authorized".into(),
                data: Some(json!({ "reason": "bad token" })),
            })
        };
        Box::pin(ready(decision))
    }

    fn on_connect(&self, _: &str, _: &Value) -> Vec<Payload> {
        Vec::new()
    }

    fn on_event(
        &self,
        nsp: &str,
        identity: &Identity,
        event: Payload,
        wants_ack: bool,
    ) -> ReplyFuture {
        self.suite.on_event(nsp, identity, event, wants_ack)
    }
}

fn start(app: Arc<TokenApp>) -> TestHub {
    start_hub_with_app(test_config(), app)
}

/// Nothing but heartbeats arrives for a second.
async fn expect_silence(client: &mut common::WsClient) {
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        match client.recv_within(left).await {
            None => return,
            Some(Received::Text(text)) if text == "2" => client.send("3").await,
            Some(other) => panic!("expected nothing after a refusal, got {other:?}"),
        }
    }
}

#[actix_web::test]
async fn authorization_refuses_a_connect_with_connect_error_before_the_hub_sees_the_socket() {
    let app = Arc::new(TokenApp::default());
    let hub = start(app.clone());
    let mut client = hub
        .ws("EIO=4&transport=websocket&tenant=acme")
        .await
        .expect("websocket connects");
    assert!(client.recv_text().await.starts_with('0'));
    client.send(r#"40{"token":"wrong"}"#).await;
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"44{"message":"not authorized","data":{"reason":"bad token"}}"#
    );
    assert_eq!(hub.sessions().await, 0, "the Hub never saw the socket");
    expect_silence(&mut client).await;

    let asked = app.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].nsp, "/");
    assert_eq!(asked[0].auth, json!({ "token": "wrong" }));
    assert!(
        asked[0].query.contains("tenant=acme"),
        "{:?}",
        asked[0].query
    );
    assert!(asked[0]
        .remote_addr
        .is_some_and(|addr| addr.ip().is_loopback()));
    assert_eq!(
        asked[0].host.as_deref(),
        Some(hub.addr.to_string().as_str()),
        "headers reach the application"
    );

    // The connection stays open: a CONNECT the application admits joins.
    client.send(r#"40{"token":"letmein"}"#).await;
    client.recv_connect().await;
    assert_eq!(hub.sessions().await, 1);
}

#[actix_web::test]
async fn authorization_refuses_a_resume_before_anything_is_replayed() {
    let app = Arc::new(TokenApp::default());
    let hub = start(app.clone());
    let (mut client, _) = hub.eio().await;
    client.send(r#"40{"token":"letmein"}"#).await;
    let (sid, pid) = client.recv_connect().await;
    let offset_event = client.recv_text().await;
    let offset = event_args(&offset_event).unwrap()[1]
        .as_str()
        .unwrap()
        .to_owned();
    client.close().await;
    while hub.sessions().await > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let missed = hub.publish("missed").await;

    // A resume with the session's pid and offset, but refused: no replay, no registration.
    let (mut thief, _) = hub.eio().await;
    let auth = json!({ "token": "stolen", "pid": pid, "offset": offset });
    thief.send(&format!("40{auth}")).await;
    assert_eq!(
        thief.recv_text_answering_pings().await,
        r#"44{"message":"not authorized","data":{"reason":"bad token"}}"#
    );
    expect_silence(&mut thief).await;
    assert_eq!(hub.sessions().await, 0);

    // The session was neither replayed nor consumed: its owner still resumes it, with what it missed.
    let (mut owner, _) = hub.eio().await;
    let auth = json!({ "token": "letmein", "pid": pid, "offset": offset });
    owner.send(&format!("40{auth}")).await;
    let replayed = owner.recv_text_answering_pings().await;
    assert_eq!(
        event_args(&replayed)
            .unwrap()
            .last()
            .and_then(Value::as_str),
        Some(missed.as_str())
    );
    assert_eq!(owner.recv_connect().await, (sid, pid));
}

#[actix_web::test]
async fn authorization_decided_at_once_joins_in_the_same_turn() {
    // The default decision is ready at once, so with recovery off (nothing to replay) the socket is
    // joined before the next packet of the same polling payload is read, as before the seam existed:
    // an event right behind its CONNECT reaches the application.
    {
        let recovery = false;
        let config = realtime_hub::config::Config {
            recovery,
            ..test_config()
        };
        let hub = common::start_hub_with_app(config, Arc::new(SuiteApp::default()));
        let sid = hub.polling_session("/socket.io/").await;
        let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let (status, body, _) = hub
            .http("POST", &path, "40\u{1e}42[\"message\",\"hi\"]")
            .await;
        assert_eq!((status, body.as_str()), (200, "ok"));
        let (status, body, _) = hub.http("GET", &path, "").await;
        assert_eq!(status, 200);
        let packets: Vec<&str> = body.split('\u{1e}').collect();
        assert!(packets[0].starts_with("40{"), "{body}");
        assert!(
            packets.contains(&r#"42["message-back","hi"]"#),
            "recovery {recovery}: {body}"
        );
    }
}

#[actix_web::test]
async fn authorization_refused_connection_still_ends_at_the_connect_timeout() {
    let config = realtime_hub::config::Config {
        connect_timeout: Duration::from_millis(500),
        ping_interval: Duration::from_secs(10),
        ..test_config()
    };
    let hub = start_hub_with_app(config, Arc::new(TokenApp::default()));
    let (mut client, _) = hub.eio().await;
    client.send(r#"40{"token":"wrong"}"#).await;
    assert!(client.recv_text().await.starts_with("44"));
    // No namespace was joined: Socket.IO's connectTimeout closes the connection.
    assert!(matches!(
        client.recv().await,
        Received::Close(_) | Received::Ended
    ));
}
