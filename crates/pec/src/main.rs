//! `pec`: the command-line entry point of the PEC provider. For now it offers the format tools:
//! `pec samples` writes one signed message of every kind, `pec verify` checks any message end
//! to end, `pec bench` measures signing throughput.

mod bench;
mod samples;
mod verify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "pec",
    version,
    about = "A PEC (Posta Elettronica Certificata) provider and its tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write one signed sample message of every PEC kind, the trust anchor and the Indice entry.
    Samples {
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Service domain of the sample provider.
        #[arg(long, default_value = "pec.example.it")]
        domain: String,
    },
    /// Verify a message: kind, daticert, signature, trust, Indice, consistency.
    Verify {
        /// Print one JSON object (schema in docs/verify-json.md).
        #[arg(long)]
        json: bool,
        /// Trust anchor(s), PEM; repeatable.
        #[arg(long = "ca", value_name = "FILE.pem")]
        ca: Vec<PathBuf>,
        /// Indice dei gestori, LDIF.
        #[arg(long, value_name = "FILE.ldif")]
        index: Option<PathBuf>,
        /// Check certificates at this time (RFC 3339) instead of now.
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
        /// The message file, or - for standard input.
        file: PathBuf,
    },
    /// Measure building and signing throughput against OpenSSL's raw RSA-2048 signing rate.
    Bench {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Append the results to this Markdown file (e.g. BENCHMARKS.md).
        #[arg(long)]
        write: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Samples { out, domain } => samples::run(&out, &domain).map(|()| ExitCode::SUCCESS),
        Command::Verify {
            json,
            ca,
            index,
            at,
            file,
        } => verify::run(json, &ca, index.as_deref(), at.as_deref(), &file),
        Command::Bench { seconds, write } => {
            bench::run(seconds, write.as_deref()).map(|()| ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pec: {e:#}");
            ExitCode::from(2)
        }
    }
}
