//! Certificate hygiene at run time: a CRL that grows is picked up by a reload (the Reload TLS
//! administration operation, as `akm tls reload` and SIGHUP do) without a restart, a broken
//! reload keeps the previous configuration, and CA pinning narrows the client CA bundle.

use crate::support::kmip::*;
use crate::support::server::{test_settings, TestServer};
use akm::config::TlsConfig;
use akm::kmip::enums::{operation as op, result_reason as rr};
use akm::kmip::extension as ext;
use akm::kmip::ProtocolVersion as V;
use akm::pki::{Ca, Issued, Validity};
use akm::policy::Settings;
use akm::server::tls::{self, TlsHandle};
use akm::tls::TlsError;
use std::path::Path;
use std::sync::Arc;

/// Writes the CA (with its key, as `akm init` does), the server certificate and an empty
/// CRL into `dir`, and returns the `[tls]` section naming them.
fn write_pki(dir: &Path, ca: &Ca) -> TlsConfig {
    let server_cert = ca
        .issue_server(&["localhost".into(), "127.0.0.1".into()])
        .unwrap();
    std::fs::write(dir.join("ca.crt"), ca.cert_pem()).unwrap();
    akm::secret_file::write_new(&dir.join("ca.key"), ca.key_pem().as_bytes()).unwrap();
    std::fs::write(dir.join("server.crt"), &server_cert.cert_pem).unwrap();
    akm::secret_file::write_new(&dir.join("server.key"), server_cert.key_pem.as_bytes()).unwrap();
    akm::pki::revoke(dir, &dir.join("ca.crl"), &[]).unwrap();
    TlsConfig {
        certs_dir: dir.to_owned(),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
        client_ca: dir.join("ca.crt"),
        crls: vec![dir.join("ca.crl")],
        server_names: Vec::new(),
        client_ca_fingerprints: Vec::new(),
        ..TlsConfig::default()
    }
}

async fn start(ca: Ca, config: &TlsConfig) -> TestServer {
    let handle = Arc::new(TlsHandle::from_config(config).unwrap());
    let (h, c) = (handle.clone(), config.clone());
    let reload = akm::ops::Reloader(Arc::new(move |_: &akm::ops::Ctx| {
        h.reload_from(&c)
            .map(|()| Vec::new())
            .map_err(|e| e.to_string())
    }));
    TestServer::start_reloadable(
        ca,
        handle,
        Some(reload),
        test_settings(),
        Settings::default(),
    )
    .await
}

fn issue(ca: &Ca, cn: &str, ous: &[&str]) -> Issued {
    let ous: Vec<String> = ous.iter().map(|s| s.to_string()).collect();
    ca.issue_client(cn, &ous, Validity::days_from_now(1))
        .unwrap()
}

fn serial(issued: &Issued) -> String {
    akm::identity::principal_from_der(&issued.cert_der().unwrap())
        .unwrap()
        .serial
}

/// True if the server refuses a connection with `issued` (at the handshake, or for TLS 1.3
/// on the first exchange).
async fn refused(server: &TestServer, issued: &Issued) -> bool {
    match server.connect(server.client_tls_for(issued), V::V1_4).await {
        Err(_) => true,
        Ok(mut c) => c.call(op::QUERY, vec![]).await.is_err(),
    }
}

#[tokio::test]
async fn a_reload_picks_up_a_revocation_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate("akm test CA").unwrap();
    let config = write_pki(dir.path(), &ca);
    let carol = issue(&ca, "carol", &["users"]);
    let dave = issue(&ca, "dave", &["users"]);
    let admin = issue(&ca, "admin", &["admins"]);
    let server = start(ca, &config).await;
    let mut admin_conn = server
        .connect(server.client_tls_for(&admin), V::V1_4)
        .await
        .unwrap();
    assert!(!refused(&server, &carol).await);

    akm::pki::revoke(&config.certs_dir, &config.crls[0], &[serial(&carol)]).unwrap();
    // Not yet reloaded: carol still gets in.
    assert!(!refused(&server, &carol).await);
    // Only an administrator may reload.
    let mut dave_conn = server
        .connect(server.client_tls_for(&dave), V::V1_4)
        .await
        .unwrap();
    assert_eq!(
        reason(dave_conn.call(ext::OP_RELOAD_TLS, vec![]).await),
        rr::PERMISSION_DENIED
    );
    admin_conn.call(ext::OP_RELOAD_TLS, vec![]).await.unwrap();
    assert!(
        refused(&server, &carol).await,
        "a revoked certificate got in"
    );
    assert!(!refused(&server, &dave).await);
    // Established connections of certificates still valid carry on.
    create_key(&mut admin_conn, None).await;

    // A reload that fails (unreadable CRL) keeps the configuration in force.
    std::fs::write(&config.crls[0], "not a CRL").unwrap();
    let failed = admin_conn.call(ext::OP_RELOAD_TLS, vec![]).await;
    assert_eq!(reason(failed), rr::GENERAL_FAILURE);
    assert!(refused(&server, &carol).await);
    assert!(!refused(&server, &dave).await);
    server.stop().await;
}

