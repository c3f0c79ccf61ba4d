//! `halyard serve`: load the configuration, start the listeners, run until SIGTERM or Ctrl-C,
//! then shut down gracefully.

use anyhow::Context;
use halyard_server::{Config, ListenerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Options of `halyard serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// TOML configuration file (see docs/configuration.md). Without it, the embedded defaults
    /// apply: 127.0.0.1:1883, anonymous clients allowed.
    #[arg(long, short = 'c', env = "HALYARD_CONFIG")]
    config: Option<PathBuf>,
    /// Listen on ADDR:PORT instead of the configured listeners (repeatable).
    #[arg(long = "bind", short = 'b', value_name = "ADDR:PORT")]
    bind: Vec<SocketAddr>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter, e.g. "info" or "halyard_server=debug" (RUST_LOG also works).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Reads and checks the configuration file.
fn load_config(path: &PathBuf) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration file {}", path.display()))?;
    let config: Config = toml::from_str(&text)
        .with_context(|| format!("invalid configuration file {}", path.display()))?;
    Ok(config)
}

fn init_logging(args: &ServeArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .with_context(|| format!("invalid log filter {:?}", args.log))?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(&args)?;
    let mut config = match &args.config {
        Some(path) => load_config(path)?,
        None => Config::default(),
    };
    if !args.bind.is_empty() {
        config.listener = args
            .bind
            .iter()
            .map(|&bind| ListenerConfig {
                bind,
                max_connections: None,
                tls: None,
            })
            .collect();
    }
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    // Tasks woken together run in the order they were woken (see .cargo/config.toml).
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    let runtime = builder.build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // Listen for signals before the listeners say they are up, so a SIGTERM sent as
        // soon as they are is a graceful stop rather than the default kill.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot listen for SIGHUP")?;
        let server = halyard_server::start(config)
            .await
            .context("cannot start the listeners")?;
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => {
                    r.context("cannot listen for Ctrl-C")?;
                    break;
                }
                _ = term.recv() => break,
                _ = hup.recv() => {
                    // Password and ACL files read again; an invalid one keeps the old.
                    let errors = server.reload();
                    for e in &errors {
                        tracing::error!("reload: {e}; the previous file stays in force");
                    }
                    if errors.is_empty() {
                        tracing::info!("reloaded the password and ACL files");
                    }
                }
            }
        }
        tracing::info!("shutting down");
        server.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    })
}
