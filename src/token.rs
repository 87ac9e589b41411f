//! Connect tokens (JWT, RFC 7519): who a socket is, checked at its CONNECT.
//!
//! Owns: the verification keys read at start (an HS256 secret, a PEM public key for RS256 or ES256,
//! or both) and the claims rules; [`crate::app::HubApp`] asks it about every CONNECT when JWT is
//! configured. `jsonwebtoken` does the parsing, the signature and the registered-claims checks.
//!
//! ```text
//! token ─► header.alg ─► HS256 (HUB_JWT_SECRET) | RS256/ES256 (HUB_JWT_PUBLIC_KEY_FILE) | else refused
//!       ─► signature ─► exp (required, no leeway) · nbf (if present) · aud/iss (required when configured)
//!       ─► Identity { sub, expires_at: exp, scope }
//! ```
//!
//! No leeway: a token is valid until its `exp` second starts, and a live socket is closed then
//! (`Session`'s expiry timer), so admission and expiry agree. Issuers whose clocks drift should mint
//! tokens that outlive the drift.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::app::{Identity, Scope};
use crate::config::{Secret, Security};

/// RFC 7518 §3.2: an HS256 key of at least the hash's size (256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Why the token settings cannot be used: the hub does not start (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum TokenSetupError {
    /// The key file could not be read.
    #[error("HUB_JWT_PUBLIC_KEY_FILE {path:?}: {err}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// The file holds a private key: the hub needs only the public one, and must not hold the other.
    #[error("HUB_JWT_PUBLIC_KEY_FILE {0:?} holds a private key: give the public key (`openssl pkey -pubout`)")]
    PrivateKey(PathBuf),
    /// An EC key on another curve than P-256 (ES256 is P-256 with SHA-256, RFC 7518 §3.4).
    #[error("HUB_JWT_PUBLIC_KEY_FILE {0:?} is an EC key not on P-256 (ES256 needs P-256)")]
    NotP256(PathBuf),
    /// Neither an RSA nor an EC public key in PEM.
    #[error("HUB_JWT_PUBLIC_KEY_FILE {0:?} is not a PEM RSA or EC (P-256) public key")]
    NotAKey(PathBuf),
    /// The library refused the secret.
    #[error("HUB_JWT_SECRET: {0}")]
    Secret(jsonwebtoken::errors::Error),
}

/// Why a CONNECT's token was refused. Only logged: the client is told `unauthorized`, nothing more.
#[derive(Debug, thiserror::Error)]
pub enum TokenRejected {
    /// Neither `auth.token` nor `Authorization: Bearer` was sent.
    #[error("no token (auth.token or Authorization: Bearer)")]
    Missing,
    /// `auth.token` is not a string.
    #[error("auth.token is not a string")]
    NotAString,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("Authorization is not a Bearer token")]
    NotBearer,
    /// The header names an algorithm no configured key verifies (`none` included: it does not parse).
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    /// `sub` empty or longer than [`MAX_SUBJECT_BYTES`]: it names a user, in records and rooms.
    #[error("sub is empty or longer than {MAX_SUBJECT_BYTES} bytes")]
    Subject,
    /// `exp` later than [`LATEST_EXPIRY`]: no clock or timer can represent it.
    #[error("exp {0} is beyond the year 9999")]
    FarExpiry(u64),
    /// The `rooms` claim has more than [`MAX_ROOM_PATTERNS`] patterns, one longer than
    /// [`MAX_ROOM_PATTERN_BYTES`], or one that is not a glob: every socket keeps its patterns.
    #[error("rooms claim: {0}")]
    Rooms(String),
    /// Malformed, bad signature, expired, not yet valid, wrong `aud`/`iss`, missing `exp` or `sub`.
    #[error("{0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

/// The longest `sub` accepted, in bytes: a user's id, kept by every session record.
pub const MAX_SUBJECT_BYTES: usize = 256;
/// The most patterns a token's `rooms` claim may carry (each socket keeps them for its life).
pub const MAX_ROOM_PATTERNS: usize = 64;
/// The longest pattern of a `rooms` claim, in bytes.
pub const MAX_ROOM_PATTERN_BYTES: usize = 256;
/// The latest `exp` accepted (9999-12-31T23:59:59Z): a token past it is refused rather than given a
/// timer no clock can reach (the addition would overflow).
pub const LATEST_EXPIRY: u64 = 253_402_300_799;

/// The claims the hub reads; others are ignored.
#[derive(Debug, Deserialize)]
struct Claims {
    /// The user's id.
    #[serde(default)]
    sub: Option<String>,
    /// Expiry, seconds since the Unix epoch (an integer; required by the validation).
    exp: u64,
    /// RFC 8693 §4.2: space-separated permissions.
    #[serde(default)]
    scope: Option<String>,
    /// Glob patterns of the rooms the socket may `join` (see [`crate::rooms::RoomPatterns`]).
    #[serde(default)]
    rooms: Option<Vec<String>>,
}

