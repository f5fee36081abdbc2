//! End to end: the real `mcas-forward` binary, `mcas-azure-emulator` in-process, and real
//! senders (util-linux `logger`, and rsyslog in the ignored test).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::Value;

const CSL: &str = "CommonSecurityLog";

/// A CEF event carrying a unique id in `externalId`.
fn cef(id: &str, act: &str) -> String {
    format!(
        "CEF:0|MCAS|SIEM_Agent|0.112.68|EVENT_CATEGORY_LOGIN|{act}|3|externalId={id} src=10.1.2.3 dst=192.0.2.7 spt=4242 suser=admin@contoso.com msg=Log on via {act} cs1Label=portalURL cs1=https://contoso.portal.cloudappsecurity.com/#/audits?activity.id\\=eq({id},)"
    )
}

fn rows_by_id(rows: &[Value]) -> BTreeMap<String, Value> {
    rows.iter()
        .filter_map(|r| Some((r.get("ExtID")?.as_str()?.to_owned(), r.clone())))
        .collect()
}

fn check_row(row: &Value, id: &str, act: &str) {
    let s = |k: &str| {
        row.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(s("DeviceVendor"), "MCAS", "{row}");
    assert_eq!(s("DeviceProduct"), "SIEM_Agent");
    assert_eq!(s("DeviceVersion"), "0.112.68");
    assert_eq!(s("DeviceEventClassID"), "EVENT_CATEGORY_LOGIN");
    assert_eq!(s("Activity"), act);
    assert_eq!(s("LogSeverity"), "3");
    assert_eq!(s("ExtID"), id);
    assert_eq!(s("SourceIP"), "10.1.2.3");
    assert_eq!(s("DestinationIP"), "192.0.2.7");
    assert_eq!(row.get("SourcePort").and_then(Value::as_i64), Some(4242));
    assert_eq!(s("SourceUserName"), "admin@contoso.com");
    assert_eq!(s("Message"), format!("Log on via {act}"));
    assert_eq!(s("DeviceCustomString1Label"), "portalURL");
    assert_eq!(
        s("DeviceCustomString1"),
        format!("https://contoso.portal.cloudappsecurity.com/#/audits?activity.id=eq({id},)")
    );
    assert_eq!(s("Computer"), hostname(), "Computer is the syslog HOSTNAME");
    assert_eq!(s("SourceSystem"), "OpsManager");
    assert!(!s("TimeGenerated").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logger_udp_tcp_and_octet_counted_reach_the_emulator() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "");
    let mut fwd = start_forwarder(dir.path(), cfg).await;
    let port = fwd.port.to_string();
    let cases = [
        ("e2e-udp-1", "udp", vec!["-d"]),
        ("e2e-tcp-1", "tcp", vec!["--tcp"]),
        ("e2e-octet-1", "octet", vec!["--tcp", "--octet-count"]),
        ("e2e-rfc3164-1", "tcp3164", vec!["--tcp", "--rfc3164"]),
    ];
    for (id, act, flags) in &cases {
        let mut args = vec!["-n", "127.0.0.1", "-P", &port];
        args.extend(flags.iter().copied());
        let msg = cef(id, act);
        args.push(&msg);
        logger(&args);
    }
    let ok = wait_until_async(Duration::from_secs(20), || emu.count(CSL) >= cases.len()).await;
    assert!(
        ok,
        "rows: {}; stderr:\n{}",
        emu.count(CSL),
        fwd.stderr_text()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = emu.rows(CSL);
    assert_eq!(rows.len(), cases.len(), "each event exactly once");
    let by_id = rows_by_id(&rows);
    for (id, act, _) in &cases {
        check_row(
            by_id
                .get(*id)
                .unwrap_or_else(|| panic!("{id} missing: {rows:?}")),
            id,
            act,
        );
    }
    assert_eq!(
        fwd.metric("mcas_forward_cef_total"),
        Some(cases.len() as f64)
    );
    assert_eq!(
        fwd.metric("mcas_forward_sent_rows_total"),
        Some(cases.len() as f64)
    );
    assert_eq!(
        fwd.metric("mcas_forward_token_refreshes_total"),
        Some(1.0),
        "one token, cached"
    );
    assert!(
        fwd.metric("mcas_forward_responses_total{status=\"204\"}")
            .is_some_and(|v| v >= 1.0)
    );
    let (code, body) = fwd.http_get("/health").expect("health");
    assert_eq!(code, 200, "{body}");
    let st = tokio::task::spawn_blocking(move || {
        let st = fwd
            .terminate(Duration::from_secs(20))
            .expect("the forwarder exits");
        (st, fwd)
    })
    .await
    .unwrap();
    assert!(st.0.success(), "exit status {:?}", st.0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_output_equals_the_row_the_emulator_stores() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "");
    let fwd = start_forwarder(dir.path(), cfg).await;
    let lines = [
        format!("<134>2024-05-08T16:07:11.123Z fw01 {}", cef("map-1", "one")),
        format!("<13>Oct 11 22:14:15 fw02 tmes[1]: {}", cef("map-2", "two")),
        cef("map-3", "three"),
    ];
    {
        use std::io::Write as _;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
        for l in &lines {
            writeln!(s, "{l}").unwrap();
        }
    }
    assert!(wait_until_async(Duration::from_secs(20), || emu.count(CSL) >= lines.len()).await);
    let stored = rows_by_id(&emu.rows(CSL));
    let input = lines.join("\n");
    let cfg_path = dir.path().join("config.toml");
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run_cli(
            &["map", "--config", cfg_path.to_str().unwrap()],
            Some(input.as_bytes()),
            &secret_env(),
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let mapped: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(mapped.len(), lines.len());
    for m in mapped {
        let id = m["ExtID"].as_str().unwrap().to_owned();
        let mut s = stored[&id].clone();
        let mut m = m;
        // Receive time differs between the two runs, and the emulator adds its ingestion time.
        for k in ["TimeGenerated", "_IngestionTime"] {
            s.as_object_mut().unwrap().remove(k);
            m.as_object_mut().unwrap().remove(k);
        }
        // The peer address stands in for a missing hostname in both (127.0.0.1).
        assert_eq!(m, s, "map and the emulator disagree for {id}");
    }
    drop(fwd);
    emu.shutdown().await;
}

#[test]
fn dcr_template_columns_equal_mcas_csl_columns() {
    let (code, out, err) = run_cli(&["dcr-template"], None, &[]);
    assert_eq!(code, 0, "{err}");
    let t: Value = serde_json::from_str(&out).expect("valid JSON");
    let props = &t["resources"][0]["properties"];
    let cols = props["streamDeclarations"]["Custom-CommonSecurityLog"]["columns"]
        .as_array()
        .expect("columns");
    let got: Vec<(String, String)> = cols
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = mcas_csl::columns()
        .iter()
        .map(|(n, t)| ((*n).to_owned(), t.as_azure_str().to_owned()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        props["dataFlows"][0]["outputStream"],
        "Microsoft-CommonSecurityLog"
    );
    assert_eq!(
        props["dataFlows"][0]["streams"][0],
        "Custom-CommonSecurityLog"
    );
}

#[test]
fn dcr_template_adds_custom_columns_and_the_syslog_flow() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        r#"
[output]
kind = "stdout"
syslog_stream = "Custom-Syslog"
[mapping.keys]
"ad.srccountry" = "SrcCountry_CF"
"#,
    )
    .unwrap();
    let (code, out, err) = run_cli(
        &[
            "dcr-template",
            "--config",
            cfg.to_str().unwrap(),
            "--stream",
            "Custom-Cef",
        ],
        None,
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let t: Value = serde_json::from_str(&out).unwrap();
    let props = &t["resources"][0]["properties"];
    let cols = props["streamDeclarations"]["Custom-Cef"]["columns"]
        .as_array()
        .unwrap();
    assert!(
        cols.iter()
            .any(|c| c["name"] == "SrcCountry_CF" && c["type"] == "string")
    );
    assert_eq!(cols.len(), mcas_csl::columns().len() + 1);
    let sys = props["streamDeclarations"]["Custom-Syslog"]["columns"]
        .as_array()
        .unwrap();
    assert_eq!(sys.len(), mcas_csl::syslog_columns().len());
    assert_eq!(props["dataFlows"][1]["outputStream"], "Microsoft-Syslog");
}

#[test]
fn map_gives_every_expected_column_of_the_csl_vectors() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/csl.jsonl"))
            .unwrap();
    let cases: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let input: String = cases
        .iter()
        .map(|c| format!("{}\n", c["input"].as_str().unwrap()))
        .collect();
    let (code, out, err) = run_cli(
        &["map", "--received-at", "2024-01-01T00:00:00Z"],
        Some(input.as_bytes()),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), cases.len());
    let mut failures = Vec::new();
    for (case, row) in cases.iter().zip(&rows) {
        let name = case["name"].as_str().unwrap_or("?");
        for (k, v) in case["expect"].as_object().unwrap() {
            if row.get(k) != Some(v) {
                failures.push(format!("{name}: {k}: want {v}, got {:?}", row.get(k)));
            }
        }
        for k in case
            .get("absent")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let k = k.as_str().unwrap();
            if row.get(k).is_some() {
                failures.push(format!("{name}: {k} should be absent, got {}", row[k]));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{} csl vectors mapped by the binary", cases.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_everything_read() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    // A long flush interval: only the shutdown path can deliver these rows in time.
    let cfg = emulator_config(&emu.base_url(), "")
        .replace("flush_interval = \"100ms\"", "flush_interval = \"60s\"");
    let mut fwd = start_forwarder(dir.path(), cfg).await;
    let n = 2000;
    {
        use std::io::Write as _;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
        let mut buf = String::new();
        for i in 0..n {
            buf.push_str(&format!(
                "<134>2024-05-08T16:07:11Z fw01 {}\n",
                cef(&format!("term-{i}"), "term")
            ));
        }
        s.write_all(buf.as_bytes()).unwrap();
    }
    // Wait until the forwarder has read them all, then stop it.
    let fwd2 = tokio::task::spawn_blocking(move || {
        assert!(wait_until(Duration::from_secs(20), || fwd
            .metric("mcas_forward_received_total")
            == Some(n as f64)));
        assert_eq!(
            fwd.metric("mcas_forward_sent_rows_total"),
            Some(0.0),
            "nothing flushed before the signal"
        );
        let st = fwd
            .terminate(Duration::from_secs(30))
            .expect("the forwarder exits");
        assert!(st.success(), "exit {st:?}: {}", fwd.stderr_text());
        fwd
    })
    .await
    .unwrap();
    assert_eq!(
        emu.count(CSL),
        n,
        "every event read before SIGTERM is delivered; stderr:\n{}",
        fwd2.stderr_text()
    );
    let ids = rows_by_id(&emu.rows(CSL));
    assert_eq!(ids.len(), n, "no duplicates");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_cef_goes_to_syslog_stream_when_configured() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "").replace(
        "stream = \"Custom-CommonSecurityLog\"",
        "stream = \"Custom-CommonSecurityLog\"\nsyslog_stream = \"Custom-Syslog\"",
    );
    let fwd = start_forwarder(dir.path(), cfg).await;
    let port = fwd.port.to_string();
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "--tcp",
        "-t",
        "sshd",
        "-p",
        "auth.warning",
        "Accepted password for root",
    ]);
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "--tcp",
        &cef("mixed-1", "mixed"),
    ]);
    // A broken CEF header is routed as non-CEF, and counted.
    logger(&["-n", "127.0.0.1", "-P", &port, "--tcp", "CEF:0|only|three"]);
    assert!(
        wait_until_async(Duration::from_secs(20), || emu.count("Syslog") >= 2
            && emu.count(CSL) >= 1)
        .await
    );
    let sys = emu.rows("Syslog");
    assert_eq!(sys.len(), 2);
    let ssh = sys
        .iter()
        .find(|r| r["ProcessName"] == "sshd")
        .expect("sshd row");
    assert_eq!(ssh["Facility"], "auth");
    assert_eq!(ssh["SeverityLevel"], "warning");
    assert_eq!(ssh["SyslogMessage"], "Accepted password for root");
    assert_eq!(ssh["HostIP"], "127.0.0.1");
    assert_eq!(emu.count(CSL), 1, "CEF goes to one table only");
    assert_eq!(fwd.metric("mcas_forward_malformed_cef_total"), Some(1.0));
    assert_eq!(fwd.metric("mcas_forward_non_cef_total"), Some(2.0));
    drop(fwd);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_samples_arrive_as_mcas_rows() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "");
    let fwd = start_forwarder(dir.path(), cfg).await;
    let (tcp, udp) = (
        format!("tcp://127.0.0.1:{}", fwd.port),
        format!("udp://127.0.0.1:{}", fwd.port),
    );
    let (a, b) = tokio::task::spawn_blocking(move || {
        (
            run_cli(
                &[
                    "send-test",
                    "--to",
                    &tcp,
                    "--count",
                    "4",
                    "--framing",
                    "octet-counting",
                ],
                None,
                &[],
            ),
            run_cli(&["send-test", "--to", &udp, "--count", "2"], None, &[]),
        )
    })
    .await
    .unwrap();
    assert_eq!(a.0, 0, "{a:?}");
    assert_eq!(b.0, 0, "{b:?}");
    assert!(
        a.1.contains("CommonSecurityLog | where DeviceVendor == \"MCAS\""),
        "{}",
        a.1
    );
    assert!(
        wait_until_async(Duration::from_secs(20), || emu.count(CSL) >= 6).await,
        "{}",
        fwd.stderr_text()
    );
    let rows = emu.rows(CSL);
    assert_eq!(rows.len(), 6);
    let alerts = rows
        .iter()
        .filter(|r| r["DeviceEventClassID"] == "ALERT_CABINET_EVENT_MATCH_AUDIT")
        .count();
    let logins = rows
        .iter()
        .filter(|r| r["DeviceEventClassID"] == "EVENT_CATEGORY_LOGIN")
        .count();
    // 4 over TCP and 2 over UDP, each run alternating login, alert.
    assert_eq!((alerts, logins), (3, 3));
    for r in &rows {
        assert_eq!(r["DeviceVendor"], "MCAS");
        assert_eq!(r["DeviceProduct"], "SIEM_Agent");
        assert!(
            r["ExtID"]
                .as_str()
                .unwrap()
                .starts_with("mcas-forward-test-")
        );
        assert_eq!(r["DeviceCustomString1Label"], "portalURL");
        assert_eq!(r["SourceUserName"], "admin@contoso.com");
    }
    drop(fwd);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_collector_output_writes_the_legacy_custom_table() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"
