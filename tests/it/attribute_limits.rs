//! Limits on stored attribute bytes end to end over mutual TLS: `server.max_attribute_bytes`
//! and `server.max_object_attribute_bytes` refuse, with Server Limit Exceeded and a message
//! naming the key, every write that would store too much (Create, Register, Create Key Pair,
//! Re-key, Add, Modify and Set Attribute, Revoke's message), before anything is stored, and
//! the key stays fully usable afterwards: attributes can no longer brick a key.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::{Client, ClientError};
use akm::config::limits::{AttributeLimits, MAX_ATTRIBUTE_BYTES_CAP};
use akm::kmip::attributes::{self, Attr};
use akm::kmip::enums::{
    cryptographic_algorithm as alg, operation as op, result_reason as rr,
    revocation_reason_code as rrc, state,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

const KIB: usize = 1024;

/// A custom attribute whose value is `len` bytes of text.
fn custom(name: &str, len: usize) -> Attr {
    Attr::new(name, Value::TextString("a".repeat(len)))
}

fn wrapped(tag: Tag, attr: &Attr) -> Ttlv {
    Ttlv::structure(tag, vec![attributes::to_v2(attr)])
}

/// An Add Attribute (or 2.x Set Attribute) payload.
fn add_payload(v: V, u: &str, attr: &Attr) -> Vec<Ttlv> {
    let mut p = uid(u);
    if v.is_v2() {
        p.push(wrapped(Tag::NEW_ATTRIBUTE, attr));
    } else {
        p.push(attributes::to_v1(attr, None));
    }
    p
}

/// A 2.x Modify Attribute payload.
fn modify_payload(u: &str, current: &Attr, new: &Attr) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(wrapped(Tag::CURRENT_ATTRIBUTE, current));
    p.push(wrapped(Tag::NEW_ATTRIBUTE, new));
    p
}

/// A 2.x Delete Attribute payload naming every instance of `name`.
fn delete_payload(u: &str, name: &str) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(attributes::reference_to_v2(name));
    p
}

fn revoke_payload(u: &str, message: &str) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(Ttlv::structure(
        Tag::REVOCATION_REASON,
        vec![
            Ttlv::enumeration(Tag::REVOCATION_REASON_CODE, rrc::CESSATION_OF_OPERATION),
            Ttlv::text(Tag::REVOCATION_MESSAGE, message),
        ],
    ));
    p
}

/// Asserts a refusal with `reason` whose message names `key`.
fn assert_refused(r: Result<Ttlv, ClientError>, reason: u32, key: &str) {
    match r {
        Err(ClientError::Failed {
            reason: got,
            message,
        }) => {
            assert_eq!(got, reason, "{message}");
            assert!(message.contains(key), "the message names {key}: {message}");
        }
        other => panic!("expected a refusal naming {key}, got {other:?}"),
    }
}

fn assert_limit(r: Result<Ttlv, ClientError>, key: &str) {
    assert_refused(r, rr::SERVER_LIMIT_EXCEEDED, key);
}

/// The names of an object's attributes (Get Attribute List).
async fn attribute_names(c: &mut Client, u: &str) -> Vec<String> {
    let list = c.call(op::GET_ATTRIBUTE_LIST, uid(u)).await.unwrap();
    list.children()
        .iter()
        .filter(|t| t.tag == Tag::ATTRIBUTE_REFERENCE)
        .filter_map(attributes::name_from_v2_reference)
        .collect()
}

/// Registers a known AES key and returns its identifier.
async fn register(c: &mut Client, bytes: &[u8]) -> String {
    let v = c.version;
    uid_of(
        &c.call(op::REGISTER, register_key_payload(v, bytes, &[]))
            .await
            .unwrap(),
    )
}

