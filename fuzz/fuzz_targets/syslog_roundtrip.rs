//! For input the parser reads as RFC 5424: parse → encode → parse gives an equal message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcas_syslog::Protocol;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = mcas_syslog::parse(data) else {
        return;
    };
    if m.protocol() != Protocol::Rfc5424 {
        return;
    }
    let mut out = Vec::new();
    m.encode_rfc5424(&mut out);
    let back = mcas_syslog::parse(&out).expect("encoder output parses");
    assert_eq!(back, m, "re-encoded as {:?}", String::from_utf8_lossy(&out));
    assert_eq!(back.timestamp(), m.timestamp());
});
