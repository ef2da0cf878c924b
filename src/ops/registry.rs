//! The one table of the standard KMIP operations akm performs: each row names the operation,
//! the first protocol version akm performs it in, when it is offered, and its handler. The
//! dispatcher runs the handler, Query lists the rows a request's version may use (in table
//! order), and the spec names the records use come from [`crate::kmip::operations`]. akm's
//! vendor operations (administration, KEK custody) are dispatched by `admin` and `custody`.

use super::{
    activate, attribute_edit, check, create, create_key_pair, decrypt, derive_key, destroy,
    discover_versions, encrypt, get, get_attribute_list, get_attributes, hash, interop, locate,
    log, mac, obtain_lease, query, register, rekey, revoke, rng_retrieve, sign, Call, Caller, Ctx,
    Reply,
};
use crate::error::OpError;
use crate::kmip::enums::operation as op;
use crate::kmip::ProtocolVersion as V;

/// What runs one batch item of a registered operation.
pub type Handler = fn(&Ctx, &Caller, &Call<'_>) -> Result<Reply, OpError>;

/// When a registered operation is offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// On every server.
    Always,
    /// Only where the test-server switch (`server.interop_operations`) enables it.
    InteropSwitch,
}

/// One operation akm performs.
pub struct Registered {
    /// Its Operation value.
    pub operation: u32,
    /// The first protocol version akm performs it in; older requests are refused with
    /// Operation Not Supported and Query at those versions does not list it.
    pub since: V,
    /// When it is offered at all.
    pub offered: Offered,
    /// What runs it.
    pub run: Handler,
}

impl Registered {
    /// Whether a request of `version` may use it on a server whose Interop switch is
    /// `interop`.
    pub fn available(&self, version: V, interop: bool) -> bool {
        version >= self.since && (self.offered == Offered::Always || interop)
    }
}

const fn row(operation: u32, since: V, run: Handler) -> Registered {
    Registered {
        operation,
        since,
        offered: Offered::Always,
        run,
    }
}

/// The operations akm performs, in the order Query lists them. The cryptographic operations
/// exist from KMIP 1.2, Set Attribute and Log from 2.0, Interop (test servers only) from
/// 2.0; Discover Versions (a KMIP 1.1 operation) is answered at every version, so a 1.0
/// client can still learn what the server speaks.
pub static REGISTRY: &[Registered] = &[
    row(op::CREATE, V::V1_0, create::run),
    row(op::REGISTER, V::V1_0, register::run),
    row(op::LOCATE, V::V1_0, locate::run),
    row(op::CHECK, V::V1_0, check::run),
    row(op::GET, V::V1_0, get::run),
    row(op::GET_ATTRIBUTES, V::V1_0, get_attributes::run),
    row(op::GET_ATTRIBUTE_LIST, V::V1_0, get_attribute_list::run),
    row(op::ADD_ATTRIBUTE, V::V1_0, attribute_edit::add),
    row(op::MODIFY_ATTRIBUTE, V::V1_0, attribute_edit::modify_attr),
    row(op::DELETE_ATTRIBUTE, V::V1_0, attribute_edit::delete),
    row(op::SET_ATTRIBUTE, V::V2_0, attribute_edit::set),
    row(op::OBTAIN_LEASE, V::V1_0, obtain_lease::run),
    row(op::ACTIVATE, V::V1_0, activate::run),
    row(op::REVOKE, V::V1_0, revoke::run),
    row(op::DESTROY, V::V1_0, destroy::run),
    row(op::QUERY, V::V1_0, |ctx, _, call| query::run(ctx, call)),
    row(op::DISCOVER_VERSIONS, V::V1_0, |_, _, call| {
        discover_versions::run(call)
    }),
    row(op::LOG, V::V2_0, |_, who, call| log::run(who, call)),
    row(op::RE_KEY, V::V1_0, rekey::run),
    row(op::CREATE_KEY_PAIR, V::V1_0, create_key_pair::run),
    row(op::DERIVE_KEY, V::V1_0, derive_key::run),
    row(op::SIGN, V::V1_2, sign::run),
    row(op::SIGNATURE_VERIFY, V::V1_2, sign::verify),
    row(op::ENCRYPT, V::V1_2, encrypt::run),
    row(op::DECRYPT, V::V1_2, decrypt::run),
    row(op::MAC, V::V1_2, mac::run),
    row(op::MAC_VERIFY, V::V1_2, mac::verify),
    row(op::HASH, V::V1_2, hash::run),
    row(op::RNG_RETRIEVE, V::V1_2, |_, _, call| {
        rng_retrieve::run(call)
    }),
    Registered {
        operation: op::INTEROP,
        since: V::V2_0,
        offered: Offered::InteropSwitch,
        run: |_, who, call| interop::run(who, call),
    },
];

