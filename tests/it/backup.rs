//! Backup and restore through the `akm` binary under load: a sealed node (2 of 3 shares)
//! takes `akm backup` while clients keep creating and reading keys (none of their requests
//! fails); the data directory is wiped; `akm restore` refuses a copy of the backup with one
//! flipped byte and a truncated copy, then restores the real one into the empty node, which
//! after unsealing serves every key that existed before the backup with the same bytes, and
//! the user records and key policies too. The backup log and audit journal name the file's
//! SHA-256.

use crate::cli::{akm, json, serve, write_config, BIN};
use crate::support::kmip::{create_key, key_bytes, uid};
use akm::client::Client;
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

fn stop(mut server: Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(server.wait().unwrap().success());
}

/// `akm --config CONFIG ARGS`, no server address, no stdin.
pub(crate) fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A command's stdout and stderr together.
pub(crate) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn connect(dir: &Path, port: u16) -> Client {
    let certs = dir.join("certs");
    let tls = akm::tls::client_config(
        &certs.join("admin.crt"),
        &certs.join("admin.key"),
        &certs.join("ca.crt"),
    )
    .unwrap();
    Client::connect(&format!("localhost:{port}"), tls, ProtocolVersion::V1_4)
        .await
        .unwrap()
}

async fn material(c: &mut Client, u: &str) -> Vec<u8> {
    key_bytes(&c.call(op::GET, uid(u)).await.unwrap())
}

fn unseal(config: &Path, port: u16, shares: &Path, which: &[u32]) {
    for i in which {
        let f = shares.join(format!("share-{i}.txt"));
        json(&akm(
            config,
            port,
            &["unseal", "--json", "--share-file", f.to_str().unwrap()],
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_under_load_wipe_restore_serves_every_key_and_policy() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let config = write_config(&root);
    let shares = root.join("shares");
    // A sealed node: the KEK-and-configuration backup is kek.sealed and akm.toml, useless
    // without the custodians' shares.
    let (server, port) = serve(&config);
    json(&akm(&config, port, &["kek", "status", "--json"]));
    stop(server);
    let sealed = run(
        &config,
        &[
            "kek",
            "seal",
            "--shares",
            "3",
            "--threshold",
            "2",
            "--out",
            shares.to_str().unwrap(),
        ],
    );
    assert!(sealed.status.success(), "{}", text(&sealed));
    let kek_copy = root.join("kek.sealed.copy");
    std::fs::copy(root.join("data/kek.sealed"), &kek_copy).unwrap();

    let (server, port) = serve(&config);
    unseal(&config, port, &shares, &[1, 3]);
    let mut c = connect(&root, port).await;
    let mut before = Vec::new();
    for i in 0..40 {
        let u = create_key(&mut c, Some(&format!("pre-{i}"))).await;
        before.push((u.clone(), material(&mut c, &u).await));
    }
    // Policies and user records are part of what a restore must bring back.
    json(&akm(
        &config,
        port,
        &["user", "set", "carol", "--ops", "get,locate", "--json"],
    ));
    json(&akm(
        &config,
        port,
        &[
            "key",
            "policy",
            "set",
            &before[0].0,
            "--group",
            "HR",
            "--mode",
            "group",
            "--json",
        ],
    ));

    // Load: creates and reads, until the backup is done.
    let done = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..3 {
        let (done, ok, root) = (done.clone(), ok.clone(), root.clone());
        let known = before[1].0.clone();
        workers.push(tokio::spawn(async move {
            let mut c = connect(&root, port).await;
            let mut failures = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let v = c.version;
                let created = c
                    .call(
                        op::CREATE,
                        crate::support::kmip::create_payload(
                            v,
                            &crate::support::kmip::aes_attrs(None),
                        ),
                    )
                    .await;
                let got = c.call(op::GET, uid(&known)).await;
                for r in [created, got] {
                    match r {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.push(e.to_string()),
                    }
                }
            }
            failures
        }));
    }
    // Let the load get going, then back up while it runs.
    while ok.load(Ordering::Relaxed) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (cfg, p) = (config.clone(), port);
    let backed = tokio::task::spawn_blocking(move || akm(&cfg, p, &["backup", "--json"]))
        .await
        .unwrap();
    let during = ok.load(Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "requests failed under backup: {failures:?}"
    );
    let info = json(&backed);
    let file = std::path::PathBuf::from(info["file"].as_str().unwrap());
    let sha = info["sha256"].as_str().unwrap().to_owned();
    assert_eq!(
        std::fs::canonicalize(file.parent().unwrap()).unwrap(),
        std::fs::canonicalize(root.join("backups")).unwrap()
    );
    eprintln!(
        "backup of {} bytes; {during} requests succeeded during the run",
        info["bytes"]
    );
    drop(c);
    stop(server);
    let log = std::fs::read_to_string(root.join("backups/backup.log")).unwrap();
    assert!(log.contains(&format!("sha256={sha}")), "{log}");
    assert!(log.contains("by=admin"), "{log}");

    // Disaster: the data directory is gone. The KEK-and-config backup comes back first.
    std::fs::remove_dir_all(root.join("data")).unwrap();
    std::fs::create_dir(root.join("data")).unwrap();
    std::fs::copy(&kek_copy, root.join("data/kek.sealed")).unwrap();
    let s = |i: u32| shares.join(format!("share-{i}.txt")).display().to_string();
    let (s1, s2) = (s(1), s(2));

    // One flipped byte, and a truncated copy: refused, nothing written.
    let bytes = std::fs::read(&file).unwrap();
    let flipped = root.join("flipped.akmbak");
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x04;
    std::fs::write(&flipped, &bad).unwrap();
    let truncated = root.join("truncated.akmbak");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    for f in [&flipped, &truncated] {
        let refused = run(
            &config,
            &[
                "restore",
                f.to_str().unwrap(),
                "--share-file",
                &s1,
                "--share-file",
                &s2,
            ],
        );
        assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
        assert!(
            text(&refused).contains("damaged or tampered"),
            "{}",
            text(&refused)
        );
        assert!(
            !root.join("data/akm.db").exists(),
            "a refused restore wrote the database"
        );
        assert!(!root.join("data/akm.db.restoring").exists());
    }
    // Without shares the sealed KEK cannot be used.
    let no_shares = run(&config, &["restore", file.to_str().unwrap()]);
    assert_eq!(no_shares.status.code(), Some(64), "{}", text(&no_shares));

    let restored = run(
        &config,
        &[
            "restore",
            file.to_str().unwrap(),
            "--share-file",
            &s1,
            "--share-file",
            &s2,
        ],
    );
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(text(&restored).contains(&sha), "{}", text(&restored));
    // Restoring over a node that has a database is refused.
    let again = run(
        &config,
        &[
            "restore",
            file.to_str().unwrap(),
            "--share-file",
            &s1,
            "--share-file",
            &s2,
        ],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("empty node"), "{}", text(&again));

    let (server, port) = serve(&config);
    unseal(&config, port, &shares, &[2, 3]);
    let mut c = connect(&root, port).await;
    for (u, bytes) in &before {
        assert_eq!(&material(&mut c, u).await, bytes, "key {u} after restore");
    }
    let policy = json(&akm(
        &config,
        port,
        &["key", "policy", "show", &before[0].0, "--json"],
    ));
    assert_eq!(policy["group"], "HR");
    assert_eq!(policy["mode"], "group");
    let users = json(&akm(&config, port, &["user", "list", "--json"]));
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "carol"),
        "{users}"
    );
    drop(c);
    stop(server);
}

