//! The size of an object's stored record (its attributes and metadata, TTLV-encoded in the
//! `attributes` column) and what happens when a record cannot be read back.
//!
//! Writes: every write of an object's record is checked here before it reaches the store.
//! The configured limits (`server.max_attribute_bytes` per attribute value,
//! `server.max_object_attribute_bytes` per object) refuse client-supplied attributes that
//! would make the record too large; a hard ceiling, [`STORED_RECORD_MAX_BYTES`], refuses any
//! write that would leave a record larger than the stored-record decoder reads. The ceiling and
//! the decoder's limit are the same constant, and the configurable limits are capped at half of
//! it, so a record akm wrote can always be read back: attributes cannot brick a key.
//!
//! Reads: a record that does not decode all the same (written by an older akm, or damaged)
//! stays manageable by an administrator: Delete Attribute and Get Attribute List read it
//! whatever its size, Revoke and Destroy rebuild it from the indexed columns ([`Repair`]).
//! Everyone else gets a clean General Failure naming the remedy.

use super::{Caller, Object};
use crate::config::limits::{AttributeLimits, MAX_ATTRIBUTE_BYTES_CAP};
use crate::error::OpError;
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::operation as op;
use crate::ttlv::Limits;

/// The largest record any write may leave, and the largest the stored-record decoder reads.
/// Twice the cap of the configured limit, so what the server itself adds to an object at that
/// limit (dates, links, a revocation reason) always fits.
pub const STORED_RECORD_MAX_BYTES: usize = 2 * MAX_ATTRIBUTE_BYTES_CAP;

// The relationships the limits rely on, checked when akm is compiled.
const _: () = assert!(MAX_ATTRIBUTE_BYTES_CAP * 2 <= STORED_RECORD_MAX_BYTES);

/// The decoder limits of a stored record.
pub fn stored_record_limits() -> Limits {
    Limits {
        max_message_bytes: STORED_RECORD_MAX_BYTES,
        ..Limits::default()
    }
}

/// The decoder limits for an administrator's repair: any size (the record is in memory
/// already), the usual depth.
pub fn repair_limits() -> Limits {
    Limits {
        max_message_bytes: usize::MAX,
        ..Limits::default()
    }
}

/// An object's record as it was before a change: its stored length, and the attributes
/// already over the per-attribute limit (stored when the limit was higher, or by a peer), which
/// a change may keep but not add to.
#[derive(Debug)]
pub struct Before {
    len: usize,
    oversized: Vec<Attr>,
}

/// What a write stores: whether it carries client-supplied attributes (the configured
/// per-object limit applies) or only what the server sets (only the hard ceiling does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// Create, Register, Create Key Pair, Derive Key, Re-key (the new key), Add, Modify and
    /// Set Attribute.
    Client,
    /// Lifecycle and bookkeeping changes (Activate, Revoke, Destroy, links, usage counts,
    /// Delete Attribute): they must keep working on an object at its limit.
    Server,
}

impl Writer {
    /// Who writes the record in an operation that modifies an existing object.
    pub fn of(operation: u32) -> Writer {
        match operation {
            op::ADD_ATTRIBUTE | op::MODIFY_ATTRIBUTE | op::SET_ATTRIBUTE => Writer::Client,
            _ => Writer::Server,
        }
    }
}

impl AttributeLimits {
    /// Notes what `obj`, stored in `len` bytes, holds before a change.
    pub fn before(&self, len: usize, obj: &Object) -> Before {
        let oversized = obj
            .attrs
            .iter()
            .filter(|a| self.attribute_over(a).is_some())
            .cloned()
            .collect();
        Before { len, oversized }
    }

    /// The stored length of `attr` when it is over the per-attribute limit.
    fn attribute_over(&self, attr: &Attr) -> Option<usize> {
        // A bound that needs no attribute table lookup settles almost every attribute: a
        // custom attribute's name adds at most its length and 40 bytes of headers and padding.
        if attr.value.encoded_len() + attr.name.len() + 48 <= self.per_attribute {
            return None;
        }
        let len = attributes::v2_encoded_len(attr);
        (len > self.per_attribute).then_some(len)
    }

    /// Checks client-supplied attributes before any work is done with them (Create Key Pair
    /// stores two objects, and must not store the first if the second would be refused):
    /// each against the per-attribute limit, all together against the per-object one. The
    /// write of each object is still checked whole.
    pub fn check_client(&self, attrs: &[Attr]) -> Result<(), OpError> {
        if let Some((attr, size)) = attrs
            .iter()
            .find_map(|a| self.attribute_over(a).map(|size| (a, size)))
        {
            return Err(too_large_attribute(attr, size, self.per_attribute));
        }
        let total: usize = attrs.iter().map(attributes::v2_encoded_len).sum();
        if total > self.per_object {
            return Err(too_large_object(total, self.per_object));
        }
        Ok(())
    }

