//! Store tests against a real SQLite file: inserts, updates, the change log, name uniqueness,
//! Locate filters, and group commit under concurrent writers.

use super::*;
use std::sync::Arc;

fn row(uid: &str, owner: &str, names: &[&str]) -> ObjectRow {
    ObjectRow {
        uid: uid.into(),
        object_type: 2,
        state: 1,
        owner: owner.into(),
        owner_group: None,
        access_mode: "user".into(),
        algorithm: Some(3),
        length: Some(256),
        initial_date: 1000,
        activation_date: None,
        deactivation_date: None,
        last_change: 1000,
        key_version: 1,
        names: names.iter().map(|s| s.to_string()).collect(),
        groups: vec!["g1".into()],
        attributes: vec![1, 2, 3],
        replaces: None,
    }
}

fn wrapped() -> Wrapped {
    Wrapped {
        kek_id: "k".into(),
        nonce: vec![0; 12],
        ciphertext: vec![1; 48],
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("akm.db")).unwrap();
    (dir, store)
}

#[test]
fn insert_get_update_and_change_log() {
    let (_d, store) = open();
    let r = row("a", "alice", &["n1"]);
    let w = wrapped();
    store.write(move |tx| tx.insert(&r, Some(&w))).unwrap();
    let got = store.get("a").unwrap().unwrap();
    assert_eq!(got, row("a", "alice", &["n1"]));
    assert_eq!(store.get_material("a").unwrap(), Some(wrapped()));
    let mut changed = got.clone();
    changed.state = 2;
    store
        .write(move |tx| {
            tx.update(&changed)?;
            tx.delete_material("a")
        })
        .unwrap();
    assert_eq!(store.get("a").unwrap().unwrap().state, 2);
    assert_eq!(store.get_material("a").unwrap(), None);
    assert_eq!(store.last_change_seq().unwrap(), 2);
}

#[test]
fn names_are_unique_among_an_owners_live_objects() {
    let (_d, store) = open();
    let a = row("a", "alice", &["shared"]);
    store.write(move |tx| tx.insert(&a, None)).unwrap();
    // Another owner may use the same name: it is neither refused nor revealed.
    let b = row("b", "bob", &["shared"]);
    store.write(move |tx| tx.insert(&b, None)).unwrap();
    let c = row("c", "alice", &["shared"]);
    let err = store.write(move |tx| tx.insert(&c, None)).unwrap_err();
    assert!(matches!(err, StoreError::NameTaken));
    assert!(
        store.get("c").unwrap().is_none(),
        "failed write left nothing behind"
    );
    // Giving bob's key to alice would give her two live keys named "shared".
    let to_alice = crate::policy::KeyPolicy {
        owner: "alice".into(),
        group: None,
        mode: crate::policy::AccessMode::User,
    };
    let policy = to_alice.clone();
    let err = store
        .write(move |tx| tx.set_key_policy("b", &policy))
        .unwrap_err();
    assert!(matches!(err, StoreError::NameTaken));
    assert_eq!(store.get("b").unwrap().unwrap().owner, "bob");
    // Once alice's holder is destroyed the name is free again, for a new key or a transfer.
    let mut a = store.get("a").unwrap().unwrap();
    a.state = 5;
    store.write(move |tx| tx.update(&a)).unwrap();
    let c = row("c", "alice", &["shared"]);
    store.write(move |tx| tx.insert(&c, None)).unwrap();
    let mut c = store.get("c").unwrap().unwrap();
    c.state = 5;
    store.write(move |tx| tx.update(&c)).unwrap();
    assert!(store
        .write(move |tx| tx.set_key_policy("b", &to_alice))
        .unwrap());
}

