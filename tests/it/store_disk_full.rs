//! The database on a full disk: the server's data directory is on a small tmpfs (root and
//! CAP_SYS_ADMIN needed; skipped with a message otherwise) while the audit journal is on the
//! ordinary disk. When the tmpfs fills up, writes fail with a clear KMIP error and nothing
//! acknowledged is lost; reads give the right bytes or a clear error; when space returns, writes resume, and the
//! database passes SQLite's integrity check.

use crate::audit_disk_full::{fill, Tmpfs};
use crate::support::kmip::*;
use crate::support::server::{AuditSetup, TestServer};
use akm::client::ClientError;
use akm::kmip::enums::{operation as op, result_reason as rr};
use akm::kmip::ProtocolVersion as V;

#[tokio::test]
async fn a_full_database_disk_fails_writes_clearly_loses_nothing_and_recovers() {
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let Some(_tmpfs) = Tmpfs::mount(&mnt, "2m") else {
        return;
    };
    let dir = tempfile::tempdir_in(&mnt).unwrap();
    let mut server = TestServer::start_in(
        dir,
        AuditSetup {
            journal: Some(base.path().join("audit.log")),
            ..AuditSetup::default()
        },
    )
    .await;
    let db = server.db_path();
    let mut c = server.client("alice", V::V1_4).await;
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    let register = |i: u32| {
        let key: Vec<u8> = (0..32u32).map(|b| (b * 7 + i) as u8).collect();
        (key.clone(), register_key_payload(V::V1_4, &key, &[]))
    };
    let (k, p) = register(0);
    acked.push((uid_of(&c.call(op::REGISTER, p).await.unwrap()), k));

    let filler = mnt.join("filler");
    fill(&filler);
    let mut refused = None;
    for i in 1..2000 {
        let (k, p) = register(i);
        match c.call(op::REGISTER, p).await {
            Ok(r) => acked.push((uid_of(&r), k)),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("the database never filled up");
    match &refused {
        ClientError::Failed { reason, message } => {
            assert_eq!(*reason, rr::GENERAL_FAILURE, "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("a full disk should be a KMIP failure, got {other:?}"),
    }
    // While full: a read gives the right bytes or a clear failure, never wrong bytes (SQLite
    // may need to write even to read, e.g. its WAL index), and writes keep failing cleanly.
    match c.call(op::GET, uid(&acked[0].0)).await {
        Ok(got) => assert_eq!(key_bytes(&got), acked[0].1),
        Err(ClientError::Failed { reason, .. }) => assert_eq!(reason, rr::GENERAL_FAILURE),
        Err(e) => panic!("read on a full disk: {e:?}"),
    }
    let (_, p) = register(9999);
    assert!(matches!(
        c.call(op::REGISTER, p).await,
        Err(ClientError::Failed { .. })
    ));

    // Space returns: writes resume on the same connection.
    std::fs::remove_file(&filler).unwrap();
    let (k, p) = register(10_000);
    acked.push((uid_of(&c.call(op::REGISTER, p).await.unwrap()), k));
    for (u, bytes) in &acked {
        let got = c.call(op::GET, uid(u)).await.unwrap();
        assert_eq!(&key_bytes(&got), bytes, "key {u}");
    }
    let ca = std::mem::replace(&mut server.ca, akm::pki::Ca::generate("unused").unwrap());
    let dir = server.stop().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    // And everything is still there after a restart.
    let server = TestServer::start_with_dir(ca, dir).await;
    let mut c = server.client("alice", V::V1_4).await;
    for (u, bytes) in &acked {
        let got = c.call(op::GET, uid(u)).await.unwrap();
        assert_eq!(&key_bytes(&got), bytes, "key {u} after restart");
    }
    server.stop().await;
}
