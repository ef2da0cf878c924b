//! Store tests against a real SQLite file and a real PostgreSQL server: inserts, updates, the
//! change log, name uniqueness, Locate filters, and group commit under concurrent writers. The
//! tests that apply to both backends take a [`Db`] and run once on each (`sqlite::` and
//! `postgres::` in their names, see [`on_both_backends`]); on PostgreSQL also two nodes on one
//! database. Without PostgreSQL installed its runs print SKIPPED (and fail under CI=true).

use super::*;
use std::sync::Arc;

/// The private PostgreSQL server the tests share (one per test process, a database per test).
#[path = "../../tests/it/support/postgres.rs"]
#[allow(dead_code)] // Shared with tests/it, which uses the rest.
mod pg_server;

/// The backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Db {
    Sqlite,
    Postgres,
}

/// What keeps a test's database alive: the SQLite file's directory, or the PostgreSQL
/// database's settings (to open it again, as a second node or after a restart).
enum Place {
    Dir(tempfile::TempDir),
    Postgres(crate::config::StoreConfig),
}

impl Place {
    /// A new empty database on `db`; `None` when PostgreSQL is not installed (SKIPPED).
    fn new(db: Db) -> Option<Place> {
        match db {
            Db::Sqlite => Some(Place::Dir(tempfile::tempdir().unwrap())),
            Db::Postgres => Some(Place::Postgres(postgres_config(
                &pg_server::database()?.url,
                "node-1",
            ))),
        }
    }

    /// Opens the store (again); `node` names it on PostgreSQL.
    fn open_as(&self, node: &str) -> Result<Store, StoreError> {
        match self {
            Place::Dir(dir) => Store::open(&dir.path().join("akm.db")),
            Place::Postgres(config) => Store::open_configured(&crate::config::StoreConfig {
                node_id: Some(node.into()),
                ..config.clone()
            }),
        }
    }

    fn open(&self) -> Store {
        self.open_as("node-1").unwrap()
    }
}

/// The settings of a PostgreSQL store at `url` (the test server has no TLS).
fn postgres_config(url: &str, node: &str) -> crate::config::StoreConfig {
    crate::config::StoreConfig {
        backend: crate::config::StoreBackend::Postgres,
        url: Some(url.into()),
        tls: crate::config::DatabaseTls::Off,
        node_id: Some(node.into()),
        ..Default::default()
    }
}

/// A new store on `db` with what keeps it alive; `None`: skipped.
fn open_on(db: Db) -> Option<(Place, Store)> {
    let place = Place::new(db)?;
    let store = place.open();
    Some((place, store))
}

/// Runs each named `fn(Db)` test once per backend, as `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name(super::Db::Sqlite)
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                super::$name(super::Db::Postgres)
            })*
        }
    };
}

on_both_backends!(
    insert_get_update_and_change_log,
    names_are_unique_among_an_owners_live_objects,
    locate_filters_on_indexed_columns,
    concurrent_writes_are_group_committed_and_each_acknowledged,
    a_failing_write_does_not_undo_its_group,
    reopening_keeps_data_and_refuses_newer_schema,
    locate_prefilters_by_visibility,
    object_counts_follow_the_dates_and_locate_takes_any_of_several_states,
    a_write_that_panics_is_refused_alone_and_the_writer_goes_on,
    a_write_that_panics_after_writing_leaves_nothing_and_its_group_commits,
    get_with_material_and_first_name,
    accounts_for_lists_a_callers_records_in_the_order_of_its_ous,
    certificate_revocations_are_recorded_once_in_order,
    rewrap_swaps_only_an_unchanged_wrapping,
    a_batch_reads_its_own_writes_and_commits_or_rolls_back_whole,
    a_snapshot_holds_every_row_and_imports_into_postgres,
);

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

