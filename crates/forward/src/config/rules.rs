//! `[rules]` (Sentinel scheduled analytics rules run on the stream) and `[[playbook]]`
//! (signed webhooks that receive their alerts), and their checks.

use super::*;

/// `[rules]`: the alert rules run on the mapped rows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesConfig {
    /// The directory of rule files (YAML, as the Azure-Sentinel repository writes them).
    pub(crate) dir: PathBuf,
    /// Where each rule's window, schedule and suppression are saved (default: `rules`
    /// under the state directory), with the playbooks' outbox in `outbox` below it.
    #[serde(default)]
    pub(crate) state_dir: Option<PathBuf>,
    /// Rows one rule's window holds at most; more are counted and the evaluation reports a
    /// partial window.
    #[serde(default = "default_window_rows")]
    pub(crate) max_window_rows: usize,
    /// Bytes (of the kept rows, as JSON) one rule's window holds at most.
    #[serde(default = "default_window_bytes")]
    pub(crate) max_window_bytes: ByteSize,
    /// Result rows a playbook body carries with its alert.
    #[serde(default = "default_alert_rows")]
    pub(crate) max_alert_rows: usize,
    /// How often the windows are saved to `state_dir` (and at shutdown).
    #[serde(default = "default_save_interval")]
    pub(crate) save_interval: DurationStr,
    /// Delays between a playbook delivery's attempts (the first is immediate); the message
    /// goes to the outbox's `dead/` after the last. Default: 5s, 5m, 30m, 2h, 5h, 10h, 14h,
    /// 20h, 24h.
    #[serde(default)]
    pub(crate) delivery_retry: Option<Vec<DurationStr>>,
    /// The whole-request timeout of a playbook delivery.
    #[serde(default = "default_delivery_timeout")]
    pub(crate) delivery_timeout: DurationStr,
}

fn default_window_rows() -> usize {
    100_000
}
fn default_window_bytes() -> ByteSize {
    ByteSize(64 << 20)
}
fn default_alert_rows() -> usize {
    10
}
fn default_save_interval() -> DurationStr {
    DurationStr(Duration::from_secs(60))
}
fn default_delivery_timeout() -> DurationStr {
    DurationStr(Duration::from_secs(30))
}

/// How a playbook's requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PlaybookFormat {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    #[default]
    StandardWebhooks,
    /// GitHub's `X-Hub-Signature-256`.
    Github,
}

/// One `[[playbook]]`: an endpoint (a Logic App HTTP trigger, any webhook receiver) that
/// receives the alerts of some rules as signed JSON.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlaybookConfig {
    /// Its name, in metrics, logs and the outbox.
    pub(crate) name: String,
    /// The URL. Its query string may hold a secret (a Logic App's `sig=`): it never
    /// reaches logs or metrics.
    pub(crate) url: String,
    /// The rules whose alerts it receives, by id or name; every rule when empty.
    #[serde(default)]
    pub(crate) rules: Vec<String>,
    /// The signing key(s): for Standard Webhooks `whsec_…` lines (several for rotation),
    /// for GitHub the secret as text.
    pub(crate) secret_file: PathBuf,
    #[serde(default)]
    pub(crate) format: PlaybookFormat,
}

impl fmt::Debug for PlaybookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a secret: only its scheme, host and path are shown.
        let url = mcas_webhook::EndpointUrl::parse(&self.url);
        f.debug_struct("PlaybookConfig")
            .field("name", &self.name)
            .field("url", &url.as_ref().map_or("<not a URL>", |u| u.redacted()))
            .field("rules", &self.rules)
            .field("secret_file", &self.secret_file)
            .field("format", &self.format)
            .finish()
    }
}

