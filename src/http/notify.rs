//! `POST /notifications/notify`: the HTTP door onto [`notification::publish`].
//!
//! ```text
//! [Idempotency-Key: <key>] {"title"?: string, "body"?: string, "to"?: room|[room], "except"?: room|[room]}
//!     ──►  201 {"id": "<uuid>", "title", "body", "timestamp": <ms>, "offset": "<entry id>"}
//! invalid JSON / wrong types / bad key / bad to or except ─► 400   body over the limit ─► 413
//! key reused with another title/body/target ─► 422   log down, nothing published / outcome unknown ─► 503
//! body not received within HUB_REQUEST_BODY_TIMEOUT_MS ─► 408 {"error":"request body not received within … ms"}
//! ```
//! A key already appended answers 201 with the first publish's id, timestamp and offset (the title and
//! body are the same: the key's fingerprint covers them) and `Idempotent-Replayed: true`.
//! Before any of that, the [`Publisher`] guard (`http/guard.rs`): a foreign `Origin` ─► 403, no or a
//! wrong API key when keys are set ─► 401, over a publish rate ─► 429 with `Retry-After`; then a
//! body not declared `application/json` ─► 415 (the body is not read for any of them).
//! Every error answer but "outcome unknown" means nothing was published (the statuses and texts are
//! decided in `http/error.rs`).

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::guard::{require_json, Publisher};
use super::{read_api_body, AppState};
use crate::notification::{self, IdempotencyKey, NotifyRequest, ValidationError};

/// The request header carrying an idempotency key (Stripe's name, and the IETF HTTPAPI draft's).
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// The answer header saying a 201 repeats the first answer for its key (nothing was published now).
pub const IDEMPOTENT_REPLAYED_HEADER: &str = "idempotent-replayed";

/// The handler.
pub async fn notify(
    _publisher: Publisher,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_json(req.headers(), &state.metrics)?;
    let body = match read_api_body(&req, payload, &state, "notify").await? {
        Ok(body) => body,
        Err(answer) => return Ok(answer),
    };
    let key = match req.headers().get(IDEMPOTENCY_KEY_HEADER) {
        None => None,
        Some(value) => Some(IdempotencyKey::parse(value.to_str().map_err(|_| {
            ValidationError::BadIdempotencyKey(
                "the header is not visible ASCII (1 to 255 characters '!' to '~')".into(),
            )
        })?)?),
    };
    let request = NotifyRequest::from_body(&body)?;
    let published =
        notification::publish(&state.bridge, request, key, notification::Source::Http).await?;
    let mut answer = HttpResponse::Created();
    if published.replayed {
        answer.insert_header((IDEMPOTENT_REPLAYED_HEADER, "true"));
    }
    Ok(answer.json(published.answer()))
}
