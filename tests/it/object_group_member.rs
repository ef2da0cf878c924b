//! Locate with Object Group Member (KMIP 2.1 §6.1.27, 1.4 §4.9): with an Object Group,
//! Group Member Fresh lists the group's objects no client has fetched yet, and Group Member
//! Default the group's default member (akm's policy: the newest Active one, else the newest).
//! Another identity sees nothing of the group; an unknown member value is refused.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::Client;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{object_group_member as ogm, operation as op, result_reason as rr};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};
use std::time::Duration;

fn group_filter(version: V, group: &str, member: Option<u32>) -> Vec<Ttlv> {
    let mut p = Vec::new();
    if let Some(m) = member {
        p.push(Ttlv::enumeration(Tag::OBJECT_GROUP_MEMBER, m));
    }
    p.extend(filters(
        version,
        &[Attr::new("Object Group", Value::TextString(group.into()))],
    ));
    p
}

async fn locate_group(c: &mut Client, group: &str, member: Option<u32>) -> Vec<String> {
    let v = c.version;
    uids_of(
        &c.call(op::LOCATE, group_filter(v, group, member))
            .await
            .unwrap(),
    )
}

async fn create_in_group(c: &mut Client, group: &str) -> String {
    let v = c.version;
    let mut attrs = aes_attrs(None);
    attrs.push(Attr::new("Object Group", Value::TextString(group.into())));
    uid_of(&c.call(op::CREATE, create_payload(v, &attrs)).await.unwrap())
}

#[tokio::test]
async fn locate_narrows_a_group_to_its_fresh_or_default_member() {
    let server = TestServer::start().await;
    for (version, group) in [(V::V1_4, "pool-14"), (V::V2_1, "pool-21")] {
        let mut c = server.client("alice", version).await;
        let first = create_in_group(&mut c, group).await;
        c.call(op::ACTIVATE, uid(&first)).await.unwrap();
        c.call(op::GET, uid(&first)).await.unwrap();
        // Initial Dates are whole seconds: the second key is newer.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let second = create_in_group(&mut c, group).await;
        let mut all = locate_group(&mut c, group, None).await;
        all.sort();
        let mut both = vec![first.clone(), second.clone()];
        both.sort();
        assert_eq!(all, both);
        // The first was fetched by Get: only the second is fresh.
        assert_eq!(
            locate_group(&mut c, group, Some(ogm::GROUP_MEMBER_FRESH)).await,
            [second.as_str()]
        );
        // The default is the newest Active member: the first, until the second is active.
        assert_eq!(
            locate_group(&mut c, group, Some(ogm::GROUP_MEMBER_DEFAULT)).await,
            [first.as_str()]
        );
        c.call(op::ACTIVATE, uid(&second)).await.unwrap();
        assert_eq!(
            locate_group(&mut c, group, Some(ogm::GROUP_MEMBER_DEFAULT)).await,
            [second.as_str()]
        );
        // Bob sees nothing of alice's group, fresh or default.
        let mut bob = server.client("bob", version).await;
        for member in [ogm::GROUP_MEMBER_FRESH, ogm::GROUP_MEMBER_DEFAULT] {
            assert!(locate_group(&mut bob, group, Some(member)).await.is_empty());
        }
        let r = c
            .call(op::LOCATE, group_filter(version, group, Some(7)))
            .await;
        assert_eq!(reason(r), rr::INVALID_FIELD);
    }
    server.stop().await;
}
