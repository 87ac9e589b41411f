//! CORS, for browsers on other origins (reference §1.4): off unless origins are configured.
//!
//! ```text
//! allowed origin O, credentials:  Access-Control-Allow-Origin: O, -Allow-Credentials: true, Vary: Origin
//! "*" configured:                 Access-Control-Allow-Origin: *   (no credentials: browsers refuse both)
//! OPTIONS preflight:              204, -Allow-Methods GET,HEAD,PUT,PATCH,POST,DELETE, -Allow-Headers echoed
//! other origins:                  no CORS headers (the browser blocks the response)
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
    let allowed = req.headers().get(header::ORIGIN).cloned().filter(|origin| {
        let origins = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.cors_origins.as_slice())
            .unwrap_or(&[]);
        origins
            .iter()
            .any(|o| o == "*" || origin.as_bytes() == o.as_bytes())
    });
    let Some(origin) = allowed else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let any = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.cors_origins.iter().any(|o| o == "*"));
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

fn allow(headers: &mut HeaderMap, origin: HeaderValue, any: bool) {
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
