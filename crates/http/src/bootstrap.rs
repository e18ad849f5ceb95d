//! The few lines every service's `main` shares: read `--config` (or `ARO_CONFIG`, else
//! `./aro.toml`), validate it, install logging and metrics, bind, and serve until SIGINT/SIGTERM.
//! A bad configuration exits with status 2 and a message naming the key.

use crate::serve::shutdown_signal;
use aro_config::{Config, Environment, LogFormat};
use aro_telemetry::LogStyle;
use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The configuration file named on the command line or in the environment.
pub fn config_path() -> Result<PathBuf, String> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    while let Some(arg) = args.next() {
        if arg == "--config" {
            path = Some(args.next().ok_or("--config needs a file path")?);
        } else if let Some(p) = arg.strip_prefix("--config=") {
            path = Some(p.to_owned());
        } else if arg == "--help" || arg == "-h" {
            return Err("usage: <service> [--config aro.toml]  (or set ARO_CONFIG)".into());
        } else {
            return Err(format!(
                "unexpected argument {arg:?}; usage: --config aro.toml"
            ));
        }
    }
    Ok(path
        .or_else(|| std::env::var("ARO_CONFIG").ok())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("aro.toml")))
}

pub fn log_style(format: LogFormat) -> LogStyle {
    match format {
        LogFormat::Auto => LogStyle::Auto,
        LogFormat::Json => LogStyle::Json,
        LogFormat::Pretty => LogStyle::Pretty,
    }
}

pub fn main<F, Fut, E>(service: &'static str, listen: fn(&Config) -> SocketAddr, run: F) -> ExitCode
where
    F: FnOnce(Config, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let path = match config_path() {
        Ok(p) => p,
        Err(message) => {
            eprintln!("{service}: {message}");
            return ExitCode::from(2);
        }
    };
    let config = match aro_config::load(&path, &Environment::from_process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{service}: {e}");
            return ExitCode::from(2);
        }
    };
    aro_telemetry::init_logging(&config.log.level, log_style(config.log.format));
    let _ = aro_telemetry::metrics();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{service}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let address = listen(&config);
        let listener = match TcpListener::bind(address).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%address, error = %e, "cannot listen");
                eprintln!("{service}: cannot listen on {address}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            trigger.cancel();
        });
        match run(config, listener, shutdown).await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "stopped with an error");
                eprintln!("{service}: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
