//! A resume's offset with several shards (README "Beyond one stream: shards"): parsed for this
//! log, then waited for until this instance's read loops have handed on at least that much.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::ResumeRefused;
use crate::actors::stream_bridge::{HandedOn, StreamBridge};
use crate::protocol::ids::StreamId;
use crate::protocol::offset::Offset;
use crate::store::StoreError;

/// How long a resume polls for this instance's read loops to catch up with its offset.
const CATCH_UP_POLL: Duration = Duration::from_millis(20);

fn unavailable(err: MailboxError) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

fn not_reading() -> StoreError {
    StoreError::Unavailable("the stream is not being read yet".into())
}

/// Parses a client's `offset` for this log: one id per shard of this instance's loops (refused as
/// malformed otherwise; unavailable until every loop knows its start).
pub(super) async fn parse_offset(
    bridge: &Addr<StreamBridge>,
    offset: &str,
) -> Result<Offset, ResumeRefused> {
    let handed_on = bridge.send(HandedOn).await.map_err(unavailable)?;
    let shards = handed_on.ok_or_else(not_reading)?.shards();
    Offset::parse(offset, shards).map_err(|_| ResumeRefused::MalformedOffset)
}

/// With several shards, waits up to `wait` until this instance's loops have handed on at least
/// `offset` in every shard: a replay reads no shard past them, and a client whose offset moved
/// back in some shard would get entries twice on its next resume. Refused as ahead past `wait`.
/// Called once the session is claimed: what any client can make a CONNECT cost is one claim.
pub(super) async fn caught_up(
    bridge: &Addr<StreamBridge>,
    offset: &Offset,
    wait: Duration,
) -> Result<(), ResumeRefused> {
    if offset.shards() == 1 {
        // One stream: a replay reads to the log's end, and the handover skips what comes live.
        return Ok(());
    }
    let deadline = Instant::now() + wait;
    loop {
        let loops = bridge.send(HandedOn).await.map_err(unavailable)?;
        let loops = loops.ok_or_else(not_reading)?;
        if !offset.ahead_of(&loops) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let ahead = (offset.ids().iter().zip(loops.ids()))
                .find(|(id, handed)| id > handed)
                .map_or(StreamId::ZERO, |(id, _)| *id);
            return Err(StoreError::OffsetAhead(ahead).into());
        }
        actix::clock::sleep(CATCH_UP_POLL).await;
    }
}
