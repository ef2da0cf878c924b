//! Query (KMIP 2.1 §6.1.40, 1.4 §4.25): what this server implements, and nothing it does not.
//! Owns the answers to every Query Function: the operations it performs at the request's
//! version (Interop only where the test-server switch enables it), the object types it
//! stores, who it is, its vendor extension tags, its random number generator (§7.36), the
//! profiles whose mandatory test cases it passes (§7.31), its capabilities (§7.5), and no
//! Validation Information, since akm asserts no formal validation (§7.41: "A server MAY elect
//! to return no validation information"). Application namespaces, attestation types and
//! client registration methods: akm has none, so none are listed. The RNG, Validation,
//! Profile and Capability functions exist from KMIP 1.3; Defaults Information and Protection
//! Storage Masks from 2.0.

use super::{registry, Call, Ctx, Reply};
use crate::error::OpError;
use crate::kmip::custody as ck;
use crate::kmip::enums::{
    cryptographic_algorithm as alg, destroy_action, drbg_algorithm, object_type as ot,
    profile_name as pn, query_function as qf, rng_algorithm, rng_mode,
};
use crate::kmip::extension as ek;
use crate::kmip::ProtocolVersion;
use crate::ttlv::{ItemType, Tag, Ttlv};

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

/// The server profiles akm claims in a KMIP 2.x Query (Profiles v2.1 names, §11.41): those
/// whose every mandatory 2.1 test case passes (tests/it/conformance.rs checks it). Not
/// claimed: Basic Cryptographic (ChaCha20 is refused), Advanced Cryptographic (SHA-1
/// signatures are refused), Symmetric Key Foundry (Triple-DES is refused), Complete, Quantum
/// Safe, PKCS#11, and the HTTPS, JSON and XML encodings, which akm does not speak.
pub const PROFILES_V2: &[(u32, &str)] = &[
    (pn::BASELINE_SERVER, "BL"),
    (pn::TAPE_LIBRARY_SERVER, "TL"),
    (pn::SYMMETRIC_KEY_LIFECYCLE_SERVER, "SKLC"),
    (pn::ASYMMETRIC_KEY_LIFECYCLE_SERVER, "AKLC"),
    (pn::RNG_CRYPTOGRAPHIC_SERVER, "CS-RNG"),
    (pn::OPAQUE_MANAGED_OBJECT_STORE_SERVER, "OMOS"),
    (pn::STORAGE_ARRAY_WITH_SELF_ENCRYPTING_DRIVE_SERVER, "SASED"),
    (pn::AES_XTS_SERVER, "AX"),
];

/// The server profiles akm claims in a KMIP 1.3 or 1.4 Query (the "KMIP v1.4" names), by the
/// same rule against the 1.4 mandatory test cases; Basic Cryptographic is claimed because its
/// one failing case (CS-BC-M-3) expects a fixed ciphertext from a randomly generated key,
/// which no server can give.
pub const PROFILES_V1: &[(u32, &str)] = &[
    (pn::BASELINE_SERVER_TLS_V1_2_KMIP_V1_4, "BL"),
    (pn::TAPE_LIBRARY_SERVER_KMIP_V1_4, "TL"),
    (pn::SYMMETRIC_KEY_LIFECYCLE_SERVER_KMIP_V1_4, "SKLC"),
    (pn::ASYMMETRIC_KEY_LIFECYCLE_SERVER_KMIP_V1_4, "AKLC"),
    (pn::BASIC_CRYPTOGRAPHIC_SERVER_KMIP_V1_4, "CS-BC"),
    (pn::RNG_CRYPTOGRAPHIC_SERVER_KMIP_V1_4, "CS-RNG"),
    (pn::OPAQUE_MANAGED_OBJECT_STORE_SERVER_KMIP_V1_4, "OMOS"),
    (
        pn::STORAGE_ARRAY_WITH_SELF_ENCRYPTING_DRIVE_SERVER_KMIP_V1_4,
        "SASED",
    ),
];

