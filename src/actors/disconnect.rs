//! Why a session ends, and what that means on the wire: the one place that decides it.
//!
//! Every way a session (or one of its WebSockets) can end is a [`SessionError`]; callers return or pass
//! the error and never pick a close code. [`SessionError::consequence`] maps it to Socket.IO's
//! disconnect reason, the WebSocket close frame (RFC 6455 §7.4.1), what a waiting polling GET is
//! answered, and what the polling request that caused it gets:
//!
//! | error | reason | close frame | waiting GET | the request |
//! |---|---|---|---|---|
//! | TransportClosed | transport close | bare (client sees 1005, as with Node) | `6` (noop) | - |
//! | Transport(..) | transport error | 1002 | `1` (close) | 400, empty |
//! | InvalidPayload(..) | transport error | 1007 | `1` | 400, empty |
//! | UnfinishedOverBudget | transport error | 1013 (try again later) | `1` | - |
//! | PingTimeout | ping timeout | bare | `1` | - |
//! | Parse(..) | parse error | bare | `1` | 400, empty |
//! | MessageTooBig | message too big | 1009 | `1` | 413, empty |
//! | BodyTimeout | transport error | - (polling only) | `1` | 408, empty |
//! | ConnectTimeout | connect timeout | bare | `1` | - |
//! | ShuttingDown | server shutting down | 1001 (going away) | `1` | - |
//! | LogReplaced | log replaced | 1012 (service restart) | `1` | - |
//! | SlowConsumer | slow consumer | bare (a WebSocket given up on is dropped unflushed) | `1` | - |
//! | ReplayStalled | transport error | bare (dropped unflushed, as a slow consumer) | `1` | - |
//! | EventAbuse | server namespace disconnect | bare, after `41<nsp>` per namespace | `41<nsp>`…, `1` | - |
//! | ServerDisconnect | server namespace disconnect | bare, after `41<nsp>` per namespace | `41<nsp>`…, `1` | - |
//! | TokenExpired | token expired | 1008 (policy violation) | `1` | - |
//! | NotTheTransport(..) | transport close | bare | - | - |
//!
//! Three endings are not recoverable (the session records are dropped, not kept): LogReplaced (the
//! offsets mean nothing now), EventAbuse and ServerDisconnect (server-side disconnects; Node does not
//! keep such a session either). Those two also send each namespace socket a DISCONNECT packet first,
//! as Node's `socket.disconnect(true)` does, so the official client reports "io server disconnect"
//! and does not reconnect.
//!
//! A server-side disconnect of one namespace socket that keeps the connection
//! (`disconnectSockets(false)`) is not an ending: [`DisconnectSocket`] with `close` false.
//!
//! `NotTheTransport` ends a WebSocket, not a session: an upgrade probe refused or timed out, a
//! WebSocket whose session is gone (reference §1.6: Node closes those with a bare close frame).

use actix::Message;
use actix_http::ws::CloseCode;

use super::ws_frames::FramingError;

/// Socket.IO's disconnect reasons (the strings a Node server reports), plus the hub's slow consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client closed the transport (or sent Engine.IO `1`).
    TransportClose,
    /// The transport failed (a WebSocket protocol error, an aborted or duplicate poll).
    TransportError,
    /// No pong within the ping timeout.
    PingTimeout,
    /// A packet that does not decode, or one not allowed in the current state.
    ParseError,
    /// A message larger than the max payload.
    MessageTooBig,
    /// No namespace joined within the connect timeout.
    ConnectTimeout,
    /// The server is stopping (SIGTERM).
    ServerShuttingDown,
    /// The log's epoch changed: the client reconnects and its resume fails cleanly.
    LogReplaced,
    /// The client does not read: it was given up on (outgoing bound).
    SlowConsumer,
    /// The server disconnected the sockets (Node's reason for `socket.disconnect()` on the server):
    /// here, for sending events past the rate limit for too long.
    ServerNamespaceDisconnect,
    /// A socket's connect token (JWT) expired: the client reconnects with a fresh one.
    TokenExpired,
}

impl DisconnectReason {
    /// The reason as Socket.IO names it (`"ping timeout"`): the `reason` label of
    /// `hub_disconnects_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::MessageTooBig => "message too big",
            DisconnectReason::ConnectTimeout => "connect timeout",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::LogReplaced => "log replaced",
            DisconnectReason::SlowConsumer => "slow consumer",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::TokenExpired => "token expired",
        }
    }
}

