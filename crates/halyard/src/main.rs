//! The `halyard` binary: `halyard serve` (and, as later issues add them, `pub`, `sub`,
//! `bench`, `passwd`).
//!
//! This crate owns command-line parsing, reading the configuration file, logging set-up and
//! reporting errors to the user (the only place `anyhow` lives). It contains no protocol or
//! broker logic: it wires `halyard-server` together.

mod serve;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Halyard: an MQTT 3.1 / 3.1.1 / 5.0 broker.
#[derive(Debug, Parser)]
#[command(name = "halyard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker.
    Serve(serve::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("halyard: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