[[listen]]
protocol = "tcp"
address = "127.0.0.1:{{PORT}}"

[output]
kind = "data-collector"
workspace_id = "{ws}"
endpoint = "{base}"

[spool]
dir = "{{DIR}}/spool"

[metrics]
address = "127.0.0.1:{{METRICS}}"

[pipeline]
flush_interval = "100ms"
"#,
        ws = mcas_azure_emulator::DEFAULT_WORKSPACE_ID,
        base = emu.base_url(),
    );
    let fwd = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || {
            forwarder(
                &dir,
                &cfg,
                &[(
                    "MCAS_FORWARD_SHARED_KEY",
                    mcas_azure_emulator::DEFAULT_SHARED_KEY,
                )],
            )
        }
    })
    .await
    .unwrap();
    let port = fwd.port.to_string();
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "--tcp",
        &cef("dc-1", "legacy"),
    ]);
    let table = "CommonSecurityLog_CL";
    assert!(
        wait_until_async(Duration::from_secs(20), || emu.count(table) >= 1).await,
        "{}",
        fwd.stderr_text()
    );
    let rows = emu.rows(table);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["DeviceVendor_s"], "MCAS", "{}", rows[0]);
    assert_eq!(rows[0]["ExtID_s"], "dc-1");
    // TimeGenerated is reserved there: it travels as CollectedTime, named in time-generated-field.
    assert!(rows[0].get("CollectedTime_t").is_some(), "{}", rows[0]);
    drop(fwd);
    emu.shutdown().await;
}

