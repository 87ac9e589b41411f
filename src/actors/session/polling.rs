//! The long-polling transport's messages to a Session (reference §1.4): a GET, its answer or
//! refusal, a GET abandoned by its client, a POST and its body.

use actix::prelude::*;
use actix_web::web::Bytes;
use tokio::sync::oneshot;

use super::super::disconnect::SessionError;

/// A polling GET.
#[derive(Message)]
#[rtype(result = "Result<PollAnswer, PollRefused>")]
pub struct Poll;

/// What a polling GET gets.
#[derive(Debug)]
pub enum PollAnswer {
    /// A payload, at once.
    Now(String),
    /// A payload, once there is one.
    Later {
        /// Identifies this GET in `PollAbandoned`.
        ticket: u64,
        /// Resolves with the payload.
        answer: oneshot::Receiver<String>,
    },
}

/// Why a polling request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollRefused {
    /// The request ended the session (a second GET, a body that does not decode): answered as
    /// [`SessionError::consequence`] says.
    Failed(SessionError),
    /// The session is on another transport now: 400 code 3.
    WrongTransport,
    /// The session ended meanwhile: 400 code 1.
    Gone,
}

/// The client of a pending GET went away before its answer: the session closes (reference §1.4).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PollAbandoned(pub u64);

/// A polling POST starts (its body is being read).
#[derive(Message)]
#[rtype(result = "Result<(), PollRefused>")]
pub struct PostBegin;

/// A polling POST's body.
#[derive(Message)]
#[rtype(result = "Result<(), PollRefused>")]
pub struct PostBody(pub Bytes);