/// Why a session ends. The message is for the log (debug level: a client's fault or departure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The client closed the transport: a WebSocket close frame or end of stream, Engine.IO `1`.
    #[error("closed by the client")]
    TransportClosed,
    /// The transport failed or was misused; the text says how.
    #[error("transport error: {0}")]
    Transport(&'static str),
    /// Data that is not what its frame says: a text message or close reason that is not UTF-8
    /// (RFC 6455 §8.1); the text says which.
    #[error("invalid payload data: {0}")]
    InvalidPayload(&'static str),
    /// The bytes the instance holds for unfinished WebSocket frames and messages and for binary
    /// packets' attachments not yet whole, this connection's included, would pass
    /// `HUB_MAX_UNFINISHED_BYTES`. Not the client's fault
    /// alone and temporary: 1013 "try again later" (IANA registry), not 1009, whose message is
    /// within the max payload.
    #[error("unfinished websocket frames over the instance's budget")]
    UnfinishedOverBudget,
    /// No pong within the ping timeout (reference §1.7).
    #[error("no pong within the ping timeout")]
    PingTimeout,
    /// A packet that does not decode or is not allowed now (reference §2.7); the text says which.
    #[error("parse error: {0}")]
    Parse(String),
    /// A message over the max payload (`HUB_MAX_PAYLOAD`).
    #[error("message larger than the max payload")]
    MessageTooBig,
    /// A polling POST whose body did not arrive within `HUB_REQUEST_BODY_TIMEOUT_MS` (Engine.IO's
    /// "http request timeout": Node answers 408 and closes the session).
    #[error("polling body not received within the request body timeout")]
    BodyTimeout,
    /// No namespace joined within the connect timeout.
    #[error("no namespace joined within the connect timeout")]
    ConnectTimeout,
    /// The server is stopping: clients reconnect elsewhere and recover.
    #[error("server shutting down")]
    ShuttingDown,
    /// The client does not take what is sent to it (`HUB_MAX_BUFFERED_BYTES`).
    #[error("client does not take what is sent to it")]
    SlowConsumer,
    /// A resume's client took nothing of its replay for `HUB_REPLAY_STALL_MS`: its replay slot is
    /// freed. A transport failure to the client, whose records are kept: it reconnects and resumes
    /// from the last entry it received, so nothing it missed is lost (a fresh session on this
    /// connection could not reach it: it does not read).
    #[error("client took nothing of its replay within the replay stall bound")]
    ReplayStalled,
    /// The log was replaced (its epoch changed): the client's offsets mean nothing now. It
    /// reconnects (any closed transport makes the Socket.IO client reconnect) and its resume fails
    /// cleanly, so it learns `recovered` false; its record is dropped, not kept.
    #[error("the log was replaced")]
    LogReplaced,
    /// A socket's connect token expired (its `exp`). The transport is closed, not the Socket.IO
    /// socket: a DISCONNECT packet would make the official client stop, a closed transport makes it
    /// reconnect ("transport close") with a fresh token and resume; the records are kept for that.
    #[error("connect token expired")]
    TokenExpired,
    /// A WebSocket that is not (or no longer) its session's transport; the text says which.
    #[error("websocket closed: {0}")]
    NotTheTransport(&'static str),
    /// The client kept sending events past `HUB_SOCKET_EVENTS_PER_SECOND` until more than
    /// `HUB_SOCKET_ABUSE_LIMIT` were refused: its sockets get a DISCONNECT packet (the client does
    /// not reconnect) and its session records are dropped (it cannot resume either).
    #[error("events past the rate limit beyond the abuse limit")]
    EventAbuse,
    /// An operator disconnected the socket with its connection (`POST /sockets/disconnect` with
    /// `close`, or a Node peer's `disconnectSockets(true)`): a DISCONNECT packet per namespace (the
    /// client does not reconnect), records dropped (it cannot resume).
    #[error("disconnected by the server, connection closed")]
    ServerDisconnect,
}

/// What the polling request that ended a session is answered (Node's answers, reference §1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// The names say what Node sends (an empty body) and match `ApiError`'s variants of the same answers.
#[allow(clippy::enum_variant_names)]
pub enum RequestAnswer {
    /// 400 with an empty body.
    EmptyBadRequest,
    /// 413 with an empty body.
    EmptyPayloadTooLarge,
    /// 408 with an empty body.
    EmptyRequestTimeout,
}

/// What a [`SessionError`] does on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consequence {
    /// Socket.IO's name for it.
    pub reason: DisconnectReason,
    /// The WebSocket close frame's code; `None`: a bare close frame.
    pub close_code: Option<CloseCode>,
    /// The answer of a polling GET waiting when the session ends: `6` (noop) when the client asked
    /// for the close, `1` (close) otherwise.
    pub waiting_get: &'static str,
    /// The answer of the polling request that caused it, if a request did.
    pub request: RequestAnswer,
    /// Whether the session records are kept for a resume (released) or dropped (forgotten).
    pub recoverable: bool,
    /// Whether each namespace socket is sent a DISCONNECT packet `41<nsp>` before the transport
    /// closes (over polling: the waiting GET gets them, then the close packet).
    pub server_disconnect: bool,
}

impl SessionError {
    /// What the client sent that ended the session, if it sent something refused: the `kind`
    /// label of `hub_frames_refused_total` (`None`: the session ended for another reason).
    pub fn refused_kind(&self) -> Option<&'static str> {
        match self {
            SessionError::Transport(_) => Some("protocol"),
            SessionError::InvalidPayload(_) => Some("invalid_payload"),
            SessionError::Parse(_) => Some("parse"),
            SessionError::MessageTooBig => Some("too_big"),
            SessionError::UnfinishedOverBudget => Some("unfinished_over_budget"),
            _ => None,
        }
    }

    /// The single place that decides what an ending means on the wire.
    pub fn consequence(&self) -> Consequence {
        let (reason, close_code) = match self {
            SessionError::TransportClosed => (DisconnectReason::TransportClose, None),
            SessionError::Transport(_) => {
                (DisconnectReason::TransportError, Some(CloseCode::Protocol))
            }
            SessionError::InvalidPayload(_) => {
                (DisconnectReason::TransportError, Some(CloseCode::Invalid))
            }
            SessionError::UnfinishedOverBudget => {
                (DisconnectReason::TransportError, Some(CloseCode::Again))
            }
            SessionError::PingTimeout => (DisconnectReason::PingTimeout, None),
            SessionError::Parse(_) => (DisconnectReason::ParseError, None),
            SessionError::MessageTooBig => (DisconnectReason::MessageTooBig, Some(CloseCode::Size)),
            SessionError::BodyTimeout => (DisconnectReason::TransportError, None),
            SessionError::ConnectTimeout => (DisconnectReason::ConnectTimeout, None),
            SessionError::ShuttingDown => {
                (DisconnectReason::ServerShuttingDown, Some(CloseCode::Away))
            }
            SessionError::SlowConsumer => (DisconnectReason::SlowConsumer, None),
            SessionError::ReplayStalled => (DisconnectReason::TransportError, None),
            SessionError::LogReplaced => (DisconnectReason::LogReplaced, Some(CloseCode::Restart)),
            SessionError::TokenExpired => (DisconnectReason::TokenExpired, Some(CloseCode::Policy)),
            SessionError::NotTheTransport(_) => (DisconnectReason::TransportClose, None),
            SessionError::EventAbuse | SessionError::ServerDisconnect => {
                (DisconnectReason::ServerNamespaceDisconnect, None)
            }
        };
        Consequence {
            reason,
            close_code,
            waiting_get: if *self == SessionError::TransportClosed {
                "6"
            } else {
                "1"
            },
            request: match self {
                SessionError::MessageTooBig => RequestAnswer::EmptyPayloadTooLarge,
                SessionError::BodyTimeout => RequestAnswer::EmptyRequestTimeout,
                _ => RequestAnswer::EmptyBadRequest,
            },
            recoverable: !matches!(
                self,
                SessionError::LogReplaced
                    | SessionError::EventAbuse
                    | SessionError::ServerDisconnect
            ),
            server_disconnect: matches!(
                self,
                SessionError::EventAbuse | SessionError::ServerDisconnect
            ),
        }
    }
}

