//! HTTP Data Collector API over loopback: success, suffixed columns, every documented error.

mod common;

use std::time::{Duration, SystemTime};

use mcas_azure_emulator::signature::{sign, string_to_sign};
use mcas_azure_emulator::{
    DEFAULT_SHARED_KEY, DEFAULT_WORKSPACE_ID, EmulatorConfig, EmulatorHandle, Workspace,
};
use serde_json::{Value, json};

struct Req<'a> {
    api_version: Option<&'a str>,
    content_type: Option<&'a str>,
    signed_content_type: Option<&'a str>,
    log_type: Option<&'a str>,
    date: Option<String>,
    workspace: &'a str,
    key: &'a str,
    auth: Option<String>,
    host: Option<String>,
    extra: Vec<(&'a str, &'a str)>,
    body: Vec<u8>,
}

impl Default for Req<'_> {
    fn default() -> Self {
        Self {
            api_version: Some("2016-04-01"),
            content_type: Some("application/json"),
            signed_content_type: None,
            log_type: Some("Demo"),
            date: Some(httpdate::fmt_http_date(SystemTime::now())),
            workspace: DEFAULT_WORKSPACE_ID,
            key: DEFAULT_SHARED_KEY,
            auth: None,
            host: None,
            extra: Vec::new(),
            body: br#"[{"Computer":"fw01","Count":3}]"#.to_vec(),
        }
    }
}

async fn send(emu: &EmulatorHandle, r: Req<'_>) -> common::Answer {
    let mut url = format!("{}/api/logs", emu.base_url());
    if let Some(v) = r.api_version {
        url.push_str(&format!("?api-version={v}"));
    }
    let mut req = common::http().post(url);
    if let Some(ct) = r.content_type {
        req = req.header("Content-Type", ct);
    }
    if let Some(lt) = r.log_type {
        req = req.header("Log-Type", lt);
    }
    let date = r
        .date
        .clone()
        .unwrap_or_else(|| httpdate::fmt_http_date(SystemTime::now()));
    if r.date.is_some() {
        req = req.header("x-ms-date", date.clone());
    }
    let auth = r.auth.clone().unwrap_or_else(|| {
        let ct = r
            .signed_content_type
            .or(r.content_type)
            .unwrap_or("application/json");
        let sig = sign(r.key, &string_to_sign(r.body.len() as u64, ct, &date)).expect("key");
        format!("SharedKey {}:{sig}", r.workspace)
    });
    req = req.header("Authorization", auth);
    if let Some(h) = r.host {
        req = req.header("Host", h);
    }
    for (k, v) in r.extra {
        req = req.header(k, v);
    }
    common::answer(req.body(r.body).send().await.expect("send")).await
}

