//! Build script of `mcas-forward`: records the commit and the build date for `--version`.
//!
//! It asks git for the commit; without git (a source tarball, a crate package) or outside a
//! repository the commit is "unknown". The build date is today (UTC), or the day of
//! `SOURCE_DATE_EPOCH` when that is set (reproducible builds). Nothing here fails the build.

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=MCAS_FORWARD_COMMIT");

    let commit = std::env::var("MCAS_FORWARD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MCAS_FORWARD_COMMIT={commit}");
    println!("cargo:rustc-env=MCAS_FORWARD_BUILD_DATE={}", build_date());

    // Build again when HEAD moves: HEAD itself, the branch it points to, and packed refs.
    // `--git-path` resolves them in a linked work tree too.
    for p in ["HEAD", "packed-refs"] {
        if let Some(path) = git_path(p) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git_path(&branch)
    {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The output of `git ARGS` run in this crate's directory, trimmed; None on any failure.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// The short commit hash of HEAD.
fn git_commit() -> Option<String> {
    git(&["rev-parse", "--short=12", "HEAD"])
}

/// The file behind a git path (`HEAD`, `refs/heads/main`, ...), absolute, if it exists.
fn git_path(p: &str) -> Option<PathBuf> {
    let path = PathBuf::from(git(&[
        "rev-parse",
        "--path-format=absolute",
        "--git-path",
        p,
    ])?);
    path.exists().then_some(path)
}

/// `YYYY-MM-DD` (UTC) of `SOURCE_DATE_EPOCH`, else of now.
fn build_date() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_secs()).ok())
        });
    match secs {
        Some(s) => {
            let (y, m, d) = civil_from_days(s.div_euclid(86_400));
            format!("{y:04}-{m:02}-{d:02}")
        }
        None => "unknown".to_owned(),
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}
