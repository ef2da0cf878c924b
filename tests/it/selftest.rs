//! The start-up self-tests as an operator sees them: `akm serve` with one known answer
//! corrupted (through the AKM_SELFTEST_CORRUPT test hook) refuses to start, names the failed
//! test, and never listens; with nothing corrupted the same directory serves.

use crate::cli::{serve, write_config};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_akm");

#[test]
fn a_corrupted_self_test_vector_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    for test in akm::crypto::selftest::TESTS {
        if akm::crypto::backend::FIPS_BUILD && *test == "drbg" {
            continue; // the FIPS build draws from the module's DRBG, which tests itself
        }
        let out = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .env(akm::crypto::selftest::CORRUPT_ENV, test)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{test}: {stderr}");
        assert!(
            stderr.contains(&format!("cryptographic self-test failed: {test}")),
            "{test}: {stderr}"
        );
        assert!(!stdout.contains("listening"), "{test}: {stdout}");
    }
    // Without the hook the same configuration starts and serves.
    let (mut child, port) = serve(&config);
    assert!(port > 0);
    child.kill().unwrap();
    child.wait().unwrap();
}
