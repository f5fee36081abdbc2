use super::*;

/// Recomputes the header checksum after a test changed header bytes, so the change reaches
/// the checks behind the checksum.
fn reseal(file: &mut [u8]) {
    let header_len = u32::from_le_bytes(file[12..16].try_into().unwrap()) as usize;
    let crc = crc32fast::hash(&file[..header_len - 4]);
    file[header_len - 4..header_len].copy_from_slice(&crc.to_le_bytes());
}

fn put_u32(file: &mut [u8], at: usize, v: u32) {
    file[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(file: &mut [u8], at: usize, v: u64) {
    file[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn body(kind: BodyKind, rows: u32, data: &[u8]) -> Body<'_> {
    Body {
        kind,
        rows,
        raw_len: data.len() as u32,
        data,
    }
}

/// A gzip member with a stored (uncompressed) deflate block, written by hand so the unit
/// tests need no compressor: header, stored block, CRC-32 and ISIZE.
fn stored_gzip(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];
    out.push(1); // BFINAL, BTYPE = stored
    let len = raw.len() as u16;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(raw);
    out.extend_from_slice(&crc32fast::hash(raw).to_le_bytes());
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out
}

/// Two bodies: an Array and an Ndjson one. Header: 44 + 2+3 + 2+4 + 2*25 + 4 = 109 bytes.
fn two_bodies() -> Vec<u8> {
    encode(
        "out",
        "rout",
        &[
            body(BodyKind::Array, 2, b"[{},{}]"),
            body(BodyKind::Ndjson, 1, b"{}\n"),
        ],
    )
}

const TWO_HEADER: usize = 109;

fn err(file: &[u8]) -> Error {
    decode(file).expect_err("decode refuses the file")
}

#[test]
fn crc_is_the_common_crc32() {
    assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
}

#[test]
fn golden_layout_of_a_tiny_file() {
    let file = encode("o", "rt", &[body(BodyKind::Array, 1, b"[1]")]);
    // header_len = 44 + (2 + 1) + (2 + 2) + 25 + 4 = 80; one body of 3 bytes.
    assert_eq!(file.len(), 83);
    assert_eq!(&file[0..8], b"MCASBTCH");
    assert_eq!(&file[8..10], &[2, 0], "version");
    assert_eq!(&file[10..12], &[0, 0], "flags");
    assert_eq!(&file[12..16], &[80, 0, 0, 0], "header_len");
    assert_eq!(&file[16..24], &[1, 0, 0, 0, 0, 0, 0, 0], "rows");
    assert_eq!(&file[24..32], &[3, 0, 0, 0, 0, 0, 0, 0], "raw_bytes");
    assert_eq!(&file[32..40], &[3, 0, 0, 0, 0, 0, 0, 0], "stored_bytes");
    assert_eq!(&file[40..44], &[1, 0, 0, 0], "body_count");
    assert_eq!(&file[44..46], &[1, 0], "output_len");
    assert_eq!(&file[46..47], b"o");
    assert_eq!(&file[47..49], &[2, 0], "route_len");
    assert_eq!(&file[49..51], b"rt");
    // The index entry at 51.
    assert_eq!(&file[51..59], &[80, 0, 0, 0, 0, 0, 0, 0], "offset");
    assert_eq!(&file[59..63], &[3, 0, 0, 0], "stored_len");
    assert_eq!(&file[63..67], &[3, 0, 0, 0], "raw_len");
    assert_eq!(&file[67..71], &[1, 0, 0, 0], "rows");
    assert_eq!(file[71], 0, "kind Array");
    assert_eq!(&file[72..76], &crc32fast::hash(b"[1]").to_le_bytes());
    assert_eq!(&file[76..80], &crc32fast::hash(&file[..76]).to_le_bytes());
    assert_eq!(&file[80..], b"[1]");
    // The whole file, frozen: a change of format shows here.
    let frozen: [u8; 83] = [
        0x4d,
        0x43,
        0x41,
        0x53,
        0x42,
        0x54,
        0x43,
        0x48,
        0x02,
        0x00,
        0x00,
        0x00,
        0x50,
        0x00,
        0x00,
        0x00,
        0x01,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x03,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x03,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x01,
        0x00,
        0x00,
        0x00,
        0x01,
        0x00,
        0x6f,
        0x02,
        0x00,
        0x72,
        0x74,
        0x50,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        0x03,
        0x00,
        0x00,
        0x00,
        0x03,
        0x00,
        0x00,
        0x00,
        0x01,
        0x00,
        0x00,
        0x00,
        0x00,
        CRC_BODY[0],
        CRC_BODY[1],
        CRC_BODY[2],
        CRC_BODY[3],
        CRC_HEADER[0],
        CRC_HEADER[1],
        CRC_HEADER[2],
        CRC_HEADER[3],
        0x5b,
        0x31,
        0x5d,
    ];
    assert_eq!(file, frozen);

    let batch = decode(&file).unwrap();
    assert_eq!(batch.output, "o");
    assert_eq!(batch.route, "rt");
    assert_eq!((batch.rows, batch.raw_bytes, batch.stored_bytes), (1, 3, 3));
    assert_eq!(batch.bodies, [body(BodyKind::Array, 1, b"[1]")]);
    assert_eq!(encoded_len("o", "rt", &batch.bodies), 83);
}

/// CRC-32 of `[1]` and of the tiny file's first 76 bytes, as the frozen file holds them.
const CRC_BODY: [u8; 4] = CRC_BODY_VALUE.to_le_bytes();
const CRC_HEADER: [u8; 4] = CRC_HEADER_VALUE.to_le_bytes();
const CRC_BODY_VALUE: u32 = 0x4c2f_32b8;
const CRC_HEADER_VALUE: u32 = 0x5a8a_43c8;

#[test]
fn two_bodies_decode() {
    let file = two_bodies();
    assert_eq!(
        u32::from_le_bytes(file[12..16].try_into().unwrap()) as usize,
        TWO_HEADER
    );
    let batch = decode(&file).unwrap();
    assert_eq!((batch.output, batch.route), ("out", "rout"));
    assert_eq!(
        (batch.rows, batch.raw_bytes, batch.stored_bytes),
        (3, 10, 10)
    );
    assert_eq!(batch.bodies[0].data, b"[{},{}]");
    assert_eq!(batch.bodies[1].data, b"{}\n");
    assert_eq!(batch.bodies[1].kind, BodyKind::Ndjson);
    let owned = batch.clone().into_owned();
    assert_eq!(owned.output, "out");
    assert_eq!(owned.bodies[1].data, b"{}\n");
    let again: Vec<Body<'_>> = owned.bodies.iter().map(OwnedBody::as_body).collect();
    assert_eq!(again, batch.bodies);
    assert_eq!(encode(&owned.output, &owned.route, &again), file);
}

#[test]
fn no_bodies_and_empty_names() {
    let file = encode("", "", &[]);
    assert_eq!(file.len(), MIN_HEADER);
    let batch = decode(&file).unwrap();
    assert_eq!(batch.output, "");
    assert!(batch.bodies.is_empty());
    assert_eq!((batch.rows, batch.raw_bytes, batch.stored_bytes), (0, 0, 0));
}

#[test]
fn is_batch_file_looks_at_the_magic_only() {
    assert!(is_batch_file(&two_bodies()));
    assert!(is_batch_file(b"MCASBTCH"));
    assert!(!is_batch_file(b"MCASBTC"));
    assert!(!is_batch_file(b"{\"TimeGenerated\":1}\n"));
    assert!(!is_batch_file(b""));
}

#[test]
fn every_prefix_is_truncated() {
    let file = two_bodies();
    for len in 0..file.len() {
        let e = err(&file[..len]);
        assert_eq!(
            e.kind(),
            &ErrorKind::Truncated,
            "prefix of {len} bytes: {e}"
        );
        assert_eq!(e.pos(), len);
    }
    assert!(decode(&file).is_ok());
}

#[test]
fn bad_magic_points_at_the_first_wrong_byte() {
    let mut file = two_bodies();
    file[3] = b'X';
    let e = err(&file);
    assert_eq!((e.kind(), e.pos()), (&ErrorKind::BadMagic, 3));
    // A v1 spool file: NDJSON.
    let e = err(b"{\"Message\":\"a\"}\n");
    assert_eq!((e.kind(), e.pos()), (&ErrorKind::BadMagic, 0));
    // Short and wrong is bad magic, not truncated.
    assert_eq!(err(b"MX").kind(), &ErrorKind::BadMagic);
}

#[test]
fn version_3_is_unsupported() {
    let mut file = two_bodies();
    file[8] = 3;
    let e = err(&file);
    assert_eq!((e.kind(), e.pos()), (&ErrorKind::UnsupportedVersion(3), 8));
    // Even when nothing else follows.
    let e = err(b"MCASBTCH\x01\x00");
    assert_eq!(e.kind(), &ErrorKind::UnsupportedVersion(1));
    let e = err(b"MCASBTCH\x00\x01");
    assert_eq!(e.kind(), &ErrorKind::UnsupportedVersion(256));
}

#[test]
fn flipped_header_byte_is_a_header_checksum_error() {
    let file = two_bodies();
    // Every header byte the checksum covers, past the magic, version and header_len, and the
    // checksum itself.
    let covered = (10..12).chain(16..TWO_HEADER);
    for at in covered {
        for bit in 0..8 {
            let mut bad = file.clone();
            bad[at] ^= 1 << bit;
            let e = err(&bad);
            assert_eq!(
                e.kind(),
                &ErrorKind::HeaderChecksum,
                "byte {at} bit {bit}: {e}"
            );
            assert_eq!(e.pos(), TWO_HEADER - 4);
        }
    }
}

#[test]
fn changed_header_len_never_decodes() {
    let file = two_bodies();
    for at in 12..16 {
        for bit in 0..8 {
            let mut bad = file.clone();
            bad[at] ^= 1 << bit;
            assert!(decode(&bad).is_err(), "byte {at} bit {bit}");
        }
    }
}

#[test]
fn flipped_body_byte_is_a_body_checksum_error() {
    let file = two_bodies();
    for at in TWO_HEADER..file.len() {
        let mut bad = file.clone();
        bad[at] ^= 0x20;
        let e = err(&bad);
        let (index, start) = if at < TWO_HEADER + 7 {
            (0, TWO_HEADER)
        } else {
            (1, TWO_HEADER + 7)
        };
        assert_eq!(e.kind(), &ErrorKind::BodyChecksum { index }, "byte {at}");
        assert_eq!(e.pos(), start);
    }
}

#[test]
fn gzip_body_structure_is_checked() {
    let raw = br#"[{"Message":"a"}]"#;
    let gz = stored_gzip(raw);
    let good = Body {
        kind: BodyKind::GzipArray,
        rows: 1,
        raw_len: raw.len() as u32,
        data: &gz,
    };
    let batch_file = encode("o", "r", &[body(BodyKind::Ndjson, 1, b"{}\n"), good]);
    assert_eq!(decode(&batch_file).unwrap().bodies[1], good);
    let gz_at = batch_file.len() - gz.len();

    // Not gzip at all, with a correct CRC: JSON stored as if gzip'd.
    let not_gzip = Body { data: raw, ..good };
    let file = encode("o", "r", &[body(BodyKind::Ndjson, 1, b"{}\n"), not_gzip]);
    let e = err(&file);
    assert_eq!(e.kind(), &ErrorKind::BadGzip { index: 1 });
    assert_eq!(e.pos(), file.len() - raw.len());

    // ISIZE that disagrees with raw_len.
    let wrong_len = Body {
        raw_len: good.raw_len + 1,
        ..good
    };
    let file = encode("o", "r", &[body(BodyKind::Ndjson, 1, b"{}\n"), wrong_len]);
    let e = err(&file);
    assert_eq!(
        (e.kind(), e.pos()),
        (&ErrorKind::BadGzip { index: 1 }, gz_at)
    );

    // Shorter than any gzip member, even with the right start and trailer.
    let mut short = vec![0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 0];
    short.extend_from_slice(&17u32.to_le_bytes());
    assert_eq!(short.len(), 18);
    let short_body = Body {
        kind: BodyKind::GzipArray,
        rows: 1,
        raw_len: 17,
        data: &short[1..],
    };
    let e = err(&encode("o", "r", &[short_body]));
    assert_eq!(e.kind(), &ErrorKind::BadGzip { index: 0 });
    // 18 bytes with the right start and trailer pass the cheap check.
    let file = encode(
        "o",
        "r",
        &[Body {
            data: &short,
            ..short_body
        }],
    );
    assert!(decode(&file).is_ok(), "{:?}", decode(&file));

    // A method other than deflate.
    let mut other = gz.clone();
    other[2] = 7;
    let e = err(&encode(
        "o",
        "r",
        &[Body {
            data: &other,
            ..good
        }],
    ));
    assert_eq!(e.kind(), &ErrorKind::BadGzip { index: 0 });

    // Empty.
    let e = err(&encode(
        "o",
        "r",
        &[Body {
            data: b"",
            raw_len: 0,
            ..good
        }],
    ));
    assert_eq!(e.kind(), &ErrorKind::BadGzip { index: 0 });
}

#[test]
fn trailing_byte_is_inconsistent() {
    let mut file = two_bodies();
    let len = file.len();
    file.push(b'\n');
    let e = err(&file);
    assert_eq!(
        e.kind(),
        &ErrorKind::Inconsistent("bytes after the last body")
    );
    assert_eq!(e.pos(), len);
    // After a header with no bodies, too.
    let mut file = encode("o", "r", &[]);
    file.push(0);
    assert!(matches!(err(&file).kind(), ErrorKind::Inconsistent(_)));
}

#[test]
fn header_too_large() {
    let mut file = two_bodies();
    put_u32(&mut file, 12, (MAX_HEADER + 1) as u32);
    let e = err(&file);
    assert_eq!(
        (e.kind(), e.pos()),
        (&ErrorKind::HeaderTooLarge(MAX_HEADER as u64 + 1), 12)
    );
    put_u32(&mut file, 12, u32::MAX);
    assert_eq!(
        err(&file).kind(),
        &ErrorKind::HeaderTooLarge(u64::from(u32::MAX))
    );
    // At the limit it is only truncated: the file is far shorter.
    put_u32(&mut file, 12, MAX_HEADER as u32);
    assert_eq!(err(&file).kind(), &ErrorKind::Truncated);
}

#[test]
fn header_len_below_the_smallest_header() {
    let mut file = two_bodies();
    put_u32(&mut file, 12, (MIN_HEADER - 1) as u32);
    let e = err(&file);
    assert!(matches!(e.kind(), ErrorKind::Inconsistent(_)), "{e}");
    assert_eq!(e.pos(), 12);
}

/// Offsets in the two-body file: the index starts at 44 + 5 + 6 = 55.
const ENTRY0: usize = 55;
const ENTRY1: usize = ENTRY0 + ENTRY_LEN;

#[test]
fn unknown_body_kind() {
    let mut file = two_bodies();
    file[ENTRY1 + 20] = 9;
    reseal(&mut file);
    let e = err(&file);
    assert_eq!(
        (e.kind(), e.pos()),
        (&ErrorKind::UnknownBodyKind(9), ENTRY1 + 20)
    );
}

#[test]
fn body_out_of_bounds() {
    for offset in [u64::MAX, u64::MAX - 2, 1 << 40, 0, 8, TWO_HEADER as u64 - 1] {
        let mut file = two_bodies();
        put_u64(&mut file, ENTRY1, offset);
        reseal(&mut file);
        let e = err(&file);
        assert_eq!(
            (e.kind(), e.pos()),
            (&ErrorKind::BodyOutOfBounds { index: 1 }, ENTRY1),
            "offset {offset}"
        );
    }
    // A length past the end, from a body not where the previous one ended.
    let mut file = two_bodies();
    put_u64(&mut file, ENTRY1, TWO_HEADER as u64 + 1);
    put_u32(&mut file, ENTRY1 + 8, 100);
    reseal(&mut file);
    assert_eq!(err(&file).kind(), &ErrorKind::BodyOutOfBounds { index: 1 });
    // The same length from the right offset: the file ends early.
    let mut file = two_bodies();
    put_u32(&mut file, ENTRY1 + 8, u32::MAX);
    reseal(&mut file);
    let e = err(&file);
    assert_eq!((e.kind(), e.pos()), (&ErrorKind::Truncated, file.len()));
}

#[test]
fn bodies_out_of_order_or_overlapping() {
    let mut file = two_bodies();
    // Body 1 claims body 0's place.
    put_u64(&mut file, ENTRY1, TWO_HEADER as u64);
    reseal(&mut file);
    let e = err(&file);
    assert!(matches!(e.kind(), ErrorKind::Inconsistent(_)), "{e}");
    assert_eq!(e.pos(), ENTRY1);
    // A gap between body 0 and body 1.
    let mut file = two_bodies();
    put_u32(&mut file, ENTRY0 + 8, 6);
    put_u32(&mut file, ENTRY0 + 12, 6);
    file[ENTRY0 + 21..ENTRY0 + 25].copy_from_slice(&crc32fast::hash(b"[{},{}").to_le_bytes());
    reseal(&mut file);
    let e = err(&file);
    assert!(matches!(e.kind(), ErrorKind::Inconsistent(_)), "{e}");
    assert_eq!(e.pos(), ENTRY1);
}

#[test]
fn uncompressed_raw_len_must_be_the_length() {
    let mut file = two_bodies();
    put_u32(&mut file, ENTRY0 + 12, 8);
    reseal(&mut file);
    let e = err(&file);
    assert!(matches!(e.kind(), ErrorKind::Inconsistent(_)), "{e}");
    assert_eq!(e.pos(), ENTRY0 + 12);
}

#[test]
fn totals_must_be_the_sums() {
    for (at, value) in [(16, 4u64), (24, 11), (32, 9)] {
        let mut file = two_bodies();
        put_u64(&mut file, at, value);
        reseal(&mut file);
        let e = err(&file);
        assert!(matches!(e.kind(), ErrorKind::Inconsistent(_)), "{e}");
        assert_eq!(e.pos(), at);
    }
}

#[test]
fn claimed_body_count_is_checked_against_the_header() {
    for count in [0, 1, 3, 1000, u32::MAX] {
        let mut file = two_bodies();
        put_u32(&mut file, 40, count);
        reseal(&mut file);
        let e = err(&file);
        assert!(
            matches!(e.kind(), ErrorKind::Inconsistent(_)),
            "{count}: {e}"
        );
        assert_eq!(e.pos(), 40);
    }
}

#[test]
fn name_lengths_past_the_header_are_inconsistent() {
    let mut file = two_bodies();
    file[44..46].copy_from_slice(&u16::MAX.to_le_bytes());
    reseal(&mut file);
    let e = err(&file);
    assert!(matches!(e.kind(), ErrorKind::Inconsistent(_)), "{e}");
    assert_eq!(e.pos(), 44);
}

#[test]
fn names_must_be_utf8() {
    let mut file = two_bodies();
    file[46] = 0xff; // "out" -> "\xffut"
    reseal(&mut file);
    let e = err(&file);
    assert_eq!((e.kind(), e.pos()), (&ErrorKind::NotUtf8, 46));
    let mut file = two_bodies();
    file[51] = 0xc3; // "rout" -> "r\xc3ut": a lead byte without its continuation
    file[52] = b'x';
    reseal(&mut file);
    let e = err(&file);
    assert_eq!((e.kind(), e.pos()), (&ErrorKind::NotUtf8, 51));
}

#[test]
fn flags_must_be_zero() {
    let mut file = two_bodies();
    file[10] = 1;
    reseal(&mut file);
    let e = err(&file);
    assert_eq!(
        (e.kind(), e.pos()),
        (&ErrorKind::Inconsistent("unknown flags"), 10)
    );
}

#[test]
fn error_display() {
    let mut file = two_bodies();
    file[8] = 3;
    assert_eq!(
        err(&file).to_string(),
        "spool batch file: unsupported version 3 at byte 8"
    );
}

#[test]
#[should_panic(expected = "output name of 65536 bytes")]
fn encode_refuses_a_name_that_does_not_fit() {
    let long = "x".repeat(65536);
    let _ = encode(&long, "r", &[]);
}
