//! `mcas-forward rules check` and `rules test`: the rule author's loop over mcas-rules,
//! without a network and without waiting.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// `rules check DIR [--json]`: each rule file, loaded or skipped with the reason and its
/// position. Fails when a file was skipped, so a script can gate on it.
pub(crate) fn check(dir: &Path, json: bool) -> anyhow::Result<()> {
    let reports = mcas_rules::check_dir(dir)
        .with_context(|| format!("cannot read the rule directory {}", dir.display()))?;
    let mut out = std::io::stdout().lock();
    let mut skipped = 0;
    for r in &reports {
        if !r.loaded {
            skipped += 1;
        }
        if json {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        } else {
            writeln!(out, "{}", r.to_line())?;
        }
    }
    if !json {
        writeln!(
            out,
            "{} of {} rule files loaded",
            reports.len() - skipped,
            reports.len()
        )?;
    }
    out.flush()?;
    if skipped > 0 {
        anyhow::bail!("{skipped} rule file(s) skipped (see above)");
    }
    Ok(())
}

/// `rules test --rules DIR --input FILE [--start TIME]`: replay raw syslog/CEF lines in
/// virtual time and print every alert as a JSON line.
pub(crate) fn test(
    config: Option<&Path>,
    rules: &Path,
    input: &Path,
    start: Option<&str>,
) -> anyhow::Result<()> {
    let (loaded, reports) = mcas_rules::load_dir(rules)
        .with_context(|| format!("cannot read the rule directory {}", rules.display()))?;
    for r in reports.iter().filter(|r| !r.loaded) {
        eprintln!("skipped: {}", r.to_line());
    }
    if loaded.is_empty() {
        anyhow::bail!("no rule loaded from {}", rules.display());
    }
    let start = match start {
        Some(s) => Some(mcas_rules::ticks(
            s.parse::<jiff::Timestamp>()
                .with_context(|| format!("--start {s:?}: an RFC 3339 time is needed"))?,
        )),
        None => None,
    };
    let mut opts = mcas_rules::ReplayOptions::starting_at(start);
    if let Some(path) = config {
        let (cfg, _) = crate::config::Config::load(Some(path))?;
        opts.mapper = Some(cfg.mapper());
    }
    let file = std::fs::File::open(input)
        .with_context(|| format!("cannot open --input {}", input.display()))?;
    let replay = mcas_rules::replay(&loaded, std::io::BufReader::new(file), opts)
        .with_context(|| format!("cannot read {}", input.display()))?;
    let mut out = std::io::stdout().lock();
    for a in &replay.alerts {
        writeln!(out, "{}", a.to_json_line())?;
    }
    out.flush()?;
    eprintln!(
        "{} rows, {} lines skipped, {} alerts from {} rules",
        replay.rows,
        replay.skipped_lines,
        replay.alerts.len(),
        loaded.len()
    );
    Ok(())
}
