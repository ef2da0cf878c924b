//! Create Key Pair, Sign and Signature Verify against the real server: RSA 2048/3072 and EC
//! P-256/P-384 pairs are made, linked and served in their formats; signatures verify (also
//! with ring directly, from the served public key), tampered data does not; and the
//! refusals: wrong key type, usage mask, refused hashes (SHA-1, MD5), bad sizes.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::Client;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    cryptographic_algorithm as alg, cryptographic_usage_mask as usage,
    digital_signature_algorithm as dsa, hashing_algorithm as ha, key_format_type as kft,
    operation as op, padding_method as pad, result_reason as rr, validity_indicator,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

/// Create Key Pair payload in the version's encoding.
fn pair_payload(v: V, algorithm: u32, bits: i32, key_name: Option<&str>) -> Vec<Ttlv> {
    let common = vec![
        Attr::new("Cryptographic Algorithm", Value::Enumeration(algorithm)),
        Attr::new("Cryptographic Length", Value::Integer(bits)),
    ];
    let mut private = vec![Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::SIGN),
    )];
    if let Some(n) = key_name {
        private.push(Attr::new("Name", name(n)));
    }
    let public = vec![Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::VERIFY),
    )];
    let (c, pr, pu) = if v.is_v2() {
        (
            Tag::COMMON_ATTRIBUTES,
            Tag::PRIVATE_KEY_ATTRIBUTES,
            Tag::PUBLIC_KEY_ATTRIBUTES,
        )
    } else {
        (
            Tag::COMMON_TEMPLATE_ATTRIBUTE,
            Tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
            Tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE,
        )
    };
    let wrap = |tag, attrs: &[Attr]| Ttlv::structure(tag, template(v, attrs).children().to_vec());
    vec![wrap(c, &common), wrap(pr, &private), wrap(pu, &public)]
}

