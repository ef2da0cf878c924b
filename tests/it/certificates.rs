//! X.509 certificates as first-class objects: Register derives what the certificate says of
//! itself (X.509 Certificate Identifier, Subject and Issuer, Digital Signature Algorithm, the
//! public key's Cryptographic Algorithm and Length) in KMIP 1.4 and 2.1; Get serves the
//! certificate as registered; Locate finds it by those attributes (a Subject given by its
//! Distinguished Name alone matches), and another identity neither finds nor reads it.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    certificate_type, cryptographic_algorithm as alg, digital_signature_algorithm as dsa,
    object_type as ot, operation as op,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};
use x509_parser::prelude::parse_x509_certificate;

/// A self-signed ECDSA P-256 / SHA-256 certificate as a storage array would hold: its CN,
/// a DNS alternative name and a known serial number.
fn array_certificate(cn: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![format!("{cn}.example")]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.serial_number = Some(rcgen::SerialNumber::from(vec![0x0A, 0x0B, 0x0C]));
    params.self_signed(&key).unwrap().der().to_vec()
}

fn register_payload(version: V, der: &[u8]) -> Vec<Ttlv> {
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::CERTIFICATE),
        template(version, &[]),
        Ttlv::structure(
            Tag::CERTIFICATE,
            vec![
                Ttlv::enumeration(Tag::CERTIFICATE_TYPE, certificate_type::X_509),
                Ttlv::bytes(Tag::CERTIFICATE_VALUE, der.to_vec()),
            ],
        ),
    ]
}

async fn locate(c: &mut akm::client::Client, attrs: &[Attr]) -> Vec<String> {
    let v = c.version;
    uids_of(&c.call(op::LOCATE, filters(v, attrs)).await.unwrap())
}

fn value_of(attrs: &[Attr], name: &str) -> Option<Value> {
    attrs
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.clone())
}

#[tokio::test]
async fn certificates_carry_what_they_say_of_themselves_and_are_located_by_it() {
    let server = TestServer::start().await;
    for (version, cn) in [(V::V1_4, "array-14"), (V::V2_1, "array-21")] {
        let mut c = server.client("alice", version).await;
        let der = array_certificate(cn);
        let (_, parsed) = parse_x509_certificate(&der).unwrap();
        let subject_dn = parsed.subject().as_raw().to_vec();
        let u = uid_of(
            &c.call(op::REGISTER, register_payload(version, &der))
                .await
                .unwrap(),
        );
        let attrs = get_attrs(
            &mut c,
            &u,
            &[
                "X.509 Certificate Identifier",
                "X.509 Certificate Subject",
                "X.509 Certificate Issuer",
                "Digital Signature Algorithm",
                "Cryptographic Algorithm",
                "Cryptographic Length",
            ],
        )
        .await;
        assert_eq!(
            value_of(&attrs, "X.509 Certificate Identifier"),
            Some(Value::Structure(vec![
                Ttlv::bytes(Tag::ISSUER_DISTINGUISHED_NAME, subject_dn.clone()),
                Ttlv::bytes(Tag::CERTIFICATE_SERIAL_NUMBER, vec![0x0A, 0x0B, 0x0C]),
            ]))
        );
        let Some(Value::Structure(subject)) = value_of(&attrs, "X.509 Certificate Subject") else {
            panic!("no X.509 Certificate Subject: {attrs:?}");
        };
        assert_eq!(
            subject[0],
            Ttlv::bytes(Tag::SUBJECT_DISTINGUISHED_NAME, subject_dn.clone())
        );
        let san = subject[1].as_bytes().expect("the Subject Alternative Name");
        assert!(san.windows(cn.len()).any(|w| w == cn.as_bytes()));
        // Self-signed: the issuer is the subject.
        assert_eq!(
            value_of(&attrs, "X.509 Certificate Issuer"),
            Some(Value::Structure(vec![Ttlv::bytes(
                Tag::ISSUER_DISTINGUISHED_NAME,
                subject_dn.clone()
            )]))
        );
        assert_eq!(
            value_of(&attrs, "Digital Signature Algorithm"),
            Some(Value::Enumeration(dsa::ECDSA_WITH_SHA256))
        );
        assert_eq!(
            value_of(&attrs, "Cryptographic Algorithm"),
            Some(Value::Enumeration(alg::EC))
        );
        assert_eq!(
            value_of(&attrs, "Cryptographic Length"),
            Some(Value::Integer(256))
        );
        // Served as registered.
        let got = c.call(op::GET, uid(&u)).await.unwrap();
        assert_eq!(
            got.child(Tag::CERTIFICATE)
                .and_then(|c| c.child(Tag::CERTIFICATE_VALUE))
                .and_then(Ttlv::as_bytes),
            Some(&der[..])
        );
        // Located by its subject's DN alone, by its signature algorithm and by its key.
        let by_subject = Attr::new(
            "X.509 Certificate Subject",
            Value::Structure(vec![Ttlv::bytes(
                Tag::SUBJECT_DISTINGUISHED_NAME,
                subject_dn.clone(),
            )]),
        );
        assert_eq!(
            locate(&mut c, std::slice::from_ref(&by_subject)).await,
            [u.as_str()]
        );
        let by_algorithm = [
            Attr::new("Object Type", Value::Enumeration(ot::CERTIFICATE)),
            Attr::new(
                "Digital Signature Algorithm",
                Value::Enumeration(dsa::ECDSA_WITH_SHA256),
            ),
            Attr::new("Cryptographic Length", Value::Integer(256)),
        ];
        assert!(locate(&mut c, &by_algorithm).await.contains(&u));
        let other = Attr::new(
            "X.509 Certificate Subject",
            Value::Structure(vec![Ttlv::bytes(
                Tag::SUBJECT_DISTINGUISHED_NAME,
                b"not this one".to_vec(),
            )]),
        );
        assert!(locate(&mut c, &[other]).await.is_empty());
        // Another identity neither finds nor reads alice's certificate.
        let mut bob = server.client("bob", version).await;
        assert!(locate(&mut bob, &[by_subject]).await.is_empty());
        assert!(bob.call(op::GET, uid(&u)).await.is_err());
    }
    server.stop().await;
}

#[tokio::test]
async fn the_certificate_decides_over_what_the_client_said_of_it() {
    let server = TestServer::start().await;
    let v = V::V2_1;
    let mut c = server.client("alice", v).await;
    let der = array_certificate("array-claims");
    // KMIP 2.1 Table 293: a client may name the Digital Signature Algorithm; the server
    // reads the real one from the certificate.
    let mut payload = register_payload(v, &der);
    payload[1] = template(
        v,
        &[Attr::new(
            "Digital Signature Algorithm",
            Value::Enumeration(dsa::SHA_256_WITH_RSA_ENCRYPTION),
        )],
    );
    let u = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
    let attrs = get_attrs(&mut c, &u, &["Digital Signature Algorithm"]).await;
    assert_eq!(
        attrs.iter().map(|a| &a.value).collect::<Vec<_>>(),
        [&Value::Enumeration(dsa::ECDSA_WITH_SHA256)]
    );
    server.stop().await;
}
