//! Locate and the ID Placeholder (KMIP 2.1 §6.1.28): one located object becomes the
//! placeholder for the rest of the batch; several (or none) empty it, so a later item that
//! names no object fails instead of acting on an earlier one.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{object_type as ot, operation as op, result_reason as rr};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::Value;

#[tokio::test]
async fn locate_sets_or_empties_the_id_placeholder() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client(&format!("locator-{v}"), v).await;
        let key_name = format!("only-{v}");
        let only = create_key(&mut c, Some(&key_name)).await;
        let by_name = filters(v, &[Attr::new("Name", name(&key_name))]);
        let items = c
            .batch(&[(op::LOCATE, by_name), (op::GET, vec![])])
            .await
            .unwrap();
        assert_eq!(uid_of(items[1].as_ref().unwrap()), only);

        // Two symmetric keys match: the Get after the Create+Locate must not use the new key.
        let by_type = filters(
            v,
            &[Attr::new(
                "Object Type",
                Value::Enumeration(ot::SYMMETRIC_KEY),
            )],
        );
        let items = c
            .batch(&[
                (op::CREATE, create_payload(v, &aes_attrs(None))),
                (op::LOCATE, by_type),
                (op::GET, vec![]),
            ])
            .await
            .unwrap();
        assert_eq!(uids_of(items[1].as_ref().unwrap()).len(), 2);
        let failed = items.into_iter().nth(2).expect("the Get ran");
        assert_eq!(reason(failed), rr::INVALID_MESSAGE);
    }
    server.stop().await;
}
