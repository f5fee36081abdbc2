//! parse → encode → parse gives the same event content, and encoding is stable:
//! encoding the re-parsed event gives the same bytes. (A raw CR or LF in a header field,
//! which CEF cannot carry, is encoded as a space.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcas_cef::Event;

fn content(e: &Event<'_>) -> (u32, Vec<String>, Vec<(String, String)>) {
    (
        e.version(),
        [
            e.device_vendor(),
            e.device_product(),
            e.device_version(),
            e.device_event_class_id(),
            e.name(),
            e.severity().raw(),
        ]
        .iter()
        .map(|f| f.replace(['\r', '\n'], " "))
        .collect(),
        e.extensions()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = mcas_cef::parse(data) else {
        return;
    };
    let mut line = Vec::new();
    event.encode(&mut line).expect("a parsed event encodes");
    let again = mcas_cef::parse(&line).expect("an encoded event parses");
    assert_eq!(content(&again), content(&event));
    // Only text without a key (kept as an empty-key pair) is reported again.
    assert!(
        again
            .warnings()
            .iter()
            .all(|w| *w.kind() == mcas_cef::WarningKind::KeylessText),
        "{:?}",
        again.warnings()
    );
    let mut line2 = Vec::new();
    again.encode(&mut line2).expect("encodes");
    assert_eq!(line, line2);
});