pub(crate) async fn make_pair(c: &mut Client, algorithm: u32, bits: i32) -> (String, String) {
    let v = c.version;
    let got = c
        .call(op::CREATE_KEY_PAIR, pair_payload(v, algorithm, bits, None))
        .await
        .unwrap();
    let text = |t| got.child(t).and_then(Ttlv::as_text).unwrap().to_owned();
    let (private, public) = (
        text(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        text(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    );
    c.call(op::ACTIVATE, uid(&private)).await.unwrap();
    c.call(op::ACTIVATE, uid(&public)).await.unwrap();
    (private, public)
}

fn sig_params(items: Vec<Ttlv>) -> Ttlv {
    Ttlv::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, items)
}

async fn sign(
    c: &mut Client,
    key: &str,
    params: Option<Ttlv>,
    data: &[u8],
) -> Result<Vec<u8>, u32> {
    let mut req = uid(key);
    req.extend(params);
    req.push(Ttlv::bytes(Tag::DATA, data));
    match c.call(op::SIGN, req).await {
        Ok(got) => Ok(got
            .child(Tag::SIGNATURE_DATA)
            .and_then(Ttlv::as_bytes)
            .unwrap()
            .to_vec()),
        Err(e) => Err(reason(Err(e))),
    }
}

async fn verify(c: &mut Client, key: &str, params: Option<Ttlv>, data: &[u8], sig: &[u8]) -> u32 {
    let mut req = uid(key);
    req.extend(params);
    req.push(Ttlv::bytes(Tag::DATA, data));
    req.push(Ttlv::bytes(Tag::SIGNATURE_DATA, sig));
    let got = c.call(op::SIGNATURE_VERIFY, req).await.unwrap();
    got.child(Tag::VALIDITY_INDICATOR)
        .and_then(Ttlv::as_enum)
        .unwrap()
}

fn material(got: &Ttlv) -> (u32, Vec<u8>) {
    let block = got
        .children()
        .iter()
        .find_map(|o| o.child(Tag::KEY_BLOCK))
        .expect("a key block");
    let format = block
        .child(Tag::KEY_FORMAT_TYPE)
        .and_then(Ttlv::as_enum)
        .unwrap();
    (format, key_bytes(got))
}

#[tokio::test]
async fn rsa_and_ec_pairs_sign_and_verify() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("signer", v).await;
        for (algorithm, bits, public_format) in [
            (alg::RSA, 2048, kft::PKCS_1),
            (alg::RSA, 3072, kft::PKCS_1),
            (alg::EC, 256, kft::X_509),
            (alg::ECDSA, 384, kft::X_509),
        ] {
            let (private, public) = make_pair(&mut c, algorithm, bits).await;
            // Linked both ways.
            let attrs = get_attrs(&mut c, &private, &["Link"]).await;
            assert!(format!("{attrs:?}").contains(&public), "{attrs:?}");
            let attrs = get_attrs(&mut c, &public, &["Link"]).await;
            assert!(format!("{attrs:?}").contains(&private));
            let data = b"a message to sign";
            let sig = sign(&mut c, &private, None, data).await.unwrap();
            assert_eq!(
                verify(&mut c, &public, None, data, &sig).await,
                validity_indicator::VALID
            );
            assert_eq!(
                verify(&mut c, &public, None, b"another", &sig).await,
                validity_indicator::INVALID
            );
            // The served public key verifies the signature outside akm too.
            let (format, der) = material(&c.call(op::GET, uid(&public)).await.unwrap());
            assert_eq!(format, public_format);
            let raw = akm::crypto::asym::public_key_bytes(format, &der).unwrap();
            let ring_alg: &dyn akm::crypto::backend::prim::signature::VerificationAlgorithm =
                match (algorithm, bits) {
                    (alg::RSA, _) => {
                        &akm::crypto::backend::prim::signature::RSA_PKCS1_2048_8192_SHA256
                    }
                    (_, 256) => &akm::crypto::backend::prim::signature::ECDSA_P256_SHA256_ASN1,
                    _ => &akm::crypto::backend::prim::signature::ECDSA_P384_SHA384_ASN1,
                };
            akm::crypto::backend::prim::signature::UnparsedPublicKey::new(ring_alg, &raw)
                .verify(data, &sig)
                .unwrap();
        }
        // RSA-PSS and explicit Digital Signature Algorithms.
        let (private, public) = make_pair(&mut c, alg::RSA, 2048).await;
        for params in [
            sig_params(vec![
                Ttlv::enumeration(Tag::PADDING_METHOD, pad::PSS),
                Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_384),
            ]),
            sig_params(vec![Ttlv::enumeration(
                Tag::DIGITAL_SIGNATURE_ALGORITHM,
                dsa::SHA_512_WITH_RSA_ENCRYPTION,
            )]),
            sig_params(vec![Ttlv::enumeration(
                Tag::DIGITAL_SIGNATURE_ALGORITHM,
                dsa::RSASSA_PSS,
            )]),
        ] {
            let sig = sign(&mut c, &private, Some(params.clone()), b"m")
                .await
                .unwrap();
            assert_eq!(
                verify(&mut c, &public, Some(params), b"m", &sig).await,
                validity_indicator::VALID
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn signature_refusals() {
    let server = TestServer::start().await;
    let v = V::V2_1;
    let mut c = server.client("signer", v).await;
    let (private, public) = make_pair(&mut c, alg::RSA, 2048).await;
    // SHA-1 and MD5 are refused by name.
    for params in [
        sig_params(vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_1)]),
        sig_params(vec![Ttlv::enumeration(
            Tag::DIGITAL_SIGNATURE_ALGORITHM,
            dsa::MD5_WITH_RSA_ENCRYPTION,
        )]),
    ] {
        assert_eq!(
            sign(&mut c, &private, Some(params), b"m").await,
            Err(rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS)
        );
    }
    // Signing with the public key, verifying with the private key.
    assert_eq!(
        sign(&mut c, &public, None, b"m").await,
        Err(rr::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK)
    );
    let mut req = uid(&private);
    req.push(Ttlv::bytes(Tag::DATA, b"m".to_vec()));
    req.push(Ttlv::bytes(Tag::SIGNATURE_DATA, vec![0u8; 256]));
    assert_eq!(
        reason(c.call(op::SIGNATURE_VERIFY, req).await),
        rr::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK
    );
    // A symmetric key cannot sign even with Sign in its mask.
    let mut attrs = aes_attrs(None);
    attrs.retain(|a| a.name != "Cryptographic Usage Mask");
    attrs.push(Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::SIGN),
    ));
    let aes = uid_of(&c.call(op::CREATE, create_payload(v, &attrs)).await.unwrap());
    c.call(op::ACTIVATE, uid(&aes)).await.unwrap();
    assert_eq!(sign(&mut c, &aes, None, b"m").await, Err(rr::INVALID_FIELD));
    // Missing Data, missing Signature Data, pre-digested data.
    assert_eq!(
        reason(c.call(op::SIGN, uid(&private)).await),
        rr::INVALID_MESSAGE
    );
    let mut req = uid(&public);
    req.push(Ttlv::bytes(Tag::DATA, b"m".to_vec()));
    assert_eq!(
        reason(c.call(op::SIGNATURE_VERIFY, req).await),
        rr::INVALID_MESSAGE
    );
    let mut req = uid(&private);
    req.push(Ttlv::bytes(Tag::DIGESTED_DATA, vec![0u8; 32]));
    assert_eq!(
        reason(c.call(op::SIGN, req).await),
        rr::FEATURE_NOT_SUPPORTED
    );
    // Sizes and algorithms akm does not make.
    for (a, bits) in [(alg::RSA, 1024), (alg::EC, 521), (alg::DSA, 2048)] {
        let r = c
            .call(op::CREATE_KEY_PAIR, pair_payload(v, a, bits, None))
            .await;
        assert!(matches!(
            reason(r),
            rr::INVALID_FIELD | rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS
        ));
    }
    let mut no_alg = pair_payload(v, alg::RSA, 2048, None);
    no_alg.remove(0);
    assert_eq!(
        reason(c.call(op::CREATE_KEY_PAIR, no_alg).await),
        rr::INVALID_MESSAGE
    );
    // A pre-active private key does not sign.
    let got = c
        .call(
            op::CREATE_KEY_PAIR,
            pair_payload(v, alg::EC, 256, Some("ec-named")),
        )
        .await
        .unwrap();
    let pre = got
        .child(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .unwrap()
        .to_owned();
    assert_eq!(
        sign(&mut c, &pre, None, b"m").await,
        Err(rr::WRONG_KEY_LIFECYCLE_STATE)
    );
    server.stop().await;
}

