//! The hub as the application the official conformance suites expect (reference §5), to run them
//! against: socketio/socket.io `docs/engine.io-protocol/v4-test-suite` and
//! `docs/socket.io-protocol/v5-test-suite`, which call `http://localhost:3000`.
//!
//! ```text
//! cargo run --bin conformance -- engine.io   # path /engine.io/, every message echoed
//! cargo run --bin conformance -- socket.io   # path /socket.io/, namespaces / and /custom: auth on
//!                                            # connect, message → message-back, message-with-ack acked
//! ```
//! Both: ping 300/200 ms, connect timeout 1 s, recovery off, CORS `*`, on 127.0.0.1 and ::1 port 3000
//! (`PORT` moves it; `HUB_PARSER=msgpack` speaks socket.io-msgpack-parser, for our interop test).
//! Our own tests (`tests/conformance_*.rs`) cover the same behaviours in CI.

use std::process::ExitCode;
use std::sync::Arc;

use log::error;
use realtime_hub::app::SuiteApp;
use realtime_hub::config::Config;

fn main() -> ExitCode {
    realtime_hub::log_limit::init_logging("info");
    let engine_io = match std::env::args().nth(1).as_deref() {
        Some("engine.io") => true,
        Some("socket.io") => false,
        _ => {
            error!("usage: conformance engine.io|socket.io");
            return ExitCode::from(2);
        }
    };
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let parser = match std::env::var("HUB_PARSER").as_deref() {
        Ok("msgpack") => realtime_hub::config::Parser::Msgpack,
        _ => realtime_hub::config::Parser::Json,
    };
    let config = Config {
        port,
        parser,
        ..Config::conformance_suite(engine_io)
    };
    let result = actix_web::rt::System::new().block_on(async move {
        let hub = realtime_hub::start_with(&config, |_| Arc::new(SuiteApp::default()))?;
        hub.server.await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err}");
            ExitCode::FAILURE
        }
    }
}
