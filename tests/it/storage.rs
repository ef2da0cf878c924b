//! What reaches the disk: the SQLite files (database, WAL, shared memory) never contain the
//! raw bytes of a registered key or secret, committed writes survive a restart, and a record
//! that does not decode (too large, or damaged) stays manageable by an administrator.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::kmip::attributes::{self, Attr};
use akm::kmip::enums::{operation as op, result_reason as rr, state};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

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
    // General Failure naming the remedy; the decoder's detail stays in the log.
    assert_unreadable(c.call(op::GET_ATTRIBUTES, uid(&broken)).await);
    assert_eq!(
        key_bytes(&c.call(op::GET, uid(&healthy)).await.unwrap()).len(),
        32
    );
    server.stop().await;
}

/// Rewrites the stored record of `u` in the database file: `f` edits its decoded attributes.
fn edit_record(server: &TestServer, u: &str, f: impl FnOnce(&mut Vec<Ttlv>)) {
    let db = rusqlite::Connection::open(server.db_path()).unwrap();
    let blob: Vec<u8> = db
        .query_row("SELECT attributes FROM objects WHERE uid = ?1", [u], |r| {
            r.get(0)
        })
        .unwrap();
    let any_size = akm::ttlv::Limits {
        max_message_bytes: usize::MAX,
        ..akm::ttlv::Limits::default()
    };
    let mut record = akm::ttlv::decode(&blob, &any_size).unwrap();
    let Value::Structure(parts) = &mut record.value else {
        panic!("a record is a structure")
    };
    let Value::Structure(attrs) = &mut parts[0].value else {
        panic!("its first part is the attributes")
    };
    f(attrs);
    db.execute(
        "UPDATE objects SET attributes = ?1 WHERE uid = ?2",
        rusqlite::params![record.encode(), u],
    )
    .unwrap();
}

fn damage_record(server: &TestServer, u: &str) {
    let db = rusqlite::Connection::open(server.db_path()).unwrap();
    db.execute("UPDATE objects SET attributes = x'00' WHERE uid = ?1", [u])
        .unwrap();
}

/// Asserts General Failure with the message that names the remedy (and no internal detail).
fn assert_unreadable(r: Result<Ttlv, akm::client::ClientError>) {
    match r {
        Err(akm::client::ClientError::Failed { reason, message }) => {
            assert_eq!(reason, rr::GENERAL_FAILURE, "{message}");
            assert!(
                message.contains("unreadable") && message.contains("administrator"),
                "{message}"
            );
        }
        other => panic!("expected General Failure, got {other:?}"),
    }
}

async fn admin(server: &TestServer, v: V) -> akm::client::Client {
    server
        .connect(server.client_tls("root", &["admins"]), v)
        .await
        .unwrap()
}

/// A record larger than the stored-record decoder reads (as an older akm could write it, or
/// the two-600-KiB Add Attribute attack did): its owner is told it is unreadable, a stranger
/// is still refused by the key's policy, Locate still lists it, and an administrator can list
/// its attributes and delete the offending one, after which the key is whole again.
#[tokio::test]
async fn an_oversized_record_stays_manageable_by_an_administrator() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice", V::V1_4).await;
    let material = [0x24u8; 32];
    let u = uid_of(
        &alice
            .call(
                op::REGISTER,
                register_key_payload(V::V1_4, &material, &[Attr::new("Name", name("big"))]),
            )
            .await
            .unwrap(),
    );
    let huge = Attr::new(
        "x-huge",
        Value::TextString("h".repeat(akm::ops::STORED_RECORD_MAX_BYTES)),
    );
    edit_record(&server, &u, |attrs| attrs.push(attributes::to_v2(&huge)));

    assert_unreadable(alice.call(op::GET, uid(&u)).await);
    assert_unreadable(
        alice
            .call(op::DELETE_ATTRIBUTE, delete_v1(&u, "x-huge"))
            .await,
    );
    let mut mallory = server.client("mallory", V::V1_4).await;
    for (operation, payload) in [
        (op::GET, uid(&u)),
        (op::GET_ATTRIBUTE_LIST, uid(&u)),
        (op::DELETE_ATTRIBUTE, delete_v1(&u, "x-huge")),
        (op::DESTROY, uid(&u)),
    ] {
        assert_eq!(
            reason(mallory.call(operation, payload).await),
            rr::PERMISSION_DENIED,
            "operation {operation:#x}"
        );
    }
    let found = alice
        .call(
            op::LOCATE,
            filters(V::V1_4, &[Attr::new("Name", name("big"))]),
        )
        .await
        .unwrap();
    assert_eq!(uids_of(&found), vec![u.clone()]);

    let mut root = admin(&server, V::V1_4).await;
    let list = root.call(op::GET_ATTRIBUTE_LIST, uid(&u)).await.unwrap();
    assert!(
        list.children_with(Tag::ATTRIBUTE_NAME)
            .any(|t| t.as_text() == Some("x-huge")),
        "{list:?}"
    );
    root.call(op::DELETE_ATTRIBUTE, delete_v1(&u, "x-huge"))
        .await
        .unwrap();
    // Whole again, for its owner too.
    let got = alice.call(op::GET, uid(&u)).await.unwrap();
    assert_eq!(key_bytes(&got), material);
    alice.call(op::DESTROY, uid(&u)).await.unwrap();
    server.stop().await;
}

