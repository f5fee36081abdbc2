//! `mcas_rules::load_str` on arbitrary bytes taken as a rule file: never panics. A rule that
//! loads also replays a few lines without panicking; an error's position is a line and column
//! of the file (or 0 when the parser gives none).

#![no_main]

use libfuzzer_sys::fuzz_target;

const LINES: &[u8] = b"<134>2024-05-08T10:00:00Z fw CEF:0|Acme|FW|1|100|Denied|5|src=10.0.0.9 dst=10.0.0.1 dpt=22 act=deny\n\
<134>2024-05-08T10:07:00Z fw CEF:0|Acme|FW|1|100|Allowed|5|src=10.0.0.8 dst=8.8.8.8 dpt=443 act=allow\n";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match mcas_rules::load_str(&text) {
        Err(e) => {
            // YAML 1.1 (the parser's) breaks lines at LF, CR LF, a lone CR, and NEL (U+0085),
            // LS (U+2028) and PS (U+2029).
            let breaks = text.matches('\n').count() + text.matches('\r').count()
                - text.matches("\r\n").count()
                + text.matches(['\u{85}', '\u{2028}', '\u{2029}']).count();
            let lines = breaks + 2;
            assert!(e.line <= lines, "{e} beyond {lines} lines");
            let _ = e.to_string();
        }
        Ok(rule) => {
            let options = mcas_rules::ReplayOptions::default();
            let _ = mcas_rules::replay(&[rule], LINES, options);
        }
    }
});