#[test]
fn listener_timezone_applies_to_zoneless_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tz.toml");
    std::fs::write(
        &cfg,
        r#"
[[listen]]
protocol = "udp"
address = "127.0.0.1:5514"
timezone = "+02:00"

[output]
kind = "stdout"
syslog_stream = "Syslog"
"#,
    )
    .unwrap();
    let input = b"<13>2024-05-08T16:07:11 host1 app: zone-less\n<13>2024-05-08T16:07:11Z host1 app: in UTC\n";
    let (code, out, err) = run_cli(
        &[
            "map",
            "--config",
            cfg.to_str().unwrap(),
            "--received-at",
            "2024-05-08T16:00:00Z",
        ],
        Some(input),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["EventTime"], "2024-05-08T14:07:11.000Z", "{out}");
    assert_eq!(rows[1]["EventTime"], "2024-05-08T16:07:11.000Z");
    // Without a timezone, zone-less means UTC.
    let (code, out, _) = run_cli(
        &["map", "--received-at", "2024-05-08T16:00:00Z"],
        Some(input),
        &[],
    );
    assert_eq!(code, 0);
    assert!(
        out.lines().all(|l| l.contains("dead_letter")),
        "the default has no syslog_stream: {out}"
    );
    std::fs::write(
        &cfg,
        "[output]\nkind = \"stdout\"\nsyslog_stream = \"Syslog\"\n",
    )
    .unwrap();
    let (_, out, _) = run_cli(
        &["map", "--config", cfg.to_str().unwrap()],
        Some(input),
        &[],
    );
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["EventTime"], "2024-05-08T16:07:11.000Z", "{out}");
}

