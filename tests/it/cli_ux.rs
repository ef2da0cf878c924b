//! The operator's view of the `akm` binary (issue 21, part A), through the real binary
//! against a real server, reading stdout, stderr and exit codes: config discovery (`--config`,
//! `AKM_CONFIG`, `./config/akm.toml`, `/etc/akm/akm.toml`); refusals, TLS failures and
//! unreadable directories in plain words; the exit-code table; JSON errors with `--json`;
//! `key attrs` by name; `mirror status` without mirroring; `bench` cleaning up; an
//! all-or-nothing first start; a refused `log.level` typo (at start and on reload); and a
//! server log without colour codes, without a line per CLI connection, with operation names.

use crate::cli::{akm, json, serve, serve_with, write_config, BIN};
use serde_json::Value as Json;
use std::path::Path;
use std::process::{Command, Output};

/// The exit codes of `akm::cli::errors::Exit`, as scripts see them.
const REFUSED: i32 = 2;
const USAGE: i32 = 64;
const UNREACHABLE: i32 = 69;
const NO_PERMISSION: i32 = 77;
const CONFIG: i32 = 78;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `akm` with no --config, in `cwd`, with `env` added and AKM_CONFIG cleared unless given.
fn akm_in(cwd: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd).env_remove("AKM_CONFIG").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stop(mut server: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
}

#[test]
fn the_config_is_found_by_flag_environment_or_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (server, port) = serve(&config);
    let server_arg = format!("localhost:{port}");
    let list = ["key", "list", "--json", "--server", &server_arg];

    // Nowhere to be found: exit 78, every place named, and how to fix it.
    let empty = tempfile::tempdir().unwrap();
    let none = akm_in(empty.path(), &[], &list[..2]);
    assert_eq!(none.status.code(), Some(CONFIG), "{}", stderr(&none));
    let why = stderr(&none);
    if !Path::new("/etc/akm/akm.toml").exists() {
        for place in [
            "--config",
            "$AKM_CONFIG (not set)",
            "./config/akm.toml",
            "/etc/akm/akm.toml",
            "fix:",
        ] {
            assert!(why.contains(place), "{place} not in: {why}");
        }
    }
    // AKM_CONFIG, from any directory.
    assert_eq!(
        json(&akm_in(empty.path(), &[("AKM_CONFIG", &config)], &list)),
        serde_json::json!([])
    );
    // ./config/akm.toml in the working directory (a source checkout).
    assert_eq!(json(&akm_in(dir.path(), &[], &list)), serde_json::json!([]));
    // --config wins over AKM_CONFIG.
    let bogus = empty.path().join("bogus.toml");
    std::fs::write(&bogus, "[server]\nnot_a_key = 1\n").unwrap();
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend(list);
    json(&akm_in(empty.path(), &[("AKM_CONFIG", &bogus)], &args));
    // AKM_CONFIG wins over ./config/akm.toml: the bad file is the one refused.
    let refused = akm_in(dir.path(), &[("AKM_CONFIG", &bogus)], &list);
    assert_eq!(refused.status.code(), Some(CONFIG));
    assert!(
        stdout(&refused).contains("not_a_key"),
        "{}",
        stdout(&refused)
    );
    stop(server);
}

