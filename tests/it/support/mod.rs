//! Shared test helpers: the in-process server, KMIP payload builders, the XML vector reader.

pub mod cluster;
pub mod kmip;
pub mod postgres;
pub mod proxy;
pub mod rsyslog;
pub mod server;
pub mod status;
pub mod venv;
pub mod xml;
