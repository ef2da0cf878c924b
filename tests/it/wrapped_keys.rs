//! Keys on the wire in wrapped form: PCI mode (`crypto.pci_mode`) refuses a clear Get and a
//! clear Register of a symmetric key alike but serves and takes it wrapped; Get wrapped with AES Key Wrap Padding (RFC 5649);
//! Register of a key wrapped under a key akm holds (RFC 3394 and RFC 5649, TTLV-encoded or
//! bare), which akm unwraps and serves back; every refusal of a wrapped Register; and a key
//! wrapped under a key akm does not hold (or that the caller may not use), kept and served
//! as registered and refused for any use.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::{Client, ClientError};
use akm::crypto::{keywrap, kwp};
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    block_cipher_mode as bcm, cryptographic_algorithm as alg, cryptographic_usage_mask as usage,
    encoding_option, key_format_type as kft, object_type as ot, operation as op,
    result_reason as rr, wrapping_method,
};
use akm::kmip::ProtocolVersion as V;
use akm::ops::CryptoPolicy;
use akm::ttlv::{Tag, Ttlv, Value};

const KEK: [u8; 32] = [0x3C; 32];

fn params(mode: u32) -> Ttlv {
    Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, mode)],
    )
}

/// Registers the wrapping key (Wrap and Unwrap Key, the given mode) and activates it.
async fn wrapping_key(c: &mut Client, mode: u32) -> String {
    let attrs = vec![
        Attr::new(
            "Cryptographic Usage Mask",
            Value::Integer(usage::WRAP_KEY | usage::UNWRAP_KEY),
        ),
        Attr::new("Cryptographic Parameters", params(mode).value),
    ];
    let u = uid_of(
        &c.call(op::REGISTER, register_key_payload(c.version, &KEK, &attrs))
            .await
            .unwrap(),
    );
    c.call(op::ACTIVATE, uid(&u)).await.unwrap();
    u
}

fn wrap_spec(kek: &str, mode: u32) -> Ttlv {
    Ttlv::structure(
        Tag::KEY_WRAPPING_SPECIFICATION,
        vec![
            Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
            Ttlv::structure(
                Tag::ENCRYPTION_KEY_INFORMATION,
                vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, kek), params(mode)],
            ),
            Ttlv::enumeration(Tag::ENCODING_OPTION, encoding_option::NO_ENCODING),
        ],
    )
}