#[test]
fn locate_filters_on_indexed_columns() {
    let (_d, store) = open();
    for (uid, owner, name) in [
        ("a", "alice", "n1"),
        ("b", "alice", "n2"),
        ("c", "bob", "n3"),
    ] {
        let r = row(uid, owner, &[name]);
        store.write(move |tx| tx.insert(&r, None)).unwrap();
    }
    let live = |q: LocateQuery| LocateQuery {
        include_live: true,
        ..q
    };
    let all_alice = store
        .locate(&live(LocateQuery {
            owner: Some("alice".into()),
            ..Default::default()
        }))
        .unwrap();
    assert_eq!(all_alice, vec!["a", "b"]);
    let by_name = store
        .locate(&live(LocateQuery {
            owner: Some("alice".into()),
            names: vec!["n2".into()],
            ..Default::default()
        }))
        .unwrap();
    assert_eq!(by_name, vec!["b"]);
    let other_owner_name = store
        .locate(&live(LocateQuery {
            owner: Some("alice".into()),
            names: vec!["n3".into()],
            ..Default::default()
        }))
        .unwrap();
    assert!(other_owner_name.is_empty());
    let wrong_alg = store
        .locate(&live(LocateQuery {
            algorithm: Some(99),
            ..Default::default()
        }))
        .unwrap();
    assert!(wrong_alg.is_empty());
}

#[test]
fn concurrent_writes_are_group_committed_and_each_acknowledged() {
    let (_d, store) = open();
    let store = Arc::new(store);
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let r = row(&format!("{t}-{i}"), "alice", &[&format!("n-{t}-{i}")]);
                    store.write(move |tx| tx.insert(&r, None)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.last_change_seq().unwrap(), 400);
    for t in 0..16 {
        for i in 0..25 {
            assert!(store.get(&format!("{t}-{i}")).unwrap().is_some());
        }
    }
}

#[test]
fn a_failing_write_does_not_undo_its_group() {
    let (_d, store) = open();
    let store = Arc::new(store);
    let a = row("a", "alice", &["dup"]);
    store.write(move |tx| tx.insert(&a, None)).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                // Odd writers collide on a name; even ones must still commit.
                let name = if i % 2 == 1 {
                    "dup".to_string()
                } else {
                    format!("ok{i}")
                };
                let r = row(&format!("w{i}"), "alice", &[&name]);
                store.write(move |tx| tx.insert(&r, None)).is_ok()
            })
        })
        .collect();
    let results: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, ok) in results.iter().enumerate() {
        assert_eq!(*ok, i % 2 == 0, "writer {i}");
        assert_eq!(store.get(&format!("w{i}")).unwrap().is_some(), i % 2 == 0);
    }
}

#[test]
fn reopening_keeps_data_and_refuses_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("akm.db");
    {
        let store = Store::open(&path).unwrap();
        let r = row("a", "alice", &[]);
        store.write(move |tx| tx.insert(&r, None)).unwrap();
        store.close();
    }
    let store = Store::open(&path).unwrap();
    assert!(store.get("a").unwrap().is_some());
    store.close();
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}

