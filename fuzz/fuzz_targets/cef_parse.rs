//! `mcas_cef::parse` on arbitrary bytes: never panics, and on success every offset lies
//! inside the input, `into_owned` gives an equal event, and every accessor works.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(start) = mcas_cef::find_start(data) {
        assert!(data[start..].starts_with(b"CEF:"));
    }
    match mcas_cef::parse(data) {
        Err(e) => {
            assert!(e.offset() <= data.len(), "{e} for {} bytes", data.len());
            assert!(!e.to_string().is_empty());
        }
        Ok(event) => {
            assert!(mcas_cef::find_start(data).is_some());
            for w in event.warnings() {
                let off = w.offset().expect("parse warnings carry an offset");
                assert!(off < data.len(), "{w} for {} bytes", data.len());
            }
            let owned = event.clone().into_owned();
            assert_eq!(owned, event);
            // The last occurrence wins in `get`. (Bounded: `get` is a linear scan.)
            for (k, _) in event.extensions().take(32) {
                let last = event
                    .extensions()
                    .rev()
                    .find(|(k2, _)| *k2 == k)
                    .map(|p| p.1);
                if mcas_cef::dictionary::lookup(k).is_none() {
                    assert_eq!(event.get(k), last);
                } else {
                    assert!(event.get(k).is_some());
                }
            }
            let ctx = mcas_cef::DateContext::new(mcas_cef::jiff::Timestamp::UNIX_EPOCH);
            for (k, _) in event.extensions().take(32) {
                let _ = (
                    event.get_i64(k),
                    event.get_f64(k),
                    event.get_ip(k),
                    event.get_mac(k),
                );
                let _ = event.get_timestamp(k, &ctx);
            }
            let _ = event.custom_fields().count();
            let _ = (event.severity().level(), event.severity().number());
            let mut checked = owned;
            let n = checked.check_types(&ctx);
            assert_eq!(checked.warnings().len(), event.warnings().len() + n);
        }
    }
});
