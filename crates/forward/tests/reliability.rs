//! Reliability: the spool across `kill -9`, back-pressure under `when_full = "block"`,
//! dead-letter and replay, and `validate` against the emulator.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::time::{Duration, Instant};

use common::*;
use mcas_azure_emulator::Faults;
use serde_json::Value;

const CSL: &str = "CommonSecurityLog";

/// An event of about `pad` bytes more than its header. The padding is letters that do not
/// compress away: the spool holds gzip'd bodies, and these tests fill it.
fn line(id: usize, pad: usize) -> String {
    let mut x = (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let msg: String = (0..pad)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    format!(
        "<134>2024-05-08T16:07:11Z fw01 CEF:0|Vendor|Product|1.0|100|event|5|externalId=ev-{id} src=10.0.0.1 msg={msg}\n"
    )
}

fn ids(rows: &[Value]) -> Vec<usize> {
    rows.iter()
        .filter_map(|r| r["ExtID"].as_str()?.strip_prefix("ev-")?.parse().ok())
        .collect()
}

/// Spool files and the rows they hold (a batch file's header counts them; a file of the
/// first format has one row a line).
fn spooled_rows(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let data = std::fs::read(e.path()).unwrap_or_default();
                    if name.ends_with(".batch") {
                        mcas_spool::decode(&data).map_or(0, |f| f.rows as usize)
                    } else if name.ends_with(".ndjson") {
                        data.iter().filter(|&&c| c == b'\n').count()
                    } else {
                        0
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A down window long enough for any test: the emulator refuses connections.
fn down() -> Faults {
    Faults::none().with_down(Duration::ZERO, Duration::from_secs(3600))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_survives_kill_9_and_is_sent_after_restart() {
    let emu = emulator().await;
    emu.set_faults(down());
    let dir = tempfile::tempdir().unwrap();
    let flush = "200ms";
    let cfg = emulator_config(&emu.base_url(), "").replace(
        "flush_interval = \"100ms\"",
        &format!("flush_interval = \"{flush}\""),
    );
    let env = secret_env();
    let d = dir.path().to_owned();
    let (spooled_before_kill, sent_after_flush, total) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || {
            let mut fwd = forwarder(&d, &cfg, &env);
            let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
            // Phase 1: 1,000 events, then wait until the spool holds them all.
            let n1 = 1000;
            let mut buf = String::new();
            for i in 0..n1 {
                buf.push_str(&line(i, 10));
            }
            s.write_all(buf.as_bytes()).unwrap();
            assert!(
                wait_until(Duration::from_secs(20), || spooled_rows(&d.join("spool"))
                    == n1),
                "spool holds {} rows; stderr:\n{}",
                spooled_rows(&d.join("spool")),
                fwd.stderr_text()
            );
            // Phase 2: 200 more, and kill -9 at once: these may be lost (read, not yet flushed).
            let n2 = 200;
            let mut buf = String::new();
            for i in n1..n1 + n2 {
                buf.push_str(&line(i, 10));
            }
            s.write_all(buf.as_bytes()).unwrap();
            fwd.kill9().expect("kill -9");
            (spooled_rows(&d.join("spool")), n1, n1 + n2)
        }
    })
    .await
    .unwrap();
    assert!(spooled_before_kill >= sent_after_flush);
    assert_eq!(emu.count(CSL), 0, "the emulator was down");
    // Bring the output back and restart: every spooled row is delivered.
    emu.set_faults(Faults::none());
    let fwd = start_forwarder(dir.path(), cfg).await;
    assert!(
        wait_until_async(Duration::from_secs(30), || emu.count(CSL)
            >= spooled_before_kill)
        .await,
        "delivered {} of {spooled_before_kill} spooled rows; stderr:\n{}",
        emu.count(CSL),
        fwd.stderr_text()
    );
    assert!(
        wait_until_async(Duration::from_secs(10), || spooled_rows(
            &dir.path().join("spool")
        ) == 0)
        .await,
        "spool drained"
    );
    let got = ids(&emu.rows(CSL));
    let distinct: BTreeSet<usize> = got.iter().copied().collect();
    let duplicates = got.len() - distinct.len();
    // Every event that reached the spool arrived; the first 1,000 were spooled for sure.
    assert!(
        (0..sent_after_flush).all(|i| distinct.contains(&i)),
        "a spooled event was lost"
    );
    let lost = total - distinct.len();
    assert!(
        lost <= total - sent_after_flush,
        "lost {lost} events: more than the unflushed window"
    );
    assert_eq!(
        duplicates, 0,
        "nothing was in flight at the kill (the output was down)"
    );
    println!(
        "kill -9: sent {total}, spooled before the kill {spooled_before_kill}, delivered {}, lost {lost} (window {}), duplicates {duplicates}",
        distinct.len(),
        total - sent_after_flush
    );
    drop(fwd);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_policy_pushes_back_on_tcp_while_the_output_is_down() {
    let emu = emulator().await;
    emu.set_faults(down());
    let dir = tempfile::tempdir().unwrap();
    let extra = r#"
[spool]
dir = "{DIR}/spool"
max_bytes = "1MiB"
when_full = "block"
"#;
    let cfg = emulator_config(&emu.base_url(), "")
        .replace("[spool]\ndir = \"{DIR}/spool\"\n", "")
        .replace(
            "flush_interval = \"100ms\"",
            "flush_interval = \"100ms\"\nqueue_capacity = 512\nbatch_max_rows = 200",
        )
        + extra;
    let env = secret_env();
    let d = dir.path().to_owned();
    let (fwd, sent, stream) = tokio::task::spawn_blocking(move || {
        let fwd = forwarder(&d, &cfg, &env);
        let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        // Write 1 KiB events until a write blocks for 3 s: the forwarder stopped reading.
        let cap = 100_000;
        let mut sent = 0;
        let mut blocked = false;
        while sent < cap {
            let l = line(sent, 1000);
            let bytes = l.as_bytes();
            let mut off = 0;
            while off < bytes.len() {
                match s.write(&bytes[off..]) {
                    Ok(n) => off += n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        blocked = true;
                        break;
                    }
                    Err(e) => panic!("write: {e}"),
                }
            }
            if blocked {
                // Finish this event once the output is back.
                return (fwd, sent + 1, Some((s, bytes[off..].to_vec())));
            }
            sent += 1;
        }
        panic!(
            "the sender was never pushed back after {cap} events; stderr:\n{}",
            fwd.stderr_text()
        );
    })
    .await
    .unwrap();
    let spool_bytes = fwd.metric("mcas_forward_spool_bytes").unwrap();
    // Output unreachable and the spool above its ready threshold (90 %): not ready.
    let f = &fwd;
    assert!(
        wait_until_async(Duration::from_secs(10), || f
            .http_get("/health")
            .map(|h| h.0)
            == Some(503))
        .await,
        "{:?}",
        fwd.http_get("/health")
    );
    assert_eq!(fwd.http_get("/health/live").map(|h| h.0), Some(200));
    assert!(
        spool_bytes <= (1 << 20) as f64 + 300_000.0,
        "spool over its cap: {spool_bytes}"
    );
    assert_eq!(
        fwd.metric("mcas_forward_dropped_total{reason=\"spool_full\"}"),
        None.or(Some(0.0))
    );
    // Output back: the rest of the stream flows, nothing is lost.
    emu.set_faults(Faults::none());
    let (mut s, rest) = stream.unwrap();
    tokio::task::spawn_blocking(move || {
        s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(&rest).unwrap();
    })
    .await
    .unwrap();
    let ok = wait_until_async(Duration::from_secs(60), || emu.count(CSL) >= sent).await;
    assert!(
        ok,
        "delivered {} of {sent}; stderr:\n{}",
        emu.count(CSL),
        fwd.stderr_text()
    );
    let got: BTreeSet<usize> = ids(&emu.rows(CSL)).into_iter().collect();
    assert_eq!(
        got.len(),
        sent,
        "every event delivered once the output came back"
    );
    println!(
        "block: {sent} events written before and during back-pressure, all delivered; spool peaked near {spool_bytes} bytes"
    );
    drop(fwd);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_then_replay_after_fixing_the_config() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "");
    let env = secret_env();
    let d = dir.path().to_owned();
    let fwd = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || {
            let mut fwd = forwarder(&d, &cfg, &env);
            let port = fwd.port.to_string();
            for i in 0..3 {
                logger(&[
                    "-n",
                    "127.0.0.1",
                    "-P",
                    &port,
                    "--tcp",
                    "-t",
                    "app",
                    &format!("plain message {i}"),
                ]);
            }
            logger(&[
                "-n",
                "127.0.0.1",
                "-P",
                &port,
                "--tcp",
                "CEF:0|V|P|1|2|cef ok|3|externalId=ev-1",
            ]);
            assert!(wait_until(Duration::from_secs(20), || fwd
                .metric("mcas_forward_dead_lettered_total")
                == Some(3.0)));
            assert!(
                fwd.terminate(Duration::from_secs(20))
                    .expect("the forwarder exits")
                    .success()
            );
            fwd
        }
    })
    .await
    .unwrap();
    assert_eq!(emu.count(CSL), 1);
    let dl = dir.path().join("dead-letter.ndjson");
    let entries: Vec<Value> = std::fs::read_to_string(&dl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 3);
    assert!(
        entries
            .iter()
            .all(|e| e["reason"].as_str().unwrap().contains("not CEF"))
    );
    assert!(
        entries[0]["raw"]
            .as_str()
            .unwrap()
            .contains("plain message")
    );
    // A row the output once rejected (for example a DCR that lacked a column), added by hand
    // as the forwarder writes it.
    let mut f = std::fs::OpenOptions::new().append(true).open(&dl).unwrap();
    writeln!(
        f,
        r#"{{"time":"2024-01-01T00:00:00Z","reason":"refused by the service: 400","stream":"Custom-CommonSecurityLog","row":{{"TimeGenerated":"2024-01-01T00:00:00.000Z","DeviceVendor":"V","DeviceProduct":"P","ExtID":"ev-2"}}}}"#
    )
    .unwrap();
    writeln!(f, "not json at all").unwrap();
    drop(f);
    // Fix: route non-CEF to the Syslog stream, then replay.
    let fixed = cfg.replace(
        "stream = \"Custom-CommonSecurityLog\"",
        "stream = \"Custom-CommonSecurityLog\"\nsyslog_stream = \"Custom-Syslog\"",
    );
    let cfg_path = dir.path().join("fixed.toml");
    std::fs::write(
        &cfg_path,
        fixed
            .replace("{PORT}", "1")
            .replace("{METRICS}", "1")
            .replace("{DIR}", &dir.path().display().to_string()),
    )
    .unwrap();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run_cli(
            &["replay-dead-letter", "--config", cfg_path.to_str().unwrap()],
            None,
            &secret_env(),
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(
            "5 dead-letter entries: 4 rows delivered, 0 dead-lettered again, 1 unreadable"
        ),
        "{out}"
    );
    assert_eq!(emu.count("Syslog"), 3);
    let sys = emu.rows("Syslog");
    assert!(sys.iter().all(|r| r["ProcessName"] == "app"));
    assert_eq!(emu.count(CSL), 2);
    assert!(ids(&emu.rows(CSL)).contains(&2));
    // The unreadable line is kept, nothing else.
    let left = std::fs::read_to_string(&dl).unwrap();
    assert_eq!(left.trim(), "not json at all");
    drop(fwd);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_gets_a_token_and_sends_an_empty_batch() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            text.replace("{PORT}", "5514")
                .replace("{METRICS}", "9464")
                .replace("{DIR}", &dir.path().display().to_string()),
        )
        .unwrap();
        p
    };
    let good = write("good.toml", &cfg);
    let bad_dcr = write(
        "bad-dcr.toml",
        &cfg.replace(
            mcas_azure_emulator::DEFAULT_DCR_ID,
            "dcr-ffffffffffffffffffffffffffffffff",
        ),
    );
    let bad_secret = good.clone();
    let (a, b, c) = tokio::task::spawn_blocking(move || {
        (
            run_cli(
                &["validate", "--config", good.to_str().unwrap()],
                None,
                &secret_env(),
            ),
            run_cli(
                &["validate", "--config", bad_dcr.to_str().unwrap()],
                None,
                &secret_env(),
            ),
            run_cli(
                &["validate", "--config", bad_secret.to_str().unwrap()],
                None,
                &[("MCAS_FORWARD_CLIENT_SECRET", "wrong")],
            ),
        )
    })
    .await
    .unwrap();
    assert_eq!(a.0, 0, "{a:?}");
    assert!(a.1.contains("empty batch accepted"), "{a:?}");
    assert_eq!(b.0, 2, "{b:?}");
    assert!(
        b.2.contains("404") && b.2.contains("dcr_immutable_id"),
        "{b:?}"
    );
    assert_eq!(c.0, 2, "{c:?}");
    assert!(c.2.contains("authentication failed"), "{c:?}");
    assert_eq!(emu.count(CSL), 0, "an empty batch adds no row");
    emu.shutdown().await;
}

