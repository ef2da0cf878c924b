//! The attributes the server sets on every new object (KMIP 2.1 §4: Sensitive, Always
//! Sensitive, Extractable, Never Extractable, Fresh, Lease Time, Protection Storage Mask,
//! Random Number Generator, Key Format Type, Short Unique Identifier) and what they do: Get clears Fresh, and refuses Sensitive or
//! non-Extractable keys.

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
        if version.is_v2() {
            assert_eq!(
                mask,
                Some(Value::Integer(protection_storage_mask::SOFTWARE))
            );
        } else {
            assert_eq!(mask, None);
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