/// The attack of the security review: two Add Attribute calls with 600 KiB custom values.
/// Under the default limits the first is refused; under the largest limits the configuration
/// allows, the second is. Either way the key stays fully usable: Get, Delete Attribute,
/// Revoke and Destroy.
#[tokio::test]
async fn two_600_kib_attributes_are_refused_at_the_write_and_the_key_stays_usable() {
    let largest = AttributeLimits {
        per_attribute: MAX_ATTRIBUTE_BYTES_CAP,
        per_object: MAX_ATTRIBUTE_BYTES_CAP,
    };
    for (limits, first_fits, key) in [
        (
            AttributeLimits::default(),
            false,
            "server.max_attribute_bytes",
        ),
        (largest, true, "server.max_object_attribute_bytes"),
    ] {
        let server = TestServer::start_with_attribute_limits(limits).await;
        let mut c = server.client("alice", V::V2_1).await;
        let material = [0x42u8; 32];
        let u = register(&mut c, &material).await;
        let first = c
            .call(
                op::ADD_ATTRIBUTE,
                add_payload(V::V2_1, &u, &custom("x-a", 600 * KIB)),
            )
            .await;
        if first_fits {
            first.unwrap();
        } else {
            assert_limit(first, key);
        }
        assert_limit(
            c.call(
                op::ADD_ATTRIBUTE,
                add_payload(V::V2_1, &u, &custom("x-b", 600 * KIB)),
            )
            .await,
            key,
        );
        // Nothing of the refused write was stored, and the key is whole.
        let names = attribute_names(&mut c, &u).await;
        assert!(!names.iter().any(|n| n == "x-b"), "{names:?}");
        assert_eq!(names.iter().any(|n| n == "x-a"), first_fits, "{names:?}");
        let got = c.call(op::GET, uid(&u)).await.unwrap();
        assert_eq!(key_bytes(&got), material);
        if first_fits {
            c.call(op::DELETE_ATTRIBUTE, delete_payload(&u, "x-a"))
                .await
                .unwrap();
            assert!(!attribute_names(&mut c, &u).await.iter().any(|n| n == "x-a"));
        }
        c.call(op::ACTIVATE, uid(&u)).await.unwrap();
        c.call(op::REVOKE, revoke_payload(&u, "retired"))
            .await
            .unwrap();
        assert_eq!(state_of(&mut c, &u).await, state::DEACTIVATED);
        c.call(op::DESTROY, uid(&u)).await.unwrap();
        assert_eq!(state_of(&mut c, &u).await, state::DESTROYED);
        server.stop().await;
    }
}

