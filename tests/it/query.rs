//! Query tells the truth (issue 18): every operation it lists is performed, and Interop only
//! where the test-server switch enables it; the KMIP 1.3+ Query Functions answer with akm's
//! RNG (its CTR_DRBG), the profiles it claims, its capabilities (streaming, Undo, Continue),
//! and no Validation Information, since akm has no formal validation.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::Client;
use akm::kmip::enums::{
    destroy_action, drbg_algorithm, operation as op, query_function as qf, result_reason as rr,
    rng_algorithm,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv};

async fn query(c: &mut Client, functions: &[u32]) -> Ttlv {
    let payload = functions
        .iter()
        .map(|f| Ttlv::enumeration(Tag::QUERY_FUNCTION, *f))
        .collect();
    c.call(op::QUERY, payload).await.unwrap()
}

fn enums(payload: &Ttlv, tag: Tag) -> Vec<u32> {
    payload
        .children_with(tag)
        .filter_map(Ttlv::as_enum)
        .collect()
}

fn flag(info: &Ttlv, tag: Tag) -> Option<bool> {
    info.child(tag).and_then(Ttlv::as_bool)
}

/// Every listed operation is one the server performs: none answers Operation Not Supported.
#[tokio::test]
async fn every_listed_operation_is_performed() {
    for (server, interop) in [
        (TestServer::start().await, false),
        (TestServer::start_interop().await, true),
    ] {
        for v in [V::V1_2, V::V1_4, V::V2_1] {
            let mut c = server.client("alice", v).await;
            let listed = enums(
                &query(&mut c, &[qf::QUERY_OPERATIONS]).await,
                Tag::OPERATION,
            );
            assert!(listed.contains(&op::ENCRYPT), "{v:?}");
            assert_eq!(
                listed.contains(&op::INTEROP),
                interop && v.is_v2(),
                "Interop at {v:?}"
            );
            for operation in listed {
                // An empty payload: the operation may refuse it, but not as unknown.
                let r = c.call(operation, vec![]).await;
                assert_ne!(
                    reason_or_zero(r),
                    rr::OPERATION_NOT_SUPPORTED,
                    "{operation:#x} at {v:?}"
                );
            }
        }
        server.stop().await;
    }
}

/// The dispatcher answers every registered operation at every version Query offers it in,
/// and refuses it as unknown at the versions before it (and an unregistered operation always).
#[tokio::test]
async fn every_registered_operation_is_dispatched_where_offered_and_refused_before() {
    let server = TestServer::start_interop().await;
    for v in V::SUPPORTED {
        let mut c = server.client("alice", v).await;
        let listed = enums(
            &query(&mut c, &[qf::QUERY_OPERATIONS]).await,
            Tag::OPERATION,
        );
        for r in akm::ops::registry::REGISTRY {
            let offered = r.available(v, true);
            assert_eq!(
                listed.contains(&r.operation),
                offered,
                "{:#x} listed at {v:?}",
                r.operation
            );
            let refused =
                reason_or_zero(c.call(r.operation, vec![]).await) == rr::OPERATION_NOT_SUPPORTED;
            assert_eq!(refused, !offered, "{:#x} at {v:?}", r.operation);
        }
        let archive = reason_or_zero(c.call(op::ARCHIVE, vec![]).await);
        assert_eq!(archive, rr::OPERATION_NOT_SUPPORTED, "Archive at {v:?}");
    }
    server.stop().await;
}

fn reason_or_zero(r: Result<Ttlv, akm::client::ClientError>) -> u32 {
    match r {
        Ok(_) => 0,
        Err(e) => reason(Err(e)),
    }
}

#[tokio::test]
async fn capabilities_profiles_rngs_and_no_validations() {
    let server = TestServer::start().await;
    for v in [V::V1_3, V::V1_4, V::V2_0, V::V2_1] {
        let mut c = server.client("alice", v).await;
        let got = query(
            &mut c,
            &[
                qf::QUERY_RNGS,
                qf::QUERY_VALIDATIONS,
                qf::QUERY_PROFILES,
                qf::QUERY_CAPABILITIES,
            ],
        )
        .await;
        assert!(got.child(Tag::VALIDATION_INFORMATION).is_none(), "{v:?}");
        let rng = got.child(Tag::RNG_PARAMETERS).expect("RNG Parameters");
        assert_eq!(
            rng.child(Tag::RNG_ALGORITHM).and_then(Ttlv::as_enum),
            Some(rng_algorithm::DRBG)
        );
        assert_eq!(
            rng.child(Tag::DRBG_ALGORITHM).and_then(Ttlv::as_enum),
            Some(drbg_algorithm::CTR)
        );
        let caps: Vec<&Ttlv> = got.children_with(Tag::CAPABILITY_INFORMATION).collect();
        assert_eq!(caps.len(), 1, "{v:?}");
        assert_eq!(flag(caps[0], Tag::STREAMING_CAPABILITY), Some(true));
        assert_eq!(flag(caps[0], Tag::ASYNCHRONOUS_CAPABILITY), Some(false));
        // Batch Undo and Continue Capability exist from KMIP 1.4.
        let batch = (v != V::V1_3).then_some(true);
        assert_eq!(flag(caps[0], Tag::BATCH_UNDO_CAPABILITY), batch, "{v:?}");
        assert_eq!(
            flag(caps[0], Tag::BATCH_CONTINUE_CAPABILITY),
            batch,
            "{v:?}"
        );
        assert_eq!(
            caps[0].child(Tag::DESTROY_ACTION).and_then(Ttlv::as_enum),
            Some(destroy_action::KEY_MATERIAL_DELETED)
        );
        let profiles: Vec<u32> = got
            .children_with(Tag::PROFILE_INFORMATION)
            .filter_map(|p| p.child(Tag::PROFILE_NAME).and_then(Ttlv::as_enum))
            .collect();
        let expected: Vec<u32> = match v.is_v2() {
            true => akm::ops::PROFILES_V2.iter().map(|p| p.0).collect(),
            false if v.minor == 3 => akm::ops::PROFILES_V1.iter().map(|p| p.0 - 0x24).collect(),
            false => akm::ops::PROFILES_V1.iter().map(|p| p.0).collect(),
        };
        assert_eq!(profiles, expected, "{v:?}");
    }
    // The KMIP 1.3 functions do not exist in 1.2: nothing is answered for them.
    let mut old = server.client("alice", V::V1_2).await;
    let got = query(&mut old, &[qf::QUERY_CAPABILITIES, qf::QUERY_PROFILES]).await;
    assert!(got.children().is_empty());
    // The vendor extension tags, with tag and type in the Map.
    let mut c = server.client("alice", V::V2_1).await;
    let map = query(&mut c, &[qf::QUERY_EXTENSION_MAP]).await;
    let first = map.child(Tag::EXTENSION_INFORMATION).expect("extensions");
    assert!(first.child(Tag::EXTENSION_TAG).is_some());
    let list = query(&mut c, &[qf::QUERY_EXTENSION_LIST]).await;
    let first = list.child(Tag::EXTENSION_INFORMATION).expect("extensions");
    assert!(first.child(Tag::EXTENSION_TAG).is_none());
    server.stop().await;
}
