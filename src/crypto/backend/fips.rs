//! The FIPS build's backend: the aws-lc-rs rustls provider with rustls's FIPS configuration,
//! random bytes from the module's own DRBG (RAND_bytes), and the module's approved-mode and
//! self-test status.

use super::Module;
use std::sync::Arc;

/// The rustls provider of this build: aws-lc-rs over the AWS-LC-FIPS module, whose
/// `fips()` is true (rustls then reports `ServerConfig::fips()`).
pub fn tls_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::default_fips_provider())
}

/// The TLS session ticketer, from the module (keys rotate, never written anywhere).
pub fn ticketer() -> Result<Arc<dyn rustls::server::ProducesTickets>, rustls::Error> {
    rustls::crypto::aws_lc_rs::Ticketer::new()
}

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
