//! The cryptographic library of this build, chosen once: ring in the default build
//! (`ring-backend`), aws-lc-rs over the AWS-LC-FIPS module in the `fips` build. Owns that
//! choice: the library's ring-compatible API, re-exported whole, and the rustls provider and
//! session ticketer of the same library. A leaf, so that modules below `crypto` (config,
//! identity, tls) hash and build TLS configurations through the build's library without
//! naming `ring` or `aws_lc_rs`; `crypto::backend` builds everything else on it.

#[cfg(all(feature = "fips", feature = "ring-backend"))]
compile_error!("the `fips` and `ring-backend` features exclude each other: build the FIPS flavour with `--no-default-features --features fips`");
#[cfg(not(any(feature = "fips", feature = "ring-backend")))]
compile_error!("akm needs one crypto backend: the default `ring-backend` feature or `fips`");

#[cfg(feature = "fips")]
pub use aws_lc_rs::*;
#[cfg(feature = "ring-backend")]
pub use ring::*;

use std::sync::Arc;

/// The rustls provider of this build: ring's, or the FIPS provider over the module.
pub fn tls_provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[cfg(feature = "ring-backend")]
    return Arc::new(rustls::crypto::ring::default_provider());
    #[cfg(feature = "fips")]
    return Arc::new(rustls::crypto::default_fips_provider());
}

/// The TLS session ticketer of this build (keys rotate every few hours, never written).
pub fn ticketer() -> Result<Arc<dyn rustls::server::ProducesTickets>, rustls::Error> {
    #[cfg(feature = "ring-backend")]
    return rustls::crypto::ring::Ticketer::new();
    #[cfg(feature = "fips")]
    return rustls::crypto::aws_lc_rs::Ticketer::new();
}
