//! The operations of the KMIP 2.x Baseline profile beyond the lifecycle: Check (usage mask and
//! lease against the object), Obtain Lease, Log, and Interop, which only a server with
//! `interop_operations` offers.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::kmip::enums::{
    cryptographic_usage_mask as usage, interop_function, operation as op, result_reason as rr,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv};

fn interop(function: u32) -> Vec<Ttlv> {
    vec![
        Ttlv::enumeration(Tag::INTEROP_FUNCTION, function),
        Ttlv::text(Tag::INTEROP_IDENTIFIER, "BL-M-1-21"),
    ]
}

#[tokio::test]
async fn interop_only_on_a_test_server() {
    let production = TestServer::start().await;
    let mut c = production.client("alice", V::V2_1).await;
    let refused = c.call(op::INTEROP, interop(interop_function::BEGIN)).await;
    assert_eq!(reason(refused), rr::OPERATION_NOT_SUPPORTED);
    production.stop().await;

    let test = TestServer::start_interop().await;
    let mut c = test.client("alice", V::V2_1).await;
    for f in [
        interop_function::BEGIN,
        interop_function::END,
        interop_function::RESET,
    ] {
        c.call(op::INTEROP, interop(f)).await.unwrap();
    }
    assert_eq!(
        reason(c.call(op::INTEROP, interop(9)).await),
        rr::INVALID_FIELD
    );
    let missing = vec![Ttlv::enumeration(Tag::INTEROP_FUNCTION, 1)];
    assert_eq!(
        reason(c.call(op::INTEROP, missing).await),
        rr::INVALID_MESSAGE
    );
    // Never in a 1.x request, where the operation does not exist.
    let mut old = test.client("alice", V::V1_4).await;
    let refused = old
        .call(op::INTEROP, interop(interop_function::BEGIN))
        .await;
    assert_eq!(reason(refused), rr::OPERATION_NOT_SUPPORTED);
    test.stop().await;
}

#[tokio::test]
async fn log_takes_a_message_in_2x_only() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let message = vec![Ttlv::text(Tag::LOG_MESSAGE, "line one\nforged line")];
    let payload = c.call(op::LOG, message.clone()).await.unwrap();
    assert!(payload.children().is_empty());
    assert_eq!(reason(c.call(op::LOG, vec![]).await), rr::INVALID_MESSAGE);
    let mut old = server.client("alice", V::V1_4).await;
    assert_eq!(
        reason(old.call(op::LOG, message).await),
        rr::OPERATION_NOT_SUPPORTED
    );
    server.stop().await;
}

#[tokio::test]
async fn check_compares_usage_and_lease_with_the_object() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", v).await;
        // aes_attrs gives Encrypt | Decrypt.
        let u = create_key(&mut c, None).await;
        let check = |extra: Vec<Ttlv>| {
            let mut p = uid(&u);
            p.extend(extra);
            p
        };
        let ok = c
            .call(
                op::CHECK,
                check(vec![Ttlv::integer(
                    Tag::CRYPTOGRAPHIC_USAGE_MASK,
                    usage::ENCRYPT,
                )]),
            )
            .await
            .unwrap();
        assert_eq!(uid_of(&ok), u);
        let sign = check(vec![Ttlv::integer(
            Tag::CRYPTOGRAPHIC_USAGE_MASK,
            usage::SIGN,
        )]);
        let want = v.result_reason(rr::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK);
        assert_eq!(reason(c.call(op::CHECK, sign).await), want);
        let long_lease = check(vec![Ttlv::interval(Tag::LEASE_TIME, 7 * 24 * 3600)]);
        assert_eq!(
            reason(c.call(op::CHECK, long_lease).await),
            rr::PERMISSION_DENIED
        );
        let mistyped = check(vec![Ttlv::text(Tag::CRYPTOGRAPHIC_USAGE_MASK, "Encrypt")]);
        assert_eq!(
            reason(c.call(op::CHECK, mistyped).await),
            rr::INVALID_MESSAGE
        );
        // Another identity may not check someone else's key.
        let mut bob = server.client("bob", v).await;
        assert_ne!(reason(bob.call(op::CHECK, uid(&u)).await), 0);
    }
    server.stop().await;
}

#[tokio::test]
async fn obtain_lease_grants_the_objects_lease_until_destroyed() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", v).await;
        let u = create_key(&mut c, None).await;
        let lease = c.call(op::OBTAIN_LEASE, uid(&u)).await.unwrap();
        assert_eq!(uid_of(&lease), u);
        let secs = lease.child(Tag::LEASE_TIME).map(|t| t.value.clone());
        assert_eq!(secs, Some(akm::ttlv::Value::Interval(3600)));
        assert!(lease
            .child(Tag::LAST_CHANGE_DATE)
            .and_then(Ttlv::as_datetime)
            .is_some());
        c.call(op::DESTROY, uid(&u)).await.unwrap();
        let refused = c.call(op::OBTAIN_LEASE, uid(&u)).await;
        assert_eq!(
            reason(refused),
            v.result_reason(rr::WRONG_KEY_LIFECYCLE_STATE)
        );
        let missing = c.call(op::OBTAIN_LEASE, uid("no-such-key")).await;
        assert_eq!(reason(missing), v.result_reason(rr::OBJECT_NOT_FOUND));
    }
    server.stop().await;
}
