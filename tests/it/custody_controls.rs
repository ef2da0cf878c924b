//! The custody controls of issue 21 through the `akm` binary:
//! - dual control over key creation, clear export, revocation and unseal: one administrator
//!   alone is refused, a second one's window (or, for unseal, a share from a second
//!   administrator, or a window opened while sealed) lets the operation through;
//! - `akm kek rotate` keeps the retired KEK (wrapped, in `kek.archive`) and says so; a
//!   backup taken before the rotation still restores;
//! - `akm backup --kek-and-config` / `akm restore --kek-and-config` rebuild an empty node that,
//!   with a data backup restored, serves the old keys; a tampered archive and an existing
//!   target are refused; under dual control a restore needs two custodians' shares;
//! - `[backup] schedule` fires at its time; a bad one is refused naming the key.

use crate::cli::{akm, json, serve, write_config, BIN};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn stop(mut server: Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(server.wait().unwrap().success());
}

/// `akm` with no server flag (offline commands).
fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn append(config: &Path, extra: &str) {
    let mut t = std::fs::read_to_string(config).unwrap();
    t.push_str(extra);
    std::fs::write(config, t).unwrap();
}

/// Initializes the node, then seals its KEK into 3 shares (any 2 unseal) in `root/shares`.
fn sealed_node(root: &Path) -> PathBuf {
    let config = write_config(root);
    let init = run(&config, &["init"]);
    assert!(init.status.success(), "{}", text(&init));
    let shares = root.join("shares");
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
    config
}

fn share(root: &Path, i: u32) -> String {
    root.join(format!("shares/share-{i}.txt"))
        .display()
        .to_string()
}

