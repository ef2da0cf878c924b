//! Access decisions: a pure function of the caller, the object's owner and the operation.
//! No I/O. Until per-key user and group policy lands, an object is visible and usable only by
//! the identity that created it (same certificate CN).

use crate::identity::Principal;

/// The outcome of an access check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The caller may proceed.
    Allow,
    /// The caller may not; the operation fails with Permission Denied.
    Deny,
}

/// May `who` perform `operation` (a KMIP Operation value) on an object owned by `owner`?
pub fn decide(who: &Principal, owner: &str, _operation: u32) -> Decision {
    if who.cn == owner {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmip::enums::operation;

    fn principal(cn: &str) -> Principal {
        Principal {
            cn: cn.into(),
            ous: vec!["users".into()],
            serial: "01".into(),
            fingerprint: "00".into(),
            subject: format!("CN={cn}"),
        }
    }

    #[test]
    fn only_the_owner_is_allowed() {
        assert_eq!(
            decide(&principal("alice"), "alice", operation::GET),
            Decision::Allow
        );
        assert_eq!(
            decide(&principal("bob"), "alice", operation::GET),
            Decision::Deny
        );
        assert_eq!(
            decide(&principal("Alice"), "alice", operation::DESTROY),
            Decision::Deny
        );
    }
}
