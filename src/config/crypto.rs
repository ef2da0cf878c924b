//! `[crypto]`: key-handling policy (PCI mode) and the scheduled rotation check.

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
}

impl Default for CryptoConfig {
    fn default() -> Self {
        CryptoConfig {
            pci_mode: false,
            rotation_check_secs: 60,
        }
    }
}
