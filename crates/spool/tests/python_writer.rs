//! A batch file written by an independent writer (a Python script following the layout table
//! in the crate docs, with zlib's CRC-32 and gzip): decode reads it, and encode writes the
//! same bytes.

use flate2::read::GzDecoder;
use mcas_spool::{BodyKind, decode, encode};
use std::io::Read;

const FILE: &[u8] = include_bytes!("data/python-writer.bin");
const ROWS: &[u8] = br#"[{"Message":"a","Severity":3},{"Message":"b","Severity":5}]"#;

#[test]
fn decodes_a_file_from_another_writer() {
    let batch = decode(FILE).unwrap();
    assert_eq!((batch.output, batch.route), ("sentinel", "mcas"));
    let kinds: Vec<BodyKind> = batch.bodies.iter().map(|b| b.kind).collect();
    assert_eq!(
        kinds,
        [BodyKind::GzipArray, BodyKind::Ndjson, BodyKind::Array]
    );
    assert_eq!(batch.rows, 6);
    let mut unzipped = Vec::new();
    GzDecoder::new(batch.bodies[0].data)
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, ROWS);
    assert_eq!(batch.bodies[0].raw_len as usize, ROWS.len());
    assert_eq!(
        batch.bodies[1].data,
        b"{\"Message\":\"a\"}\n{\"Message\":\"b\"}\n"
    );
    assert_eq!(batch.bodies[2].data, ROWS);
    assert_eq!(
        batch.raw_bytes,
        (2 * ROWS.len() + batch.bodies[1].data.len()) as u64
    );
    assert_eq!(encode(batch.output, batch.route, &batch.bodies), FILE);
}