/// A damaged record (bytes that are no record at all): its owner and a stranger get what they
/// got before, a Locate with a filter the indexes cannot answer still works for every other
/// key, and an administrator can revoke the key (its record is rebuilt from the indexed
/// columns, the key locked against export and use), then delete attributes and destroy it.
#[tokio::test]
async fn a_damaged_record_can_be_revoked_and_destroyed_by_an_administrator() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice", V::V1_4).await;
    let broken = create_key(&mut alice, Some("damaged")).await;
    let healthy = create_key(&mut alice, None).await;
    let note = Attr::new("x-note", Value::TextString("n".into()));
    for u in [&broken, &healthy] {
        let mut p = uid(u);
        p.push(attributes::to_v1(&note, None));
        alice.call(op::ADD_ATTRIBUTE, p).await.unwrap();
    }
    alice.call(op::ACTIVATE, uid(&broken)).await.unwrap();
    damage_record(&server, &broken);

    for (operation, payload) in [
        (op::GET, uid(&broken)),
        (op::REVOKE, revoke(&broken)),
        (op::DESTROY, uid(&broken)),
    ] {
        assert_unreadable(alice.call(operation, payload).await);
    }
    let mut mallory = server.client("mallory", V::V1_4).await;
    for (operation, payload) in [
        (op::GET, uid(&broken)),
        (op::REVOKE, revoke(&broken)),
        (op::DESTROY, uid(&broken)),
    ] {
        assert_eq!(
            reason(mallory.call(operation, payload).await),
            rr::PERMISSION_DENIED
        );
    }
    let found = alice
        .call(op::LOCATE, filters(V::V1_4, std::slice::from_ref(&note)))
        .await
        .unwrap();
    assert_eq!(uids_of(&found), vec![healthy.clone()]);

    let mut root = admin(&server, V::V1_4).await;
    // The bytes are not a record: deleting from it needs the rebuild Revoke does first.
    assert_unreadable(
        root.call(op::DELETE_ATTRIBUTE, delete_v1(&broken, "Name"))
            .await,
    );
    root.call(op::REVOKE, revoke(&broken)).await.unwrap();
    let rebuilt = get_attrs(
        &mut root,
        &broken,
        &["State", "Name", "Sensitive", "Extractable"],
    )
    .await;
    assert!(rebuilt.contains(&Attr::new("State", Value::Enumeration(state::COMPROMISED))));
    assert!(rebuilt.contains(&Attr::new("Name", name("damaged"))));
    assert!(rebuilt.contains(&Attr::new("Sensitive", Value::Boolean(true))));
    assert!(rebuilt.contains(&Attr::new("Extractable", Value::Boolean(false))));
    assert_ne!(reason(alice.call(op::GET, uid(&broken)).await), 0);
    root.call(op::DELETE_ATTRIBUTE, delete_v1(&broken, "Name"))
        .await
        .unwrap();
    root.call(op::DESTROY, uid(&broken)).await.unwrap();
    assert_eq!(
        state_of(&mut root, &broken).await,
        state::DESTROYED_COMPROMISED
    );
    assert_eq!(
        key_bytes(&alice.call(op::GET, uid(&healthy)).await.unwrap()).len(),
        32
    );
    server.stop().await;
}

/// A 1.x Delete Attribute payload for the first instance of `attr`.
fn delete_v1(u: &str, attr: &str) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(Ttlv::text(Tag::ATTRIBUTE_NAME, attr));
    p.push(Ttlv::integer(Tag::ATTRIBUTE_INDEX, 0));
    p
}

/// A 1.x Revoke payload: key compromise.
fn revoke(u: &str) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(Ttlv::structure(
        Tag::REVOCATION_REASON,
        vec![Ttlv::enumeration(
            Tag::REVOCATION_REASON_CODE,
            akm::kmip::enums::revocation_reason_code::KEY_COMPROMISE,
        )],
    ));
    p
}
