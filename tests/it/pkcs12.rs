//! Get with Key Format Type PKCS#12 (KMIP 2.1 §6.1.19, §4.39): a private key, linked to its
//! public key, certificate and password, comes back as a PKCS#12 container that OpenSSL opens
//! with that password (key, certificate and friendly name intact) and refuses with another.
//! Refused: another identity, a key with no password link, a symmetric key.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::Client;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    certificate_type, cryptographic_algorithm as alg, cryptographic_usage_mask as usage,
    key_format_type as kft, link_type, object_type as ot, operation as op, result_reason as rr,
    secret_data_type,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};
use std::process::{Command, Stdio};

fn link(kind: u32, target: &str) -> Attr {
    Attr::new(
        "Link",
        Value::Structure(vec![
            Ttlv::enumeration(Tag::LINK_TYPE, kind),
            Ttlv::text(Tag::LINKED_OBJECT_IDENTIFIER, target),
        ]),
    )
}

async fn register(c: &mut Client, object_type: u32, attrs: &[Attr], object: Ttlv) -> String {
    let v = c.version;
    let payload = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, object_type),
        template(v, attrs),
        object,
    ];
    uid_of(&c.call(op::REGISTER, payload).await.unwrap())
}

fn key_object(tag: Tag, format: u32, der: &[u8]) -> Ttlv {
    Ttlv::structure(
        tag,
        vec![Ttlv::structure(
            Tag::KEY_BLOCK,
            vec![
                Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, format),
                Ttlv::structure(Tag::KEY_VALUE, vec![Ttlv::bytes(Tag::KEY_MATERIAL, der)]),
                Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::EC),
                Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 256),
            ],
        )],
    )
}

/// The objects a storage array would register: password, certificate, public and private
/// key, linked as KMIP 2.1 §6.1.19 reads them. Returns the private key and the DER of the
/// certificate and public key.
async fn register_identity(c: &mut Client, password: &[u8]) -> (String, Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["array-07.example".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "array-07");
    let cert = params.self_signed(&key).unwrap().der().to_vec();
    let pkcs8 = key.serialize_der();
    let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
    let secret = Ttlv::structure(
        Tag::SECRET_DATA,
        vec![
            Ttlv::enumeration(Tag::SECRET_DATA_TYPE, secret_data_type::PASSWORD),
            Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::OPAQUE),
                    Ttlv::structure(
                        Tag::KEY_VALUE,
                        vec![Ttlv::bytes(Tag::KEY_MATERIAL, password)],
                    ),
                ],
            ),
        ],
    );
    let mask = |m| Attr::new("Cryptographic Usage Mask", Value::Integer(m));
    let pwd = register(c, ot::SECRET_DATA, &[mask(usage::EXPORT)], secret).await;
    let certificate = Ttlv::structure(
        Tag::CERTIFICATE,
        vec![
            Ttlv::enumeration(Tag::CERTIFICATE_TYPE, certificate_type::X_509),
            Ttlv::bytes(Tag::CERTIFICATE_VALUE, cert.clone()),
        ],
    );
    let cert_uid = register(c, ot::CERTIFICATE, &[], certificate).await;
    let public = register(
        c,
        ot::PUBLIC_KEY,
        &[
            mask(usage::VERIFY),
            link(link_type::PKCS_12_CERTIFICATE_LINK, &cert_uid),
        ],
        key_object(Tag::PUBLIC_KEY, kft::X_509, &spki),
    )
    .await;
    let private = register(
        c,
        ot::PRIVATE_KEY,
        &[
            mask(usage::SIGN),
            link(link_type::PUBLIC_KEY_LINK, &public),
            link(link_type::PKCS_12_PASSWORD_LINK, &pwd),
            Attr::new(
                "PKCS#12 Friendly Name",
                Value::TextString("array-07".into()),
            ),
        ],
        key_object(Tag::PRIVATE_KEY, kft::PKCS_8, &pkcs8),
    )
    .await;
    (private, cert, spki)
}

fn get_pkcs12(u: &str) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::PKCS_12));
    p
}

