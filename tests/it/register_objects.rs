//! Register and Get of the object types akm keeps without using them: Public and Private Keys
//! (served back exactly as registered, in their own Key Format Type only) and Certificates
//! (with the type, length and X.509 common names recorded as attributes). Client-given Fresh.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    certificate_type, cryptographic_algorithm as alg, key_format_type as kft, object_type as ot,
    operation as op, result_reason as rr,
};
use akm::kmip::ProtocolVersion as V;
use akm::pki::Validity;
use akm::ttlv::{Tag, Ttlv, Value};

fn rsa_public_key(format: u32, material: Ttlv) -> Vec<Ttlv> {
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::PUBLIC_KEY),
        Ttlv::structure(
            Tag::ATTRIBUTES,
            vec![Ttlv::new(Tag::FRESH, Value::Boolean(false))],
        ),
        Ttlv::structure(
            Tag::PUBLIC_KEY,
            vec![Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, format),
                    Ttlv::structure(Tag::KEY_VALUE, vec![material]),
                    Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::RSA),
                    Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 2048),
                ],
            )],
        ),
    ]
}

#[tokio::test]
async fn public_keys_come_back_as_registered() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let material = Ttlv::structure(
        Tag::KEY_MATERIAL,
        vec![
            Ttlv::new(Tag::MODULUS, Value::BigInteger(vec![0xAB; 256].into())),
            Ttlv::new(
                Tag::PUBLIC_EXPONENT,
                Value::BigInteger(vec![0, 0, 0, 0, 0, 1, 0, 1].into()),
            ),
        ],
    );
    let reg = rsa_public_key(kft::TRANSPARENT_RSA_PUBLIC_KEY, material.clone());
    let u = uid_of(&c.call(op::REGISTER, reg).await.unwrap());
    let got = c.call(op::GET, uid(&u)).await.unwrap();
    let block = got
        .child(Tag::PUBLIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .unwrap();
    let value = block.child(Tag::KEY_VALUE).unwrap();
    assert_eq!(value.child(Tag::KEY_MATERIAL), Some(&material));
    // The client said Fresh = False; the server keeps it.
    let attrs = get_attrs(&mut c, &u, &["Fresh"]).await;
    assert_eq!(attrs[0].value, Value::Boolean(false));
    // Only the registered format can be served; no conversion.
    let mut p = uid(&u);
    p.push(Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::PKCS_1));
    assert_eq!(
        reason(c.call(op::GET, p).await),
        rr::KEY_FORMAT_TYPE_NOT_SUPPORTED
    );
    // Key Material that is neither bytes nor a structure, or empty, is refused.
    for bad in [
        Ttlv::integer(Tag::KEY_MATERIAL, 1),
        Ttlv::bytes(Tag::KEY_MATERIAL, Vec::new()),
    ] {
        let reg = rsa_public_key(kft::PKCS_1, bad);
        assert_eq!(reason(c.call(op::REGISTER, reg).await), rr::INVALID_FIELD);
    }
    server.stop().await;
}

fn certificate(value: &[u8]) -> Vec<Ttlv> {
    let mut children = vec![Ttlv::enumeration(
        Tag::CERTIFICATE_TYPE,
        certificate_type::X_509,
    )];
    if !value.is_empty() {
        children.push(Ttlv::bytes(Tag::CERTIFICATE_VALUE, value.to_vec()));
    }
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::CERTIFICATE),
        Ttlv::structure(Tag::ATTRIBUTES, vec![]),
        Ttlv::structure(Tag::CERTIFICATE, children),
    ]
}

#[tokio::test]
async fn certificates_record_their_names_and_length() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let issued = server
        .ca
        .issue_client("backup-svc", &[], Validity::days_from_now(1))
        .unwrap();
    let der = issued.cert_der().unwrap().to_vec();
    let u = uid_of(&c.call(op::REGISTER, certificate(&der)).await.unwrap());
    let attrs = get_attrs(
        &mut c,
        &u,
        &[
            "Certificate Subject CN",
            "Certificate Issuer CN",
            "Certificate Length",
            "Certificate Type",
        ],
    )
    .await;
    let names: Vec<(String, Value)> = attrs.into_iter().map(|a| (a.name, a.value)).collect();
    assert_eq!(
        names,
        [
            (
                "Certificate Subject CN".into(),
                Value::TextString("backup-svc".into())
            ),
            (
                "Certificate Issuer CN".into(),
                Value::TextString("akm test CA".into())
            ),
            (
                "Certificate Length".into(),
                Value::Integer(der.len() as i32)
            ),
            (
                "Certificate Type".into(),
                Value::Enumeration(certificate_type::X_509)
            ),
        ]
    );
    let got = c.call(op::GET, uid(&u)).await.unwrap();
    let value = got
        .child(Tag::CERTIFICATE)
        .and_then(|c| c.child(Tag::CERTIFICATE_VALUE))
        .and_then(Ttlv::as_bytes);
    assert_eq!(value, Some(&der[..]));
    // A client may not change what the server derived from the certificate.
    let mut p = uid(&u);
    p.push(Ttlv::structure(
        Tag::NEW_ATTRIBUTE,
        vec![akm::kmip::attributes::to_v2(&Attr::new(
            "Certificate Length",
            Value::Integer(1),
        ))],
    ));
    assert_eq!(
        reason(c.call(op::MODIFY_ATTRIBUTE, p).await),
        rr::ATTRIBUTE_READ_ONLY
    );
    // Bytes that are no X.509 certificate are kept, without names; no value is refused.
    let u = uid_of(&c.call(op::REGISTER, certificate(b"not DER")).await.unwrap());
    assert!(get_attrs(&mut c, &u, &["Certificate Subject CN"])
        .await
        .is_empty());
    assert_eq!(
        reason(c.call(op::REGISTER, certificate(b"")).await),
        rr::INVALID_FIELD
    );
    server.stop().await;
}

#[tokio::test]
async fn a_1_0_client_sees_no_newer_certificate_attribute() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_0).await;
    let issued = server
        .ca
        .issue_client("old-client", &[], Validity::days_from_now(1))
        .unwrap();
    let der = issued.cert_der().unwrap().to_vec();
    let mut reg = certificate(&der);
    reg[1] = Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, vec![]);
    let u = uid_of(&c.call(op::REGISTER, reg).await.unwrap());
    let names: Vec<String> = get_attrs(&mut c, &u, &[])
        .await
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert!(names.contains(&"Certificate Type".to_owned()), "{names:?}");
    for newer in [
        "Certificate Length",
        "Certificate Subject CN",
        "Fresh",
        "Sensitive",
    ] {
        assert!(!names.contains(&newer.to_owned()), "{newer} in {names:?}");
    }
    server.stop().await;
}
