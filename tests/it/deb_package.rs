//! The Debian package (deploy/debian, `[package.metadata.deb]`): the packaged production
//! config passes akm's own validation and the unit matches the package layout; `cargo deb`
//! packages the binary these tests built (`--no-build --profile dev`, so no second compile)
//! and the package's files, control data and maintainer scripts are checked; and, as root with
//! `AKM_TEST_DEB_INSTALL=1` (which `.ci/run` sets), the package is installed on this machine
//! for real: user, directories and `akm init` checked, the installed server started as the akm
//! user and driven over KMIP (Query, Create, Get) with the admin certificate init made, and
//! through the installed `akm` as root from `/` with no flags (`key list`, `backup`), then
//! reinstall (no second init, same KEK), remove, purge (the keys stay), install over the kept
//! keys, and install with `AKM_SKIP_INIT=1`. It refuses to touch an akm installation it did
//! not make. Without cargo-deb, dpkg-deb or shellcheck the test prints SKIPPED, except under
//! `CI=true`, where a missing tool fails it.

use crate::support::kmip::{create_key, key_bytes, uid};
use akm::client::Client;
use akm::kmip::enums::{operation as op, query_function as qf};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const STATE: &str = "/var/lib/akm";
const LOGS: &str = "/var/log/akm";
const CONFIG: &str = "/etc/akm/akm.toml";
const KEK: &str = "/var/lib/akm/data/kek.key";
const WANTS: &str = "/etc/systemd/system/multi-user.target.wants/akm.service";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A missing tool skips the test, or fails it under CI=true.
fn skip_or_fail(what: &str) {
    assert!(!under_ci(), "CI=true but {what}");
    println!("SKIPPED: {what}");
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn packaged_config_is_valid_production_config() {
    let config = akm::config::Config::load(&repo().join("deploy/debian/akm.toml"))
        .expect("deploy/debian/akm.toml passes akm's validation");
    assert!(!config.server.auto_init, "the package runs akm init itself");
    assert!(!config.server.interop_operations);
    assert_eq!(config.listen_addr().to_string(), "0.0.0.0:5696");
    assert_eq!(config.store.data_dir, Path::new("/var/lib/akm/data"));
    assert_eq!(config.store.kek(), Path::new(KEK));
    assert_eq!(config.tls.certs_dir, Path::new("/var/lib/akm/certs"));
    assert_eq!(
        config.client.cert,
        Path::new("/var/lib/akm/certs/admin.crt")
    );
    assert_eq!(
        config.log.file.as_deref(),
        Some(Path::new("/var/log/akm/akm.log"))
    );
    assert_eq!(
        config.log.error_file.as_deref(),
        Some(Path::new("/var/log/akm/error.log"))
    );
    // The paths the logrotate rule rotates are the ones this config writes.
    let logrotate = std::fs::read_to_string(repo().join("deploy/logrotate.d/akm")).unwrap();
    assert_eq!(
        config.audit.journal.as_deref(),
        Some(Path::new("/var/lib/akm/audit/audit.log"))
    );
    for path in [
        "/var/lib/akm/audit/audit.log",
        "/var/log/akm/akm.log",
        "/var/log/akm/error.log",
    ] {
        assert!(logrotate.contains(path), "logrotate rule lacks {path}");
    }
    let backups = config.backup.dir(&config.store);
    assert!(backups.starts_with(STATE), "{}", backups.display());
}

/// The unit the package installs runs the packaged binary with the packaged config as the
/// user postinst creates, and may write where that config puts state and logs.
#[test]
fn packaged_unit_matches_the_package_layout() {
    let unit = std::fs::read_to_string(repo().join("deploy/akm.service")).unwrap();
    let exec = unit
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    assert!(exec.starts_with("ExecStart=/usr/bin/akm serve"), "{exec}");
    assert!(exec.contains("--config /etc/akm/akm.toml"), "{exec}");
    assert!(
        unit.lines().any(|l| l == "User=akm"),
        "unit does not run as akm"
    );
    assert!(unit.contains("/var/lib/akm") || unit.contains("StateDirectory=akm"));
    assert!(unit.contains("LogsDirectory=akm") || unit.contains("/var/log/akm"));
}

#[test]
fn maintainer_scripts_are_posix_sh_and_shellcheck_clean() {
    let dir = repo().join("deploy/debian");
    for script in ["postinst", "prerm", "postrm"] {
        let path = dir.join(script);
        let body = std::fs::read_to_string(&path).unwrap();
        assert!(body.starts_with("#!/bin/sh\n"), "{script}: not /bin/sh");
        assert!(body.contains("\nset -e\n"), "{script}: no set -e");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{script} is not executable");
        run(Command::new("sh").arg("-n").arg(&path));
        // An action dpkg never passes is refused before the script changes anything.
        let bogus = Command::new("sh").arg(&path).arg("bogus").output().unwrap();
        assert_eq!(bogus.status.code(), Some(1), "{script} bogus");
        let why = String::from_utf8_lossy(&bogus.stderr);
        assert!(why.contains("unknown argument 'bogus'"), "{script}: {why}");
    }
    // The upgrade actions of prerm and postrm leave everything as it is (nothing to undo).
    for (script, action) in [("prerm", "upgrade"), ("postrm", "upgrade")] {
        run(Command::new("sh")
            .arg(dir.join(script))
            .args([action, "0.1.0-1"]));
    }
    if !have("shellcheck", "--version") {
        return skip_or_fail("shellcheck not found (apt-get install shellcheck)");
    }
    let scripts = ["postinst", "prerm", "postrm"].map(|s| dir.join(s));
    run(Command::new("shellcheck").arg("--shell=sh").args(&scripts));
    let appliance = repo().join("deploy/appliance");
    run(Command::new("shellcheck").args([
        appliance.join("build.sh"),
        appliance.join("boot-test.sh"),
        appliance.join("files/firstboot"),
        appliance.join("files/akm-export-admin"),
    ]));
}

/// Builds the .deb from the debug binary the test build made; None when cargo-deb is absent.
fn build_deb(out_dir: &Path) -> Option<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let found = Command::new(&cargo)
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip_or_fail("cargo-deb not found (cargo install cargo-deb)");
        return None;
    }
    // The binary this test binary was built beside: target/<profile>/akm.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_akm"));
    let target_dir = bin.parent().unwrap().parent().unwrap().to_owned();
    let deb = out_dir.join("akm.deb");
    run(Command::new(&cargo)
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "--output",
        ])
        .arg(&deb));
    Some(deb)
}

