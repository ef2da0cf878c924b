//! Malformed input against the real server: broken framing closes only that connection,
//! malformed TTLV inside a well-framed message gets Invalid Message, and in every case the
//! server keeps serving other clients.

use crate::support::kmip::*;
use crate::support::server::{test_settings, TestServer};
use akm::client::{request, response_items, ClientError};
use akm::kmip::enums::{operation as op, result_reason as rr};
use akm::kmip::ProtocolVersion as V;
use akm::pki::{Ca, Validity};
use akm::ttlv::{Tag, Ttlv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A valid request's bytes (Discover Versions in 1.4).
fn valid_request() -> Vec<u8> {
    request(V::V1_4, &[(op::DISCOVER_VERSIONS, vec![])]).encode()
}

/// The first item's Result Reason of a response.
fn first_reason(response: &Ttlv) -> u32 {
    reason(
        response_items(response)
            .unwrap()
            .into_iter()
            .next()
            .unwrap(),
    )
}

async fn still_serves(server: &TestServer) {
    let mut c = server.client("healthy", V::V1_4).await;
    create_key(&mut c, None).await;
}

#[tokio::test]
async fn malformed_ttlv_gets_invalid_message_and_the_connection_carries_on() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    let good = valid_request();
    // Non-zero padding in the Protocol Version Major integer.
    let mut bad_padding = good.clone();
    bad_padding[24 + 12] = 0xFF;
    // Batch Count as a Text String (wrong type for a known tag).
    let wrong_type = Ttlv::structure(
        Tag::REQUEST_MESSAGE,
        vec![
            Ttlv::structure(
                Tag::REQUEST_HEADER,
                vec![V::V1_4.to_ttlv(), Ttlv::text(Tag::BATCH_COUNT, "1")],
            ),
            Ttlv::structure(
                Tag::BATCH_ITEM,
                vec![Ttlv::enumeration(Tag::OPERATION, op::DISCOVER_VERSIONS)],
            ),
        ],
    )
    .encode();
    // Batch Count that does not match the items.
    let mut miscounted = request(V::V1_4, &[(op::DISCOVER_VERSIONS, vec![])]);
    if let akm::ttlv::Value::Structure(c) = &mut miscounted.value {
        if let akm::ttlv::Value::Structure(h) = &mut c[0].value {
            h[1] = Ttlv::integer(Tag::BATCH_COUNT, 1000);
        }
    }
    // A child longer than its parent.
    let mut overrun = good.clone();
    overrun[16 + 7] = 0xF0;
    // No Request Header at all.
    let headless = Ttlv::structure(Tag::REQUEST_MESSAGE, vec![]).encode();
    for (what, bytes) in [
        ("bad padding", bad_padding),
        ("wrong type", wrong_type),
        ("batch count", miscounted.encode()),
        ("child overrun", overrun),
        ("no header", headless),
    ] {
        let response = c
            .send_bytes(&bytes)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(first_reason(&response), rr::INVALID_MESSAGE, "{what}");
    }
    // The same connection still works.
    let ok = c.send_bytes(&good).await.unwrap();
    assert!(response_items(&ok).unwrap()[0].is_ok());
    server.stop().await;
}

#[tokio::test]
async fn ten_thousand_deep_nesting_is_refused_without_harm() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    let mut inner: Vec<u8> = Vec::new();
    for _ in 0..10_000 {
        let mut item = vec![0x42, 0x00, 0x78, 0x01];
        item.extend_from_slice(&(inner.len() as u32).to_be_bytes());
        item.extend_from_slice(&inner);
        inner = item;
    }
    let response = c.send_bytes(&inner).await.unwrap();
    assert_eq!(first_reason(&response), rr::INVALID_MESSAGE);
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn unsupported_protocol_version_is_answered_in_a_supported_one() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    for (asked, answered) in [
        (V::new(99, 0), V::V2_1),
        (V::new(1, 9), V::V1_4),
        (V::new(0, 0), V::V1_0),
    ] {
        let response = c
            .send(&request(asked, &[(op::DISCOVER_VERSIONS, vec![])]))
            .await
            .unwrap();
        let version = response_version(&response);
        assert_eq!(version, Some(answered), "asked {asked}");
        let expected = if answered.is_v2() {
            rr::UNSUPPORTED_PROTOCOL_VERSION
        } else {
            rr::INVALID_MESSAGE
        };
        assert_eq!(first_reason(&response), expected);
    }
    server.stop().await;
}

