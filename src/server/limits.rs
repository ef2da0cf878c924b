//! Per-request limits checked on the decoded TTLV before the KMIP parser and the operations
//! see it: batch items and attributes per request message. (Size and nesting are the TTLV
//! decoder's limits; connections and requests in flight are counted by the listener.)

use super::ConnLimits;
use crate::kmip::enums::result_reason as rr;
use crate::kmip::Failure;
use crate::ttlv::{Tag, Ttlv};

/// The tags whose every child is one attribute (KMIP 2.x); 1.x wraps each in an Attribute.
const ATTRIBUTE_LISTS: [Tag; 4] = [
    Tag::ATTRIBUTES,
    Tag::COMMON_ATTRIBUTES,
    Tag::PRIVATE_KEY_ATTRIBUTES,
    Tag::PUBLIC_KEY_ATTRIBUTES,
];

/// Refuses a request message with more batch items or attributes than `limits` allow, with
/// an Invalid Message failure naming the limit.
pub(super) fn check(msg: &Ttlv, limits: &ConnLimits) -> Result<(), Failure> {
    let items = msg.children_with(Tag::BATCH_ITEM).count();
    if items > limits.max_batch_items {
        return Err(Failure::new(
            rr::INVALID_MESSAGE,
            format!("too many batch items (limit {})", limits.max_batch_items),
        ));
    }
    if count_attributes(msg) > limits.max_attributes {
        return Err(Failure::new(
            rr::INVALID_MESSAGE,
            format!(
                "too many attributes in one request (limit {})",
                limits.max_attributes
            ),
        ));
    }
    Ok(())
}

/// Attributes anywhere in `t`. Recursion is bounded by the decoder's nesting limit.
fn count_attributes(t: &Ttlv) -> usize {
    let own = if t.tag == Tag::ATTRIBUTE {
        1
    } else if ATTRIBUTE_LISTS.contains(&t.tag) {
        t.children().len()
    } else {
        0
    };
    own + t.children().iter().map(count_attributes).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttlv::Limits;
    use std::time::Duration;

    fn limits(batch: usize, attrs: usize) -> ConnLimits {
        ConnLimits {
            handshake_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            frame_timeout: Duration::from_secs(1),
            ttlv: Limits::default(),
            max_batch_items: batch,
            max_attributes: attrs,
        }
    }

    fn attr() -> Ttlv {
        Ttlv::structure(
            Tag::ATTRIBUTE,
            vec![Ttlv::text(Tag::ATTRIBUTE_NAME, "Name")],
        )
    }

    fn message(items: usize, attrs_per_item: usize) -> Ttlv {
        let item = Ttlv::structure(
            Tag::BATCH_ITEM,
            vec![Ttlv::structure(
                Tag::REQUEST_PAYLOAD,
                vec![Ttlv::structure(
                    Tag::TEMPLATE_ATTRIBUTE,
                    vec![attr(); attrs_per_item],
                )],
            )],
        );
        Ttlv::structure(Tag::REQUEST_MESSAGE, vec![item; items])
    }

    #[test]
    fn within_limits_passes_and_over_them_names_the_limit() {
        assert!(check(&message(2, 3), &limits(2, 6)).is_ok());
        let e = check(&message(3, 1), &limits(2, 100)).unwrap_err();
        assert_eq!(e.reason, rr::INVALID_MESSAGE);
        assert!(e.message.contains("batch items (limit 2)"), "{}", e.message);
        let e = check(&message(2, 4), &limits(2, 7)).unwrap_err();
        assert!(e.message.contains("attributes"), "{}", e.message);
    }

    #[test]
    fn version_two_attribute_lists_count_each_child() {
        let list = Ttlv::structure(
            Tag::ATTRIBUTES,
            vec![Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 1); 5],
        );
        let msg = Ttlv::structure(Tag::REQUEST_MESSAGE, vec![list]);
        assert_eq!(count_attributes(&msg), 5);
        assert!(check(&msg, &limits(1, 4)).is_err());
    }
}
