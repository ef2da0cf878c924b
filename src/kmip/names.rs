//! Spec names of KMIP enumeration values and mask bits, for people: `Symmetric Key` rather
//! than `0x00000002`, `Encrypt|Decrypt` rather than `12`. Reads the generated tables in
//! [`super::enums`]; owns no table of its own.

use super::enums::{ENUM_TABLE, TAG_ENUMERATIONS};
use crate::ttlv::Tag;

/// The spec name of value `value` of the enumeration (or mask) named `enumeration`
/// ("Object Type", 2 → "Symmetric Key").
pub fn enum_name(enumeration: &str, value: u32) -> Option<&'static str> {
    ENUM_TABLE
        .iter()
        .find(|(e, _, _, v)| *e == enumeration && *v == value)
        .map(|(_, name, _, _)| *name)
}

/// The enumeration the values of `tag` come from: its own spec name unless the generated
/// `TAG_ENUMERATIONS` says otherwise.
fn enumeration_of(tag_name: &str) -> &str {
    TAG_ENUMERATIONS
        .iter()
        .find(|(_, t, _)| *t == tag_name)
        .map_or(tag_name, |(_, _, e)| *e)
}

/// The spec name of an Enumeration value of the attribute or tag named `name`
/// ("State", 2 → "Active"); `None` when the table has no such value.
pub fn value_name(name: &str, value: u32) -> Option<&'static str> {
    enum_name(enumeration_of(name), value)
}

/// The spec name of an Enumeration value carried in `tag`.
pub fn tag_value_name(tag: Tag, value: u32) -> Option<&'static str> {
    value_name(tag.name()?, value)
}

/// Whether `name` is a mask (its values are bits, printed joined with `|`).
pub fn is_mask(name: &str) -> bool {
    name.ends_with(" Mask")
        && ENUM_TABLE
            .iter()
            .any(|(e, _, _, _)| *e == enumeration_of(name))
}

/// A mask's set bits by name, lowest first, joined with `|` ("Encrypt|Decrypt"); bits the
/// table does not name are shown in hex; an empty mask is "0".
pub fn mask_names(name: &str, mask: i32) -> String {
    let enumeration = enumeration_of(name);
    let mut parts = Vec::new();
    for bit in 0..32 {
        let value = 1u32 << bit;
        if (mask as u32) & value == 0 {
            continue;
        }
        match enum_name(enumeration, value) {
            Some(n) => parts.push(n.to_owned()),
            None => parts.push(format!("0x{value:08X}")),
        }
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}

/// The name of a Result Reason ("Permission Denied"), or hex.
pub fn result_reason_name(reason: u32) -> String {
    enum_name("Result Reason", reason).map_or_else(|| format!("0x{reason:08X}"), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_masks_have_their_spec_names() {
        assert_eq!(value_name("Object Type", 2), Some("Symmetric Key"));
        assert_eq!(value_name("State", 2), Some("Active"));
        assert_eq!(tag_value_name(Tag::OBJECT_TYPE, 2), Some("Symmetric Key"));
        assert!(is_mask("Cryptographic Usage Mask"));
        assert!(!is_mask("Object Type"));
        assert_eq!(
            mask_names("Cryptographic Usage Mask", 12),
            "Encrypt|Decrypt"
        );
        assert_eq!(
            mask_names("Cryptographic Usage Mask", 0x4000_0004),
            "Encrypt|0x40000000"
        );
        assert_eq!(mask_names("Cryptographic Usage Mask", 0), "0");
        assert_eq!(result_reason_name(0xC), "Permission Denied");
        assert_eq!(result_reason_name(0x1), "Item Not Found");
    }
}
