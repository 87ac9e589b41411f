//! A Node peer's session record, whatever its `socket.data`, resumed here and written back as the
//! peer wrote it (socket.io's persistSession / restoreSession format, on Redis).

mod common;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{redis_config, start_ready_hub};
use realtime_hub::config::Config;
use realtime_hub::protocol::{base64, msgpack};
use serde_json::{json, Value};

fn config(redis: &RedisServer, key: &str) -> Config {
    Config {
        ping_interval: Duration::from_secs(60),
        ..redis_config(&redis.url(), key)
    }
}

fn bulk(reply: &str) -> Option<String> {
    let mut lines = reply.split("\r\n");
    let head = lines.next()?;
    if !head.starts_with('$') || head == "$-1" {
        return None;
    }
    lines.next().map(str::to_owned)
}

/// The record at `key` once the hub has written it again (bounded: 5 s), as Node would read it.
async fn rewritten(redis: &RedisServer, key: &str, planted: &str) -> Value {
    for _ in 0..250 {
        if let Some(encoded) = bulk(&redis.command(&["GET", key])) {
            if encoded != planted {
                return msgpack::decode(&base64::decode(&encoded).unwrap()).unwrap();
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the record at {key} was not written again within 5 s");
}

#[actix_web::test]
async fn a_node_peers_socket_data_of_any_shape_is_written_back_as_the_peer_wrote_it() {
    let redis = RedisServer::start();
    let hub = start_ready_hub(config(&redis, "test:node-data")).await;
    let datas = [
        json!({}),
        json!({"a": {}, "list": [1, {}, [null]], "s": "é✓"}),
        json!(null),
        json!([{"x": 1}]),
    ];
    for (n, data) in datas.into_iter().enumerate() {
        let offset = hub.publish(&format!("seen on node {n}")).await;
        let (sid, pid) = (format!("nsid{n}"), format!("npid{n}"));
        let node = json!({"sid": sid, "pid": pid, "rooms": [sid], "data": data});
        let planted = base64::encode(&msgpack::encode(&node));
        let key = format!("sio:session:{pid}");
        redis.command(&["SET", &key, &planted, "PX", "60000"]);
        let mut resumed = hub.resume(&pid, &offset).await;
        assert_eq!((resumed.sid, resumed.pid), (sid, pid.clone()), "recovered");
        resumed.client.close().await;
        let written = rewritten(&redis, &key, &planted).await;
        assert_eq!(written["data"], data, "data {data} as the peer wrote it");
    }
}