/// Runs `openssl` with `args` on `input`; its stdout, or None if it failed.
fn openssl(args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(input).ok()?;
    let out = child.wait_with_output().ok()?;
    out.status.success().then_some(out.stdout)
}

#[tokio::test]
#[cfg_attr(
    feature = "fips",
    ignore = "the FIPS build writes no PKCS#12 (pkcs12_is_refused_in_the_fips_build)"
)]
async fn a_private_key_comes_back_as_pkcs12_with_its_certificate() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let (private, cert, spki) = register_identity(&mut c, b"correct horse").await;
    let got = c.call(op::GET, get_pkcs12(&private)).await.unwrap();
    let block = got
        .child(Tag::PRIVATE_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .unwrap();
    assert_eq!(
        block.child(Tag::KEY_FORMAT_TYPE).and_then(Ttlv::as_enum),
        Some(kft::PKCS_12)
    );
    let pfx = key_bytes(&got);
    if Command::new("openssl").arg("version").output().is_err() {
        println!("openssl not installed: the container's contents are not checked");
    } else {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("array.p12");
        std::fs::write(&file, &pfx).unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "correct horse").unwrap();
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "wrong horse").unwrap();
        let p12 = |extra: &[&str], pass: &std::path::Path| {
            let mut args = vec![
                "pkcs12".to_owned(),
                "-in".to_owned(),
                file.display().to_string(),
                "-passin".to_owned(),
                format!("file:{}", pass.display()),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            openssl(&refs, b"")
        };
        let info = p12(&["-nodes", "-info"], &pw).expect("openssl reads the container");
        let text = String::from_utf8_lossy(&info);
        assert!(text.contains("friendlyName: array-07"), "{text}");
        let cert_pem = p12(&["-nokeys", "-clcerts"], &pw).unwrap();
        assert_eq!(openssl(&["x509", "-outform", "DER"], &cert_pem), Some(cert));
        let key_pem = p12(&["-nocerts", "-nodes"], &pw).unwrap();
        assert_eq!(
            openssl(&["pkey", "-pubout", "-outform", "DER"], &key_pem),
            Some(spki)
        );
        assert!(p12(&["-nodes", "-info"], &bad).is_none());
    }
    // Bob may not have alice's key in any form.
    let mut bob = server.client("bob", V::V2_1).await;
    assert!(bob.call(op::GET, get_pkcs12(&private)).await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn pkcs12_needs_a_password_link_and_a_private_key() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let key = rcgen::KeyPair::generate().unwrap();
    let alone = register(
        &mut c,
        ot::PRIVATE_KEY,
        &[Attr::new(
            "Cryptographic Usage Mask",
            Value::Integer(usage::SIGN),
        )],
        key_object(Tag::PRIVATE_KEY, kft::PKCS_8, &key.serialize_der()),
    )
    .await;
    assert_eq!(
        reason(c.call(op::GET, get_pkcs12(&alone)).await),
        rr::INVALID_FIELD
    );
    let aes = create_key(&mut c, None).await;
    assert_eq!(
        reason(c.call(op::GET, get_pkcs12(&aes)).await),
        rr::KEY_FORMAT_TYPE_NOT_SUPPORTED
    );
    server.stop().await;
}

/// The FIPS build writes no PKCS#12: its MAC key comes from the RFC 7292 key derivation, which
/// akm computes outside the module and which is not an approved KDF. Get with Key Format Type
/// PKCS#12 is refused with the reason there (Feature Not Supported); the default build answers.
#[tokio::test]
async fn pkcs12_is_refused_in_the_fips_build() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let (private, _, _) = register_identity(&mut c, b"a long enough password").await;
    match c.call(op::GET, get_pkcs12(&private)).await {
        Err(akm::client::ClientError::Failed { reason, message })
            if akm::crypto::backend::FIPS_BUILD =>
        {
            assert_eq!(reason, rr::FEATURE_NOT_SUPPORTED, "{message}");
            assert!(message.contains("FIPS build"), "{message}");
            assert!(message.contains("PKCS#12"), "{message}");
        }
        Ok(_) if !akm::crypto::backend::FIPS_BUILD => {}
        other => panic!("{other:?}"),
    }
    server.stop().await;
}
