//! The configurable request limits against the real server: message size, nesting depth,
//! batch items and attributes per request are refused with a clear error (or, for size, a
//! closed connection) while the server keeps serving; the in-flight cap makes requests wait,
//! never fail. The connection cap is tested in `bad_input.rs`.

use crate::support::kmip::*;
use crate::support::server::{test_settings, TestServer};
use akm::client::{request, ClientError};
use akm::kmip::enums::{operation as op, result_reason as rr};
use akm::kmip::ProtocolVersion as V;

/// The failure reason and message of a refused call.
fn failure(r: Result<akm::ttlv::Ttlv, ClientError>) -> (u32, String) {
    match r {
        Err(ClientError::Failed { reason, message }) => (reason, message),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn batch_item_limit_refuses_larger_batches() {
    let mut settings = test_settings();
    settings.limits.max_batch_items = 2;
    let server = TestServer::start_with(settings).await;
    let mut c = server.client("alice", V::V1_4).await;
    let two = c
        .batch(&[(op::QUERY, vec![]), (op::QUERY, vec![])])
        .await
        .unwrap();
    assert!(two.iter().all(Result::is_ok));
    let three = c
        .batch(&[
            (op::QUERY, vec![]),
            (op::QUERY, vec![]),
            (op::QUERY, vec![]),
        ])
        .await;
    let (reason, message) = match three {
        Ok(items) => failure(items.into_iter().next().unwrap()),
        Err(e) => failure(Err(e)),
    };
    assert_eq!(reason, rr::INVALID_MESSAGE);
    assert!(message.contains("batch items (limit 2)"), "{message}");
    create_key(&mut c, None).await;
    server.stop().await;
}

#[tokio::test]
async fn attribute_limit_refuses_larger_requests() {
    let mut settings = test_settings();
    // aes_attrs with a name has four attributes.
    settings.limits.max_attributes = 3;
    let server = TestServer::start_with(settings).await;
    let mut c = server.client("alice", V::V1_4).await;
    let attrs = aes_attrs(Some("too-many"));
    assert!(attrs.len() > 3);
    let r = c.call(op::CREATE, create_payload(c.version, &attrs)).await;
    let (reason, message) = failure(r);
    assert_eq!(reason, rr::INVALID_MESSAGE);
    assert!(message.contains("attributes"), "{message}");
    // In 2.x encoding too.
    let mut c2 = server.client("alice", V::V2_1).await;
    let r = c2
        .call(op::CREATE, create_payload(c2.version, &attrs))
        .await;
    assert_eq!(failure(r).0, rr::INVALID_MESSAGE);
    // The connection still works for smaller requests.
    assert!(c.call(op::QUERY, vec![]).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn depth_limit_refuses_deeper_requests() {
    let mut settings = test_settings();
    // Message (1) > Batch Item (2) > Request Payload (3): Query fits, a Create template's
    // attributes do not.
    settings.limits.ttlv.max_depth = 3;
    let server = TestServer::start_with(settings).await;
    let mut c = server.client("alice", V::V1_4).await;
    assert!(c.call(op::QUERY, vec![]).await.is_ok());
    let r = c
        .call(op::CREATE, create_payload(c.version, &aes_attrs(None)))
        .await;
    assert_eq!(failure(r).0, rr::INVALID_MESSAGE);
    assert!(c.call(op::QUERY, vec![]).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn message_size_limit_closes_only_that_connection() {
    let mut settings = test_settings();
    settings.limits.ttlv.max_message_bytes = 1024;
    let server = TestServer::start_with(settings).await;
    let mut c = server.client("alice", V::V1_4).await;
    let big = request(
        V::V1_4,
        &[(
            op::REGISTER,
            register_key_payload(V::V1_4, &[7u8; 2048], &[]),
        )],
    );
    assert!(matches!(c.send(&big).await, Err(ClientError::Io(_))));
    let mut other = server.client("bob", V::V1_4).await;
    assert!(other.call(op::QUERY, vec![]).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn in_flight_limit_queues_requests_instead_of_failing_them() {
    let mut settings = test_settings();
    settings.max_in_flight = 1;
    let server = TestServer::start_with(settings).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut c = server.client(&format!("user{i}"), V::V1_4).await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                create_key(&mut c, None).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    server.stop().await;
}

/// Locate with `max_locate_items` = 3 over 5 matching keys, in 1.4 and 2.1: without Maximum
/// Items, and with a larger one, at most 3 come back; a smaller Maximum Items and Offset
/// Items still page; 2.x Located Items counts all 5.
#[tokio::test]
async fn locate_result_limit_caps_the_identifiers_returned() {
    let server = TestServer::start_with_locate_limit(3).await;
    let mut c = server.client("alice", V::V1_4).await;
    let mut all = Vec::new();
    for _ in 0..5 {
        all.push(create_key(&mut c, None).await);
    }
    let maximum = |n: i32| akm::ttlv::Ttlv::integer(akm::ttlv::Tag::MAXIMUM_ITEMS, n);
    let offset = |n: i32| akm::ttlv::Ttlv::integer(akm::ttlv::Tag::OFFSET_ITEMS, n);
    for version in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", version).await;
        let located_items = |r: &akm::ttlv::Ttlv| {
            r.child(akm::ttlv::Tag::LOCATED_ITEMS)
                .and_then(akm::ttlv::Ttlv::as_int)
        };
        let r = c.call(op::LOCATE, vec![]).await.unwrap();
        assert_eq!(uids_of(&r), all[..3], "{version:?}: no Maximum Items");
        let r = c.call(op::LOCATE, vec![maximum(100)]).await.unwrap();
        assert_eq!(uids_of(&r), all[..3], "{version:?}: Maximum Items 100");
        if version.is_v2() {
            assert_eq!(
                located_items(&r),
                Some(5),
                "Located Items counts every match"
            );
        }
        let r = c.call(op::LOCATE, vec![maximum(2)]).await.unwrap();
        assert_eq!(uids_of(&r), all[..2], "{version:?}: Maximum Items 2");
        let r = c.call(op::LOCATE, vec![offset(3)]).await.unwrap();
        assert_eq!(uids_of(&r), all[3..], "{version:?}: the next page");
    }
    server.stop().await;
}

/// A Derive Key item with PBKDF2 at `iterations` over `base`.
fn pbkdf2_item(base: &str, iterations: i32) -> (u32, Vec<akm::ttlv::Ttlv>) {
    use akm::kmip::enums::{derivation_method as dm, object_type as ot};
    use akm::ttlv::{Tag, Ttlv};
    (
        op::DERIVE_KEY,
        vec![
            Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
            Ttlv::text(Tag::UNIQUE_IDENTIFIER, base),
            Ttlv::enumeration(Tag::DERIVATION_METHOD, dm::PBKDF2),
            Ttlv::structure(
                Tag::DERIVATION_PARAMETERS,
                vec![
                    Ttlv::bytes(Tag::SALT, vec![1; 16]),
                    Ttlv::integer(Tag::ITERATION_COUNT, iterations),
                ],
            ),
            template(V::V2_1, &aes_attrs(None)),
        ],
    )
}

/// Finding 7 of issue 16: one message could cost 40 CPU-minutes (1,024 Derive Key items of
/// ten million PBKDF2 iterations). Now one item is capped (`server.max_pbkdf2_iterations`)
/// and a whole message is estimated before anything runs (`server.max_request_cost`); both
/// refusals name the setting, and are answered at once.
#[tokio::test]
async fn expensive_requests_are_refused_before_they_run() {
    use akm::kmip::attributes::Attr;
    use akm::kmip::enums::cryptographic_usage_mask as usage;
    use akm::ttlv::Value;
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let mask = vec![Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::DERIVE_KEY),
    )];
    let base = uid_of(
        &c.call(op::REGISTER, register_key_payload(V::V2_1, &[3; 32], &mask))
            .await
            .unwrap(),
    );
    c.call(op::ACTIVATE, uid(&base)).await.unwrap();
    let started = std::time::Instant::now();
    // One item over the per-item cap (within the budget: 1.5 million iterations of two
    // output blocks for an AES-256 key cost 3001 units).
    let (operation, payload) = pbkdf2_item(&base, 1_500_000);
    let (reason, message) = failure(c.call(operation, payload).await);
    assert_eq!(reason, rr::INVALID_FIELD);
    assert!(
        message.contains("server.max_pbkdf2_iterations"),
        "{message}"
    );
    // The attack message (as many items as the attribute limit lets through): every item
    // refused, none run.
    let attack: Vec<_> = (0..300).map(|_| pbkdf2_item(&base, 10_000_000)).collect();
    let results = c.batch(&attack).await.unwrap();
    assert_eq!(results.len(), 300);
    for r in results {
        let (reason, message) = failure(r);
        assert_eq!(reason, rr::SERVER_LIMIT_EXCEEDED);
        assert!(message.contains("server.max_request_cost"), "{message}");
    }
    // Three RSA-4096 key pairs are over the default budget too.
    let rsa = akm::kmip::attributes::Attr::new(
        "Cryptographic Algorithm",
        Value::Enumeration(akm::kmip::enums::cryptographic_algorithm::RSA),
    );
    let len = akm::kmip::attributes::Attr::new("Cryptographic Length", Value::Integer(4096));
    let pair = (
        op::CREATE_KEY_PAIR,
        vec![akm::ttlv::Ttlv::structure(
            akm::ttlv::Tag::COMMON_ATTRIBUTES,
            vec![
                akm::kmip::attributes::to_v2(&rsa),
                akm::kmip::attributes::to_v2(&len),
            ],
        )],
    );
    let results = c.batch(&[pair.clone(), pair.clone(), pair]).await.unwrap();
    assert!(results
        .into_iter()
        .all(|r| failure(r).0 == rr::SERVER_LIMIT_EXCEEDED));
    // Nothing of it ran: answered in far less time than even one item would take.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // An affordable derivation still runs.
    let (operation, payload) = pbkdf2_item(&base, 1_000);
    c.call(operation, payload).await.unwrap();
    server.stop().await;
}
