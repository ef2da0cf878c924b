//! Every operation against the real server over TLS, in the 1.x and 2.x encodings: the
//! symmetric-key lifecycle and its state-machine violations, registration and retrieval of
//! each object type, attribute edits, Locate filters and paging, batches with ID Placeholder,
//! other identities denied, and version-correct responses.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::{request, response_items};
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    key_format_type as kft, object_type as ot, operation as op, query_function as qf,
    result_reason as rr, revocation_reason_code as rrc, secret_data_type, state,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

fn revoke_payload(u: &str, code: u32) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(Ttlv::structure(
        Tag::REVOCATION_REASON,
        vec![Ttlv::enumeration(Tag::REVOCATION_REASON_CODE, code)],
    ));
    p
}

async fn lifecycle(version: V, wrong_state_reason: u32, destroyed_reason: u32) {
    let server = TestServer::start().await;
    let mut c = server.client("alice", version).await;
    let u = create_key(&mut c, Some("lifecycle-key")).await;
    assert_eq!(state_of(&mut c, &u).await, state::PRE_ACTIVE);

    let got = c.call(op::GET, uid(&u)).await.unwrap();
    assert_eq!(key_bytes(&got).len(), 32);

    c.call(op::ACTIVATE, uid(&u)).await.unwrap();
    assert_eq!(state_of(&mut c, &u).await, state::ACTIVE);
    assert_eq!(
        reason(c.call(op::ACTIVATE, uid(&u)).await),
        wrong_state_reason
    );
    assert_eq!(
        reason(c.call(op::DESTROY, uid(&u)).await),
        wrong_state_reason
    );

    c.call(op::REVOKE, revoke_payload(&u, rrc::CESSATION_OF_OPERATION))
        .await
        .unwrap();
    assert_eq!(state_of(&mut c, &u).await, state::DEACTIVATED);
    let dates = get_attrs(&mut c, &u, &["Deactivation Date", "Revocation Reason"]).await;
    assert_eq!(dates.len(), 2, "{dates:?}");

    c.call(op::DESTROY, uid(&u)).await.unwrap();
    assert_eq!(state_of(&mut c, &u).await, state::DESTROYED);
    assert_eq!(reason(c.call(op::GET, uid(&u)).await), destroyed_reason);
    assert_eq!(
        reason(c.call(op::DESTROY, uid(&u)).await),
        wrong_state_reason
    );
    server.stop().await;
}

#[tokio::test]
async fn symmetric_key_lifecycle_in_kmip_1_4() {
    lifecycle(V::V1_4, rr::PERMISSION_DENIED, rr::ITEM_NOT_FOUND).await;
}

#[tokio::test]
async fn symmetric_key_lifecycle_in_kmip_2_1() {
    lifecycle(V::V2_1, rr::WRONG_KEY_LIFECYCLE_STATE, rr::OBJECT_DESTROYED).await;
}

#[tokio::test]
async fn compromise_then_destroy_gives_destroyed_compromised() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    let u = create_key(&mut c, None).await;
    c.call(op::ACTIVATE, uid(&u)).await.unwrap();
    c.call(op::REVOKE, revoke_payload(&u, rrc::KEY_COMPROMISE))
        .await
        .unwrap();
    assert_eq!(state_of(&mut c, &u).await, state::COMPROMISED);
    assert_eq!(
        get_attrs(
            &mut c,
            &u,
            &["Compromise Date", "Compromise Occurrence Date"]
        )
        .await
        .len(),
        2
    );
    // A compromised key cannot be merely deactivated afterwards.
    assert_eq!(
        reason(
            c.call(op::REVOKE, revoke_payload(&u, rrc::SUPERSEDED))
                .await
        ),
        rr::PERMISSION_DENIED
    );
    c.call(op::DESTROY, uid(&u)).await.unwrap();
    assert_eq!(state_of(&mut c, &u).await, state::DESTROYED_COMPROMISED);
    server.stop().await;
}

