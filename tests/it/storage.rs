//! What reaches the disk: the SQLite files (database, WAL, shared memory) never contain the
//! raw bytes of a registered key or secret, and committed writes survive a restart.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion as V;

fn files_contain(server: &TestServer, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", server.db_path().display());
        if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path);
            }
        }
    }
    hits
}

#[tokio::test]
async fn registered_key_bytes_never_reach_the_database_files() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    let mut keys = Vec::new();
    for i in 0..20u8 {
        let key: Vec<u8> = (0..32u8)
            .map(|b| b.wrapping_mul(7).wrapping_add(i) ^ 0xA5)
            .collect();
        let u = uid_of(
            &c.call(op::REGISTER, register_key_payload(V::V1_4, &key, &[]))
                .await
                .unwrap(),
        );
        keys.push((u, key));
    }
    // Created keys too: read their bytes back through Get, then look for them.
    for _ in 0..5 {
        let u = create_key(&mut c, None).await;
        let got = key_bytes(&c.call(op::GET, uid(&u)).await.unwrap());
        keys.push((u, got));
    }
    assert!(server.db_path().exists());
    let wal = format!("{}-wal", server.db_path().display());
    assert!(std::path::Path::new(&wal).exists(), "WAL mode is on");
    for (u, key) in &keys {
        let hits = files_contain(&server, key);
        assert!(hits.is_empty(), "raw key of {u} found in {hits:?}");
        // Not even a 16-byte prefix.
        assert!(files_contain(&server, &key[..16]).is_empty());
    }
    // The files are private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.db_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    server.stop().await;
}

#[tokio::test]
async fn committed_objects_survive_a_restart() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    let key = vec![0x11u8; 32];
    let u = uid_of(
        &c.call(op::REGISTER, register_key_payload(V::V1_4, &key, &[]))
            .await
            .unwrap(),
    );
    let dir = server.stop().await;
    let store = akm::store::Store::open(&dir.path().join("akm.db")).unwrap();
    assert!(store.get(&u).unwrap().is_some());
    let wrapped = store.get_material(&u).unwrap().unwrap();
    let kek = akm::crypto::Kek::from_bytes(&[0x4B; 32]).unwrap();
    assert_eq!(
        kek.unwrap(&u, 1, &wrapped).unwrap().as_slice(),
        key.as_slice()
    );
    // A blob moved to another object does not unwrap.
    assert!(kek.unwrap("another-uid", 1, &wrapped).is_err());
    store.close();
}

#[tokio::test]
async fn an_unreadable_record_is_a_general_failure_and_harms_no_other_object() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    let broken = create_key(&mut c, None).await;
    let healthy = create_key(&mut c, None).await;
    let db = rusqlite::Connection::open(server.db_path()).unwrap();
    db.execute(
        "UPDATE objects SET attributes = x'00' WHERE uid = ?1",
        [&broken],
    )
    .unwrap();
    drop(db);
    let failed = c.call(op::GET_ATTRIBUTES, uid(&broken)).await;
    match failed {
        Err(akm::client::ClientError::Failed { reason, message }) => {
            assert_eq!(reason, akm::kmip::enums::result_reason::GENERAL_FAILURE);
            assert_eq!(message, "internal error", "detail stays in the log");
        }
        other => panic!("expected General Failure, got {other:?}"),
    }
    assert_eq!(
        key_bytes(&c.call(op::GET, uid(&healthy)).await.unwrap()).len(),
        32
    );
    server.stop().await;
}
