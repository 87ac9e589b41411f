//! Property tests of the pure codecs: decoding never panics, and encode → decode returns the packet.

use proptest::prelude::*;
use realtime_hub::protocol::ids::StreamId;
use realtime_hub::protocol::offset::Offset;
use realtime_hub::protocol::socketio::{self, PacketKind, SioPacket};
use realtime_hub::protocol::{base64, engineio, socketio_msgpack};
use serde_json::{json, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec(("[a-z0-9]{1,6}".prop_map(String::from), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

fn valid_packet() -> impl Strategy<Value = SioPacket> {
    let nsp: BoxedStrategy<String> =
        prop_oneof![Just("/".to_owned()), "/[a-z]{1,8}".prop_map(String::from)].boxed();
    let ack = prop::option::of(0u64..1_000_000);
    let event_name = prop_oneof![
        "[a-z:_]{1,10}".prop_map(Value::from),
        any::<u32>().prop_map(Value::from)
    ]
    .prop_filter("reserved", |v| {
        !socketio::RESERVED_EVENTS.contains(&v.as_str().unwrap_or(""))
    });
    let args = prop::collection::vec(json_value(), 0..4);
    let event = (event_name, args).prop_map(|(name, mut args)| {
        args.insert(0, name);
        Value::from(args)
    });
    let object = prop::collection::vec(("[a-z]{1,6}", json_value()), 0..3)
        .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
        .boxed();
    prop_oneof![
        (nsp.clone(), prop::option::of(object)).prop_map(|(nsp, auth)| SioPacket::new(
            PacketKind::Connect,
            &nsp,
            auth
        )),
        nsp.clone()
            .prop_map(|nsp| SioPacket::new(PacketKind::Disconnect, &nsp, None)),
        (nsp.clone(), ack.clone(), event).prop_map(|(nsp, ack_id, data)| SioPacket {
            ack_id,
            ..SioPacket::new(PacketKind::Event, &nsp, Some(data))
        }),
        (
            nsp.clone(),
            0u64..1000,
            prop::collection::vec(json_value(), 0..3)
        )
            .prop_map(|(nsp, id, args)| SioPacket {
                ack_id: Some(id),
                ..SioPacket::new(PacketKind::Ack, &nsp, Some(Value::from(args)))
            }),
        (nsp, "[ -~]{0,20}").prop_map(|(nsp, message)| {
            SioPacket::new(
                PacketKind::ConnectError,
                &nsp,
                Some(json!({ "message": message })),
            )
        }),
    ]
}

proptest! {
    #[test]
    fn socketio_decode_never_panics(input in ".{0,64}") {
        let _ = socketio::decode(&input);
    }

    #[test]
    fn socketio_decode_never_panics_on_packet_like_input(input in "[0-6][0-9-]{0,3}(/[a-z]{0,3},?)?[0-9]{0,3}[\\[\\]{}\",a-z0-9]{0,16}") {
        let _ = socketio::decode(&input);
    }

    #[test]
    fn socketio_encode_then_decode_returns_the_packet(packet in valid_packet()) {
        prop_assert_eq!(socketio::decode(&socketio::encode(&packet)), Ok(packet));
    }

    #[test]
    fn engineio_decode_never_panics(input in ".{0,64}") {
        let _ = engineio::decode(&input);
        let _ = engineio::decode_payload(&input).count();
    }

    #[test]
    fn base64_round_trips_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(base64::decode(&base64::encode(&bytes)), Ok(bytes));
    }

    #[test]
    fn stream_id_parse_never_panics_and_round_trips(input in ".{0,24}", ms in any::<u64>(), seq in any::<u64>()) {
        let _ = input.parse::<StreamId>();
        let id = StreamId::new(ms, seq);
        prop_assert_eq!(id.to_string().parse::<StreamId>(), Ok(id));
    }

    #[test]
    fn composite_offset_parse_never_panics_and_round_trips(
        input in "[0-9,-]{0,40}",
        ids in prop::collection::vec((any::<u64>(), any::<u64>()), 1..9),
        shards in 1usize..9,
    ) {
        let _ = Offset::parse(&input, shards);
        let text = ids
            .iter()
            .map(|(ms, seq)| StreamId::new(*ms, *seq).to_string())
            .collect::<Vec<_>>()
            .join(",");
        let offset = Offset::parse(&text, ids.len()).unwrap();
        prop_assert_eq!(offset.to_string(), text.clone());
        // Exactly one id per shard: an offset of another shard count is never taken.
        prop_assert_eq!(Offset::parse(&text, shards).is_ok(), shards == ids.len());
        // Each shard covers exactly its own id and those before.
        for (shard, (ms, seq)) in ids.iter().enumerate() {
            let id = StreamId::new(*ms, *seq);
            prop_assert!(offset.covers(shard, id));
            // (`next` saturates at the largest id.)
            prop_assert!(id.next() <= id || !offset.covers(shard, id.next()));
        }
    }

    #[test]
    fn broadcast_frame_decodes_to_the_event_with_its_offset(args in prop::collection::vec(json_value(), 0..4), ms in any::<u64>()) {
        let mut event = vec![Value::from("notification")];
        event.extend(args);
        let offset = StreamId::new(ms, 0).to_string();
        let frame = socketio::broadcast_frame("/", &Value::from(event.clone()).to_string(), &offset).unwrap();
        event.push(Value::from(offset));
        let decoded = socketio::decode(frame.strip_prefix('4').unwrap()).unwrap();
        prop_assert_eq!(decoded.data, Some(Value::from(event)));
    }

    #[test]
    fn socketio_msgpack_decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = socketio_msgpack::decode(&bytes);
    }

    #[test]
    fn socketio_msgpack_decode_never_panics_on_packet_like_input(
        head in 0x80u8..0x90,
        keys in prop::collection::vec(prop_oneof![Just(&b"\xa4type"[..]), Just(&b"\xa3nsp"[..]),
            Just(&b"\xa4data"[..]), Just(&b"\xa2id"[..])], 0..5),
        tail in prop::collection::vec(any::<u8>(), 0..24),
    ) {
        let mut bytes = vec![head];
        for (key, value) in keys.iter().zip(tail.chunks(3)) {
            bytes.extend_from_slice(key);
            bytes.extend_from_slice(value);
        }
        bytes.extend_from_slice(&tail);
        let _ = socketio_msgpack::decode(&bytes);
    }

    #[test]
    fn socketio_msgpack_encode_then_decode_returns_the_packet(packet in valid_packet()) {
        let bytes = socketio_msgpack::encode::<&[u8]>(&packet, &[]);
        prop_assert_eq!(socketio_msgpack::decode(&bytes), Ok((packet, Vec::new())));
    }

    #[test]
    fn socketio_msgpack_carries_binary_arguments_inline_and_back(
        attachments in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..4),
        id in prop::option::of(0u64..1000),
    ) {
        let mut args = vec![Value::from("up")];
        args.extend((0..attachments.len()).map(|num| json!({"_placeholder": true, "num": num})));
        let packet = SioPacket {
            ack_id: id,
            ..SioPacket::new(PacketKind::Event, "/", Some(Value::from(args)))
        };
        let bytes = socketio_msgpack::encode(&packet, &attachments);
        prop_assert_eq!(socketio_msgpack::decode(&bytes), Ok((packet, attachments)));
    }
}