fn code(a: &common::Answer) -> (u16, String) {
    (
        a.status,
        a.body["Error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn accepted_rows_land_in_cl_table_with_suffixed_columns() {
    let emu = common::start(EmulatorConfig::default()).await;
    let a = send(&emu, Req::default()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let body = json!([
        {"Name":"a","Flag":true,"When":"2026-01-02T03:04:05Z","Id":"0123456789ABCDEF0123456789ABCDEF","Nested":{"x":1},"Gone":null},
        {"Name":7,"Count":"not a number"}
    ]);
    let a = send(
        &emu,
        Req {
            log_type: Some("Typed"),
            body: serde_json::to_vec(&body).expect("json"),
            ..Req::default()
        },
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let rows = emu.rows("Typed_CL");
    assert_eq!(rows[0]["Name_s"], "a");
    assert_eq!(rows[0]["Flag_b"], true);
    assert_eq!(rows[0]["When_t"], "2026-01-02T03:04:05Z");
    assert_eq!(rows[0]["Id_g"], "01234567-89ab-cdef-0123-456789abcdef");
    assert_eq!(rows[0]["Nested_s"], r#"{"x":1}"#);
    assert!(rows[0].get("Gone_s").is_none());
    // A number converts to the existing string column; a string that is not a number for a
    // new property is simply a string column.
    assert_eq!(rows[1]["Name_s"], "7");
    assert_eq!(rows[1]["Count_s"], "not a number");
    let first = emu.rows("Demo_CL");
    assert_eq!(first[0]["Computer_s"], "fw01");
    assert_eq!(first[0]["Count_d"], 3);
    // A later string value for Count (a _d column in Demo_CL) gets a new _s column.
    let a = send(
        &emu,
        Req {
            body: br#"[{"Count":"three"}]"#.to_vec(),
            ..Req::default()
        },
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(emu.rows("Demo_CL")[1]["Count_s"], "three");
    emu.shutdown().await;
}

#[tokio::test]
async fn time_generated_field_resource_id_and_truncation() {
    let emu = common::start(EmulatorConfig::default()).await;
    let recent = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .expect("ts");
    let old = "2020-01-01T00:00:00Z";
    let long = "x".repeat(40_000);
    let body = serde_json::to_vec(&json!([
        {"ts": recent.to_string(), "Msg": long},
        {"ts": old},
    ]))
    .expect("json");
    let a = send(
        &emu,
        Req {
            body,
            extra: vec![
                ("time-generated-field", "ts"),
                (
                    "x-ms-AzureResourceId",
                    "/subscriptions/s/resourceGroups/r/providers/x/y/fw",
                ),
            ],
            ..Req::default()
        },
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let rows = emu.rows("Demo_CL");
    assert_eq!(rows[0]["TimeGenerated"], recent.to_string());
    assert_ne!(
        rows[1]["TimeGenerated"], old,
        "older than 2 days: ingestion time instead"
    );
    assert_eq!(
        rows[0]["ts_t"],
        recent.to_string(),
        "the field stays a column"
    );
    assert_eq!(rows[0]["Msg_s"].as_str().map(str::len), Some(32 * 1024));
    assert_eq!(
        rows[0]["_ResourceId"],
        "/subscriptions/s/resourceGroups/r/providers/x/y/fw"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn every_documented_error_code() {
    let mut config = EmulatorConfig::default();
    let mut closed = Workspace::new("99999999-1111-2222-3333-444444444444", DEFAULT_SHARED_KEY);
    closed.inactive = true;
    config.workspaces.push(closed);
    config.limits.collector_max_bytes = 2048;
    let emu = common::start(config).await;

    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    api_version: None,
                    ..Req::default()
                }
            )
            .await
        ),
        (400, "MissingApiVersion".into())
    );
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    api_version: Some("2023-01-01"),
                    ..Req::default()
                }
            )
            .await
        ),
        (400, "InvalidApiVersion".into())
    );
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    content_type: None,
                    ..Req::default()
                }
            )
            .await
        ),
        (400, "MissingContentType".into())
    );
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    content_type: Some("text/plain"),
                    ..Req::default()
                }
            )
            .await
        ),
        (400, "UnsupportedContentType".into())
    );
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    log_type: None,
                    ..Req::default()
                }
            )
            .await
        ),
        (400, "MissingLogType".into())
    );
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    log_type: Some("bad-name"),
                    ..Req::default()
                }
            )
            .await
        ),
        (400, "InvalidLogType".into())
    );
    let long_type = "A".repeat(101);
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    log_type: Some(&long_type),
                    ..Req::default()
                }
            )
            .await
        ),
        (400, "InvalidLogType".into())
    );
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    workspace: "12345678-1111-2222-3333-444444444444",
                    ..Req::default()
                }
            )
            .await
        ),
        (400, "InvalidCustomerId".into())
    );
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    workspace: "99999999-1111-2222-3333-444444444444",
                    ..Req::default()
                }
            )
            .await
        ),
        (400, "InactiveCustomer".into())
    );

    let forbidden = (403, "InvalidAuthorization".to_owned());
    // Wrong key, scheme, missing date, stale date, content type signed differently.
    let other_key =
        "SERsIYhgMVlJB6uPsq49gCxNiruf6v0vhMYE+lfzbSGcXjdViZdV/e5pEMTYtw9f8SkVLf4LFlLCc2KxtRZfCA==";
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    key: other_key,
                    ..Req::default()
                }
            )
            .await
        ),
        forbidden
    );
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    auth: Some("Bearer abc".into()),
                    ..Req::default()
                }
            )
            .await
        ),
        forbidden
    );
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    date: None,
                    ..Req::default()
                }
            )
            .await
        ),
        forbidden
    );
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    date: Some("yesterday".into()),
                    ..Req::default()
                }
            )
            .await
        ),
        forbidden
    );
    let stale = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(16 * 60));
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    date: Some(stale),
                    ..Req::default()
                }
            )
            .await
        ),
        forbidden
    );
    let ahead = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(16 * 60));
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    date: Some(ahead),
                    ..Req::default()
                }
            )
            .await
        ),
        forbidden
    );
    let within = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(14 * 60));
    assert_eq!(
        send(
            &emu,
            Req {
                date: Some(within),
                ..Req::default()
            }
        )
        .await
        .status,
        200
    );
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    content_type: Some("application/json; charset=utf-8"),
                    signed_content_type: Some("application/json"),
                    ..Req::default()
                }
            )
            .await
        ),
        forbidden,
        "the doc's charset pitfall"
    );
    // Signed over the literal header value, charset and all, it is accepted.
    assert_eq!(
        send(
            &emu,
            Req {
                content_type: Some("application/json; charset=utf-8"),
                ..Req::default()
            }
        )
        .await
        .status,
        200
    );
    // Host names another workspace than the signature.
    let host = format!(
        "{}.ods.opinsights.azure.com",
        "99999999-1111-2222-3333-444444444444"
    );
    assert_eq!(
        code(
            &send(
                &emu,
                Req {
                    host: Some(host),
                    ..Req::default()
                }
            )
            .await
        ),
        forbidden
    );
    // Host naming the signed workspace is fine.
    let host = format!("{DEFAULT_WORKSPACE_ID}.ods.opinsights.azure.com");
    assert_eq!(
        send(
            &emu,
            Req {
                host: Some(host),
                ..Req::default()
            }
        )
        .await
        .status,
        200
    );

    // Too large (limit lowered to 2 KiB): the documented 404.
    let big = serde_json::to_vec(&json!([{ "Msg": "x".repeat(3000) }])).expect("json");
    assert_eq!(
        send(
            &emu,
            Req {
                body: big,
                ..Req::default()
            }
        )
        .await
        .status,
        404
    );

    let bad = |body: &str| Req {
        body: body.as_bytes().to_vec(),
        ..Req::default()
    };
    for body in [
        r#"[{"a":"#,
        r#""text""#,
        r#"[1]"#,
        r#"[{"bad-name":1}]"#,
        r#"[{"TimeGenerated":"x"}]"#,
        r#"[{"RawData":"x"}]"#,
        r#"[{"tenant":"x"}]"#,
    ] {
        assert_eq!(
            code(&send(&emu, bad(body)).await),
            (400, "InvalidDataFormat".into()),
            "{body}"
        );
    }
    // Nothing from rejected requests was stored, no columns were created by them.
    assert_eq!(emu.count("Demo_CL"), 3);
    let rows = emu.rows("Demo_CL");
    assert!(rows.iter().all(|r| {
        r.as_object()
            .is_some_and(|o| o.keys().all(|k| !k.starts_with("bad")))
    }));
    let statuses: Vec<Value> = emu
        .requests()
        .iter()
        .filter_map(|r| r.status)
        .map(|s| json!(s))
        .collect();
    assert!(statuses.contains(&json!(404)));
    emu.shutdown().await;
}

#[tokio::test]
async fn column_limit_overflows_into_additional_fields() {
    let mut config = EmulatorConfig::default();
    config.limits.collector_max_columns = 3;
    let emu = common::start(config).await;
    let a = send(
        &emu,
        Req {
            body: br#"[{"A":1,"B":2,"C":3,"D":4}]"#.to_vec(),
            ..Req::default()
        },
    )
    .await;
    assert_eq!(a.status, 200);
    let row = &emu.rows("Demo_CL")[0];
    assert_eq!(row["A_d"], 1);
    assert_eq!(row["C_d"], 3);
    assert_eq!(row["AdditionalFields"], json!({"D": 4}));
    emu.shutdown().await;
}
