//! TLS session resumption: a client that reconnects resumes its session (a stateless TLS 1.3
//! ticket) instead of repeating the full handshake, keeps the identity of its certificate on
//! the resumed connection (access decisions and audit records), and after a TLS reload the
//! tickets issued before it are refused (a full handshake follows, and still works); a
//! resumed session whose client certificate has since expired is refused.

use crate::support::kmip::*;
use crate::support::server::{test_settings, AuditSetup, TestServer};
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion as V;
use akm::server::tls;
use rustls::RootCertStore;
use std::sync::Arc;

#[tokio::test]
async fn a_reconnecting_client_resumes_with_its_identity() {
    let server = TestServer::start_audited(AuditSetup::default()).await;
    let alice = server.client_tls("alice", &["users"]);
    let mut first = server.connect(alice.clone(), V::V1_4).await.unwrap();
    assert!(
        !first.resumed(),
        "the first connection makes a full handshake"
    );
    // Reading a response also takes in the tickets the server sent after the handshake.
    let key = create_key(&mut first, Some("resumed-key")).await;
    drop(first);

    let mut second = server.connect(alice.clone(), V::V1_4).await.unwrap();
    let got = second.call(op::GET, uid(&key)).await.unwrap();
    assert!(second.resumed(), "the reconnection resumes the session");
    assert_eq!(key_bytes(&got).len(), 32);

    // The resumed session is alice's: another identity's key is still refused to her.
    let mut bob = server.client("bob", V::V1_4).await;
    let bobs = create_key(&mut bob, None).await;
    let refused = second.call(op::GET, uid(&bobs)).await;
    assert_ne!(reason(refused), 0);
    drop(second);

    let journal = std::fs::read_to_string(server.journal_path()).unwrap();
    let gets: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains("operation=Get ") && l.contains(&format!("uid={key} ")))
        .collect();
    assert!(
        gets.iter()
            .any(|l| l.contains("user=alice ") && l.contains("outcome=success")),
        "the resumed Get is recorded as alice's: {gets:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_resumed_session_of_an_expired_certificate_is_refused() {
    let server = TestServer::start_audited(AuditSetup::default()).await;
    let now = std::time::SystemTime::now();
    let validity = akm::pki::Validity {
        not_before: now - std::time::Duration::from_secs(3600),
        not_after: now + std::time::Duration::from_secs(3),
    };
    let issued = server
        .ca
        .issue_client("shortlived", &["users".to_string()], validity)
        .unwrap();
    let tls = server.client_tls_for(&issued);
    let mut c = server.connect(tls.clone(), V::V1_4).await.unwrap();
    let key = create_key(&mut c, None).await;
    drop(c);
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    // The ticket still decrypts, so the handshake resumes; the server then sees the expired
    // certificate and closes the connection before any request runs.
    let mut c = server.connect(tls, V::V1_4).await.unwrap();
    assert!(
        c.resumed(),
        "the handshake resumes (rustls does not check expiry then)"
    );
    assert!(
        c.call(op::GET, uid(&key)).await.is_err(),
        "an expired certificate resumed its session"
    );
    let journal = std::fs::read_to_string(server.journal_path()).unwrap();
    assert!(
        journal.contains("detail=client\\x20certificate\\x20expired"),
        "no audit record of the refusal"
    );
    server.stop().await;
}

#[tokio::test]
async fn tickets_issued_before_a_tls_reload_are_refused() {
    let ca = akm::pki::Ca::generate("akm test CA").unwrap();
    let config = |ca: &akm::pki::Ca| {
        let cert = ca
            .issue_server(&["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        tls::server_config_from(
            vec![cert.cert_der().unwrap()],
            cert.key_der().unwrap(),
            roots,
            vec![],
        )
        .unwrap()
    };
    let handle = Arc::new(tls::TlsHandle::new(config(&ca)));
    let server = TestServer::start_reloadable(
        ca,
        handle.clone(),
        None,
        test_settings(),
        akm::policy::Settings::default(),
    )
    .await;
    let alice = server.client_tls("alice", &["users"]);
    let mut c = server.connect(alice.clone(), V::V1_4).await.unwrap();
    let key = create_key(&mut c, None).await;
    drop(c);
    // A reload (new CRLs, say) builds a new configuration with a new ticket key.
    handle.replace(config(&server.ca));
    let mut c = server.connect(alice, V::V1_4).await.unwrap();
    c.call(op::GET, uid(&key)).await.unwrap();
    assert!(!c.resumed(), "a ticket from before the reload was accepted");
    server.stop().await;
}
