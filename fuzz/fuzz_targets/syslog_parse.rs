//! Parsing any bytes never panics; the RFC 5424 encoding of whatever was parsed is valid
//! RFC 5424 and a fixed point (encode → parse → encode gives the same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcas_syslog::{ParserConfig, Protocol};

fuzz_target!(|data: &[u8]| {
    let mut cfg = ParserConfig::new();
    cfg.reference_time(jiff::Timestamp::from_second(1_700_000_000).expect("in range"));
    let Ok(m) = mcas_syslog::parse_with(&cfg, data) else {
        assert!(data.is_empty());
        return;
    };
    assert_eq!(m.raw(), data);
    let _ = (
        m.facility(),
        m.severity(),
        m.timestamp(),
        m.timestamp_str(),
        m.hostname(),
    );
    let _ = (
        m.app_name(),
        m.proc_id(),
        m.msg_id(),
        m.sequence_id(),
        m.msg_replacements(),
    );
    let _ = m.msg_lossy();
    for e in m.structured_data().iter() {
        for (name, value) in e.params() {
            let _ = (name.len(), value.len());
        }
    }
    let mut a = Vec::new();
    m.encode_rfc5424(&mut a);
    let m2 = mcas_syslog::parse_with(&cfg, &a).expect("encoder output parses");
    assert_eq!(m2.protocol(), Protocol::Rfc5424);
    assert_eq!(m2.msg(), m.msg());
    let mut b = Vec::new();
    m2.encode_rfc5424(&mut b);
    assert_eq!(a, b);
    let mut c = Vec::new();
    m.encode_rfc3164(&mut c);
    assert!(mcas_syslog::parse_with(&cfg, &c).is_ok());
    let owned = m.clone().into_owned();
    assert_eq!(owned, m);
});
