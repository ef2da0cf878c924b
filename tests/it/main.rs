//! akm's integration tests: one test binary, shared helpers in `support`. Each test starts
//! the real server in-process on port 0 over real TLS with certificates generated at test time.

mod bad_input;
mod cli;
mod interop;
mod ops;
mod pykmip;
mod pykmip_suite;
mod storage;
mod support;
mod vectors;
