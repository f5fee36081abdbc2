//! Property tests: encode → parse round trips for RFC 5424 and RFC 3164, and parsing
//! arbitrary bytes never panics.

use jiff::Timestamp;
use mcas_syslog::{MessageBuilder, ParserConfig, Protocol};
use proptest::prelude::*;

fn print_ascii(max: usize) -> impl Strategy<Value = String> {
    // PRINTUSASCII, never the lone NILVALUE `-`.
    proptest::string::string_regex(&format!("[!-~]{{1,{max}}}"))
        .expect("regex")
        .prop_filter("not NILVALUE", |s| s != "-")
}

fn sd_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[!#-<>-\\\\^-~]{1,32}").expect("regex")
}

fn timestamp_micros() -> impl Strategy<Value = Timestamp> {
    // 1970..2100, microsecond precision (RFC 5424 allows six fraction digits).
    (0i64..4_102_444_800, 0i32..1_000_000)
        .prop_map(|(s, us)| Timestamp::new(s, us * 1000).expect("in range"))
}

type Sd = Vec<(String, Vec<(String, String)>)>;

fn structured_data() -> impl Strategy<Value = Sd> {
    proptest::collection::vec(
        (
            sd_name(),
            proptest::collection::vec((sd_name(), any::<String>()), 0..4),
        ),
        0..3,
    )
}

fn config() -> ParserConfig {
    let mut cfg = ParserConfig::new();
    cfg.reference_time("2024-06-15T12:00:00Z".parse().expect("timestamp"));
    cfg
}