#[test]
fn locate_prefilters_by_visibility() {
    let (_d, store) = open();
    let mut rows = Vec::new();
    for (uid, owner, group, mode) in [
        ("a", "alice", Some("HR"), "user"),
        ("b", "bob", Some("Finance"), "group"),
        ("c", "bob", None, "any"),
        ("d", "bob", Some("HR"), "user-and-group"),
    ] {
        let mut r = row(uid, owner, &[]);
        r.owner_group = group.map(str::to_owned);
        r.access_mode = mode.into();
        rows.push(r);
    }
    store
        .write(move |tx| {
            for r in &rows {
                tx.insert(r, None)?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let visible = |user: &str, groups: &[&str]| {
        store
            .locate(&LocateQuery {
                include_live: true,
                visible_to: Some((user.into(), groups.iter().map(|g| g.to_string()).collect())),
                ..Default::default()
            })
            .unwrap()
    };
    // A superset of what policy allows: every row of the user, of its groups, or open.
    assert_eq!(visible("alice", &["HR"]), ["a", "c", "d"]);
    assert_eq!(visible("sam", &[]), ["c"]);
    assert_eq!(visible("bob", &[]), ["b", "c", "d"]);
    let located = store
        .locate_with_policy(&LocateQuery {
            include_live: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(located[1].owner_group.as_deref(), Some("Finance"));
    assert_eq!(located[1].access_mode, "group");
}

#[test]
fn disk_full_and_io_errors_are_typed_and_others_are_not() {
    let sqlite = |code: i32| {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("detail".into()))
    };
    assert!(matches!(
        StoreError::from(sqlite(rusqlite::ffi::SQLITE_FULL)),
        StoreError::NoSpace
    ));
    // Extended I/O codes (a failed fsync, a failed write, the shared-memory index) are Io.
    for code in [
        rusqlite::ffi::SQLITE_IOERR,
        rusqlite::ffi::SQLITE_IOERR_FSYNC,
        rusqlite::ffi::SQLITE_IOERR_WRITE,
        rusqlite::ffi::SQLITE_IOERR_SHMSIZE,
    ] {
        assert!(
            matches!(StoreError::from(sqlite(code)), StoreError::Io),
            "{code}"
        );
    }
    assert!(matches!(
        StoreError::from(sqlite(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)),
        StoreError::Sqlite(_)
    ));
    // The client's message says what happened and that nothing was written.
    assert_eq!(
        StoreError::NoSpace.to_string(),
        "key store: no space left on the database filesystem; nothing was written"
    );
}

#[test]
fn object_counts_follow_the_dates_and_locate_takes_any_of_several_states() {
    let (_d, store) = open();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let with = |uid: &str, state: u32, act: Option<i64>, deact: Option<i64>| ObjectRow {
        state,
        activation_date: act,
        deactivation_date: deact,
        groups: Vec::new(),
        ..row(uid, "alice", &[])
    };
    let rows = [
        // Pre-Active, dates not reached.
        with("p", 1, Some(now + 3600), None),
        // Pre-Active whose Activation Date passed: Active.
        with("a", 1, Some(now - 10), None),
        // Pre-Active whose both dates passed: Active, then Deactivated.
        with("pd", 1, Some(now - 10), Some(now - 5)),
        // Pre-Active with only a passed Deactivation Date: never activated, stays Pre-Active.
        with("pp", 1, None, Some(now - 5)),
        // Active past its Deactivation Date: Deactivated.
        with("d", 2, Some(now - 10), Some(now - 5)),
        // Compromised stays Compromised.
        with("c", 4, Some(now - 10), Some(now - 5)),
    ];
    for r in rows {
        store.write(move |tx| tx.insert(&r, None)).unwrap();
    }
    let count = |state: u32| {
        store
            .count_objects()
            .unwrap()
            .iter()
            .filter(|c| c.state == state)
            .map(|c| c.count)
            .sum::<u64>()
    };
    assert_eq!((count(1), count(2), count(3), count(4)), (2, 1, 2, 1));
    let mut found = store
        .locate(&LocateQuery {
            states_any: vec![2, 4],
            include_live: true,
            ..LocateQuery::default()
        })
        .unwrap();
    found.sort();
    assert_eq!(found, vec!["c".to_owned(), "d".to_owned()]);
}

#[test]
fn a_write_that_panics_is_refused_alone_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("akm.db")).unwrap();
    let failed: Result<(), StoreError> = store.write(|_| panic!("a bug in one write"));
    assert!(
        matches!(failed, Err(StoreError::CommitFailed)),
        "{failed:?}"
    );
    let later: Result<i64, StoreError> = store.write(|tx| {
        tx.conn()
            .query_row("SELECT 41 + 1", [], |r| r.get(0))
            .map_err(StoreError::from)
    });
    assert_eq!(later.unwrap(), 42);
}

#[test]
fn a_write_that_panics_after_writing_leaves_nothing_and_its_group_commits() {
    let (_d, store) = open();
    let store = Arc::new(store);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let r = row(&format!("p{t}"), "alice", &[]);
                if t == 3 {
                    // Its insert is in the group's transaction when it panics: rolled back.
                    store.write(move |tx| -> Result<(), StoreError> {
                        tx.insert(&r, None)?;
                        panic!("a bug after the insert")
                    })
                } else {
                    store.write(move |tx| tx.insert(&r, None))
                }
            })
        })
        .collect();
    for (t, h) in threads.into_iter().enumerate() {
        let result = h.join().unwrap();
        if t == 3 {
            assert!(
                matches!(result, Err(StoreError::CommitFailed)),
                "{result:?}"
            );
        } else {
            result.unwrap();
        }
    }
    assert!(store.get("p3").unwrap().is_none());
    for t in (0..8).filter(|&t| t != 3) {
        assert!(store.get(&format!("p{t}")).unwrap().is_some());
    }
    // Only the seven kept inserts reached the change log.
    assert_eq!(store.last_change_seq().unwrap(), 7);
}