fn wrapped_value(got: &Ttlv) -> Vec<u8> {
    got.child(Tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .and_then(|b| b.child(Tag::KEY_VALUE))
        .and_then(Ttlv::as_bytes)
        .expect("a wrapped Key Value is a Byte String")
        .to_vec()
}

/// Creates a wrapping key on the server and activates it (in PCI mode no key can be
/// registered in the clear).
async fn created_wrapping_key(c: &mut Client, mode: u32) -> String {
    let attrs = vec![
        Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
        Attr::new("Cryptographic Length", Value::Integer(256)),
        Attr::new(
            "Cryptographic Usage Mask",
            Value::Integer(usage::WRAP_KEY | usage::UNWRAP_KEY),
        ),
        Attr::new("Cryptographic Parameters", params(mode).value),
    ];
    let u = uid_of(
        &c.call(op::CREATE, create_payload(c.version, &attrs))
            .await
            .unwrap(),
    );
    c.call(op::ACTIVATE, uid(&u)).await.unwrap();
    u
}

fn refused_by_pci(got: Result<Ttlv, ClientError>, expected: u32, says: &str) {
    match got {
        Err(ClientError::Failed { reason, message }) => {
            assert_eq!(reason, expected, "{message}");
            assert!(
                message.contains("PCI mode") && message.contains(says),
                "{message}"
            );
        }
        other => panic!("PCI mode let it through: {other:?}"),
    }
}

#[tokio::test]
async fn pci_mode_refuses_clear_register_and_clear_get_alike_and_allows_them_wrapped() {
    let server = TestServer::start_with_policy(CryptoPolicy { pci_mode: true }).await;
    let mut c = server.client("alice", V::V2_1).await;
    // No manual establishment of keys in the clear.
    refused_by_pci(
        c.call(
            op::REGISTER,
            register_key_payload(V::V2_1, &[7u8; 32], &aes_attrs(Some("typed-in"))),
        )
        .await,
        rr::PERMISSION_DENIED,
        "registered in the clear",
    );
    let kek = created_wrapping_key(&mut c, bcm::NISTKEYWRAP).await;
    let k = create_key(&mut c, Some("card-data")).await;
    refused_by_pci(
        c.call(op::GET, uid(&k)).await,
        rr::SENSITIVE,
        "only wrapped",
    );
    // KMIP 1.4 has the Sensitive reason too.
    let mut old = server.client("alice", V::V1_4).await;
    assert_eq!(reason(old.call(op::GET, uid(&k)).await), rr::SENSITIVE);
    // Wrapped both ways is allowed: Get under the server's wrapping key, then Register of
    // those wrapped bytes (unwrapped by the server) establishes the same key again.
    let mut req = uid(&k);
    req.push(wrap_spec(&kek, bcm::NISTKEYWRAP));
    let w = wrapped_value(&c.call(op::GET, req).await.unwrap());
    assert_eq!(w.len(), 40, "RFC 3394 of 32 bytes");
    let payload = register_wrapped(
        V::V2_1,
        &kek,
        Some(bcm::NISTKEYWRAP),
        Some(encoding_option::NO_ENCODING),
        Ttlv::bytes(Tag::KEY_VALUE, w.clone()),
    );
    let k2 = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
    refused_by_pci(
        c.call(op::GET, uid(&k2)).await,
        rr::SENSITIVE,
        "only wrapped",
    );
    let mut req = uid(&k2);
    req.push(wrap_spec(&kek, bcm::NISTKEYWRAP));
    // RFC 3394 is deterministic: the same key under the same wrapping key, the same bytes.
    assert_eq!(wrapped_value(&c.call(op::GET, req).await.unwrap()), w);
    // Secret Data is no key PCI mode keeps: it still registers and comes back.
    let secret = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SECRET_DATA),
        template(
            V::V2_1,
            &[Attr::new(
                "Cryptographic Usage Mask",
                Value::Integer(usage::DERIVE_KEY),
            )],
        ),
        Ttlv::structure(
            Tag::SECRET_DATA,
            vec![
                Ttlv::enumeration(Tag::SECRET_DATA_TYPE, 1),
                Ttlv::structure(
                    Tag::KEY_BLOCK,
                    vec![
                        Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::OPAQUE),
                        Ttlv::structure(
                            Tag::KEY_VALUE,
                            vec![Ttlv::bytes(Tag::KEY_MATERIAL, b"pw".to_vec())],
                        ),
                    ],
                ),
            ],
        ),
    ];
    let s = uid_of(&c.call(op::REGISTER, secret).await.unwrap());
    c.call(op::GET, uid(&s)).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn get_wrapped_with_aes_key_wrap_padding() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let kek = wrapping_key(&mut c, bcm::AESKEYWRAPPADDING).await;
    let k = create_key(&mut c, None).await;
    let clear = key_bytes(&c.call(op::GET, uid(&k)).await.unwrap());
    let mut req = uid(&k);
    req.push(wrap_spec(&kek, bcm::AESKEYWRAPPADDING));
    let got = c.call(op::GET, req).await.unwrap();
    let w = wrapped_value(&got);
    assert_eq!(w.len(), 40);
    assert_eq!(kwp::unwrap(&KEK, &w).unwrap().as_slice(), clear);
    server.stop().await;
}

/// A Register payload for AES key bytes already wrapped (`wrapped`) under `kek`.
fn register_wrapped(
    version: V,
    kek: &str,
    mode: Option<u32>,
    encoding: Option<u32>,
    wrapped: Ttlv,
) -> Vec<Ttlv> {
    let mut info = vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, kek)];
    if let Some(m) = mode {
        info.push(params(m));
    }
    let mut data = vec![
        Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
        Ttlv::structure(Tag::ENCRYPTION_KEY_INFORMATION, info),
    ];
    if let Some(e) = encoding {
        data.push(Ttlv::enumeration(Tag::ENCODING_OPTION, e));
    }
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        template(
            version,
            &[Attr::new(
                "Cryptographic Usage Mask",
                Value::Integer(usage::ENCRYPT | usage::DECRYPT),
            )],
        ),
        Ttlv::structure(
            Tag::SYMMETRIC_KEY,
            vec![Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::RAW),
                    wrapped,
                    Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                    Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 256),
                    Ttlv::structure(Tag::KEY_WRAPPING_DATA, data),
                ],
            )],
        ),
    ]
}

