//! akm's integration tests: one test binary, shared helpers in `support`. Each test starts
//! the real server in-process on port 0 over real TLS with certificates generated at test time.

mod access;
mod audit;
mod audit_cli;
mod audit_disk_full;
mod audit_leak;
mod audit_syslog;
mod bad_input;
mod bad_inputs_catalogue;
mod baseline_ops;
mod batch_undo;
mod cli;
mod cli_access;
mod conformance;
mod conformance_cli;
mod crash;
mod interop;
mod key_wrapping;
mod limits;
mod locate_placeholder;
mod mirror;
mod mirror_failover;
mod ops;
mod pykmip;
mod pykmip_acl;
mod pykmip_suite;
mod register_objects;
mod server_attributes;
mod storage;
mod store_disk_full;
mod support;
mod tls_reload;
mod ttlv_roundtrip;
mod vectors;