#[tokio::test]
#[cfg_attr(
    feature = "fips",
    ignore = "mixed-hash OAEP is refused in the FIPS build"
)]
async fn rsa_oaep_encrypts_with_the_public_key_and_decrypts_with_the_private_key() {
    let server = TestServer::start().await;
    let v = V::V2_1;
    let mut c = server.client("oaep", v).await;
    let mut payload = pair_payload(v, alg::RSA, 2048, None);
    // Private key: Decrypt; public key: Encrypt.
    let (pr, pu) = (Tag::PRIVATE_KEY_ATTRIBUTES, Tag::PUBLIC_KEY_ATTRIBUTES);
    payload[1] = Ttlv::structure(
        pr,
        template(
            v,
            &[Attr::new(
                "Cryptographic Usage Mask",
                Value::Integer(usage::DECRYPT),
            )],
        )
        .children()
        .to_vec(),
    );
    payload[2] = Ttlv::structure(
        pu,
        template(
            v,
            &[Attr::new(
                "Cryptographic Usage Mask",
                Value::Integer(usage::ENCRYPT),
            )],
        )
        .children()
        .to_vec(),
    );
    let got = c.call(op::CREATE_KEY_PAIR, payload).await.unwrap();
    let text = |t| got.child(t).and_then(Ttlv::as_text).unwrap().to_owned();
    let (private, public) = (
        text(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        text(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    );
    for u in [&private, &public] {
        c.call(op::ACTIVATE, uid(u)).await.unwrap();
    }
    let oaep = |label: &[u8]| {
        sig_params(vec![
            Ttlv::enumeration(Tag::PADDING_METHOD, pad::OAEP),
            Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_384),
            Ttlv::enumeration(Tag::MASK_GENERATOR_HASHING_ALGORITHM, ha::SHA_256),
            Ttlv::bytes(Tag::P_SOURCE, label.to_vec()),
        ])
    };
    let call = |key: &str, params: Ttlv, data: &[u8]| {
        let mut req = uid(key);
        req.push(params);
        req.push(Ttlv::bytes(Tag::DATA, data));
        req
    };
    let data_key = [0x42u8; 32];
    let sealed = c
        .call(op::ENCRYPT, call(&public, oaep(b"label"), &data_key))
        .await
        .unwrap();
    let ct = sealed
        .child(Tag::DATA)
        .and_then(Ttlv::as_bytes)
        .unwrap()
        .to_vec();
    assert_eq!(ct.len(), 256);
    let opened = c
        .call(op::DECRYPT, call(&private, oaep(b"label"), &ct))
        .await
        .unwrap();
    assert_eq!(
        opened.child(Tag::DATA).and_then(Ttlv::as_bytes),
        Some(&data_key[..])
    );
    // Another label, PKCS#1 v1.5 padding, SHA-1: refused.
    let r = c
        .call(op::DECRYPT, call(&private, oaep(b"other"), &ct))
        .await;
    assert_eq!(reason(r), rr::CRYPTOGRAPHIC_FAILURE);
    let v15 = sig_params(vec![Ttlv::enumeration(
        Tag::PADDING_METHOD,
        pad::PKCS1_V1_5,
    )]);
    let r = c.call(op::ENCRYPT, call(&public, v15, &data_key)).await;
    assert_eq!(reason(r), rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS);
    let sha1 = sig_params(vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_1)]);
    let r = c.call(op::ENCRYPT, call(&public, sha1, &data_key)).await;
    assert_eq!(reason(r), rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS);
    // Too long for the key.
    let r = c
        .call(op::ENCRYPT, call(&public, oaep(b""), &[0u8; 300]))
        .await;
    assert_eq!(reason(r), rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS);
    server.stop().await;
}

