//! HTTP errors: what a client is told, in one place. Nothing internal leaks into a response body.
//!
//! Engine.IO errors follow Node's answers byte for byte (reference §1.1): `400 {"code":N,"message":"…"}`.
//! API errors are `{"error":"…"}` with the status saying whose fault it is.

use actix_web::http::{header, StatusCode};
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
    /// An `Origin` neither the hub's own nor in `HUB_CORS_ORIGINS` (`crate::http::origin`): 403,
    /// Node's answer when its `allowRequest` refuses.
    #[error("Forbidden")]
    Forbidden,
}

impl EioError {
    /// Node's numeric code (`Server.errors`).
    pub fn code(self) -> u8 {
        match self {
            EioError::TransportUnknown => 0,
            EioError::SessionIdUnknown => 1,
            EioError::BadHandshakeMethod => 2,
            EioError::BadRequest => 3,
            EioError::Forbidden => 4,
            EioError::UnsupportedProtocolVersion => 5,
        }
    }
}

impl ResponseError for EioError {
    fn status_code(&self) -> StatusCode {
        match self {
            EioError::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(json!({ "code": self.code(), "message": self.to_string() }))
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
const RETRY_AFTER_SECS: u64 = 5;

impl ResponseError for HandshakeRefused {
    fn status_code(&self) -> StatusCode {
        match self.0 {
            Refusal::PerAddress | Refusal::UnjoinedPerAddress | Refusal::ConnectionRate(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Refusal::Sessions | Refusal::Unjoined => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let retry_after = match self.0 {
            // When the address's next token is back.
            Refusal::ConnectionRate(wait) => wait.0,
            _ => RETRY_AFTER_SECS,
        };
        HttpResponse::build(self.status_code())
            .insert_header(("retry-after", retry_after.to_string()))
            .json(json!({ "code": 4, "message": self.0.to_string() }))
    }
}

/// The challenge of a 401 (RFC 6750 §3).
const BEARER_CHALLENGE: &str = "Bearer realm=\"realtime-hub\"";

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
    /// A disconnect request the log did not take (Redis down): nothing was requested (503).
    #[error("log backend unavailable, nothing was requested: retry later")]
    DisconnectNotRequested,
    /// A disconnect request sent and not confirmed (503): it may have been taken; asking again
    /// is harmless.
    #[error(
        "log backend did not confirm the request, outcome unknown: the sockets may be \
         disconnected; asking again is safe"
    )]
    DisconnectOutcomeUnknown,
    /// The idempotency key was used before with another request (422, as Stripe answers).
    #[error("{}", PublishError::KeyReused)]
    KeyReused,
    /// No such resource.
    #[error("not found")]
    NotFound,
    /// API keys are configured and the request has none or a wrong one: 401 with
    /// `WWW-Authenticate: Bearer` (RFC 6750 §3: `error="invalid_token"` only when one was given).
    #[error(
        "{}: send Authorization: Bearer <key> or X-API-Key: <key>",
        if *invalid { "invalid API key" } else { "an API key is required" }
    )]
    Unauthorized {
        /// A key was given, and it is not one of them.
        invalid: bool,
    },
    /// `GET /notifications` without the credentials it needs (API keys or JWT configured): 401
    /// with `WWW-Authenticate: Bearer`, as [`ApiError::Unauthorized`].
    #[error(
        "{}: send Authorization: Bearer <API key or connect token> or X-API-Key: <key>",
        if *invalid { "invalid API key or token" } else { "an API key or a connect token is required" }
    )]
    ReadUnauthorized {
        /// Something was given, and it is neither a key nor a valid token.
        invalid: bool,
    },
    /// What the request points at is gone for good (a history cursor trimmed away or of another
    /// log): 410; the message says what to do instead.
    #[error("{0}")]
    Gone(String),
    /// The log cannot be read now (Redis down): 503, retry later.
    #[error("log backend unavailable: retry later")]
    LogUnavailable,
    /// This hub's configuration cannot serve the request at all (the history API over several
    /// stream shards): 501; the message says why.
    #[error("{0}")]
    NotImplemented(String),
    /// The request's `Origin` is neither the hub's own nor in `HUB_CORS_ORIGINS`: 403.
    #[error("cross-origin request refused: Origin is neither this hub nor in HUB_CORS_ORIGINS")]
    ForeignOrigin,
    /// The body is not declared `application/json`: 415.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// Over a publish rate limit (`per`: "client address" or "API key"): 429 with `Retry-After`.
    #[error("too many publishes for this {per}: retry after {retry_after} s")]
    TooManyPublishes {
        /// Whole seconds until a publish may succeed (at least 1).
        retry_after: u64,
        /// What the limit counts.
        per: &'static str,
    },
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
            ApiError::Unavailable
            | ApiError::OutcomeUnknown
            | ApiError::DisconnectNotRequested
            | ApiError::DisconnectOutcomeUnknown
            | ApiError::LogUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RequestTimeout { .. } | ApiError::EmptyRequestTimeout => {
                StatusCode::REQUEST_TIMEOUT
            }
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unauthorized { .. } | ApiError::ReadUnauthorized { .. } => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::ForeignOrigin => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyPublishes { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut answer = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body is not worth waiting for: the connection closes after the answer.
            answer.force_close();
        }
        match self {
            ApiError::Unauthorized { invalid: false }
            | ApiError::ReadUnauthorized { invalid: false } => {
                answer.insert_header((header::WWW_AUTHENTICATE, BEARER_CHALLENGE));
            }
            ApiError::Unauthorized { invalid: true }
            | ApiError::ReadUnauthorized { invalid: true } => {
                answer.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("{BEARER_CHALLENGE}, error=\"invalid_token\""),
                ));
            }
            ApiError::TooManyPublishes { retry_after, .. } => {
                answer.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ => {}
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