#[test]
fn deb_package_builds_and_installs() {
    if !have("dpkg-deb", "--version") {
        return skip_or_fail("dpkg-deb not found (not a Debian system)");
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(deb) = build_deb(dir.path()) else {
        return;
    };
    check_contents(&deb);
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let allowed = std::env::var("AKM_TEST_DEB_INSTALL").is_ok_and(|v| v == "1");
    if !(root && allowed) {
        println!(
            "SKIPPED: installing the package (needs root and AKM_TEST_DEB_INSTALL=1: it adds \
             the akm user and writes /etc/akm, /var/lib/akm, /var/log/akm)"
        );
        return;
    }
    install_upgrade_remove_purge(&deb);
}

fn check_contents(deb: &Path) {
    let files = text(&run(Command::new("dpkg-deb").arg("-c").arg(deb)));
    for f in [
        "./usr/bin/akm",
        "./lib/systemd/system/akm.service",
        "./etc/akm/akm.toml",
        "./etc/logrotate.d/akm",
        "./usr/share/doc/akm/copyright",
        "./usr/share/doc/akm/README.md",
        "./usr/share/doc/akm/examples/akm.toml",
        "./usr/share/man/man1/akm.1.gz",
        "./usr/share/man/man1/akm-key.1.gz",
        "./usr/share/bash-completion/completions/akm",
        "./usr/share/zsh/vendor-completions/_akm",
        "./usr/share/fish/vendor_completions.d/akm.fish",
    ] {
        assert!(
            files.lines().any(|l| l.ends_with(f)),
            "{f} not in the package:\n{files}"
        );
    }
    let info = text(&run(Command::new("dpkg-deb").arg("-I").arg(deb)));
    for script in ["postinst", "prerm", "postrm", "conffiles", "control"] {
        assert!(info.contains(&format!(" {script}")), "no {script}:\n{info}");
    }
    let field = |name: &str| text(&run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name)));
    assert_eq!(field("Package").trim(), "akm");
    let depends = field("Depends");
    for dep in ["libc6", "adduser", "init-system-helpers"] {
        assert!(depends.contains(dep), "Depends lacks {dep}: {depends}");
    }
    let conffiles = text(&run(Command::new("dpkg-deb")
        .arg("--info")
        .arg(deb)
        .arg("conffiles")));
    assert!(
        conffiles.lines().any(|l| l == "/etc/akm/akm.toml"),
        "{conffiles}"
    );
    assert!(
        conffiles.lines().any(|l| l == "/etc/logrotate.d/akm"),
        "{conffiles}"
    );
}