#[test]
fn refusals_say_what_happened_and_the_fix_with_distinct_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (server, port) = serve(&config);
    let created = json(&akm(
        &config,
        port,
        &["key", "create", "--activate", "--json"],
    ));
    let uid = created["uid"].as_str().unwrap().to_owned();

    // Wrong state, with the fix.
    let active = akm(&config, port, &["key", "destroy", &uid]);
    assert_eq!(active.status.code(), Some(REFUSED));
    assert_eq!(
        stderr(&active).trim(),
        format!("akm: key {uid} is Active: revoke it first with `akm key revoke {uid}`")
    );
    // The same as JSON on stdout, with the KMIP reason's name (and the line on stderr).
    let as_json = akm(&config, port, &["key", "destroy", &uid, "--json"]);
    assert_eq!(as_json.status.code(), Some(REFUSED));
    assert_eq!(stderr(&as_json), stderr(&active));
    let e: Json = serde_json::from_slice(&as_json.stdout).unwrap();
    assert_eq!(e["error"]["exit_code"], REFUSED);
    assert_eq!(e["error"]["reason"], "PermissionDenied");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("revoke it first"));

    // Not found.
    let missing = akm(&config, port, &["key", "get", "no-such-key"]);
    assert_eq!(missing.status.code(), Some(REFUSED));
    assert!(
        stderr(&missing).contains("key no-such-key not found (or not visible to admin)"),
        "{}",
        stderr(&missing)
    );
    // Permission denied names the identity, and is not "wrong state".
    let certs = dir.path().join("certs");
    let as_user = |args: &[&str]| {
        let mut all = args.to_vec();
        let (crt, key) = (certs.join("user.crt"), certs.join("user.key"));
        all.extend([
            "--cert",
            crt.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]);
        akm(&config, port, &all)
    };
    let denied = as_user(&["user", "list"]);
    assert_eq!(denied.status.code(), Some(REFUSED));
    assert!(
        stderr(&denied).starts_with("akm: permission denied: user may not list accounts"),
        "{}",
        stderr(&denied)
    );
    // The argument parser's errors are usage errors (64), never "refused" (2), in JSON too.
    let typo = akm(&config, port, &["key", "lst"]);
    assert_eq!(typo.status.code(), Some(USAGE));
    let typo = akm(&config, port, &["key", "lst", "--json"]);
    assert_eq!(typo.status.code(), Some(USAGE));
    let e: Json = serde_json::from_slice(&typo.stdout).unwrap();
    assert_eq!(e["error"]["exit_code"], USAGE);
    // Nobody listening: exit 69, in plain words.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = akm(&config, closed_port, &["key", "list"]);
    assert_eq!(down.status.code(), Some(UNREACHABLE));
    assert!(
        stderr(&down).contains("connection refused"),
        "{}",
        stderr(&down)
    );
    // A top-level --json reaches the subcommand.
    let listed = Command::new(BIN)
        .args([
            "--json",
            "--config",
            config.to_str().unwrap(),
            "key",
            "list",
        ])
        .args(["--server", &format!("localhost:{port}")])
        .output()
        .unwrap();
    assert_eq!(json(&listed)[0]["uid"], uid.as_str());
    stop(server);
}

#[test]
fn tls_failures_are_explained_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (server, port) = serve(&config);
    // A second, unrelated development CA.
    let other = tempfile::tempdir().unwrap();
    let other_config = write_config(other.path());
    let init = Command::new(BIN)
        .args(["init", "--config"])
        .arg(&other_config)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));
    let foreign = other.path().join("certs");
    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();

    // Our certificate is from a CA the server does not trust.
    let theirs = akm(
        &config,
        port,
        &[
            "key",
            "list",
            "--cert",
            &path(foreign.join("admin.crt")),
            "--key",
            &path(foreign.join("admin.key")),
        ],
    );
    assert_eq!(
        theirs.status.code(),
        Some(UNREACHABLE),
        "{}",
        stderr(&theirs)
    );
    let why = stderr(&theirs);
    assert!(
        why.contains("the server refused this client's certificate"),
        "{why}"
    );
    assert!(!why.contains("  "), "ragged message: {why}");
    assert!(
        !why.contains("DecryptError") || why.contains("TLS alert"),
        "{why}"
    );
    // The server's certificate is not from the CA we trust.
    let ours = akm(
        &config,
        port,
        &["key", "list", "--ca", &path(foreign.join("ca.crt"))],
    );
    assert_eq!(ours.status.code(), Some(UNREACHABLE));
    assert!(
        stderr(&ours)
            .contains("the server's certificate is not issued by the CA this client trusts"),
        "{}",
        stderr(&ours)
    );
    stop(server);
}

