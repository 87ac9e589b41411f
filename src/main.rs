//! The hub's binary: read the configuration, start logging, run until SIGINT/SIGTERM.

use std::io::Write;
use std::process::ExitCode;

use log::error;
use realtime_hub::config::{help, Command, Config};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match Config::from_env_and_args(
        |name| std::env::var(name).ok(),
        std::env::args().skip(1),
    ) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            let _ = std::io::stdout().write_all(help().as_bytes());
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            error!("{err}");
            return ExitCode::from(2);
        }
    };
    let system = actix_web::rt::System::new();
    let result = system.block_on(async move {
        let hub = realtime_hub::start(&config)?;
        hub.server.await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("hub stopped: {err}");
            ExitCode::FAILURE
        }
    }
}
