//! The FIPS build's backend (its rustls provider is in crate::primitives with rustls's FIPS configuration):
//! random bytes from the module's own DRBG (RAND_bytes), and the module's approved-mode and
//! self-test status.

use super::Module;

/// Fills `out` from the module's SP 800-90A DRBG. The module aborts the process rather than
/// return bad output, so an error cannot happen short of a broken module; it is still not
/// ignored.
pub fn fill_random(out: &mut [u8]) {
    use aws_lc_rs::rand::SecureRandom;
    aws_lc_rs::rand::SystemRandom::new()
        .fill(out)
        .expect("the AWS-LC-FIPS module's DRBG refused to generate");
}

pub(super) fn module() -> Module {
    Module {
        name: "AWS-LC-FIPS",
        version: aws_lc_rs::awslc_version().to_string(),
        fips: aws_lc_rs::try_fips_mode().is_ok(),
    }
}

pub(super) fn module_report() -> super::ModuleReport {
    super::ModuleReport {
        approved_mode: aws_lc_rs::try_fips_mode().map_err(str::to_string),
        self_tests: aws_lc_rs::try_fips_self_test()
            .map_err(|_| "BORINGSSL_self_test reported a failure".to_string()),
    }
}