/// Scheduled backups: with `interval_secs = 1` and `keep = 2` the server writes a backup every
/// second as `scheduler`, logged with its checksum, and keeps only the newest two; the newest
/// verifies with `akm restore --verify-only`.
#[test]
fn scheduled_backups_are_logged_and_pruned_to_keep() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let config = write_config(&root);
    let mut cfg_text = std::fs::read_to_string(&config).unwrap();
    cfg_text.push_str("[backup]\ninterval_secs = 1\nkeep = 2\n");
    std::fs::write(&config, cfg_text).unwrap();
    let (server, port) = serve(&config);
    json(&akm(
        &config,
        port,
        &["key", "create", "--name", "sched", "--json"],
    ));
    let backups = root.join("backups");
    let count = || {
        std::fs::read_dir(&backups)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".akmbak"))
                    .count()
            })
            .unwrap_or(0)
    };
    let logged = || {
        std::fs::read_to_string(backups.join("backup.log"))
            .map(|l| l.lines().filter(|l| l.contains("by=scheduler")).count())
            .unwrap_or(0)
    };
    // Behaviour, not timing: wait (up to a generous bound) for three logged backups and the
    // pruning that follows each.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !(logged() >= 3 && count() == 2) {
        assert!(
            std::time::Instant::now() < deadline,
            "no 3 scheduled backups pruned to 2"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    stop(server);
    let mut files: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "akmbak"))
        .collect();
    files.sort();
    let newest = files.last().unwrap();
    let verified = run(
        &config,
        &["restore", newest.to_str().unwrap(), "--verify-only"],
    );
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains("verified"), "{}", text(&verified));
    let journal = std::fs::read_to_string(root.join("data/audit/audit.log")).unwrap();
    assert!(journal.contains("scheduled\\x20backup"), "no audit record");
}

/// A server whose context has no backup runner (no backup directory: the in-process test
/// server) refuses the Backup operation with Feature Not Supported, writes nothing and keeps
/// serving the connection; a non-administrator is refused before it gets that far.
#[tokio::test]
async fn backup_without_a_runner_is_refused_cleanly() {
    use crate::support::kmip::reason;
    use akm::kmip::custody as ext;
    use akm::kmip::enums::result_reason as rr;
    let server = crate::support::server::TestServer::start().await;
    let admin_tls = server.client_tls("root", &["admins"]);
    let mut admin = server
        .connect(admin_tls, ProtocolVersion::V1_4)
        .await
        .unwrap();
    assert_eq!(
        reason(admin.call(ext::OP_BACKUP, Vec::new()).await),
        rr::FEATURE_NOT_SUPPORTED
    );
    admin.call(ext::OP_SEAL_STATUS, Vec::new()).await.unwrap();
    let mut user = server.client("alice", ProtocolVersion::V1_4).await;
    assert_eq!(
        reason(user.call(ext::OP_BACKUP, Vec::new()).await),
        rr::PERMISSION_DENIED
    );
    let backups = std::fs::read_dir(server.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("akmbak"))
        .count();
    assert_eq!(backups, 0);
    server.stop().await;
}
