//! Property tests: `parse(encode(e)) == e` for arbitrary events, and `parse` never
//! panics (and keeps its invariants) on arbitrary bytes.

use mcas_cef::{Event, EventBuilder, dictionary};
use proptest::prelude::*;

/// Characters that stress the escapes and the key detection.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec![
            ' ', '=', '\\', '|', '\n', '\r', '\t', 'a', 'k', 'Z', '0', '_', '.', ',', '[', ']',
            '-', '"', 'é', '日', '\u{fffd}', '😀',
        ]),
        1 => any::<char>(),
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..max).prop_map(|v| v.into_iter().collect())
}

/// Header text: anything but CR and LF, which CEF cannot carry in a header.
fn header_text() -> impl Strategy<Value = String> {
    text(16).prop_map(|s| s.replace(['\r', '\n'], ""))
}

fn key() -> impl Strategy<Value = String> {
    let standard = prop::sample::select(
        dictionary::all()
            .iter()
            .map(|k| k.short)
            .collect::<Vec<_>>(),
    )
    .prop_map(str::to_owned);
    prop_oneof![
        standard,
        "[A-Za-z0-9_][A-Za-z0-9_.,\\[\\]-]{0,12}",
        Just("cs1Label".to_owned()),
        Just("ad.Error_,Code".to_owned()),
    ]
}

fn event() -> impl Strategy<Value = Event<'static>> {
    (
        any::<u32>(),
        prop::collection::vec(header_text(), 6),
        prop::collection::vec((key(), text(24)), 0..12),
    )
        .prop_map(|(version, h, mut pairs)| {
            // The one thing CEF cannot express: trailing spaces of the last value.
            if let Some((_, v)) = pairs.last_mut() {
                v.truncate(v.trim_end_matches(' ').len());
            }
            let mut b = EventBuilder::new()
                .version(version)
                .device_vendor(h[0].clone())
                .device_product(h[1].clone())
                .device_version(h[2].clone())
                .device_event_class_id(h[3].clone())
                .name(h[4].clone())
                .severity(h[5].clone());
            for (k, v) in pairs {
                b.push_extension(k, v);
            }
            b.build()
        })
}

fn encode(e: &Event<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    e.encode(&mut out).expect("valid keys encode");
    out
}

/// The header and pairs of an event, for comparing content without warnings.
fn content(e: &Event<'_>) -> (u32, [String; 6], Vec<(String, String)>) {
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
        .map(str::to_owned),
        e.extensions()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_parse_gives_the_event(e in event()) {
        let line = encode(&e);
        let parsed = mcas_cef::parse(&line).expect("encoded events parse");
        prop_assert_eq!(&parsed, &e, "line: {:?}", String::from_utf8_lossy(&line));
        prop_assert!(parsed.warnings().is_empty());
        // Typed accessors and custom fields never panic on arbitrary values.
        let ctx = mcas_cef::DateContext::new(mcas_cef::jiff::Timestamp::UNIX_EPOCH);
        for def in dictionary::all() {
            let _ = (parsed.get_i64(def.short), parsed.get_f64(def.short), parsed.get_ip(def.short));
            let _ = (parsed.get_mac(def.short), parsed.get_timestamp(def.short, &ctx));
        }
        let _ = parsed.custom_fields().count();
    }

    #[test]
    fn parse_never_panics_on_bytes(input in prop::collection::vec(any::<u8>(), 0..256)) {
        check_invariants(&input)?;
    }

    #[test]
    fn parse_never_panics_after_a_header(
        prefix in prop::sample::select(vec!["", "<13>Oct 11 22:14:15 host ", "CEF: "]),
        header in "CEF:[0-9]{1,3}(\\|[a-z\\\\|=]{0,3}){6}\\|",
        tail in prop::collection::vec(prop_oneof![
            3 => prop::sample::select(b" =\\|abc\r\n\t".to_vec()),
            1 => any::<u8>(),
        ], 0..128),
    ) {
        let mut input = prefix.as_bytes().to_vec();
        input.extend_from_slice(header.as_bytes());
        input.extend_from_slice(&tail);
        check_invariants(&input)?;
    }
}

/// What must hold for any input: no panic, offsets inside the input, `into_owned`
/// equal, and the encoded event parses back to the same content (header CR/LF become
/// spaces when encoded).
fn check_invariants(input: &[u8]) -> Result<(), TestCaseError> {
    let Ok(e) = mcas_cef::parse(input) else {
        return Ok(());
    };
    for w in e.warnings() {
        let off = w.offset().expect("parse warnings have offsets");
        prop_assert!(
            off < input.len(),
            "warning {} outside {} bytes",
            w,
            input.len()
        );
    }
    prop_assert_eq!(&e.clone().into_owned(), &e);
    let line = encode(&e);
    let again = mcas_cef::parse(&line).expect("encoded events parse");
    let mut want = content(&e);
    for f in &mut want.1 {
        *f = f.replace(['\r', '\n'], " ");
    }
    prop_assert_eq!(content(&again), want);
    Ok(())
}

#[test]
fn parse_errors_have_offsets_inside_the_input() {
    for input in [
        &b""[..],
        b"CEF:",
        b"xx CEF:0|a|b",
        b"CEF:0|a|b|c|d|e|f\\|",
        b"CEF:abc|",
    ] {
        let err = mcas_cef::parse(input).expect_err("not an event");
        assert!(err.offset() <= input.len(), "{err}");
    }
}
