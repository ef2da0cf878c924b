//! Objects whose material akm cannot read or use survive mirroring: a key kept wrapped as
//! registered (its wrapping key is on neither node) and an X.509 certificate registered on one
//! node are served identically by its peer, each node holding the material under its own KEK.

use crate::support::cluster::{eventually, Cluster, Options};
use crate::support::kmip::{template, uid, uid_of};
use akm::crypto::keywrap;
use akm::kmip::enums::{
    block_cipher_mode as bcm, certificate_type, cryptographic_algorithm as alg, encoding_option,
    key_format_type as kft, object_type as ot, operation as op, wrapping_method,
};
use akm::kmip::ProtocolVersion;
use akm::ttlv::{Tag, Ttlv};
use std::time::Duration;

fn wrapped_key_payload(wrapped: Vec<u8>) -> Vec<Ttlv> {
    let data = Ttlv::structure(
        Tag::KEY_WRAPPING_DATA,
        vec![
            Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
            Ttlv::structure(
                Tag::ENCRYPTION_KEY_INFORMATION,
                vec![
                    Ttlv::text(Tag::UNIQUE_IDENTIFIER, "escrow-kek"),
                    Ttlv::structure(
                        Tag::CRYPTOGRAPHIC_PARAMETERS,
                        vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, bcm::NISTKEYWRAP)],
                    ),
                ],
            ),
            Ttlv::enumeration(Tag::ENCODING_OPTION, encoding_option::NO_ENCODING),
        ],
    );
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        template(ProtocolVersion::V1_4, &[]),
        Ttlv::structure(
            Tag::SYMMETRIC_KEY,
            vec![Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::RAW),
                    Ttlv::bytes(Tag::KEY_VALUE, wrapped),
                    Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                    Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 256),
                    data,
                ],
            )],
        ),
    ]
}

fn certificate_payload() -> Vec<Ttlv> {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["array.example".to_owned()]).unwrap();
    let der = params.self_signed(&key).unwrap().der().to_vec();
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::CERTIFICATE),
        template(ProtocolVersion::V1_4, &[]),
        Ttlv::structure(
            Tag::CERTIFICATE,
            vec![
                Ttlv::enumeration(Tag::CERTIFICATE_TYPE, certificate_type::X_509),
                Ttlv::bytes(Tag::CERTIFICATE_VALUE, der),
            ],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrapped_as_registered_keys_and_certificates_survive_a_mirrored_pair() {
    // The cluster's clients speak KMIP 1.4.
    let c = Cluster::start(Options::nodes(2));
    let mut a = c.client(0).await;
    let mut b = c.client(1).await;
    let wrapped = keywrap::wrap(&[0x42; 32], &[0x24; 32]).unwrap();
    let mut uids = Vec::new();
    for payload in [wrapped_key_payload(wrapped), certificate_payload()] {
        uids.push(uid_of(&a.call(op::REGISTER, payload).await.unwrap()));
    }
    for u in &uids {
        assert!(
            eventually(Duration::from_secs(10), || c.nodes[1]
                .objects()
                .contains_key(u)),
            "{u} not mirrored to node 1\n{}",
            c.nodes[1].log()
        );
        let here = a.call(op::GET, uid(u)).await.unwrap();
        let there = b.call(op::GET, uid(u)).await.unwrap();
        assert_eq!(here, there, "node 1 serves {u} differently");
        assert_ne!(c.nodes[0].kek_id_of(u), c.nodes[1].kek_id_of(u));
    }
    // The wrapped key is still the one registered, Key Wrapping Data and all.
    let got = b.call(op::GET, uid(&uids[0])).await.unwrap();
    let block = got
        .child(Tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .unwrap();
    assert!(block.child(Tag::KEY_WRAPPING_DATA).is_some());
    assert_eq!(
        block.child(Tag::KEY_VALUE).and_then(Ttlv::as_bytes),
        Some(&keywrap::wrap(&[0x42; 32], &[0x24; 32]).unwrap()[..])
    );
}