/// Verifies connect tokens with the configured keys.
pub struct TokenVerifier {
    /// HS256 with `HUB_JWT_SECRET`.
    secret: Option<(DecodingKey, Validation)>,
    /// RS256 or ES256 with `HUB_JWT_PUBLIC_KEY_FILE`.
    public: Option<(Algorithm, DecodingKey, Validation)>,
    /// For the start-up line.
    summary: String,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenVerifier({})", self.summary)
    }
}

impl TokenVerifier {
    /// The verifier the settings describe; `None` when JWT is not configured (neither a secret nor
    /// a key file). A key file that cannot be read or is not an RSA or P-256 EC public key is an error.
    pub fn from_settings(security: &Security) -> Result<Option<TokenVerifier>, TokenSetupError> {
        let validation = |alg: Algorithm| {
            let mut validation = Validation::new(alg);
            validation.leeway = 0;
            // RFC 7519 §4.1.4: valid only *before* `exp`; the library's own check admits the `exp`
            // second itself, when the live socket's timer has already closed it.
            validation.reject_tokens_expiring_in_less_than = 1;
            validation.validate_nbf = true;
            validation.validate_aud = security.jwt_audience.is_some();
            // `sub` too: every socket of JWT mode is someone's, and a session is resumable only
            // by the same `sub` (without one, any token could resume any other sub-less session).
            let mut required = vec!["exp", "sub"];
            if let Some(audience) = &security.jwt_audience {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            if let Some(issuer) = &security.jwt_issuer {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            validation.set_required_spec_claims(&required);
            validation
        };
        let secret = match &security.jwt_secret {
            Some(secret) => Some((
                DecodingKey::from_secret(secret.expose().as_bytes())
                    .map_err(TokenSetupError::Secret)?,
                validation(Algorithm::HS256),
            )),
            None => None,
        };
        let public = match &security.jwt_public_key_file {
            Some(path) => {
                let (alg, key) = read_public_key(path)?;
                Some((alg, key, validation(alg)))
            }
            None => None,
        };
        if secret.is_none() && public.is_none() {
            return Ok(None);
        }
        let mut algorithms = Vec::new();
        if secret.is_some() {
            algorithms.push("HS256 (HUB_JWT_SECRET)".to_owned());
        }
        if let (Some((alg, ..)), Some(path)) = (&public, &security.jwt_public_key_file) {
            algorithms.push(format!("{alg:?} ({})", path.display()));
        }
        let mut summary = algorithms.join(" or ");
        if let Some(audience) = &security.jwt_audience {
            summary.push_str(&format!(", aud {audience:?}"));
        }
        if let Some(issuer) = &security.jwt_issuer {
            summary.push_str(&format!(", iss {issuer:?}"));
        }
        Ok(Some(TokenVerifier {
            secret,
            public,
            summary,
        }))
    }

    /// The algorithms, key sources and required claims, for the start-up line (no secret in it).
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The identity `token` proves, or why it proves none.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenRejected> {
        let alg = jsonwebtoken::decode_header(token)?.alg;
        let (key, validation) = match (&self.secret, &self.public) {
            (Some((key, validation)), _) if alg == Algorithm::HS256 => (key, validation),
            (_, Some((public, key, validation))) if alg == *public => (key, validation),
            _ => return Err(TokenRejected::Algorithm(alg)),
        };
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation)?.claims;
        let sub_len = claims.sub.as_deref().map_or(0, str::len);
        if sub_len == 0 || sub_len > MAX_SUBJECT_BYTES {
            return Err(TokenRejected::Subject);
        }
        if claims.exp > LATEST_EXPIRY {
            return Err(TokenRejected::FarExpiry(claims.exp));
        }
        let rooms = room_patterns(claims.rooms.unwrap_or_default())?;
        Ok(Identity {
            sub: claims.sub.map(String::into_boxed_str),
            expires_at: Some(claims.exp),
            scope: Scope::from_claim(claims.scope.as_deref().unwrap_or("")),
            rooms,
        })
    }
}

/// The `rooms` claim's patterns, checked now (count, length, glob syntax) so a bad claim is the
/// token's refusal, not a silent "forbidden" at every `join`.
fn room_patterns(claim: Vec<String>) -> Result<Box<[Box<str>]>, TokenRejected> {
    if claim.len() > MAX_ROOM_PATTERNS {
        let why = format!("more than {MAX_ROOM_PATTERNS} patterns");
        return Err(TokenRejected::Rooms(why));
    }
    if claim.iter().any(|p| p.len() > MAX_ROOM_PATTERN_BYTES) {
        let why = format!("a pattern longer than {MAX_ROOM_PATTERN_BYTES} bytes");
        return Err(TokenRejected::Rooms(why));
    }
    crate::rooms::RoomPatterns::new(&claim).map_err(|err| TokenRejected::Rooms(err.to_string()))?;
    Ok(claim.into_iter().map(String::into_boxed_str).collect())
}

/// Reads a PEM public key and tells its algorithm: RS256 for RSA, ES256 for EC on P-256.
fn read_public_key(path: &Path) -> Result<(Algorithm, DecodingKey), TokenSetupError> {
    let pem = std::fs::read(path).map_err(|err| TokenSetupError::Read {
        path: path.to_owned(),
        err,
    })?;
    if String::from_utf8_lossy(&pem).contains("PRIVATE KEY") {
        return Err(TokenSetupError::PrivateKey(path.to_owned()));
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((Algorithm::RS256, key));
    }
    let key =
        DecodingKey::from_ec_pem(&pem).map_err(|_| TokenSetupError::NotAKey(path.to_owned()))?;
    // The key is the curve point (SEC1): P-256's is 65 bytes uncompressed, 33 compressed; P-384's
    // and P-521's are longer. Checked now, so a wrong curve is a start-up error rather than every
    // token failing its signature check.
    let point = key
        .try_get_as_bytes()
        .map_err(|_| TokenSetupError::NotAKey(path.to_owned()))?;
    match (point.len(), point.first()) {
        (65, Some(4)) | (33, Some(2 | 3)) => Ok((Algorithm::ES256, key)),
        _ => Err(TokenSetupError::NotP256(path.to_owned())),
    }
}

/// The token from a CONNECT: `auth.token` (the socket.io convention, `io(url, {auth: {token}})`),
/// else the handshake request's `Authorization: Bearer <token>`.
pub fn presented<'a>(
    auth: &'a serde_json::Value,
    authorization: Option<&'a str>,
) -> Result<&'a str, TokenRejected> {
    match auth.get("token") {
        Some(serde_json::Value::String(token)) => Ok(token),
        Some(_) => Err(TokenRejected::NotAString),
        None => {
            let header = authorization.ok_or(TokenRejected::Missing)?;
            let (scheme, token) = header
                .trim()
                .split_once(' ')
                .ok_or(TokenRejected::NotBearer)?;
            let token = token.trim();
            if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
                return Err(TokenRejected::NotBearer);
            }
            Ok(token)
        }
    }
}

