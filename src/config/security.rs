//! Who may connect and who may publish: API keys, connect tokens (JWT), and the rate limits that
//! bound what one client can make the hub do. README's "Security" section says what each mode
//! requires of each endpoint and event.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A credential from the configuration (an API key, a JWT secret): its `Debug` never shows it, so
/// neither a logged configuration nor a panic message can leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The credential itself, for comparing or signing; never for a log line.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The security settings of [`super::Config`] (flattened into it: the same flags and variables).
#[derive(Debug, Clone, clap::Args)]
pub struct Security {
    /// Comma-separated API keys that may publish and disconnect sockets (several at once, for
    /// rotation); given as `Authorization: Bearer <key>` or `X-API-Key: <key>`; unset: anyone may
    /// publish and disconnect (open mode).
    /// Prefer the variable: a flag's value shows in `ps`
    #[arg(long, env = "HUB_API_KEYS", default_value = "", hide_default_value = true,
          hide_env_values = true, value_name = "LIST", value_parser = secrets)]
    pub api_keys: ::std::vec::Vec<Secret>,
    /// HS256 secret that signs connect tokens (JWT); with it, every CONNECT needs a valid token.
    /// Prefer the variable: a flag's value shows in `ps`
    #[arg(long, env = "HUB_JWT_SECRET", hide_env_values = true, value_name = "SECRET",
          value_parser = secret)]
    pub jwt_secret: Option<Secret>,
    /// PEM public key (RS256 or ES256) that verifies connect tokens (JWT); with it, every CONNECT
    /// needs a valid token
    #[arg(long, env = "HUB_JWT_PUBLIC_KEY_FILE", value_name = "FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// The `aud` connect tokens must carry, when set
    #[arg(long, env = "HUB_JWT_AUDIENCE", value_name = "AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The `iss` connect tokens must carry, when set
    #[arg(long, env = "HUB_JWT_ISSUER", value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Comma-separated glob patterns (`*`, `?`, `[…]`) of rooms any socket may `join` besides those
    /// its token's `rooms` claim allows, e.g. `news,team-*`; in open mode (no JWT) every room may be
    /// joined
    #[arg(long, env = "HUB_PUBLIC_ROOMS", default_value = "", hide_default_value = true,
          value_name = "LIST", value_parser = super::parse::list)]
    pub public_rooms: ::std::vec::Vec<String>,
    /// Events per second each connection may send, all its namespaces together (`notify`, any
    /// event), with a burst of as many; past it the event is not handled and is acknowledged
    /// {"error":"rate limited"} (dropped if it asked no ack); 0: no limit
    #[arg(
        long,
        env = "HUB_SOCKET_EVENTS_PER_SECOND",
        default_value = "50",
        value_name = "N"
    )]
    pub socket_events_per_second: u32,
    /// Rate-limited events a connection may accumulate (forgiven at the events rate) before it is
    /// disconnected for abuse: a DISCONNECT on each namespace (the client does not reconnect), and
    /// its session cannot be resumed; 0: at the first rate-limited event
    #[arg(
        long,
        env = "HUB_SOCKET_ABUSE_LIMIT",
        default_value = "1000",
        value_name = "N"
    )]
    pub socket_abuse_limit: u32,
    /// `POST /notifications/notify` requests per second per client address (IPv6: per /64); 429
    /// with Retry-After past it; 0: no limit
    #[arg(
        long,
        env = "HUB_PUBLISH_PER_SECOND_PER_ADDRESS",
        default_value = "5000",
        value_name = "N"
    )]
    pub publish_per_second_per_address: u32,
    /// `POST /notifications/notify` requests per second per API key; 429 with Retry-After past
    /// it; 0: no limit
    #[arg(
        long,
        env = "HUB_PUBLISH_PER_SECOND_PER_KEY",
        default_value = "10000",
        value_name = "N"
    )]
    pub publish_per_second_per_key: u32,
    /// New Engine.IO sessions per second per client address (IPv6: per /64); 429 past it; 0: no
    /// limit (behind a proxy every client has the proxy's address)
    #[arg(
        long,
        env = "HUB_CONNECTIONS_PER_SECOND_PER_ADDRESS",
        default_value = "1000",
        value_name = "N"
    )]
    pub connections_per_second_per_address: u32,
}

