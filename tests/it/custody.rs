//! KEK custody through the `akm` binary as operators use it: a node's development KEK is
//! sealed into 5 custodian shares (any 3 unseal); restarted, the server serves nothing but
//! the custody operations; a damaged share and a non-administrator are refused; 2 shares
//! leave it sealed, the 3rd unseals it and the key created before sealing reads back with the
//! same bytes. The passphrase mode does the same with one passphrase.

use crate::cli::{akm, json, serve, write_config, BIN};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

fn stop(mut server: Child) {
    let stopped = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(server.wait().unwrap().success());
}

fn kek_seal(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["kek", "seal"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Creates a key on a fresh auto-initialized node and returns (uid, material hex).
fn node_with_a_key(config: &Path) -> (String, String) {
    let (server, port) = serve(config);
    let created = json(&akm(
        config,
        port,
        &["key", "create", "--name", "k", "--json"],
    ));
    let uid = created["uid"].as_str().unwrap().to_owned();
    let got = json(&akm(
        config,
        port,
        &["key", "get", &uid, "--material", "--json"],
    ));
    stop(server);
    (uid, got["material_hex"].as_str().unwrap().to_owned())
}

#[test]
fn a_node_sealed_with_3_of_5_shares_unseals_with_exactly_3() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (uid, material) = node_with_a_key(&config);

    let shares = dir.path().join("shares");
    let sealed = kek_seal(
        &config,
        &[
            "--shares",
            "5",
            "--threshold",
            "3",
            "--out",
            shares.to_str().unwrap(),
        ],
        None,
    );
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    assert!(
        !dir.path().join("data/kek.key").exists(),
        "plain KEK left behind"
    );
    assert!(dir.path().join("data/kek.sealed").exists());
    use std::os::unix::fs::PermissionsExt;
    for i in 1..=5 {
        let mode = std::fs::metadata(shares.join(format!("share-{i}.txt")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Sealing twice is refused: the KEK is no longer in the clear.
    let again = kek_seal(
        &config,
        &["--shares", "5", "--threshold", "3", "--out", "/nonexistent"],
        None,
    );
    assert_eq!(again.status.code(), Some(64), "{}", stderr(&again));

    let (server, port) = serve(&config);
    let status = json(&akm(&config, port, &["kek", "status", "--json"]));
    assert_eq!(status["sealed"], true);
    assert_eq!(status["scheme"], "shares");
    assert_eq!(status["threshold"], 3);
    // Sealed: key operations are refused (exit 2: the server answered with a failure).
    let refused = akm(&config, port, &["key", "get", &uid, "--material"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("sealed"), "{}", stderr(&refused));

    let unseal = |file: &Path, extra: &[&str]| {
        let mut args = vec!["unseal", "--json", "--share-file", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        akm(&config, port, &args)
    };
    // A non-administrator (the development user) may not unseal.
    let certs = dir.path().join("certs");
    let user = unseal(
        &shares.join("share-1.txt"),
        &[
            "--cert",
            certs.join("user.crt").to_str().unwrap(),
            "--key",
            certs.join("user.key").to_str().unwrap(),
        ],
    );
    assert_eq!(user.status.code(), Some(2));
    // A damaged share is refused and named, without counting.
    let damaged = dir.path().join("damaged.txt");
    let text = std::fs::read_to_string(shares.join("share-4.txt")).unwrap();
    let mut fields: Vec<String> = text.trim().split(':').map(str::to_owned).collect();
    let first = if fields[4].starts_with('0') { "1" } else { "0" };
    fields[4].replace_range(0..1, first);
    let flipped = fields.join(":");
    std::fs::write(&damaged, flipped).unwrap();
    std::fs::set_permissions(&damaged, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bad = unseal(&damaged, &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("checksum"), "{}", stderr(&bad));

    let one = json(&unseal(&shares.join("share-5.txt"), &[]));
    assert_eq!(
        (one["sealed"].clone(), one["progress"].clone()),
        (true.into(), 1.into())
    );
    let dup = unseal(&shares.join("share-5.txt"), &[]);
    assert_eq!(dup.status.code(), Some(2), "the same share twice");
    let two = json(&unseal(&shares.join("share-2.txt"), &[]));
    assert_eq!(
        (two["sealed"].clone(), two["progress"].clone()),
        (true.into(), 2.into())
    );
    // M-1 shares: still sealed, still serving nothing.
    let refused = akm(&config, port, &["key", "get", &uid, "--material"]);
    assert_eq!(refused.status.code(), Some(2));
    let three = json(&unseal(&shares.join("share-3.txt"), &[]));
    assert_eq!(three["sealed"], false);

    let got = json(&akm(
        &config,
        port,
        &["key", "get", &uid, "--material", "--json"],
    ));
    assert_eq!(got["material_hex"].as_str().unwrap(), material);
    json(&akm(
        &config,
        port,
        &["key", "create", "--name", "after", "--json"],
    ));
    let late = unseal(&shares.join("share-1.txt"), &[]);
    assert_eq!(late.status.code(), Some(2), "already unsealed");
    stop(server);

    // The audit journal names the custodian of every accepted share.
    let journal = std::fs::read_to_string(dir.path().join("data/audit/audit.log"))
        .or_else(|_| std::fs::read_to_string(find_journal(dir.path())))
        .unwrap();
    let custody: Vec<&str> = journal.lines().filter(|l| l.contains("custody")).collect();
    assert!(
        custody
            .iter()
            .any(|l| l.contains("detail=unsealed\\x20kek")),
        "no unseal record: {custody:#?}"
    );
    assert!(
        !journal.contains(text.trim()),
        "a share reached the audit journal"
    );
}

fn find_journal(root: &Path) -> std::path::PathBuf {
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "audit.log") {
                return p;
            }
        }
    }
    panic!("no audit.log under {}", root.display());
}

#[test]
fn a_passphrase_sealed_node_unseals_with_the_passphrase_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (uid, material) = node_with_a_key(&config);
    let short = kek_seal(&config, &["--passphrase-stdin"], Some("short\n"));
    assert_eq!(short.status.code(), Some(1), "{}", stderr(&short));
    assert!(
        dir.path().join("data/kek.key").exists(),
        "refused seal kept the KEK"
    );
    let sealed = kek_seal(
        &config,
        &["--passphrase-stdin"],
        Some("correct horse battery staple\n"),
    );
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let (server, port) = serve(&config);
    let unseal = |pass: &str| {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(["unseal", "--passphrase-stdin", "--json"])
            .args(["--server", &format!("localhost:{port}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{pass}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let wrong = unseal("correct horse battery stapler");
    assert_eq!(wrong.status.code(), Some(2));
    assert!(stderr(&wrong).contains("do not open"), "{}", stderr(&wrong));
    let right = json(&unseal("correct horse battery staple"));
    assert_eq!(right["sealed"], false);
    assert_eq!(right["scheme"], "passphrase");
    let got = json(&akm(
        &config,
        port,
        &["key", "get", &uid, "--material", "--json"],
    ));
    assert_eq!(got["material_hex"].as_str().unwrap(), material);
    stop(server);
}

#[test]
fn shares_shown_once_on_stdout_unseal_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (uid, material) = node_with_a_key(&config);
    let sealed = kek_seal(
        &config,
        &["--shares", "3", "--threshold", "2", "--out", "-"],
        None,
    );
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let shown = String::from_utf8(sealed.stdout).unwrap();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3, "{shown}");
    assert!(lines.iter().all(|l| l.starts_with("akm-kek-share-v1:")));
    assert!(
        !dir.path().join("-").exists(),
        "shares written to a file named -"
    );
    use std::os::unix::fs::PermissionsExt;
    let (server, port) = serve(&config);
    for (i, line) in [lines[2], lines[0]].iter().enumerate() {
        // What a custodian would paste into a private file.
        let f = dir.path().join(format!("pasted-{i}.txt"));
        std::fs::write(&f, format!("{line}\n")).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        json(&akm(
            &config,
            port,
            &["unseal", "--json", "--share-file", f.to_str().unwrap()],
        ));
    }
    let got = json(&akm(
        &config,
        port,
        &["key", "get", &uid, "--material", "--json"],
    ));
    assert_eq!(got["material_hex"].as_str().unwrap(), material);
    stop(server);
}