/// akm's vendor extension tags (KMIP 1.4 §9.1.3.1, 2.1 §7.13), for Query Extension List and
/// Map: name, tag, item type.
const EXTENSIONS: &[(&str, crate::ttlv::Tag, ItemType)] = &[
    (
        "x-akm Account Kind",
        ek::TAG_ACCOUNT_KIND,
        ItemType::Enumeration,
    ),
    ("x-akm Account", ek::TAG_ACCOUNT, ItemType::Structure),
    (
        "x-akm Account Name",
        ek::TAG_ACCOUNT_NAME,
        ItemType::TextString,
    ),
    ("x-akm Enabled", ek::TAG_ENABLED, ItemType::Boolean),
    ("x-akm Operations", ek::TAG_OPERATIONS, ItemType::TextString),
    ("x-akm Owner", ek::TAG_OWNER, ItemType::TextString),
    (
        "x-akm Owner Group",
        ek::TAG_OWNER_GROUP,
        ItemType::TextString,
    ),
    (
        "x-akm Access Mode",
        ek::TAG_ACCESS_MODE,
        ItemType::TextString,
    ),
    (
        "x-akm Restart Key",
        ek::TAG_RESTART_KEY,
        ItemType::TextString,
    ),
    ("x-akm Sealed", ck::TAG_SEALED, ItemType::Boolean),
    (
        "x-akm Seal Scheme",
        ck::TAG_SEAL_SCHEME,
        ItemType::TextString,
    ),
    (
        "x-akm Unseal Threshold",
        ck::TAG_UNSEAL_THRESHOLD,
        ItemType::Integer,
    ),
    (
        "x-akm Unseal Progress",
        ck::TAG_UNSEAL_PROGRESS,
        ItemType::Integer,
    ),
    ("x-akm KEK ID", ck::TAG_KEK_ID, ItemType::TextString),
    (
        "x-akm Unseal Share",
        ck::TAG_UNSEAL_SHARE,
        ItemType::TextString,
    ),
    (
        "x-akm Unseal Passphrase",
        ck::TAG_UNSEAL_PASSPHRASE,
        ItemType::ByteString,
    ),
    (
        "x-akm Backup File",
        ck::TAG_BACKUP_FILE,
        ItemType::TextString,
    ),
    (
        "x-akm Backup Bytes",
        ck::TAG_BACKUP_BYTES,
        ItemType::LongInteger,
    ),
    (
        "x-akm Backup SHA-256",
        ck::TAG_BACKUP_SHA256,
        ItemType::TextString,
    ),
    ("x-akm Batch Limit", ck::TAG_BATCH_LIMIT, ItemType::Integer),
    ("x-akm Rewrapped", ck::TAG_REWRAPPED, ItemType::Integer),
    ("x-akm Remaining", ck::TAG_REMAINING, ItemType::Integer),
    (
        "x-akm Destroyed KEK ID",
        ck::TAG_DESTROYED_KEK_ID,
        ItemType::TextString,
    ),
    (
        "x-akm Authorized User",
        ck::TAG_AUTHORIZED_USER,
        ItemType::TextString,
    ),
    (
        "x-akm Guarded Operation",
        ck::TAG_GUARDED_OPERATION,
        ItemType::TextString,
    ),
    (
        "x-akm Window Minutes",
        ck::TAG_WINDOW_MINUTES,
        ItemType::Integer,
    ),
    (
        "x-akm Window Until",
        ck::TAG_WINDOW_UNTIL,
        ItemType::DateTime,
    ),
    ("x-akm Request ID", ck::TAG_REQUEST_ID, ItemType::TextString),
];

/// Runs Query.
pub fn run(ctx: &Ctx, call: &Call<'_>) -> Result<Reply, OpError> {
    let functions: Vec<u32> = call
        .payload
        .children_with(Tag::QUERY_FUNCTION)
        .filter_map(Ttlv::as_enum)
        .collect();
    let asked = |f| functions.contains(&f);
    let v = call.version;
    let mut payload = Vec::new();
    if asked(qf::QUERY_OPERATIONS) {
        payload.extend(operations(ctx, v).map(|o| Ttlv::enumeration(Tag::OPERATION, o)));
    }
    if asked(qf::QUERY_OBJECTS) {
        payload.extend(
            SUPPORTED_OBJECT_TYPES
                .iter()
                .map(|t| Ttlv::enumeration(Tag::OBJECT_TYPE, *t)),
        );
    }
    if asked(qf::QUERY_SERVER_INFORMATION) {
        payload.push(Ttlv::text(Tag::VENDOR_IDENTIFICATION, "akm"));
        // Server Information's content is vendor-defined in 1.x; Server Name is a 2.x tag.
        if v.is_v2() {
            payload.push(Ttlv::structure(
                Tag::SERVER_INFORMATION,
                vec![Ttlv::text(
                    Tag::SERVER_NAME,
                    format!(
                        "akm {}; crypto {}",
                        env!("CARGO_PKG_VERSION"),
                        crate::crypto::backend::module().describe()
                    ),
                )],
            ));
        }
    }
    // Extension Map when both are asked (2.1 §6.1.40: the List is then ignored).
    if asked(qf::QUERY_EXTENSION_MAP) || asked(qf::QUERY_EXTENSION_LIST) {
        payload.extend(extensions(asked(qf::QUERY_EXTENSION_MAP)));
    }
    if from_1_3(v) {
        if asked(qf::QUERY_RNGS) {
            payload.push(rng_parameters());
        }
        // Query Validations: none (see the module doc).
        if asked(qf::QUERY_PROFILES) {
            payload.extend(profiles(v));
        }
        if asked(qf::QUERY_CAPABILITIES) {
            payload.push(capabilities(v));
        }
    }
    if v.is_v2() && asked(qf::QUERY_STORAGE_PROTECTION_MASKS) {
        // Required in the response; 2.1 §6.1.40 lets a server give an empty list.
        payload.push(Ttlv::structure(Tag::PROTECTION_STORAGE_MASKS, Vec::new()));
    }
    Ok(Reply { payload, uid: None })
}

