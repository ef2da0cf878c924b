//! Discover Versions: the protocol versions akm speaks, or those of the client's list it
//! speaks, in the client's order of preference.

use super::{Call, Reply};
use crate::error::OpError;
use crate::kmip::ProtocolVersion;
use crate::ttlv::Tag;

/// Runs Discover Versions.
pub fn run(call: &Call<'_>) -> Result<Reply, OpError> {
    let offered: Vec<ProtocolVersion> = call
        .payload
        .children_with(Tag::PROTOCOL_VERSION)
        .filter_map(ProtocolVersion::from_ttlv)
        .collect();
    let versions: Vec<ProtocolVersion> = if offered.is_empty() {
        ProtocolVersion::SUPPORTED.to_vec()
    } else {
        offered.into_iter().filter(|v| v.is_supported()).collect()
    };
    Ok(Reply {
        payload: versions.into_iter().map(ProtocolVersion::to_ttlv).collect(),
        uid: None,
    })
}
