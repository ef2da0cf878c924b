//! Key versions and rotation (Re-key, KMIP 2.1 §6.1.42) against the real server: each Re-key
//! makes the next version, the name moves to it, the versions are linked both ways and
//! numbered by Rotate Generation, and data encrypted under every earlier version stays
//! decryptable, also after the old versions are deactivated.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::Client;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    block_cipher_mode as bcm, link_type, operation as op, result_reason as rr,
    revocation_reason_code as rrc, state,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

fn gcm() -> Ttlv {
    Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, bcm::GCM)],
    )
}

async fn locate_name(c: &mut Client, n: &str) -> Vec<String> {
    let v = c.version;
    let got = c
        .call(op::LOCATE, filters(v, &[Attr::new("Name", name(n))]))
        .await
        .unwrap();
    uids_of(&got)
}

/// Ciphertext, IV and tag of `data` under key `u`.
async fn encrypt(c: &mut Client, u: &str, data: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut req = uid(u);
    req.push(gcm());
    req.push(Ttlv::bytes(Tag::DATA, data));
    let got = c.call(op::ENCRYPT, req).await.unwrap();
    let b = |t| got.child(t).and_then(Ttlv::as_bytes).unwrap().to_vec();
    (
        b(Tag::DATA),
        b(Tag::IV_COUNTER_NONCE),
        b(Tag::AUTHENTICATED_ENCRYPTION_TAG),
    )
}

async fn decrypt(c: &mut Client, u: &str, sealed: &(Vec<u8>, Vec<u8>, Vec<u8>)) -> Vec<u8> {
    let mut req = uid(u);
    req.push(gcm());
    req.push(Ttlv::bytes(Tag::DATA, sealed.0.clone()));
    req.push(Ttlv::bytes(Tag::IV_COUNTER_NONCE, sealed.1.clone()));
    req.push(Ttlv::bytes(
        Tag::AUTHENTICATED_ENCRYPTION_TAG,
        sealed.2.clone(),
    ));
    let got = c.call(op::DECRYPT, req).await.unwrap();
    got.child(Tag::DATA)
        .and_then(Ttlv::as_bytes)
        .unwrap()
        .to_vec()
}

