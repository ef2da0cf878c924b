//! akm: a KMIP key server. TTLV over mutual TLS on port 5696, keys in SQLite wrapped under a
//! key encryption key, identities from client certificates. See ARCHITECTURE in the README for
//! what each module owns.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod identity;
pub mod kmip;
pub mod pki;
pub mod secret_file;
pub mod ttlv;