/// `man akm` and the bash completion are on the system after the install (unless this
/// machine's dpkg is told to leave man pages out, as slim container images do).
fn assert_docs_installed() {
    let completion = "/usr/share/bash-completion/completions/akm";
    assert_owned(completion, 0, 0o644);
    let script = std::fs::read_to_string(completion).unwrap();
    assert!(
        script.contains("serve") && script.contains("backup"),
        "{script}"
    );
    let excludes_man = std::fs::read_dir("/etc/dpkg/dpkg.cfg.d")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .any(|cfg| {
            cfg.lines()
                .any(|l| l.starts_with("path-exclude") && l.contains("/usr/share/man"))
        });
    if excludes_man {
        println!("note: dpkg excludes /usr/share/man here; man page install not checked");
        return;
    }
    assert_owned("/usr/share/man/man1/akm.1.gz", 0, 0o644);
}

fn dpkg(args: &[&str], deb: Option<&Path>) -> String {
    let mut cmd = Command::new("dpkg");
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    if let Some(d) = deb {
        cmd.arg(d);
    }
    text(&run(&mut cmd))
}

fn sha256(path: &str) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn uid_of_user(name: &str) -> u32 {
    let out = run(Command::new("id").args(["-u", name]));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn assert_owned(path: &str, uid: u32, mode: u32) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(meta.uid(), uid, "{path} owner");
    assert_eq!(meta.mode() & 0o7777, mode, "{path} mode {:o}", meta.mode());
}

/// A leftover from an interrupted run of this test is cleaned up; anything else that looks
/// like a real installation stops the test rather than being touched.
fn refuse_foreign_install() {
    let installed = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "akm"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("installed"));
    let marker = Path::new(STATE).join(".akm-deb-test");
    if Path::new(STATE).exists() || installed {
        assert!(
            marker.exists(),
            "{STATE} or an installed akm package exists and was not made by this test: \
             refusing to touch a real installation"
        );
        cleanup();
    }
}

fn cleanup() {
    let _ = Command::new("dpkg").args(["-P", "akm"]).output();
    let _ = std::fs::remove_dir_all(STATE);
    let _ = std::fs::remove_dir_all(LOGS);
    let _ = Command::new("userdel").arg("akm").output();
    let _ = Command::new("groupdel").arg("akm").output();
}