/// What the binary does besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Print a development connect token (JWT, HS256) signed with the configured HUB_JWT_SECRET
    Token(TokenRequest),
    /// Print the bcrypt hash of the password read from standard input (its first line), for
    /// HUB_ADMIN_PASSWORD_HASH
    AdminHash(super::admin::AdminHashRequest),
}

/// `realtime-hub token --sub alice [--ttl 1h] [--scope notify]`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenRequest {
    /// The user's id (`sub`), 1 to 256 bytes
    #[arg(long, value_parser = subject)]
    pub sub: String,
    /// How long the token is valid: a number and a unit, `s`, `m`, `h` or `d` (e.g. 90s, 1h)
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = lifetime)]
    pub ttl: Duration,
    /// Space-separated permissions (`scope`): `notify` lets the socket publish
    #[arg(long, default_value = "")]
    pub scope: String,
    /// Comma-separated glob patterns of rooms the socket may `join` (the `rooms` claim), e.g.
    /// `team-*,ops`
    #[arg(long, default_value = "", value_name = "LIST", value_parser = super::parse::list)]
    pub rooms: ::std::vec::Vec<String>,
}

/// One secret, not empty.
fn secret(value: &str) -> Result<Secret, &'static str> {
    if value.is_empty() {
        return Err("expected a non-empty secret");
    }
    Ok(Secret::from(value))
}

/// The non-empty items of a comma-separated list of secrets, trimmed, each once: a key listed twice
/// would otherwise count as two keys (two rate buckets, and an index that names neither).
fn secrets(value: &str) -> Result<Vec<Secret>, &'static str> {
    let mut secrets: Vec<Secret> = Vec::new();
    for item in value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        if !secrets.iter().any(|known| known.expose() == item) {
            secrets.push(Secret::from(item));
        }
    }
    Ok(secrets)
}

/// A `sub` the hub accepts: 1 to [`crate::token::MAX_SUBJECT_BYTES`] bytes (a token with another
/// would be minted only to be refused).
fn subject(value: &str) -> Result<String, String> {
    let max = crate::token::MAX_SUBJECT_BYTES;
    if value.is_empty() || value.len() > max {
        return Err(format!(
            "expected 1 to {max} bytes, the sub the hub accepts"
        ));
    }
    Ok(value.to_owned())
}

/// A lifetime such as `90s`, `15m`, `1h` or `7d`, at least a second and at most 100 years (a
/// token's `exp` must stay before the year 9999, and a development token has no use for more).
fn lifetime(value: &str) -> Result<Duration, &'static str> {
    const EXPECTED: &str = "expected a number and a unit (s, m, h or d), e.g. 1h, at most 36500d";
    const LONGEST: u64 = 36_500 * 86_400;
    let (unit_at, _) = value.char_indices().last().ok_or(EXPECTED)?;
    let (count, unit) = value.split_at(unit_at);
    let seconds: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(EXPECTED),
    };
    match count.parse::<u64>() {
        Ok(count) if count >= 1 && count.saturating_mul(seconds) <= LONGEST => {
            Ok(Duration::from_secs(count * seconds))
        }
        _ => Err(EXPECTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let shown = format!("{:?}", secrets(" k1 ,k2,").unwrap());
        assert!(!shown.contains("k1") && !shown.contains("k2"), "{shown}");
        assert_eq!(secrets(" k1 ,k2,").unwrap().len(), 2);
        assert_eq!(
            secrets("a,b,b,a,c").unwrap(),
            ["a", "b", "c"].map(Secret::from),
            "each key once, in order"
        );
        assert_eq!(secret("s3cr3t").unwrap().expose(), "s3cr3t");
        assert!(secret("").is_err());
    }

    #[test]
    fn subjects_are_what_the_hub_accepts() {
        assert_eq!(subject("alice").as_deref(), Ok("alice"));
        assert_eq!(subject(&"é".repeat(128)).map(|s| s.len()), Ok(256));
        assert!(subject("").is_err());
        assert!(subject(&"a".repeat(257)).is_err());
    }

    #[test]
    fn lifetimes_take_a_count_and_a_unit() {
        assert_eq!(lifetime("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(lifetime("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(lifetime("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(lifetime("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(lifetime("36500d"), Ok(Duration::from_secs(36_500 * 86_400)));
        for refused in [
            "",
            "h",
            "0h",
            "1",
            "1w",
            "-1h",
            "1é",
            "1.5h",
            "36501d",
            "99999999999999999d",
        ] {
            assert!(lifetime(refused).is_err(), "{refused:?} accepted");
        }
    }
}
