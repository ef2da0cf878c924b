//! Batch Error Continuation Option Undo: when an item fails, what the earlier items of the
//! batch did is undone (a created object disappears, a changed one is as before) and their
//! status is Operation Undone.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::request;
use akm::kmip::enums::{
    batch_error_continuation_option as bec, operation as op, result_reason as rr, result_status,
    state,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

fn with_option(mut msg: Ttlv, option: u32) -> Ttlv {
    if let Value::Structure(children) = &mut msg.value {
        if let Value::Structure(h) = &mut children[0].value {
            h.push(Ttlv::enumeration(
                Tag::BATCH_ERROR_CONTINUATION_OPTION,
                option,
            ));
        }
    }
    msg
}

fn statuses(response: &Ttlv) -> Vec<u32> {
    response
        .children_with(Tag::BATCH_ITEM)
        .filter_map(|i| i.child(Tag::RESULT_STATUS).and_then(Ttlv::as_enum))
        .collect()
}

#[tokio::test]
async fn undo_reverts_the_items_before_a_failure() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", v).await;
        let existing = create_key(&mut c, None).await;
        let name = format!("undone-{v}");
        let msg = request(
            v,
            &[
                (op::ACTIVATE, uid(&existing)),
                (op::CREATE, create_payload(v, &aes_attrs(Some(&name)))),
                (op::GET, uid("no-such-key")),
                (op::DESTROY, uid(&existing)),
            ],
        );
        let response = c.send(&with_option(msg, bec::UNDO)).await.unwrap();
        use result_status::*;
        assert_eq!(
            statuses(&response),
            [OPERATION_UNDONE, OPERATION_UNDONE, OPERATION_FAILED]
        );
        // An undone item keeps its payload.
        let created = response
            .children_with(Tag::BATCH_ITEM)
            .nth(1)
            .and_then(|i| i.child(Tag::RESPONSE_PAYLOAD))
            .map(uid_of)
            .expect("the undone Create keeps its payload");
        // The activation is undone, the created key is gone, and its name is free again.
        assert_eq!(state_of(&mut c, &existing).await, state::PRE_ACTIVE);
        let gone = c.call(op::GET, uid(&created)).await;
        assert_eq!(reason(gone), v.result_reason(rr::OBJECT_NOT_FOUND));
        create_key(&mut c, Some(&name)).await;
        // Key material survives an undone Destroy too.
        let msg = request(
            v,
            &[(op::DESTROY, uid(&existing)), (op::GET, uid("no-such-key"))],
        );
        let response = c.send(&with_option(msg, bec::UNDO)).await.unwrap();
        assert_eq!(statuses(&response), [OPERATION_UNDONE, OPERATION_FAILED]);
        let got = c.call(op::GET, uid(&existing)).await.unwrap();
        assert_eq!(key_bytes(&got).len(), 32);
    }
    server.stop().await;
}
