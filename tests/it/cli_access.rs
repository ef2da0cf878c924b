//! The administration commands against `akm serve`: `akm user`, `akm group` and
//! `akm key policy` as the development admin (OU admins), refused for the development user
//! (OU users); groups declared in akm.toml are in the tables from the start.

use crate::cli::{akm, json, serve, write_config};
use std::process::Command;

#[test]
fn administration_commands_manage_users_groups_and_key_policy() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "[access.groups.users]\noperations = [\"read\"]\n\
         [access.groups.HR]\noperations = [\"all\"]\n",
    );
    std::fs::write(&config, text).unwrap();
    let (mut server, port) = serve(&config);
    let certs = dir.path().join("certs");
    let as_user = |args: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        let cert = certs.join("user.crt");
        let key = certs.join("user.key");
        let (cert, key) = (
            cert.to_str().unwrap().to_owned(),
            key.to_str().unwrap().to_owned(),
        );
        a.extend(["--cert", &cert, "--key", &key]);
        akm(&config, port, &a)
    };

    let groups = json(&akm(&config, port, &["group", "list", "--json"]));
    assert_eq!(groups[0]["name"], "HR");
    assert_eq!(groups[1]["name"], "users");
    assert_eq!(
        groups[1]["operations"],
        serde_json::json!([
            "locate",
            "check",
            "get",
            "get-attributes",
            "get-attribute-list"
        ])
    );
    let table = akm(&config, port, &["group", "list"]);
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(table.starts_with("NAME") && table.contains("HR"), "{table}");

    let set = json(&akm(
        &config,
        port,
        &["user", "set", "carol", "--ops", "get,locate", "--json"],
    ));
    assert_eq!(
        set,
        serde_json::json!([{ "name": "carol", "enabled": true, "operations": ["locate", "get"] }])
    );
    let set = json(&akm(
        &config,
        port,
        &["user", "set", "carol", "--disable", "--json"],
    ));
    assert_eq!(set[0]["enabled"], false);
    assert_eq!(set[0]["operations"], serde_json::json!(["locate", "get"]));
    let bad = akm(&config, port, &["user", "set", "carol", "--ops", "fly"]);
    assert_eq!(bad.status.code(), Some(2));

    // A key open to every client: the development user (group users: read) sees it.
    let created = json(&akm(
        &config,
        port,
        &[
            "key",
            "create",
            "--name",
            "shared",
            "--access-mode",
            "any",
            "--json",
        ],
    ));
    let uid = created["uid"].as_str().unwrap().to_owned();
    let policy = json(&akm(
        &config,
        port,
        &["key", "policy", "show", &uid, "--json"],
    ));
    assert_eq!(
        policy,
        serde_json::json!({ "uid": uid, "owner": "admin", "group": "admins", "mode": "any" })
    );
    let seen = json(&as_user(&["key", "list", "--json"]));
    assert_eq!(seen[0]["uid"], uid.as_str());
    // The user may read but not create, and may not administer.
    assert_eq!(as_user(&["key", "create"]).status.code(), Some(2));
    assert_eq!(as_user(&["user", "list"]).status.code(), Some(2));
    assert_eq!(as_user(&["tls", "reload"]).status.code(), Some(2));
    // No tls.crls in this config: revoking needs --crl.
    let revoke = Command::new(crate::cli::BIN)
        .arg("--config")
        .arg(&config)
        .args(["cert", "revoke", "--serial", "0a"])
        .output()
        .unwrap();
    assert_eq!(revoke.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&revoke.stderr).contains("tls.crls"));
    assert_eq!(
        as_user(&["key", "policy", "set", &uid, "--mode", "any"])
            .status
            .code(),
        Some(2)
    );
    // Back to owner-only: the user no longer sees it.
    let policy = json(&akm(
        &config,
        port,
        &["key", "policy", "set", &uid, "--mode", "user", "--json"],
    ));
    assert_eq!(policy["mode"], "user");
    assert_eq!(
        json(&as_user(&["key", "list", "--json"])),
        serde_json::json!([])
    );
    let shown = akm(&config, port, &["key", "policy", "show", &uid]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("owner      admin"));

    json(&akm(&config, port, &["user", "delete", "carol", "--json"]));
    assert_eq!(
        akm(&config, port, &["user", "delete", "carol"])
            .status
            .code(),
        Some(2)
    );
    let stopped = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(server.wait().unwrap().success());
}

/// `akm key list` with the certificate and key `<stem>.crt` and `<stem>.key`.
fn list_as(config: &std::path::Path, port: u16, stem: &std::path::Path) -> std::process::Output {
    akm(
        config,
        port,
        &[
            "key",
            "list",
            "--cert",
            stem.with_extension("crt").to_str().unwrap(),
            "--key",
            stem.with_extension("key").to_str().unwrap(),
        ],
    )
}

/// True once `akm key list` as `stem` fails to connect (exit 69), polling while the server
/// handles the signal; false if it keeps succeeding.
fn eventually_refused(config: &std::path::Path, port: u16, stem: &std::path::Path) -> bool {
    for _ in 0..100 {
        let out = list_as(config, port, stem);
        if out.status.code() == Some(69) {
            return true;
        }
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

#[test]
fn a_revoked_certificate_is_refused_after_sighup_or_akm_tls_reload() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[tls]\n", "[tls]\ncrls = [\"../certs/ca.crl\"]\n");
    std::fs::write(&config, text).unwrap();
    // auto_init writes certs/ca.crl (empty), which the server loads at start.
    let (mut server, port) = serve(&config);
    let issued = dir.path().join("issued");
    for cn in ["eve", "frank"] {
        let out = Command::new(crate::cli::BIN)
            .arg("--config")
            .arg(&config)
            .args(["cert", "issue", "--cn", cn, "--ou", "users", "--out"])
            .arg(&issued)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let revoke = |cn: &str| {
        Command::new(crate::cli::BIN)
            .arg("--config")
            .arg(&config)
            .args(["cert", "revoke", "--cert"])
            .arg(issued.join(format!("{cn}.crt")))
            .output()
            .unwrap()
    };
    // SIGHUP.
    assert!(list_as(&config, port, &issued.join("eve")).status.success());
    let out = revoke("eve");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hup = Command::new("kill")
        .args(["-HUP", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    assert!(eventually_refused(&config, port, &issued.join("eve")));
    // akm tls reload.
    assert!(revoke("frank").status.success());
    json(&akm(&config, port, &["tls", "reload", "--json"]));
    assert!(eventually_refused(&config, port, &issued.join("frank")));
    // The administrator still gets in; the server survived both reloads.
    json(&akm(&config, port, &["key", "list", "--json"]));
    let stopped = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(server.wait().unwrap().success());
}
