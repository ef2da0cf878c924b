//! Private keys registered in each DER Key Format Type a client has them in (KMIP 2.1 §11.25):
//! EC keys in SEC1 ECPrivateKey as OpenSSL writes them and in PKCS#8, RSA keys in PKCS#1 and
//! PKCS#8. Each signs, the signature verifies with the registered public key, and Get serves
//! the key in the registered format and in the other one; a broken key is refused at use.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::Client;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    cryptographic_algorithm as alg, cryptographic_usage_mask as usage, key_format_type as kft,
    object_type as ot, operation as op, result_reason as rr, validity_indicator,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

/// A P-256 key made by `openssl ecparam -name prime256v1 -genkey -noout -outform DER` (SEC1,
/// with its curve and public key), for this test only.
const OPENSSL_SEC1_P256: &str = "307702010104207647f868427a2ad6c52ba44ac2a6a1ef60402be111212a28edacd0642c81d44ca00a06082a8648ce3d030107a144034200049cfe7572e9a7d2227c2cfa1cd76cde10f6fcfb806a26fcaffb4705279a74e64dda4d6d689795bc395af30909ae0e4ae1a343bdbad115e67b0151e36b473a5729";
/// Its public key, `openssl ec -pubout -outform DER` (X.509 SubjectPublicKeyInfo).
const OPENSSL_SPKI_P256: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200049cfe7572e9a7d2227c2cfa1cd76cde10f6fcfb806a26fcaffb4705279a74e64dda4d6d689795bc395af30909ae0e4ae1a343bdbad115e67b0151e36b473a5729";

/// Registers a Public or Private Key given as DER in `format`, active.
async fn register(
    c: &mut Client,
    object_type: u32,
    format: u32,
    algorithm: u32,
    bits: i32,
    der: &[u8],
) -> String {
    let (tag, mask) = if object_type == ot::PRIVATE_KEY {
        (Tag::PRIVATE_KEY, usage::SIGN)
    } else {
        (Tag::PUBLIC_KEY, usage::VERIFY)
    };
    let payload = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, object_type),
        template(
            c.version,
            &[Attr::new("Cryptographic Usage Mask", Value::Integer(mask))],
        ),
        Ttlv::structure(
            tag,
            vec![Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, format),
                    Ttlv::structure(Tag::KEY_VALUE, vec![Ttlv::bytes(Tag::KEY_MATERIAL, der)]),
                    Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, algorithm),
                    Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, bits),
                ],
            )],
        ),
    ];
    let u = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
    c.call(op::ACTIVATE, uid(&u)).await.unwrap();
    u
}