/// Every operation that stores client-supplied attributes refuses one over
/// `server.max_attribute_bytes` (64 KiB by default) before storing anything.
#[tokio::test]
async fn every_write_path_refuses_an_attribute_over_the_limit() {
    let server = TestServer::start().await;
    let v = V::V2_1;
    let mut c = server.client("alice", v).await;
    let big = custom("x-big", 70 * KIB);
    let key = "server.max_attribute_bytes";
    let named = |n: &str| Attr::new("Name", name(n));
    let locate = |n: &str| filters(v, &[named(n)]);

    // Create and Register: refused, and no object of that name exists afterwards.
    let mut attrs = aes_attrs(Some("big-create"));
    attrs.push(big.clone());
    assert_limit(c.call(op::CREATE, create_payload(v, &attrs)).await, key);
    let register = register_key_payload(v, &[7; 32], &[named("big-register"), big.clone()]);
    assert_limit(c.call(op::REGISTER, register).await, key);
    // Create Key Pair: the big attribute on the public key only; the private key (stored
    // first) must not be left behind either.
    let pair = vec![
        Ttlv::structure(
            Tag::COMMON_ATTRIBUTES,
            vec![
                attributes::to_v2(&Attr::new(
                    "Cryptographic Algorithm",
                    Value::Enumeration(alg::EC),
                )),
                attributes::to_v2(&Attr::new("Cryptographic Length", Value::Integer(256))),
            ],
        ),
        Ttlv::structure(
            Tag::PRIVATE_KEY_ATTRIBUTES,
            vec![attributes::to_v2(&named("big-pair"))],
        ),
        Ttlv::structure(Tag::PUBLIC_KEY_ATTRIBUTES, vec![attributes::to_v2(&big)]),
    ];
    assert_limit(c.call(op::CREATE_KEY_PAIR, pair).await, key);
    for n in ["big-create", "big-register", "big-pair"] {
        let found = c.call(op::LOCATE, locate(n)).await.unwrap();
        assert!(uids_of(&found).is_empty(), "{n} was stored");
    }

    // Add, Modify and Set Attribute on an existing key; Revoke with a huge message.
    let u = create_key(&mut c, Some("edited")).await;
    assert_limit(
        c.call(op::ADD_ATTRIBUTE, add_payload(v, &u, &big)).await,
        key,
    );
    let note = Attr::new("x-note", Value::TextString("small".into()));
    c.call(op::ADD_ATTRIBUTE, add_payload(v, &u, &note))
        .await
        .unwrap();
    let big_note = custom("x-note", 70 * KIB);
    assert_limit(
        c.call(op::MODIFY_ATTRIBUTE, modify_payload(&u, &note, &big_note))
            .await,
        key,
    );
    let big_comment = custom("Comment", 70 * KIB);
    assert_limit(
        c.call(op::SET_ATTRIBUTE, add_payload(v, &u, &big_comment))
            .await,
        key,
    );
    c.call(op::ACTIVATE, uid(&u)).await.unwrap();
    assert_limit(
        c.call(op::REVOKE, revoke_payload(&u, &"m".repeat(70 * KIB)))
            .await,
        key,
    );
    // Re-key with the big attribute: refused, and the key was not replaced (a replaced key
    // cannot be re-keyed again, so a second, plain Re-key proves it).
    let mut rekey = uid(&u);
    rekey.push(template(v, std::slice::from_ref(&big)));
    assert_limit(c.call(op::RE_KEY, rekey).await, key);
    uid_of(&c.call(op::RE_KEY, uid(&u)).await.unwrap());

    // The edited key kept its small note and is usable.
    let kept = get_attrs(&mut c, &u, &["x-note", "State"]).await;
    assert!(kept.contains(&note), "{kept:?}");
    assert_eq!(
        key_bytes(&c.call(op::GET, uid(&u)).await.unwrap()).len(),
        32
    );

    // A 1.x client is told the same; 1.x has no Server Limit Exceeded, so the reason is the
    // closest it has.
    let mut old = server.client("alice", V::V1_4).await;
    assert_refused(
        old.call(op::ADD_ATTRIBUTE, add_payload(V::V1_4, &u, &big))
            .await,
        rr::INVALID_FIELD,
        key,
    );
    server.stop().await;
}

/// `server.max_object_attribute_bytes` counts all of an object's attributes together; a
/// deletion makes room again, and the lifecycle (server-set attributes) never gets stuck at
/// the limit.
#[tokio::test]
async fn the_object_limit_counts_every_attribute_and_lifecycle_changes_still_work() {
    let limits = AttributeLimits {
        per_attribute: 64 * KIB,
        per_object: 200 * KIB,
    };
    let server = TestServer::start_with_attribute_limits(limits).await;
    let v = V::V2_1;
    let mut c = server.client("alice", v).await;
    let u = create_key(&mut c, None).await;
    for i in 0..3 {
        let attr = custom(&format!("x-{i}"), 60 * KIB);
        c.call(op::ADD_ATTRIBUTE, add_payload(v, &u, &attr))
            .await
            .unwrap();
    }
    let fourth = custom("x-3", 60 * KIB);
    assert_limit(
        c.call(op::ADD_ATTRIBUTE, add_payload(v, &u, &fourth)).await,
        "server.max_object_attribute_bytes",
    );
    c.call(op::DELETE_ATTRIBUTE, delete_payload(&u, "x-0"))
        .await
        .unwrap();
    c.call(op::ADD_ATTRIBUTE, add_payload(v, &u, &fourth))
        .await
        .unwrap();
    // At the limit, what the server sets still goes through.
    c.call(op::ACTIVATE, uid(&u)).await.unwrap();
    c.call(op::GET, uid(&u)).await.unwrap();
    c.call(op::REVOKE, revoke_payload(&u, "end of life"))
        .await
        .unwrap();
    c.call(op::DESTROY, uid(&u)).await.unwrap();
    assert_eq!(state_of(&mut c, &u).await, state::DESTROYED);
    server.stop().await;
}
