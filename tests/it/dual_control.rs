//! Dual control through the `akm` binary: with `[dual_control] operations = ["destroy"]`,
//! one administrator alone cannot destroy a key; authorizing themself is refused; a second
//! administrator's window for another user or another operation does not help; with the
//! second administrator's window for them open, the destroy succeeds and the audit journal's
//! record names both. A bad operation name in the config is refused naming the key.

use crate::cli::{akm, json, serve, write_config, BIN};
use std::path::Path;
use std::process::Command;

fn issue(config: &Path, cn: &str, ou: &str, out: &Path) {
    let o = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["cert", "issue", "--cn", cn, "--ou", ou, "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn destroy_under_dual_control_needs_a_second_administrator() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[dual_control]\noperations = [\"destroy\"]\nwindow_minutes = 10\n");
    std::fs::write(&config, &text).unwrap();
    let (mut server, port) = serve(&config);
    let issued = dir.path().join("issued");
    issue(&config, "alice", "admins", &issued);
    let alice_cert = issued.join("alice.crt").display().to_string();
    let alice_key = issued.join("alice.key").display().to_string();
    let as_alice = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--cert", &alice_cert, "--key", &alice_key]);
        akm(&config, port, &a)
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();

    let created = json(&akm(
        &config,
        port,
        &["key", "create", "--name", "dc", "--json"],
    ));
    let uid = created["uid"].as_str().unwrap().to_owned();
    let alone = akm(&config, port, &["key", "destroy", &uid]);
    assert_eq!(alone.status.code(), Some(2));
    assert!(
        stderr(&alone).contains("dual control"),
        "{}",
        stderr(&alone)
    );

    let selfish = akm(
        &config,
        port,
        &["authorize", "--user", "admin", "--op", "destroy"],
    );
    assert_eq!(selfish.status.code(), Some(2));
    assert!(
        stderr(&selfish).contains("themself"),
        "{}",
        stderr(&selfish)
    );
    let unguarded = as_alice(&["authorize", "--user", "admin", "--op", "backup"]);
    assert_eq!(unguarded.status.code(), Some(2));
    let too_long = as_alice(&[
        "authorize",
        "--user",
        "admin",
        "--op",
        "destroy",
        "--minutes",
        "11",
    ]);
    assert_eq!(too_long.status.code(), Some(2));
    // A window for someone else does not let admin act.
    json(&as_alice(&[
        "authorize",
        "--user",
        "bob",
        "--op",
        "destroy",
        "--json",
    ]));
    assert_eq!(
        akm(&config, port, &["key", "destroy", &uid]).status.code(),
        Some(2)
    );
    // Not an administrator: the development user cannot open windows.
    let certs = dir.path().join("certs");
    let user = akm(
        &config,
        port,
        &[
            "authorize",
            "--user",
            "admin",
            "--op",
            "destroy",
            "--cert",
            certs.join("user.crt").to_str().unwrap(),
            "--key",
            certs.join("user.key").to_str().unwrap(),
        ],
    );
    assert_eq!(user.status.code(), Some(2));

    let window = json(&as_alice(&[
        "authorize",
        "--user",
        "admin",
        "--op",
        "destroy",
        "--minutes",
        "5",
        "--json",
    ]));
    assert_eq!(window["user"], "admin");
    assert_eq!(window["operation"], "destroy");
    json(&akm(&config, port, &["key", "destroy", &uid, "--json"]));
    let gone = akm(&config, port, &["key", "get", &uid, "--material"]);
    assert_eq!(gone.status.code(), Some(2));

    // Approving a pending request: the refusal names it, a second administrator approves.
    // Now alice acts (admin's window from alice stays open) and admin approves.
    let second = json(&as_alice(&["key", "create", "--name", "dc2", "--json"]));
    let uid2 = second["uid"].as_str().unwrap().to_owned();
    let request_id = |o: &std::process::Output| {
        stderr(o)
            .rsplit("akm approve ")
            .next()
            .unwrap()
            .split('`')
            .next()
            .unwrap()
            .trim()
            .to_owned()
    };
    let refused = as_alice(&["key", "destroy", &uid2]);
    assert_eq!(refused.status.code(), Some(2));
    let own = as_alice(&["approve", &request_id(&refused)]);
    assert_eq!(own.status.code(), Some(2), "self-approval");
    let refused = as_alice(&["key", "destroy", &uid2]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a failed approval opens nothing"
    );
    let approved = json(&akm(
        &config,
        port,
        &["approve", &request_id(&refused), "--json"],
    ));
    assert_eq!(approved["user"], "alice");
    assert_eq!(approved["operation"], "destroy");
    json(&as_alice(&["key", "destroy", &uid2, "--json"]));
    let reused = akm(&config, port, &["approve", &request_id(&refused)]);
    assert_eq!(reused.status.code(), Some(2), "approved once");

    let ok = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(server.wait().unwrap().success());
    let journal = std::fs::read_to_string(dir.path().join("data/audit/audit.log")).unwrap();
    let both = journal
        .lines()
        .find(|l| l.contains("event=dual-control") && l.contains("outcome=success"))
        .expect("no dual-control record");
    assert!(both.contains("user=admin"), "{both}");
    assert!(both.contains("authorized\\x20by\\x20alice"), "{both}");
    assert!(both.contains(&format!("uid={uid}")), "{both}");
    assert!(journal.contains("alice\\x20authorized\\x20admin\\x20to\\x20destroy"));

    // A misspelt guarded operation is refused at start, naming the key.
    let bad = text.replace("[\"destroy\"]", "[\"destory\"]");
    std::fs::write(&config, bad).unwrap();
    let refused = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("dual_control.operations"));
}

#[test]
fn separation_of_duties_keeps_administrators_from_key_material_unless_key_users() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[access]\nunknown_operations = []\n[dual_control]\nseparate_duties = true\n");
    std::fs::write(&config, &text).unwrap();
    let (mut server, port) = serve(&config);
    let created = json(&akm(
        &config,
        port,
        &["key", "create", "--name", "sod", "--json"],
    ));
    let uid = created["uid"].as_str().unwrap().to_owned();
    // Administering the key is fine; reading its material is not.
    json(&akm(&config, port, &["key", "get", &uid, "--json"]));
    let refused = akm(&config, port, &["key", "get", &uid, "--material"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("ermission"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // Granted as a key user too, the administrator may.
    json(&akm(
        &config,
        port,
        &["user", "set", "admin", "--ops", "get", "--json"],
    ));
    let got = json(&akm(
        &config,
        port,
        &["key", "get", &uid, "--material", "--json"],
    ));
    assert_eq!(got["material_hex"].as_str().unwrap().len(), 64);
    let ok = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(server.wait().unwrap().success());
}