#[tokio::test]
async fn create_validates_algorithm_and_length() {
    let server = TestServer::start().await;
    for version in [V::V1_2, V::V2_0] {
        let mut c = server.client("alice", version).await;
        let mut attrs = aes_attrs(None);
        attrs[1] = Attr::new("Cryptographic Length", Value::Integer(257));
        let r = c.call(op::CREATE, create_payload(version, &attrs)).await;
        assert_eq!(reason(r), rr::INVALID_FIELD);
        let r = c
            .call(op::CREATE, create_payload(version, &attrs[2..]))
            .await;
        assert_eq!(reason(r), rr::INVALID_FIELD, "no algorithm");
        // Server-set attributes cannot be given by the client.
        let mut attrs = aes_attrs(None);
        attrs.push(Attr::new("State", Value::Enumeration(state::ACTIVE)));
        let r = c.call(op::CREATE, create_payload(version, &attrs)).await;
        assert_eq!(reason(r), rr::INVALID_FIELD);
        // HMAC keys take their hash's length by default.
        let hmac = vec![Attr::new(
            "Cryptographic Algorithm",
            Value::Enumeration(akm::kmip::enums::cryptographic_algorithm::HMAC_SHA384),
        )];
        let u = uid_of(
            &c.call(op::CREATE, create_payload(version, &hmac))
                .await
                .unwrap(),
        );
        let got = c.call(op::GET, uid(&u)).await.unwrap();
        assert_eq!(key_bytes(&got).len(), 48);
    }
    server.stop().await;
}

#[tokio::test]
async fn register_and_get_each_object_type() {
    let server = TestServer::start().await;
    for version in [V::V1_0, V::V1_4, V::V2_1] {
        let mut c = server.client("alice", version).await;
        let key: Vec<u8> = (0u8..32).collect();
        let u = uid_of(
            &c.call(op::REGISTER, register_key_payload(version, &key, &[]))
                .await
                .unwrap(),
        );
        let got = c.call(op::GET, uid(&u)).await.unwrap();
        assert_eq!(key_bytes(&got), key);
        // The same key as Transparent Symmetric Key.
        let mut p = uid(&u);
        p.push(Ttlv::enumeration(
            Tag::KEY_FORMAT_TYPE,
            kft::TRANSPARENT_SYMMETRIC_KEY,
        ));
        let got = c.call(op::GET, p).await.unwrap();
        assert!(format!("{got:?}").contains("Key: ByteString"));
        assert_eq!(key_bytes(&got), key);
        let mut p = uid(&u);
        p.push(Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::PKCS_8));
        assert_eq!(
            reason(c.call(op::GET, p).await),
            rr::KEY_FORMAT_TYPE_NOT_SUPPORTED
        );

        let secret = vec![0x5Eu8; 96];
        let payload = vec![
            Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SECRET_DATA),
            template(version, &[]),
            Ttlv::structure(
                Tag::SECRET_DATA,
                vec![
                    Ttlv::enumeration(Tag::SECRET_DATA_TYPE, secret_data_type::PASSWORD),
                    Ttlv::structure(
                        Tag::KEY_BLOCK,
                        vec![
                            Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::OPAQUE),
                            Ttlv::structure(
                                Tag::KEY_VALUE,
                                vec![Ttlv::bytes(Tag::KEY_MATERIAL, secret.clone())],
                            ),
                        ],
                    ),
                ],
            ),
        ];
        let s = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
        let got = c.call(op::GET, uid(&s)).await.unwrap();
        assert_eq!(key_bytes(&got), secret);
        assert_eq!(
            got.child(Tag::OBJECT_TYPE).and_then(Ttlv::as_enum),
            Some(ot::SECRET_DATA)
        );

        let opaque = b"opaque bytes".to_vec();
        let payload = vec![
            Ttlv::enumeration(Tag::OBJECT_TYPE, ot::OPAQUE_OBJECT),
            template(version, &[]),
            Ttlv::structure(
                Tag::OPAQUE_OBJECT,
                vec![
                    Ttlv::enumeration(Tag::OPAQUE_DATA_TYPE, 0x8000_0001),
                    Ttlv::bytes(Tag::OPAQUE_DATA_VALUE, opaque.clone()),
                ],
            ),
        ];
        let o = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
        assert_eq!(key_bytes(&c.call(op::GET, uid(&o)).await.unwrap()), opaque);

        // Object Type that does not match the object given.
        let mut bad = register_key_payload(version, &key, &[]);
        bad[0] = Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SECRET_DATA);
        assert_eq!(reason(c.call(op::REGISTER, bad).await), rr::INVALID_FIELD);
        // Declared length that does not match the bytes.
        let mut short = register_key_payload(version, &key[..16], &[]);
        if let Value::Structure(k) = &mut short[2].value {
            if let Value::Structure(b) = &mut k[0].value {
                b[3] = Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 256);
            }
        }
        assert_eq!(reason(c.call(op::REGISTER, short).await), rr::INVALID_FIELD);
    }
    server.stop().await;
}

