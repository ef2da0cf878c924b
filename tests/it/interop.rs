//! Behaviour real KMIP clients depend on, found by running their code or PyKMIP's suite
//! against akm: each test is one thing a named client reads from the server's answers.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::kmip::attributes::{self, Attr};
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

/// The Attribute Index of the 1.x Attribute structures named `attr_name` in a payload.
fn indexes_of(payload: &Ttlv, attr_name: &str) -> Vec<Option<i32>> {
    payload
        .children_with(Tag::ATTRIBUTE)
        .filter(|a| a.child(Tag::ATTRIBUTE_NAME).and_then(Ttlv::as_text) == Some(attr_name))
        .map(|a| a.child(Tag::ATTRIBUTE_INDEX).and_then(Ttlv::as_int))
        .collect()
}

/// PyKMIP reads `attribute_index.value` of the Name it gets back from Get Attributes,
/// Modify Attribute and Delete Attribute, and fails when the index is left out. KMIP lets a
/// server omit index 0; akm sends it, in every 1.x version.
#[tokio::test]
async fn kmip_1_x_attribute_responses_carry_attribute_index_0() {
    let server = TestServer::start().await;
    for version in [V::V1_0, V::V1_2, V::V1_4] {
        let mut c = server.client("pykmip-index", version).await;
        let key_name = format!("index-{version}");
        let u = create_key(&mut c, Some(&key_name)).await;

        let mut p = uid(&u);
        p.push(Ttlv::text(Tag::ATTRIBUTE_NAME, "Name"));
        let got = c.call(op::GET_ATTRIBUTES, p).await.unwrap();
        assert_eq!(indexes_of(&got, "Name"), vec![Some(0)], "{version}");
        // Every multi-instance attribute carries its index; single-instance ones need none.
        let all = c.call(op::GET_ATTRIBUTES, uid(&u)).await.unwrap();
        assert_eq!(indexes_of(&all, "Name"), vec![Some(0)], "{version}");

        let renamed = Attr::new("Name", name(&format!("renamed-{version}")));
        let mut p = uid(&u);
        p.push(attributes::to_v1(&renamed, Some(0)));
        let modified = c.call(op::MODIFY_ATTRIBUTE, p).await.unwrap();
        assert_eq!(indexes_of(&modified, "Name"), vec![Some(0)], "{version}");

        let mut p = uid(&u);
        p.push(Ttlv::text(Tag::ATTRIBUTE_NAME, "Name"));
        p.push(Ttlv::integer(Tag::ATTRIBUTE_INDEX, 0));
        let deleted = c.call(op::DELETE_ATTRIBUTE, p).await.unwrap();
        assert_eq!(indexes_of(&deleted, "Name"), vec![Some(0)], "{version}");
        let echoed = deleted
            .child(Tag::ATTRIBUTE)
            .and_then(|a| attributes::from_v1(a).ok())
            .map(|(a, _)| a);
        assert_eq!(echoed, Some(renamed), "Delete echoes the deleted instance");
        assert!(get_attrs(&mut c, &u, &["Name"]).await.is_empty());
        assert!(matches!(
            get_attrs(&mut c, &u, &["Cryptographic Length"]).await[0].value,
            Value::Integer(256)
        ));
    }
    server.stop().await;
}
