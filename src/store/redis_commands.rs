//! The cluster commands among the stream entries the read loop reads: DISCONNECT_SOCKETS entries
//! (this instance's, another hub's, or a Node peer's `io.in(room).disconnectSockets()`), handed on
//! in log order with the broadcasts around them.

use actix::Recipient;
use redis::Value;

use super::redis::{entry_field, parse_id};
use super::{LogEntry, LogEvent};
use crate::metrics::Counter;
use crate::protocol::cluster::{DisconnectSockets, DISCONNECT_SOCKETS};
use crate::protocol::ids::StreamId;

/// The DISCONNECT_SOCKETS requests of an XREAD reply's entries, with their ids, oldest first. One
/// whose data does not decode is counted in `skipped` and left out.
pub(super) fn disconnects_in(
    items: &Value,
    skipped: &Counter,
) -> Vec<(StreamId, DisconnectSockets)> {
    let Value::Array(items) = items else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for item in items {
        let Value::Array(pair) = item else { continue };
        let [id, Value::Array(fields)] = pair.as_slice() else {
            continue;
        };
        let field = |name: &str| entry_field(fields, name);
        if field("type").as_deref() != Some(DISCONNECT_SOCKETS) {
            continue;
        }
        let (Ok(id), Some(nsp)) = (parse_id(id), field("nsp")) else {
            skipped.inc();
            continue;
        };
        match DisconnectSockets::decode(&nsp, field("data").as_deref()) {
            Ok(request) => found.push((id, request)),
            Err(err) => {
                skipped.inc();
                log::debug!("stream entry not acted on id={id} error=\"{err}\"");
            }
        }
    }
    found
}

/// Hands `entries` and `commands` (each oldest first) to `sink` in log order: the broadcasts before
/// a command in one batch, then the command, and so on.
pub(super) fn hand_on(
    sink: &Recipient<LogEvent>,
    entries: Vec<LogEntry>,
    commands: Vec<(StreamId, DisconnectSockets)>,
) {
    let mut commands = commands.into_iter().peekable();
    let mut batch = Vec::new();
    for entry in entries {
        while let Some((_, command)) = commands.next_if(|(id, _)| *id < entry.id) {
            if !batch.is_empty() {
                sink.do_send(LogEvent::Entries(std::mem::take(&mut batch)));
            }
            sink.do_send(LogEvent::DisconnectSockets(command));
        }
        batch.push(entry);
    }
    if !batch.is_empty() {
        sink.do_send(LogEvent::Entries(batch));
    }
    for (_, command) in commands {
        sink.do_send(LogEvent::DisconnectSockets(command));
    }
}