impl RulesConfig {
    /// The checks of `[rules]`.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        if self.max_window_rows == 0 {
            bail!("rules.max_window_rows must be at least 1");
        }
        if self.max_window_bytes.0 < 1024 {
            bail!("rules.max_window_bytes must be at least 1KiB");
        }
        if self.max_alert_rows > 1000 {
            bail!("rules.max_alert_rows must be at most 1000");
        }
        check_duration(
            "rules.save_interval",
            self.save_interval,
            Duration::from_secs(1),
            MAX_DURATION_KEY,
        )?;
        check_duration(
            "rules.delivery_timeout",
            self.delivery_timeout,
            Duration::from_millis(100),
            Duration::from_secs(600),
        )?;
        if let Some(d) = &self.delivery_retry {
            if d.is_empty() || d.len() > 100 {
                bail!("rules.delivery_retry: give 1 to 100 delays");
            }
            for &delay in d {
                check_duration(
                    "rules.delivery_retry",
                    delay,
                    Duration::from_millis(100),
                    MAX_DURATION_KEY,
                )?;
            }
        }
        Ok(())
    }

    /// The state directory: configured, else `rules` under the state directory.
    pub(crate) fn state_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.state_dir {
            Some(d) => Ok(d.clone()),
            None => Ok(state_dir()?.join("rules")),
        }
    }

    /// The engine's bounds.
    pub(crate) fn limits(&self) -> mcas_rules::Limits {
        let mut l = mcas_rules::Limits::with_window(
            self.max_window_rows,
            usize::try_from(self.max_window_bytes.0).unwrap_or(usize::MAX),
        );
        l.max_alert_results = self.max_alert_rows;
        l
    }
}

/// The checks of the `[[playbook]]` tables (they need `[rules]`).
pub(super) fn validate_playbooks(
    playbooks: &[PlaybookConfig],
    rules: Option<&RulesConfig>,
) -> anyhow::Result<()> {
    if !playbooks.is_empty() && rules.is_none() {
        bail!("[[playbook]] needs a [rules] table: playbooks receive the alerts of rules");
    }
    for (i, p) in playbooks.iter().enumerate() {
        if p.name.is_empty()
            || p.name.len() > 64
            || !p
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            bail!(
                "playbook[{i}].name {:?}: use 1 to 64 of a-z, 0-9, - and _",
                p.name
            );
        }
        if playbooks[..i].iter().any(|q| q.name == p.name) {
            bail!("playbook[{i}]: the name {:?} is used twice", p.name);
        }
        if let Err(e) = mcas_webhook::EndpointUrl::parse(&p.url) {
            bail!("playbook[{}].url: {e}", p.name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_playbook_url_query_never_shows() {
        let p = PlaybookConfig {
            name: "soc".into(),
            url: "https://prod-00.westeurope.logic.azure.com/workflows/x/triggers/manual/paths/invoke?api-version=2016-10-01&sig=SECRETSIG".into(),
            rules: Vec::new(),
            secret_file: PathBuf::from("/etc/mcas-forward/soc.key"),
            format: PlaybookFormat::StandardWebhooks,
        };
        let shown = format!("{p:?}");
        assert!(!shown.contains("SECRETSIG"), "{shown}");
        assert!(
            shown.contains("/workflows/x/triggers/manual/paths/invoke"),
            "{shown}"
        );
    }

    #[test]
    fn playbooks_need_rules_and_a_url() {
        let base = "[[output]]\nname = \"o\"\nkind = \"stdout\"\n";
        let e = Config::parse(&format!(
            "{base}[[playbook]]\nname = \"soc\"\nurl = \"https://example.com/h\"\nsecret_file = \"k\"\n"
        ))
        .unwrap_err();
        assert!(format!("{e:#}").contains("needs a [rules] table"), "{e:#}");
        let e = Config::parse(&format!(
            "{base}[rules]\ndir = \"r\"\n[[playbook]]\nname = \"soc\"\nurl = \"ftp://example.com/h\"\nsecret_file = \"k\"\n"
        ))
        .unwrap_err();
        assert!(format!("{e:#}").contains("playbook[soc].url"), "{e:#}");
        let ok = Config::parse(&format!(
            "{base}[rules]\ndir = \"r\"\ndelivery_retry = [\"1s\", \"2s\"]\n[[playbook]]\nname = \"soc\"\nurl = \"https://example.com/h?sig=x\"\nsecret_file = \"k\"\nformat = \"github\"\n"
        ))
        .unwrap();
        assert_eq!(ok.playbooks.len(), 1);
        assert_eq!(ok.playbooks[0].format, PlaybookFormat::Github);
        let e = Config::parse(&format!(
            "{base}[rules]\ndir = \"r\"\nmax_window_rows = 0\n"
        ))
        .unwrap_err();
        assert!(format!("{e:#}").contains("max_window_rows"), "{e:#}");
    }
}