fn install_upgrade_remove_purge(deb: &Path) {
    refuse_foreign_install();
    // First install: user, directories, akm init as akm, the unit enabled.
    let first = dpkg(&["-i"], Some(deb));
    std::fs::write(Path::new(STATE).join(".akm-deb-test"), b"").unwrap();
    assert!(first.contains("first install: running akm init"), "{first}");
    if !Path::new("/run/systemd/system").exists() {
        assert!(first.contains("systemd is not running"), "{first}");
    }
    let passwd = text(&run(Command::new("getent").args(["passwd", "akm"])));
    assert!(
        passwd.contains(":/var/lib/akm:/usr/sbin/nologin"),
        "{passwd}"
    );
    let akm = uid_of_user("akm");
    assert_ne!(akm, 0);
    assert_owned(STATE, akm, 0o700);
    assert_owned(LOGS, akm, 0o750);
    assert_owned("/etc/akm", 0, 0o750);
    let akm_gid = std::fs::metadata(STATE).unwrap().gid();
    assert_eq!(
        std::fs::metadata("/etc/akm").unwrap().gid(),
        akm_gid,
        "/etc/akm group"
    );
    assert_owned(KEK, akm, 0o600);
    assert_owned("/var/lib/akm/data/audit-signing.key", akm, 0o600);
    assert_owned("/var/lib/akm/certs/server.key", akm, 0o600);
    assert_owned("/var/lib/akm/certs/admin.key", akm, 0o600);
    for f in ["ca.crt", "ca.crl", "server.crt", "admin.crt", "user.crt"] {
        let meta = std::fs::metadata(Path::new(STATE).join("certs").join(f)).unwrap();
        assert_eq!(meta.uid(), akm, "{f} owner");
    }
    assert!(
        std::fs::symlink_metadata(WANTS).is_ok(),
        "akm.service not enabled"
    );
    assert_owned("/usr/bin/akm", 0, 0o755);
    assert_docs_installed();
    let kek = sha256(KEK);

    serve_and_use();
    assert_owned("/var/lib/akm/data/akm.db", akm, 0o600);
    assert!(Path::new("/var/log/akm/akm.log").exists());

    // Reinstall (the upgrade path): no second init, the same KEK.
    let again = dpkg(&["-i"], Some(deb));
    assert!(!again.contains("running akm init"), "{again}");
    assert_eq!(sha256(KEK), kek, "reinstall replaced the KEK");

    // Remove: the program goes, the conffile and the keys stay.
    dpkg(&["-r", "akm"], None);
    assert!(!Path::new("/usr/bin/akm").exists());
    assert!(Path::new(CONFIG).exists(), "remove deleted the conffile");
    assert_eq!(sha256(KEK), kek);

    // Purge: the conffiles, logs and enable state go; the keys and the user stay, and the
    // operator is told where.
    let purge = dpkg(&["-P", "akm"], None);
    assert!(purge.contains("purge kept /var/lib/akm"), "{purge}");
    assert!(!Path::new(CONFIG).exists());
    assert!(!Path::new(LOGS).exists());
    assert!(std::fs::symlink_metadata(WANTS).is_err());
    assert_eq!(sha256(KEK), kek, "purge touched the KEK");
    assert_eq!(uid_of_user("akm"), akm);

    // Installing again over the kept keys does not initialize over them.
    let over = dpkg(&["-i"], Some(deb));
    assert!(over.contains("already holds a KEK or database"), "{over}");
    assert_eq!(sha256(KEK), kek);
    cleanup();

    deferred_init(deb);
}

