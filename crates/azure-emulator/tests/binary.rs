//! The `azure-emulator` binary, started as a user would: the README's flow (token, gzip'd
//! two-row upload, rows read back), once with reqwest and once with the README's exact curl
//! commands (ignored by default: needs curl, gzip and sed).

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use mcas_azure_emulator::{DEFAULT_CSL_STREAM, DEFAULT_DCR_ID};
use serde_json::Value;

struct Running {
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_azure-emulator"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("first line");
    // Keep reading: the binary prints more lines after the first, and a closed pipe would make
    // its next `println!` fail and end it.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let base = line.trim().rsplit(' ').next().expect("url").to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    Running { child, base }
}

#[tokio::test]
async fn binary_serves_the_readme_flow_and_writes_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("emulator-data");
    let run = spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().expect("utf-8"),
    ]);
    let http = common::http();
    let tenant = mcas_azure_emulator::DEFAULT_TENANT_ID;
    let resp = http
        .post(format!("{}/{tenant}/oauth2/v2.0/token", run.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", mcas_azure_emulator::DEFAULT_CLIENT_ID),
            ("client_secret", mcas_azure_emulator::DEFAULT_CLIENT_SECRET),
            ("scope", "https://monitor.azure.com//.default"),
        ])
        .send()
        .await
        .expect("token");
    let body: Value = serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json");
    let token = body["access_token"].as_str().expect("token");
    let rows = br#"[{"DeviceVendor":"Microsoft","Activity":"Log on"},{"DeviceVendor":"Microsoft","Activity":"Download"}]"#;
    let resp = http
        .post(format!(
            "{}/dataCollectionRules/{DEFAULT_DCR_ID}/streams/{DEFAULT_CSL_STREAM}?api-version=2023-01-01",
            run.base
        ))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(common::gzip(rows))
        .send()
        .await
        .expect("ingest");
    assert_eq!(resp.status().as_u16(), 204);
    let got: Value = serde_json::from_slice(
        &http
            .get(format!(
                "{}/_emulator/tables/CommonSecurityLog/rows",
                run.base
            ))
            .send()
            .await
            .expect("rows")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    let acts: Vec<_> = got
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["Activity"].clone())
        .collect();
    assert_eq!(acts, [Value::from("Log on"), Value::from("Download")]);
    let text =
        std::fs::read_to_string(data.join("CommonSecurityLog.jsonl")).expect("jsonl written");
    assert_eq!(text.lines().count(), 2);
}

/// The shell block of the README that follows "In another shell", with the port replaced.
fn readme_flow(port: u16) -> String {
    let readme = include_str!("../README.md");
    let start = readme.find("In another shell").expect("section");
    let block = &readme[start..];
    let open = block.find("```sh\n").expect("sh block") + "```sh\n".len();
    let close = block[open..].find("```").expect("end") + open;
    block[open..close].replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
}

#[test]
#[ignore = "needs curl, gzip and sed"]
fn readme_curl_commands_work_against_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = spawn(&["--listen", "127.0.0.1:0"]);
    let port: u16 = run
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let script = readme_flow(port);
    assert!(script.contains("curl") && script.contains("gzip"));
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("HTTP/1.1 204 No Content"), "{stdout}");
    assert!(
        stdout.contains(r#""Activity":"Log on""#) && stdout.contains(r#""Activity":"Download""#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"{"count":2,"table":"CommonSecurityLog"}"#),
        "{stdout}"
    );
}

/// Logs go to stderr, and a stderr that is a file gets no ANSI colour codes; stdout (the
/// banner) and the data files hold none either.
#[tokio::test]
async fn logs_redirected_to_a_file_hold_no_escape_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("emulator-data");
    let err_path = dir.path().join("stderr.log");
    let err_file = std::fs::File::create(&err_path).expect("stderr file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_azure-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().expect("utf-8"),
        ])
        .env("RUST_LOG", "debug")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err_file))
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).expect("first line");
    let banner = std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut reader, &mut rest);
        rest
    });
    let base = first.trim().rsplit(' ').next().expect("url").to_owned();
    let http = common::http();
    // A refused token request and an upload: both are logged at debug.
    let _ = http
        .post(format!(
            "{base}/{}/oauth2/v2.0/token",
            mcas_azure_emulator::DEFAULT_TENANT_ID
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
        ])
        .send()
        .await
        .expect("token request");
    let _ = http
        .post(format!(
            "{base}/dataCollectionRules/{DEFAULT_DCR_ID}/streams/{DEFAULT_CSL_STREAM}?api-version=2023-01-01"
        ))
        .body("[]")
        .send()
        .await
        .expect("ingest request");
    let _ = child.kill();
    let _ = child.wait();
    let rest = banner.join().expect("reader");
    let logs = std::fs::read(&err_path).expect("stderr log");
    let text = String::from_utf8_lossy(&logs);
    assert!(text.contains("azure emulator listening"), "{text}");
    assert!(text.contains("request"), "{text}");
    assert!(
        !logs.contains(&0x1b),
        "escape codes in the log file: {text:?}"
    );
    let mut out = first.into_bytes();
    out.extend_from_slice(&rest);
    assert!(
        !out.contains(&0x1b),
        "escape codes on stdout: {:?}",
        String::from_utf8_lossy(&out)
    );
    for entry in std::fs::read_dir(&data).into_iter().flatten().flatten() {
        let bytes = std::fs::read(entry.path()).expect("data file");
        assert!(!bytes.contains(&0x1b), "{}", entry.path().display());
    }
}
