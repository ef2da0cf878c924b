//! Backups and restores across the two store backends, and `akm store migrate`, through the
//! `akm` binary on a real PostgreSQL (`support::postgres`; SKIPPED when it is not installed):
//!
//! - the SQLite → PostgreSQL upgrade path: `akm backup` on a SQLite node, `akm restore` with a
//!   postgres configuration, `akm serve` on PostgreSQL, and every key's Get gives the bytes it
//!   gave before; a second restore into the database, which now holds objects, is refused
//!   without `--force`, and replaces it with;
//! - the reverse: `akm backup` on a PostgreSQL node (a logical copy), `akm restore
//!   --verify-only`, then a restore into a SQLite node that serves every key;
//! - `akm store migrate` on a fresh PostgreSQL database and on a SQLite file (no KEK there),
//!   `--check` exiting 1 while migrations are pending, and a database newer than the binary
//!   refused with what to do.

use crate::backup::{run, text};
use crate::cli::{akm, json, serve, write_config};
use crate::support::postgres;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// A second configuration beside `root`'s `config/akm.toml` (same certificates, same data
/// directory, so the same KEK) whose store is the PostgreSQL database at `url`.
fn postgres_config(root: &Path, url: &str) -> PathBuf {
    let sqlite = std::fs::read_to_string(root.join("config/akm.toml")).unwrap();
    let store = "[store]\ndata_dir = \"../data\"\n";
    assert!(sqlite.contains(store));
    let text = sqlite.replace(
        store,
        &format!(
            "{store}backend = \"postgres\"\nurl = \"{url}\"\ntls = \"off\"\nnode_id = \"n1\"\n"
        ),
    );
    let path = root.join("config/akm-pg.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn stop(mut server: Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(server.wait().unwrap().success());
}

/// Creates `n` named keys; each uid with its material.
fn create_keys(config: &Path, port: u16, prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let name = format!("{prefix}-{i}");
            let created = json(&akm(
                config,
                port,
                &["key", "create", "--name", &name, "--activate", "--json"],
            ));
            let uid = created["uid"].as_str().unwrap().to_owned();
            let material = material(config, port, &uid);
            (uid, material)
        })
        .collect()
}

fn material(config: &Path, port: u16, uid: &str) -> String {
    let got = json(&akm(
        config,
        port,
        &["key", "get", uid, "--material", "--json"],
    ));
    got["material_hex"].as_str().unwrap().to_owned()
}

/// Every key gives the same material on the server at `port`, and is found by its name.
fn assert_served(config: &Path, port: u16, keys: &[(String, String)], prefix: &str) {
    for (i, (uid, bytes)) in keys.iter().enumerate() {
        assert_eq!(&material(config, port, uid), bytes, "key {uid}");
        let found = json(&akm(
            config,
            port,
            &[
                "key",
                "locate",
                "--name",
                &format!("{prefix}-{i}"),
                "--json",
            ],
        ));
        assert_eq!(found, serde_json::json!([uid]));
    }
}

/// Takes `akm backup` on the server at `port`; the backup file.
fn backup(config: &Path, port: u16) -> PathBuf {
    let info = json(&akm(config, port, &["backup", "--json"]));
    PathBuf::from(info["file"].as_str().unwrap())
}