#[tokio::test]
async fn oversized_or_truncated_frames_close_only_that_connection() {
    let server = TestServer::start().await;
    // Declared length 0xFFFFFFFF: refused before allocating, connection closed.
    let mut c = server.client("alice", V::V1_4).await;
    let huge = [0x42, 0x00, 0x78, 0x01, 0xFF, 0xFF, 0xFF, 0xFF];
    assert!(matches!(c.send_bytes(&huge).await, Err(ClientError::Io(_))));
    // 2 MiB really sent, over the 1 MiB limit.
    let mut c = server.client("alice", V::V1_4).await;
    let mut big = vec![0x42, 0x00, 0x78, 0x01];
    big.extend_from_slice(&(2u32 << 20).to_be_bytes());
    big.resize(8 + (2 << 20), 0);
    assert!(c.send_bytes(&big).await.is_err());
    // A header whose top item is not a structure.
    let mut c = server.client("alice", V::V1_4).await;
    assert!(c
        .send_bytes(&[0x42, 0x00, 0x78, 0x07, 0, 0, 0, 8])
        .await
        .is_err());
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn truncated_request_then_close_and_idle_peers_are_dropped() {
    let server = TestServer::start().await;
    let good = valid_request();
    // Send all but the last byte, then close: the server must just drop the connection.
    {
        let mut c = server.client("alice", V::V1_4).await;
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            c.send_bytes(&good[..good.len() - 1]),
        )
        .await;
    }
    // A raw TCP peer that never starts TLS is closed after the handshake timeout.
    let mut raw = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(6), raw.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "idle pre-handshake peer not closed"
    );
    // Plaintext HTTP on the KMIP port: handshake fails, nothing else is affected.
    let mut http = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), http.read(&mut buf)).await;
    still_serves(&server).await;
    server.stop().await;
}

/// Whether the server refuses a client presenting this TLS config.
async fn refused(server: &TestServer, tls: std::sync::Arc<rustls::ClientConfig>) -> bool {
    match server.connect(tls, V::V1_4).await {
        Err(_) => true,
        // TLS 1.3 reports the client-certificate rejection on the first read.
        Ok(mut c) => c.send_bytes(&valid_request()).await.is_err(),
    }
}

#[tokio::test]
async fn clients_without_a_trusted_certificate_are_refused() {
    let server = TestServer::start().await;
    let foreign = Ca::generate("someone else").unwrap();
    let issued = foreign
        .issue_client("mallory", &["users".into()], Validity::days_from_now(1))
        .unwrap();
    assert!(
        refused(&server, server.client_tls_for(&issued)).await,
        "a certificate from a foreign CA was accepted"
    );
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    let expired = server
        .ca
        .issue_client(
            "late",
            &["users".into()],
            Validity {
                not_before: now - 3 * day,
                not_after: now - day,
            },
        )
        .unwrap();
    assert!(
        refused(&server, server.client_tls_for(&expired)).await,
        "an expired certificate was accepted"
    );
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_revoked_client_certificate_is_refused_through_the_configured_crl() {
    // The TLS configuration is read from PEM files, as `akm serve` reads them.
    let ca = Ca::generate("akm test CA").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let revoked = ca
        .issue_client("revoked", &["users".into()], Validity::days_from_now(1))
        .unwrap();
    let serial = akm::identity::principal_from_der(&revoked.cert_der().unwrap())
        .unwrap()
        .serial;
    let server_cert = ca
        .issue_server(&["localhost".into(), "127.0.0.1".into()])
        .unwrap();
    let file = |name: &str| dir.path().join(name);
    std::fs::write(file("ca.crt"), ca.cert_pem()).unwrap();
    std::fs::write(file("server.crt"), &server_cert.cert_pem).unwrap();
    akm::secret_file::write_new(&file("server.key"), server_cert.key_pem.as_bytes()).unwrap();
    std::fs::write(
        file("revoked.crl"),
        ca.revocation_list(&[serial], 7).unwrap(),
    )
    .unwrap();
    let tls = akm::server::tls::server_config(
        &file("server.crt"),
        &file("server.key"),
        &file("ca.crt"),
        &[file("revoked.crl")],
    )
    .unwrap();
    let server = TestServer::start_with_tls(ca, tls, test_settings()).await;
    assert!(
        refused(&server, server.client_tls_for(&revoked)).await,
        "a revoked certificate was accepted"
    );
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_and_existing_ones_keep_working() {
    let mut settings = test_settings();
    settings.max_connections = 2;
    let server = TestServer::start_with(settings).await;
    let mut first = server.client("alice", V::V1_4).await;
    let mut second = server.client("bob", V::V1_4).await;
    // Let the server count both before the third arrives.
    first.send_bytes(&valid_request()).await.unwrap();
    second.send_bytes(&valid_request()).await.unwrap();
    let third = server.client_tls("carol", &["users"]);
    assert!(
        refused(&server, third).await,
        "a third connection was served"
    );
    create_key(&mut first, None).await;
    create_key(&mut second, None).await;
    drop(first);
    // Once a slot is free, new clients are served again.
    let mut served = false;
    for _ in 0..50 {
        let tls = server.client_tls("carol", &["users"]);
        if !refused(&server, tls).await {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(served, "the freed slot was never reused");
    server.stop().await;
}
