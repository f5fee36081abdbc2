//! The configuration and the commands around it, through the real binary: secrets kept out
//! of errors, durations range-checked, `validate` doing what `run` does, the commands that
//! do not talk to Azure running without the secret, and `replay-dead-letter`'s accounting.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// No secret in the environment (empty counts as unset).
const NO_SECRET: [(&str, &str); 1] = [("MCAS_FORWARD_CLIENT_SECRET", "")];

fn logs_ingestion(endpoint: &str, extra_auth: &str, tail: &str) -> String {
    format!(
        r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{port}"

[output]
kind = "logs-ingestion"
endpoint = "{endpoint}"
dcr_immutable_id = "dcr-00000000000000000000000000000000"

[output.auth]
kind = "client-secret"
tenant_id = "00000000-0000-0000-0000-000000000001"
client_id = "00000000-0000-0000-0000-000000000002"
authority_host = "{endpoint}"
{extra_auth}
{tail}
"#,
        port = free_port()
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn state(dir: &Path) -> String {
    dir.join("state").display().to_string()
}

#[test]
fn a_toml_error_never_quotes_the_inline_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "S3cret-Inline-Value-42";
    let p = write(
        dir.path(),
        "c.toml",
        &logs_ingestion(
            "https://x.ingest.monitor.azure.com",
            &format!("client_secret = \"{secret}\" oops"),
            "",
        ),
    );
    let (code, out, err) = run_cli(
        &["validate", "--offline", "--config", p.to_str().unwrap()],
        None,
        &NO_SECRET,
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(!err.contains(secret) && !out.contains(secret), "{err}");
    assert!(
        err.contains("output.auth.client_secret") && err.contains(&p.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_huge_duration_is_refused_by_run_and_validate_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (v, want) in [
        ("9223372036854775807", "pipeline.shutdown_grace"),
        (
            "100000",
            "pipeline.shutdown_grace = 100000s is out of range",
        ),
        (
            "\"30000h\"",
            "pipeline.shutdown_grace = 30000h is out of range",
        ),
    ] {
        let p = write(
            dir.path(),
            "c.toml",
            &format!(
                "[[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:{}\"\n[output]\nkind = \"stdout\"\n[pipeline]\nshutdown_grace = {v}\n",
                free_port()
            ),
        );
        let (code, _, err) = run_cli(
            &["validate", "--offline", "--config", p.to_str().unwrap()],
            None,
            &[],
        );
        assert_eq!(code, 2, "{v}: {err}");
        assert!(err.contains(want), "{v}: {err}");
        // `run` refuses it at start, instead of running and panicking at SIGTERM.
        let r = run_cli_within(
            &["run", "--config", p.to_str().unwrap()],
            &[("XDG_STATE_HOME", &state(dir.path()))],
            Duration::from_secs(20),
        );
        let (code, _, err) = r.expect("run must refuse the configuration, not start");
        assert_eq!(code, 2, "{v}: {err}");
        assert!(err.contains(want), "{v}: {err}");
    }
}

#[test]
fn validate_offline_refuses_the_plain_http_endpoint_that_run_refuses() {
    let dir = tempfile::tempdir().unwrap();
    // A documentation address: never contacted, the check is local.
    let p = write(
        dir.path(),
        "c.toml",
        &logs_ingestion("http://192.0.2.7", "", ""),
    );
    let env = [
        ("MCAS_FORWARD_CLIENT_SECRET", "x"),
        ("XDG_STATE_HOME", &state(dir.path())),
    ];
    let (code, out, err) = run_cli(
        &["validate", "--offline", "--config", p.to_str().unwrap()],
        None,
        &env,
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("output.endpoint") && err.contains("plain http://"),
        "{err}"
    );
    assert!(!out.contains("configuration OK"), "{out}");
    let (code, _, run_err) = run_cli_within(
        &["run", "--config", p.to_str().unwrap()],
        &env,
        Duration::from_secs(20),
    )
    .expect("run refuses it");
    assert_eq!(code, 2, "{run_err}");
    assert!(run_err.contains("output.endpoint"), "{run_err}");
}

#[test]
fn validate_online_names_the_failing_key_and_never_says_ok_first() {
    let dir = tempfile::tempdir().unwrap();
    // Loopback, nothing listening: the token request fails at once.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let p = write(dir.path(), "c.toml", &logs_ingestion(&endpoint, "", ""));
    let (code, out, err) = run_cli(
        &["validate", "--config", p.to_str().unwrap()],
        None,
        &[
            ("MCAS_FORWARD_CLIENT_SECRET", "x"),
            ("XDG_STATE_HOME", &state(dir.path())),
        ],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        !out.contains("configuration OK"),
        "printed before failing: {out}"
    );
    assert!(err.contains("output.auth"), "{err}");
    // Online without the secret: the key and the variable are named, nothing printed OK.
    let (code, out, err) = run_cli(
        &["validate", "--config", p.to_str().unwrap()],
        None,
        &[
            ("MCAS_FORWARD_CLIENT_SECRET", ""),
            ("XDG_STATE_HOME", &state(dir.path())),
        ],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(!out.contains("configuration OK"), "{out}");
    assert!(
        err.contains("output.auth.client_secret") && err.contains("MCAS_FORWARD_CLIENT_SECRET"),
        "{err}"
    );
}

#[test]
fn commands_that_do_not_talk_to_azure_run_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    // As in docs/deploy.md: the secret file is named but does not exist yet.
    let p = write(
        dir.path(),
        "c.toml",
        &logs_ingestion(
            "https://x.ingest.monitor.azure.com",
            &format!(
                "client_secret_file = \"{}\"",
                dir.path().join("not-yet").display()
            ),
            "",
        ),
    );
    let cfg = p.to_str().unwrap();
    let env = [
        ("MCAS_FORWARD_CLIENT_SECRET", ""),
        ("XDG_STATE_HOME", &state(dir.path())),
    ];
    let (code, out, err) = run_cli(&["dcr-template", "--config", cfg], None, &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Microsoft.Insights/dataCollectionRules"),
        "{out}"
    );
    let (code, out, err) = run_cli(
        &["map", "--config", cfg],
        Some(b"<134>2024-05-08T16:07:11Z fw01 CEF:0|V|P|1|100|n|5|externalId=ev-1\n"),
        &env,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"ExtID\":\"ev-1\""), "{out}");
    let (code, out, err) = run_cli(&["validate", "--offline", "--config", cfg], None, &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration OK"), "{out}");
    assert!(out.contains("secret: not available"), "{out}");
    // `run` talks to Azure: it needs the secret, and says which.
    let (code, _, err) = run_cli_within(&["run", "--config", cfg], &env, Duration::from_secs(20))
        .expect("run without its secret must exit");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("output.auth.client_secret"), "{err}");
}

#[test]
fn replay_dead_letter_counts_what_fails_again_and_keeps_the_first_reason() {
    let dir = tempfile::tempdir().unwrap();
    let dl = dir.path().join("dead-letter.ndjson");
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!(
            "[output]\nkind = \"stdout\"\n[dead_letter]\npath = \"{}\"\n",
            dl.display()
        ),
    );
    let mut text = String::new();
    for i in 0..3 {
        text.push_str(&format!(
            "{{\"time\":\"2024-01-01T00:00:0{i}Z\",\"reason\":\"not CEF, and output.syslog_stream is not set\",\"peer\":\"10.0.0.1\",\"raw\":\"<13>Jan  1 00:00:00 host app: plain {i}\"}}\n"
        ));
    }
    text.push_str("{\"time\":\"2024-01-01T00:00:00Z\",\"reason\":\"earlier\",\"raw\":\"<134>2024-05-08T16:07:11Z fw01 CEF:0|V|P|1|100|n|5|externalId=ev-1\"}\n");
    std::fs::write(&dl, &text).unwrap();
    let replay = || {
        run_cli(
            &["replay-dead-letter", "--config", cfg.to_str().unwrap()],
            None,
            &[],
        )
    };
    let (code, out, err) = replay();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("replayed 4 dead-letter entries: 1 rows delivered, 3 dead-lettered again"),
        "{out}"
    );
    let first = std::fs::read_to_string(&dl).unwrap();
    assert_eq!(first.lines().count(), 3, "{first}");
    let (code, out, err) = replay();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("replayed 3 dead-letter entries: 0 rows delivered, 3 dead-lettered again"),
        "{out}"
    );
    let second = std::fs::read_to_string(&dl).unwrap();
    assert_eq!(
        second, first,
        "the entries come back unchanged, reason and time"
    );
    assert!(
        second
            .lines()
            .all(|l| l.contains("\"reason\":\"not CEF, and output.syslog_stream is not set\"")),
        "{second}"
    );
}

