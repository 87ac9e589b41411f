//! How many sockets each namespace has on this instance (the admin UI's `server_stats`).

use actix::prelude::*;

use super::Hub;
use crate::protocol::target::Namespace;

/// The registered sockets per namespace, namespaces without sockets left out.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Vec<(Namespace, usize)>")]
pub struct CountSockets;

impl Handler<CountSockets> for Hub {
    type Result = MessageResult<CountSockets>;

    fn handle(&mut self, _: CountSockets, _: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.namespaces
                .iter()
                .map(|(nsp, index)| (nsp.clone(), index.len()))
                .collect(),
        )
    }
}