/// A stored record whose Replaced Object link names `pred`, in the ops layer's encoding.
fn record_replacing(pred: &str) -> Vec<u8> {
    use crate::kmip::enums::link_type;
    use crate::ttlv::{Tag, Ttlv};
    let link = Ttlv::structure(
        Tag::LINK,
        vec![
            Ttlv::enumeration(Tag::LINK_TYPE, link_type::REPLACED_OBJECT_LINK),
            Ttlv::text(Tag::LINKED_OBJECT_IDENTIFIER, pred),
        ],
    );
    Ttlv::structure(
        Tag::ATTRIBUTES,
        vec![
            Ttlv::structure(Tag::ATTRIBUTES, vec![link]),
            Ttlv::structure(Tag::KEY_BLOCK, vec![]),
        ],
    )
    .encode()
}

#[test]
fn replacements_are_indexed_on_write_and_backfilled_when_the_column_is_added() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("akm.db");
    // A database as schema version 5 left it, holding a replacement.
    {
        let mut conn = open_connection(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .unwrap();
        schema::migrate_to(&mut conn, 5).unwrap();
        let mut old = row("old-replacement", "alice", &[]);
        old.attributes = record_replacing("p");
        // Schema 5 has no `replaces` column: the insert of that time.
        let columns = old.columns();
        conn.execute(
            &INSERT_OBJECT
                .replace(", replaces)", ")")
                .replace(", ?15)", ")"),
            &columns[..14],
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let mut new = row("new-replacement", "alice", &[]);
    new.attributes = record_replacing("p");
    new.replaces = Some("p".into());
    store.write(move |tx| tx.insert(&new, None)).unwrap();
    let found: Vec<String> = store
        .write(|tx| tx.owned_replacements("alice", "p"))
        .unwrap();
    assert_eq!(found, vec!["new-replacement", "old-replacement"]);
    let others: Vec<String> = store.write(|tx| tx.owned_replacements("bob", "p")).unwrap();
    assert!(others.is_empty());
}

/// Whether table `name` exists (a committed write of the group test below made it).
fn has_table(store: &Store, name: &str) -> bool {
    let name = name.to_owned();
    store
        .read(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [name],
                |r| r.get::<_, i64>(0),
            )? == 1)
        })
        .unwrap()
}

/// A write that fails with SQLITE_FULL in the middle of a statement makes SQLite roll back
/// the whole group's transaction, not just its savepoint. The writes before it in the group
/// are then gone, and a write after it would run outside any transaction (its savepoint
/// opening and releasing a transaction of its own, committed at once) while its caller is
/// told the group failed. Every caller must be told exactly what became durable: here, that
/// nothing of the group did.
#[test]
fn a_write_whose_failure_rolls_back_the_group_leaves_no_write_of_it_acknowledged_wrongly() {
    let (_dir, store) = open();
    let store = std::sync::Arc::new(store);
    // Held off, so the three writes below queue up and are committed as one group.
    let turn = store.writer.turn().unwrap();
    let submit = |job: &'static str| {
        let store = store.clone();
        let t = std::thread::spawn(move || {
            store.write(move |tx| -> Result<(), StoreError> {
                let c = tx.conn();
                if job == "full" {
                    // The database may not grow and the page cache is tiny, so the big row
                    // fails while SQLite spills the cache: as when a disk fills up under a
                    // large group, SQLite then rolls back the whole transaction.
                    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                    c.execute_batch(&format!(
                        "PRAGMA cache_size = 10; PRAGMA max_page_count = {}",
                        pages + 50
                    ))?;
                    let r = c.execute_batch(
                        "CREATE TABLE big(v); INSERT INTO big VALUES (zeroblob(1000000))",
                    );
                    c.execute_batch(
                        "PRAGMA max_page_count = 1073741823; PRAGMA cache_size = -2000",
                    )?;
                    r?;
                } else {
                    c.execute_batch(&format!("CREATE TABLE {job}(v)"))?;
                }
                Ok(())
            })
        });
        // Queued in this order (the writer is held, so nothing runs meanwhile).
        std::thread::sleep(std::time::Duration::from_millis(200));
        t
    };
    let before = submit("before");
    let full = submit("full");
    let after = submit("after");
    drop(turn);
    let full = full.join().unwrap();
    assert!(matches!(full, Err(StoreError::NoSpace)), "{full:?}");
    let mut told = vec![
        ("before", before.join().unwrap()),
        ("after", after.join().unwrap()),
    ];
    // Again with the failing write last in its group.
    let turn = store.writer.turn().unwrap();
    let first = submit("first");
    let full = submit("full");
    drop(turn);
    assert!(full.join().unwrap().is_err());
    told.push(("first", first.join().unwrap()));
    for (name, told) in told {
        assert_eq!(
            told.is_ok(),
            has_table(&store, name),
            "{name}: told {told:?}, durable {}",
            has_table(&store, name)
        );
    }
    // The writer goes on: the next write commits and is acknowledged.
    store
        .write(|tx| {
            tx.conn()
                .execute_batch("CREATE TABLE later(v)")
                .map_err(StoreError::from)
        })
        .unwrap();
    assert!(has_table(&store, "later"));
}

