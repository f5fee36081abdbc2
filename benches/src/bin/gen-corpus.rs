//! Writes the benchmark corpora: `mcas.log` and `mixed.log`, one message per
//! LF-terminated line, deterministic for a given seed.
//!
//! ```text
//! gen-corpus [--lines N] [--seed S] [--out-dir DIR] [--only mcas|mixed]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use mcas_benches::corpus;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-corpus: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut lines = corpus::DEFAULT_LINES;
    let mut seed = corpus::DEFAULT_SEED;
    let mut out_dir = PathBuf::from(".");
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--lines" => lines = value()?.parse()?,
            "--seed" => seed = value()?.parse()?,
            "--out-dir" => out_dir = PathBuf::from(value()?),
            "--only" => only = Some(value()?),
            "-h" | "--help" => {
                println!("gen-corpus [--lines N] [--seed S] [--out-dir DIR] [--only mcas|mixed]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    std::fs::create_dir_all(&out_dir)?;
    for name in ["mcas", "mixed"] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let buf = if name == "mcas" {
            corpus::mcas(lines, seed)
        } else {
            corpus::mixed(lines, seed)
        };
        let path = out_dir.join(format!("{name}.log"));
        std::fs::write(&path, &buf)?;
        println!(
            "{} lines={lines} bytes={} avg={:.1}",
            path.display(),
            buf.len(),
            buf.len() as f64 / lines.max(1) as f64
        );
    }
    Ok(())
}