#[test]
fn key_attrs_prints_names_and_mirror_status_without_mirroring_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (server, port) = serve(&config);
    let created = json(&akm(&config, port, &["key", "create", "--json"]));
    let uid = created["uid"].as_str().unwrap();
    let attrs = json(&akm(&config, port, &["key", "attrs", uid, "--json"]));
    assert_eq!(attrs["Object Type"], "Symmetric Key", "{attrs}");
    assert_eq!(
        attrs["Cryptographic Usage Mask"], "Encrypt|Decrypt",
        "{attrs}"
    );
    let table = stdout(&akm(&config, port, &["key", "attrs", uid]));
    assert!(
        table.contains("Symmetric Key") && !table.contains("0x00000002"),
        "{table}"
    );

    let status = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["mirror", "status"])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    assert!(stdout(&status).contains("mirroring is not configured"));
    let status = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["mirror", "status", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&status), serde_json::json!({ "configured": false }));
    stop(server);
}

#[test]
fn bench_destroys_the_keys_it_created() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (server, port) = serve(&config);
    let out = akm(
        &config,
        port,
        &[
            "bench",
            "--mix",
            "get=1,create=1",
            "--keys",
            "5",
            "--connections",
            "2",
            "--warmup",
            "0",
            "--duration",
            "0.5",
            "--json",
        ],
    );
    let report = json(&out);
    let cleanup = &report["cleanup"];
    assert!(cleanup["created"].as_u64().unwrap() > 5, "{report}");
    assert_eq!(cleanup["created"], cleanup["destroyed"], "{report}");
    assert_eq!(cleanup["left_on_server"], serde_json::json!([]));
    assert_eq!(
        json(&akm(&config, port, &["key", "list", "--json"])),
        serde_json::json!([])
    );
    stop(server);
}

#[test]
fn a_failed_first_start_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    // An operator's own file beside where the PKI goes stays.
    std::fs::create_dir_all(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/README.md"), "mine").unwrap();
    // The configured port is taken: the start fails after the KEK and PKI were made.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let failed = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("cannot listen"),
        "{}",
        stderr(&failed)
    );
    assert!(
        stderr(&failed).contains("removed what it had created"),
        "{}",
        stderr(&failed)
    );
    for gone in ["data", "certs/ca.crt", "certs/ca.key", "certs/admin.key"] {
        assert!(!dir.path().join(gone).exists(), "{gone} left behind");
    }
    assert!(dir.path().join("certs/README.md").exists());
    // The next start begins afresh and serves.
    drop(taken);
    let (server, port) = serve(&config);
    json(&akm(&config, port, &["key", "list", "--json"]));
    stop(server);
}

#[test]
fn an_unreadable_data_directory_is_permission_denied_never_empty() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let init = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("init")
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));
    use std::os::unix::fs::PermissionsExt;
    let root = nix_is_root();
    // Root reads everything: run akm as nobody, who may reach the config but not the data.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        dir.path().join("config"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(config.as_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let data = dir.path().join("data");
    if !root {
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    // `akm serve`, and `akm init`, which must not take it for empty and write a second PKI.
    let as_tester = |args: &[&str]| {
        let mut cmd = if root {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "--",
                BIN,
            ]);
            c
        } else {
            Command::new(BIN)
        };
        cmd.arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let served = as_tester(&["serve", "--listen", "127.0.0.1:0"]);
    let init = as_tester(&["init"]);
    if !root {
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    for out in [served, init] {
        let why = stderr(&out);
        assert_eq!(out.status.code(), Some(NO_PERMISSION), "{why}");
        // The path as configured (relative to the config file's directory).
        assert!(why.contains("/data: Permission denied"), "{why}");
        assert!(!why.contains("already exists"), "{why}");
    }
    assert!(dir.path().join("data/kek.key").exists());
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn a_log_level_typo_is_refused_at_start_and_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}[log]\nlevel = \"inof\"\n")).unwrap();
    let refused = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(CONFIG));
    let why = stderr(&refused);
    assert!(
        why.contains("log.level") && why.contains("valid: none, basic, verbose, debug"),
        "{why}"
    );

    std::fs::write(&config, format!("{good}[log]\nlevel = \"info\"\n")).unwrap();
    let (server, port) = serve(&config);
    // The server's file gets the typo; the CLI reads a good copy beside it.
    let cli_config = config.with_file_name("cli.toml");
    std::fs::write(&cli_config, &good).unwrap();
    std::fs::write(&config, format!("{good}[log]\nlevel = \"akm=loud\"\n")).unwrap();
    let reload = akm(&cli_config, port, &["reload"]);
    assert_eq!(reload.status.code(), Some(REFUSED), "{}", stderr(&reload));
    let why = stderr(&reload);
    assert!(
        why.contains("log.level") && why.contains("valid: none"),
        "{why}"
    );
    // Still serving, at the old level.
    json(&akm(&cli_config, port, &["key", "list", "--json"]));
    stop(server);
}