#[tokio::test]
async fn register_of_a_wrapped_key_unwraps_it() {
    let server = TestServer::start().await;
    for version in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", version).await;
        let kek = wrapping_key(&mut c, bcm::NISTKEYWRAP).await;
        let key = [0x77u8; 32];
        // RFC 3394, bare key bytes.
        let w = keywrap::wrap(&KEK, &key).unwrap();
        let payload = register_wrapped(
            version,
            &kek,
            None,
            Some(encoding_option::NO_ENCODING),
            Ttlv::bytes(Tag::KEY_VALUE, w),
        );
        let u = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
        assert_eq!(key_bytes(&c.call(op::GET, uid(&u)).await.unwrap()), key);
        // RFC 3394, TTLV-encoded Key Value (the default encoding).
        let value = Ttlv::structure(
            Tag::KEY_VALUE,
            vec![Ttlv::bytes(Tag::KEY_MATERIAL, key.to_vec())],
        );
        let w = keywrap::wrap(&KEK, &value.encode()).unwrap();
        let payload = register_wrapped(
            version,
            &kek,
            Some(bcm::NISTKEYWRAP),
            None,
            Ttlv::bytes(Tag::KEY_VALUE, w),
        );
        let u = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
        assert_eq!(key_bytes(&c.call(op::GET, uid(&u)).await.unwrap()), key);
        // RFC 5649.
        let w = kwp::wrap(&KEK, &key).unwrap();
        let payload = register_wrapped(
            version,
            &kek,
            Some(bcm::AESKEYWRAPPADDING),
            Some(encoding_option::NO_ENCODING),
            Ttlv::bytes(Tag::KEY_VALUE, w),
        );
        let u = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
        assert_eq!(key_bytes(&c.call(op::GET, uid(&u)).await.unwrap()), key);
    }
    server.stop().await;
}

#[tokio::test]
async fn wrapped_register_refusals() {
    let server = TestServer::start().await;
    let v = V::V2_1;
    let mut c = server.client("alice", v).await;
    let kek = wrapping_key(&mut c, bcm::NISTKEYWRAP).await;
    let bare = Some(encoding_option::NO_ENCODING);
    let good = keywrap::wrap(&KEK, &[1u8; 32]).unwrap();
    // Tampered: the integrity check fails.
    let mut bad = good.clone();
    bad[3] ^= 1;
    let r = c
        .call(
            op::REGISTER,
            register_wrapped(v, &kek, None, bare, Ttlv::bytes(Tag::KEY_VALUE, bad)),
        )
        .await;
    assert_eq!(reason(r), rr::CRYPTOGRAPHIC_FAILURE);
    // A wrapping key without Unwrap Key in its mask.
    let plain_key = create_key(&mut c, None).await;
    c.call(op::ACTIVATE, uid(&plain_key)).await.unwrap();
    let r = c
        .call(
            op::REGISTER,
            register_wrapped(
                v,
                &plain_key,
                None,
                bare,
                Ttlv::bytes(Tag::KEY_VALUE, good.clone()),
            ),
        )
        .await;
    assert_eq!(reason(r), rr::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK);
    // A mode akm does not unwrap; a Key Value that is not bytes.
    let r = c
        .call(
            op::REGISTER,
            register_wrapped(
                v,
                &kek,
                Some(bcm::CBC),
                bare,
                Ttlv::bytes(Tag::KEY_VALUE, good.clone()),
            ),
        )
        .await;
    assert_eq!(reason(r), rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS);
    let r = c
        .call(
            op::REGISTER,
            register_wrapped(v, &kek, None, bare, Ttlv::structure(Tag::KEY_VALUE, vec![])),
        )
        .await;
    assert_eq!(reason(r), rr::INVALID_FIELD);
    // TTLV encoding of something that is not a Key Value.
    let w = keywrap::wrap(&KEK, &[0u8; 32]).unwrap();
    let r = c
        .call(
            op::REGISTER,
            register_wrapped(v, &kek, None, None, Ttlv::bytes(Tag::KEY_VALUE, w)),
        )
        .await;
    assert_eq!(reason(r), rr::INVALID_FIELD);
    server.stop().await;
}

