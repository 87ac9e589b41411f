//! HTTP errors: what a client is told, in one place. Nothing internal leaks into a response body.
//!
//! Engine.IO errors follow Node's answers byte for byte (reference §1.1): `400 {"code":N,"message":"…"}`.
//! API errors are `{"error":"…"}` with the status saying whose fault it is.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::actors::disconnect::RequestAnswer;
use crate::admission::Refusal;
use crate::notification::{PublishError, ValidationError};

/// An Engine.IO handshake or request refused, with Node's code and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EioError {
    /// `transport` missing or not enabled.
    #[error("Transport unknown")]
    TransportUnknown,
    /// `sid` unknown or closed.
    #[error("Session ID unknown")]
    SessionIdUnknown,
    /// A handshake that is not a GET.
    #[error("Bad handshake method")]
    BadHandshakeMethod,
    /// Malformed request: bad Origin header, WebSocket transport without an Upgrade, ...
    #[error("Bad request")]
    BadRequest,
    /// `EIO` is not `4`.
    #[error("Unsupported protocol version")]
    UnsupportedProtocolVersion,
}

impl EioError {
    /// Node's numeric code (`Server.errors`).
    pub fn code(self) -> u8 {
        match self {
            EioError::TransportUnknown => 0,
            EioError::SessionIdUnknown => 1,
            EioError::BadHandshakeMethod => 2,
            EioError::BadRequest => 3,
            EioError::UnsupportedProtocolVersion => 5,
        }
    }
}

impl ResponseError for EioError {
    fn status_code(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::BadRequest().json(json!({ "code": self.code(), "message": self.to_string() }))
    }
}

/// A handshake refused past a session cap ([`crate::admission`]): 503 (the hub is full) or 429
/// (this client's address has too many), with the Engine.IO error body. The code is Node's 4
/// ("Forbidden"), which Node answers for handshakes its `allowRequest` hook refuses, where such caps
/// live in Node; the message says which cap. The official client treats any non-200 handshake as a
/// transport error and reconnects with its backoff, which is what a full hub wants. `Retry-After`
/// says when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HandshakeRefused(pub Refusal);

/// Seconds a refused handshake is told to wait (`Retry-After`): the official client's backoff starts
/// at 1 s and grows to 5 s.
const RETRY_AFTER_SECS: u32 = 5;

impl ResponseError for HandshakeRefused {
    fn status_code(&self) -> StatusCode {
        match self.0 {
            Refusal::PerAddress | Refusal::UnjoinedPerAddress => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Sessions | Refusal::Unjoined => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .insert_header(("retry-after", RETRY_AFTER_SECS.to_string()))
            .json(json!({ "code": 4, "message": self.0.to_string() }))
    }
}

/// An API request refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The body is not what the endpoint accepts; the message says why.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the limit.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body did not arrive within the request body timeout. Nothing was published.
    #[error("request body not received within {ms} ms")]
    RequestTimeout {
        /// The timeout, in milliseconds.
        ms: u128,
    },
    /// The log cannot accept it now (Redis down): retry later. Nothing was published.
    #[error("{}", PublishError::Unavailable)]
    Unavailable,
    /// The append was sent and not confirmed: it may have been published (503; a retry with the
    /// same idempotency key is safe).
    #[error("{}", PublishError::OutcomeUnknown)]
    OutcomeUnknown,
    /// The idempotency key was used before with another request (422, as Stripe answers).
    #[error("{}", PublishError::KeyReused)]
    KeyReused,
    /// No such resource.
    #[error("not found")]
    NotFound,
    /// A polling request refused as Node refuses it: 400 with an empty body.
    #[error("")]
    EmptyBadRequest,
    /// A polling POST over the max payload: 413 with an empty body, as Node answers.
    #[error("")]
    EmptyPayloadTooLarge,
    /// A polling POST whose body did not arrive in time: 408 with an empty body, as Node answers.
    #[error("")]
    EmptyRequestTimeout,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::EmptyBadRequest => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } | ApiError::EmptyPayloadTooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Unavailable | ApiError::OutcomeUnknown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RequestTimeout { .. } | ApiError::EmptyRequestTimeout => {
                StatusCode::REQUEST_TIMEOUT
            }
            ApiError::NotFound => StatusCode::NOT_FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut answer = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body is not worth waiting for: the connection closes after the answer.
            answer.force_close();
        }
        match self {
            ApiError::EmptyBadRequest
            | ApiError::EmptyPayloadTooLarge
            | ApiError::EmptyRequestTimeout => answer.finish(),
            _ => answer.json(json!({ "error": self.to_string() })),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        ApiError::BadRequest(err.to_string())
    }
}

impl From<PublishError> for ApiError {
    fn from(err: PublishError) -> Self {
        match err {
            PublishError::Unavailable => ApiError::Unavailable,
            PublishError::OutcomeUnknown => ApiError::OutcomeUnknown,
            PublishError::KeyReused => ApiError::KeyReused,
        }
    }
}

impl From<RequestAnswer> for ApiError {
    fn from(answer: RequestAnswer) -> Self {
        match answer {
            RequestAnswer::EmptyBadRequest => ApiError::EmptyBadRequest,
            RequestAnswer::EmptyPayloadTooLarge => ApiError::EmptyPayloadTooLarge,
            RequestAnswer::EmptyRequestTimeout => ApiError::EmptyRequestTimeout,
        }
    }
}
