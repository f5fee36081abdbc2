//! Logs Ingestion API over loopback HTTP: success, every documented error path, storage modes
//! and the inspection endpoints.

mod common;

use common::{azure_code, gzip, http};
use mcas_azure_emulator::{
    Column, ColumnType, DEFAULT_CSL_STREAM, DEFAULT_DCR_ID, DEFAULT_SYSLOG_STREAM, Dcr,
    EmulatorConfig, Storage, Stream, TablePlan,
};
use serde_json::{Value, json};

const TWO_ROWS: &[u8] = br#"[
  {"TimeGenerated":"2026-01-02T03:04:05Z","DeviceVendor":"Microsoft","DeviceProduct":"MCAS","Activity":"Log on","EventCount":1,"ReceivedBytes":5000000000,"Unknown":"dropped"},
  {"DeviceVendor":"Microsoft","DeviceProduct":"MCAS","Activity":"Download","StartTime":"2026-01-02T03:00:00+01:00","MaliciousIPLatitude":47.5,"DeviceCustomNumber1":null}
]"#;

#[tokio::test]
async fn gzip_upload_stores_rows_with_declared_columns_only() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, TWO_ROWS).await;
    assert_eq!(a.status, 204, "{}", a.body);
    let rows = emu.rows("CommonSecurityLog");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["Activity"], "Log on");
    assert_eq!(rows[0]["TimeGenerated"], "2026-01-02T03:04:05Z");
    assert_eq!(rows[0]["ReceivedBytes"], 5_000_000_000i64);
    assert!(
        rows[0].get("Unknown").is_none(),
        "undeclared columns are dropped"
    );
    assert!(rows[0]["_IngestionTime"].is_string());
    assert_eq!(
        rows[1]["StartTime"], "2026-01-02T02:00:00Z",
        "datetimes normalised to UTC"
    );
    assert!(
        rows[1].get("DeviceCustomNumber1").is_none(),
        "null is absent"
    );
    assert!(
        rows[1]["TimeGenerated"].is_string(),
        "missing TimeGenerated = ingestion time"
    );

    // The same rows over HTTP, and the count.
    let got: Value = serde_json::from_slice(
        &http()
            .get(format!(
                "{}/_emulator/tables/CommonSecurityLog/rows",
                emu.base_url()
            ))
            .send()
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    assert_eq!(got, Value::Array(rows));
    let count: Value = serde_json::from_slice(
        &http()
            .get(format!(
                "{}/_emulator/tables/CommonSecurityLog/count",
                emu.base_url()
            ))
            .send()
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    assert_eq!(count, json!({"table": "CommonSecurityLog", "count": 2}));

    // Plain (uncompressed) bodies are accepted too; Syslog stream goes to Syslog.
    let resp = http()
        .post(emu.ingestion_url(DEFAULT_DCR_ID, DEFAULT_SYSLOG_STREAM))
        .bearer_auth(&tok)
        .header("Content-Type", "application/json")
        .header("x-ms-client-request-id", "6f1c0000-0000-4000-8000-000000000001")
        .body(r#"[{"Computer":"host1","Facility":"local4","SeverityLevel":"warning","SyslogMessage":"hi","ProcessID":42}]"#)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(emu.count("Syslog"), 1);
    assert_eq!(emu.rows("Syslog")[0]["ProcessID"], 42);

    let m = emu.metrics();
    assert_eq!(m.rows_by_table["CommonSecurityLog"], 2);
    assert_eq!(m.requests_by_status["204"], 2);
    assert!(
        m.bytes_decoded > m.bytes_received,
        "gzip'd body decoded larger"
    );
    let log = emu.requests();
    let last = log.last().expect("logged");
    assert_eq!(
        last.client_request_id.as_deref(),
        Some("6f1c0000-0000-4000-8000-000000000001")
    );
    assert_eq!(last.rows, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn field_values_over_64_kib_are_truncated() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    let long = "é".repeat(40_000); // 80,000 bytes
    let body =
        serde_json::to_vec(&json!([{ "Message": long, "DeviceVendor": "v" }])).expect("json");
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, &body).await;
    assert_eq!(a.status, 204, "{}", a.body);
    let msg = emu.rows("CommonSecurityLog")[0]["Message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert_eq!(msg.len(), 65_536);
    assert!(msg.chars().all(|c| c == 'é'));
    emu.shutdown().await;
}

async fn post_raw(
    emu: &mcas_azure_emulator::EmulatorHandle,
    url: String,
    auth: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> common::Answer {
    let mut req = http().post(url).body(body);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let _ = emu;
    common::answer(req.send().await.expect("send")).await
}

#[tokio::test]
async fn every_documented_error_path() {
    let mut config = EmulatorConfig::default();
    config.dcrs.push({
        let mut d = Dcr::new("dcr-restricted", vec![Stream::common_security_log()]);
        d.allowed_clients = Some(vec!["someone-else".to_owned()]);
        d
    });
    config.limits.ingestion_max_bytes = 4096;
    let emu = common::start(config).await;
    let tok = common::token(&emu).await;
    let bearer = format!("Bearer {tok}");
    let base = emu.base_url();
    let url = |dcr: &str, stream: &str, q: &str| {
        format!("{base}/dataCollectionRules/{dcr}/streams/{stream}{q}")
    };
    let good_q = "?api-version=2023-01-01";
    let json_ct = [("Content-Type", "application/json")];
    let body = br#"[{"DeviceVendor":"x"}]"#.to_vec();

    // api-version.
    let a = post_raw(
        &emu,
        url(DEFAULT_DCR_ID, DEFAULT_CSL_STREAM, ""),
        Some(&bearer),
        &json_ct,
        body.clone(),
    )
    .await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (400, "MissingApiVersionParameter")
    );
    let a = post_raw(
        &emu,
        url(
            DEFAULT_DCR_ID,
            DEFAULT_CSL_STREAM,
            "?api-version=2020-01-01",
        ),
        Some(&bearer),
        &json_ct,
        body.clone(),
    )
    .await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (400, "UnsupportedApiVersion")
    );
    // The older preview version is accepted.
    let a = post_raw(
        &emu,
        url(
            DEFAULT_DCR_ID,
            DEFAULT_CSL_STREAM,
            "?api-version=2021-11-01-preview",
        ),
        Some(&bearer),
        &json_ct,
        body.clone(),
    )
    .await;
    assert_eq!(a.status, 204);

    // 401s.
    let u = url(DEFAULT_DCR_ID, DEFAULT_CSL_STREAM, good_q);
    let a = post_raw(&emu, u.clone(), None, &json_ct, body.clone()).await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (401, "AuthenticationFailed")
    );
    let a = post_raw(&emu, u.clone(), Some("Basic abc"), &json_ct, body.clone()).await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (401, "AuthenticationFailed")
    );
    let a = post_raw(
        &emu,
        u.clone(),
        Some("Bearer not.a.token"),
        &json_ct,
        body.clone(),
    )
    .await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (401, "InvalidAuthenticationToken")
    );
    // A token from another emulator instance (another signing key) is not accepted.
    let other = common::start(EmulatorConfig::default()).await;
    let foreign = common::token(&other).await;
    other.shutdown().await;
    let a = post_raw(
        &emu,
        u.clone(),
        Some(&format!("Bearer {foreign}")),
        &json_ct,
        body.clone(),
    )
    .await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (401, "InvalidAuthenticationToken")
    );
    // Wrong audience: a token for the US Government monitor resource.
    let wrong_aud = emu.issue_token(
        mcas_azure_emulator::DEFAULT_CLIENT_ID,
        "https://monitor.azure.us",
    );
    let a = post_raw(
        &emu,
        u.clone(),
        Some(&format!("Bearer {wrong_aud}")),
        &json_ct,
        body.clone(),
    )
    .await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (401, "InvalidAuthenticationTokenAudience")
    );

    // 404 DCR, 403 role, 404 stream.
    let a = post_raw(
        &emu,
        url("dcr-unknown", DEFAULT_CSL_STREAM, good_q),
        Some(&bearer),
        &json_ct,
        body.clone(),
    )
    .await;
    assert_eq!((a.status, azure_code(&a).as_str()), (404, "NotFound"));
    let a = post_raw(
        &emu,
        url("dcr-restricted", DEFAULT_CSL_STREAM, good_q),
        Some(&bearer),
        &json_ct,
        body.clone(),
    )
    .await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (403, "OperationFailed")
    );
    assert!(
        a.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not have access to ingest data"))
    );
    let a = post_raw(
        &emu,
        url(DEFAULT_DCR_ID, "Custom-Nope", good_q),
        Some(&bearer),
        &json_ct,
        body.clone(),
    )
    .await;
    assert_eq!((a.status, azure_code(&a).as_str()), (404, "InvalidStream"));

    // Content-Type and Content-Encoding.
    let a = post_raw(
        &emu,
        u.clone(),
        Some(&bearer),
        &[("Content-Type", "text/plain")],
        body.clone(),
    )
    .await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (415, "UnsupportedMediaType")
    );
    let a = post_raw(
        &emu,
        u.clone(),
        Some(&bearer),
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "br"),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (400, "UnsupportedContentEncoding")
    );
    let a = post_raw(
        &emu,
        u.clone(),
        Some(&bearer),
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (400, "InvalidContentEncoding")
    );

    // 413 on the wire (limit lowered to 4096 bytes for this test).
    let big = serde_json::to_vec(&json!([{ "Message": "x".repeat(5000) }])).expect("json");
    let a = post_raw(&emu, u.clone(), Some(&bearer), &json_ct, big.clone()).await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (413, "ContentLengthLimitExceeded")
    );
    let msg = a.body["error"]["message"].as_str().expect("message");
    assert!(
        msg.starts_with("Maximum allowed content length: 4096 bytes"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("Provided content length: {} bytes", big.len())),
        "{msg}"
    );
    // 413 after decoding: small on the wire, too big once gunzipped.
    let zipped = gzip(&big);
    assert!(zipped.len() < 4096);
    let a = post_raw(
        &emu,
        u.clone(),
        Some(&bearer),
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        zipped,
    )
    .await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (413, "ContentLengthLimitExceeded")
    );
    assert!(
        a.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("Provided content length: {} bytes", big.len())))
    );

    // 400 body problems.
    let a = post_raw(
        &emu,
        u.clone(),
        Some(&bearer),
        &json_ct,
        b"[{\"DeviceVendor\":".to_vec(),
    )
    .await;
    assert_eq!((a.status, azure_code(&a).as_str()), (400, "InvalidPayload"));
    let a = post_raw(
        &emu,
        u.clone(),
        Some(&bearer),
        &json_ct,
        br#"{"DeviceVendor":"x"}"#.to_vec(),
    )
    .await;
    assert_eq!((a.status, azure_code(&a).as_str()), (400, "InvalidPayload"));
    let a = post_raw(&emu, u.clone(), Some(&bearer), &json_ct, br#"[1]"#.to_vec()).await;
    assert_eq!((a.status, azure_code(&a).as_str()), (400, "InvalidPayload"));
    let wrong_types = br#"[{"EventCount":"5","DeviceVendor":1},{"TimeGenerated":"yesterday","SourcePort":70000.5,"DeviceCustomNumber1":3000000000}]"#;
    let a = post_raw(
        &emu,
        u.clone(),
        Some(&bearer),
        &json_ct,
        wrong_types.to_vec(),
    )
    .await;
    assert_eq!((a.status, azure_code(&a).as_str()), (400, "InvalidPayload"));
    let details = a.body["error"]["details"].as_array().expect("details");
    let targets: Vec<_> = details
        .iter()
        .filter_map(|d| d["target"].as_str())
        .collect();
    assert_eq!(
        targets,
        [
            "[0].DeviceVendor",
            "[0].EventCount",
            "[1].TimeGenerated",
            "[1].SourcePort",
            "[1].DeviceCustomNumber1"
        ]
    );
    assert!(details.iter().all(|d| d["code"] == "InvalidColumnType"));

    // Nothing from the rejected requests was stored.
    assert_eq!(emu.count("CommonSecurityLog"), 1);
    let m = emu.metrics();
    for s in ["400", "401", "403", "404", "413", "415"] {
        assert!(
            m.requests_by_status.get(s).is_some_and(|n| *n > 0),
            "{s} counted"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn auxiliary_tables_enforce_the_time_range_rule() {
    let mut config = EmulatorConfig::default();
    config.dcrs.push(Dcr::new(
        "dcr-aux",
        vec![
            Stream::new(
                "Custom-Aux",
                "Aux_CL",
                vec![
                    Column::new("TimeGenerated", ColumnType::DateTime),
                    Column::new("Msg", ColumnType::String),
                    Column::new("Extra", ColumnType::Dynamic),
                ],
            )
            .with_plan(TablePlan::Auxiliary),
            Stream::new(
                "Custom-Plain",
                "Plain_CL",
                vec![Column::new("TimeGenerated", ColumnType::DateTime)],
            ),
        ],
    ));
    let emu = common::start(config).await;
    let tok = common::token(&emu).await;
    let send = |stream: &'static str, body: Value| {
        let url = emu.ingestion_url("dcr-aux", stream);
        let tok = tok.clone();
        async move {
            common::answer(
                http()
                    .post(url)
                    .bearer_auth(tok)
                    .header("Content-Type", "application/json")
                    .body(serde_json::to_vec(&body).expect("json"))
                    .send()
                    .await
                    .expect("send"),
            )
            .await
        }
    };
    let spread = json!([{"TimeGenerated":"2026-01-01T00:00:00Z","Msg":"a"},{"TimeGenerated":"2026-01-01T00:31:00Z","Msg":"b"}]);
    let a = send("Custom-Aux", spread.clone()).await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (400, "RecordsTimeRangeIsMoreThan30Minutes")
    );
    let a = send("Custom-Aux", json!([{"TimeGenerated":"2026-01-01T00:00:00Z","Extra":{"nested":[1]}},{"TimeGenerated":"2026-01-01T00:30:00Z"}])).await;
    assert_eq!(a.status, 204, "{}", a.body);
    // Nested JSON into a non-dynamic column is refused.
    let a = send("Custom-Aux", json!([{"Msg":{"nested":true}}])).await;
    assert_eq!((a.status, azure_code(&a).as_str()), (400, "InvalidPayload"));
    // The rule applies only to Auxiliary tables.
    let a = send("Custom-Plain", spread).await;
    assert_eq!(a.status, 204);
    assert_eq!(emu.rows("Aux_CL")[0]["Extra"], json!({"nested":[1]}));
    emu.shutdown().await;
}

#[tokio::test]
async fn counting_mode_counts_without_storing() {
    let mut config = EmulatorConfig::default();
    config.storage = Storage::CountOnly;
    let emu = common::start(config).await;
    let tok = common::token(&emu).await;
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, TWO_ROWS).await;
    assert_eq!(a.status, 204);
    let a = common::ingest(
        &emu,
        &tok,
        DEFAULT_CSL_STREAM,
        br#"[{"a":"},{"},{"b":[{},{}]},{}]"#,
    )
    .await;
    assert_eq!(a.status, 204);
    assert_eq!(emu.count("CommonSecurityLog"), 5);
    assert!(emu.rows("CommonSecurityLog").is_empty());
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, br#"{"not":"array"}"#).await;
    assert_eq!((a.status, azure_code(&a).as_str()), (400, "InvalidPayload"));
    emu.shutdown().await;
}

