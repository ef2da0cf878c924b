//! TTLV codec micro-benchmark: encode and decode of a typical Get response (a 256-bit key
//! with its attributes). `cargo bench --bench codec` measures; under `cargo test` it runs a
//! few iterations only, as a smoke test.

use akm::kmip::attributes::{encode_attributes, Attr};
use akm::kmip::{encode_response, ProtocolVersion, ResponseItem};
use akm::ttlv::{decode, Limits, Tag, Ttlv, Value};
use std::hint::black_box;
use std::time::Instant;

fn sample() -> Ttlv {
    let attrs = vec![
        Attr::new(
            "Unique Identifier",
            Value::TextString("4b1c1c1e-7e0f-4a53-9a7b-5a6d1f2e3c4d".into()),
        ),
        Attr::new("Cryptographic Algorithm", Value::Enumeration(3)),
        Attr::new("Cryptographic Length", Value::Integer(256)),
        Attr::new("State", Value::Enumeration(2)),
        Attr::new("Initial Date", Value::DateTime(1_700_000_000)),
    ];
    let mut payload = vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, "4b1c1c1e")];
    payload.extend(encode_attributes(&attrs, ProtocolVersion::V1_4));
    payload.push(Ttlv::bytes(Tag::KEY_MATERIAL, vec![7u8; 32]));
    encode_response(
        ProtocolVersion::V1_4,
        1_700_000_000,
        &[ResponseItem {
            operation: Some(10),
            batch_id: None,
            result: Ok(Some(Ttlv::structure(Tag::RESPONSE_PAYLOAD, payload))),
            undone: false,
        }],
    )
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let iterations = if measuring { 200_000 } else { 100 };
    let msg = sample();
    let bytes = msg.encode();
    let limits = Limits::default();

    let start = Instant::now();
    for _ in 0..iterations {
        black_box(black_box(&msg).encode());
    }
    let encode = start.elapsed();
    let start = Instant::now();
    for _ in 0..iterations {
        black_box(decode(black_box(&bytes), &limits).expect("sample decodes"));
    }
    let decoding = start.elapsed();
    let per = |d: std::time::Duration| d.as_nanos() as f64 / iterations as f64;
    println!(
        "codec: {} byte message, encode {:.0} ns, decode {:.0} ns ({iterations} iterations)",
        bytes.len(),
        per(encode),
        per(decoding)
    );
}
