//! Properties of the codec: bodies of every kind round-trip (gzip'd ones made by a real
//! compressor), a decoded file re-encodes to its exact bytes, and decode never panics, on
//! arbitrary bytes or on valid files changed anywhere (with the header checksum recomputed,
//! so changes reach the checks behind it).

use std::io::Write;

use flate2::{Compression, write::GzEncoder};
use mcas_spool::{Body, BodyKind, MAGIC, OwnedBody, decode, encode, encoded_len};
use proptest::prelude::*;

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(raw).expect("gzip into a Vec");
    enc.finish().expect("gzip into a Vec")
}

fn arb_body() -> impl Strategy<Value = OwnedBody> {
    (
        0u8..3,
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(kind, rows, raw)| {
            let raw_len = raw.len() as u32;
            match kind {
                0 => OwnedBody {
                    kind: BodyKind::Array,
                    rows,
                    raw_len,
                    data: raw,
                },
                1 => OwnedBody {
                    kind: BodyKind::GzipArray,
                    rows,
                    raw_len,
                    data: gzip(&raw),
                },
                _ => OwnedBody {
                    kind: BodyKind::Ndjson,
                    rows,
                    raw_len,
                    data: raw,
                },
            }
        })
}

fn arb_file() -> impl Strategy<Value = (String, String, Vec<OwnedBody>)> {
    (
        "\\PC{0,24}",
        "\\PC{0,24}",
        prop::collection::vec(arb_body(), 0..6),
    )
}

/// Recomputes the header checksum when header_len is readable and within the file.
fn reseal(file: &mut [u8]) {
    let Some(len) = file.get(12..16) else { return };
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    if (4..=file.len()).contains(&len) {
        let crc = crc32fast_hash(&file[..len - 4]);
        file[len - 4..len].copy_from_slice(&crc.to_le_bytes());
    }
}

/// CRC-32 (IEEE), bit by bit: an independent reference for the tests.
fn crc32fast_hash(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// What every accepted file satisfies: it is exactly what encode writes for its contents.
fn check_accepted(file: &[u8]) {
    if let Ok(batch) = decode(file) {
        assert_eq!(encode(batch.output, batch.route, &batch.bodies), file);
        assert_eq!(
            encoded_len(batch.output, batch.route, &batch.bodies),
            file.len()
        );
        assert_eq!(
            batch.rows,
            batch.bodies.iter().map(|b| u64::from(b.rows)).sum::<u64>()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip((output, route, owned) in arb_file()) {
        let bodies: Vec<Body<'_>> = owned.iter().map(OwnedBody::as_body).collect();
        let file = encode(&output, &route, &bodies);
        prop_assert_eq!(file.len(), encoded_len(&output, &route, &bodies));
        let batch = decode(&file).unwrap();
        prop_assert_eq!(batch.output, output.as_str());
        prop_assert_eq!(batch.route, route.as_str());
        prop_assert_eq!(&batch.bodies, &bodies);
        prop_assert_eq!(batch.rows, bodies.iter().map(|b| u64::from(b.rows)).sum::<u64>());
        prop_assert_eq!(batch.raw_bytes, bodies.iter().map(|b| u64::from(b.raw_len)).sum::<u64>());
        prop_assert_eq!(batch.stored_bytes, bodies.iter().map(|b| b.data.len() as u64).sum::<u64>());
        // Bodies are stored back to back at the end of the file, in order.
        let tail: Vec<u8> = bodies.iter().flat_map(|b| b.data.iter().copied()).collect();
        prop_assert!(file.ends_with(&tail));
        let owned_back = batch.into_owned();
        prop_assert_eq!(owned_back.bodies, owned);
    }

    #[test]
    fn header_checksum_is_crc32((output, route, owned) in arb_file()) {
        let bodies: Vec<Body<'_>> = owned.iter().map(OwnedBody::as_body).collect();
        let file = encode(&output, &route, &bodies);
        let mut resealed = file.clone();
        reseal(&mut resealed);
        prop_assert_eq!(resealed, file);
    }

    #[test]
    fn decode_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_accepted(&bytes);
        // The same bytes behind a valid magic and version, and a resealed header.
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&2u16.to_le_bytes());
        file.extend_from_slice(&bytes);
        check_accepted(&file);
        reseal(&mut file);
        check_accepted(&file);
    }

    #[test]
    fn decode_never_panics_on_changed_files(
        (output, route, owned) in arb_file(),
        changes in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        extra in prop::collection::vec(any::<u8>(), 0..3),
        resealed in any::<bool>(),
    ) {
        let bodies: Vec<Body<'_>> = owned.iter().map(OwnedBody::as_body).collect();
        let mut file = encode(&output, &route, &bodies);
        for (at, xor) in &changes {
            let i = at.index(file.len());
            file[i] ^= xor;
        }
        if resealed {
            reseal(&mut file);
        }
        if let Some(cut) = cut {
            file.truncate(cut.index(file.len() + 1));
        }
        file.extend_from_slice(&extra);
        check_accepted(&file);
        if changes.len() == 1 && !resealed && cut.is_none() && extra.is_empty() {
            // One changed byte without a resealed header is always caught (a CRC-32 catches
            // every burst of up to 32 bits; the fields before the checksum are checked).
            prop_assert!(decode(&file).is_err());
        }
    }
}
