//! The TTLV codec's round-trip property with generated trees: any value encodes, decodes back
//! equal under the default limits, and re-encoding gives the same bytes. (The `ttlv_decode`
//! fuzz target checks the converse: whatever the decoder accepts re-encodes to its input.)

use akm::ttlv::{decode, Limits, Tag, Ttlv, Value};
use proptest::prelude::*;
use zeroize::Zeroizing;

/// A leaf value of any item type except Structure.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::Integer),
        any::<i64>().prop_map(Value::LongInteger),
        proptest::collection::vec(any::<[u8; 8]>(), 1..4)
            .prop_map(|v| Value::BigInteger(Zeroizing::new(v.concat()))),
        any::<u32>().prop_map(Value::Enumeration),
        any::<bool>().prop_map(Value::Boolean),
        ".{0,40}".prop_map(Value::TextString),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|v| Value::ByteString(Zeroizing::new(v))),
        any::<i64>().prop_map(Value::DateTime),
        any::<u32>().prop_map(Value::Interval),
        any::<i64>().prop_map(Value::DateTimeExtended),
    ]
}

/// A tag in the KMIP range or the extension range.
fn tag() -> impl Strategy<Value = Tag> {
    prop_oneof![0x42_0001u32..0x42_0160, 0x54_0000u32..0x54_0010].prop_map(Tag)
}

/// A tree up to 6 levels deep.
fn tree() -> impl Strategy<Value = Ttlv> {
    let leaf = (tag(), leaf()).prop_map(|(t, v)| Ttlv::new(t, v));
    leaf.prop_recursive(6, 64, 8, |inner| {
        (tag(), proptest::collection::vec(inner, 0..8))
            .prop_map(|(t, children)| Ttlv::structure(t, children))
    })
}

proptest! {
    #[test]
    fn decode_of_encode_is_identity(item in tree()) {
        let bytes = item.encode();
        let back = decode(&bytes, &Limits::default());
        prop_assert!(back.as_ref().is_ok_and(|b| *b == item), "round trip changed the value");
        prop_assert_eq!(back.unwrap().encode(), bytes);
    }
}