#[test]
fn config_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        ("[output]\nkind = \"logs-ingestion\"\n", "needs `endpoint`"),
        (
            "[output]\nkind = \"logs-ingestion\"\nendpoint = \"https://x.ingest.monitor.azure.com\"\ndcr_immutable_id = \"my-dcr\"\n",
            "must start with \"dcr-\"",
        ),
        (
            "[output]\nkind = \"logs-ingestion\"\nendpoint = \"https://x\"\ndcr_immutable_id = \"dcr-1\"\nstream = \"CommonSecurityLog\"\n",
            "must begin with \"Custom-\"",
        ),
        // The missing secret is no longer a file error: only the commands that talk to
        // Azure need it (tests/config_cli.rs). What `run` refuses, offline validation does.
        (
            "[output]\nkind = \"logs-ingestion\"\nendpoint = \"http://x\"\ndcr_immutable_id = \"dcr-1\"\n[output.auth]\nkind = \"client-secret\"\ntenant_id = \"t\"\nclient_id = \"c\"\n",
            "plain http:// is refused",
        ),
        (
            "[output]\nkind = \"stdout\"\nendpiont = \"x\"\n",
            "unknown field `endpiont`",
        ),
        ("[output]\nkind = \"splunk\"\n", "unknown variant `splunk`"),
        ("[output]\nkind = \"kafka\"\n", "Kafka"),
        (
            "[[listen]]\nprotocol = \"tcp\"\naddress = \"localhost\"\n[output]\nkind = \"stdout\"\n",
            "invalid socket address",
        ),
        (
            "[[listen]]\nprotocol = \"tls\"\naddress = \"127.0.0.1:6514\"\n[output]\nkind = \"stdout\"\n",
            "needs both `cert` and `key`",
        ),
        (
            "[[listen]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:1\"\nallow = [\"10.0.0.0/40\"]\n[output]\nkind = \"stdout\"\n",
            "bad prefix length",
        ),
        (
            "[spool]\nmax_bytes = \"10 GB\"\nwhen_full = \"drop-oldest\"\n[output]\nkind = \"stdout\"\n",
            "unknown variant `drop-oldest`",
        ),
        ("[output]\nkind = \"file\"\n", "needs `path`"),
        (
            "[mapping]\ntime_generated = \"yesterday\"\n[output]\nkind = \"stdout\"\n",
            "time_generated",
        ),
        (
            "[mapping.keys]\n\"ad.x\" = \"NotAColumn\"\n[output]\nkind = \"stdout\"\n",
            "[mapping]",
        ),
        (
            "[[listen]]\nprotocol = \"udp\"\naddress = \"127.0.0.1:5514\"\ntimezone = \"Mars/Base\"\n[output]\nkind = \"stdout\"\n",
            "unknown time zone",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&p, text).unwrap();
        let (code, _, err) = run_cli(
            &["validate", "--offline", "--config", p.to_str().unwrap()],
            None,
            &[("MCAS_FORWARD_CLIENT_SECRET", "")],
        );
        if code != 2 || !err.contains(want) || !err.contains(&p.display().to_string()) {
            failures.push(format!(
                "case {i}: want exit 2 and {want:?} naming the file; got {code}: {err}"
            ));
        }
    }
    let (code, _, err) = run_cli(
        &["validate", "--config", "/nonexistent/mcas.toml"],
        None,
        &[],
    );
    if code != 2 || !err.contains("cannot read the configuration file /nonexistent/mcas.toml") {
        failures.push(format!("missing file: {code}: {err}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn embedded_default_validates_and_the_example_config_parses() {
    let (code, out, err) = run_cli(&["validate"], None, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("the embedded default configuration: configuration OK"),
        "{out}"
    );
    assert!(
        out.contains("listen udp 127.0.0.1:5514") && out.contains("listen tcp 127.0.0.1:5514"),
        "{out}"
    );
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/config/mcas-forward.toml"
    );
    let started = Instant::now();
    let (code, out, err) = run_cli(
        &["validate", "--offline", "--config", example],
        None,
        &[("MCAS_FORWARD_CLIENT_SECRET", "example")],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_the_output_down_spools_everything_and_exits_0() {
    let emu = emulator().await;
    emu.set_faults(down());
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "")
        .replace("flush_interval = \"100ms\"", "flush_interval = \"60s\"")
        .replace("shutdown_grace = \"10s\"", "shutdown_grace = \"1s\"");
    let env = secret_env();
    let d = dir.path().to_owned();
    let n = 500;
    let spooled = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || {
            let mut fwd = forwarder(&d, &cfg, &env);
            let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
            let buf: String = (0..n).map(|i| line(i, 10)).collect();
            s.write_all(buf.as_bytes()).unwrap();
            assert!(wait_until(Duration::from_secs(20), || fwd
                .metric("mcas_forward_received_total")
                == Some(n as f64)));
            let st = fwd
                .terminate(Duration::from_secs(30))
                .expect("the forwarder exits");
            assert!(st.success(), "exit {st:?}; stderr:\n{}", fwd.stderr_text());
            assert!(
                fwd.stderr_text().contains("batches left in the spool"),
                "{}",
                fwd.stderr_text()
            );
            spooled_rows(&d.join("spool"))
        }
    })
    .await
    .unwrap();
    assert_eq!(spooled, n, "everything read is in the spool at exit");
    emu.set_faults(Faults::none());
    let fwd = start_forwarder(dir.path(), cfg).await;
    assert!(
        wait_until_async(Duration::from_secs(30), || emu.count(CSL) >= n).await,
        "{}",
        fwd.stderr_text()
    );
    let got: BTreeSet<usize> = ids(&emu.rows(CSL)).into_iter().collect();
    assert_eq!(got.len(), n);
    assert_eq!(emu.count(CSL), n, "no duplicates");
    drop(fwd);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_blocked_on_a_full_spool_still_spools_everything_read() {
    let emu = emulator().await;
    emu.set_faults(down());
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "")
        .replace(
            "[spool]\ndir = \"{DIR}/spool\"\n",
            "[spool]\ndir = \"{DIR}/spool\"\nmax_bytes = \"1MiB\"\n",
        )
        .replace(
            "flush_interval = \"100ms\"",
            "flush_interval = \"100ms\"\nqueue_capacity = 512\nbatch_max_rows = 200",
        )
        .replace("shutdown_grace = \"10s\"", "shutdown_grace = \"1s\"");
    let env = secret_env();
    let d = dir.path().to_owned();
    let (received, spooled) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || {
            let mut fwd = forwarder(&d, &cfg, &env);
            let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd.port)).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
            // Whole events until a write blocks: the pipeline is wedged on the full spool.
            let mut i = 0;
            loop {
                assert!(i < 100_000, "never pushed back");
                match s.write_all(line(i, 1000).as_bytes()) {
                    Ok(_) => i += 1,
                    Err(_) => break,
                }
            }
            drop(s);
            let st = fwd
                .terminate(Duration::from_secs(30))
                .expect("the forwarder exits");
            assert!(st.success(), "exit {st:?}; stderr:\n{}", fwd.stderr_text());
            let text = fwd.stderr_text();
            let received: usize = text
                .split("received=")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .expect("the stop line reports what was received");
            (received, spooled_rows(&d.join("spool")))
        }
    })
    .await
    .unwrap();
    // A message cut by the close of the connection mid-write is still a message.
    assert_eq!(spooled, received, "everything read was spooled at SIGTERM");
    emu.set_faults(Faults::none());
    let fwd = start_forwarder(dir.path(), cfg).await;
    assert!(
        wait_until_async(Duration::from_secs(60), || emu.count(CSL) >= received).await,
        "{}",
        fwd.stderr_text()
    );
    assert_eq!(emu.count(CSL), received);
    println!(
        "SIGTERM under back-pressure: {received} events read, {spooled} spooled at exit, all delivered after restart"
    );
    drop(fwd);
    emu.shutdown().await;
}
