//! Who may join `/admin`: the admin UI's basic authentication (`auth: {type: "basic"}` of
//! `@socket.io/admin-ui`), checked at the CONNECT.
//!
//! ```text
//! CONNECT /admin {sessionId}            ─► a session id this instance gave out: admitted
//! CONNECT /admin {username, password}   ─► username equal, bcrypt(password) matches the hash:
//!                                          admitted, and a new session id (`session` event)
//!                                       ─► otherwise 44/admin,{"message":"invalid credentials"}
//! ```
//!
//! A bcrypt check costs ~0.1 s of CPU at cost 10, on purpose: it runs on tokio's blocking pool (never
//! on an actor's thread), and only within two budgets, one per client address and one for the
//! instance, so wrong passwords cannot take more than a bounded share of a core. Past either budget
//! the CONNECT is refused with `{"message":"rate limited"}` without a check. The session ids the UI
//! keeps (in its browser's storage) let it reconnect without a new check.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::app::{AdmitFuture, ConnectRefusal, Handshake, Identity};
use crate::config::Secret;
use crate::limited_warn;
use crate::log_limit::LimitedLog;
use crate::rate_limit::KeyedLimit;

/// bcrypt checks one client address may cause per second.
pub const CHECKS_PER_SECOND_PER_ADDRESS: u32 = 1;
/// bcrypt checks the instance runs per second at most, whoever asks.
pub const CHECKS_PER_SECOND: u32 = 4;
/// Session ids kept; past it the oldest is forgotten (its UI logs in again).
pub const MAX_SESSIONS: usize = 1000;
/// How long a session id lets the UI reconnect without its password.
pub const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

/// Refused admin CONNECTs: a few lines a minute, whatever clients do.
static REFUSED: LimitedLog = LimitedLog::per_minute(6);

/// The configured credentials and the state of their checks.
pub struct Credentials {
    username: String,
    hash: Secret,
    per_address: KeyedLimit<IpAddr>,
    instance: KeyedLimit<()>,
    sessions: Mutex<HashMap<String, Instant>>,
}

/// What the CONNECT's `auth` presents.
enum Presented {
    /// A session id this instance gave out, still valid.
    Session,
    /// A user name and a password to check; whether the name is the configured one. A wrong name
    /// costs the same budget and the same bcrypt check as a wrong password, so neither the answer
    /// nor its timing tells an attacker which of the two was wrong.
    Password { password: String, user_ok: bool },
    /// Anything else.
    Nothing,
}

