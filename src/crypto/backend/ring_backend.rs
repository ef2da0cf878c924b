//! The default build's backend: ring's rustls provider and session ticketer, and random bytes
//! from akm's own CTR_DRBG (crate::crypto::drbg).

use super::Module;
use std::sync::Arc;

/// The rustls provider of this build: ring.
pub fn tls_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS session ticketer (keys rotate every few hours, never written anywhere).
pub fn ticketer() -> Result<Arc<dyn rustls::server::ProducesTickets>, rustls::Error> {
    rustls::crypto::ring::Ticketer::new()
}

/// Fills `out` from the process's SP 800-90A CTR_DRBG.
pub fn fill_random(out: &mut [u8]) {
    crate::crypto::drbg::fill(out);
}

pub(super) fn module() -> Module {
    Module {
        name: "ring",
        version: "0.17".into(),
        fips: false,
    }
}

pub(super) fn module_report() -> super::ModuleReport {
    let not_fips = || Err("the default build has no FIPS module".to_string());
    super::ModuleReport {
        approved_mode: not_fips(),
        // akm's own known-answer tests (crate::crypto::self_test) run at start in both builds.
        self_tests: Ok(()),
    }
}
