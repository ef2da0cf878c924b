//! Codec unit tests: round trips, the KMIP spec's encoding examples, and every rejection rule.

use super::*;

fn limits() -> Limits {
    Limits::default()
}

fn item(tag: u32, code: u8, body: &[u8]) -> Vec<u8> {
    let mut out = tag.to_be_bytes()[1..].to_vec();
    out.push(code);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + padding(body.len()), 0);
    out
}

#[test]
fn spec_examples_encode_exactly() {
    // KMIP 1.4 section 9.1.2 examples.
    assert_eq!(
        hex::encode(Ttlv::integer(Tag(0x420020), 8).encode()),
        "42002002000000040000000800000000"
    );
    assert_eq!(
        hex::encode(Ttlv::long(Tag(0x420020), 123456789000000000).encode()),
        "420020030000000801b69b4ba5749200"
    );
    assert_eq!(
        hex::encode(Ttlv::text(Tag(0x420020), "Hello World").encode()),
        "420020070000000b48656c6c6f20576f726c640000000000"
    );
    assert_eq!(
        hex::encode(Ttlv::bytes(Tag(0x420020), vec![1, 2, 3]).encode()),
        "42002008000000030102030000000000"
    );
    assert_eq!(
        hex::encode(Ttlv::boolean(Tag(0x420020), true).encode()),
        "42002006000000080000000000000001"
    );
    let s = Ttlv::structure(
        Tag(0x420020),
        vec![
            Ttlv::enumeration(Tag(0x420004), 254),
            Ttlv::integer(Tag(0x420005), 255),
        ],
    );
    assert_eq!(
        hex::encode(s.encode()),
        "42002001000000204200040500000004000000fe000000004200050200000004000000ff00000000"
    );
}

#[test]
fn every_type_round_trips() {
    let msg = Ttlv::structure(
        Tag::REQUEST_MESSAGE,
        vec![
            Ttlv::integer(Tag(0x420001), -5),
            Ttlv::long(Tag(0x420002), i64::MIN),
            Ttlv::new(
                Tag(0x420003),
                Value::BigInteger(Zeroizing::new(vec![0xff; 16])),
            ),
            Ttlv::enumeration(Tag(0x420004), 0x8000_0001),
            Ttlv::boolean(Tag(0x420005), false),
            Ttlv::text(Tag(0x420006), "ünïcode"),
            Ttlv::bytes(Tag(0x420007), vec![9; 13]),
            Ttlv::datetime(Tag(0x420008), 1_700_000_000),
            Ttlv::interval(Tag(0x420009), u32::MAX),
            Ttlv::new(Tag(0x42000A), Value::DateTimeExtended(-1)),
            Ttlv::structure(Tag(0x540001), vec![]),
        ],
    );
    let bytes = msg.encode();
    let decoded = decode(&bytes, &limits()).unwrap();
    assert_eq!(decoded, msg);
    assert_eq!(decoded.encode(), bytes);
    // The computed length is the encoded one, for the whole tree and for every item.
    assert_eq!(msg.encoded_len(), bytes.len());
    for child in msg.children() {
        assert_eq!(child.encoded_len(), child.encode().len(), "{child:?}");
    }
}

#[test]
fn truncated_input_is_rejected() {
    let bytes = Ttlv::structure(Tag(0x420078), vec![Ttlv::integer(Tag(0x420001), 1)]).encode();
    for cut in 0..bytes.len() {
        assert!(decode(&bytes[..cut], &limits()).is_err(), "cut at {cut}");
    }
}

