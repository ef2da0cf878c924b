//! Hash (KMIP 2.1 §6.1.24, 1.4 §4.37): the SHA-2 digest of Data, with the Hashing Algorithm
//! from the request's Cryptographic Parameters. MD5, SHA-1 and the other withdrawn hashes are
//! refused. It may run in several parts (see `stream`): the digest comes with the final part,
//! the Cryptographic Parameters with the first.

use super::key_use::{param_enum, required_data};
use super::stream::{self, Part};
use super::{Call, Caller, Ctx, Reply};
use crate::crypto::digest;
use crate::error::OpError;
use crate::ttlv::{Tag, Ttlv};

/// Runs Hash, in one part or several.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let part = Part::read(call.payload)?;
    if part.is_streaming() {
        return stream::run_collecting(ctx, who, call, &part, None, single);
    }
    single(call)
}

/// Hash in one part.
fn single(call: &Call<'_>) -> Result<Reply, OpError> {
    let params = call
        .payload
        .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .map(Ttlv::children);
    let algorithm = param_enum(params, Tag::HASHING_ALGORITHM)?.ok_or_else(|| {
        OpError::InvalidMessage("Cryptographic Parameters must name a Hashing Algorithm".into())
    })?;
    let data = required_data(call)?;
    let out = digest::hash(algorithm, data)?;
    Ok(Reply {
        payload: vec![Ttlv::bytes(Tag::DATA, out)],
        uid: None,
    })
}
