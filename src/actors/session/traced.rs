//! How a received packet reads in a trace line: its fields as `key=value`, and never a CONNECT's
//! payload, which is the client's `auth` (a JWT, or whatever credential an application puts there).

use std::fmt;

use crate::protocol::socketio::{PacketKind, SioPacket};

/// `kind=Event nsp="/" ack_id=Some(3) attachments=0 data=[…]`; a CONNECT's data is left out.
pub(super) struct Rx<'a>(pub &'a SioPacket);

impl fmt::Display for Rx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SioPacket {
            kind,
            nsp,
            attachments,
            ack_id,
            data,
        } = self.0;
        write!(
            f,
            "kind={kind:?} nsp={nsp:?} ack_id={ack_id:?} attachments={attachments} "
        )?;
        match (kind, data) {
            (PacketKind::Connect, Some(_)) => f.write_str("data=(auth, not logged)"),
            (_, Some(data)) => write!(f, "data={data}"),
            (_, None) => f.write_str("data=none"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_connect_payload_is_never_shown_an_event_payload_is() {
        let connect = SioPacket::new(PacketKind::Connect, "/", Some(json!({ "token": "secret" })));
        let shown = Rx(&connect).to_string();
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.starts_with("kind=Connect nsp=\"/\""), "{shown}");
        let event = SioPacket::new(PacketKind::Event, "/", Some(json!(["hello"])));
        assert!(Rx(&event).to_string().ends_with(r#"data=["hello"]"#));
    }
}
