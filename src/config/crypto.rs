//! `[crypto]`: key-handling policy (PCI mode), the scheduled rotation check, and whether a
//! FIPS build is required.

use serde::{Deserialize, Serialize};

/// `[crypto]`: how keys may leave akm and how often scheduled rotation runs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CryptoConfig {
    /// PCI mode: symmetric keys leave akm only wrapped under another key; a Get without a Key
    /// Wrapping Specification is refused.
    pub pci_mode: bool,
    /// Seconds between checks for keys due for scheduled rotation (Rotate Automatic).
    pub rotation_check_secs: u64,
    /// Refuse to start unless this binary is the FIPS build (its crypto in the AWS-LC-FIPS
    /// module, in approved mode): a guard against installing the default flavour by mistake.
    pub require_fips: bool,
}

impl Default for CryptoConfig {
    fn default() -> Self {
        CryptoConfig {
            pci_mode: false,
            rotation_check_secs: 60,
            require_fips: false,
        }
    }
}
