//! The hub's binary: read the configuration, start logging, run until SIGINT/SIGTERM, then stop in
//! order (sessions closed with "going away", their records written, within a bounded time).
//! `realtime-hub token --sub alice [--ttl 1h] [--scope notify]` prints a development connect token
//! instead (HS256, signed with the configured HUB_JWT_SECRET), and `realtime-hub admin-hash` the
//! bcrypt hash of the password on standard input (for HUB_ADMIN_PASSWORD_HASH).

use std::future::Future;
use std::process::ExitCode;
use std::task::Poll;

use actix_web::rt::signal;
use log::{error, info};
use realtime_hub::config::{Command, Config, TokenRequest};
use realtime_hub::token::{self, Mint};

fn main() -> ExitCode {
    realtime_hub::log_limit::init_logging("info");
    // clap prints the help (exit 0) or what is wrong with the command line (exit 2).
    let config = Config::from_env_and_args(std::env::args_os()).unwrap_or_else(|err| err.exit());
    if let Some(Command::Token(request)) = &config.command {
        return print_token(&config, request);
    }
    if let Some(Command::AdminHash(request)) = &config.command {
        return print_admin_hash(request.cost);
    }
    let result = actix_web::rt::System::new().block_on(async move {
        let hub = realtime_hub::start(&config)?;
        let shutdown = hub.shutdown.clone();
        actix_web::rt::spawn(async move {
            let signal = until_signal().await;
            info!("shutting down signal={signal}");
            shutdown.run().await;
        });
        hub.server.await
    });
    match result {
        Ok(()) => {
            info!("stopped");
            // The stream read loop may sit in a blocking read for up to its block time; nothing is
            // left to wait for, so exit now instead of when the runtime drops it.
            std::process::exit(0)
        }
        Err(err) => {
            error!("hub stopped error=\"{err}\"");
            ExitCode::FAILURE
        }
    }
}

/// `realtime-hub token`: the token on stdout (exit 0); without HUB_JWT_SECRET, why on stderr (exit 2,
/// as for any other unusable command line).
fn print_token(config: &Config, request: &TokenRequest) -> ExitCode {
    use std::io::Write;
    let security = &config.security;
    let Some(secret) = &security.jwt_secret else {
        let _ = writeln!(
            std::io::stderr(),
            "error: `token` signs with HUB_JWT_SECRET (or --jwt-secret), which is not set"
        );
        return ExitCode::from(2);
    };
    if secret.expose().len() < token::MIN_HS256_SECRET_BYTES {
        let _ = writeln!(
            std::io::stderr(),
            "warning: HUB_JWT_SECRET is shorter than {} bytes (RFC 7518 §3.2): tokens signed with \
             it can be forged by guessing it",
            token::MIN_HS256_SECRET_BYTES
        );
    }
    let claims = Mint {
        sub: &request.sub,
        ttl: request.ttl,
        scope: &request.scope,
        audience: security.jwt_audience.as_deref(),
        issuer: security.jwt_issuer.as_deref(),
        rooms: &request.rooms,
    };
    match token::mint(secret, &claims) {
        Ok(token) if writeln!(std::io::stdout(), "{token}").is_ok() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: token not signed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM, with the signal's name.
async fn until_signal() -> &'static str {
    let mut ctrl_c = std::pin::pin!(signal::ctrl_c());
    #[cfg(unix)]
    let mut term = signal::unix::signal(signal::unix::SignalKind::terminate()).ok();
    std::future::poll_fn(|cx| {
        if ctrl_c.as_mut().poll(cx).is_ready() {
            return Poll::Ready("SIGINT");
        }
        #[cfg(unix)]
        if term
            .as_mut()
            .is_some_and(|term| term.poll_recv(cx).is_ready())
        {
            return Poll::Ready("SIGTERM");
        }
        Poll::Pending
    })
    .await
}

/// `realtime-hub admin-hash`: the bcrypt hash (`$2b$`) of standard input's first line (without its
/// line ending) on stdout. The password is read, never taken as an argument (which `ps` shows).
fn print_admin_hash(cost: u32) -> ExitCode {
    use std::io::{BufRead, Write};
    let mut line = String::new();
    if let Err(err) = std::io::stdin().lock().read_line(&mut line) {
        let _ = writeln!(std::io::stderr(), "error: password not read: {err}");
        return ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        let _ = writeln!(
            std::io::stderr(),
            "error: the password on standard input is empty"
        );
        return ExitCode::from(2);
    }
    match bcrypt::hash(password, cost) {
        Ok(hash) if writeln!(std::io::stdout(), "{hash}").is_ok() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err}");
            ExitCode::FAILURE
        }
    }
}
