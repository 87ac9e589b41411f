//! CORS, for browsers on other origins (reference §1.4): off unless origins are configured.
//!
//! ```text
//! allowed origin O, credentials:  Access-Control-Allow-Origin: O, -Allow-Credentials: true, Vary: Origin
//! "*" configured:                 Access-Control-Allow-Origin: *   (no credentials: browsers refuse both)
//! OPTIONS preflight:              204, -Allow-Methods GET,HEAD,PUT,PATCH,POST,DELETE, -Allow-Headers echoed
//! every answer to an allowed one: Access-Control-Expose-Headers: Retry-After, WWW-Authenticate, …
//! other origins:                  no CORS headers (the browser blocks the response); a publish or
//!                                 an Engine.IO request from one is refused with 403 (http/origin.rs)
//! ```

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};

use super::AppState;

/// The middleware.
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    // The same list the Origin checks of publishes and Engine.IO requests admit (http/origin.rs).
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let allowed = req
        .headers()
        .get(header::ORIGIN)
        .filter(|origin| state.as_ref().is_some_and(|s| s.origins.listed(origin)))
        .cloned();
    let Some(origin) = allowed else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let any = state.is_some_and(|s| s.origins.any());
    if req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let mut preflight = HttpResponse::NoContent();
        preflight.insert_header((
            header::ACCESS_CONTROL_ALLOW_METHODS,
            "GET,HEAD,PUT,PATCH,POST,DELETE",
        ));
        if let Some(headers) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            preflight.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, headers.clone()));
        }
        let mut response = preflight.finish();
        allow(response.headers_mut(), origin, any);
        return Ok(req.into_response(response).map_into_right_body());
    }
    let mut response = next.call(req).await?;
    allow(response.headers_mut(), origin, any);
    Ok(response.map_into_left_body())
}

/// The answer headers a page on an allowed origin may read besides the CORS-safelisted ones: when
/// to retry a 429/503, the challenge of a 401, and whether a 201 repeats a first answer.
const EXPOSED: &str = "Retry-After, WWW-Authenticate, Idempotent-Replayed";

fn allow(headers: &mut HeaderMap, origin: HeaderValue, any: bool) {
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
    if any {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        return;
    }
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}