/// Runs `akm ARGS` as alice, a second administrator.
fn as_alice(root: &Path, config: &Path, port: u16, args: &[&str]) -> Output {
    let issued = root.join("issued");
    if !issued.join("alice.crt").exists() {
        let o = run(
            config,
            &[
                "cert",
                "issue",
                "--cn",
                "alice",
                "--ou",
                "admins",
                "--out",
                issued.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    let (crt, key) = (issued.join("alice.crt"), issued.join("alice.key"));
    let mut a = args.to_vec();
    a.extend([
        "--cert",
        crt.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    akm(config, port, &a)
}

fn refused_by_dual_control(o: &Output) {
    assert_eq!(o.status.code(), Some(2), "{}", text(o));
    assert!(text(o).contains("dual control"), "{}", text(o));
}

#[test]
fn dual_control_covers_creation_export_revocation_and_unseal() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = sealed_node(root);
    append(
        &config,
        "[dual_control]\noperations = [\"create\", \"export\", \"revoke\", \"unseal\"]\n",
    );
    let (server, port) = serve(&config);

    // Unseal: two shares from one administrator do not open the KEK...
    json(&akm(
        &config,
        port,
        &["unseal", "--json", "--share-file", &share(root, 1)],
    ));
    let alone = akm(&config, port, &["unseal", "--share-file", &share(root, 2)]);
    refused_by_dual_control(&alone);
    assert_eq!(
        json(&akm(&config, port, &["kek", "status", "--json"]))["sealed"],
        true
    );
    // ...a share from a second administrator does.
    let opened = json(&as_alice(
        root,
        &config,
        port,
        &["unseal", "--json", "--share-file", &share(root, 2)],
    ));
    assert_eq!(opened["sealed"], false, "{opened}");

    // Create: refused alone, admitted in alice's window.
    refused_by_dual_control(&akm(&config, port, &["key", "create", "--name", "k1"]));
    json(&as_alice(
        root,
        &config,
        port,
        &["authorize", "--user", "admin", "--op", "create", "--json"],
    ));
    let uid = json(&akm(
        &config,
        port,
        &["key", "create", "--name", "k1", "--activate", "--json"],
    ))["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    // Metadata is no export; the key bytes in the clear are.
    json(&akm(&config, port, &["key", "get", &uid, "--json"]));
    refused_by_dual_control(&akm(&config, port, &["key", "get", &uid, "--material"]));
    // Another operation's window does not help: revoke is refused too.
    refused_by_dual_control(&akm(&config, port, &["key", "revoke", &uid]));
    json(&as_alice(
        root,
        &config,
        port,
        &["authorize", "--user", "admin", "--op", "export", "--json"],
    ));
    let got = json(&akm(
        &config,
        port,
        &["key", "get", &uid, "--material", "--json"],
    ));
    assert_eq!(got["material_hex"].as_str().unwrap().len(), 64);
    // An administrator cannot approve their own request.
    let refused = akm(&config, port, &["key", "revoke", &uid]);
    let id = text(&refused)
        .rsplit("akm approve ")
        .next()
        .unwrap()
        .split('`')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(akm(&config, port, &["approve", &id]).status.code(), Some(2));
    let refused = akm(&config, port, &["key", "revoke", &uid]);
    refused_by_dual_control(&refused);
    let id = text(&refused)
        .rsplit("akm approve ")
        .next()
        .unwrap()
        .split('`')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    json(&as_alice(root, &config, port, &["approve", &id, "--json"]));
    json(&akm(&config, port, &["key", "revoke", &uid, "--json"]));
    stop(server);

    // Unseal with a window a second administrator opens while the server is sealed.
    let (server, port) = serve(&config);
    json(&akm(
        &config,
        port,
        &["unseal", "--json", "--share-file", &share(root, 3)],
    ));
    refused_by_dual_control(&akm(
        &config,
        port,
        &["unseal", "--share-file", &share(root, 1)],
    ));
    json(&as_alice(
        root,
        &config,
        port,
        &["authorize", "--user", "admin", "--op", "unseal", "--json"],
    ));
    let opened = json(&akm(
        &config,
        port,
        &["unseal", "--json", "--share-file", &share(root, 1)],
    ));
    assert_eq!(opened["sealed"], false);
    stop(server);
    let journal = std::fs::read_to_string(root.join("data/audit/audit.log")).unwrap();
    assert!(
        journal.contains("authorized\\x20by\\x20alice"),
        "no dual-control record naming both"
    );

    // A name that is not guardable is refused, naming the key and the choices.
    let t = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"unseal\"]", "\"unseal\", \"exports\"]");
    std::fs::write(&config, t).unwrap();
    let bad = run(&config, &["kek", "status"]);
    assert_eq!(bad.status.code(), Some(78), "{}", text(&bad));
    assert!(
        text(&bad).contains("dual_control.operations") && text(&bad).contains("attributes"),
        "{}",
        text(&bad)
    );
}

#[test]
fn a_rebuilt_node_restores_a_backup_taken_before_a_kek_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node");
    let config = sealed_node(&root);
    let (server, port) = serve(&config);
    for i in [1, 2] {
        json(&akm(
            &config,
            port,
            &["unseal", "--json", "--share-file", &share(&root, i)],
        ));
    }
    let uid = json(&akm(
        &config,
        port,
        &["key", "create", "--name", "old", "--json"],
    ))["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = json(&akm(
        &config,
        port,
        &["key", "get", &uid, "--material", "--json"],
    ))["material_hex"]
        .clone();
    let backup = json(&akm(&config, port, &["backup", "--json"]));
    let old_backup = PathBuf::from(backup["file"].as_str().unwrap());
    let old_kek = backup["kek_id"].as_str().unwrap().to_owned();

    let rotated = akm(&config, port, &["kek", "rotate", "--json"]);
    let out = json(&rotated);
    assert_eq!(out["retired"][0], old_kek.as_str(), "{out}");
    assert!(
        out["kept_in"].as_str().unwrap().ends_with("kek.archive"),
        "{out}"
    );
    assert!(
        String::from_utf8_lossy(&rotated.stderr).contains("stay restorable"),
        "{}",
        text(&rotated)
    );
    stop(server);

    // The KEK-and-configuration archive: sealed KEK, the archive of retired KEKs, config, PKI.
    let kit = dir.path().join("node.akmkc");
    let made = run(
        &config,
        &[
            "backup",
            "--kek-and-config",
            "--out",
            kit.to_str().unwrap(),
            "--json",
        ],
    );
    let made = json(&made);
    let contains: Vec<&str> = made["contains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for f in [
        "@config",
        "../data/kek.sealed",
        "../data/kek.archive",
        "../certs/ca.key",
    ] {
        assert!(contains.contains(&f), "{f} missing: {contains:?}");
    }
    assert_eq!(
        std::fs::metadata(&kit).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A node in key-file mode (clear KEK) is refused: the archive never holds a clear KEK.
    let clear = dir.path().join("clear");
    let clear_config = write_config(&clear);
    assert!(run(&clear_config, &["init"]).status.success());
    let refused = run(
        &clear_config,
        &[
            "backup",
            "--kek-and-config",
            "--out",
            clear.join("x").to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("akm kek seal"),
        "{}",
        text(&refused)
    );
    assert!(!clear.join("x").exists());

    // A new, empty node: a tampered archive is refused and writes nothing.
    let new_root = dir.path().join("rebuilt");
    let new_config = new_root.join("config/akm.toml");
    let mut bytes = std::fs::read(&kit).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let tampered = dir.path().join("tampered.akmkc");
    std::fs::write(&tampered, bytes).unwrap();
    let bad = run(
        &new_config,
        &["restore", "--kek-and-config", tampered.to_str().unwrap()],
    );
    assert!(!bad.status.success());
    assert!(text(&bad).contains("checksum"), "{}", text(&bad));
    assert!(!new_root.exists(), "a refused archive wrote files");
    let restored = run(
        &new_config,
        &["restore", "--kek-and-config", kit.to_str().unwrap()],
    );
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(new_root.join("data/kek.sealed").exists());
    assert_eq!(
        std::fs::metadata(new_root.join("certs/server.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let again = run(
        &new_config,
        &["restore", "--kek-and-config", kit.to_str().unwrap()],
    );
    assert!(!again.status.success());
    assert!(text(&again).contains("--force"), "{}", text(&again));
    let forced = run(
        &new_config,
        &[
            "restore",
            "--kek-and-config",
            kit.to_str().unwrap(),
            "--force",
        ],
    );
    assert!(forced.status.success(), "{}", text(&forced));

    // Under dual control, a data restore needs two custodians' shares.
    append(&new_config, "[dual_control]\noperations = [\"restore\"]\n");
    let one = run(
        &new_config,
        &[
            "restore",
            old_backup.to_str().unwrap(),
            "--share-file",
            &share(&root, 1),
        ],
    );
    assert!(!one.status.success());
    assert!(text(&one).contains("two"), "{}", text(&one));
    assert!(!new_root.join("data/akm.db").exists());
    // The backup from before the rotation restores with the archived KEK.
    let data = run(
        &new_config,
        &[
            "restore",
            old_backup.to_str().unwrap(),
            "--share-file",
            &share(&root, 1),
            "--share-file",
            &share(&root, 3),
        ],
    );
    assert!(data.status.success(), "{}", text(&data));

    let (server, port) = serve(&new_config);
    for i in [2, 3] {
        json(&akm(
            &new_config,
            port,
            &["unseal", "--json", "--share-file", &share(&root, i)],
        ));
    }
    let after = json(&akm(
        &new_config,
        port,
        &["key", "get", &uid, "--material", "--json"],
    ));
    assert_eq!(after["material_hex"], before);
    stop(server);
}

#[test]
fn a_time_of_day_schedule_fires_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let text0 = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text0}[backup]\nschedule = \"daily 25:00\"\n"),
    )
    .unwrap();
    let bad = run(&config, &["kek", "status"]);
    assert_eq!(bad.status.code(), Some(78), "{}", text(&bad));
    assert!(
        text(&bad).contains("backup.schedule") && text(&bad).contains("daily 02:30"),
        "{}",
        text(&bad)
    );
    std::fs::write(
        &config,
        format!("{text0}[backup]\nschedule = \"daily 02:30\"\ninterval_secs = 60\n"),
    )
    .unwrap();
    assert_eq!(run(&config, &["kek", "status"]).status.code(), Some(78));

    // Every 2 seconds (6-field cron, seconds first): a backup appears within moments.
    std::fs::write(
        &config,
        format!("{text0}[backup]\nschedule = \"*/2 * * * * *\"\n"),
    )
    .unwrap();
    let (server, _port) = serve(&config);
    let backups = dir.path().join("backups");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(backups.join("backup.log")).unwrap_or_default();
        if log.contains("by=scheduler") {
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled backup: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(server);
}
