//! Hash (KMIP 2.1 §6.1.23): the SHA-2 digest of Data, with the Hashing Algorithm from the
//! request's Cryptographic Parameters. MD5, SHA-1 and the other withdrawn hashes are refused.

use super::key_use::{param_enum, refuse_streaming, required_data};
use super::{Call, Reply};
use crate::crypto::digest;
use crate::error::OpError;
use crate::ttlv::{Tag, Ttlv};

/// Runs Hash.
pub fn run(call: &Call<'_>) -> Result<Reply, OpError> {
    refuse_streaming(call)?;
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
