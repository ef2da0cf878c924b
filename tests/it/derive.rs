//! Derive Key against the real server: HKDF and HASH derivations give what `crypto::kdf`
//! computes, ENCRYPT gives AES-CBC computed here with the `aes` block function, Secret Data can be derived, base and derived objects are linked; and the
//! refusals: no Derive Key in the mask, several or no base objects, methods akm does not
//! perform, lengths the method cannot give, missing parameters, refused hashes.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::Client;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    block_cipher_mode as bcm, cryptographic_algorithm as alg, cryptographic_usage_mask as usage,
    derivation_method as dm, hashing_algorithm as ha, object_type as ot, operation as op,
    padding_method, result_reason as rr,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

const BASE: [u8; 32] = [0x21; 32];

async fn base_key(c: &mut Client, mask: i32) -> String {
    let attrs = vec![Attr::new("Cryptographic Usage Mask", Value::Integer(mask))];
    let u = uid_of(
        &c.call(op::REGISTER, register_key_payload(c.version, &BASE, &attrs))
            .await
            .unwrap(),
    );
    c.call(op::ACTIVATE, uid(&u)).await.unwrap();
    u
}

fn derive(
    v: V,
    object_type: u32,
    bases: &[&str],
    method: u32,
    params: Vec<Ttlv>,
    attrs: &[Attr],
) -> Vec<Ttlv> {
    let mut p = vec![Ttlv::enumeration(Tag::OBJECT_TYPE, object_type)];
    p.extend(bases.iter().map(|b| Ttlv::text(Tag::UNIQUE_IDENTIFIER, *b)));
    p.push(Ttlv::enumeration(Tag::DERIVATION_METHOD, method));
    p.push(Ttlv::structure(Tag::DERIVATION_PARAMETERS, params));
    p.push(template(v, attrs));
    p
}

fn sha(h: u32) -> Ttlv {
    Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, h)],
    )
}

fn aes(bits: i32) -> Vec<Attr> {
    vec![
        Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
        Attr::new("Cryptographic Length", Value::Integer(bits)),
        Attr::new("Cryptographic Usage Mask", Value::Integer(usage::ENCRYPT)),
    ]
}