fn links(attrs: &[Attr]) -> Vec<(u32, String)> {
    attrs
        .iter()
        .filter(|a| a.name == "Link")
        .filter_map(|a| match &a.value {
            Value::Structure(c) => Some((
                c.iter().find(|t| t.tag == Tag::LINK_TYPE)?.as_enum()?,
                c.iter()
                    .find(|t| t.tag == Tag::LINKED_OBJECT_IDENTIFIER)?
                    .as_text()?
                    .to_owned(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_key_rotated_three_times_decrypts_data_from_every_version() {
    let server = TestServer::start().await;
    let mut c = server.client("app", V::V2_1).await;
    let first = create_key(&mut c, Some("orders")).await;
    c.call(op::ACTIVATE, uid(&first)).await.unwrap();
    let mut versions = vec![first];
    let mut sealed = Vec::new();
    for round in 0..4 {
        // The application always uses the key by name: it finds the newest version.
        let current = locate_name(&mut c, "orders").await;
        assert_eq!(current, [versions[round].clone()]);
        let data = format!("record written under version {round}");
        sealed.push((
            data.clone(),
            encrypt(&mut c, &current[0], data.as_bytes()).await,
        ));
        if round < 3 {
            let next = uid_of(&c.call(op::RE_KEY, uid(&current[0])).await.unwrap());
            versions.push(next);
        }
    }
    assert_eq!(versions.len(), 4);
    for (i, u) in versions.iter().enumerate() {
        let attrs = get_attrs(
            &mut c,
            u,
            &[
                "Rotate Generation",
                "Rotate Latest",
                "Link",
                "Name",
                "State",
            ],
        )
        .await;
        let get = |n: &str| attrs.iter().find(|a| a.name == n).map(|a| a.value.clone());
        assert_eq!(get("Rotate Generation"), Some(Value::Integer(i as i32)));
        assert_eq!(get("Rotate Latest"), Some(Value::Boolean(i == 3)));
        assert_eq!(get("State"), Some(Value::Enumeration(state::ACTIVE)));
        assert_eq!(
            get("Name").is_some(),
            i == 3,
            "only the newest version has the name"
        );
        let l = links(&attrs);
        if i > 0 {
            assert!(l.contains(&(link_type::REPLACED_OBJECT_LINK, versions[i - 1].clone())));
        }
        if i < 3 {
            assert!(l.contains(&(link_type::REPLACEMENT_OBJECT_LINK, versions[i + 1].clone())));
        }
    }
    // Every version decrypts what was encrypted under it.
    for (u, (data, s)) in versions.iter().zip(&sealed) {
        assert_eq!(decrypt(&mut c, u, s).await, data.as_bytes());
    }
    // Retire the old versions: they still decrypt, but no longer encrypt.
    for u in &versions[..3] {
        let mut rv = uid(u);
        rv.push(Ttlv::structure(
            Tag::REVOCATION_REASON,
            vec![Ttlv::enumeration(
                Tag::REVOCATION_REASON_CODE,
                rrc::SUPERSEDED,
            )],
        ));
        c.call(op::REVOKE, rv).await.unwrap();
    }
    for (u, (data, s)) in versions.iter().zip(&sealed) {
        assert_eq!(decrypt(&mut c, u, s).await, data.as_bytes());
    }
    let mut req = uid(&versions[0]);
    req.push(gcm());
    req.push(Ttlv::bytes(Tag::DATA, b"new data".to_vec()));
    assert_eq!(
        reason(c.call(op::ENCRYPT, req).await),
        rr::WRONG_KEY_LIFECYCLE_STATE
    );
    // The versions have different key material.
    let digests: std::collections::BTreeSet<_> = {
        let mut d = std::collections::BTreeSet::new();
        for u in &versions {
            let got = c.call(op::GET, uid(u)).await.unwrap();
            d.insert(key_bytes(&got));
        }
        d
    };
    assert_eq!(digests.len(), 4);
    server.stop().await;
}

#[tokio::test]
async fn rekey_errors_and_offset() {
    let server = TestServer::start().await;
    let mut c = server.client("app", V::V1_4).await;
    let k = create_key(&mut c, Some("rk")).await;
    c.call(op::ACTIVATE, uid(&k)).await.unwrap();
    // With an Offset, the replacement activates that long after now: Pre-Active until then.
    let mut req = uid(&k);
    req.push(Ttlv::new(Tag::OFFSET, Value::Interval(86400)));
    let next = uid_of(&c.call(op::RE_KEY, req).await.unwrap());
    assert_eq!(state_of(&mut c, &next).await, state::PRE_ACTIVE);
    // A replaced key is not replaced again (versions stay a single chain).
    assert_eq!(
        reason(c.call(op::RE_KEY, uid(&k)).await),
        rr::PERMISSION_DENIED
    );
    // Not found, not a symmetric key, someone else's, destroyed.
    assert_eq!(
        reason(c.call(op::RE_KEY, uid("nope")).await),
        rr::ITEM_NOT_FOUND
    );
    let mut other = server.client("mallory", V::V1_4).await;
    assert_eq!(
        reason(other.call(op::RE_KEY, uid(&next)).await),
        rr::PERMISSION_DENIED
    );
    let gone = create_key(&mut c, None).await;
    c.call(op::DESTROY, uid(&gone)).await.unwrap();
    assert_eq!(
        reason(c.call(op::RE_KEY, uid(&gone)).await),
        rr::ITEM_NOT_FOUND
    );
    // A Re-key that names a server-set attribute is refused.
    let mut req = uid(&next);
    req.push(template(
        V::V1_4,
        &[Attr::new("State", Value::Enumeration(1))],
    ));
    assert_eq!(reason(c.call(op::RE_KEY, req).await), rr::INVALID_FIELD);
    server.stop().await;
}
