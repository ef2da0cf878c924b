//! The database on a full disk: the server's data directory is on a small tmpfs (root and
//! CAP_SYS_ADMIN needed; skipped with a message otherwise) while the audit journal is on the
//! ordinary disk. When the tmpfs fills up, writes fail with a clear KMIP error and nothing
//! acknowledged is lost; reads give the right bytes or a clear error; when space returns, writes resume, and the
//! database passes SQLite's integrity check.

use crate::audit_disk_full::{fill, Tmpfs};
use crate::support::kmip::*;
use crate::support::server::{AuditSetup, TestServer};
use akm::client::ClientError;
use akm::kmip::attributes::Attr;
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
    // Served once, so its Fresh attribute is already false and a Get of it writes nothing.
    let served = acked[0].clone();
    assert_eq!(
        key_bytes(&c.call(op::GET, uid(&served.0)).await.unwrap()),
        served.1
    );
    // Never served: its first Get must record Fresh = false (KMIP 2.1 §4.24), a write.
    let (k, p) = register(1);
    let fresh = (uid_of(&c.call(op::REGISTER, p).await.unwrap()), k);
    acked.push(fresh.clone());

    let filler = mnt.join("filler");
    fill(&filler);
    let mut refused = None;
    for i in 2..2000 {
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
            assert_eq!(
                message,
                "key store: no space left on the database filesystem; nothing was written"
            );
        }
        other => panic!("a full disk should be a KMIP failure, got {other:?}"),
    }
    // While full, reads that write nothing are served: the database's readers do not need
    // space (the WAL and its index only grow on commit).
    let got = c.call(op::GET, uid(&served.0)).await.unwrap();
    assert_eq!(key_bytes(&got), served.1);
    let found = c
        .call(
            op::LOCATE,
            filters(V::V1_4, &[Attr::new("Name", name("no-such-name"))]),
        )
        .await
        .unwrap();
    assert!(uids_of(&found).is_empty());
    // The first Get of a Fresh key has to record that it was served; that write cannot be
    // made, so the Get is refused (rather than serving the key and leaving Fresh = true).
    match c.call(op::GET, uid(&fresh.0)).await {
        Err(ClientError::Failed { reason, message }) => {
            assert_eq!(reason, rr::GENERAL_FAILURE);
            assert_eq!(message, refused_message(&refused));
        }
        other => panic!("the first Get of a fresh key on a full disk: {other:?}"),
    }
    let (_, p) = register(9999);
    match c.call(op::REGISTER, p).await {
        Err(ClientError::Failed { message, .. }) => {
            assert_eq!(message, refused_message(&refused))
        }
        other => panic!("a write on a full disk: {other:?}"),
    }

    // Space returns: writes resume on the same connection, without a restart.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(
        key_bytes(&c.call(op::GET, uid(&fresh.0)).await.unwrap()),
        fresh.1
    );
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

fn refused_message(e: &ClientError) -> &str {
    match e {
        ClientError::Failed { message, .. } => message,
        other => panic!("{other:?}"),
    }
}