#[tokio::test]
async fn rsa_keys_are_served_in_pkcs1_pkcs8_and_x509() {
    let server = TestServer::start().await;
    let mut c = server.client("formats", V::V1_4).await;
    let (private, public) = make_pair(&mut c, alg::RSA, 2048).await;
    let get_as = |u: &str, f: u32| {
        let mut p = uid(u);
        p.push(Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, f));
        p
    };
    for (u, f) in [
        (&private, kft::PKCS_8),
        (&private, kft::PKCS_1),
        (&public, kft::X_509),
        (&public, kft::PKCS_1),
    ] {
        let got = c.call(op::GET, get_as(u, f)).await.unwrap();
        let (format, der) = material(&got);
        assert_eq!(format, f);
        assert!(!der.is_empty());
    }
    // A signature by the key verifies under the public key served as X.509.
    let sig = sign(&mut c, &private, None, b"m").await.unwrap();
    let (_, spki) = material(&c.call(op::GET, get_as(&public, kft::X_509)).await.unwrap());
    let raw = akm::crypto::asym::public_key_bytes(kft::X_509, &spki).unwrap();
    akm::crypto::backend::prim::signature::UnparsedPublicKey::new(
        &akm::crypto::backend::prim::signature::RSA_PKCS1_2048_8192_SHA256,
        &raw,
    )
    .verify(b"m", &sig)
    .unwrap();
    // Formats a key cannot have.
    let r = c.call(op::GET, get_as(&public, kft::PKCS_8)).await;
    assert_eq!(reason(r), rr::KEY_FORMAT_TYPE_NOT_SUPPORTED);
    let (_, ec_public) = make_pair(&mut c, alg::EC, 256).await;
    let r = c.call(op::GET, get_as(&ec_public, kft::PKCS_1)).await;
    assert_eq!(reason(r), rr::KEY_FORMAT_TYPE_NOT_SUPPORTED);
    server.stop().await;
}

