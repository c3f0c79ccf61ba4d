//! The `halyard` binary: `halyard serve` (and, as later issues add them, `pub`, `sub`,
//! `bench`, `passwd`).
//!
//! This crate owns command-line parsing, reading the configuration file, logging set-up and
//! reporting errors to the user (the only place `anyhow` lives). It contains no protocol or
//! broker logic: it wires `halyard-server` together.

mod bench;
mod passwd;
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
    /// Load-test an MQTT broker (this one or any other) on this machine.
    Bench(bench::BenchArgs),
    /// Manage a password file (mosquitto_passwd's flags: -c, -b, -D, -U).
    Passwd(passwd::PasswdArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    raise_open_files_limit();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Passwd(args) => passwd::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("halyard: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Lets the process use as many descriptors as its hard limit allows: a broker holds one per
/// connection, and the load generator one per simulated client.
fn raise_open_files_limit() {
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
}
