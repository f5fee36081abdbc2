//! rsyslog as a relay in front of the forwarder: `omfwd` over TCP with octet-counted framing.
//! rsyslogd runs in the foreground with a private configuration on loopback; the system
//! service is never touched.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap too"
)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs rsyslog"]
async fn rsyslog_omfwd_octet_counted_reaches_the_emulator() {
    let rsyslogd = rsyslogd().expect("rsyslogd not found: apt-get install rsyslog");
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = emulator_config(&emu.base_url(), "");
    let fwd = start_forwarder(dir.path(), cfg).await;

    // rsyslog: imtcp on a private port in, omfwd octet-counted out to the forwarder.
    let relay_port = free_port();
    let work = dir.path().join("rsyslog-work");
    std::fs::create_dir_all(&work).unwrap();
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{relay_port}")
action(type="omfwd" target="127.0.0.1" port="{fwd_port}" protocol="tcp" TCP_Framing="octet-counted")
"#,
            work = work.display(),
            fwd_port = fwd.port,
        ),
    )
    .unwrap();
    // Stopped on every path, a failed assertion included.
    let mut rs = start_rsyslogd(&rsyslogd, &conf, dir.path());
    let up = wait_until_async(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", relay_port)).is_ok()
    })
    .await;
    assert!(
        up,
        "rsyslogd did not listen: {}",
        std::fs::read_to_string(dir.path().join("rsyslogd.err")).unwrap_or_default()
    );

    let n = 50;
    let port = relay_port.to_string();
    tokio::task::spawn_blocking(move || {
        for i in 0..n {
            let msg = format!(
                "CEF:0|MCAS|SIEM_Agent|0.112.68|EVENT_CATEGORY_LOGIN|Log on|0|externalId=rs-{i} suser=admin@contoso.com msg=relayed by rsyslog {i} cs2Label=uniqueServiceAppIds cs2=APPID_OUTLOOK"
            );
            logger(&["-n", "127.0.0.1", "-P", &port, "--tcp", "--rfc3164", "-t", "mcas", &msg]);
        }
    })
    .await
    .unwrap();
    let ok = wait_until_async(Duration::from_secs(30), || {
        emu.count("CommonSecurityLog") >= n
    })
    .await;
    rs.stop();
    assert!(
        ok,
        "rows {} of {n}; forwarder stderr:\n{}",
        emu.count("CommonSecurityLog"),
        fwd.stderr_text()
    );
    let rows = emu.rows("CommonSecurityLog");
    assert_eq!(rows.len(), n, "each event once");
    let ids: BTreeSet<String> = rows
        .iter()
        .map(|r| r["ExtID"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), n);
    for r in &rows {
        let id: usize = r["ExtID"].as_str().unwrap()["rs-".len()..].parse().unwrap();
        assert_eq!(r["DeviceVendor"], "MCAS");
        assert_eq!(r["DeviceProduct"], "SIEM_Agent");
        assert_eq!(r["Activity"], "Log on");
        assert_eq!(r["SourceUserName"], "admin@contoso.com");
        assert_eq!(r["Message"], format!("relayed by rsyslog {id}"));
        assert_eq!(r["DeviceCustomString2Label"], "uniqueServiceAppIds");
        assert_eq!(r["DeviceCustomString2"], "APPID_OUTLOOK");
        assert_eq!(
            r["Computer"],
            hostname().as_str(),
            "the HOSTNAME rsyslog forwards"
        );
    }
    drop(fwd);
    emu.shutdown().await;
}
