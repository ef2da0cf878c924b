//! Operation errors and the one exhaustive mapping from them to a KMIP Result Reason and a
//! short Result Message. Internal failures (database, crypto) go out as General Failure with a
//! fixed message; their detail is logged once, here, where they are turned into a response.

use crate::crypto::asym::AsymError;
use crate::crypto::cipher::CipherError;
use crate::crypto::digest::DigestError;
use crate::crypto::CryptoError;
use crate::kmip::enums::result_reason as rr;
use crate::kmip::objects::ObjectError;
use crate::kmip::{Failure, MessageError};
use crate::store::StoreError;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The request is malformed or misses a required field.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// A field has a value akm cannot accept.
    #[error("invalid field: {0}")]
    InvalidField(String),
    /// No object with that identifier (or none visible to the caller).
    #[error("object not found")]
    NotFound,
    /// The object exists but has been destroyed.
    #[error("object destroyed")]
    ObjectDestroyed,
    /// The caller may not do this to this object.
    #[error("permission denied")]
    PermissionDenied,
    /// The object's state does not allow the operation.
    #[error("object is in the wrong state for this operation")]
    WrongState,
    /// The operation is not one akm performs.
    #[error("operation not supported")]
    OperationNotSupported,
    /// A feature of the request is not supported.
    #[error("feature not supported: {0}")]
    FeatureNotSupported(&'static str),
    /// The object cannot be given in the requested Key Format Type.
    #[error("key format type not supported")]
    KeyFormatNotSupported,
    /// The key is kept wrapped as registered under a key this server does not hold.
    #[error("the key is kept wrapped as registered, under a wrapping key this server does not hold: it can only be returned as registered (Key Wrap Type As Registered), not used or unwrapped here")]
    WrappedAsRegistered,
    /// A read-only attribute was to be set, changed or deleted.
    #[error("attribute {0:?} is read-only")]
    ReadOnlyAttribute(String),
    /// The attribute (instance) to change or delete does not exist.
    #[error("attribute not found")]
    AttributeNotFound,
    /// The attribute exists already and takes one instance.
    #[error("attribute {0:?} already exists")]
    AttributeExists(String),
    /// The object is Sensitive: its key material may not leave the server unwrapped.
    #[error("sensitive keys may not be retrieved unwrapped")]
    Sensitive,
    /// PCI mode (`crypto.pci_mode`): symmetric keys leave the server only wrapped.
    #[error("PCI mode: symmetric keys leave akm only wrapped; send Get with a Key Wrapping Specification")]
    ClearExportRefused,
    /// PCI mode (`crypto.pci_mode`): secret keys are established only wrapped, never
    /// registered in the clear.
    #[error("PCI mode: keys may not be registered in the clear; register the key wrapped under a key this server holds (Key Wrapping Data)")]
    ClearImportRefused,
    /// PCI mode (`crypto.pci_mode`): a key both wraps keys and encrypts or decrypts data, so
    /// its own wrappings could be undone block by block with Decrypt (key separation).
    #[error("PCI mode: a key that wraps or unwraps keys may not also encrypt or decrypt data (key separation); use a key whose Cryptographic Usage Mask has one purpose")]
    KeySeparation,
    /// PCI mode (`crypto.pci_mode`): Derive Key would make a symmetric key the client can
    /// compute (as good as one registered in the clear).
    #[error("PCI mode: a symmetric key may be derived only from a symmetric key this server holds, and not by HASH of the Derivation Data: the client could compute it, as if registered in the clear")]
    KnownDerivation,
    /// The object is not Extractable: its key material may not leave the server.
    #[error("object is not extractable")]
    NotExtractable,
    /// The object's Cryptographic Usage Mask does not allow what the client asked for.
    #[error("the object's usage mask does not allow this use")]
    IncompatibleUsageMask,
    /// The client asked for a Quantum Safe object that this one cannot be. The QS profile's
    /// test case (QS-M-2-21) answers this with General Failure.
    #[error("the object would not be quantum safe")]
    NotQuantumSafe,
    /// The object or request names an algorithm NIST has withdrawn or never approved
    /// (SP 800-131A Rev. 2); akm never uses it for an operation.
    #[error("{0} is not approved by NIST (SP 800-131A) and akm refuses to use it")]
    RefusedAlgorithm(&'static str),
    /// Cryptographic Parameters akm does not perform (an approved mode or padding it lacks).
    #[error("unsupported cryptographic parameters: {0}")]
    UnsupportedParameters(&'static str),
    /// The key's Usage Limits do not allow this much more use.
    #[error("the key's usage limit is exhausted")]
    UsageLimitExceeded,
    /// The object's stored attributes would exceed a limit (`server.max_attribute_bytes`,
    /// `server.max_object_attribute_bytes` or the stored-record ceiling); the message names it.
    #[error("{0}")]
    AttributesTooLarge(String),
    /// A later part of a multi-part operation names no stream this client has open (KMIP 2.1
    /// §7.8): unknown, another client's, finished, expired, or begun on another node.
    #[error("invalid correlation value: {0}")]
    InvalidCorrelationValue(String),
    /// A multi-part operation would exceed what the server keeps in memory for streams.
    #[error("server limit exceeded: {0}")]
    ServerLimitExceeded(String),
    /// The response would be larger than this server answers (`server.max_response_bytes`).
    #[error("the response would be larger than {0} bytes (server.max_response_bytes): ask for less per message")]
    ResponseTooLarge(usize),
    /// A new object was committed on this node, but no mirror peer confirmed it in time
    /// (RPO-zero mode): the client is told the write failed, and the audit record names the
    /// object so the journal covers every object in the store.
    #[error("the new object {0} was committed locally but no mirror peer confirmed it in time")]
    NotReplicated(String),
    /// A cipher refused its input (lengths, padding) or the authentication tag did not verify.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// A signature key or parameters akm cannot use, or a failed signing primitive.
    #[error(transparent)]
    Asym(#[from] AsymError),
    /// A hash or MAC algorithm was refused or is not supported.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// A stored record could not be read back (the detail is logged; the client sees
    /// General Failure and the remedy).
    #[error(
        "the stored record of {0} is unreadable; an administrator can still delete its \
         attributes, revoke it and destroy it"
    )]
    CorruptRecord(String),
    /// The caller's user and group records could not be read (the detail is logged), so no
    /// access decision can be made.
    #[error("access records unavailable")]
    AccessRecordsUnavailable,
    /// A configuration reload was refused: the new configuration is invalid (the detail names
    /// the key and the file; the caller is an administrator).
    #[error("reload refused, the previous configuration stays in force: {0}")]
    ReloadFailed(String),
    /// The server is sealed: nothing but Query, Discover Versions and the custody operations
    /// until custodians unseal it.
    #[error("the server is sealed: custodians must unseal it (akm unseal)")]
    Sealed,
    /// A custody operation (unseal) was refused; the reason is safe to show.
    #[error("{0}")]
    Custody(String),
    /// Dual control refused the operation (no open authorization window from a second
    /// administrator, or an administrator tried to authorize themself).
    #[error("{0}")]
    DualControl(String),
    /// A database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A cryptographic failure (including unwrapping with the wrong KEK).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl From<MessageError> for OpError {
    fn from(e: MessageError) -> Self {
        OpError::InvalidMessage(e.0)
    }
}

impl From<ObjectError> for OpError {
    fn from(e: ObjectError) -> Self {
        match e {
            ObjectError::Invalid(m) => OpError::InvalidField(m),
            ObjectError::FormatNotSupported => OpError::KeyFormatNotSupported,
            ObjectError::WrappingNotSupported => {
                OpError::FeatureNotSupported("wrapped key material")
            }
            ObjectError::TypeNotSupported => {
                OpError::InvalidField("unsupported object type".into())
            }
        }
    }
}

/// The Result Reason of a cipher error. The KMIP test cases (CS-BC-M-GCM-1) answer a GCM tag
/// length outside what the server performs with General Failure, and a failed tag check with
/// Cryptographic Failure.
fn cipher_reason(e: &CipherError) -> u32 {
    match e {
        CipherError::TagLength => rr::GENERAL_FAILURE,
        CipherError::NotInModule(_) => rr::FEATURE_NOT_SUPPORTED,
        CipherError::Authentication | CipherError::BadPadding => rr::CRYPTOGRAPHIC_FAILURE,
        CipherError::KeyLength
        | CipherError::IvLength(_)
        | CipherError::NotBlockAligned
        | CipherError::PaddingMode => rr::INVALID_FIELD,
    }
}

impl OpError {
    /// For a write that created object `uid`: a commit a mirror peer did not confirm names the
    /// object (it exists on this node); every other error stays as it is.
    pub fn created(self, uid: &str) -> OpError {
        match self {
            OpError::Store(StoreError::NotReplicated) => OpError::NotReplicated(uid.to_owned()),
            e => e,
        }
    }

    /// The KMIP failure for this error (2.x reasons; the message layer downgrades per version).
    pub fn to_failure(&self) -> Failure {
        let (reason, message): (u32, String) = match self {
            OpError::InvalidMessage(m) => (rr::INVALID_MESSAGE, m.clone()),
            OpError::InvalidField(m) => (rr::INVALID_FIELD, m.clone()),
            OpError::NotFound => (rr::OBJECT_NOT_FOUND, self.to_string()),
            OpError::ObjectDestroyed => (rr::OBJECT_DESTROYED, self.to_string()),
            OpError::PermissionDenied => (rr::PERMISSION_DENIED, self.to_string()),
            OpError::WrongState => (rr::WRONG_KEY_LIFECYCLE_STATE, self.to_string()),
            OpError::OperationNotSupported => (rr::OPERATION_NOT_SUPPORTED, self.to_string()),
            OpError::FeatureNotSupported(_) => (rr::FEATURE_NOT_SUPPORTED, self.to_string()),
            OpError::KeyFormatNotSupported => (rr::KEY_FORMAT_TYPE_NOT_SUPPORTED, self.to_string()),
            OpError::WrappedAsRegistered => (rr::WRAPPING_OBJECT_NOT_FOUND, self.to_string()),
            OpError::ReadOnlyAttribute(_) => (rr::ATTRIBUTE_READ_ONLY, self.to_string()),
            OpError::AttributeNotFound => (rr::ITEM_NOT_FOUND, self.to_string()),
            OpError::AttributeExists(_) => (rr::ATTRIBUTE_SINGLE_VALUED, self.to_string()),
            OpError::Sensitive => (rr::SENSITIVE, self.to_string()),
            OpError::NotExtractable => (rr::NOT_EXTRACTABLE, self.to_string()),
            OpError::ClearExportRefused => (rr::SENSITIVE, self.to_string()),
            OpError::ClearImportRefused => (rr::PERMISSION_DENIED, self.to_string()),
            OpError::KnownDerivation => (rr::PERMISSION_DENIED, self.to_string()),
            OpError::KeySeparation => (rr::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK, self.to_string()),
            OpError::IncompatibleUsageMask => {
                (rr::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK, self.to_string())
            }
            OpError::NotQuantumSafe => (rr::GENERAL_FAILURE, self.to_string()),
            OpError::RefusedAlgorithm(_) | OpError::Digest(DigestError::Refused(_)) => {
                (rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS, self.to_string())
            }
            OpError::UnsupportedParameters(_) | OpError::Digest(DigestError::Unsupported) => {
                (rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS, self.to_string())
            }
            // The KMIP test cases (CS-BC-M-7) answer an exhausted limit with Permission Denied.
            OpError::UsageLimitExceeded => (rr::PERMISSION_DENIED, self.to_string()),
            // KMIP 2.1 §6.1.2 (and the other operations that store attributes) lists Server
            // Limit Exceeded: the request is well formed, the server will not store that much.
            OpError::AttributesTooLarge(m) => (rr::SERVER_LIMIT_EXCEEDED, m.clone()),
            OpError::InvalidCorrelationValue(m) => (rr::INVALID_CORRELATION_VALUE, m.clone()),
            OpError::ServerLimitExceeded(m) => (rr::SERVER_LIMIT_EXCEEDED, m.clone()),
            OpError::ResponseTooLarge(_) => (rr::RESPONSE_TOO_LARGE, self.to_string()),
            OpError::NotReplicated(uid) => {
                let mut f = Failure::new(rr::GENERAL_FAILURE, self.to_string());
                f.written = Some(uid.clone());
                return f;
            }
            OpError::Cipher(e) => (cipher_reason(e), self.to_string()),
            OpError::Asym(AsymError::Key(_)) => (rr::INVALID_FIELD, self.to_string()),
            OpError::Asym(AsymError::Params(_)) => {
                (rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS, self.to_string())
            }
            OpError::Asym(AsymError::Sign) => (rr::CRYPTOGRAPHIC_FAILURE, self.to_string()),
            OpError::CorruptRecord(uid) => {
                tracing::error!(%uid, "stored attributes do not decode");
                (rr::GENERAL_FAILURE, self.to_string())
            }
            OpError::AccessRecordsUnavailable => (rr::GENERAL_FAILURE, "internal error".into()),
            OpError::ReloadFailed(_) => (rr::GENERAL_FAILURE, self.to_string()),
            OpError::Sealed => (rr::GENERAL_FAILURE, self.to_string()),
            OpError::DualControl(m) => (rr::PERMISSION_DENIED, m.clone()),
            OpError::Custody(m) => (rr::INVALID_FIELD, m.clone()),
            OpError::Store(StoreError::NameTaken) => {
                (rr::NON_UNIQUE_NAME_ATTRIBUTE, "name already in use".into())
            }
            // Mirroring in RPO-zero mode: say what happened; it is not an internal fault.
            OpError::Store(
                e @ (StoreError::WritesRefused
                | StoreError::NotReplicated
                | StoreError::SettingsMismatch(_)
                | StoreError::NodeSettingsMismatch(_)),
            ) => (rr::GENERAL_FAILURE, e.to_string()),
            // A full or failing database filesystem is an operating condition the client
            // should be told about (General Failure is the only reason every version has);
            // the store logged the detail and the operator's remedy where it happened.
            OpError::Store(e @ (StoreError::NoSpace | StoreError::Io)) => {
                (rr::GENERAL_FAILURE, e.to_string())
            }
            // The detail (host, driver message) is logged, not sent.
            OpError::Store(e @ StoreError::Unreachable(_)) => {
                tracing::error!(error = %e, "store: database unreachable");
                (
                    rr::GENERAL_FAILURE,
                    "the key database is unreachable; nothing was written; try again".into(),
                )
            }
            OpError::Store(e) => {
                tracing::error!(error = %e, "store failure");
                (rr::GENERAL_FAILURE, "internal error".into())
            }
            // What the FIPS build does not perform is said, like its cipher refusals.
            OpError::Crypto(e @ CryptoError::NotInModule(_)) => {
                (rr::FEATURE_NOT_SUPPORTED, e.to_string())
            }
            OpError::Crypto(e) => {
                tracing::error!(error = %e, "cryptographic failure");
                (rr::CRYPTOGRAPHIC_FAILURE, "cryptographic failure".into())
            }
        };
        Failure::new(reason, message)
    }
}