impl From<FramingError> for SessionError {
    /// Which ending a framing violation is (RFC 6455 §7.4.1 names the codes in `consequence`).
    fn from(err: FramingError) -> SessionError {
        match err {
            FramingError::TooBig => SessionError::MessageTooBig,
            FramingError::InvalidUtf8 | FramingError::CloseReasonNotUtf8 => {
                SessionError::InvalidPayload(err.as_str())
            }
            _ => SessionError::Transport(err.as_str()),
        }
    }
}

/// End the session now, for this reason (from the Hub: too slow; the Registry: shutting down; the
/// HTTP handlers: a polling POST that could not be read).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct Disconnect(pub SessionError);

/// The server disconnects a socket (from the Hub, for a DISCONNECT_SOCKETS request): it gets
/// `41<nsp>` and its record is dropped. With `close` the whole session ends
/// ([`SessionError::ServerDisconnect`]); without, only that namespace socket, the connection kept,
/// as Node's `socket.disconnect(false)`.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct DisconnectSocket {
    /// The socket's namespace.
    pub nsp: crate::protocol::target::Namespace,
    /// Whether the Engine.IO connection closes too.
    pub close: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_violations_close_with_the_codes_of_rfc_6455() {
        let code = |err: FramingError| {
            SessionError::from(err)
                .consequence()
                .close_code
                .map(u16::from)
        };
        for protocol in [
            FramingError::ReservedBits,
            FramingError::UnknownOpcode(3),
            FramingError::Unmasked,
            FramingError::FragmentedControl,
            FramingError::ControlTooLong,
            FramingError::LengthMsbSet,
            FramingError::ContinuationWithoutStart,
            FramingError::MessageNotFinished,
            FramingError::CloseTooShort,
            FramingError::InvalidCloseCode(1005),
        ] {
            assert_eq!(code(protocol), Some(1002), "{protocol:?}");
        }
        assert_eq!(code(FramingError::InvalidUtf8), Some(1007));
        assert_eq!(code(FramingError::CloseReasonNotUtf8), Some(1007));
        assert_eq!(code(FramingError::TooBig), Some(1009));
    }

    #[test]
    fn consequence_maps_each_ending_to_its_close_code_and_answers() {
        let code = |err: SessionError| err.consequence().close_code.map(u16::from);
        assert_eq!(code(SessionError::TransportClosed), None);
        assert_eq!(code(SessionError::Transport("x")), Some(1002));
        assert_eq!(code(SessionError::InvalidPayload("x")), Some(1007));
        assert_eq!(code(SessionError::UnfinishedOverBudget), Some(1013));
        assert_eq!(code(SessionError::PingTimeout), None);
        assert_eq!(code(SessionError::Parse("x".into())), None);
        assert_eq!(code(SessionError::MessageTooBig), Some(1009));
        assert_eq!(code(SessionError::ConnectTimeout), None);
        assert_eq!(code(SessionError::ShuttingDown), Some(1001));
        assert_eq!(code(SessionError::SlowConsumer), None);
        assert_eq!(code(SessionError::ReplayStalled), None);
        assert_eq!(code(SessionError::LogReplaced), Some(1012));
        assert_eq!(code(SessionError::NotTheTransport("probe")), None);
        assert_eq!(code(SessionError::EventAbuse), None);

        let closed = SessionError::TransportClosed.consequence();
        assert_eq!(
            (closed.reason, closed.waiting_get),
            (DisconnectReason::TransportClose, "6")
        );
        let timeout = SessionError::PingTimeout.consequence();
        assert_eq!(
            (timeout.reason, timeout.waiting_get),
            (DisconnectReason::PingTimeout, "1")
        );
        assert_eq!(
            SessionError::MessageTooBig.consequence().request,
            RequestAnswer::EmptyPayloadTooLarge
        );
        assert_eq!(
            SessionError::Parse("x".into()).consequence().request,
            RequestAnswer::EmptyBadRequest
        );
        let timeout = SessionError::BodyTimeout.consequence();
        assert_eq!(
            (timeout.reason, timeout.request),
            (
                DisconnectReason::TransportError,
                RequestAnswer::EmptyRequestTimeout
            )
        );
    }

    #[test]
    fn consequence_of_abuse_is_a_server_disconnect_that_cannot_be_resumed() {
        for server in [SessionError::EventAbuse, SessionError::ServerDisconnect] {
            let consequence = server.consequence();
            assert_eq!(
                consequence.reason,
                DisconnectReason::ServerNamespaceDisconnect
            );
            assert!(consequence.server_disconnect && !consequence.recoverable);
            assert_eq!(consequence.close_code, None, "bare, as Node closes");
        }
        let replaced = SessionError::LogReplaced.consequence();
        assert!(!replaced.server_disconnect && !replaced.recoverable);
        for kept in [
            SessionError::TransportClosed,
            SessionError::PingTimeout,
            SessionError::ShuttingDown,
            SessionError::SlowConsumer,
            SessionError::ReplayStalled,
            SessionError::Parse("x".into()),
        ] {
            let consequence = kept.consequence();
            assert!(
                consequence.recoverable && !consequence.server_disconnect,
                "{kept:?}"
            );
        }
    }
}
