//! WsConn: one WebSocket connection, the transport of a Session (from the start, or after an upgrade
//! from long-polling, reference §1.6).
//!
//! Owns: the socket (its WebSocket context) and the reassembly of fragmented messages.
//! Receives: WebSocket frames from the client; WsWrite and WsClose from its Session.
//! Sends: WsEvent to its Session (attached, text, binary, closed). It decodes nothing: the Session
//! speaks the protocol, whatever its transport.
//!
//! The counting of outgoing bytes (the slow-consumer bound, see `hub::Outbound`) happens here and in
//! [`Metered`], the response stream the HTTP dispatcher pulls as the client reads.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix::prelude::*;
use actix_http::ws::Item;
use actix_web::web::{Bytes, BytesMut};
use actix_web_actors::ws::{self, CloseCode, CloseReason, ProtocolError, WebsocketContext};
use bytestring::ByteString;
use futures_core::Stream;

use super::hub::Outbound;

/// A frame for the client.
#[derive(Debug, Clone)]
pub enum Out {
    /// A text frame (one Engine.IO packet).
    Text(ByteString),
    /// A binary frame (a binary message: raw bytes, no type digit).
    Binary(Bytes),
}

impl Out {
    /// Payload length on the wire.
    pub fn len(&self) -> usize {
        match self {
            Out::Text(text) => text.len(),
            Out::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a WebSocket ended, as its Session needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsEnd {
    /// The client closed it, or the TCP connection ended.
    Closed,
    /// A frame larger than the max payload (closed with 1009).
    TooBig,
    /// A WebSocket protocol error.
    Error,
}

/// What a WsConn reports to its Session; `conn` tells which socket (a session may have two during
/// an upgrade).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct WsEvent {
    /// The reporting connection.
    pub conn: u64,
    /// What happened.
    pub kind: WsEventKind,
}

/// The events of a WebSocket.
#[derive(Debug)]
pub enum WsEventKind {
    /// The connection is up; this is where to write.
    Attached(Addr<WsConn>),
    /// A text message (fragments already joined).
    Text(ByteString),
    /// A binary message.
    Binary(Bytes),
    /// The connection is gone.
    Ended(WsEnd),
}

/// Frames to write, in order. `bytes` is what the Session counted as on its way for them.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct WsWrite {
    /// The frames.
    pub frames: Vec<Out>,
    /// Their size as counted in `Outbound::sent`.
    pub bytes: usize,
}

/// Close the connection with `reason` (None: a bare close frame, as Node sends).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct WsClose(pub Option<CloseReason>);

/// The actor.
pub struct WsConn {
    /// Its id, in every WsEvent.
    id: u64,
    /// Who speaks the protocol over this socket.
    session: Recipient<WsEvent>,
    /// What is on its way to the client.
    outbound: Arc<Outbound>,
    /// Largest message accepted, fragments included.
    max_payload: usize,
    /// A fragmented message being reassembled: (is text, bytes so far).
    fragments: Option<(bool, BytesMut)>,
    /// Whether the Session was already told the connection ended.
    ended: bool,
}

impl WsConn {
    /// A connection for `session`.
    pub fn new(
        id: u64,
        session: Recipient<WsEvent>,
        outbound: Arc<Outbound>,
        max_payload: usize,
    ) -> WsConn {
        WsConn {
            id,
            session,
            outbound,
            max_payload,
            fragments: None,
            ended: false,
        }
    }

    fn report(&self, kind: WsEventKind) {
        self.session.do_send(WsEvent {
            conn: self.id,
            kind,
        });
    }

