//! Interop (KMIP 2.0+): a client tells the server that an interoperability test case begins,
//! ends or is reset. KMIP 2.1 §6.1.26 says it SHALL NOT be available in a production
//! server, so the dispatcher runs it only when `server.interop_operations` is on; the server
//! only logs it.

use super::{Call, Reply};
use crate::error::OpError;
use crate::identity::Principal;
use crate::kmip::enums::interop_function as f;
use crate::ttlv::Tag;

/// Runs Interop.
pub fn run(who: &Principal, call: &Call<'_>) -> Result<Reply, OpError> {
    let function = call
        .payload
        .child(Tag::INTEROP_FUNCTION)
        .ok_or_else(|| OpError::InvalidMessage("missing Interop Function".into()))?
        .as_enum()
        .ok_or_else(|| OpError::InvalidMessage("Interop Function must be an Enumeration".into()))?;
    let name = match function {
        f::BEGIN => "begin",
        f::END => "end",
        f::RESET => "reset",
        _ => return Err(OpError::InvalidField("unknown Interop Function".into())),
    };
    let identifier = call
        .payload
        .child(Tag::INTEROP_IDENTIFIER)
        .ok_or_else(|| OpError::InvalidMessage("missing Interop Identifier".into()))?
        .as_text()
        .ok_or_else(|| OpError::InvalidMessage("Interop Identifier must be text".into()))?;
    // Debug formatting escapes control characters, so a client cannot forge log lines.
    tracing::info!(user = %who.cn, test_case = ?identifier, "interop {name}");
    Ok(Reply {
        payload: Vec::new(),
        uid: None,
    })
}