#[tokio::test]
async fn derived_keys_match_the_kdf_and_are_linked() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("deriver", v).await;
        let base = base_key(&mut c, usage::DERIVE_KEY).await;
        let params = vec![
            sha(ha::SHA_384),
            Ttlv::bytes(Tag::SALT, b"salt".to_vec()),
            Ttlv::bytes(Tag::DERIVATION_DATA, b"info".to_vec()),
        ];
        let got = c
            .call(
                op::DERIVE_KEY,
                derive(v, ot::SYMMETRIC_KEY, &[&base], dm::HKDF, params, &aes(256)),
            )
            .await
            .unwrap();
        let derived = uid_of(&got);
        let expected = akm::crypto::kdf::hkdf(ha::SHA_384, b"salt", &BASE, b"info", 32).unwrap();
        assert_eq!(
            key_bytes(&c.call(op::GET, uid(&derived)).await.unwrap()),
            expected.as_slice()
        );
        let links = format!("{:?}", get_attrs(&mut c, &base, &["Link"]).await);
        assert!(links.contains(&derived), "{links}");
        let links = format!("{:?}", get_attrs(&mut c, &derived, &["Link"]).await);
        assert!(links.contains(&base), "{links}");
        // HASH over the Derivation Data into Secret Data.
        let params = vec![
            sha(ha::SHA_256),
            Ttlv::bytes(Tag::DERIVATION_DATA, b"seed".to_vec()),
        ];
        let attrs = vec![
            Attr::new("Cryptographic Length", Value::Integer(256)),
            Attr::new(
                "Cryptographic Usage Mask",
                Value::Integer(usage::DERIVE_KEY),
            ),
        ];
        let got = c
            .call(
                op::DERIVE_KEY,
                derive(v, ot::SECRET_DATA, &[&base], dm::HASH, params, &attrs),
            )
            .await
            .unwrap();
        let secret = key_bytes(&c.call(op::GET, uid(&uid_of(&got))).await.unwrap());
        assert_eq!(
            secret,
            akm::crypto::digest::hash(ha::SHA_256, b"seed").unwrap()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn derive_key_refusals() {
    let server = TestServer::start().await;
    let v = V::V2_1;
    let mut c = server.client("deriver", v).await;
    let base = base_key(&mut c, usage::DERIVE_KEY).await;
    let data = || {
        vec![
            sha(ha::SHA_256),
            Ttlv::bytes(Tag::DERIVATION_DATA, b"d".to_vec()),
        ]
    };
    let call = |bases: Vec<String>, method: u32, params: Vec<Ttlv>, attrs: Vec<Attr>| {
        let b: Vec<&str> = bases.iter().map(String::as_str).collect();
        derive(v, ot::SYMMETRIC_KEY, &b, method, params, &attrs)
    };
    let cases: Vec<(Vec<Ttlv>, u32)> = vec![
        // No Derive Key in the base's mask.
        (
            call(
                vec![base_key(&mut c, usage::ENCRYPT).await],
                dm::HMAC,
                data(),
                aes(128),
            ),
            rr::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK,
        ),
        // Two base objects, none.
        (
            call(vec![base.clone(), base.clone()], dm::HMAC, data(), aes(128)),
            rr::INVALID_MESSAGE,
        ),
        (
            call(vec![], dm::HMAC, data(), aes(128)),
            rr::INVALID_MESSAGE,
        ),
        // Methods akm does not perform.
        (
            call(vec![base.clone()], dm::NIST800_108_F, data(), aes(128)),
            rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS,
        ),
        // HMAC gives 32 bytes at most with SHA-256; AES-100; no algorithm.
        (
            call(
                vec![base.clone()],
                dm::HMAC,
                data(),
                vec![
                    Attr::new(
                        "Cryptographic Algorithm",
                        Value::Enumeration(alg::HMAC_SHA512),
                    ),
                    Attr::new("Cryptographic Length", Value::Integer(512)),
                ],
            ),
            rr::INVALID_FIELD,
        ),
        (
            call(vec![base.clone()], dm::HMAC, data(), aes(100)),
            rr::INVALID_FIELD,
        ),
        (
            call(
                vec![base.clone()],
                dm::HMAC,
                data(),
                vec![Attr::new("Cryptographic Length", Value::Integer(128))],
            ),
            rr::INVALID_MESSAGE,
        ),
        // Missing salt, missing data, MD5.
        (
            call(
                vec![base.clone()],
                dm::PBKDF2,
                vec![sha(ha::SHA_256), Ttlv::integer(Tag::ITERATION_COUNT, 10)],
                aes(128),
            ),
            rr::INVALID_MESSAGE,
        ),
        (
            call(
                vec![base.clone()],
                dm::NIST800_108_C,
                vec![sha(ha::SHA_256)],
                aes(128),
            ),
            rr::INVALID_MESSAGE,
        ),
        (
            call(
                vec![base.clone()],
                dm::HMAC,
                vec![
                    sha(ha::MD5),
                    Ttlv::bytes(Tag::DERIVATION_DATA, b"d".to_vec()),
                ],
                aes(128),
            ),
            rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS,
        ),
        // PBKDF2 with zero iterations.
        (
            call(
                vec![base.clone()],
                dm::PBKDF2,
                vec![
                    sha(ha::SHA_256),
                    Ttlv::bytes(Tag::SALT, b"s".to_vec()),
                    Ttlv::integer(Tag::ITERATION_COUNT, 0),
                ],
                aes(128),
            ),
            rr::INVALID_FIELD,
        ),
    ];
    for (i, (payload, expected)) in cases.into_iter().enumerate() {
        assert_eq!(
            reason(c.call(op::DERIVE_KEY, payload).await),
            expected,
            "case {i}"
        );
    }
    // Deriving a Public Key is not a thing.
    let payload = derive(v, ot::PUBLIC_KEY, &[&base], dm::HMAC, data(), &aes(128));
    assert_eq!(
        reason(c.call(op::DERIVE_KEY, payload).await),
        rr::INVALID_FIELD
    );
    server.stop().await;
}

/// AES-256-CBC with PKCS#5 padding, computed here from the `aes` crate's block function alone
/// (not through akm's `crypto::cipher`), as the known answer for the ENCRYPT derivation.
fn aes256_cbc_pkcs5(key: &[u8], iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
    use aes::cipher::{BlockEncrypt, KeyInit};
    let cipher = aes::Aes256::new_from_slice(key).unwrap();
    let mut buf = data.to_vec();
    let pad = 16 - buf.len() % 16;
    buf.extend(std::iter::repeat_n(pad as u8, pad));
    let mut chain = *iv;
    for chunk in buf.chunks_exact_mut(16) {
        chunk.iter_mut().zip(chain).for_each(|(b, c)| *b ^= c);
        cipher.encrypt_block(aes::Block::from_mut_slice(chunk));
        chain.copy_from_slice(chunk);
    }
    buf
}

fn encrypt_params(algorithm: u32, mode: Option<u32>) -> Ttlv {
    let mut p = vec![
        Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, algorithm),
        Ttlv::enumeration(Tag::PADDING_METHOD, padding_method::PKCS5),
    ];
    p.extend(mode.map(|m| Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, m)));
    Ttlv::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, p)
}