async fn sign(c: &mut Client, key: &str, data: &[u8]) -> Result<Vec<u8>, u32> {
    let mut req = uid(key);
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

async fn verifies(c: &mut Client, key: &str, data: &[u8], sig: &[u8]) -> bool {
    let mut req = uid(key);
    req.push(Ttlv::bytes(Tag::DATA, data));
    req.push(Ttlv::bytes(Tag::SIGNATURE_DATA, sig));
    let got = c.call(op::SIGNATURE_VERIFY, req).await.unwrap();
    got.child(Tag::VALIDITY_INDICATOR).and_then(Ttlv::as_enum) == Some(validity_indicator::VALID)
}

/// Get in `format`: the served format and bytes.
async fn get_as(c: &mut Client, u: &str, format: u32) -> (u32, Vec<u8>) {
    let mut req = uid(u);
    req.push(Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, format));
    let got = c.call(op::GET, req).await.unwrap();
    let block = got
        .child(Tag::PRIVATE_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .unwrap();
    let served = block
        .child(Tag::KEY_FORMAT_TYPE)
        .and_then(Ttlv::as_enum)
        .unwrap();
    (served, key_bytes(&got))
}

#[tokio::test]
async fn ec_keys_in_sec1_and_rsa_keys_in_pkcs1_register_sign_and_convert() {
    let server = TestServer::start().await;
    for version in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", version).await;
        // EC, SEC1 from OpenSSL.
        let sec1 = hex::decode(OPENSSL_SEC1_P256).unwrap();
        let spki = hex::decode(OPENSSL_SPKI_P256).unwrap();
        let private = register(
            &mut c,
            ot::PRIVATE_KEY,
            kft::ECPRIVATEKEY,
            alg::EC,
            256,
            &sec1,
        )
        .await;
        let public = register(&mut c, ot::PUBLIC_KEY, kft::X_509, alg::EC, 256, &spki).await;
        let sig = sign(&mut c, &private, b"escrowed").await.unwrap();
        assert!(verifies(&mut c, &public, b"escrowed", &sig).await);
        assert!(!verifies(&mut c, &public, b"tampered", &sig).await);
        // Served as registered, and as PKCS#8, which signs the same way once registered.
        assert_eq!(
            get_as(&mut c, &private, kft::ECPRIVATEKEY).await,
            (kft::ECPRIVATEKEY, sec1.clone())
        );
        let (format, pkcs8) = get_as(&mut c, &private, kft::PKCS_8).await;
        assert_eq!(format, kft::PKCS_8);
        let again = register(&mut c, ot::PRIVATE_KEY, kft::PKCS_8, alg::EC, 256, &pkcs8).await;
        let sig = sign(&mut c, &again, b"m").await.unwrap();
        assert!(verifies(&mut c, &public, b"m", &sig).await);
        // And back to SEC1: the same key OpenSSL wrote.
        assert_eq!(get_as(&mut c, &again, kft::ECPRIVATEKEY).await.1, sec1);
        // EC P-384 made here, registered in SEC1.
        let pair = akm::crypto::asym::generate_ec(384).unwrap();
        let sec1_384 = akm::crypto::sec1::pkcs8_to_sec1(&pair.private_der).unwrap();
        let private = register(
            &mut c,
            ot::PRIVATE_KEY,
            kft::ECPRIVATEKEY,
            alg::ECDSA,
            384,
            &sec1_384,
        )
        .await;
        let public = register(
            &mut c,
            ot::PUBLIC_KEY,
            pair.public_format,
            alg::ECDSA,
            384,
            &pair.public_der,
        )
        .await;
        let sig = sign(&mut c, &private, b"p384").await.unwrap();
        assert!(verifies(&mut c, &public, b"p384", &sig).await);
        // RSA in PKCS#1 (RSAPrivateKey), and the same key in PKCS#8.
        let rsa = akm::crypto::asym::generate_rsa(2048).unwrap();
        assert_eq!(rsa.private_format, kft::PKCS_1);
        let private = register(
            &mut c,
            ot::PRIVATE_KEY,
            kft::PKCS_1,
            alg::RSA,
            2048,
            &rsa.private_der,
        )
        .await;
        let public = register(
            &mut c,
            ot::PUBLIC_KEY,
            rsa.public_format,
            alg::RSA,
            2048,
            &rsa.public_der,
        )
        .await;
        let sig = sign(&mut c, &private, b"rsa").await.unwrap();
        assert!(verifies(&mut c, &public, b"rsa", &sig).await);
        let (format, p8) = get_as(&mut c, &private, kft::PKCS_8).await;
        assert_eq!(format, kft::PKCS_8);
        let again = register(&mut c, ot::PRIVATE_KEY, kft::PKCS_8, alg::RSA, 2048, &p8).await;
        let sig = sign(&mut c, &again, b"rsa").await.unwrap();
        assert!(verifies(&mut c, &public, b"rsa", &sig).await);
        assert_eq!(
            get_as(&mut c, &again, kft::PKCS_1).await.1,
            rsa.private_der.to_vec()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_broken_or_incomplete_sec1_key_is_refused_at_use() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let mut broken = hex::decode(OPENSSL_SEC1_P256).unwrap();
    broken.truncate(40);
    let u = register(
        &mut c,
        ot::PRIVATE_KEY,
        kft::ECPRIVATEKEY,
        alg::EC,
        256,
        &broken,
    )
    .await;
    assert_eq!(sign(&mut c, &u, b"m").await, Err(rr::INVALID_FIELD));
    let mut r = uid(&u);
    r.push(Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::PKCS_8));
    assert_eq!(
        reason(c.call(op::GET, r).await),
        rr::KEY_FORMAT_TYPE_NOT_SUPPORTED
    );
    // A SEC1 key whose public key was left out (RFC 5915 allows it; ring checks the pair).
    let full = hex::decode(OPENSSL_SEC1_P256).unwrap();
    let scalar = &full[7..39];
    let mut bare = vec![0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20];
    bare.extend_from_slice(scalar);
    let u = register(
        &mut c,
        ot::PRIVATE_KEY,
        kft::ECPRIVATEKEY,
        alg::EC,
        256,
        &bare,
    )
    .await;
    assert_eq!(sign(&mut c, &u, b"m").await, Err(rr::INVALID_FIELD));
    server.stop().await;
}