#[test]
fn a_sqlite_backup_restored_into_postgres_serves_every_key_and_refuses_a_second_without_force() {
    let Some(db) = postgres::database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let sqlite = write_config(root);
    let (server, port) = serve(&sqlite);
    let keys = create_keys(&sqlite, port, "up", 5);
    json(&akm(
        &sqlite,
        port,
        &["user", "set", "carol", "--ops", "get,locate", "--json"],
    ));
    let file = backup(&sqlite, port);
    stop(server);

    let pg = postgres_config(root, &db.url);
    let restored = run(&pg, &["restore", file.to_str().unwrap()]);
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(text(&restored).contains(&db.name), "{}", text(&restored));
    assert!(!root.join("data/akm.db.restoring").exists());

    let (server, port) = serve(&pg);
    assert_served(&pg, port, &keys, "up");
    let users = json(&akm(&pg, port, &["user", "list", "--json"]));
    assert!(users.to_string().contains("carol"), "{users}");
    // The restored node goes on: a new key is stored after the restored ones.
    let more = create_keys(&pg, port, "after", 1);
    stop(server);

    // Now the database holds objects: akm nodes may be running on it.
    let again = run(&pg, &["restore", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("--force"), "{}", text(&again));
    assert!(text(&again).contains("6 objects"), "{}", text(&again));
    // --force on a SQLite node is a usage error: it restores only into an empty directory.
    let sqlite_force = run(&sqlite, &["restore", file.to_str().unwrap(), "--force"]);
    assert_eq!(
        sqlite_force.status.code(),
        Some(64),
        "{}",
        text(&sqlite_force)
    );

    let forced = run(
        &pg,
        &["restore", file.to_str().unwrap(), "--force", "--json"],
    );
    assert!(forced.status.success(), "{}", text(&forced));
    let (server, port) = serve(&pg);
    assert_served(&pg, port, &keys, "up");
    let gone = akm(&pg, port, &["key", "get", &more[0].0]);
    assert_eq!(gone.status.code(), Some(2), "{}", text(&gone));
    stop(server);
}

#[test]
fn a_postgres_backup_verifies_and_restores_into_a_sqlite_node() {
    let Some(db) = postgres::database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let sqlite = write_config(root);
    let pg = postgres_config(root, &db.url);
    let (server, port) = serve(&pg);
    let keys = create_keys(&pg, port, "pg", 5);
    let file = backup(&pg, port);
    stop(server);
    assert!(!root.join("data/akm.db").exists());

    let verified = run(&pg, &["restore", "--verify-only", file.to_str().unwrap()]);
    assert!(verified.status.success(), "{}", text(&verified));
    let restored = run(&sqlite, &["restore", file.to_str().unwrap()]);
    assert!(restored.status.success(), "{}", text(&restored));
    let (server, port) = serve(&sqlite);
    assert_served(&sqlite, port, &keys, "pg");
    stop(server);
}

#[test]
fn store_migrate_brings_postgres_and_sqlite_to_this_version_and_check_reports_pending() {
    let Some(db) = postgres::database() else {
        return;
    };
    // No `akm init`: no KEK, no certificates. Migrating needs neither.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let sqlite = write_config(root);
    let pg = postgres_config(root, &db.url);
    assert!(!root.join("data/kek.key").exists());
    for config in [&pg, &sqlite] {
        let pending = run(config, &["store", "migrate", "--check"]);
        assert_eq!(pending.status.code(), Some(1), "{}", text(&pending));
        assert!(
            text(&pending).contains("schema version 0") && text(&pending).contains("pending"),
            "{}",
            text(&pending)
        );
        let migrated = json(&run(config, &["store", "migrate", "--json"]));
        assert_eq!(migrated["version_before"], 0, "{migrated}");
        assert_eq!(
            migrated["version_after"], migrated["supported"],
            "{migrated}"
        );
        assert_eq!(migrated["pending"], false);
        let checked = json(&run(config, &["store", "migrate", "--check", "--json"]));
        assert_eq!(
            checked["version_before"], migrated["supported"],
            "{checked}"
        );
        let again = run(config, &["store", "migrate"]);
        assert!(text(&again).contains("up to date"), "{}", text(&again));
    }
    assert!(root.join("data/akm.db").exists());
    assert!(!root.join("data/kek.key").exists());

    // A database newer than this binary: refused, naming the fix.
    let mut client = ::postgres::Client::connect(&db.url, ::postgres::NoTls).unwrap();
    client
        .batch_execute("UPDATE schema_version SET version = 999")
        .unwrap();
    rusqlite::Connection::open(root.join("data/akm.db"))
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    for config in [&pg, &sqlite] {
        for args in [&["store", "migrate"][..], &["store", "migrate", "--check"]] {
            let newer = run(config, args);
            assert_eq!(newer.status.code(), Some(1), "{}", text(&newer));
            assert!(
                text(&newer).contains("999 is newer than this akm"),
                "{}",
                text(&newer)
            );
        }
    }
}