/// A shipper's Event Hubs connection string is checked by `validate` as `run` reads it:
/// online its absence fails naming the key, offline it is a note, and once it is there
/// neither says anything of it.
#[cfg(feature = "kafka")]
#[test]
fn validate_checks_a_kafka_listeners_connection_string() {
    let dir = tempfile::tempdir().unwrap();
    let var = "MCAS_FORWARD_TEST_SHIPPER_CONNECTION_STRING";
    let p = write(
        dir.path(),
        "c.toml",
        &format!(
            r#"
[[listen]]
protocol = "kafka"
brokers = ["ns.servicebus.windows.net:9093"]
topics = ["cef"]
group = "shippers"
sasl = "plain"
connection_string_env = "{var}"

[output]
kind = "stdout"
"#
        ),
    );
    let cfg = p.to_str().unwrap();
    let state = state(dir.path());
    let unset = [(var, ""), ("XDG_STATE_HOME", state.as_str())];
    let (code, out, err) = run_cli(&["validate", "--config", cfg], None, &unset);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("listen[0].connection_string_env") && err.contains(var),
        "{err}"
    );
    assert!(!out.contains("configuration OK"), "{out}");

    let (code, out, err) = run_cli(&["validate", "--offline", "--config", cfg], None, &unset);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("configuration OK")
            && out.contains("listen[0] connection string: not available"),
        "{out}"
    );

    let secret =
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=S3cret";
    let set = [(var, secret), ("XDG_STATE_HOME", state.as_str())];
    let (code, out, err) = run_cli(&["validate", "--config", cfg], None, &set);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("connection string"), "{out}");
    assert!(
        !out.contains("S3cret") && !err.contains("S3cret"),
        "{out}{err}"
    );
}
