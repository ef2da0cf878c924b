//! Query: the operations (those performed at the request's version) and object types akm
//! supports, and who it is.

use super::{performs, Call, Reply, SUPPORTED_OPERATIONS};
use crate::error::OpError;
use crate::kmip::enums::{object_type as ot, query_function as qf};
use crate::ttlv::{Tag, Ttlv};

/// Object types akm stores.
pub const SUPPORTED_OBJECT_TYPES: &[u32] = &[
    ot::SYMMETRIC_KEY,
    ot::SECRET_DATA,
    ot::OPAQUE_OBJECT,
    ot::PUBLIC_KEY,
    ot::PRIVATE_KEY,
    ot::SPLIT_KEY,
    ot::CERTIFICATE,
];

/// Runs Query.
pub fn run(call: &Call<'_>) -> Result<Reply, OpError> {
    let functions: Vec<u32> = call
        .payload
        .children_with(Tag::QUERY_FUNCTION)
        .filter_map(Ttlv::as_enum)
        .collect();
    let mut payload = Vec::new();
    if functions.contains(&qf::QUERY_OPERATIONS) {
        payload.extend(
            SUPPORTED_OPERATIONS
                .iter()
                .filter(|op| performs(**op, call.version))
                .map(|op| Ttlv::enumeration(Tag::OPERATION, *op)),
        );
    }
    if functions.contains(&qf::QUERY_OBJECTS) {
        payload.extend(
            SUPPORTED_OBJECT_TYPES
                .iter()
                .map(|t| Ttlv::enumeration(Tag::OBJECT_TYPE, *t)),
        );
    }
    if functions.contains(&qf::QUERY_SERVER_INFORMATION) {
        payload.push(Ttlv::text(Tag::VENDOR_IDENTIFICATION, "akm"));
        // Server Information's content is vendor-defined in 1.x; Server Name is a 2.x tag.
        if call.version.is_v2() {
            payload.push(Ttlv::structure(
                Tag::SERVER_INFORMATION,
                vec![Ttlv::text(
                    Tag::SERVER_NAME,
                    concat!("akm ", env!("CARGO_PKG_VERSION")),
                )],
            ));
        }
    }
    Ok(Reply { payload, uid: None })
}