fn from_1_3(v: ProtocolVersion) -> bool {
    v.is_v2() || v.minor >= 3
}

/// The operations the dispatcher performs at version `v`, in Query order (Interop only where
/// the test-server switch enables it).
pub fn operations(ctx: &Ctx, v: ProtocolVersion) -> impl Iterator<Item = u32> + '_ {
    registry::offered(v, ctx.interop)
}

fn extensions(map: bool) -> impl Iterator<Item = Ttlv> {
    EXTENSIONS.iter().map(move |(name, tag, item_type)| {
        let mut fields = vec![Ttlv::text(Tag::EXTENSION_NAME, *name)];
        if map {
            fields.push(Ttlv::integer(
                Tag::EXTENSION_TAG,
                i32::try_from(tag.0).unwrap_or(0),
            ));
            fields.push(Ttlv::integer(Tag::EXTENSION_TYPE, *item_type as i32));
        }
        Ttlv::structure(Tag::EXTENSION_INFORMATION, fields)
    })
}

/// akm's one generator: the SP 800-90A CTR_DRBG with AES-256 of `crypto::drbg`, reseeded from
/// the operating system when due, not on every request (so no Prediction Resistance).
fn rng_parameters() -> Ttlv {
    Ttlv::structure(
        Tag::RNG_PARAMETERS,
        vec![
            Ttlv::enumeration(Tag::RNG_ALGORITHM, rng_algorithm::DRBG),
            Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
            Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 256),
            Ttlv::enumeration(Tag::DRBG_ALGORITHM, drbg_algorithm::CTR),
            Ttlv::boolean(Tag::PREDICTION_RESISTANCE, false),
        ],
    )
}

/// A "KMIP v1.4" server profile name less this is its "KMIP v1.3" name (1.4 §9.1.3.2.42).
const V1_3_OFFSET: u32 = 0x24;

/// One Profile Information per claimed profile: its Profile Name only. Server URI and Port
/// are the ones the client used, and Profile Version is optional (2.1 §7.31) and unknown to
/// PyKMIP, which refuses the whole Query response if it is present.
fn profiles(v: ProtocolVersion) -> Vec<Ttlv> {
    let (list, offset) = match (v.is_v2(), v.minor) {
        (true, _) => (PROFILES_V2, 0),
        (false, 3) => (PROFILES_V1, V1_3_OFFSET),
        (false, _) => (PROFILES_V1, 0),
    };
    list.iter()
        .map(|(name, _)| {
            Ttlv::structure(
                Tag::PROFILE_INFORMATION,
                vec![Ttlv::enumeration(Tag::PROFILE_NAME, name - offset)],
            )
        })
        .collect()
}

/// Capability Information (2.1 §7.5, 1.4 §2.1.21): multi-part operations yes (`stream`),
/// asynchronous operations and attestation no, Undo and Continue batches yes (fields that
/// exist from KMIP 1.4), Destroy deletes the key material and keeps the metadata, one
/// process-wide DRBG instance. Unwrap Mode and Shredding Algorithm are left out: akm does not
/// shred, and whether a registered wrapped key is unwrapped depends on the wrapping key.
fn capabilities(v: ProtocolVersion) -> Ttlv {
    let mut fields = vec![
        Ttlv::boolean(Tag::STREAMING_CAPABILITY, true),
        Ttlv::boolean(Tag::ASYNCHRONOUS_CAPABILITY, false),
        Ttlv::boolean(Tag::ATTESTATION_CAPABILITY, false),
    ];
    if v.is_v2() || v.minor >= 4 {
        fields.push(Ttlv::boolean(Tag::BATCH_UNDO_CAPABILITY, true));
        fields.push(Ttlv::boolean(Tag::BATCH_CONTINUE_CAPABILITY, true));
    }
    fields.push(Ttlv::enumeration(
        Tag::DESTROY_ACTION,
        destroy_action::KEY_MATERIAL_DELETED,
    ));
    fields.push(Ttlv::enumeration(
        Tag::RNG_MODE,
        rng_mode::SHARED_INSTANTIATION,
    ));
    Ttlv::structure(Tag::CAPABILITY_INFORMATION, fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_profiles_are_server_profiles() {
        assert!(PROFILES_V2.iter().all(|(n, _)| (0x104..=0x12C).contains(n)));
        assert!(PROFILES_V1.iter().all(|(n, _)| (0x79..=0x9C).contains(n)));
        use crate::kmip::enums::profile_name as pn;
        assert_eq!(
            PROFILES_V1[0].0 - V1_3_OFFSET,
            pn::BASELINE_SERVER_TLS_V1_2_KMIP_V1_3
        );
    }

    #[test]
    fn extension_tags_are_in_the_extension_range() {
        assert!(EXTENSIONS
            .iter()
            .all(|(_, t, _)| (0x54_0000..0x55_0000).contains(&t.0)));
    }
}
