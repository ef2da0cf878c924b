//! The request and attribute limits of `[server]`: their defaults and the bounds validation
//! enforces, in one place read by the config's defaults and messages and by the operations
//! that apply them.

/// Highest value `server.max_attribute_bytes` and `server.max_object_attribute_bytes` accept.
pub const MAX_ATTRIBUTE_BYTES_CAP: usize = 1024 * 1024;
/// Lowest value either accepts.
pub const MIN_ATTRIBUTE_BYTES: usize = 1024;
/// Default `server.max_attribute_bytes`: the largest stored encoding of one attribute a
/// client may set.
pub const DEFAULT_MAX_ATTRIBUTE_BYTES: usize = 64 * 1024;
/// Default `server.max_object_attribute_bytes`: the largest stored record client-supplied
/// attributes may make.
pub const DEFAULT_MAX_OBJECT_ATTRIBUTE_BYTES: usize = 256 * 1024;

// The relationships the limits rely on, checked when akm is compiled.
const _: () = assert!(MIN_ATTRIBUTE_BYTES <= DEFAULT_MAX_ATTRIBUTE_BYTES);
const _: () = assert!(DEFAULT_MAX_ATTRIBUTE_BYTES <= DEFAULT_MAX_OBJECT_ATTRIBUTE_BYTES);
const _: () = assert!(DEFAULT_MAX_OBJECT_ATTRIBUTE_BYTES <= MAX_ATTRIBUTE_BYTES_CAP);

/// The configured limits on stored attribute bytes (`[server]` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttributeLimits {
    /// `server.max_attribute_bytes`: one attribute's stored encoding.
    pub per_attribute: usize,
    /// `server.max_object_attribute_bytes`: the whole stored record.
    pub per_object: usize,
}

impl Default for AttributeLimits {
    fn default() -> Self {
        AttributeLimits {
            per_attribute: DEFAULT_MAX_ATTRIBUTE_BYTES,
            per_object: DEFAULT_MAX_OBJECT_ATTRIBUTE_BYTES,
        }
    }
}

/// The most batch items one message may hold, whatever the configuration: the highest
/// `server.max_batch_items` accepted and what the KMIP decoder refuses beyond.
pub const MAX_BATCH_ITEMS_CAP: usize = 1024;

/// The default of `server.max_locate_items`. Real clients either page (libkmip asks for 16
/// at a time) or Locate by name and get one or a few (vSphere, PyKMIP's examples), so a cap
/// this high only ever shortens a Locate that lists a whole large store: about 500 KB of
/// identifiers. KMIP 1.4 §4.9 lets a server impose an internal maximum without Maximum Items,
/// and with it returns "up to" Maximum Items; Located Items (2.x) still counts every match,
/// so a client can page through the rest with Offset Items.
pub const DEFAULT_MAX_LOCATE_ITEMS: usize = 10_000;

/// The highest `server.max_locate_items` accepted (a response of about 5 MB).
pub const MAX_LOCATE_ITEMS_CAP: usize = 100_000;

/// Default `server.max_request_cost`: about four seconds of one core.
pub const DEFAULT_MAX_REQUEST_COST: u64 = 4_000;
/// Default `server.max_response_bytes`: 4 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 << 20;
/// Default `server.max_pbkdf2_iterations`.
pub const DEFAULT_MAX_PBKDF2_ITERATIONS: u32 = 1_000_000;
/// The most PBKDF2 iterations one request may ask for, so a request cannot pin a thread: the
/// highest `server.max_pbkdf2_iterations` accepts, and what `crypto::kdf` refuses beyond.
pub const MAX_PBKDF2_ITERATIONS_CAP: u32 = 10_000_000;