/// The same in a batch transaction (an Undo batch): once a failed write has made SQLite roll
/// the batch back, a later write of the batch is refused rather than committed on its own, and
/// the batch's commit fails.
#[test]
fn a_batch_write_after_sqlite_rolled_the_batch_back_is_refused_not_committed_alone() {
    let (_dir, store) = open();
    let batch = store.begin_batch().unwrap();
    store
        .write(|tx| {
            tx.conn()
                .execute_batch("CREATE TABLE first(v)")
                .map_err(StoreError::from)
        })
        .unwrap();
    let full = store.write(|tx| -> Result<(), StoreError> {
        let c = tx.conn();
        let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        c.execute_batch(&format!(
            "PRAGMA cache_size = 10; PRAGMA max_page_count = {}",
            pages + 50
        ))?;
        let r = c.execute_batch("CREATE TABLE big(v); INSERT INTO big VALUES (zeroblob(1000000))");
        c.execute_batch("PRAGMA max_page_count = 1073741823; PRAGMA cache_size = -2000")?;
        Ok(r?)
    });
    assert!(full.is_err());
    let after = store.write(|tx| {
        tx.conn()
            .execute_batch("CREATE TABLE after(v)")
            .map_err(StoreError::from)
    });
    assert!(after.is_err(), "{after:?}");
    assert!(batch.commit().is_err());
    assert!(!has_table(&store, "first") && !has_table(&store, "after"));
}

#[test]
fn a_schema_6_database_migrates_on_open_its_index_dropped_and_material_rekeyed_by_uid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("akm.db");
    let index_exists = |conn: &Connection| -> bool {
        conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'objects_initial_date'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    };
    {
        let mut conn = open_connection(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .unwrap();
        schema::migrate_to(&mut conn, 6).unwrap();
        assert!(index_exists(&conn));
        for uid in ["kept", "destroyed"] {
            conn.execute(INSERT_OBJECT, row(uid, "alice", &[]).columns())
                .unwrap();
        }
        let w = wrapped();
        conn.execute(
            INSERT_MATERIAL,
            rusqlite::params!["kept", w.kek_id, w.nonce, w.ciphertext],
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert!(store.get("kept").unwrap().is_some());
    assert_eq!(store.get_material("kept").unwrap(), Some(wrapped()));
    assert_eq!(store.get_material("destroyed").unwrap(), None);
    let (kept, material) = store.get_with_material("kept").unwrap().unwrap();
    assert_eq!(kept.uid, "kept");
    assert_eq!(material, Some(wrapped()));
    let (_, material) = store.get_with_material("destroyed").unwrap().unwrap();
    assert_eq!(material, None);
    // New material goes to the rekeyed table; the uid stays unique there.
    let new = row("new", "alice", &[]);
    store
        .write(move |tx| tx.insert(&new, Some(&wrapped())))
        .unwrap();
    assert_eq!(store.get_material("new").unwrap(), Some(wrapped()));
    let again = store.write(|tx| tx.insert_material("new", &wrapped()));
    assert!(again.is_err());
    store.close();
    let conn = Connection::open(&path).unwrap();
    assert!(!index_exists(&conn));
    let material_sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'material'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(material_sql.contains("WITHOUT ROWID"), "{material_sql}");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::SCHEMA_VERSION);
}