/// The Key Wrapping Data of a key wrapped under `kek` (RFC 3394, bare key bytes).
fn wrapping_data(kek: &str) -> Ttlv {
    Ttlv::structure(
        Tag::KEY_WRAPPING_DATA,
        vec![
            Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
            Ttlv::structure(
                Tag::ENCRYPTION_KEY_INFORMATION,
                vec![
                    Ttlv::text(Tag::UNIQUE_IDENTIFIER, kek),
                    params(bcm::NISTKEYWRAP),
                ],
            ),
            Ttlv::enumeration(Tag::ENCODING_OPTION, encoding_option::NO_ENCODING),
        ],
    )
}

fn key_block(got: &Ttlv) -> &Ttlv {
    got.child(Tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .expect("a Symmetric Key with a Key Block")
}

fn get_with_wrap_type(u: &str, wrap_type: u32) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(Ttlv::enumeration(Tag::KEY_WRAP_TYPE, wrap_type));
    p
}

#[tokio::test]
async fn a_key_wrapped_under_a_key_not_here_is_kept_and_served_as_registered() {
    use akm::kmip::enums::{key_wrap_type, link_type};
    let server = TestServer::start().await;
    for version in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", version).await;
        // Wrapped elsewhere (escrow): akm never sees the wrapping key.
        let w = keywrap::wrap(&[0x11u8; 32], &[0x22u8; 32]).unwrap();
        for value in [
            // KMIP's form, and PyKMIP's (a Key Value structure around the wrapped bytes).
            Ttlv::bytes(Tag::KEY_VALUE, w.clone()),
            Ttlv::structure(
                Tag::KEY_VALUE,
                vec![Ttlv::bytes(Tag::KEY_MATERIAL, w.clone())],
            ),
        ] {
            let payload = register_wrapped(
                version,
                "escrow-kek-42",
                Some(bcm::NISTKEYWRAP),
                Some(encoding_option::NO_ENCODING),
                value.clone(),
            );
            let u = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
            // Get, with no Key Wrap Type or As Registered: the Key Block as given.
            for request in [
                uid(&u),
                get_with_wrap_type(&u, key_wrap_type::AS_REGISTERED),
            ] {
                let got = c.call(op::GET, request).await.unwrap();
                let block = key_block(&got);
                assert_eq!(block.child(Tag::KEY_VALUE), Some(&value));
                assert_eq!(
                    block.child(Tag::KEY_WRAPPING_DATA),
                    Some(&wrapping_data("escrow-kek-42"))
                );
                assert_eq!(
                    block.child(Tag::KEY_FORMAT_TYPE).and_then(Ttlv::as_enum),
                    Some(kft::RAW)
                );
                assert_eq!(
                    block
                        .child(Tag::CRYPTOGRAPHIC_LENGTH)
                        .and_then(Ttlv::as_int),
                    Some(256)
                );
            }
            // Unwrapped it cannot be: the wrapping key is not here.
            let r = c
                .call(op::GET, get_with_wrap_type(&u, key_wrap_type::NOT_WRAPPED))
                .await;
            let expected = if version.is_v2() {
                rr::WRAPPING_OBJECT_NOT_FOUND
            } else {
                rr::INVALID_FIELD
            };
            assert_eq!(reason(r), expected);
            // Nor wrapped again, nor in another format, nor used.
            let mut p = uid(&u);
            p.push(wrap_spec("escrow-kek-42", bcm::NISTKEYWRAP));
            assert_eq!(reason(c.call(op::GET, p).await), rr::FEATURE_NOT_SUPPORTED);
            let mut p = uid(&u);
            p.push(Ttlv::enumeration(
                Tag::KEY_FORMAT_TYPE,
                kft::TRANSPARENT_SYMMETRIC_KEY,
            ));
            assert_eq!(
                reason(c.call(op::GET, p).await),
                rr::KEY_FORMAT_TYPE_NOT_SUPPORTED
            );
            c.call(op::ACTIVATE, uid(&u)).await.unwrap();
            let encrypt = vec![
                Ttlv::text(Tag::UNIQUE_IDENTIFIER, u.clone()),
                Ttlv::structure(
                    Tag::CRYPTOGRAPHIC_PARAMETERS,
                    vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, bcm::GCM)],
                ),
                Ttlv::bytes(Tag::DATA, b"hello".to_vec()),
            ];
            assert_eq!(reason(c.call(op::ENCRYPT, encrypt).await), expected);
            // It still goes through its life cycle.
            c.call(op::REVOKE, revoke_payload(&u)).await.unwrap();
            c.call(op::DESTROY, uid(&u)).await.unwrap();
        }
        // Sensitive it still leaves, since it leaves wrapped; and it is Fresh until then.
        let mut payload = register_wrapped(
            version,
            "escrow-kek-42",
            None,
            Some(encoding_option::NO_ENCODING),
            Ttlv::bytes(Tag::KEY_VALUE, w.clone()),
        );
        payload[1] = template(
            version,
            &[
                Attr::new("Cryptographic Usage Mask", Value::Integer(usage::ENCRYPT)),
                Attr::new("Sensitive", Value::Boolean(true)),
            ],
        );
        let u = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
        let fresh = |attrs: Vec<Attr>| attrs.into_iter().map(|a| a.value).collect::<Vec<_>>();
        assert_eq!(
            fresh(get_attrs(&mut c, &u, &["Fresh"]).await),
            [Value::Boolean(true)]
        );
        let got = c.call(op::GET, uid(&u)).await.unwrap();
        assert_eq!(wrapped_value(&got), w);
        assert_eq!(
            fresh(get_attrs(&mut c, &u, &["Fresh"]).await),
            [Value::Boolean(false)]
        );
        // KMIP 2.1 §6.1.40: linked to its wrapping key (a 2.x Link Type).
        if version.is_v2() {
            let payload = register_wrapped(
                version,
                "escrow-kek-42",
                None,
                Some(encoding_option::NO_ENCODING),
                Ttlv::bytes(Tag::KEY_VALUE, w.clone()),
            );
            let u = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
            let links = get_attrs(&mut c, &u, &["Link"]).await;
            let link = Value::Structure(vec![
                Ttlv::enumeration(Tag::LINK_TYPE, link_type::WRAPPING_KEY_LINK),
                Ttlv::text(Tag::LINKED_OBJECT_IDENTIFIER, "escrow-kek-42"),
            ]);
            assert!(links.iter().any(|a| a.value == link), "{links:?}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_wrapping_key_the_caller_may_not_use_is_as_good_as_absent() {
    let server = TestServer::start().await;
    let v = V::V2_1;
    let mut alice = server.client("alice", v).await;
    let kek = wrapping_key(&mut alice, bcm::NISTKEYWRAP).await;
    let w = keywrap::wrap(&KEK, &[0x55u8; 32]).unwrap();
    let payload = || {
        register_wrapped(
            v,
            &kek,
            None,
            Some(encoding_option::NO_ENCODING),
            Ttlv::bytes(Tag::KEY_VALUE, w.clone()),
        )
    };
    // Bob may not use alice's key: his copy stays wrapped, and he learns nothing of hers.
    let mut bob = server.client("bob", v).await;
    let u = uid_of(&bob.call(op::REGISTER, payload()).await.unwrap());
    let got = bob.call(op::GET, uid(&u)).await.unwrap();
    assert_eq!(wrapped_value(&got), w);
    assert!(key_block(&got).child(Tag::KEY_WRAPPING_DATA).is_some());
    // Alice may: hers is unwrapped at Register.
    let u = uid_of(&alice.call(op::REGISTER, payload()).await.unwrap());
    assert_eq!(
        key_bytes(&alice.call(op::GET, uid(&u)).await.unwrap()),
        [0x55u8; 32]
    );
    server.stop().await;
}

fn revoke_payload(u: &str) -> Vec<Ttlv> {
    vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, u),
        Ttlv::structure(
            Tag::REVOCATION_REASON,
            vec![Ttlv::enumeration(
                Tag::REVOCATION_REASON_CODE,
                akm::kmip::enums::revocation_reason_code::UNSPECIFIED,
            )],
        ),
    ]
}
