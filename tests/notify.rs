//! `POST /notifications/notify`: what every client receives, and what bad bodies get.

mod common;

use common::{event_args, start_hub, test_config, Received};
use serde_json::{json, Value};
use std::time::Duration;

#[actix_web::test]
async fn notification_reaches_every_client_with_its_fields_and_offset() {
    let hub = start_hub(test_config());
    let mut a = hub.joined().await;
    let mut b = hub.joined().await;
    let (status, answer) = hub
        .notify(r#"{"title":"Deploy","body":"v2 is live"}"#)
        .await;
    assert_eq!(status, 201, "{answer}");
    let offset = answer["offset"].as_str().unwrap();
    for client in [&mut a.client, &mut b.client] {
        let frame = client.recv_text_answering_pings().await;
        let args = event_args(&frame).unwrap_or_else(|| panic!("not an event: {frame}"));
        assert_eq!(args.len(), 3, "{frame}");
        assert_eq!(args[0], "notification");
        let n = &args[1];
        assert_eq!(
            (&n["id"], &n["title"], &n["body"]),
            (&answer["id"], &json!("Deploy"), &json!("v2 is live"))
        );
        assert!(uuid::Uuid::parse_str(n["id"].as_str().unwrap())
            .is_ok_and(|id| id.get_version_num() == 4));
        assert!(n["timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000));
        assert_eq!(args[2], offset);
    }
}

#[actix_web::test]
async fn notification_without_fields_gets_the_defaults() {
    let hub = start_hub(test_config());
    let mut a = hub.joined().await;
    for body in ["{}", ""] {
        assert_eq!(hub.notify(body).await.0, 201);
        let args = event_args(&a.client.recv_text_answering_pings().await).unwrap();
        assert_eq!(
            (&args[1]["title"], &args[1]["body"]),
            (&json!("Notification"), &json!("Hello"))
        );
    }
}

#[actix_web::test]
async fn offsets_increase_with_every_notification() {
    let hub = start_hub(test_config());
    let mut last = (0u64, 0u64);
    for n in 0..20 {
        let offset = hub.publish(&n.to_string()).await;
        let (ms, seq) = offset.split_once('-').unwrap();
        let id = (ms.parse().unwrap(), seq.parse().unwrap());
        assert!(id > last, "{offset}");
        last = id;
    }
}

#[actix_web::test]
async fn bad_bodies_get_4xx_with_json_errors_and_publish_nothing() {
    let mut config = test_config();
    config.max_notify_bytes = 1024;
    let hub = start_hub(config);
    let mut watcher = hub.joined().await;
    let oversized = json!({ "body": "x".repeat(2000) }).to_string();
    let cases: [(&str, u16); 6] = [
        ("{", 400),
        ("[\"title\",\"body\"]", 400),
        (r#"{"title":5}"#, 400),
        (r#"{"body":["x"]}"#, 400),
        ("\"just a string\"", 400),
        (&oversized, 413),
    ];
    for (body, expected) in cases {
        let (status, answer) = hub.notify(body).await;
        assert_eq!(status, expected, "{body:.40}");
        assert!(answer["error"].is_string(), "{body:.40} answered {answer}");
    }
    // Nothing was published: the watcher's next notification is the valid one.
    let offset = hub.publish("valid").await;
    let args = event_args(&watcher.client.recv_text_answering_pings().await).unwrap();
    assert_eq!(
        (args[1]["title"].clone(), args[2].clone()),
        (json!("valid"), Value::from(offset))
    );
    let quiet = watcher.client.recv_within(Duration::from_millis(100)).await;
    assert!(
        !matches!(quiet, Some(Received::Text(ref t)) if t != "2"),
        "unexpected {quiet:?}"
    );
}
