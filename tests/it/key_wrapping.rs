//! Get with a Key Wrapping Specification: the key comes back under AES Key Wrap (RFC 3394)
//! with another key, TTLV-encoded or bare; the client unwraps it to the same bytes. And the
//! refusals: a key not meant for wrapping, other methods, parameters that are not the key's.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::crypto::keywrap;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    block_cipher_mode, cryptographic_usage_mask as usage, encoding_option, operation as op,
    result_reason as rr, wrapping_method,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{decode, Limits, Tag, Ttlv, Value};

fn parameters(mode: u32) -> Value {
    Value::Structure(vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, mode)])
}

fn spec(kek: &str, mode: Option<u32>, method: u32, encoding: Option<u32>) -> Ttlv {
    let mut info = vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, kek)];
    if let Some(m) = mode {
        info.push(Ttlv::new(Tag::CRYPTOGRAPHIC_PARAMETERS, parameters(m)));
    }
    let mut children = vec![
        Ttlv::enumeration(Tag::WRAPPING_METHOD, method),
        Ttlv::structure(Tag::ENCRYPTION_KEY_INFORMATION, info),
    ];
    if let Some(e) = encoding {
        children.push(Ttlv::enumeration(Tag::ENCODING_OPTION, e));
    }
    Ttlv::structure(Tag::KEY_WRAPPING_SPECIFICATION, children)
}

fn get_wrapped(u: &str, spec: Ttlv) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(spec);
    p
}

fn wrapped_value(got: &Ttlv) -> Vec<u8> {
    got.child(Tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .and_then(|b| b.child(Tag::KEY_VALUE))
        .and_then(Ttlv::as_bytes)
        .expect("a wrapped Key Value is a Byte String")
        .to_vec()
}

#[tokio::test]
async fn keys_come_back_wrapped_under_a_wrapping_key() {
    let server = TestServer::start().await;
    let v = V::V2_1;
    let mut c = server.client("alice", v).await;
    let mut kek_attrs = aes_attrs(None);
    kek_attrs.retain(|a| a.name != "Cryptographic Usage Mask");
    kek_attrs.push(Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::WRAP_KEY),
    ));
    kek_attrs.push(Attr::new(
        "Cryptographic Parameters",
        parameters(block_cipher_mode::NISTKEYWRAP),
    ));
    let kek = uid_of(
        &c.call(op::CREATE, create_payload(v, &kek_attrs))
            .await
            .unwrap(),
    );
    let mut sensitive = aes_attrs(None);
    sensitive.push(Attr::new("Sensitive", Value::Boolean(true)));
    let key = uid_of(
        &c.call(op::CREATE, create_payload(v, &sensitive))
            .await
            .unwrap(),
    );

    // The wrapping key must be active first.
    let nist = Some(block_cipher_mode::NISTKEYWRAP);
    let s = spec(&kek, nist, wrapping_method::ENCRYPT, None);
    let refused = c.call(op::GET, get_wrapped(&key, s.clone())).await;
    assert_eq!(reason(refused), rr::WRONG_KEY_LIFECYCLE_STATE);
    c.call(op::ACTIVATE, uid(&kek)).await.unwrap();
    let kek_bytes = key_bytes(&c.call(op::GET, uid(&kek)).await.unwrap());

    // Default encoding: the TTLV Key Value; a Sensitive key may leave wrapped.
    let got = c.call(op::GET, get_wrapped(&key, s)).await.unwrap();
    let plain = keywrap::unwrap(&kek_bytes, &wrapped_value(&got)).unwrap();
    let key_value = decode(&plain, &Limits::default()).unwrap();
    let material = key_value.child(Tag::KEY_MATERIAL).and_then(Ttlv::as_bytes);
    assert_eq!(material.map(<[u8]>::len), Some(32));
    let data = got
        .child(Tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .and_then(|b| b.child(Tag::KEY_WRAPPING_DATA))
        .expect("Key Wrapping Data");
    assert_eq!(
        data.child(Tag::WRAPPING_METHOD).and_then(Ttlv::as_enum),
        Some(wrapping_method::ENCRYPT)
    );

    // No Encoding: the bare key bytes, the same key.
    let bare = spec(
        &kek,
        None,
        wrapping_method::ENCRYPT,
        Some(encoding_option::NO_ENCODING),
    );
    let got = c.call(op::GET, get_wrapped(&key, bare)).await.unwrap();
    let bytes = keywrap::unwrap(&kek_bytes, &wrapped_value(&got)).unwrap();
    assert_eq!(Some(&bytes[..]), material);

    // Refusals.
    let other_mode = spec(
        &kek,
        Some(block_cipher_mode::CBC),
        wrapping_method::ENCRYPT,
        None,
    );
    let refused = c.call(op::GET, get_wrapped(&key, other_mode)).await;
    assert_eq!(reason(refused), rr::INVALID_FIELD);
    let mac = spec(&kek, nist, wrapping_method::MAC_SIGN, None);
    let refused = c.call(op::GET, get_wrapped(&key, mac)).await;
    assert_eq!(reason(refused), rr::FEATURE_NOT_SUPPORTED);
    let not_a_kek = spec(&key, None, wrapping_method::ENCRYPT, None);
    let refused = c.call(op::GET, get_wrapped(&kek, not_a_kek)).await;
    assert_eq!(reason(refused), rr::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK);
    let missing = Ttlv::structure(
        Tag::KEY_WRAPPING_SPECIFICATION,
        vec![Ttlv::enumeration(
            Tag::WRAPPING_METHOD,
            wrapping_method::ENCRYPT,
        )],
    );
    let refused = c.call(op::GET, get_wrapped(&key, missing)).await;
    assert_eq!(reason(refused), rr::INVALID_MESSAGE);
    server.stop().await;
}
