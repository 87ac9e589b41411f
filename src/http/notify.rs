//! `POST /notifications/notify`: the HTTP door onto [`notification::publish`].
//!
//! ```text
//! {"title"?: string, "body"?: string}  ──►  201 {"id": "<uuid>", "offset": "<entry id>"}
//! invalid JSON / wrong types ─► 400      body over the limit ─► 413      log down ─► 503
//! body not received within HUB_REQUEST_BODY_TIMEOUT_MS ─► 408 {"error":"request body not received within … ms"}
//! ```
//! Every error answer means nothing was published (the statuses are decided in `http/error.rs`).

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::error::ApiError;
use super::{read_body, AppState, BodyError};
use crate::notification::{self, NotifyRequest};

/// The handler.
pub async fn notify(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.max_notify_bytes;
    let too_large = ApiError::PayloadTooLarge { limit };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large);
    }
    let body = match read_body(payload, limit, &state, "notify", req.peer_addr()).await {
        Ok(body) => body,
        Err(failure) => {
            let error = match failure.error {
                BodyError::TooLarge => too_large,
                BodyError::Unreadable => ApiError::BadRequest("could not read the body".into()),
                BodyError::TimedOut => ApiError::RequestTimeout {
                    ms: state.request_body_timeout.as_millis(),
                },
            };
            return Ok(failure.answer(error.error_response()));
        }
    };
    let request = NotifyRequest::from_body(&body)?;
    let published = notification::publish(&state.bridge, request).await?;
    Ok(HttpResponse::Created()
        .json(serde_json::json!({ "id": published.id, "offset": published.offset.to_string() })))
}