#[test]
fn the_server_log_has_no_colours_no_line_per_cli_command_and_operation_names() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let log = dir.path().join("server.stderr");
    let file = std::fs::File::create(&log).unwrap();
    let (server, port) = serve_with(&config, |cmd| {
        cmd.stderr(file);
    });
    for _ in 0..3 {
        json(&akm(&config, port, &["key", "list", "--json"]));
    }
    let missing = akm(&config, port, &["key", "get", "no-such-key"]);
    assert_eq!(missing.status.code(), Some(REFUSED));
    stop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "ANSI codes in a file:\n{text}");
    assert!(
        !text.contains("closing connection"),
        "a line per CLI command:\n{text}"
    );
    assert!(
        text.contains("operation=GetAttributes") || text.contains("operation=Get"),
        "{text}"
    );
    assert!(
        !text.contains("operation=10") && !text.contains("operation=11"),
        "{text}"
    );
}

#[test]
fn progress_bars_are_drawn_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (server, port) = serve(&config);
    json(&akm(&config, port, &["key", "create", "--json"]));
    let taken = json(&akm(&config, port, &["backup", "--json"]));
    let file = taken["file"].as_str().unwrap().to_owned();
    stop(server);
    // stderr is a pipe here: the verification reports its result with no `\r` bar.
    let verified = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["restore", "--verify-only", &file])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(
        stdout(&verified).contains("verified"),
        "{}",
        stdout(&verified)
    );
    assert!(!stderr(&verified).contains('\r'), "{:?}", stderr(&verified));
}

/// `akm init` and `akm restore` speak JSON too under `--json`.
#[test]
fn init_and_restore_print_json_under_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let local = |args: &[&str]| {
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let init = json(&local(&["--json", "init"]));
    assert!(init["kek"].as_str().unwrap().ends_with("kek.key"), "{init}");
    assert!(init["audit_public_key"]
        .as_str()
        .unwrap()
        .starts_with("ed25519:"));
    let (mut server, port) = serve(&config);
    let made = json(&akm(&config, port, &["backup", "--json"]));
    server.kill().unwrap();
    server.wait().unwrap();
    let file = made["file"].as_str().unwrap();
    let verified = json(&local(&["--json", "restore", file, "--verify-only"]));
    assert_eq!(verified["verified"], Json::Bool(true), "{verified}");
    assert_eq!(verified["sha256"].as_str().unwrap().len(), 64);
}

/// A name nobody holds is not a usage error: exit 1, saying what to do.
#[test]
fn get_by_a_name_nobody_holds_says_so_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut server, port) = serve(&config);
    let out = akm(&config, port, &["key", "get", "--name", "nothing-here"]);
    server.kill().unwrap();
    server.wait().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no key named \"nothing-here\""), "{stderr}");
}
