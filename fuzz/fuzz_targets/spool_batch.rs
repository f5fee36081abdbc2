//! Spool batch file decoding of arbitrary bytes: no panic; an error points inside the file
//! (or at its end); an accepted file is exactly what encode writes for its contents, with
//! totals that are the bodies' sums and gzip'd bodies framed as gzip.
//!
//! The first input byte is a setting: when its low bit is set, the header checksum is
//! recomputed before decoding, so changes reach the checks behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcas_spool::{BodyKind, decode, encode, encoded_len, is_batch_file};

/// Writes the CRC-32 of the header where header_len says it goes, when that is in the file.
fn reseal(file: &mut [u8]) {
    let Some(len) = file.get(12..16).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
        return;
    };
    let len = u32::from_le_bytes(len) as usize;
    if (4..=file.len()).contains(&len) {
        let crc = crc32fast::hash(&file[..len - 4]);
        file[len - 4..len].copy_from_slice(&crc.to_le_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&setting, rest)) = data.split_first() else {
        return;
    };
    let mut file = rest.to_vec();
    if setting & 1 == 1 {
        reseal(&mut file);
    }
    match decode(&file) {
        Ok(batch) => {
            assert!(is_batch_file(&file));
            assert_eq!(encode(batch.output, batch.route, &batch.bodies), file);
            assert_eq!(encoded_len(batch.output, batch.route, &batch.bodies), file.len());
            let rows: u64 = batch.bodies.iter().map(|b| u64::from(b.rows)).sum();
            let raw: u64 = batch.bodies.iter().map(|b| u64::from(b.raw_len)).sum();
            let stored: u64 = batch.bodies.iter().map(|b| b.data.len() as u64).sum();
            assert_eq!((batch.rows, batch.raw_bytes, batch.stored_bytes), (rows, raw, stored));
            for b in &batch.bodies {
                match b.kind {
                    BodyKind::GzipArray => assert!(b.data.starts_with(&[0x1f, 0x8b, 0x08])),
                    _ => assert_eq!(b.raw_len as usize, b.data.len()),
                }
            }
            let owned = batch.clone().into_owned();
            assert_eq!(owned.output, batch.output);
            assert_eq!(owned.bodies.len(), batch.bodies.len());
        }
        Err(e) => assert!(e.pos() <= file.len(), "{e} in {} bytes", file.len()),
    }
});
