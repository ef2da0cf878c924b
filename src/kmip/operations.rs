//! The KMIP operation vocabulary: every standard operation's code, spec name, XML token and
//! the first spec table that lists it (generated: [`super::vocab::SPEC_OPERATIONS`]), and
//! akm's own vendor operations (administration and KEK custody) with the names the records
//! give them. Owns how the audit journal, the log and the metrics spell an operation; which
//! operations akm performs, from which version, and with which handler is `ops::registry`.

use super::vocab::SPEC_OPERATIONS;
use super::{custody, extension as ext, ProtocolVersion};

/// One standard operation of the KMIP specifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecOperation {
    /// Its Operation enumeration value.
    pub code: u32,
    /// The spec name ("Create Key Pair").
    pub name: &'static str,
    /// The XML token ("CreateKeyPair"), the spelling records use.
    pub token: &'static str,
    /// The first of akm's spec tables (1.4, 2.0, 2.1) listing it: 1.4 for every 1.x
    /// operation, since the tables do not say which 1.x version brought one.
    pub listed_from: ProtocolVersion,
}

/// The standard operation with value `code`, if the specifications define one.
pub fn spec_operation(code: u32) -> Option<SpecOperation> {
    SPEC_OPERATIONS
        .iter()
        .find(|(c, ..)| *c == code)
        .map(|&(code, name, token, listed_from)| SpecOperation {
            code,
            name,
            token,
            listed_from,
        })
}

/// akm's vendor operations (extension values 8XXXXXXX) and their names in the records: `x-`
/// and the operation's name in the XML-token style.
pub static VENDOR_OPERATIONS: &[(u32, &str)] = &[
    // Administration: who changed accounts, key policy or the configuration.
    (ext::OP_LIST_ACCOUNTS, "x-ListAccounts"),
    (ext::OP_SET_ACCOUNT, "x-SetAccount"),
    (ext::OP_DELETE_ACCOUNT, "x-DeleteAccount"),
    (ext::OP_GET_KEY_POLICY, "x-GetKeyPolicy"),
    (ext::OP_SET_KEY_POLICY, "x-SetKeyPolicy"),
    (ext::OP_RELOAD_TLS, "x-ReloadTls"),
    (ext::OP_RELOAD_CONFIG, "x-ReloadConfig"),
    (ext::OP_REVOKE_CERTIFICATE, "x-RevokeCertificate"),
    // KEK custody: unseal attempts, backups, rotations, dual-control windows.
    (custody::OP_SEAL_STATUS, "x-SealStatus"),
    (custody::OP_UNSEAL, "x-Unseal"),
    (custody::OP_BACKUP, "x-Backup"),
    (custody::OP_ROTATE_KEK, "x-RotateKek"),
    (custody::OP_AUTHORIZE, "x-Authorize"),
];

/// The operation as the audit records, the log and the metrics name it: the spec's XML token
/// (`CreateKeyPair`), a vendor operation's `x-` name, or the value in hex for anything else.
pub fn record_name(code: u32) -> String {
    if let Some(op) = spec_operation(code) {
        return op.token.to_owned();
    }
    match VENDOR_OPERATIONS.iter().find(|(c, _)| *c == code) {
        Some((_, name)) => (*name).to_owned(),
        None => format!("0x{code:08X}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmip::enums::operation as op;

    #[test]
    fn record_names_are_the_spec_tokens() {
        for &(code, _, token, _) in SPEC_OPERATIONS {
            assert_eq!(record_name(code), token);
        }
        // The spellings the journal has always used stay the same.
        for (code, name) in [
            (op::CREATE_KEY_PAIR, "CreateKeyPair"),
            (op::RE_KEY, "ReKey"),
            (op::GET_ATTRIBUTE_LIST, "GetAttributeList"),
            (op::MAC, "MAC"),
            (op::DISCOVER_VERSIONS, "DiscoverVersions"),
            (op::INTEROP, "Interop"),
            (ext::OP_RELOAD_TLS, "x-ReloadTls"),
            (custody::OP_ROTATE_KEK, "x-RotateKek"),
        ] {
            assert_eq!(record_name(code), name);
        }
        assert_eq!(record_name(0x8000_0999), "0x80000999");
    }

    #[test]
    fn spec_operations_carry_their_names_and_tables() {
        let set = spec_operation(op::SET_ATTRIBUTE).unwrap();
        assert_eq!(
            (set.name, set.listed_from),
            ("Set Attribute", ProtocolVersion::V2_0)
        );
        assert_eq!(
            spec_operation(op::PING).unwrap().listed_from,
            ProtocolVersion::V2_1
        );
        assert_eq!(
            spec_operation(op::GET).unwrap().listed_from,
            ProtocolVersion::V1_4
        );
        assert_eq!(spec_operation(0x8000_0001), None);
    }
}
