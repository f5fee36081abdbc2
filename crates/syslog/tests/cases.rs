//! Real-world lines beyond the shared vectors (the numbered corpus of the project's syslog
//! notes), one assertion block per case.

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use mcas_syslog::{Message, ParserConfig, Protocol};

fn p(input: &[u8]) -> Message<'_> {
    mcas_syslog::parse(input).expect("parses")
}

fn sd(m: &Message<'_>) -> Vec<(String, Vec<(String, String)>)> {
    m.structured_data()
        .iter()
        .map(|e| {
            let ps = e
                .params()
                .map(|(n, v)| (n.to_owned(), v.into_owned()))
                .collect();
            (e.id().to_owned(), ps)
        })
        .collect()
}

fn s(v: &str) -> String {
    v.to_owned()
}

#[test]
fn p3_origin_block_after_tag_stays_in_msg() {
    let m = p(br#"<46>Jan  5 15:33:03 plertrood-ThinkPad-X220 rsyslogd:  [origin software="rsyslogd"] start"#);
    assert_eq!(m.app_name(), Some("rsyslogd"));
    assert_eq!(m.msg(), br#" [origin software="rsyslogd"] start"#);
    assert!(m.structured_data().is_empty());
}

#[test]
fn p5_double_space_after_host_no_tag() {
    let m = p(br#"<46>Jan  5 15:33:03 plertrood-ThinkPad-X220  [software="rsyslogd"] start"#);
    assert_eq!(m.hostname(), Some("plertrood-ThinkPad-X220"));
    assert_eq!(m.app_name(), None);
    assert_eq!(m.msg(), br#" [software="rsyslogd"] start"#);
}

#[test]
fn p6_non_ascii_tokens_lose_nothing() {
    let m = p("<46>Jan 5 10:01:00 Übergröße außerplanmäßig größenordnungsmäßig".as_bytes());
    assert_eq!(m.timestamp_str(), Some("Jan 5 10:01:00"));
    assert_eq!(m.hostname(), None);
    assert_eq!(
        m.msg_lossy(),
        "Übergröße außerplanmäßig größenordnungsmäßig"
    );
}

#[test]
fn p7_garbage_is_all_message() {
    let m = p(b"complete and utter gobbledegook");
    assert_eq!(
        (m.facility(), m.timestamp_str(), m.hostname(), m.app_name()),
        (None, None, None, None)
    );
    assert_eq!(m.msg(), b"complete and utter gobbledegook");
}

#[test]
fn p9_malformed_sd_dropped_msg_kept() {
    let m = p(b"<13>1 2019-02-13T19:48:34+00:00 74794bfb6795 root 8449 - [incorrect x] qwerty");
    assert_eq!(m.protocol(), Protocol::Rfc5424);
    assert!(m.structured_data_malformed());
    assert!(m.structured_data().is_empty());
    assert_eq!(m.msg(), b"qwerty");
    let m = p(b"<13>1 2019-02-13T19:48:34Z h a p m [unterminated x=\"1\" rest");
    assert!(m.structured_data_malformed());
    assert_eq!(m.msg(), b"[unterminated x=\"1\" rest");
}

#[test]
fn p10_space_after_equals_and_p24_unquoted_value() {
    let m = p(br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource= "Application" eventID="1011"][examplePriority@32473 class="high"] BOMAn application event log entry..."#);
    assert_eq!(
        sd(&m),
        vec![
            (
                s("exampleSDID@32473"),
                vec![
                    (s("iut"), s("3")),
                    (s("eventSource"), s("Application")),
                    (s("eventID"), s("1011"))
                ]
            ),
            (s("examplePriority@32473"), vec![(s("class"), s("high"))]),
        ]
    );
    assert_eq!(m.msg(), b"BOMAn application event log entry...");
    let m = p(b"<189>1 2024-02-03T12:34:56Z host program pid msgid [foo bar=baz] message");
    assert_eq!(sd(&m), vec![(s("foo"), vec![(s("bar"), s("baz"))])]);
    assert_eq!(m.msg(), b"message");
}

#[test]
fn p15_space_after_pri_and_impossible_date() {
    let mut cfg = ParserConfig::new();
    cfg.reference_time("2019-03-01T00:00:00Z".parse().unwrap());
    let m = mcas_syslog::parse_with(
        &cfg,
        b"<134> Feb 29 14:07:19 myhostname sshd - - - this is my message",
    )
    .unwrap();
    assert_eq!(m.timestamp_str(), Some("Feb 29 14:07:19"));
    assert_eq!(m.hostname(), Some("myhostname"));
    assert_eq!(
        m.timestamp(),
        None,
        "2019 has no Feb 29: use the receive time"
    );
    cfg.reference_time("2020-03-01T00:00:00Z".parse().unwrap());
    let m =
        mcas_syslog::parse_with(&cfg, b"<134> Feb 29 14:07:19 myhostname sshd - - - x").unwrap();
    assert_eq!(m.timestamp().unwrap().to_string(), "2020-02-29T14:07:19Z");
}

#[test]
fn p22_p25_cisco_sequence_numbers() {
    let m = p(b"<189>65536: ");
    assert_eq!(m.sequence_id(), Some("65536"));
    assert_eq!(m.msg(), b"");
    let m = p(b"<189>16261: May 28 16:09:56.185: %SYS-5-CONFIG_I: Configured from console by adminsepp on vty0 (10.23.214.226)");
    assert_eq!((m.facility(), m.severity()), (Some(23), Some(5)));
    assert_eq!(m.sequence_id(), Some("16261"));
    assert_eq!(m.timestamp_str(), Some("May 28 16:09:56.185"));
    assert_eq!(m.hostname(), None);
    assert_eq!(m.app_name(), Some("%SYS-5-CONFIG_I"));
    assert_eq!(
        m.msg(),
        b"Configured from console by adminsepp on vty0 (10.23.214.226)"
    );
    assert_eq!(m.timestamp().unwrap().subsec_nanosecond(), 185_000_000);
}

#[test]
fn p26_weekday_prefix_is_skipped() {
    let m = p(b"<144>Tue Sep 23 11:40:01 taghost sample message");
    assert_eq!(m.timestamp_str(), Some("Sep 23 11:40:01"));
    assert_eq!(m.hostname(), Some("taghost"));
    assert_eq!(m.msg(), b"sample message");
}

#[test]
fn p27_no_timestamp_bracketed_level() {
    let m = p(b"<130> [ERROR] iapp_socket_task.c 399: iappSocketTask: iappRecvPkt returned error");
    assert_eq!((m.facility(), m.severity()), (Some(16), Some(2)));
    assert_eq!(
        (m.timestamp_str(), m.hostname(), m.app_name()),
        (None, None, None)
    );
    assert_eq!(
        m.msg(),
        b"[ERROR] iapp_socket_task.c 399: iappSocketTask: iappRecvPkt returned error"
    );
}

#[test]
fn p31_p34_cisco_asa_headers() {
    let m = p(
        b"<164>DummyHost ASA-FW %ASA-7-106010: Deny inbound TCP src inet:1.1.1.1 dst inet:2.2.2.2",
    );
    assert_eq!(m.hostname(), Some("DummyHost"));
    assert_eq!(
        m.msg(),
        b"ASA-FW %ASA-7-106010: Deny inbound TCP src inet:1.1.1.1 dst inet:2.2.2.2"
    );
    let m = p(b"Apr  5 14:46:54 ASADEVICE : %ASA-6-302021: Teardown ICMP connection");
    assert_eq!(m.hostname(), Some("ASADEVICE"));
    assert_eq!(m.app_name(), Some("%ASA-6-302021"));
    assert_eq!(m.msg(), b"Teardown ICMP connection");
    let m = p(b"Dec 15 2021 09:34:34 EDT: %ASA-session-5-106100: access-list acl_in permitted");
    assert_eq!(m.timestamp_str(), Some("Dec 15 2021 09:34:34"));
    assert_eq!(m.hostname(), None);
    assert_eq!(m.app_name(), Some("EDT"));
}

#[test]
fn p38_full_month_name() {
    let m = p(b"July 16 10:34:23 host.domain.com KSMG: CEF:0|AO Kaspersky Lab|KSMG|2.1|X|y|1|a=b");
    assert_eq!(m.timestamp_str(), Some("July 16 10:34:23"));
    assert_eq!(m.hostname(), Some("host.domain.com"));
    assert_eq!(m.app_name(), Some("KSMG"));
    assert!(m.msg().starts_with(b"CEF:0|"));
}

#[test]
fn p39_zone_word_without_the_opt_in_rule_keeps_the_payload() {
    let m = p(b"Jan 23 12:10:16 UTC egs-001 CEF:0|OPSWAT|MDEMAIL|5.7.4|email.workflow|Sending email|2|a=b");
    assert_eq!(m.hostname(), Some("UTC"));
    assert!(
        m.msg()
            .ends_with(b"CEF:0|OPSWAT|MDEMAIL|5.7.4|email.workflow|Sending email|2|a=b")
    );
}

#[test]
fn invalid_pri_is_no_pri() {
    for line in [
        &b"<192>Oct 11 22:14:15 h a: x"[..],
        b"<1234>Oct 11 22:14:15 h a: x",
        b"<>x",
        b"<abc>x",
    ] {
        let m = p(line);
        assert_eq!(m.facility(), None, "{:?}", String::from_utf8_lossy(line));
        assert_eq!(m.raw(), line);
        assert!(!m.msg().is_empty());
    }
}

#[test]
fn broken_5424_falls_back_to_3164() {
    // Version 1 but the timestamp has no offset: not RFC 5424, read tolerantly.
    let m = p(b"<13>1 2024-01-01T00:00:00 host app - - - hello");
    assert_eq!(m.protocol(), Protocol::Rfc3164);
    assert_eq!(m.facility(), Some(1));
    assert!(m.msg().ends_with(b"hello"));
    // APP-NAME longer than 48 characters.
    let long = format!("<13>1 - host {} - - - hi", "a".repeat(49));
    assert_eq!(p(long.as_bytes()).protocol(), Protocol::Rfc3164);
}

#[test]
fn year_inference_and_default_zone() {
    let mut cfg = ParserConfig::new();
    cfg.reference_time("2017-12-13T12:00:00Z".parse().unwrap())
        .default_zone(TimeZone::fixed(Offset::constant(1)));
    let m = mcas_syslog::parse_with(&cfg, b"<13>Jan  3 17:46:12.000 host app: x").unwrap();
    assert_eq!(m.timestamp().unwrap().to_string(), "2018-01-03T16:46:12Z");
    let m = mcas_syslog::parse_with(&cfg, b"<13>Oct  1 17:46:12 host app: x").unwrap();
    assert_eq!(m.timestamp().unwrap().to_string(), "2017-10-01T16:46:12Z");
    cfg.reference_time("2018-01-03T12:00:00Z".parse().unwrap());
    let m = mcas_syslog::parse_with(&cfg, b"<13>Dec 31 17:46:12 host app: x").unwrap();
    assert_eq!(m.timestamp().unwrap().to_string(), "2017-12-31T16:46:12Z");
    // An explicit offset wins over the default zone.
    let m = mcas_syslog::parse_with(&cfg, b"<13>2018-03-25T02:00:00+01:00 host app: x").unwrap();
    assert_eq!(m.timestamp().unwrap().to_string(), "2018-03-25T01:00:00Z");
    // A zone-less ISO stamp is read in the default zone.
    let m = mcas_syslog::parse_with(&cfg, b"<13>2018-03-25T02:00:00 host app: x").unwrap();
    assert_eq!(m.timestamp().unwrap().to_string(), "2018-03-25T01:00:00Z");
    // Linksys: year after the time, only when asked for.
    cfg.year_after_time(true);
    let m = mcas_syslog::parse_with(&cfg, b"<13>Dec  3 09:10:12 2019 host app: x").unwrap();
    assert_eq!(m.timestamp_str(), Some("Dec  3 09:10:12 2019"));
    assert_eq!(m.hostname(), Some("host"));
    assert_eq!(m.timestamp().unwrap().to_string(), "2019-12-03T08:10:12Z");
}

#[test]
fn into_owned_outlives_the_input() {
    let owned = {
        let input =
            b"<165>1 2003-10-11T22:14:15.003Z h app 1 ID [a@1 k=\"v\\\"w\"] \xEF\xBB\xBFmsg"
                .to_vec();
        let m = p(&input);
        m.into_owned()
    };
    assert_eq!(owned.hostname(), Some("h"));
    assert_eq!(
        owned
            .structured_data()
            .get("a@1")
            .unwrap()
            .param("k")
            .as_deref(),
        Some("v\"w")
    );
    assert_eq!(owned.msg(), b"msg");
    assert!(owned.had_bom());
    assert_eq!(
        owned.timestamp(),
        Some("2003-10-11T22:14:15.003Z".parse::<Timestamp>().unwrap())
    );
}

#[test]
fn datagram_strips_one_trailer() {
    assert_eq!(mcas_syslog::datagram(b"<13>a\n"), b"<13>a");
    assert_eq!(mcas_syslog::datagram(b"<13>a\r\n"), b"<13>a");
    assert_eq!(mcas_syslog::datagram(b"<13>a\0"), b"<13>a");
    assert_eq!(mcas_syslog::datagram(b"<13>a\n\n"), b"<13>a\n");
    assert_eq!(mcas_syslog::datagram(b"<13>a\nb"), b"<13>a\nb");
    assert_eq!(mcas_syslog::datagram(b""), b"");
    assert!(mcas_syslog::parse(mcas_syslog::datagram(b"\n")).is_err());
}

#[test]
fn encoders_write_the_rfc_shapes() {
    let m = p(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed");
    let mut out = Vec::new();
    m.encode_rfc3164(&mut out);
    assert_eq!(out, b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed");
    let mut cfg = ParserConfig::new();
    cfg.reference_time("2024-11-01T00:00:00Z".parse().unwrap());
    let m = mcas_syslog::parse_with(&cfg, b"<34>Oct 11 22:14:15 mymachine su[7]: hi").unwrap();
    let mut out = Vec::new();
    m.encode_rfc5424(&mut out);
    assert_eq!(out, b"<34>1 2024-10-11T22:14:15Z mymachine su 7 - - hi");
    let m = p(b"CEF:0|a|b|c|d|e|f|");
    let mut out = bytes::BytesMut::new();
    m.encode_rfc5424(&mut out);
    assert_eq!(&out[..], b"<13>1 - - - - - - CEF:0|a|b|c|d|e|f|");
}