#[test]
fn child_longer_than_parent_is_rejected() {
    let mut child = item(0x420001, 0x07, b"abcdefgh");
    child[7] = 64; // claims 64 bytes inside an 16-byte parent body
    let parent = item(0x420078, 0x01, &child);
    assert!(matches!(
        decode(&parent, &limits()),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn fixed_size_types_need_exact_lengths() {
    for (code, good) in [
        (0x02u8, 4usize),
        (0x05, 4),
        (0x0A, 4),
        (0x03, 8),
        (0x09, 8),
        (0x06, 8),
        (0x0B, 8),
    ] {
        for len in [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 16] {
            let buf = item(0x420001, code, &vec![0u8; len]);
            let result = decode(&buf, &limits());
            if len == good {
                assert!(result.is_ok(), "type {code:#x} len {len}");
            } else {
                assert!(
                    matches!(result, Err(DecodeError::BadLength { .. })),
                    "type {code:#x} len {len}: {result:?}"
                );
            }
        }
    }
}

#[test]
fn big_integer_length_must_be_a_positive_multiple_of_eight() {
    for len in [0usize, 7, 9] {
        let buf = item(0x420001, 0x04, &vec![1u8; len]);
        assert!(matches!(
            decode(&buf, &limits()),
            Err(DecodeError::BadLength { .. })
        ));
    }
    assert!(decode(&item(0x420001, 0x04, &[1u8; 24]), &limits()).is_ok());
}

#[test]
fn non_zero_padding_is_rejected() {
    let mut buf = Ttlv::integer(Tag(0x420001), 1).encode();
    buf[15] = 1;
    assert!(matches!(
        decode(&buf, &limits()),
        Err(DecodeError::NonZeroPadding { .. })
    ));
    let mut buf = Ttlv::text(Tag(0x420001), "abc").encode();
    buf[12] = b'x';
    assert!(matches!(
        decode(&buf, &limits()),
        Err(DecodeError::NonZeroPadding { .. })
    ));
}

#[test]
fn boolean_must_be_zero_or_one() {
    let buf = item(0x420001, 0x06, &2u64.to_be_bytes());
    assert!(matches!(
        decode(&buf, &limits()),
        Err(DecodeError::BadBoolean { .. })
    ));
}

#[test]
fn invalid_utf8_is_rejected() {
    for bad in [&[0xffu8, 0xfe][..], &[0xc0, 0xaf], &[0xed, 0xa0, 0x80]] {
        let buf = item(0x420001, 0x07, bad);
        assert!(matches!(
            decode(&buf, &limits()),
            Err(DecodeError::BadUtf8 { .. })
        ));
    }
}

#[test]
fn unknown_item_types_are_rejected() {
    for code in [0x00u8, 0x0C, 0x7F, 0xFF] {
        let buf = item(0x420001, code, &[0; 8]);
        assert!(matches!(
            decode(&buf, &limits()),
            Err(DecodeError::UnknownType { .. })
        ));
    }
}

#[test]
fn wrapping_lengths_do_not_overflow() {
    for len in [0xFFFF_FFF9u32, 0xFFFF_FFFF] {
        let mut buf = item(0x420001, 0x08, b"");
        buf[4..8].copy_from_slice(&len.to_be_bytes());
        assert!(decode(&buf, &limits()).is_err());
    }
}

#[test]
fn deep_nesting_is_rejected_without_recursing_past_the_limit() {
    // 10 000 nested structures, built inside out.
    let mut buf: Vec<u8> = Vec::new();
    for _ in 0..10_000 {
        buf = item(0x420078, 0x01, &buf);
    }
    let big = Limits {
        max_message_bytes: 1 << 20,
        max_depth: 64,
    };
    assert!(matches!(
        decode(&buf, &big),
        Err(DecodeError::TooDeep { limit: 64 })
    ));
    let mut ok: Vec<u8> = Vec::new();
    for _ in 0..64 {
        ok = item(0x420078, 0x01, &ok);
    }
    assert!(decode(&ok, &big).is_ok());
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut buf = Ttlv::integer(Tag(0x420001), 1).encode();
    buf.extend_from_slice(&[0; 8]);
    assert_eq!(
        decode(&buf, &limits()),
        Err(DecodeError::TrailingBytes { count: 8 })
    );
}

#[test]
fn frame_length_checks_limit_before_allocation() {
    let l = limits();
    let mut header = [0x42, 0x00, 0x78, 0x01, 0xFF, 0xFF, 0xFF, 0xFF];
    assert!(matches!(
        frame_length(&header, &l),
        Err(DecodeError::TooLarge { .. })
    ));
    header[4..8].copy_from_slice(&(2u32 << 20).to_be_bytes());
    assert!(matches!(
        frame_length(&header, &l),
        Err(DecodeError::TooLarge { .. })
    ));
    header[4..8].copy_from_slice(&16u32.to_be_bytes());
    assert_eq!(frame_length(&header, &l), Ok(24));
    header[3] = 0x07;
    assert!(frame_length(&header, &l).is_err());
}

#[test]
fn debug_output_hides_byte_strings() {
    let t = Ttlv::bytes(Tag::KEY_MATERIAL, vec![0xAB; 32]);
    let shown = format!("{t:?}");
    assert!(!shown.to_lowercase().contains("ab, "), "{shown}");
    assert!(!shown.contains("171"), "{shown}");
    assert!(shown.contains("32 bytes"));
}

#[test]
fn tag_names_come_from_the_generated_table() {
    assert_eq!(
        Tag::CRYPTOGRAPHIC_ALGORITHM.name(),
        Some("Cryptographic Algorithm")
    );
    assert_eq!(Tag::from_name("Object Type"), Some(Tag::OBJECT_TYPE));
    assert_eq!(format!("{:?}", Tag(0x540001)), "Tag(0x540001)");
}

#[test]
fn encode_allocates_its_buffer_once_at_the_exact_size() {
    let key = Ttlv::structure(
        Tag::KEY_BLOCK,
        vec![
            Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, 1),
            Ttlv::bytes(Tag::KEY_MATERIAL, vec![0x5a; 1000]),
            Ttlv::text(Tag::NAME_VALUE, "seventeen chars!!"),
        ],
    );
    let bytes = key.encode();
    // No reallocation happened: the first allocation was already the final size.
    assert_eq!(bytes.capacity(), bytes.len());
    assert_eq!(bytes.len(), key.encoded_len());
}
