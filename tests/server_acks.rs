//! Acks the server asks for (the application's `Reply::ask`), answered once, twice, out of turn or
//! never: each answer counts once, and only for an id the server asked (reference §2.4).

mod common;

use common::start_suite_hub;

#[actix_web::test]
async fn an_ack_the_server_asked_for_counts_once_and_unasked_ids_are_ignored() {
    let hub = start_suite_hub(false);
    let (mut client, _) = hub.eio().await;
    client.send("40").await;
    let reply = client.recv_text().await;
    assert!(reply.starts_with("40{\"sid\""), "{reply}");
    assert_eq!(client.recv_text_answering_pings().await, r#"42["auth",{}]"#);
    // An answer before anything was asked, and one to an id never asked: ignored.
    client.send("430[0]").await;
    client.send("437[7]").await;
    client.send(r#"42["ask",1]"#).await;
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"420["question",1]"#
    );
    client.send(r#"42["ask",2]"#).await;
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"421["question",2]"#
    );
    // Never answering 0 does not hold back 1; answering 1 twice counts once.
    client.send("431[\"b\"]").await;
    client.send("431[\"b again\"]").await;
    client.send(r#"42["message","sync"]"#).await;
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"42["answered","b"]"#
    );
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"42["message-back","sync"]"#,
        "the second answer to 1 was ignored"
    );
    client.send("430[\"a\"]").await;
    client.send(r#"42["message","sync2"]"#).await;
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"42["answered","a"]"#
    );
    assert_eq!(
        client.recv_text_answering_pings().await,
        r#"42["message-back","sync2"]"#
    );
}
