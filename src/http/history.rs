//! `GET /notifications`: the HTTP door onto [`crate::history`].
//!
//! ```text
//! GET /notifications[?after=<cursor>|?before=<cursor>][&limit=<1..100>]
//!     ──► 200 {"items":[{"id","title","body","timestamp","offset"}…], "next": "<cursor>" | null}
//!         Cache-Control: no-store
//! a foreign Origin ─► 403   no or wrong credentials (when required) ─► 401 with WWW-Authenticate
//! a bad limit or cursor ─► 400   a trimmed, foreign-epoch or ahead cursor ─► 410   log down ─► 503
//! ```
//! Who sees what ([`Viewer`]), from `Authorization: Bearer <key or token>` or `X-API-Key: <key>`:
//! an API key ─► every notification; a connect token (JWT, verified as a CONNECT's) ─► broadcasts
//! and entries for the user's rooms; nothing, in open mode (neither API keys nor JWT configured)
//! ─► every notification, as open mode lets anyone publish; nothing otherwise ─► 401. In open mode
//! whatever credentials are sent are ignored.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::guard::credentials;
use super::AppState;
use crate::history::{self, HistoryError, PageRequest, Viewer};
use crate::limited_warn;
use crate::log_limit::LimitedLog;
use crate::rooms::{user_room, RoomPatterns};
use crate::token::TokenVerifier;

/// Refused history reads (401), a few lines a minute however many arrive.
static UNAUTHORIZED: LimitedLog = LimitedLog::per_minute(6);

/// What decides who a history reader is, besides the API keys: the connect-token verifier (with
/// JWT configured) and the rooms anyone may join (`HUB_PUBLIC_ROOMS`).
pub struct Readers {
    /// `None`: JWT is not configured.
    tokens: Option<Arc<TokenVerifier>>,
    /// Rooms every user may join, so they see what is sent there.
    public_rooms: RoomPatterns,
}

impl Readers {
    /// From the token verifier (if JWT is configured) and `HUB_PUBLIC_ROOMS`.
    pub fn new(tokens: Option<Arc<TokenVerifier>>, public_rooms: RoomPatterns) -> Readers {
        Readers {
            tokens,
            public_rooms,
        }
    }

    /// Who a request is (see the module's table), or why it is refused.
    fn viewer(&self, state: &AppState, req: &HttpRequest) -> Result<Viewer, ApiError> {
        let keys = state.publishers.keys_required();
        if !keys && self.tokens.is_none() {
            return Ok(Viewer::Everyone);
        }
        let given = credentials(req.headers());
        if let Some(given) = given {
            if keys && state.publishers.is_key(given) {
                return Ok(Viewer::Everyone);
            }
            if let Some(tokens) = &self.tokens {
                match tokens.verify(given) {
                    Ok(identity) => return Ok(self.user(&identity)),
                    Err(reason) => refused(req, &format!("token refused: {reason}")),
                }
            } else {
                refused(req, "wrong API key");
            }
        } else {
            refused(req, "no credentials");
        }
        Err(ApiError::ReadUnauthorized {
            invalid: given.is_some(),
        })
    }

    /// A token's user: `user:<sub>` and the rooms they may join.
    fn user(&self, identity: &crate::app::Identity) -> Viewer {
        let mut may_join = vec![self.public_rooms.clone()];
        // The claim was checked when the token was verified; a pattern set that does not build
        // (not reachable) opens nothing.
        if let Ok(claim) = RoomPatterns::new(&identity.rooms) {
            may_join.push(claim);
        }
        Viewer::User {
            room: user_room(identity.sub.as_deref().unwrap_or_default()),
            may_join,
        }
    }
}

/// Logs a refusal without the credential (a near-miss of a key or a token is itself a secret).
fn refused(req: &HttpRequest, why: &str) {
    let from = req.peer_addr().map(|peer| peer.ip().to_string());
    limited_warn!(
        UNAUTHORIZED,
        "history read from {} refused (401): {why}",
        from.as_deref().unwrap_or("an unknown address")
    );
}

impl From<HistoryError> for ApiError {
    fn from(err: HistoryError) -> Self {
        match err {
            HistoryError::BadRequest(why) => ApiError::BadRequest(why),
            HistoryError::Gone(why) => ApiError::Gone(why),
            HistoryError::Unavailable => ApiError::LogUnavailable,
            HistoryError::NotImplemented(why) => ApiError::NotImplemented(why),
        }
    }
}

/// The handler.
pub async fn history(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !state.origins.admits(req.headers()) {
        state.metrics.origin_refused.inc();
        return Err(ApiError::ForeignOrigin);
    }
    let viewer = state.readers.viewer(&state, &req)?;
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|err| ApiError::BadRequest(format!("malformed query string: {err}")))?;
    let request = PageRequest::from_pairs(&pairs)?;
    let page = history::page(&state.bridge, &request, &viewer).await?;
    Ok(HttpResponse::Ok()
        // A user's page is theirs: no shared cache keeps it.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(page.answer()))
}
