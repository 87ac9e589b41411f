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

/// Emits `notify` with `body` (ack id 1) and returns the ack's argument, answering pings and
/// skipping notifications meanwhile.
async fn notify_over_socket(joined: &mut common::Joined, body: &str) -> Value {
    joined
        .client
        .send(&format!(r#"421["notify",{body}]"#))
        .await;
    loop {
        let text = joined.client.recv_text_answering_pings().await;
        if let Some(ack) = text.strip_prefix("431") {
            let args: Vec<Value> = serde_json::from_str(ack).expect("ack JSON");
            return args[0].clone();
        }
    }
}

#[actix_web::test]
async fn a_socket_notify_is_held_to_the_endpoints_body_limit() {
    let mut config = test_config();
    config.max_notify_bytes = 1000;
    let hub = start_hub(config);
    let mut publisher = hub.joined().await;
    let mut watcher = hub.joined().await;
    // Compact JSON objects of exactly the limit and one byte over it.
    let sized = |len: usize| {
        let body = json!({ "title": "sized", "body": "x".repeat(len - 27) }).to_string();
        assert_eq!(body.len(), len);
        body
    };
    let (at, over) = (sized(1000), sized(1001));

    assert_eq!(hub.notify(&at).await.0, 201);
    let answer = notify_over_socket(&mut publisher, &at).await;
    assert!(answer["offset"].is_string(), "at the limit: {answer}");

    assert_eq!(hub.notify(&over).await.0, 413);
    let answer = notify_over_socket(&mut publisher, &over).await;
    assert_eq!(
        answer,
        json!({ "error": "notification larger than 1000 bytes (HUB_MAX_NOTIFY_BYTES)" })
    );

    // Nothing was published for either refusal: after the two at the limit comes the next one.
    let offset = hub.publish("after").await;
    let mut titles = Vec::new();
    while titles.len() < 3 {
        let frame = watcher.client.recv_text_answering_pings().await;
        let args = event_args(&frame).unwrap_or_else(|| panic!("not an event: {frame}"));
        titles.push((args[1]["title"].clone(), args[2].clone()));
    }
    assert_eq!(
        titles.iter().map(|(title, _)| title).collect::<Vec<_>>(),
        [&json!("sized"), &json!("sized"), &json!("after")]
    );
    assert_eq!(titles[2].1, Value::from(offset));
}

#[actix_web::test]
async fn a_socket_notifys_idempotency_key_is_not_counted_in_its_notification_size() {
    // The key is the endpoint's Idempotency-Key header, not part of the notification: a
    // notification at the limit is published with its key over the socket as over POST.
    let mut config = test_config();
    config.max_notify_bytes = 1000;
    let hub = start_hub(config);
    let mut publisher = hub.joined().await;
    let at = json!({ "title": "sized", "body": "x".repeat(1000 - 27) });
    assert_eq!(at.to_string().len(), 1000);
    let mut keyed = at.clone();
    keyed["idempotencyKey"] = json!("key-at-the-limit");
    let answer = notify_over_socket(&mut publisher, &keyed.to_string()).await;
    assert!(
        answer["offset"].is_string(),
        "a notification at the limit with its key: {answer}"
    );
}