    /// Checks a write of `obj`, whose record encodes to `len` bytes; `before` is the record it
    /// replaces (None for a new object). Refuses an attribute over the per-attribute limit
    /// that was not there before, a record a client's attributes grow over the per-object
    /// limit, and any record grown over [`STORED_RECORD_MAX_BYTES`].
    pub fn check_write(
        &self,
        before: Option<&Before>,
        obj: &Object,
        len: usize,
        writer: Writer,
    ) -> Result<(), OpError> {
        let grows = before.is_none_or(|b| len > b.len);
        if grows && len > STORED_RECORD_MAX_BYTES {
            return Err(OpError::AttributesTooLarge(format!(
                "the object's stored attributes would take {len} bytes; akm stores at most \
                 {STORED_RECORD_MAX_BYTES} bytes per object (delete attributes first)"
            )));
        }
        for attr in &obj.attrs {
            let Some(size) = self.attribute_over(attr) else {
                continue;
            };
            if !before.is_some_and(|b| b.oversized.contains(attr)) {
                return Err(too_large_attribute(attr, size, self.per_attribute));
            }
        }
        if writer == Writer::Client && grows && len > self.per_object {
            return Err(too_large_object(len, self.per_object));
        }
        Ok(())
    }
}

fn too_large_attribute(attr: &Attr, size: usize, limit: usize) -> OpError {
    OpError::AttributesTooLarge(format!(
        "attribute {:?} would take {size} bytes stored; server.max_attribute_bytes is {limit}",
        attr.name
    ))
}

fn too_large_object(len: usize, limit: usize) -> OpError {
    OpError::AttributesTooLarge(format!(
        "the object's attributes would take {len} bytes stored; \
         server.max_object_attribute_bytes is {limit}"
    ))
}

/// How far the decode of a record that does not decode normally may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Not at all: the operation fails with General Failure.
    None,
    /// Decode it whatever its size (lossless; a damaged record still fails).
    AnySize,
    /// Decode it whatever its size, else rebuild it from the indexed columns (lossy: the other
    /// attributes are dropped, and the key is locked against use and export).
    Rebuild,
}

impl Repair {
    /// The repair `who` gets for `operation`: administrators only, and only for what they need
    /// to clean up a bad record (see which attributes it has, delete them, revoke and
    /// destroy the key).
    pub fn for_caller(who: &Caller, operation: u32) -> Repair {
        let repair = match operation {
            op::DELETE_ATTRIBUTE | op::GET_ATTRIBUTE_LIST => Repair::AnySize,
            op::REVOKE | op::DESTROY => Repair::Rebuild,
            _ => return Repair::None,
        };
        if who.is_admin() {
            repair
        } else {
            Repair::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttlv::Value;

    fn object(attrs: Vec<Attr>) -> Object {
        Object {
            uid: "u".into(),
            object_type: 2,
            owner: "alice".into(),
            owner_group: None,
            access_mode: crate::policy::AccessMode::User,
            initial_date: 1,
            key_version: 1,
            attrs,
            format: 1,
            data_type: None,
            split: Vec::new(),
            material_destroyed: false,
            registered_wrapping: None,
        }
    }

    fn text(name: &str, len: usize) -> Attr {
        Attr::new(name, Value::TextString("a".repeat(len)))
    }

    fn limits() -> AttributeLimits {
        AttributeLimits {
            per_attribute: 2048,
            per_object: 8192,
        }
    }

    #[test]
    fn an_attribute_over_the_limit_is_refused_naming_the_key() {
        let obj = object(vec![text("x-big", 4096)]);
        let e = limits()
            .check_write(None, &obj, 5000, Writer::Client)
            .unwrap_err();
        assert!(e.to_string().contains("server.max_attribute_bytes"), "{e}");
        assert!(e.to_string().contains("x-big"), "{e}");
        let obj = object(vec![text("x-small", 1000)]);
        assert!(limits()
            .check_write(None, &obj, 1100, Writer::Client)
            .is_ok());
    }

    #[test]
    fn an_oversized_attribute_already_stored_may_stay_but_not_change() {
        let stored = object(vec![text("x-big", 4096)]);
        let before = limits().before(5000, &stored);
        let mut obj = object(vec![text("x-big", 4096), text("x-note", 10)]);
        assert!(limits()
            .check_write(Some(&before), &obj, 4000, Writer::Server)
            .is_ok());
        obj.attrs[0] = text("x-big", 4097);
        assert!(limits()
            .check_write(Some(&before), &obj, 4000, Writer::Server)
            .is_err());
    }

    #[test]
    fn the_object_limit_applies_to_client_writes_that_grow_the_record() {
        let obj = object(vec![text("x-a", 1000)]);
        let e = limits()
            .check_write(None, &obj, 9000, Writer::Client)
            .unwrap_err();
        assert!(
            e.to_string().contains("server.max_object_attribute_bytes"),
            "{e}"
        );
        let before = limits().before(9500, &obj);
        // Shrinking, or a server-set change, is allowed over the configured limit.
        assert!(limits()
            .check_write(Some(&before), &obj, 9000, Writer::Client)
            .is_ok());
        assert!(limits()
            .check_write(Some(&before), &obj, 9600, Writer::Server)
            .is_ok());
        assert!(limits()
            .check_write(Some(&before), &obj, 9600, Writer::Client)
            .is_err());
    }

    #[test]
    fn nothing_grows_over_the_stored_record_ceiling() {
        let obj = object(vec![]);
        let over = STORED_RECORD_MAX_BYTES + 1;
        assert!(limits()
            .check_write(None, &obj, over, Writer::Server)
            .is_err());
        let before = limits().before(over - 1, &obj);
        assert!(limits()
            .check_write(Some(&before), &obj, over, Writer::Server)
            .is_err());
        // A record already over it may shrink (an administrator deleting attributes).
        let before = limits().before(over + 100, &obj);
        assert!(limits()
            .check_write(Some(&before), &obj, over, Writer::Server)
            .is_ok());
    }
}