/// The registered operation `operation`, if a request of `version` may use it on a server
/// whose Interop switch is `interop`.
pub fn find(operation: u32, version: V, interop: bool) -> Option<&'static Registered> {
    REGISTRY
        .iter()
        .find(|r| r.operation == operation)
        .filter(|r| r.available(version, interop))
}

/// The operations a request of `version` may use, in Query order.
pub fn offered(version: V, interop: bool) -> impl Iterator<Item = u32> {
    REGISTRY
        .iter()
        .filter(move |r| r.available(version, interop))
        .map(|r| r.operation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmip::operations::spec_operation;

    /// Query's operation list at every version, as it was before the registry: the table
    /// must not change what any client is told.
    #[test]
    fn query_lists_exactly_the_registered_operations_of_each_version() {
        let base = [
            op::CREATE,
            op::REGISTER,
            op::LOCATE,
            op::CHECK,
            op::GET,
            op::GET_ATTRIBUTES,
            op::GET_ATTRIBUTE_LIST,
            op::ADD_ATTRIBUTE,
            op::MODIFY_ATTRIBUTE,
            op::DELETE_ATTRIBUTE,
        ];
        let lifecycle = [
            op::OBTAIN_LEASE,
            op::ACTIVATE,
            op::REVOKE,
            op::DESTROY,
            op::QUERY,
            op::DISCOVER_VERSIONS,
        ];
        let keys = [op::RE_KEY, op::CREATE_KEY_PAIR, op::DERIVE_KEY];
        let crypto = [
            op::SIGN,
            op::SIGNATURE_VERIFY,
            op::ENCRYPT,
            op::DECRYPT,
            op::MAC,
            op::MAC_VERIFY,
            op::HASH,
            op::RNG_RETRIEVE,
        ];
        let v1_0: Vec<u32> = [&base[..], &lifecycle, &keys].concat();
        let v1_2: Vec<u32> = [&v1_0[..], &crypto].concat();
        let v2: Vec<u32> = [
            &base[..],
            &[op::SET_ATTRIBUTE],
            &lifecycle,
            &[op::LOG],
            &keys,
            &crypto,
        ]
        .concat();
        for (version, expected) in [
            (V::V1_0, &v1_0),
            (V::V1_1, &v1_0),
            (V::V1_2, &v1_2),
            (V::V1_3, &v1_2),
            (V::V1_4, &v1_2),
            (V::V2_0, &v2),
            (V::V2_1, &v2),
        ] {
            let listed: Vec<u32> = offered(version, false).collect();
            assert_eq!(&listed, expected, "Query at {version}");
            let with_interop: Vec<u32> = offered(version, true).collect();
            let interop = version.is_v2().then_some(op::INTEROP);
            let expected: Vec<u32> = expected.iter().copied().chain(interop).collect();
            assert_eq!(with_interop, expected, "Query at {version} with Interop on");
        }
    }

    #[test]
    fn an_operation_is_found_only_where_it_is_offered() {
        assert!(find(op::ENCRYPT, V::V1_2, false).is_some());
        assert!(find(op::ENCRYPT, V::V1_1, false).is_none());
        assert!(find(op::SET_ATTRIBUTE, V::V1_4, false).is_none());
        assert!(find(op::INTEROP, V::V2_1, false).is_none());
        assert!(find(op::INTEROP, V::V2_1, true).is_some());
        assert!(find(op::INTEROP, V::V1_4, true).is_none());
        assert!(find(op::ARCHIVE, V::V2_1, true).is_none());
    }

    /// Every row is a standard operation, once, offered no earlier than the spec allows: an
    /// operation first listed in the 2.x tables is never offered to a 1.x request.
    #[test]
    fn registered_operations_are_spec_operations_of_their_versions() {
        for (i, r) in REGISTRY.iter().enumerate() {
            let spec = spec_operation(r.operation).expect("a standard operation");
            assert!(
                REGISTRY[..i].iter().all(|o| o.operation != r.operation),
                "{} registered twice",
                spec.name
            );
            if spec.listed_from.is_v2() {
                assert!(
                    r.since >= spec.listed_from,
                    "{} since {}",
                    spec.name,
                    r.since
                );
            } else {
                assert!(r.since <= V::V1_4, "{} since {}", spec.name, r.since);
            }
        }
    }
}