/// A file-output forwarder whose batches never close on time (`flush_interval` 60 s).
fn file_config(linger: &str) -> String {
    format!(
        "[[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:{{PORT}}\"\n\n\
         [output]\nkind = \"file\"\npath = \"{{DIR}}/out.json\"\n\n\
         [pipeline]\nflush_interval = \"60s\"\nlinger = \"{linger}\"\n"
    )
}

fn lines_in(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn the_end_of_a_burst_is_written_after_linger_not_flush_interval() {
    use std::io::Write as _;
    for (linger, written_soon) in [("50ms", true), ("0s", false)] {
        let dir = tempfile::tempdir().unwrap();
        let mut fwd = forwarder(dir.path(), &file_config(linger), &[]);
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
        for i in 0..3 {
            writeln!(tcp, "<134>{}", cef(&format!("burst-{i}"), "allow")).unwrap();
        }
        tcp.flush().unwrap();
        let out = dir.path().join("out.json");
        let seen = wait_until(Duration::from_secs(3), || lines_in(&out) == 3);
        assert_eq!(
            seen,
            written_soon,
            "linger {linger}: {} lines",
            lines_in(&out)
        );
        if !written_soon {
            // Held in the open batch, not lost: SIGTERM closes it.
            drop(tcp);
            let status = fwd
                .terminate(Duration::from_secs(20))
                .expect("the forwarder exits");
            assert!(status.success());
            assert_eq!(lines_in(&out), 3);
        }
    }
}