#[tokio::test]
async fn data_dir_storage_writes_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EmulatorConfig::default();
    config.storage = Storage::Dir(dir.path().to_owned());
    let emu = common::start(config).await;
    let tok = common::token(&emu).await;
    assert_eq!(
        common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, TWO_ROWS)
            .await
            .status,
        204
    );
    let text = std::fs::read_to_string(dir.path().join("CommonSecurityLog.jsonl")).expect("file");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["Activity"], "Download");
    assert!(lines[0]["_IngestionTime"].is_string());
    assert_eq!(emu.rows("CommonSecurityLog"), lines);
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_answer_404() {
    let emu = common::start(EmulatorConfig::default()).await;
    let a = common::answer(
        http()
            .get(format!("{}/nope", emu.base_url()))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!((a.status, azure_code(&a).as_str()), (404, "NotFound"));
    emu.shutdown().await;
}

/// A JSON array of exactly `len` bytes with one `Message` record.
fn body_of_len(len: usize) -> Vec<u8> {
    let overhead = r#"[{"Message":""}]"#.len();
    let mut s = String::from(r#"[{"Message":""#);
    s.extend(std::iter::repeat_n('m', len - overhead));
    s.push_str(r#""}]"#);
    assert_eq!(s.len(), len);
    s.into_bytes()
}

#[tokio::test]
async fn the_default_limit_is_exactly_1048576_bytes() {
    let mut config = EmulatorConfig::default();
    config.limits.ingestion_field_max_bytes = 2 * 1024 * 1024; // keep the row intact
    let emu = common::start(config).await;
    let tok = common::token(&emu).await;
    let url = emu.ingestion_url(DEFAULT_DCR_ID, DEFAULT_CSL_STREAM);
    let send = |body: Vec<u8>| {
        http()
            .post(url.clone())
            .bearer_auth(&tok)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let a = common::answer(send(body_of_len(1_048_576)).await.expect("send")).await;
    assert_eq!(a.status, 204, "{}", a.body);
    let a = common::answer(send(body_of_len(1_048_577)).await.expect("send")).await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (413, "ContentLengthLimitExceeded")
    );
    assert_eq!(
        a.body["error"]["message"],
        "Maximum allowed content length: 1048576 bytes (1 MB). Provided content length: 1048577 bytes."
    );
    // Compressed well under 1 MB, decoded one byte over: still 413.
    let zipped = gzip(&body_of_len(1_048_577));
    assert!(zipped.len() < 10_000);
    let a = common::answer(
        http()
            .post(url.clone())
            .bearer_auth(&tok)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body(zipped)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (a.status, azure_code(&a).as_str()),
        (413, "ContentLengthLimitExceeded")
    );
    assert_eq!(emu.count("CommonSecurityLog"), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn large_bodies_get_their_answer_not_a_broken_pipe() {
    let emu = common::start(EmulatorConfig::default()).await;
    let tok = common::token(&emu).await;
    let url = emu.ingestion_url(DEFAULT_DCR_ID, DEFAULT_CSL_STREAM);
    let big = body_of_len(3 * 1024 * 1024);
    for _ in 0..3 {
        let a = common::answer(
            http()
                .post(url.clone())
                .bearer_auth(&tok)
                .header("Content-Type", "application/json")
                .body(big.clone())
                .send()
                .await
                .expect("answer, not a transport error"),
        )
        .await;
        assert_eq!(
            (a.status, azure_code(&a).as_str()),
            (413, "ContentLengthLimitExceeded")
        );
        assert!(
            a.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("Provided content length: 3145728 bytes."))
        );
        // An early refusal (no token) with a big body is also read by the client.
        let a = common::answer(
            http()
                .post(url.clone())
                .header("Content-Type", "application/json")
                .body(big.clone())
                .send()
                .await
                .expect("answer"),
        )
        .await;
        assert_eq!(a.status, 401);
    }
    emu.shutdown().await;
}

/// A DCR's `transformKql` runs on every record before it is stored, as Azure runs it: here it
/// drops the `Download` records, removes a column and adds one.
#[tokio::test]
async fn transform_kql_filters_and_reshapes_before_storage() {
    let stream = Stream::common_security_log()
        .with_transform(
            "source\n| where Activity != \"Download\" // cost cut\n| project-away DeviceProduct\n| extend Note = strcat(DeviceVendor, '/', Activity)",
        )
        .unwrap();
    let mut cfg = EmulatorConfig::default();
    cfg.dcrs = vec![Dcr::new(DEFAULT_DCR_ID, vec![stream])];
    let emu = common::start(cfg).await;
    let tok = common::token(&emu).await;
    let a = common::ingest(&emu, &tok, DEFAULT_CSL_STREAM, TWO_ROWS).await;
    assert_eq!(a.status, 204, "{}", a.body);
    let rows = emu.rows("CommonSecurityLog");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["Activity"], "Log on");
    assert_eq!(rows[0]["Note"], "Microsoft/Log on");
    assert!(rows[0].get("DeviceProduct").is_none(), "projected away");
    assert_eq!(rows[0]["ReceivedBytes"], 5_000_000_000i64);
}

/// A transformation Azure would refuse is refused when the DCR is loaded, with its message.
#[test]
fn a_transform_outside_the_subset_is_refused_at_load() {
    let e = Stream::common_security_log()
        .with_transform("source | summarize count() by DeviceVendor")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("summarize is not supported in transformations"),
        "{e}"
    );
    let json = r#"{"properties":{"immutableId":"dcr-1","streamDeclarations":{"Custom-A":{"columns":[{"name":"Message","type":"string"}]}},"dataFlows":[{"streams":["Custom-A"],"outputStream":"Custom-A_CL","transformKql":"source | where Mesage has 'x'"}]}}"#;
    let e = Dcr::from_azure_json(json, None).unwrap_err().to_string();
    assert!(e.contains("Custom-A") && e.contains("Message"), "{e}");
}
