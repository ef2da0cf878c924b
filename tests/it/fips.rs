//! FIPS mode as an operator and an auditor see it, in whichever flavour this test binary was
//! built: the TLS configurations declare FIPS exactly in the FIPS build (rustls's `fips()`,
//! true only with the aws-lc-rs provider over a module in approved mode); Query's Server
//! Information names the module; `[crypto] require_fips = true` stops a non-FIPS `akm serve`
//! before it listens; and in the FIPS build KEK wrapping is counted by the module's own
//! service indicator as an approved service, while a caller-nonce GCM seal is not.

use crate::cli::write_config;
use crate::support::server::{server_tls, TestServer};
use akm::crypto::backend::{self, FIPS_BUILD};
use akm::kmip::enums::{operation as op, query_function as qf};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv};
use std::process::Command;

#[tokio::test]
async fn tls_is_fips_exactly_in_the_fips_build_and_query_names_the_module() {
    let server = TestServer::start().await;
    assert_eq!(server_tls(&server.ca).fips(), FIPS_BUILD);
    assert_eq!(server.client_tls("alice", &["users"]).fips(), FIPS_BUILD);
    // A real handshake with that client, then the module in Server Information.
    let mut c = server.client("alice", V::V2_1).await;
    let q = c
        .call(
            op::QUERY,
            vec![Ttlv::enumeration(
                Tag::QUERY_FUNCTION,
                qf::QUERY_SERVER_INFORMATION,
            )],
        )
        .await
        .unwrap();
    let name = q
        .child(Tag::SERVER_INFORMATION)
        .and_then(|i| i.child(Tag::SERVER_NAME))
        .and_then(Ttlv::as_text)
        .unwrap()
        .to_owned();
    let module = backend::module();
    assert!(name.contains(&module.describe()), "{name}");
    assert_eq!(name.contains("FIPS approved mode"), FIPS_BUILD, "{name}");
    server.stop().await;
}

#[test]
fn require_fips_stops_a_non_fips_server_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[crypto]\nrequire_fips = true\n");
    std::fs::write(&config, text).unwrap();
    if FIPS_BUILD {
        // The FIPS build meets the requirement and serves.
        let (mut child, port) = crate::cli::serve(&config);
        assert!(port > 0);
        child.kill().unwrap();
        child.wait().unwrap();
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_akm"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("require_fips = true"), "{stderr}");
    assert!(stderr.contains("not the FIPS build"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}

/// The module's own FIPS service indicator (AWS-LC's per-thread counter of approved services
/// completed) around one KEK wrap: it advances, so the wrap ran in the module as an approved
/// service. The KEK id probe, a caller-nonce seal, leaves it where it was: the indicator tells
/// the two apart, so the first assertion means something.
#[cfg(feature = "fips")]
#[test]
#[allow(unsafe_code)] // the module's C indicator API has no safe wrapper in aws-lc-rs
fn kek_wrapping_is_an_approved_service_of_the_module() {
    fn approved_services_during(f: impl FnOnce()) -> u64 {
        // SAFETY: both calls only read and bump a thread-local counter inside the module.
        let before = unsafe { aws_lc_fips_sys::FIPS_service_indicator_before_call() };
        f();
        let after = unsafe { aws_lc_fips_sys::FIPS_service_indicator_after_call() };
        after - before
    }
    aws_lc_rs::try_fips_mode().unwrap();
    let kek = akm::crypto::Kek::from_bytes(&[5u8; 32]).unwrap();
    let mut wrapped = None;
    let counted = approved_services_during(|| wrapped = Some(kek.wrap("uid", 1, b"key").unwrap()));
    assert!(counted >= 1, "KEK wrap was not an approved service");
    let wrapped = wrapped.unwrap();
    let opened = approved_services_during(|| {
        assert_eq!(kek.unwrap("uid", 1, &wrapped).unwrap().as_slice(), b"key");
    });
    assert!(opened >= 1, "KEK unwrap was not an approved service");
    let gcm = akm::crypto::backend::gcm::Aes256Gcm::new_from_slice(&[5u8; 32]).unwrap();
    let probe = approved_services_during(|| {
        gcm.id_probe(b"akm-kek-id").unwrap();
    });
    assert_eq!(probe, 0, "a caller-nonce GCM seal counted as approved");
}