#[tokio::test]
async fn encrypt_derivation_is_aes_cbc_of_the_derivation_data() {
    let server = TestServer::start().await;
    let iv = [0x5a; 16];
    // 29 bytes: PKCS#5 pads them to 32, the derived length.
    let data = b"derive a key by encrypting it".to_vec();
    let expected = aes256_cbc_pkcs5(&BASE, &iv, &data);
    assert_eq!(expected.len(), 32);
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("deriver", v).await;
        let base = base_key(&mut c, usage::DERIVE_KEY).await;
        let params = |crypto: Option<Ttlv>, iv: Option<&[u8]>| {
            let mut p: Vec<Ttlv> = crypto.into_iter().collect();
            p.extend(iv.map(|iv| Ttlv::bytes(Tag::INITIALIZATION_VECTOR, iv.to_vec())));
            p.push(Ttlv::bytes(Tag::DERIVATION_DATA, data.clone()));
            p
        };
        // Secret Data of the whole ciphertext, then an AES-128 key of its first 16 bytes.
        let attrs = vec![
            Attr::new("Cryptographic Length", Value::Integer(256)),
            Attr::new(
                "Cryptographic Usage Mask",
                Value::Integer(usage::DERIVE_KEY),
            ),
        ];
        let crypto = Some(encrypt_params(alg::AES, Some(bcm::CBC)));
        let got = c
            .call(
                op::DERIVE_KEY,
                derive(
                    v,
                    ot::SECRET_DATA,
                    &[&base],
                    dm::ENCRYPT,
                    params(crypto.clone(), Some(&iv)),
                    &attrs,
                ),
            )
            .await
            .unwrap();
        let secret = key_bytes(&c.call(op::GET, uid(&uid_of(&got))).await.unwrap());
        assert_eq!(secret, expected.as_slice());
        let got = c
            .call(
                op::DERIVE_KEY,
                derive(
                    v,
                    ot::SYMMETRIC_KEY,
                    &[&base],
                    dm::ENCRYPT,
                    params(crypto.clone(), Some(&iv)),
                    &aes(128),
                ),
            )
            .await
            .unwrap();
        let key = key_bytes(&c.call(op::GET, uid(&uid_of(&got))).await.unwrap());
        assert_eq!(key, &expected[..16]);

        // The refusals, each with the reason a client can act on.
        let cases: Vec<(Vec<Ttlv>, u32)> = vec![
            // No Cryptographic Parameters.
            (params(None, Some(&iv)), rr::INVALID_MESSAGE),
            // CBC without an IV.
            (params(crypto.clone(), None), rr::INVALID_MESSAGE),
            // Blowfish (what PyKMIP's integration test asks for) is refused.
            (
                params(
                    Some(encrypt_params(alg::BLOWFISH, Some(bcm::CBC))),
                    Some(&iv[..8]),
                ),
                rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS,
            ),
            // GCM: the tag would have nowhere to go.
            (
                params(
                    Some(encrypt_params(alg::AES, Some(bcm::GCM))),
                    Some(&iv[..12]),
                ),
                rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS,
            ),
            // A wrong-length IV.
            (params(crypto.clone(), Some(&iv[..8])), rr::INVALID_FIELD),
        ];
        for (i, (p, expected)) in cases.into_iter().enumerate() {
            let payload = derive(v, ot::SECRET_DATA, &[&base], dm::ENCRYPT, p, &attrs);
            let got = c.call(op::DERIVE_KEY, payload).await;
            let message = format!("{got:?}");
            // KMIP 1.x has no Unsupported Cryptographic Parameters: akm answers Invalid Field.
            let expected = v.result_reason(expected);
            assert_eq!(reason(got), expected, "case {i}: {message}");
        }
        // More than the 32 bytes of ciphertext.
        let long = vec![
            Attr::new("Cryptographic Length", Value::Integer(512)),
            Attr::new(
                "Cryptographic Usage Mask",
                Value::Integer(usage::DERIVE_KEY),
            ),
        ];
        let payload = derive(
            v,
            ot::SECRET_DATA,
            &[&base],
            dm::ENCRYPT,
            params(crypto.clone(), Some(&iv)),
            &long,
        );
        assert_eq!(
            reason(c.call(op::DERIVE_KEY, payload).await),
            rr::INVALID_FIELD
        );
    }
    server.stop().await;
}