#[tokio::test]
async fn another_identity_is_denied() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice", V::V1_4).await;
    let mut bob = server.client("bob", V::V1_4).await;
    let u = create_key(&mut alice, Some("alice-key")).await;
    for (operation, payload) in [
        (op::GET, uid(&u)),
        (op::GET_ATTRIBUTES, uid(&u)),
        (op::GET_ATTRIBUTE_LIST, uid(&u)),
        (op::ACTIVATE, uid(&u)),
        (op::DESTROY, uid(&u)),
        (op::REVOKE, revoke_payload(&u, rrc::KEY_COMPROMISE)),
    ] {
        assert_eq!(
            reason(bob.call(operation, payload).await),
            rr::PERMISSION_DENIED,
            "operation {operation}"
        );
    }
    // Bob's Locate never shows Alice's key, even by its name.
    let found = bob
        .call(
            op::LOCATE,
            filters(V::V1_4, &[Attr::new("Name", name("alice-key"))]),
        )
        .await
        .unwrap();
    assert!(uids_of(&found).is_empty());
    assert_eq!(state_of(&mut alice, &u).await, state::PRE_ACTIVE);
    server.stop().await;
}

#[tokio::test]
async fn locate_filters_and_pages() {
    let server = TestServer::start().await;
    for version in [V::V1_4, V::V2_1] {
        let who = format!("locator-{version}");
        let mut c = server.client(&who, version).await;
        let mut made = Vec::new();
        for i in 0..5 {
            let mut attrs = aes_attrs(Some(&format!("{who}-k{i}")));
            if i % 2 == 0 {
                attrs.push(Attr::new("Object Group", Value::TextString("even".into())));
            }
            made.push(uid_of(
                &c.call(op::CREATE, create_payload(version, &attrs))
                    .await
                    .unwrap(),
            ));
        }
        let all = c.call(op::LOCATE, vec![]).await.unwrap();
        assert_eq!(uids_of(&all), made);
        if version.is_v2() {
            assert_eq!(
                all.child(Tag::LOCATED_ITEMS).and_then(Ttlv::as_int),
                Some(5)
            );
        }
        for (i, u) in made.iter().enumerate() {
            let by_name = c
                .call(
                    op::LOCATE,
                    filters(version, &[Attr::new("Name", name(&format!("{who}-k{i}")))]),
                )
                .await
                .unwrap();
            assert_eq!(
                &uids_of(&by_name),
                std::slice::from_ref(u),
                "Name filter must be honoured"
            );
        }
        let even = c
            .call(
                op::LOCATE,
                filters(
                    version,
                    &[Attr::new("Object Group", Value::TextString("even".into()))],
                ),
            )
            .await
            .unwrap();
        assert_eq!(
            uids_of(&even),
            vec![made[0].clone(), made[2].clone(), made[4].clone()]
        );
        // Paging: 2 at a time with Offset Items.
        let mut paged = Vec::new();
        for offset in [0, 2, 4] {
            let mut p = vec![
                Ttlv::integer(Tag::MAXIMUM_ITEMS, 2),
                Ttlv::integer(Tag::OFFSET_ITEMS, offset),
            ];
            p.extend(filters(version, &[]));
            paged.extend(uids_of(&c.call(op::LOCATE, p).await.unwrap()));
        }
        assert_eq!(paged, made);
        // State filter and the other indexed attribute filters.
        c.call(op::ACTIVATE, uid(&made[1])).await.unwrap();
        let active = c
            .call(
                op::LOCATE,
                filters(
                    version,
                    &[Attr::new("State", Value::Enumeration(state::ACTIVE))],
                ),
            )
            .await
            .unwrap();
        assert_eq!(uids_of(&active), vec![made[1].clone()]);
        let by_mask = c
            .call(
                op::LOCATE,
                filters(
                    version,
                    &[Attr::new("Cryptographic Usage Mask", Value::Integer(0x0C))],
                ),
            )
            .await
            .unwrap();
        assert_eq!(uids_of(&by_mask).len(), 5);
        // Destroyed objects are found only when the Storage Status Mask asks for them.
        c.call(op::DESTROY, uid(&made[0])).await.unwrap();
        let live = c.call(op::LOCATE, vec![]).await.unwrap();
        assert_eq!(uids_of(&live).len(), 4);
        let destroyed = c
            .call(op::LOCATE, vec![Ttlv::integer(Tag::STORAGE_STATUS_MASK, 4)])
            .await
            .unwrap();
        assert_eq!(uids_of(&destroyed), vec![made[0].clone()]);
        let negative = c
            .call(op::LOCATE, vec![Ttlv::integer(Tag::MAXIMUM_ITEMS, -1)])
            .await;
        assert_eq!(reason(negative), rr::INVALID_FIELD);
    }
    server.stop().await;
}