/// AKM_SKIP_INIT=1 (the appliance build) installs without keys, and the server, with
/// auto_init = false, then refuses to start instead of making a KEK of its own.
fn deferred_init(deb: &Path) {
    let out = text(&run(Command::new("dpkg")
        .arg("-i")
        .arg(deb)
        .env("AKM_SKIP_INIT", "1")));
    std::fs::write(Path::new(STATE).join(".akm-deb-test"), b"").unwrap();
    assert!(
        out.contains("AKM_SKIP_INIT=1: not running akm init"),
        "{out}"
    );
    assert!(!Path::new(KEK).exists());
    let refused = Command::new("setpriv")
        .args(["--reuid=akm", "--regid=akm", "--init-groups", "--"])
        .args(["/usr/bin/akm", "serve", "--config", CONFIG])
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    // Exit 1 (could not start), naming the missing file under /var/lib/akm.
    let why = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{why}");
    assert!(why.contains("/var/lib/akm/"), "{why}");
    assert!(!Path::new(KEK).exists(), "auto_init = false made a KEK");
    cleanup();
}

/// The installed `akm` run as root from `/` with no flags finds /etc/akm/akm.toml and its
/// [client] admin certificate. The test's server listens on a free port rather than 5696, so
/// the one edit is [client] server; the conffile is put back afterwards.
fn installed_commands_work_as_root_anywhere(port: u16) {
    let packaged = std::fs::read_to_string(CONFIG).unwrap();
    let here = packaged.replace(
        "server = \"localhost:5696\"",
        &format!("server = \"localhost:{port}\""),
    );
    assert_ne!(
        here, packaged,
        "[client] server is no longer localhost:5696"
    );
    std::fs::write(CONFIG, here).unwrap();
    let bare = |args: &[&str]| {
        Command::new("/usr/bin/akm")
            .args(args)
            .current_dir("/")
            .env_remove("AKM_CONFIG")
            .output()
            .unwrap()
    };
    let listed = bare(&["key", "list"]);
    let backup = bare(&["backup"]);
    let report = bare(&["report", "keys", "--csv"]);
    std::fs::write(CONFIG, &packaged).unwrap();
    assert!(
        report.status.success(),
        "akm report keys --csv: {}",
        text(&report)
    );
    assert!(
        text(&report).contains("deb-package-test"),
        "{}",
        text(&report)
    );
    assert!(listed.status.success(), "akm key list: {}", text(&listed));
    assert!(
        text(&listed).contains("deb-package-test"),
        "{}",
        text(&listed)
    );
    assert!(backup.status.success(), "akm backup: {}", text(&backup));
}

/// Starts the installed server as the akm user on a free loopback port and runs Query,
/// Create and Get with the admin certificate `akm init` made.
fn serve_and_use() {
    let mut server = Command::new("setpriv")
        .args(["--reuid=akm", "--regid=akm", "--init-groups", "--"])
        .args(["/usr/bin/akm", "serve", "--config", CONFIG])
        .args(["--listen", "127.0.0.1:0"])
        .current_dir("/")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines
            .next()
            .expect("the installed server exited before listening (see /var/log/akm/error.log)")
            .unwrap();
        if let Some(addr) = line.strip_prefix("akm serve: listening on ") {
            let addr = addr.split_whitespace().next().unwrap();
            break addr.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let certs = Path::new(STATE).join("certs");
    let tls = akm::tls::client_config(
        &certs.join("admin.crt"),
        &certs.join("admin.key"),
        &certs.join("ca.crt"),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = Client::connect(&format!("localhost:{port}"), tls, V::V1_4)
            .await
            .unwrap();
        let q = c
            .call(
                op::QUERY,
                vec![Ttlv::enumeration(Tag::QUERY_FUNCTION, qf::QUERY_OPERATIONS)],
            )
            .await
            .unwrap();
        assert!(q
            .children_with(Tag::OPERATION)
            .any(|o| o.as_enum() == Some(op::CREATE)));
        let u = create_key(&mut c, Some("deb-package-test")).await;
        let got = c.call(op::GET, uid(&u)).await.unwrap();
        assert_eq!(key_bytes(&got).len(), 32);
    });
    installed_commands_work_as_root_anywhere(port);
    run(Command::new("kill").args(["-TERM", &server.id().to_string()]));
    let status = server.wait().unwrap();
    assert!(status.success(), "server exit after SIGTERM: {status}");
}