#[tokio::test]
async fn keys_wrap_and_unwrap_with_rsa_oaep() {
    use akm::kmip::enums::{encoding_option, object_type as ot, wrapping_method};
    let server = TestServer::start().await;
    let v = V::V2_1;
    let mut c = server.client("rsa-wrap", v).await;
    let mut payload = pair_payload(v, alg::RSA, 2048, None);
    let mask = |m| {
        template(
            v,
            &[Attr::new("Cryptographic Usage Mask", Value::Integer(m))],
        )
        .children()
        .to_vec()
    };
    payload[1] = Ttlv::structure(Tag::PRIVATE_KEY_ATTRIBUTES, mask(usage::UNWRAP_KEY));
    payload[2] = Ttlv::structure(Tag::PUBLIC_KEY_ATTRIBUTES, mask(usage::WRAP_KEY));
    let got = c.call(op::CREATE_KEY_PAIR, payload).await.unwrap();
    let text = |t| got.child(t).and_then(Ttlv::as_text).unwrap().to_owned();
    let (private, public) = (
        text(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        text(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    );
    for u in [&private, &public] {
        c.call(op::ACTIVATE, uid(u)).await.unwrap();
    }
    let (_, private_der) = material(&c.call(op::GET, uid(&private)).await.unwrap());
    let (_, public_der) = material(&c.call(op::GET, uid(&public)).await.unwrap());
    let info = |key: &str| {
        Ttlv::structure(
            Tag::ENCRYPTION_KEY_INFORMATION,
            vec![
                Ttlv::text(Tag::UNIQUE_IDENTIFIER, key),
                sig_params(vec![
                    Ttlv::enumeration(Tag::PADDING_METHOD, pad::OAEP),
                    Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_256),
                ]),
            ],
        )
    };
    // Get an AES key wrapped under the RSA public key; unwrap it with the private key.
    let aes = create_key(&mut c, None).await;
    let clear = key_bytes(&c.call(op::GET, uid(&aes)).await.unwrap());
    let mut req = uid(&aes);
    req.push(Ttlv::structure(
        Tag::KEY_WRAPPING_SPECIFICATION,
        vec![
            Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
            info(&public),
            Ttlv::enumeration(Tag::ENCODING_OPTION, encoding_option::NO_ENCODING),
        ],
    ));
    let got = c.call(op::GET, req).await.unwrap();
    let wrapped = got
        .child(Tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .and_then(|b| b.child(Tag::KEY_VALUE))
        .and_then(Ttlv::as_bytes)
        .unwrap()
        .to_vec();
    let unwrapped = akm::crypto::asym::oaep_decrypt(
        kft::PKCS_1,
        &private_der,
        ha::SHA_256,
        ha::SHA_256,
        None,
        &wrapped,
    )
    .unwrap();
    assert_eq!(unwrapped.as_slice(), clear.as_slice());
    // Register a key wrapped under the public key: akm unwraps it with the private key.
    let data_key = [0x33u8; 32];
    let w = akm::crypto::asym::oaep_encrypt(
        kft::PKCS_1,
        &public_der,
        ha::SHA_256,
        ha::SHA_256,
        None,
        &data_key,
    )
    .unwrap();
    let register = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        template(
            v,
            &[Attr::new(
                "Cryptographic Usage Mask",
                Value::Integer(usage::ENCRYPT),
            )],
        ),
        Ttlv::structure(
            Tag::SYMMETRIC_KEY,
            vec![Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::RAW),
                    Ttlv::bytes(Tag::KEY_VALUE, w),
                    Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                    Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 256),
                    Ttlv::structure(
                        Tag::KEY_WRAPPING_DATA,
                        vec![
                            Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
                            info(&private),
                            Ttlv::enumeration(Tag::ENCODING_OPTION, encoding_option::NO_ENCODING),
                        ],
                    ),
                ],
            )],
        ),
    ];
    let u = uid_of(&c.call(op::REGISTER, register).await.unwrap());
    assert_eq!(
        key_bytes(&c.call(op::GET, uid(&u)).await.unwrap()),
        data_key
    );
    server.stop().await;
}
