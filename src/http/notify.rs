//! `POST /notifications/notify`: the HTTP door onto [`notification::publish`].
//!
//! ```text
//! {"title"?: string, "body"?: string}  ──►  201 {"id": "<uuid>", "offset": "<entry id>"}
//! invalid JSON / wrong types ─► 400      body over the limit ─► 413      log down ─► 503
//! ```
//! Every error answer means nothing was published (the statuses are decided in `http/error.rs`).

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::AppState;
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
    let body = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| too_large)?
        .map_err(|err| ApiError::BadRequest(format!("could not read the body: {err}")))?;
    let request = NotifyRequest::from_body(&body)?;
    let published = notification::publish(&state.bridge, request).await?;
    Ok(HttpResponse::Created()
        .json(serde_json::json!({ "id": published.id, "offset": published.offset.to_string() })))
}