    fn end(&mut self, ctx: &mut WebsocketContext<Self>, end: WsEnd) {
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(end));
        }
        let reason = match end {
            WsEnd::TooBig => Some(CloseCode::Size.into()),
            WsEnd::Error => Some(CloseCode::Protocol.into()),
            WsEnd::Closed => None,
        };
        ctx.close(reason);
        ctx.stop();
    }

    fn on_fragment(&mut self, item: Item, ctx: &mut WebsocketContext<Self>) {
        let (is_text, bytes, last) = match item {
            Item::FirstText(b) => (Some(true), b, false),
            Item::FirstBinary(b) => (Some(false), b, false),
            Item::Continue(b) => (None, b, false),
            Item::Last(b) => (None, b, true),
        };
        match (is_text, self.fragments.as_mut()) {
            (Some(text), None) => self.fragments = Some((text, BytesMut::from(&bytes[..]))),
            (None, Some((_, buffer))) => buffer.extend_from_slice(&bytes),
            _ => return self.end(ctx, WsEnd::Error),
        }
        if self
            .fragments
            .as_ref()
            .is_some_and(|(_, buffer)| buffer.len() > self.max_payload)
        {
            return self.end(ctx, WsEnd::TooBig);
        }
        if let (true, Some((is_text, buffer))) = (last, self.fragments.take()) {
            let bytes = buffer.freeze();
            if !is_text {
                return self.report(WsEventKind::Binary(bytes));
            }
            match ByteString::try_from(bytes) {
                Ok(text) => self.report(WsEventKind::Text(text)),
                Err(_) => self.end(ctx, WsEnd::Error),
            }
        }
    }
}

impl Actor for WsConn {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if !self.session.connected() {
            // Its session ended before this socket came up (e.g. a late upgrade probe).
            self.ended = true;
            ctx.close(None);
            return ctx.stop();
        }
        self.report(WsEventKind::Attached(ctx.address()));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if !self.ended {
            self.ended = true;
            self.report(WsEventKind::Ended(WsEnd::Closed));
        }
    }
}

impl Handler<WsWrite> for WsConn {
    type Result = ();

    fn handle(&mut self, msg: WsWrite, ctx: &mut Self::Context) {
        self.outbound.taken(msg.bytes);
        for frame in msg.frames {
            self.outbound.pushed(frame.len());
            match frame {
                Out::Text(text) => ctx.text(text),
                Out::Binary(bytes) => ctx.binary(bytes),
            }
        }
    }
}

impl Handler<WsClose> for WsConn {
    type Result = ();

    fn handle(&mut self, WsClose(reason): WsClose, ctx: &mut Self::Context) {
        // The Session asked: it knows already.
        self.ended = true;
        ctx.close(reason);
        ctx.stop();
    }
}

impl StreamHandler<Result<ws::Message, ProtocolError>> for WsConn {
    fn handle(&mut self, msg: Result<ws::Message, ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Text(text)) => self.report(WsEventKind::Text(text)),
            Ok(ws::Message::Binary(bytes)) => self.report(WsEventKind::Binary(bytes)),
            Ok(ws::Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(_)) => self.end(ctx, WsEnd::Closed),
            Err(ProtocolError::Overflow) => self.end(ctx, WsEnd::TooBig),
            Err(_) => self.end(ctx, WsEnd::Error),
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        self.end(ctx, WsEnd::Closed);
    }
}

/// A WsConn's outgoing frames on their way to the socket, counted as the dispatcher pulls them.
pub struct Metered<S> {
    frames: Pin<Box<S>>,
    outbound: Arc<Outbound>,
}

impl<S> Metered<S> {
    /// Wraps a WebSocket context's output stream.
    pub fn new(frames: S, outbound: Arc<Outbound>) -> Metered<S> {
        Metered {
            frames: Box::pin(frames),
            outbound,
        }
    }
}

impl<S: Stream<Item = Result<Bytes, actix_web::Error>>> Stream for Metered<S> {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.outbound.is_aborted() {
            // Erroring the body makes the dispatcher drop the connection and what is queued for it.
            return Poll::Ready(Some(Err(actix_web::error::ErrorServiceUnavailable(
                "slow consumer",
            ))));
        }
        let next = self.frames.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(bytes))) = &next {
            self.outbound.pulled(bytes.len());
        }
        next
    }
}