#[tokio::test]
async fn names_are_unique() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    create_key(&mut c, Some("only-once")).await;
    let r = c
        .call(
            op::CREATE,
            create_payload(V::V1_4, &aes_attrs(Some("only-once"))),
        )
        .await;
    assert_eq!(reason(r), rr::INVALID_FIELD);
    server.stop().await;
}

#[tokio::test]
async fn attribute_edits_in_kmip_1_x() {
    let server = TestServer::start().await;
    let v = V::V1_4;
    let mut c = server.client("alice", v).await;
    let u = create_key(&mut c, None).await;
    let custom = |s: &str| Attr::new("x-purpose", Value::TextString(s.into()));
    let add = |a: &Attr| {
        let mut p = uid(&u);
        p.push(akm::kmip::attributes::to_v1(a, None));
        p
    };
    c.call(op::ADD_ATTRIBUTE, add(&custom("backup")))
        .await
        .unwrap();
    c.call(op::ADD_ATTRIBUTE, add(&custom("db"))).await.unwrap();
    let got = get_attrs(&mut c, &u, &["x-purpose"]).await;
    assert_eq!(got, vec![custom("backup"), custom("db")]);
    // Modify the second instance by index.
    let mut p = uid(&u);
    p.push(akm::kmip::attributes::to_v1(&custom("logs"), Some(1)));
    c.call(op::MODIFY_ATTRIBUTE, p).await.unwrap();
    assert_eq!(
        get_attrs(&mut c, &u, &["x-purpose"]).await,
        vec![custom("backup"), custom("logs")]
    );
    // Delete the first.
    let mut p = uid(&u);
    p.push(Ttlv::text(Tag::ATTRIBUTE_NAME, "x-purpose"));
    p.push(Ttlv::integer(Tag::ATTRIBUTE_INDEX, 0));
    c.call(op::DELETE_ATTRIBUTE, p).await.unwrap();
    assert_eq!(
        get_attrs(&mut c, &u, &["x-purpose"]).await,
        vec![custom("logs")]
    );
    // Read-only and single-valued attributes.
    let state = Attr::new("State", Value::Enumeration(state::ACTIVE));
    assert_eq!(
        reason(c.call(op::ADD_ATTRIBUTE, add(&state)).await),
        rr::PERMISSION_DENIED
    );
    let contact = Attr::new("Contact Information", Value::TextString("ops".into()));
    c.call(op::ADD_ATTRIBUTE, add(&contact)).await.unwrap();
    assert_eq!(
        reason(c.call(op::ADD_ATTRIBUTE, add(&contact)).await),
        rr::ILLEGAL_OPERATION
    );
    // Modify of an attribute that does not exist; delete of a missing instance.
    let mut p = uid(&u);
    p.push(akm::kmip::attributes::to_v1(
        &Attr::new("x-none", Value::Integer(1)),
        None,
    ));
    assert_eq!(
        reason(c.call(op::MODIFY_ATTRIBUTE, p).await),
        rr::INVALID_FIELD
    );
    let mut p = uid(&u);
    p.push(Ttlv::text(Tag::ATTRIBUTE_NAME, "x-purpose"));
    p.push(Ttlv::integer(Tag::ATTRIBUTE_INDEX, 7));
    assert_eq!(
        reason(c.call(op::DELETE_ATTRIBUTE, p).await),
        rr::ITEM_NOT_FOUND
    );
    // Wrong value type for a known attribute.
    let bad = Attr::new("Contact Information", Value::Integer(3));
    let mut p = uid(&u);
    p.push(akm::kmip::attributes::to_v1(&bad, None));
    assert_eq!(
        reason(c.call(op::MODIFY_ATTRIBUTE, p).await),
        rr::INVALID_MESSAGE
    );
    // Get Attribute List names what is there.
    let list = c.call(op::GET_ATTRIBUTE_LIST, uid(&u)).await.unwrap();
    let names: Vec<&str> = list
        .children_with(Tag::ATTRIBUTE_NAME)
        .filter_map(Ttlv::as_text)
        .collect();
    for n in [
        "Unique Identifier",
        "State",
        "Cryptographic Algorithm",
        "Contact Information",
        "x-purpose",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn attribute_edits_in_kmip_2_x() {
    let server = TestServer::start().await;
    let v = V::V2_1;
    let mut c = server.client("alice", v).await;
    let u = create_key(&mut c, None).await;
    let wrap = |tag: Tag, a: &Attr| Ttlv::structure(tag, vec![akm::kmip::attributes::to_v2(a)]);
    let comment = |s: &str| Attr::new("Comment", Value::TextString(s.into()));
    let mut p = uid(&u);
    p.push(wrap(Tag::NEW_ATTRIBUTE, &comment("first")));
    c.call(op::SET_ATTRIBUTE, p).await.unwrap();
    let mut p = uid(&u);
    p.push(wrap(Tag::NEW_ATTRIBUTE, &comment("second")));
    c.call(op::SET_ATTRIBUTE, p).await.unwrap();
    assert_eq!(
        get_attrs(&mut c, &u, &["Comment"]).await,
        vec![comment("second")]
    );
    let vendor = Attr::new("x-ID", Value::TextString("tape-7".into()));
    let mut p = uid(&u);
    p.push(wrap(Tag::NEW_ATTRIBUTE, &vendor));
    c.call(op::ADD_ATTRIBUTE, p).await.unwrap();
    assert_eq!(get_attrs(&mut c, &u, &["x-ID"]).await, vec![vendor.clone()]);
    let renamed = Attr::new("x-ID", Value::TextString("tape-8".into()));
    let mut p = uid(&u);
    p.push(wrap(Tag::CURRENT_ATTRIBUTE, &vendor));
    p.push(wrap(Tag::NEW_ATTRIBUTE, &renamed));
    c.call(op::MODIFY_ATTRIBUTE, p).await.unwrap();
    assert_eq!(
        get_attrs(&mut c, &u, &["x-ID"]).await,
        vec![renamed.clone()]
    );
    let mut p = uid(&u);
    p.push(wrap(Tag::CURRENT_ATTRIBUTE, &renamed));
    c.call(op::DELETE_ATTRIBUTE, p).await.unwrap();
    assert!(get_attrs(&mut c, &u, &["x-ID"]).await.is_empty());
    // Read-only attributes cannot be set.
    let mut p = uid(&u);
    p.push(wrap(
        Tag::NEW_ATTRIBUTE,
        &Attr::new("Initial Date", Value::DateTime(0)),
    ));
    assert_eq!(
        reason(c.call(op::SET_ATTRIBUTE, p).await),
        rr::ATTRIBUTE_READ_ONLY
    );
    // Get Attribute List uses Attribute References in 2.x.
    let list = c.call(op::GET_ATTRIBUTE_LIST, uid(&u)).await.unwrap();
    assert!(list.children_with(Tag::ATTRIBUTE_REFERENCE).count() >= 8);
    // Set Attribute does not exist in 1.x.
    let mut c14 = server.client("alice", V::V1_4).await;
    assert_eq!(
        reason(c14.call(op::SET_ATTRIBUTE, uid(&u)).await),
        rr::OPERATION_NOT_SUPPORTED
    );
    server.stop().await;
}

#[tokio::test]
async fn responses_stay_within_the_request_version() {
    let server = TestServer::start().await;
    let mut c10 = server.client("alice", V::V1_0).await;
    let u = create_key(&mut c10, None).await;
    let all = c10.call(op::GET_ATTRIBUTES, uid(&u)).await.unwrap();
    let names: Vec<String> = attrs_of(V::V1_0, &all)
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert!(names.contains(&"State".to_string()));
    assert!(
        !names.contains(&"Original Creation Date".to_string()),
        "1.2 attribute in a 1.0 response: {names:?}"
    );
    let response = c10
        .send(&request(V::V1_0, &[(op::GET, uid(&u))]))
        .await
        .unwrap();
    let version = response_version(&response);
    assert_eq!(version, Some(V::V1_0));
    // A 2.x-only reason (Object Destroyed) is never sent to a 1.x client.
    c10.call(op::DESTROY, uid(&u)).await.unwrap();
    assert_eq!(reason(c10.call(op::GET, uid(&u)).await), rr::ITEM_NOT_FOUND);
    let mut c12 = server.client("alice", V::V1_2).await;
    let all = c12.call(op::GET_ATTRIBUTES, uid(&u)).await.unwrap();
    assert!(attrs_of(V::V1_2, &all)
        .iter()
        .any(|a| a.name == "Original Creation Date"));
    server.stop().await;
}

#[tokio::test]
async fn query_and_discover_versions() {
    let server = TestServer::start().await;
    for version in [V::V1_2, V::V2_1] {
        let mut c = server.client("alice", version).await;
        let q = c
            .call(
                op::QUERY,
                vec![
                    Ttlv::enumeration(Tag::QUERY_FUNCTION, qf::QUERY_OPERATIONS),
                    Ttlv::enumeration(Tag::QUERY_FUNCTION, qf::QUERY_OBJECTS),
                    Ttlv::enumeration(Tag::QUERY_FUNCTION, qf::QUERY_SERVER_INFORMATION),
                ],
            )
            .await
            .unwrap();
        let ops: Vec<u32> = q
            .children_with(Tag::OPERATION)
            .filter_map(Ttlv::as_enum)
            .collect();
        for o in [
            op::CREATE,
            op::GET,
            op::LOCATE,
            op::DESTROY,
            op::DISCOVER_VERSIONS,
        ] {
            assert!(ops.contains(&o));
        }
        // Symmetric Key, Secret Data, Opaque Object, Public Key, Private Key, Split Key,
        // Certificate.
        assert_eq!(q.children_with(Tag::OBJECT_TYPE).count(), 7);
        assert_eq!(
            q.child(Tag::VENDOR_IDENTIFICATION).and_then(Ttlv::as_text),
            Some("akm")
        );
        assert_eq!(q.child(Tag::SERVER_INFORMATION).is_some(), version.is_v2());
        let all = c.call(op::DISCOVER_VERSIONS, vec![]).await.unwrap();
        assert_eq!(all.children_with(Tag::PROTOCOL_VERSION).count(), 7);
        let some = c
            .call(
                op::DISCOVER_VERSIONS,
                vec![V::new(3, 0).to_ttlv(), V::V1_1.to_ttlv()],
            )
            .await
            .unwrap();
        let got: Vec<_> = some
            .children_with(Tag::PROTOCOL_VERSION)
            .filter_map(akm::kmip::ProtocolVersion::from_ttlv)
            .collect();
        assert_eq!(got, vec![V::V1_1]);
    }
    server.stop().await;
}

#[tokio::test]
async fn batch_uses_the_id_placeholder_and_honours_the_error_option() {
    let server = TestServer::start().await;
    let v = V::V1_4;
    let mut c = server.client("alice", v).await;
    // Create, Activate and Get in one message; the last two name no object.
    let items = c
        .batch(&[
            (op::CREATE, create_payload(v, &aes_attrs(None))),
            (op::ACTIVATE, vec![]),
            (op::GET, vec![]),
        ])
        .await
        .unwrap();
    let created = uid_of(items[0].as_ref().unwrap());
    assert_eq!(uid_of(items[1].as_ref().unwrap()), created);
    assert_eq!(key_bytes(items[2].as_ref().unwrap()).len(), 32);
    assert_eq!(state_of(&mut c, &created).await, state::ACTIVE);

    // Stop (the default): nothing after the failure runs.
    let items = c
        .batch(&[
            (op::GET, uid("no-such-key")),
            (op::CREATE, create_payload(v, &aes_attrs(None))),
        ])
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    // Continue: the second item runs.
    let mut msg = request(
        v,
        &[
            (op::GET, uid("no-such-key")),
            (op::CREATE, create_payload(v, &aes_attrs(None))),
        ],
    );
    if let Value::Structure(children) = &mut msg.value {
        if let Value::Structure(h) = &mut children[0].value {
            h.push(Ttlv::enumeration(
                Tag::BATCH_ERROR_CONTINUATION_OPTION,
                akm::kmip::enums::batch_error_continuation_option::CONTINUE,
            ));
        }
    }
    let items = response_items(&c.send(&msg).await.unwrap()).unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_err() && items[1].is_ok());
    server.stop().await;
}

#[tokio::test]
async fn maximum_response_size_gives_response_too_large() {
    let server = TestServer::start().await;
    let v = V::V1_4;
    let mut c = server.client("alice", v).await;
    let u = create_key(&mut c, None).await;
    let mut msg = request(v, &[(op::GET, uid(&u))]);
    if let Value::Structure(children) = &mut msg.value {
        if let Value::Structure(h) = &mut children[0].value {
            h.push(Ttlv::integer(Tag::MAXIMUM_RESPONSE_SIZE, 1));
        }
    }
    let items = response_items(&c.send(&msg).await.unwrap()).unwrap();
    assert_eq!(
        reason(items.into_iter().next().unwrap()),
        rr::RESPONSE_TOO_LARGE
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_operations_and_missing_identifiers_are_refused() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    assert_eq!(
        reason(c.call(0xDEAD_BEEF, vec![]).await),
        rr::OPERATION_NOT_SUPPORTED
    );
    assert_eq!(reason(c.call(op::GET, vec![]).await), rr::INVALID_MESSAGE);
    assert_eq!(
        reason(c.call(op::GET, uid("missing")).await),
        rr::ITEM_NOT_FOUND
    );
    assert_eq!(
        reason(
            c.call(op::GET, vec![Ttlv::integer(Tag::UNIQUE_IDENTIFIER, 5)])
                .await
        ),
        rr::INVALID_MESSAGE
    );
    let r = c.call(op::REVOKE, uid("missing")).await;
    assert_eq!(
        reason(r),
        rr::INVALID_MESSAGE,
        "Revoke needs a Revocation Reason"
    );
    server.stop().await;
}