impl Credentials {
    /// Credentials checked against `username` and the bcrypt `hash` of the password.
    pub fn new(username: String, hash: Secret) -> Credentials {
        Credentials {
            username,
            hash,
            per_address: KeyedLimit::per_second(CHECKS_PER_SECOND_PER_ADDRESS),
            instance: KeyedLimit::per_second(CHECKS_PER_SECOND),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn presented(&self, auth: &Value) -> Presented {
        if auth
            .get("sessionId")
            .and_then(Value::as_str)
            .is_some_and(|id| self.knows(id))
        {
            return Presented::Session;
        }
        let field = |name: &str| auth.get(name).and_then(Value::as_str);
        match (field("username"), field("password")) {
            (Some(user), Some(password)) => Presented::Password {
                password: password.to_owned(),
                user_ok: user == self.username,
            },
            _ => Presented::Nothing,
        }
    }

    /// Whether `id` is a session id given out less than [`SESSION_TTL`] ago.
    pub fn knows(&self, id: &str) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .get(id)
            .is_some_and(|given| given.elapsed() < SESSION_TTL)
    }

    /// A new session id (128 random bits, hex), kept for [`SESSION_TTL`].
    pub fn new_session(&self) -> String {
        let id: String = crate::actors::recovery::random_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, given| given.elapsed() < SESSION_TTL);
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, given)| **given)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), Instant::now());
        id
    }

    /// The CONNECT's decision: admitted (anonymous, no permissions), or refused with `invalid
    /// credentials` (as the package answers) or `rate limited`.
    pub fn check(&self, handshake: &Handshake, auth: &Value) -> AdmitFuture {
        let from = handshake.remote_addr.map(|addr| addr.ip());
        let refuse = move |message: &str, why: &str| {
            limited_warn!(
                REFUSED,
                "admin CONNECT refused from={}: {why}",
                from.map_or_else(|| "-".to_owned(), |ip| ip.to_string())
            );
            Err(ConnectRefusal {
                message: message.to_owned(),
                data: None,
            })
        };
        let (password, user_ok) = match self.presented(auth) {
            Presented::Session => return Box::pin(std::future::ready(Ok(Identity::default()))),
            Presented::Nothing => {
                let decision = refuse("invalid credentials", "no valid credentials presented");
                return Box::pin(std::future::ready(decision));
            }
            Presented::Password { password, user_ok } => (password, user_ok),
        };
        let within_budget = from.is_none_or(|ip| self.per_address.check(&ip).is_ok())
            && self.instance.check(&()).is_ok();
        if !within_budget {
            let decision = refuse("rate limited", "too many password checks");
            return Box::pin(std::future::ready(decision));
        }
        let hash = self.hash.expose().to_owned();
        let verify = actix_web::rt::task::spawn_blocking(move || bcrypt::verify(password, &hash));
        Box::pin(async move {
            match verify.await {
                Ok(Ok(true)) if user_ok => Ok(Identity::default()),
                Ok(Ok(_)) if !user_ok => refuse("invalid credentials", "wrong user name"),
                Ok(Ok(_)) => refuse("invalid credentials", "wrong password"),
                Ok(Err(err)) => refuse("invalid credentials", &format!("bcrypt: {err}")),
                Err(err) => refuse("invalid credentials", &format!("bcrypt task: {err}")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn credentials() -> Credentials {
        Credentials::new(
            "admin".into(),
            Secret::from(bcrypt::hash("pw", 4).unwrap().as_str()),
        )
    }

    async fn decide(credentials: &Credentials, auth: Value) -> Result<Identity, ConnectRefusal> {
        credentials.check(&Handshake::default(), &auth).await
    }

    #[actix_web::test]
    async fn the_password_and_the_session_ids_admit_and_nothing_else() {
        let credentials = credentials();
        let ok = json!({"username": "admin", "password": "pw"});
        assert!(decide(&credentials, ok).await.is_ok());
        for wrong in [
            json!({"username": "admin", "password": "wrong"}),
            json!({"username": "root", "password": "pw"}),
            json!({"username": "admin"}),
            json!({"password": "pw"}),
            json!({}),
            json!({"sessionId": "unknown"}),
            json!({"username": "admin", "password": 1}),
        ] {
            // One check per second per address: a second instance of the limit per attempt.
            let fresh = credentials_like(&credentials);
            let refused = decide(&fresh, wrong.clone()).await.unwrap_err();
            assert_eq!(refused.message, "invalid credentials", "{wrong}");
        }
        let id = credentials.new_session();
        assert_eq!(id.len(), 32);
        assert!(decide(&credentials, json!({ "sessionId": id }))
            .await
            .is_ok());
    }

    fn credentials_like(other: &Credentials) -> Credentials {
        Credentials::new(other.username.clone(), other.hash.clone())
    }

    #[actix_web::test]
    async fn password_checks_past_the_budget_are_refused_without_a_check() {
        let credentials = credentials();
        let handshake = Handshake::new(
            &actix_http::header::HeaderMap::new(),
            "",
            Some("127.0.0.1:5000".parse().unwrap()),
        );
        let wrong = json!({"username": "admin", "password": "wrong"});
        let first = credentials.check(&handshake, &wrong).await.unwrap_err();
        assert_eq!(first.message, "invalid credentials");
        let second = credentials.check(&handshake, &wrong).await.unwrap_err();
        assert_eq!(second.message, "rate limited");
        // A wrong user name is charged as a wrong password is: its answer (rate limited here, as
        // for the right name) does not tell which names exist.
        let elsewhere = Handshake::new(
            &actix_http::header::HeaderMap::new(),
            "",
            Some("127.0.0.2:5000".parse().unwrap()),
        );
        let stranger = json!({"username": "root", "password": "wrong"});
        let first = credentials.check(&elsewhere, &stranger).await.unwrap_err();
        assert_eq!(first.message, "invalid credentials");
        let second = credentials.check(&elsewhere, &stranger).await.unwrap_err();
        assert_eq!(second.message, "rate limited");
        // A session id needs no check, so it is never rate limited.
        let id = credentials.new_session();
        assert!(credentials
            .check(&handshake, &json!({ "sessionId": id }))
            .await
            .is_ok());
    }
}