/// The claims of a minted token.
#[derive(Serialize)]
struct Minted<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    rooms: &'a [String],
}

/// What a development token says (`realtime-hub token`).
#[derive(Debug, Clone)]
pub struct Mint<'a> {
    /// `sub`.
    pub sub: &'a str,
    /// `exp` is this long after now.
    pub ttl: Duration,
    /// `scope` (left out when empty).
    pub scope: &'a str,
    /// `aud`, when the hub requires one.
    pub audience: Option<&'a str>,
    /// `iss`, when the hub requires one.
    pub issuer: Option<&'a str>,
    /// `rooms`: glob patterns of the rooms the socket may `join` (left out when empty).
    pub rooms: &'a [String],
}

/// An HS256 token signed with `secret`, issued now.
pub fn mint(secret: &Secret, claims: &Mint<'_>) -> Result<String, jsonwebtoken::errors::Error> {
    let now = jsonwebtoken::get_current_timestamp();
    let minted = Minted {
        sub: claims.sub,
        iat: now,
        exp: now.saturating_add(claims.ttl.as_secs()),
        scope: claims.scope,
        aud: claims.audience,
        iss: claims.issuer,
        rooms: claims.rooms,
    };
    let key = EncodingKey::from_secret(secret.expose().as_bytes())?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &minted, &key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn security(secret: &str) -> Security {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            security: Security,
        }
        let mut security = Wrap::parse_from(["x"]).security;
        security.jwt_secret = Some(Secret::from(secret));
        security
    }

    fn minted(secret: &str, sub: &str, ttl: u64, scope: &str) -> String {
        let claims = Mint {
            sub,
            ttl: Duration::from_secs(ttl),
            scope,
            audience: None,
            issuer: None,
            rooms: &[],
        };
        mint(&Secret::from(secret), &claims).unwrap()
    }

    #[test]
    fn the_start_up_summary_names_the_algorithm_and_claims_never_the_secret() {
        let mut settings = security("s3cr3t-value-of-the-test");
        settings.jwt_audience = Some("hub".into());
        settings.jwt_issuer = Some("https://issuer.test".into());
        let verifier = TokenVerifier::from_settings(&settings).unwrap().unwrap();
        let summary = verifier.summary();
        assert_eq!(
            summary,
            r#"HS256 (HUB_JWT_SECRET), aud "hub", iss "https://issuer.test""#
        );
        assert!(!format!("{summary} {verifier:?}").contains("s3cr3t"));
    }

    /// An HS256 token with exactly these claims.
    fn signed(secret: &str, claims: &serde_json::Value) -> String {
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap();
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).unwrap()
    }

    #[test]
    fn sub_must_be_1_to_256_bytes_and_exp_at_most_the_end_of_9999() {
        let verifier = TokenVerifier::from_settings(&security("s"))
            .unwrap()
            .unwrap();
        let exp = jsonwebtoken::get_current_timestamp() + 60;
        let with_sub =
            |sub: &str| verifier.verify(&signed("s", &json!({ "sub": sub, "exp": exp })));
        assert!(with_sub(&"a".repeat(MAX_SUBJECT_BYTES)).is_ok());
        assert!(matches!(with_sub(""), Err(TokenRejected::Subject)));
        let long = "a".repeat(MAX_SUBJECT_BYTES + 1);
        assert!(matches!(with_sub(&long), Err(TokenRejected::Subject)));
        let with_exp = |exp: u64| verifier.verify(&signed("s", &json!({ "sub": "a", "exp": exp })));
        assert_eq!(
            with_exp(LATEST_EXPIRY).unwrap().expires_at,
            Some(LATEST_EXPIRY)
        );
        assert!(matches!(
            with_exp(LATEST_EXPIRY + 1),
            Err(TokenRejected::FarExpiry(_))
        ));
    }

    #[test]
    fn a_minted_token_verifies_with_its_sub_expiry_and_scope() {
        let verifier = TokenVerifier::from_settings(&security("s"))
            .unwrap()
            .unwrap();
        let identity = verifier
            .verify(&minted("s", "alice", 60, "read notify"))
            .unwrap();
        assert_eq!(identity.sub.as_deref(), Some("alice"));
        assert!(identity.scope.allows(Scope::NOTIFY));
        let expires = identity.expires_at.unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        assert!(
            (now + 59..=now + 61).contains(&expires),
            "{expires} vs {now}"
        );
        let plain = verifier.verify(&minted("s", "bob", 60, "")).unwrap();
        assert!(!plain.scope.allows(Scope::NOTIFY));
    }

    #[test]
    fn the_rooms_claim_is_kept_as_patterns_and_a_bad_one_refuses_the_token() {
        let verifier = TokenVerifier::from_settings(&security("s"))
            .unwrap()
            .unwrap();
        let exp = jsonwebtoken::get_current_timestamp() + 60;
        let with_rooms = |rooms: serde_json::Value| {
            verifier.verify(&signed(
                "s",
                &json!({ "sub": "a", "exp": exp, "rooms": rooms }),
            ))
        };
        let identity = with_rooms(json!(["ops", "team-*"])).unwrap();
        assert_eq!(&*identity.rooms, [Box::from("ops"), Box::from("team-*")]);
        let none = verifier.verify(&signed("s", &json!({ "sub": "a", "exp": exp })));
        assert!(none.unwrap().rooms.is_empty(), "no claim: no patterns");
        let many: Vec<String> = (0..=MAX_ROOM_PATTERNS).map(|n| format!("r{n}")).collect();
        let long = "a".repeat(MAX_ROOM_PATTERN_BYTES + 1);
        for bad in [
            json!(many),
            json!([long]),
            json!(["[a"]),
            json!("ops"),
            json!([1]),
        ] {
            assert!(with_rooms(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_signed_otherwise_are_refused() {
        let verifier = TokenVerifier::from_settings(&security("s"))
            .unwrap()
            .unwrap();
        assert!(verifier.verify(&minted("other", "alice", 60, "")).is_err());
        assert!(verifier.verify("not.a.token").is_err());
        assert!(verifier.verify("").is_err());
    }

    #[test]
    fn the_token_comes_from_auth_then_from_a_bearer_header() {
        let auth = json!({ "token": "a" });
        assert_eq!(presented(&auth, Some("Bearer h")).unwrap(), "a");
        assert_eq!(presented(&json!({}), Some("bearer  h ")).unwrap(), "h");
        assert!(matches!(
            presented(&json!({}), None),
            Err(TokenRejected::Missing)
        ));
        assert!(matches!(
            presented(&json!({}), Some("Basic xyz")),
            Err(TokenRejected::NotBearer)
        ));
        assert!(matches!(
            presented(&json!({}), Some("Bearer ")),
            Err(TokenRejected::NotBearer)
        ));
        assert!(matches!(
            presented(&json!({ "token": 5 }), Some("Bearer h")),
            Err(TokenRejected::NotAString)
        ));
    }
}