proptest! {
    #[test]
    fn rfc5424_round_trip(
        pri in 0u8..=191,
        ts in proptest::option::of(timestamp_micros()),
        host in proptest::option::of(print_ascii(255)),
        app in proptest::option::of(print_ascii(48)),
        pid in proptest::option::of(print_ascii(128)),
        msgid in proptest::option::of(print_ascii(32)),
        sd in structured_data(),
        msg in proptest::collection::vec(any::<u8>(), 0..200),
        bom in any::<bool>(),
    ) {
        let mut b = MessageBuilder::new();
        b.priority(pri).msg(&msg).bom(bom);
        if let Some(ts) = ts { b.timestamp(ts); }
        if let Some(h) = &host { b.hostname(h); }
        if let Some(a) = &app { b.app_name(a); }
        if let Some(p) = &pid { b.proc_id(p); }
        if let Some(m) = &msgid { b.msg_id(m); }
        let params: Vec<Vec<(&str, &str)>> = sd
            .iter()
            .map(|(_, ps)| ps.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
            .collect();
        for ((id, _), ps) in sd.iter().zip(&params) {
            b.sd_element(id, ps);
        }
        let mut out = Vec::new();
        b.encode_rfc5424(&mut out);

        let m = mcas_syslog::parse_with(&config(), &out).expect("parses");
        prop_assert_eq!(m.protocol(), Protocol::Rfc5424);
        prop_assert_eq!(m.priority(), Some(pri));
        prop_assert_eq!(m.timestamp(), ts);
        prop_assert_eq!(m.hostname(), host.as_deref());
        prop_assert_eq!(m.app_name(), app.as_deref());
        prop_assert_eq!(m.proc_id(), pid.as_deref());
        prop_assert_eq!(m.msg_id(), msgid.as_deref());
        prop_assert_eq!(m.msg(), &msg[..]);
        prop_assert_eq!(m.had_bom(), bom || msg.starts_with(b"\xEF\xBB\xBF"));
        let got: Sd = m
            .structured_data()
            .iter()
            .map(|e| {
                let ps = e.params().map(|(n, v)| (n.to_owned(), v.into_owned())).collect();
                (e.id().to_owned(), ps)
            })
            .collect();
        prop_assert_eq!(got, sd);

        // Message → encode → parse gives the same message, owned or not.
        let mut again = Vec::new();
        m.encode_rfc5424(&mut again);
        prop_assert_eq!(&again, &out);
        let owned = m.clone().into_owned();
        prop_assert_eq!(&owned, &m);
    }

    #[test]
    fn rfc3164_round_trip(
        pri in 0u8..=191,
        secs in proptest::option::of(0i64..4_102_444_800),
        host in proptest::option::of("[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?"),
        tag in "[A-Za-z][A-Za-z0-9_/.%-]{0,20}",
        pid in proptest::option::of("[0-9A-Za-z]{1,6}"),
        msg in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        prop_assume!(tag != "CEF");
        let mut b = MessageBuilder::new();
        b.priority(pri).app_name(&tag).msg(&msg);
        let ts = secs.map(|s| Timestamp::from_second(s).expect("in range"));
        if let Some(ts) = ts { b.timestamp(ts); }
        if let Some(h) = &host { b.hostname(h); }
        if let Some(p) = &pid { b.proc_id(p); }
        let mut out = Vec::new();
        b.encode_rfc3164(&mut out);

        let m = mcas_syslog::parse_with(&config(), &out).expect("parses");
        prop_assert_eq!(m.protocol(), Protocol::Rfc3164);
        prop_assert_eq!(m.priority(), Some(pri));
        prop_assert_eq!(m.timestamp().is_some(), ts.is_some());
        if let (Some(got), Some(want)) = (m.timestamp(), ts) {
            // The year is not on the wire; month, day and time are.
            let (g, w) = (got.to_zoned(jiff::tz::TimeZone::UTC), want.to_zoned(jiff::tz::TimeZone::UTC));
            prop_assert_eq!((g.month(), g.day(), g.hour(), g.minute(), g.second()),
                            (w.month(), w.day(), w.hour(), w.minute(), w.second()));
        }
        prop_assert_eq!(m.hostname(), host.as_deref());
        prop_assert_eq!(m.app_name(), Some(tag.as_str()));
        prop_assert_eq!(m.proc_id(), pid.as_deref());
        prop_assert_eq!(m.msg(), &msg[..]);

        let mut again = Vec::new();
        m.encode_rfc3164(&mut again);
        prop_assert_eq!(again, out);
    }

    #[test]
    fn parse_never_panics_and_reencodes_as_5424(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        let Ok(m) = mcas_syslog::parse_with(&config(), &input) else {
            prop_assert!(input.is_empty());
            return Ok(());
        };
        prop_assert_eq!(m.raw(), &input[..]);
        let _ = (m.facility(), m.severity(), m.timestamp(), m.hostname(), m.app_name());
        let _ = (m.proc_id(), m.msg_id(), m.sequence_id(), m.msg_lossy(), m.msg_replacements());
        for e in m.structured_data().iter() {
            let _ = (e.id(), e.params().count());
        }
        let mut a = Vec::new();
        m.encode_rfc5424(&mut a);
        let m2 = mcas_syslog::parse_with(&config(), &a).expect("encoder output parses");
        prop_assert_eq!(m2.protocol(), Protocol::Rfc5424);
        prop_assert_eq!(m2.msg(), m.msg());
        let mut b = Vec::new();
        m2.encode_rfc5424(&mut b);
        prop_assert_eq!(a, b);
        let mut c = Vec::new();
        m.encode_rfc3164(&mut c);
        prop_assert!(mcas_syslog::parse_with(&config(), &c).is_ok());
    }

    #[test]
    fn syslog_shaped_input_never_panics(
        pri in "<[0-9]{0,4}>?",
        head in "(1 )?([A-Za-z]{3} {1,2}[0-9]{1,2} [0-9:.]{5,12}|[0-9T:.+Z-]{10,30})? ?",
        rest in "[ -~\\[\\]\"=\\\\]{0,80}",
    ) {
        let line = format!("{pri}{head}{rest}");
        if let Ok(m) = mcas_syslog::parse_with(&config(), line.as_bytes()) {
            let _ = m.timestamp();
            let mut out = Vec::new();
            m.encode_rfc5424(&mut out);
            prop_assert_eq!(mcas_syslog::parse(&out).map(|m| m.protocol()), Ok(Protocol::Rfc5424));
        }
    }
}

#[test]
fn msg_lossy_counts_replacements() {
    let m = mcas_syslog::parse(b"<13>Oct 11 22:14:15 h app: a\xFFb\xC3\xA9\xE2\x82").unwrap();
    assert_eq!(m.msg_lossy(), "a\u{FFFD}bé\u{FFFD}");
    assert_eq!(m.msg_replacements(), 2);
    let m = mcas_syslog::parse(b"<13>Oct 11 22:14:15 h app: fine").unwrap();
    assert_eq!(m.msg_replacements(), 0);
}
