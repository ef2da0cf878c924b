//! akm: a KMIP key server. TTLV over mutual TLS on port 5696, keys in SQLite wrapped under a
//! key encryption key, identities from client certificates. The module table in the README's
//! architecture section says what each module owns.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod audit;
pub mod backup;
pub mod certexpiry;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod conformance;
pub mod console;
pub mod crypto;
pub mod daemon;
pub mod error;
pub mod first_start;
pub mod group_commit;
pub mod identity;
pub mod kmip;
pub mod logfile;
pub mod logremote;
pub mod logthrottle;
pub mod metrics;
pub mod mirror;
pub mod node_settings;
pub mod notify;
pub mod ops;
pub mod pki;
pub mod policy;
pub mod primitives;
pub mod reload;
pub mod revocations;
pub mod secret_file;
pub mod server;
pub mod settings_digest;
pub mod status;
pub mod store;
pub mod tls;
pub mod ttlv;