fn insert_get_update_and_change_log(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
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

fn names_are_unique_among_an_owners_live_objects(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
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

fn locate_filters_on_indexed_columns(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
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

fn concurrent_writes_are_group_committed_and_each_acknowledged(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
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

fn a_failing_write_does_not_undo_its_group(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
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

fn reopening_keeps_data_and_refuses_newer_schema(db: Db) {
    let Some(place) = Place::new(db) else {
        return;
    };
    {
        let store = place.open();
        let r = row("a", "alice", &[]);
        store.write(move |tx| tx.insert(&r, None)).unwrap();
        store.close();
    }
    let store = place.open();
    assert!(store.get("a").unwrap().is_some());
    store.close();
    // A newer akm has migrated the database: this one refuses it rather than guess.
    match &place {
        Place::Dir(dir) => {
            let c = Connection::open(dir.path().join("akm.db")).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        Place::Postgres(config) => {
            let mut c =
                ::postgres::Client::connect(config.url.as_deref().unwrap(), ::postgres::NoTls)
                    .unwrap();
            c.execute("UPDATE schema_version SET version = 99", &[])
                .unwrap();
        }
    }
    assert!(matches!(
        place.open_as("node-1"),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}

fn locate_prefilters_by_visibility(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
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

fn object_counts_follow_the_dates_and_locate_takes_any_of_several_states(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
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

fn a_write_that_panics_is_refused_alone_and_the_writer_goes_on(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
    let failed: Result<(), StoreError> = store.write(|_| panic!("a bug in one write"));
    assert!(
        matches!(failed, Err(StoreError::CommitFailed)),
        "{failed:?}"
    );
    let r = row("later", "alice", &["n"]);
    store.write(move |tx| tx.insert(&r, None)).unwrap();
    assert!(store.get("later").unwrap().is_some());
}

fn get_with_material_and_first_name(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
    let (with, without) = (
        row("with", "alice", &["first", "second"]),
        row("without", "alice", &[]),
    );
    store
        .write(move |tx| {
            tx.insert(&with, Some(&wrapped()))?;
            tx.insert(&without, None)
        })
        .unwrap();
    let (got, material) = store.get_with_material("with").unwrap().unwrap();
    assert_eq!((got.uid.as_str(), got.key_version), ("with", 1));
    assert!(got.names.is_empty(), "left empty: the attributes hold them");
    assert_eq!(material, Some(wrapped()));
    let (_, material) = store.get_with_material("without").unwrap().unwrap();
    assert_eq!(material, None);
    assert!(store.get_with_material("nothing").unwrap().is_none());
    assert_eq!(store.first_name("with").unwrap().as_deref(), Some("first"));
    assert_eq!(store.first_name("without").unwrap(), None);
    let many = store
        .get_many(&["without".into(), "nothing".into(), "with".into()])
        .unwrap();
    let uids: Vec<&str> = many.iter().map(|r| r.uid.as_str()).collect();
    assert_eq!(uids, ["without", "with"]);
    assert_eq!(many[1].names, ["first", "second"]);
    // Destroy: the material goes, the metadata stays; names free for a new key of alice's.
    let mut destroyed = store.get("with").unwrap().unwrap();
    destroyed.state = crate::kmip::enums::state::DESTROYED;
    store
        .write(move |tx| {
            tx.delete_material("with")?;
            tx.update(&destroyed)
        })
        .unwrap();
    assert_eq!(store.get_material("with").unwrap(), None);
    let again = row("again", "alice", &["first"]);
    store.write(move |tx| tx.insert(&again, None)).unwrap();
}

fn a_write_that_panics_after_writing_leaves_nothing_and_its_group_commits(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
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
                let c = tx.conn()?;
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
            tx.conn()?
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
            tx.conn()?
                .execute_batch("CREATE TABLE first(v)")
                .map_err(StoreError::from)
        })
        .unwrap();
    let full = store.write(|tx| -> Result<(), StoreError> {
        let c = tx.conn()?;
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
        tx.conn()?
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

/// Two akm nodes on one PostgreSQL database race to give a key of alice's the same Name:
/// exactly one wins, the other gets the error SQLite gives, and neither leaves anything behind.
#[test]
fn postgres_two_nodes_racing_for_one_name_exactly_one_wins() {
    let Some(place) = Place::new(Db::Postgres) else {
        return;
    };
    let nodes = [
        Arc::new(place.open_as("node-1").unwrap()),
        Arc::new(place.open_as("node-2").unwrap()),
    ];
    for round in 0..20 {
        let start = Arc::new(std::sync::Barrier::new(2));
        let racers: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let (node, start) = (node.clone(), start.clone());
                std::thread::spawn(move || {
                    let r = row(
                        &format!("r{round}-{i}"),
                        "alice",
                        &[&format!("name{round}")],
                    );
                    start.wait();
                    node.write(move |tx| tx.insert(&r, None))
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        let won: Vec<usize> = (0..2).filter(|&i| results[i].is_ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        let lost = 1 - won[0];
        assert!(
            matches!(results[lost], Err(StoreError::NameTaken)),
            "round {round}: {results:?}"
        );
        // Visible through both nodes at once; the loser's row is nowhere.
        for node in &nodes {
            assert!(node.get(&format!("r{round}-{}", won[0])).unwrap().is_some());
            assert!(node.get(&format!("r{round}-{lost}")).unwrap().is_none());
        }
    }
    // Every change-log entry numbered once, gap-free, in commit order across both nodes.
    assert_eq!(nodes[0].last_change_seq().unwrap(), 20);
    assert_eq!(nodes[1].last_change_seq().unwrap(), 20);
}

/// Each node's audit mark is its own: a change one node committed and has not recorded is
/// listed at that node's start only.
#[test]
fn postgres_unaudited_changes_are_each_nodes_own() {
    let Some(place) = Place::new(Db::Postgres) else {
        return;
    };
    let (one, two) = (
        place.open_as("node-1").unwrap(),
        place.open_as("node-2").unwrap(),
    );
    let (a, b) = (row("a", "alice", &[]), row("b", "bob", &[]));
    {
        // Committed inside an audit scope whose record is never written (a crash).
        let _scope = one.audit_scope();
        one.write(move |tx| tx.insert(&a, None)).unwrap();
    }
    two.write(move |tx| tx.insert(&b, None)).unwrap();
    // Each node's mark is stored with its next group (so it may lag, never lead): node 2's
    // covers its change; node 1's stops below the unrecorded change.
    let d = row("d", "dave", &[]);
    two.write(move |tx| tx.insert(&d, None)).unwrap();
    let c = row("c", "carol", &[]);
    one.write(move |tx| tx.insert(&c, None)).unwrap();
    one.close();
    two.close();
    let uids = |node: &str| -> Vec<String> {
        let (listed, total) = place.open_as(node).unwrap().unaudited_changes().unwrap();
        assert_eq!(total, listed.len());
        listed.into_iter().map(|c| c.uid).collect()
    };
    // Node 1's unrecorded change and its own later one (the mark lags a group); none of
    // node 2's. Node 2: only its last change, above its lagging mark; none of node 1's.
    assert_eq!(uids("node-1"), ["a", "c"]);
    assert_eq!(uids("node-2"), ["d"]);
    let again = place.open_as("node-1").unwrap();
    again.mark_all_audited().unwrap();
    assert_eq!(again.unaudited_changes().unwrap().1, 0);
}

/// What the PostgreSQL store does not do yet is refused by name, never half done; bad
/// settings name their key.
#[test]
fn postgres_refuses_what_it_does_not_support() {
    let Some((place, store)) = open_on(Db::Postgres) else {
        return;
    };
    assert!(matches!(
        store.read(|_| Ok(())),
        Err(StoreError::Unsupported(_))
    ));
    assert!(matches!(
        store.write(|tx| tx.set_applied("peer", 1)),
        Err(StoreError::Unsupported(_))
    ));
    let Place::Postgres(config) = &place else {
        unreachable!()
    };
    let no_node = crate::config::StoreConfig {
        node_id: None,
        ..config.clone()
    };
    match Store::open_configured(&no_node) {
        Err(StoreError::Config(e)) => assert!(e.contains("store.node_id"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// Nodes that start at once on a fresh database migrate it once, and both serve.
#[test]
fn postgres_nodes_starting_at_once_migrate_once() {
    let Some(place) = Place::new(Db::Postgres) else {
        return;
    };
    let place = Arc::new(place);
    let starting: Vec<_> = (0..3)
        .map(|i| {
            let place = place.clone();
            std::thread::spawn(move || place.open_as(&format!("node-{i}")))
        })
        .collect();
    let nodes: Vec<Store> = starting
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    let r = row("a", "alice", &["n"]);
    nodes[0].write(move |tx| tx.insert(&r, None)).unwrap();
    for node in &nodes {
        assert!(node.get("a").unwrap().is_some());
    }
}

/// The database drops every connection (a restart, a failover): writes and reads fail
/// cleanly, nothing half-written, and the store recovers without a restart of its own.
#[test]
fn postgres_lost_connections_fail_cleanly_and_recover_without_restart() {
    let Some((place, store)) = open_on(Db::Postgres) else {
        return;
    };
    let Place::Postgres(config) = &place else {
        unreachable!()
    };
    let first = row("before", "alice", &["n"]);
    store.write(move |tx| tx.insert(&first, None)).unwrap();
    assert!(store.get("before").unwrap().is_some());
    let url = config.url.as_deref().unwrap();
    let mut admin = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap();
    // The writer's lost connection is found when its next transaction begins (nothing has
    // run yet), and replaced: the write succeeds.
    let after = row("after", "alice", &[]);
    store.write(move |tx| tx.insert(&after, None)).unwrap();
    // Reads too: a pooled connection found lost is replaced, and the read runs again.
    assert!(store.get("before").unwrap().is_some());
    assert!(store.get("after").unwrap().is_some());
}

/// A node id is held by one live process: another process naming it is refused (a clean
/// stop releases it at once), while other ids are free.
#[test]
fn postgres_a_node_id_is_held_by_one_process() {
    let Some(place) = Place::new(Db::Postgres) else {
        return;
    };
    let first = place.open_as("node-1").unwrap();
    first.claim_node_id(std::time::Duration::ZERO).unwrap();
    let second = place.open_as("node-1").unwrap();
    match second.claim_node_id(std::time::Duration::ZERO) {
        Err(e @ StoreError::NodeIdInUse { .. }) => {
            let text = e.to_string();
            assert!(text.contains("\"node-1\""), "{text}");
            assert!(
                text.contains(&format!("pid {}", std::process::id())),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    let other = place.open_as("node-2").unwrap();
    other.claim_node_id(std::time::Duration::ZERO).unwrap();
    first.renew_node_id().unwrap();
    first.close();
    second.claim_node_id(std::time::Duration::ZERO).unwrap();
    assert!(matches!(
        first.renew_node_id(),
        Err(StoreError::NodeIdInUse { .. })
    ));
}

/// A lease has one holder until it lapses; then another process takes it.
#[test]
fn postgres_a_lease_has_one_holder_until_it_lapses() {
    let Some(place) = Place::new(Db::Postgres) else {
        return;
    };
    let (a, b) = (place.open_as("a").unwrap(), place.open_as("b").unwrap());
    let ttl = std::time::Duration::from_millis(500);
    assert_eq!(a.take_lease("job", ttl).unwrap(), None);
    assert_eq!(a.take_lease("job", ttl).unwrap(), None, "renewed");
    let held = b.take_lease("job", ttl).unwrap().expect("a holds it");
    assert!(held.holder.starts_with("a on "), "{held:?}");
    assert!(held.expires_in <= ttl);
    std::thread::sleep(ttl + std::time::Duration::from_millis(300));
    assert_eq!(
        b.take_lease("job", ttl).unwrap(),
        None,
        "lapsed: b takes it"
    );
    assert!(a.take_lease("job", ttl).unwrap().is_some());
}

/// The first KEK a node presents is the database's; a node with another is refused, also when
/// it holds the database's only as retired by a rotation (red team, issue 22: it would wrap the
/// keys it makes under a KEK the other nodes do not hold, which they then cannot serve).
#[test]
fn postgres_every_node_must_hold_the_databases_kek() {
    let Some((_place, store)) = open_on(Db::Postgres) else {
        return;
    };
    assert_eq!(store.database_kek().unwrap(), None);
    store.check_database_kek("k1", &[]).unwrap();
    assert_eq!(store.database_kek().unwrap().as_deref(), Some("k1"));
    store.check_database_kek("k1", &[]).unwrap();
    match store.check_database_kek("k2", &[]) {
        Err(e @ StoreError::KekMismatch { .. }) => {
            assert!(e.to_string().contains("wrapped under KEK k1"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.check_database_kek("k2", &["k1".into()]),
        Err(StoreError::KekMismatch { .. })
    ));
    assert_eq!(store.database_kek().unwrap().as_deref(), Some("k1"));
}

/// One node on SQLite: every lease is its own, every KEK passes, no database to probe.
#[test]
fn sqlite_has_nothing_to_coordinate() {
    let (_place, store) = open_on(Db::Sqlite).unwrap();
    assert!(!store.is_shared());
    store.claim_node_id(std::time::Duration::ZERO).unwrap();
    assert_eq!(
        store
            .take_lease("job", std::time::Duration::from_secs(1))
            .unwrap(),
        None
    );
    store.check_database_kek("anything", &[]).unwrap();
    assert!(store.database_health().is_none());
}

fn account(enabled: bool, ops: &[&str]) -> crate::policy::Account {
    crate::policy::Account {
        enabled,
        operations: crate::policy::Operations::parse(ops).unwrap(),
    }
}

/// A caller's records come in the order of its OUs, however many it has; records round-trip
/// and each change is logged once.
fn accounts_for_lists_a_callers_records_in_the_order_of_its_ous(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
    store
        .write(|tx| {
            tx.put_account(AccountKind::Group, "HR", &account(true, &["all"]))?;
            tx.put_account(AccountKind::Group, "Finance", &account(true, &["read"]))?;
            tx.put_account(AccountKind::User, "bob", &account(true, &["get"]))
        })
        .unwrap();
    let expected = vec![
        ("HR".to_owned(), account(true, &["all"])),
        ("Finance".to_owned(), account(true, &["read"])),
    ];
    let a = store
        .accounts_for("bob", &["HR".into(), "Nowhere".into(), "Finance".into()])
        .unwrap();
    assert_eq!(a.user, Some(account(true, &["get"])));
    assert_eq!(a.groups, expected);
    let mut many: Vec<String> = (0..100).map(|i| format!("ou{i}")).collect();
    many.insert(10, "HR".into());
    many.push("Finance".into());
    let a = store.accounts_for("nobody", &many).unwrap();
    assert_eq!(a.user, None);
    assert_eq!(a.groups, expected);
    let groups = store.accounts(AccountKind::Group).unwrap();
    assert_eq!(groups[0].0, "Finance");
    // Replacing keeps one record; deleting twice deletes once; each change is logged once.
    store
        .write(|tx| tx.put_account(AccountKind::Group, "HR", &account(false, &["get"])))
        .unwrap();
    assert_eq!(
        store
            .write(|tx| tx.account(AccountKind::Group, "HR"))
            .unwrap(),
        Some(account(false, &["get"]))
    );
    assert!(store
        .write(|tx| tx.delete_account(AccountKind::User, "bob"))
        .unwrap());
    assert!(!store
        .write(|tx| tx.delete_account(AccountKind::User, "bob"))
        .unwrap());
    assert_eq!(store.accounts_for("bob", &[]).unwrap().user, None);
    let log: Vec<(String, String, String)> = store
        .changes_after(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.entity, e.uid, e.kind))
        .collect();
    let entry = |e: &str, id: &str, k: &str| (e.to_owned(), id.to_owned(), k.to_owned());
    assert_eq!(
        log,
        vec![
            entry("group", "HR", "put"),
            entry("group", "Finance", "put"),
            entry("user", "bob", "put"),
            entry("group", "HR", "put"),
            entry("user", "bob", "delete"),
        ]
    );
}

fn certificate_revocations_are_recorded_once_in_order(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
    let revoked = |serial: &str| CertRevocation {
        issuer: "CN=issuing CA".into(),
        serial: serial.into(),
        reason: "keyCompromise".into(),
        revoked_at: 1000,
    };
    let added = store
        .record_cert_revocations(vec![revoked("0a"), revoked("0b")])
        .unwrap();
    assert_eq!(added.len(), 2);
    // Recording one again changes nothing and logs nothing.
    let added = store
        .record_cert_revocations(vec![revoked("0b"), revoked("0c")])
        .unwrap();
    assert_eq!(added, vec![revoked("0c")]);
    assert_eq!(
        store.cert_revocations().unwrap(),
        vec![revoked("0a"), revoked("0b"), revoked("0c")]
    );
    assert_eq!(store.last_change_seq().unwrap(), 3);
    let (found, hlc, origin) = store.cert_revocation(&revoked("0b").id()).unwrap().unwrap();
    assert_eq!((found, origin), (revoked("0b"), None));
    assert!(hlc > 0);
    assert!(store.cert_revocation("0d@CN=issuing CA").unwrap().is_none());
    let set = RevokedCerts::load(&store).unwrap();
    assert!(set.contains("CN=issuing CA", "0c"));
    assert!(!set.contains("CN=issuing CA", "0d"));
}

fn rewrap_swaps_only_an_unchanged_wrapping(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
    let r = row("a", "alice", &[]);
    store
        .write(move |tx| tx.insert(&r, Some(&wrapped())))
        .unwrap();
    assert_eq!(store.material_by_kek().unwrap(), vec![("k".to_owned(), 1)]);
    let stale = store.material_not_under("k2", 10).unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!((stale[0].uid.as_str(), stale[0].key_version), ("a", 1));
    let new = Wrapped {
        kek_id: "k2".into(),
        nonce: vec![2; 12],
        ciphertext: vec![3; 48],
    };
    // A wrapping that changed since it was read (a concurrent re-key) is left alone.
    let changed = Wrapped {
        nonce: vec![9; 12],
        ..wrapped()
    };
    let n = new.clone();
    assert!(!store.write(move |tx| tx.rewrap("a", &changed, &n)).unwrap());
    let n = new.clone();
    assert!(store
        .write(move |tx| tx.rewrap("a", &wrapped(), &n))
        .unwrap());
    assert_eq!(store.get_material("a").unwrap(), Some(new));
    assert!(store.material_not_under("k2", 10).unwrap().is_empty());
}

/// With `tls = "require"` the store connects over TLS verified against `store.tls_ca_file`;
/// a server whose certificate another CA issued is refused, and so is one that declines TLS:
/// the store then sends nothing in plaintext (no fallback, whoever is in between).
#[test]
fn postgres_tls_is_verified_and_never_given_up_for_plaintext() {
    let Some(Place::Postgres(config)) = Place::new(Db::Postgres) else {
        return;
    };
    let server = pg_server::server().unwrap();
    let with_ca = |ca: &std::path::Path| crate::config::StoreConfig {
        tls: crate::config::DatabaseTls::Require,
        tls_ca_file: Some(ca.to_owned()),
        ..config.clone()
    };
    let store = Store::open_configured(&with_ca(&server.ca_file)).unwrap();
    let r = row("over-tls", "alice", &["n"]);
    store
        .write(move |tx| tx.insert(&r, Some(&wrapped())))
        .unwrap();
    assert_eq!(store.get_material("over-tls").unwrap(), Some(wrapped()));
    store.close();
    // Another CA: the server's certificate does not verify.
    let other = tempfile::NamedTempFile::new().unwrap();
    let issuer = crate::pki::Ca::generate("another CA").unwrap();
    std::fs::write(other.path(), issuer.cert_pem()).unwrap();
    let refused = Store::open_configured(&with_ca(other.path()));
    assert!(
        matches!(refused, Err(StoreError::Unreachable(_))),
        "{refused:?}"
    );
    // A listener that answers PostgreSQL's TLS request with "no": refused, and the only bytes
    // the store sent are that request (8 bytes), never a plaintext startup message.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let decliner = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0u8; 8];
        conn.read_exact(&mut request).unwrap();
        conn.write_all(b"N").unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut after = Vec::new();
        let _ = conn.read_to_end(&mut after);
        (request, after)
    });
    let declined = crate::config::StoreConfig {
        url: Some(format!("host=127.0.0.1 port={port} user=akm dbname=akm")),
        ..with_ca(&server.ca_file)
    };
    let refused = Store::open_configured(&declined);
    assert!(
        matches!(refused, Err(StoreError::Unreachable(_))),
        "{refused:?}"
    );
    let (request, after) = decliner.join().unwrap();
    // SSLRequest: length 8, code 80877103.
    assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47]);
    assert!(after.is_empty(), "sent in plaintext: {after:?}");
}

/// Two nodes group-committing at once: every write is acknowledged and visible through both,
/// and the shared change log is numbered 1, 2, 3, ... without a gap or a repeat.
#[test]
fn postgres_two_nodes_writing_at_once_number_the_change_log_without_gaps() {
    let Some(place) = Place::new(Db::Postgres) else {
        return;
    };
    let nodes = [
        Arc::new(place.open_as("node-1").unwrap()),
        Arc::new(place.open_as("node-2").unwrap()),
    ];
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let node = nodes[t % 2].clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let r = row(&format!("{t}-{i}"), "alice", &[&format!("n-{t}-{i}")]);
                    node.write(move |tx| tx.insert(&r, None)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let seqs: Vec<i64> = nodes[1]
        .changes_after(0, 1000)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<i64>>());
    for t in 0..8 {
        for i in 0..25 {
            for node in &nodes {
                assert!(node.get(&format!("{t}-{i}")).unwrap().is_some());
            }
        }
    }
}

/// A batch transaction (Undo): its thread reads its own writes, other threads see the last
/// commit; a failing write inside it is undone alone; dropped, it leaves nothing (no change-log
/// entry either); committed, everything at once.
fn a_batch_reads_its_own_writes_and_commits_or_rolls_back_whole(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
    let store = Arc::new(store);
    let taken = row("taken", "alice", &["dup"]);
    store.write(move |tx| tx.insert(&taken, None)).unwrap();
    let seen_elsewhere = |uid: &'static str| {
        let store = store.clone();
        std::thread::spawn(move || store.get(uid).unwrap().is_some())
            .join()
            .unwrap()
    };
    {
        let _batch = store.begin_batch().unwrap();
        let a = row("undone", "alice", &["n"]);
        store
            .write(move |tx| tx.insert(&a, Some(&wrapped())))
            .unwrap();
        assert!(
            store.get("undone").unwrap().is_some(),
            "reads its own write"
        );
        assert_eq!(store.get_material("undone").unwrap(), Some(wrapped()));
        assert!(!seen_elsewhere("undone"), "not committed yet");
        let dup = row("dup", "alice", &["dup"]);
        let refused = store.write(move |tx| tx.insert(&dup, None));
        assert!(matches!(refused, Err(StoreError::NameTaken)), "{refused:?}");
        assert!(store.get("undone").unwrap().is_some(), "undone alone");
        // Dropped without commit: rolled back.
    }
    assert!(store.get("undone").unwrap().is_none());
    assert_eq!(store.last_change_seq().unwrap(), 1);
    let batch = store.begin_batch().unwrap();
    for uid in ["kept-1", "kept-2"] {
        let r = row(uid, "alice", &[]);
        store.write(move |tx| tx.insert(&r, None)).unwrap();
    }
    batch.commit().unwrap();
    assert!(seen_elsewhere("kept-1") && seen_elsewhere("kept-2"));
    assert_eq!(store.last_change_seq().unwrap(), 3);
    // The writer goes on after the batch.
    let later = row("later", "alice", &[]);
    store.write(move |tx| tx.insert(&later, None)).unwrap();
    assert_eq!(store.last_change_seq().unwrap(), 4);
}

/// A batch on one node holds the write lock: another node's write of the same Name waits for
/// the batch and then sees its commit (NameTaken), rather than both taking the Name.
#[test]
fn postgres_a_batch_on_one_node_holds_other_nodes_writes_until_it_commits() {
    let Some(place) = Place::new(Db::Postgres) else {
        return;
    };
    let one = place.open_as("node-1").unwrap();
    let two = Arc::new(place.open_as("node-2").unwrap());
    let batch = one.begin_batch().unwrap();
    let mine = row("in-batch", "alice", &["n"]);
    one.write(move |tx| tx.insert(&mine, None)).unwrap();
    let other = {
        let two = two.clone();
        std::thread::spawn(move || {
            let theirs = row("other-node", "alice", &["n"]);
            two.write(move |tx| tx.insert(&theirs, None))
        })
    };
    // Give the other node's write time to reach the lock (the outcome must not depend on it).
    std::thread::sleep(std::time::Duration::from_millis(300));
    batch.commit().unwrap();
    let theirs = other.join().unwrap();
    assert!(matches!(theirs, Err(StoreError::NameTaken)), "{theirs:?}");
    assert!(two.get("in-batch").unwrap().is_some());
    assert!(two.get("other-node").unwrap().is_none());
}

/// What a copy must bring along: each object with its names (in order), groups and material,
/// the accounts, the revocations, and the change log.
fn contents(store: &Store, uids: &[&str]) -> impl PartialEq + std::fmt::Debug {
    let objects: Vec<_> = uids
        .iter()
        .map(|u| (store.get(u).unwrap(), store.get_material(u).unwrap()))
        .collect();
    let log: Vec<_> = store
        .changes_after(0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.entity, e.uid, e.kind, e.at, e.hlc))
        .collect();
    (
        objects,
        store.accounts(AccountKind::User).unwrap(),
        store.accounts(AccountKind::Group).unwrap(),
        store.cert_revocations().unwrap(),
        log,
    )
}

/// A snapshot of either backend is a SQLite file at the SQLite store's schema holding every
/// row; imported into a PostgreSQL database (one transaction under the write lock), it gives
/// the same store, which goes on numbering objects and changes after the restored ones. An
/// import into a database holding objects is refused unless told to replace them.
fn a_snapshot_holds_every_row_and_imports_into_postgres(db: Db) {
    let Some((_place, store)) = open_on(db) else {
        return;
    };
    let mut a = row("a", "alice", &["second", "first"]);
    a.groups = vec!["g2".into(), "g1".into()];
    let (b, c) = (row("b", "bob", &[]), row("c", "carol", &["x"]));
    store
        .write(move |tx| {
            tx.insert(&a, Some(&wrapped()))?;
            tx.insert(&b, None)?;
            tx.insert(&c, Some(&wrapped()))?;
            tx.delete_material("c")?;
            tx.put_account(AccountKind::User, "bob", &account(false, &["get"]))?;
            tx.put_account(AccountKind::Group, "HR", &account(true, &["all"]))
        })
        .unwrap();
    store
        .record_cert_revocations(vec![CertRevocation {
            issuer: "CN=CA".into(),
            serial: "0a".into(),
            reason: "keyCompromise".into(),
            revoked_at: 1000,
        }])
        .unwrap();
    let uids = ["a", "b", "c"];
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snapshot.db");
    let mut steps = Vec::new();
    store
        .snapshot_to(&snap, &mut |done, total| steps.push((done, total)))
        .unwrap();
    let (done, total) = *steps.last().unwrap();
    assert!(done == total && total > 0, "{steps:?}");
    let version: i64 = rusqlite::Connection::open(&snap)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::SCHEMA_VERSION);
    let copy = Store::open(&snap).unwrap();
    assert_eq!(contents(&copy, &uids), contents(&store, &uids));
    if db == Db::Postgres {
        // Every entry is taken as audited (its record is the writing node's to make); a
        // SQLite snapshot keeps its node's mark as it was.
        assert_eq!(copy.unaudited_changes().unwrap().1, 0);
    }
    copy.close();

    let Some(target) = Place::new(Db::Postgres) else {
        return;
    };
    let Place::Postgres(cfg) = &target else {
        unreachable!()
    };
    let imported =
        crate::store::postgres::copy::import(cfg, &snap, "k1", false, &mut |_, _| {}).unwrap();
    assert_eq!(imported.objects, 3);
    let restored = target.open();
    // The restored keys' KEK is the database's from now on.
    assert_eq!(restored.database_kek().unwrap().as_deref(), Some("k1"));
    assert_eq!(contents(&restored, &uids), contents(&store, &uids));
    assert_eq!(restored.unaudited_changes().unwrap().1, 0);
    // New objects and changes are numbered after the restored ones.
    let next_seq = store.last_change_seq().unwrap() + 1;
    let d = row("d", "dave", &["first"]);
    restored.write(move |tx| tx.insert(&d, None)).unwrap();
    assert_eq!(restored.last_change_seq().unwrap(), next_seq);
    let located = restored.locate_with_policy(&LocateQuery {
        include_live: true,
        ..Default::default()
    });
    let seqs: Vec<i64> = located.unwrap().iter().map(|l| l.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs.len() == 4,
        "{seqs:?}"
    );
    restored.close();

    match crate::store::postgres::copy::import(cfg, &snap, "k1", false, &mut |_, _| {}) {
        Err(StoreError::NotEmpty(4)) => {}
        other => panic!("{other:?}"),
    }
    let replaced =
        crate::store::postgres::copy::import(cfg, &snap, "k1", true, &mut |_, _| {}).unwrap();
    assert_eq!(replaced.objects, 3);
    assert_eq!(contents(&target.open(), &uids), contents(&store, &uids));
}

/// Copies stream: an export fetches a page of rows at a time and an import writes many rows per
/// statement, and neither loses or repeats a row at a page's edge.
#[test]
fn postgres_copies_page_through_thousands_of_rows_both_ways() {
    let Some((_place, store)) = open_on(Db::Postgres) else {
        return;
    };
    let uids: Vec<String> = (0..2001).map(|i| format!("k{i:04}")).collect();
    let rows: Vec<ObjectRow> = uids
        .iter()
        .map(|u| row(u, "alice", &[&format!("name-{u}")]))
        .collect();
    store
        .write(move |tx| rows.iter().try_for_each(|r| tx.insert(r, Some(&wrapped()))))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snapshot.db");
    store.snapshot_to(&snap, &mut |_, _| {}).unwrap();
    let Some(target) = Place::new(Db::Postgres) else {
        return;
    };
    let Place::Postgres(cfg) = &target else {
        unreachable!()
    };
    let imported = crate::store::postgres::copy::import(cfg, &snap, "k1", false, &mut |_, _| {});
    assert_eq!(imported.unwrap().objects, 2001);
    let restored = target.open();
    let all = LocateQuery {
        include_live: true,
        ..Default::default()
    };
    assert_eq!(restored.locate(&all).unwrap(), uids);
    for u in ["k0000", "k0999", "k1000", "k2000"] {
        assert_eq!(restored.get(u).unwrap(), store.get(u).unwrap());
        assert_eq!(restored.get_material(u).unwrap(), Some(wrapped()));
    }
    assert_eq!(
        restored.last_change_seq().unwrap(),
        store.last_change_seq().unwrap()
    );
}

/// Red team (issue 22): a restore into a database other nodes serve from would replace the
/// change log under them (their followers, positioned past its new end, would miss what is
/// revoked after it), record another KEK as the database's under nodes that hold the old one,
/// and swap keys under their requests. It is refused, naming the live nodes, and nothing is
/// written; once they stop it runs.
#[test]
fn postgres_a_restore_is_refused_while_nodes_serve_the_database() {
    let Some(place) = Place::new(Db::Postgres) else {
        return;
    };
    let Place::Postgres(cfg) = &place else {
        unreachable!()
    };
    let serving = place.open_as("node-2").unwrap();
    serving.claim_node_id(std::time::Duration::ZERO).unwrap();
    serving.check_database_kek("k1", &[]).unwrap();
    let a = row("a", "alice", &["first"]);
    serving
        .write(move |tx| tx.insert(&a, Some(&wrapped())))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snapshot.db");
    serving.snapshot_to(&snap, &mut |_, _| {}).unwrap();
    let b = row("b", "bob", &[]);
    serving.write(move |tx| tx.insert(&b, None)).unwrap();
    let before = serving.last_change_seq().unwrap();

    match crate::store::postgres::copy::import(cfg, &snap, "k2", true, &mut |_, _| {}) {
        Err(e @ StoreError::NodesServing(_)) => {
            let text = e.to_string();
            assert!(text.contains("node-2"), "{text}");
        }
        other => panic!("a restore under a live node must be refused: {other:?}"),
    }
    assert_eq!(serving.database_kek().unwrap().as_deref(), Some("k1"));
    assert_eq!(serving.last_change_seq().unwrap(), before);
    assert!(serving.get("b").unwrap().is_some());

    serving.close();
    let restored = crate::store::postgres::copy::import(cfg, &snap, "k1", true, &mut |_, _| {});
    assert_eq!(restored.unwrap().objects, 1);
}

/// Red team (issue 22): a `store.url` carrying a password never shows it in the errors akm
/// reports (which reach logs, the status page and the service status): neither a URL that
/// does not parse nor a database that cannot be reached.
#[test]
fn postgres_a_password_in_store_url_stays_out_of_errors() {
    const SECRET: &str = "Sup3rS3cretPw";
    for url in [
        format!("postgresql://akm:{SECRET}@127.0.0.1:notaport/akm"),
        format!("postgresql://akm:{SECRET}@127.0.0.1:1/akm?connect_timeout=2"),
        format!("host=127.0.0.1 port=1 user=akm password={SECRET} dbname=akm connect_timeout=2"),
    ] {
        let Err(e) = Store::open_configured(&postgres_config(&url, "node-1")) else {
            panic!("{url} opened");
        };
        let (text, debug) = (e.to_string(), format!("{e:?}"));
        assert!(
            !text.contains(SECRET) && !debug.contains(SECRET),
            "{text} / {debug}"
        );
    }
    // The password where it belongs (store.password_file), the database unreachable.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.password");
    std::fs::write(&file, SECRET).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let unreachable = crate::config::StoreConfig {
        password_file: Some(file),
        ..postgres_config(
            "postgresql://akm@127.0.0.1:1/akm?connect_timeout=2",
            "node-1",
        )
    };
    let Err(e) = Store::open_configured(&unreachable) else {
        panic!("port 1 answered");
    };
    let (text, debug) = (e.to_string(), format!("{e:?}"));
    assert!(
        !text.contains(SECRET) && !debug.contains(SECRET),
        "{text} / {debug}"
    );
}

/// The database password comes from a private file: one readable by others is refused,
/// naming the key; a 0600 one is used.
#[test]
fn postgres_a_password_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let Some(Place::Postgres(config)) = Place::new(Db::Postgres) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.password");
    std::fs::write(&file, "s3cret\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let with_file = crate::config::StoreConfig {
        password_file: Some(file.clone()),
        ..config
    };
    match Store::open_configured(&with_file) {
        Err(StoreError::Config(e)) => {
            assert!(e.contains("store.password_file"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // (The test server trusts the role; a server asking for the password gets this one.)
    Store::open_configured(&with_file).unwrap();
}