#[tokio::test]
async fn reload_without_a_reloader_is_not_supported() {
    let server = TestServer::start().await;
    let mut admin = server
        .connect(server.client_tls("admin", &["admins"]), V::V1_4)
        .await
        .unwrap();
    assert_eq!(
        reason(admin.call(ext::OP_RELOAD_TLS, vec![]).await),
        rr::FEATURE_NOT_SUPPORTED
    );
    server.stop().await;
}

fn fingerprint(ca: &Ca) -> String {
    hex::encode(akm::crypto::backend::prim::digest::digest(
        &akm::crypto::backend::prim::digest::SHA256,
        ca.cert_der().as_ref(),
    ))
}

#[tokio::test]
async fn pinning_narrows_the_client_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate("akm test CA").unwrap();
    let other = Ca::generate("partner CA").unwrap();
    let mut config = write_pki(dir.path(), &ca);
    // The bundle trusts both CAs; the pin keeps only the partner's.
    let bundle = format!("{}{}", ca.cert_pem(), other.cert_pem());
    std::fs::write(&config.client_ca, bundle).unwrap();
    config.crls.clear();
    let ours = issue(&ca, "alice", &["users"]);
    let theirs = issue(&other, "partner", &["users"]);
    config.client_ca_fingerprints = vec![fingerprint(&other)];
    let server = start(ca, &config).await;
    assert!(refused(&server, &ours).await, "an unpinned CA was trusted");
    assert!(!refused(&server, &theirs).await);
    server.stop().await;

    // A pin that matches no CA of the bundle is a configuration error.
    let stranger = Ca::generate("stranger").unwrap();
    config.client_ca_fingerprints = vec![fingerprint(&stranger)];
    let e = tls::from_config(&config).unwrap_err();
    assert!(matches!(e, TlsError::NoPinnedCa { .. }), "{e:?}");
}

#[tokio::test]
async fn revoking_keeps_earlier_serials_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate("akm test CA").unwrap();
    let config = write_pki(dir.path(), &ca);
    let crl = &config.crls[0];
    let all = akm::pki::revoke(dir.path(), crl, &["0a".into()]).unwrap();
    assert_eq!(all, ["0a"]);
    let all = akm::pki::revoke(dir.path(), crl, &["000b".into(), "0a".into()]).unwrap();
    assert_eq!(all, ["0a", "0b"]);
    assert!(matches!(
        akm::pki::revoke(dir.path(), crl, &["xyz".into()]),
        Err(akm::pki::PkiError::InvalidSerial { .. })
    ));
    std::fs::write(crl, "garbage").unwrap();
    assert!(akm::pki::revoke(dir.path(), crl, &[]).is_err());
    let cert = dir.path().join("carol.crt");
    let carol = issue(&ca, "carol", &[]);
    std::fs::write(&cert, &carol.cert_pem).unwrap();
    assert_eq!(
        akm::pki::serial_of_cert_file(&cert).unwrap(),
        serial(&carol)
    );
}

#[tokio::test]
async fn with_crls_a_client_ca_without_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate("akm test CA").unwrap();
    let other = Ca::generate("partner CA").unwrap();
    let config = write_pki(dir.path(), &ca);
    // Both CAs trusted, a CRL only for ours: the partner's clients' status is unknown.
    let bundle = format!("{}{}", ca.cert_pem(), other.cert_pem());
    std::fs::write(&config.client_ca, bundle).unwrap();
    let ours = issue(&ca, "alice", &["users"]);
    let theirs = issue(&other, "partner", &["users"]);
    let server = start(ca, &config).await;
    assert!(!refused(&server, &ours).await);
    assert!(
        refused(&server, &theirs).await,
        "unknown revocation status was accepted"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_open_connection_of_a_certificate_revoked_since_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate("akm test CA").unwrap();
    let config = write_pki(dir.path(), &ca);
    let carol = issue(&ca, "carol", &["users"]);
    let admin = issue(&ca, "admin", &["admins"]);
    let server = start(ca, &config).await;
    let mut carol_conn = server
        .connect(server.client_tls_for(&carol), V::V1_4)
        .await
        .unwrap();
    let mut admin_conn = server
        .connect(server.client_tls_for(&admin), V::V1_4)
        .await
        .unwrap();
    create_key(&mut carol_conn, None).await;
    akm::pki::revoke(&config.certs_dir, &config.crls[0], &[serial(&carol)]).unwrap();
    admin_conn.call(ext::OP_RELOAD_TLS, vec![]).await.unwrap();
    // Carol's connection was made before the revocation: her next request ends it.
    assert!(carol_conn.call(op::QUERY, vec![]).await.is_err());
    admin_conn.call(op::QUERY, vec![]).await.unwrap();
    server.stop().await;
}
