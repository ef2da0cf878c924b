//! The attributes the server sets on every new object (KMIP 2.1 §4: Sensitive, Always
//! Sensitive, Extractable, Never Extractable, Fresh, Lease Time, Protection Storage Mask,
//! Random Number Generator, Key Format Type, Short Unique Identifier) and what they do: Get
//! clears Fresh and refuses Sensitive or non-Extractable keys; dates change only in the
//! states KMIP allows.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    key_format_type, operation as op, protection_storage_mask, result_reason as rr,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::Value;

fn value_of(attrs: &[Attr], name: &str) -> Option<Value> {
    attrs
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.clone())
}

#[tokio::test]
async fn new_objects_carry_the_server_set_attributes() {
    let server = TestServer::start().await;
    for version in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", version).await;
        let u = create_key(&mut c, None).await;
        let attrs = get_attrs(&mut c, &u, &[]).await;
        assert_eq!(value_of(&attrs, "Sensitive"), Some(Value::Boolean(false)));
        assert_eq!(
            value_of(&attrs, "Always Sensitive"),
            Some(Value::Boolean(false))
        );
        assert_eq!(value_of(&attrs, "Extractable"), Some(Value::Boolean(true)));
        assert_eq!(
            value_of(&attrs, "Never Extractable"),
            Some(Value::Boolean(false))
        );
        assert_eq!(value_of(&attrs, "Fresh"), Some(Value::Boolean(true)));
        assert_eq!(value_of(&attrs, "Lease Time"), Some(Value::Interval(3600)));
        assert!(value_of(&attrs, "Random Number Generator").is_some());
        // Protection Storage Mask is a 2.0 attribute: never in a 1.x response.
        let mask = value_of(&attrs, "Protection Storage Mask");
        // So are Key Format Type and Short Unique Identifier (SHA-256 of the identifier).
        let format = value_of(&attrs, "Key Format Type");
        let short = value_of(&attrs, "Short Unique Identifier");
        if version.is_v2() {
            let software = protection_storage_mask::SOFTWARE;
            assert_eq!(mask, Some(Value::Integer(software)));
            assert_eq!(format, Some(Value::Enumeration(key_format_type::RAW)));
            let digest = akm::crypto::sha256(u.as_bytes());
            assert_eq!(short, Some(Value::ByteString(digest.into())));
        } else {
            assert_eq!((mask, format, short), (None, None, None));
        }

        c.call(op::GET, uid(&u)).await.unwrap();
        let attrs = get_attrs(&mut c, &u, &["Fresh"]).await;
        assert_eq!(value_of(&attrs, "Fresh"), Some(Value::Boolean(false)));
    }
    server.stop().await;
}

#[tokio::test]
async fn sensitive_and_unextractable_keys_are_not_served() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let mut sensitive = aes_attrs(None);
    sensitive.push(Attr::new("Sensitive", Value::Boolean(true)));
    let u = uid_of(
        &c.call(op::CREATE, create_payload(V::V2_1, &sensitive))
            .await
            .unwrap(),
    );
    let attrs = get_attrs(&mut c, &u, &["Always Sensitive"]).await;
    assert_eq!(
        value_of(&attrs, "Always Sensitive"),
        Some(Value::Boolean(true))
    );
    assert_eq!(reason(c.call(op::GET, uid(&u)).await), rr::SENSITIVE);

    let mut sealed = aes_attrs(None);
    sealed.push(Attr::new("Extractable", Value::Boolean(false)));
    let u = uid_of(
        &c.call(op::CREATE, create_payload(V::V2_1, &sealed))
            .await
            .unwrap(),
    );
    let attrs = get_attrs(&mut c, &u, &["Never Extractable"]).await;
    assert_eq!(
        value_of(&attrs, "Never Extractable"),
        Some(Value::Boolean(true))
    );
    assert_eq!(reason(c.call(op::GET, uid(&u)).await), rr::NOT_EXTRACTABLE);
    server.stop().await;
}

/// 2.x Set Attribute payload for `attr` on `u`.
fn set_payload(u: &str, attr: &Attr) -> Vec<akm::ttlv::Ttlv> {
    let mut p = uid(u);
    p.push(akm::ttlv::Ttlv::structure(
        akm::ttlv::Tag::NEW_ATTRIBUTE,
        vec![akm::kmip::attributes::to_v2(attr)],
    ));
    p
}

#[tokio::test]
async fn dates_change_only_in_the_states_kmip_allows() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let u = create_key(&mut c, None).await;
    let activation = Attr::new("Activation Date", Value::DateTime(4_000_000_000));
    c.call(op::SET_ATTRIBUTE, set_payload(&u, &activation))
        .await
        .unwrap();
    c.call(op::ACTIVATE, uid(&u)).await.unwrap();
    // Active: the Activation Date is fixed, the Deactivation Date may still be set.
    let err = c
        .call(op::SET_ATTRIBUTE, set_payload(&u, &activation))
        .await;
    assert_eq!(reason(err), rr::WRONG_KEY_LIFECYCLE_STATE);
    let deactivation = Attr::new("Deactivation Date", Value::DateTime(4_100_000_000));
    c.call(op::SET_ATTRIBUTE, set_payload(&u, &deactivation))
        .await
        .unwrap();
    // Neither may be deleted.
    let mut delete = uid(&u);
    delete.push(akm::kmip::attributes::reference_to_v2("Deactivation Date"));
    let err = c.call(op::DELETE_ATTRIBUTE, delete).await;
    assert_eq!(reason(err), rr::ATTRIBUTE_READ_ONLY);

    // Making a key extractable clears Never Extractable for good.
    let mut sealed = aes_attrs(None);
    sealed.push(Attr::new("Extractable", Value::Boolean(false)));
    let u = uid_of(
        &c.call(op::CREATE, create_payload(V::V2_1, &sealed))
            .await
            .unwrap(),
    );
    let open = Attr::new("Extractable", Value::Boolean(true));
    c.call(op::SET_ATTRIBUTE, set_payload(&u, &open))
        .await
        .unwrap();
    let attrs = get_attrs(&mut c, &u, &["Never Extractable"]).await;
    assert_eq!(
        value_of(&attrs, "Never Extractable"),
        Some(Value::Boolean(false))
    );
    c.call(op::GET, uid(&u)).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn quantum_safe_keys_must_be_long_enough() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let with = |length: i32| {
        let mut attrs = aes_attrs(None);
        attrs.retain(|a| a.name != "Cryptographic Length");
        attrs.push(Attr::new("Cryptographic Length", Value::Integer(length)));
        attrs.push(Attr::new("Quantum Safe", Value::Boolean(true)));
        create_payload(V::V2_1, &attrs)
    };
    let u = uid_of(&c.call(op::CREATE, with(256)).await.unwrap());
    let attrs = get_attrs(&mut c, &u, &["Quantum Safe"]).await;
    assert_eq!(value_of(&attrs, "Quantum Safe"), Some(Value::Boolean(true)));
    assert_eq!(
        reason(c.call(op::CREATE, with(128)).await),
        rr::GENERAL_FAILURE
    );
    server.stop().await;
}
