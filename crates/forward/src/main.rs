//! `mcas-forward`: receive CEF over syslog (UDP, TCP, TLS) and forward it to Azure Log
//! Analytics (CommonSecurityLog) through the Logs Ingestion API, with a durable spool.
//!
//! This binary only wires the library crates together: `mcas-syslog` (framing and syslog
//! parsing), `mcas-cef` (CEF parsing), `mcas-csl` (rows) and `mcas-loganalytics` (sending).

#![allow(
    missing_docs,
    reason = "a binary: its items are documented for readers, not rustdoc users"
)]

mod ack;
mod admin;
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
mod reload;
mod route;
mod rules;
mod rules_cmd;
mod run;
mod spool;
mod tap;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

/// `--version`: the package version, the commit it was built from and the build date (both
/// recorded by `build.rs`; "unknown" when the source had no git).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MCAS_FORWARD_COMMIT"),
    ", built ",
    env!("MCAS_FORWARD_BUILD_DATE"),
    ")"
);

/// Forward CEF and syslog events to Azure Log Analytics (CommonSecurityLog).
///
/// With no subcommand, `run` is assumed. With no `--config`, the embedded default is used:
/// UDP and TCP listeners on 127.0.0.1:5514, rows printed to stdout as JSON lines.
#[derive(Debug, Parser)]
#[command(name = "mcas-forward", version = VERSION, about, long_about = None)]
struct Cli {
    /// The TOML configuration file (default: the embedded default).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

/// `rules` subcommands.
#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// List each rule file as loaded or skipped, with the reason and its position.
    Check {
        /// The directory of rule files (YAML).
        dir: PathBuf,
        /// One JSON object per file: {"file", "id", "name", "loaded", "reason", ...}.
        #[arg(long)]
        json: bool,
    },
    /// Replay raw syslog/CEF lines in virtual time and print every alert as a JSON line.
    Test {
        /// The directory of rule files.
        #[arg(long, value_name = "DIR")]
        rules: PathBuf,
        /// The lines, one syslog message each; each header time drives the clock.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// When the schedules start (RFC 3339); default: the first event's time.
        #[arg(long, value_name = "TIME")]
        start: Option<String>,
    },
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
        /// The output whose DCR to print (needed when there are several).
        #[arg(long, value_name = "NAME")]
        output: Option<String>,
        /// The input stream name (default: the output's stream).
        #[arg(long)]
        stream: Option<String>,
        /// Print the custom table and DCR for the alert rules' alerts (columns shaped like
        /// SecurityAlert), instead of an output's.
        #[arg(long, conflicts_with = "output")]
        alerts: bool,
    },
    /// Alert rules (Sentinel scheduled analytics rules): check rule files, or replay lines
    /// through them.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
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
    /// Print the rows passing an output, live, as JSON lines (from the running forwarder's
    /// admin endpoint: `[admin]` must be configured).
    Tap {
        /// The output to watch (needed when there are several).
        #[arg(long, value_name = "NAME")]
        output: Option<String>,
        /// Only the CommonSecurityLog rows this KQL predicate keeps, e.g. 'DeviceVendor == "Acme"'.
        #[arg(long = "where", value_name = "KQL")]
        filter: Option<String>,
        /// Stop after this many rows.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Show the rows the output's transformation drops too (with "fate":"filtered").
        #[arg(long)]
        filtered: bool,
    },
    /// Reload the configuration of the running forwarder (through its admin endpoint; SIGHUP
    /// does the same) and print what changed.
    Reload,
    /// Send the rows of the dead-letter file again (after fixing the cause).
    ReplayDeadLetter {
        /// The dead-letter file (default: the configured one).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// The output to send to (needed when there are several).
        #[arg(long, value_name = "NAME")]
        output: Option<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    ///
    /// The Debian package installs the bash, zsh and fish ones; elsewhere, for example:
    /// `mcas-forward completions bash > ~/.local/share/bash-completion/completions/mcas-forward`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or write every page into a directory: used to
    /// build the package.
    #[command(hide = true)]
    ManPage {
        /// Write mcas-forward.1 and one page per subcommand here.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `completions SHELL`: the script for `shell`, on stdout.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut completion_command(), "mcas-forward", &mut out);
    std::io::Write::flush(&mut out)?;
    Ok(())
}

/// The command line as completions offer it: hidden subcommands (`man-page`) left out, which
/// clap_complete would otherwise offer.
fn completion_command() -> clap::Command {
    let full = Cli::command();
    let cmd = clap::Command::new("mcas-forward")
        .version(VERSION)
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    match full.get_about() {
        Some(about) => cmd.about(about.clone()),
        None => cmd,
    }
}

/// The DESCRIPTION of `mcas-forward(1)`.
const MAN_DESCRIPTION: &str = "\
mcas-forward receives syslog over UDP, TCP (octet counting or LF framing) and TLS, parses CEF \
on the forwarder, and sends CommonSecurityLog rows to the Azure Monitor Logs Ingestion API \
(or, for tests, to stdout or a file). For a network output every batch is written to a \
durable spool before it is sent and deleted only after a 2xx answer; rows the service refuses \
for good go to a dead-letter file with the reason.

With no subcommand, run is assumed. With no --config, the embedded default is used: UDP and \
TCP listeners on 127.0.0.1:5514, rows printed to stdout as JSON lines.

Prometheus metrics are served on GET /metrics of the [metrics] address, readiness on \
/health and liveness on /health/live.";

/// The sections of `mcas-forward(1)` after the generated ones (roff).
const MAN_EXTRA: &str = r#".SH FILES
.TP
\fI/etc/mcas\-forward/mcas\-forward.toml\fR
The configuration of the packaged service (a conffile: an edited copy is never overwritten).
.TP
\fI/etc/mcas\-forward/env\fR
Environment of the service, read by systemd: MCAS_FORWARD_CLIENT_SECRET=...; mode 0600.
.TP
\fI/var/lib/mcas\-forward/spool/\fR
The durable spool (batch files not yet delivered) and its lock file.
.TP
\fI/var/lib/mcas\-forward/dead\-letter.ndjson\fR
Rows and messages refused for good, one JSON object a line, with the reason.
.TP
\fI/usr/share/mcas\-forward/\fR
A Grafana dashboard and Prometheus alerting rules for the metrics.
.SH ENVIRONMENT
.TP
\fBMCAS_FORWARD_CLIENT_SECRET\fR
The client secret of the app registration (client\-secret authentication).
.TP
\fBMCAS_FORWARD_SHARED_KEY\fR
The workspace key of the legacy data\-collector output.
.TP
\fBXDG_STATE_HOME\fR
Where the spool and the dead\-letter file go when the configuration does not say.
.TP
\fBRUST_LOG\fR
Overrides [log] level (for example info, or mcas_forward=debug).
.SH EXIT STATUS
0 on success; 2 on an error, which is printed on standard error.
.SH SEE ALSO
\fBsystemctl\fR(1), \fBjournalctl\fR(1); the deployment and configuration guides in
\fI/usr/share/doc/mcas\-forward/\fR.
"#;

/// `man-page [--dir DIR]`: `mcas-forward.1` on stdout, or it and one page per subcommand
/// (`mcas-forward-run.1`, ...) written into DIR. The pages are rendered from the same
/// definitions that parse the command line, by the binary being packaged, so they cannot
/// drift from it.
fn man_page(dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    let mut cmd = Cli::command()
        .long_about(MAN_DESCRIPTION)
        .disable_help_subcommand(true);
    cmd.build();
    let page = |c: clap::Command| {
        clap_mangen::Man::new(c)
            .date(env!("MCAS_FORWARD_BUILD_DATE"))
            .source(concat!("mcas-forward ", env!("CARGO_PKG_VERSION")))
            .manual("mcas-forward manual")
    };
    let main = page(cmd.clone());
    let mut text = Vec::new();
    main.render_title(&mut text)?;
    main.render_name_section(&mut text)?;
    main.render_synopsis_section(&mut text)?;
    main.render_description_section(&mut text)?;
    main.render_options_section(&mut text)?;
    main.render_subcommands_section(&mut text)?;
    text.extend_from_slice(MAN_EXTRA.as_bytes());
    main.render_version_section(&mut text)?;
    let Some(dir) = dir else {
        let mut out = std::io::stdout().lock();
        std::io::Write::write_all(&mut out, &text)?;
        std::io::Write::flush(&mut out)?;
        return Ok(());
    };
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("mcas-forward.1"), &text)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page(sub.clone()).generate_to(dir)?;
    }
    Ok(())
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
        Command::DcrTemplate {
            output,
            stream,
            alerts,
        } => {
            if alerts {
                commands::alerts_template(stream.as_deref())
            } else {
                commands::dcr_template(cli.config.as_deref(), output.as_deref(), stream.as_deref())
            }
        }
        Command::Rules { command } => match command {
            RulesCommand::Check { dir, json } => rules_cmd::check(&dir, json),
            RulesCommand::Test {
                rules,
                input,
                start,
            } => rules_cmd::test(cli.config.as_deref(), &rules, &input, start.as_deref()),
        },
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
        Command::Tap {
            output,
            filter,
            limit,
            filtered,
        } => admin::tap_command(
            cli.config.as_deref(),
            output.as_deref(),
            &tap::TapRequest {
                filter,
                limit,
                filtered,
            },
        ),
        Command::Reload => admin::reload_command(cli.config.as_deref()),
        Command::ReplayDeadLetter { file, output } => {
            commands::replay_dead_letter(cli.config.as_deref(), file.as_deref(), output.as_deref())
        }
        Command::Completions { shell } => completions(shell),
        Command::ManPage { dir } => man_page(dir.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcas-forward: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(shell: clap_complete::Shell) -> String {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut completion_command(), "mcas-forward", &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn completions_offer_every_visible_subcommand_and_no_hidden_one() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let text = script(shell);
            for sub in Cli::command().get_subcommands() {
                assert_eq!(
                    text.contains(sub.get_name()),
                    !sub.is_hide_set(),
                    "{shell}: {}",
                    sub.get_name()
                );
            }
            assert!(text.contains("config"), "{shell}: the global --config");
        }
    }

    #[test]
    fn version_names_the_commit_and_the_build_date() {
        let v = Cli::command().render_version();
        assert!(v.starts_with(concat!(
            "mcas-forward ",
            env!("CARGO_PKG_VERSION"),
            " (commit "
        )));
        assert!(v.contains(", built "), "{v}");
    }
}
