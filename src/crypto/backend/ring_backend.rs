//! The default build's backend: random bytes from akm's own CTR_DRBG (crate::crypto::drbg)
//! and the module identity (ring, no FIPS module).

use super::Module;

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
