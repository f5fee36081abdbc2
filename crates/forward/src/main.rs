//! `mcas-forward`: receive CEF over syslog (UDP, TCP, TLS) and forward it to Azure Log
//! Analytics (CommonSecurityLog) through the Logs Ingestion API, with a durable spool.
//!
//! This binary only wires the library crates together: `mcas-syslog` (framing and syslog
//! parsing), `mcas-cef` (CEF parsing), `mcas-csl` (rows) and `mcas-loganalytics` (sending).

#![allow(
    missing_docs,
    reason = "a binary: its items are documented for readers, not rustdoc users"
)]

mod batch;
mod budget;
mod commands;
mod config;
mod deadletter;
mod frames;
mod kql;
mod listen;
mod metrics;
mod output;
mod pipeline;
mod route;
mod run;
mod spool;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Forward CEF and syslog events to Azure Log Analytics (CommonSecurityLog).
///
/// With no subcommand, `run` is assumed. With no `--config`, the embedded default is used:
/// UDP and TCP listeners on 127.0.0.1:5514, rows printed to stdout as JSON lines.
#[derive(Debug, Parser)]
#[command(name = "mcas-forward", version, about, long_about = None)]
struct Cli {
    /// The TOML configuration file (default: the embedded default).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the forwarder (the default).
    Run,
    /// Check the configuration, then fetch a token and send an empty batch to the output.
    Validate {
        /// Only check the file; do not contact the output.
        #[arg(long)]
        offline: bool,
    },
    /// Read raw syslog lines (a file, or stdin) and print the row each would become (NDJSON).
    Map {
        /// Input file; stdin when absent.
        file: Option<PathBuf>,
        /// Receive time to use for TimeGenerated (RFC 3339); default: now.
        #[arg(long, value_name = "RFC3339")]
        received_at: Option<jiff::Timestamp>,
        /// The peer address used when a line has no hostname.
        #[arg(long, default_value = "127.0.0.1")]
        peer: std::net::IpAddr,
    },
    /// Send sample MCAS alert and activity events to a listener.
    SendTest {
        /// `tcp://HOST:PORT` or `udp://HOST:PORT`.
        #[arg(long, value_name = "URL")]
        to: String,
        /// How many events.
        #[arg(long, default_value_t = 4)]
        count: u64,
        /// TCP framing: `lf` or `octet-counting`.
        #[arg(long, default_value = "lf")]
        framing: String,
    },
    /// Print an ARM template for the data collection rule (DCR).
    DcrTemplate {
        /// The input stream name (default: output.stream of the configuration).
        #[arg(long)]
        stream: Option<String>,
    },
    /// Run a DCR transformation (KQL) on sample rows and print the output rows (NDJSON).
    Kql {
        /// The transformation, e.g. 'source | where DeviceAction != "allow"'.
        #[arg(long, value_name = "KQL")]
        query: Option<String>,
        /// Input columns: commonsecuritylog, syslog, or a JSON file of [{"name","type"}].
        #[arg(long, value_name = "NAME|FILE")]
        schema: Option<String>,
        /// Input rows, one JSON object a line.
        #[arg(long, value_name = "ROWS.ndjson")]
        input: Option<PathBuf>,
        /// Take the query and the columns from a DCR (ARM template or resource JSON).
        #[arg(long, value_name = "FILE", requires = "stream")]
        dcr: Option<PathBuf>,
        /// The DCR input stream whose data flow to run.
        #[arg(long, value_name = "NAME")]
        stream: Option<String>,
        /// Raw syslog/CEF lines, mapped to CommonSecurityLog rows first.
        #[arg(long, value_name = "FILE")]
        cef: Option<PathBuf>,
        /// Only parse and compile (unknown columns are dynamic when no schema is given).
        #[arg(long)]
        check: bool,
    },
    /// Send the rows of the dead-letter file again (after fixing the cause).
    ReplayDeadLetter {
        /// The dead-letter file (default: the configured one).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cmd = cli.command.unwrap_or(Command::Run);
    let result = match cmd {
        Command::Run => run::main(cli.config.as_deref()),
        Command::Validate { offline } => commands::validate(cli.config.as_deref(), offline),
        Command::Map {
            file,
            received_at,
            peer,
        } => commands::map(cli.config.as_deref(), file.as_deref(), received_at, peer),
        Command::SendTest { to, count, framing } => commands::send_test(&to, count, &framing),
        Command::DcrTemplate { stream } => {
            commands::dcr_template(cli.config.as_deref(), stream.as_deref())
        }
        Command::Kql {
            query,
            schema,
            input,
            dcr,
            stream,
            cef,
            check,
        } => kql::kql(
            cli.config.as_deref(),
            &kql::Args {
                query,
                schema,
                input,
                dcr,
                stream,
                cef,
                check,
            },
        ),
        Command::ReplayDeadLetter { file } => {
            commands::replay_dead_letter(cli.config.as_deref(), file.as_deref())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcas-forward: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
