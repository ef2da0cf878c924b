//! The `akm` binary as an operator uses it: `akm serve` on an empty directory initializes
//! (KEK, development PKI) and serves; the `akm key` commands drive a key through its
//! lifecycle; `akm cert issue` makes a client certificate; SIGTERM stops the server cleanly;
//! a bad config is refused with the key named.

use serde_json::Value as Json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_akm");

pub(crate) fn write_config(dir: &Path) -> std::path::PathBuf {
    let config_dir = dir.join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let path = config_dir.join("akm.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:0\"\nauto_init = true\n\
         [tls]\ncerts_dir = \"../certs\"\ncert = \"../certs/server.crt\"\nkey = \"../certs/server.key\"\nclient_ca = \"../certs/ca.crt\"\n\
         [store]\ndata_dir = \"../data\"\n\
         [client]\ncert = \"../certs/admin.crt\"\nkey = \"../certs/admin.key\"\nca = \"../certs/ca.crt\"\n",
    )
    .unwrap();
    path
}

/// Starts `akm serve` and returns it with the port it printed.
pub(crate) fn serve(config: &Path) -> (Child, u16) {
    serve_with(config, |_| {})
}

/// Like [`serve`], with `setup` adjusting the command (environment, stderr) before it starts.
pub(crate) fn serve_with(config: &Path, setup: impl FnOnce(&mut Command)) -> (Child, u16) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    setup(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(addr) = line.strip_prefix("akm serve: listening on ") {
            let addr = addr.split_whitespace().next().unwrap();
            break addr.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, port)
}

pub(crate) fn akm(config: &Path, port: u16, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .args(["--server", &format!("localhost:{port}")])
        .output()
        .unwrap()
}

pub(crate) fn json(out: &Output) -> Json {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn serve_initializes_and_the_key_commands_drive_a_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut server, port) = serve(&config);
    for f in [
        "ca.crt",
        "server.crt",
        "server.key",
        "admin.crt",
        "admin.key",
        "user.crt",
        "user.key",
    ] {
        assert!(dir.path().join("certs").join(f).exists(), "{f} not written");
    }
    use std::os::unix::fs::PermissionsExt;
    let kek_mode = std::fs::metadata(dir.path().join("data/kek.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(kek_mode & 0o777, 0o600);

    let created = json(&akm(
        &config,
        port,
        &["key", "create", "--name", "cli-key", "--activate", "--json"],
    ));
    let uid = created["uid"].as_str().unwrap().to_owned();
    let listed = json(&akm(&config, port, &["key", "list", "--json"]));
    assert_eq!(listed[0]["uid"], uid.as_str());
    assert_eq!(listed[0]["state"], "active");
    let found = json(&akm(
        &config,
        port,
        &["key", "locate", "--name", "cli-key", "--json"],
    ));
    assert_eq!(found, serde_json::json!([uid]));
    let got = json(&akm(
        &config,
        port,
        &["key", "get", &uid, "--material", "--json"],
    ));
    assert_eq!(got["material_hex"].as_str().unwrap().len(), 64);
    let table = akm(&config, port, &["key", "list"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("cli-key"));

    // Destroying an Active key is refused by the server: exit code 2.
    let refused = akm(&config, port, &["key", "destroy", &uid]);
    assert_eq!(refused.status.code(), Some(2));
    json(&akm(
        &config,
        port,
        &["key", "revoke", &uid, "--reason", "superseded", "--json"],
    ));
    json(&akm(&config, port, &["key", "destroy", &uid, "--json"]));
    let gone = akm(&config, port, &["key", "get", &uid, "--material"]);
    assert_eq!(gone.status.code(), Some(2));
    let usage = akm(&config, port, &["key", "create", "--alg", "des", "--json"]);
    assert_eq!(usage.status.code(), Some(64));

    // A new identity from the development CA sees none of admin's keys.
    let out_dir = dir.path().join("issued");
    let issued = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["cert", "issue", "--cn", "ops", "--ou", "operators", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let ops_list = akm(
        &config,
        port,
        &[
            "key",
            "list",
            "--json",
            "--cert",
            out_dir.join("ops.crt").to_str().unwrap(),
            "--key",
            out_dir.join("ops.key").to_str().unwrap(),
        ],
    );
    assert_eq!(json(&ops_list), serde_json::json!([]));

    // SIGTERM: the server drains and exits successfully.
    let stopped = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(server.wait().unwrap().success());
}

#[test]
fn a_bad_config_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("akm.toml");
    std::fs::write(&path, "[server]\nmax_conections = 5\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_conections"));
    // A KEK readable by others is refused at start.
    let config = write_config(dir.path());
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let init = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("init")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let kek = dir.path().join("data/kek.key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("kek.key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // init never overwrites.
    let again = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("init")
        .output()
        .unwrap();
    assert!(!again.status.success());
}
