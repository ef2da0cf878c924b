//! Scheduled backups copied over SFTP to a real OpenSSH server on loopback: the test starts
//! its own `sshd -D -e -f cfg` (Debian openssh-server; `.ci/run` installs it) with a host key
//! and an authorized client key generated here, a known_hosts file naming that host key, and
//! its own port. The remote copy is byte-identical to the local backup and verifies with
//! `akm restore --verify-only`; the backup log and audit journal record the upload. A wrong
//! known_hosts (another host key) makes the upload fail and be logged, never trusted. Skips
//! with a message without sshd (fails under CI=true).

use crate::cli::{akm, json, serve, write_config, BIN};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

struct Sshd {
    child: Child,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Starts sshd on loopback accepting `client_pub` for the current user.
fn start_sshd(dir: &Path, client_pub: &Path) -> Sshd {
    keygen(&dir.join("host_key"));
    let auth = dir.join("authorized_keys");
    std::fs::copy(client_pub, &auth).unwrap();
    let port = free_port();
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\nAllowUsers {user}\nSubsystem sftp internal-sftp\n",
            d = dir.display(),
            user = whoami()
        ),
    )
    .unwrap();
    // sshd wants its privilege separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    Sshd { child, port }
}

fn known_hosts(path: &Path, port: u16, host_pub: &Path) {
    let key = std::fs::read_to_string(host_pub).unwrap();
    let mut fields = key.split_whitespace();
    let (kind, body) = (fields.next().unwrap(), fields.next().unwrap());
    std::fs::write(path, format!("[127.0.0.1]:{port} {kind} {body}\n")).unwrap();
}

fn akmbaks(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("akm-") && n.ends_with(".akmbak"))
    });
    v.sort();
    v
}

#[test]
fn scheduled_backups_are_copied_to_a_real_sshd() {
    if !Path::new(SSHD).exists() {
        assert!(std::env::var("CI").is_err(), "{SSHD} missing under CI");
        eprintln!("SKIPPED: {SSHD} not installed (Debian openssh-server)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let ssh = root.join("ssh");
    std::fs::create_dir(&ssh).unwrap();
    keygen(&ssh.join("id"));
    let sshd = start_sshd(&ssh, &ssh.join("id.pub"));
    known_hosts(
        &ssh.join("known_hosts"),
        sshd.port,
        &ssh.join("host_key.pub"),
    );
    let remote = root.join("remote");
    std::fs::create_dir(&remote).unwrap();

    let config = write_config(&root);
    let mut cfg = std::fs::read_to_string(&config).unwrap();
    cfg.push_str(&format!(
        "[backup]\ninterval_secs = 1\nkeep = 3\n[backup.sftp]\ndestination = \"{user}@127.0.0.1:{remote}\"\n\
         port = {port}\nidentity = \"{id}\"\nknown_hosts = \"{kh}\"\n",
        user = whoami(),
        remote = remote.display(),
        port = sshd.port,
        id = ssh.join("id").display(),
        kh = ssh.join("known_hosts").display(),
    ));
    std::fs::write(&config, &cfg).unwrap();
    let (mut server, port) = serve(&config);
    json(&akm(
        &config,
        port,
        &["key", "create", "--name", "remote", "--json"],
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    while akmbaks(&remote).is_empty() {
        assert!(Instant::now() < deadline, "no backup arrived over SFTP");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    assert!(server.wait().unwrap().success());

    let copied = akmbaks(&remote)[0].clone();
    let local = root.join("backups").join(copied.file_name().unwrap());
    if local.exists() {
        assert_eq!(
            std::fs::read(&copied).unwrap(),
            std::fs::read(&local).unwrap()
        );
    }
    let verified = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["restore", "--verify-only"])
        .arg(&copied)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let log = std::fs::read_to_string(root.join("backups/backup.log")).unwrap();
    assert!(
        log.contains("event=upload") && log.contains("outcome=success"),
        "{log}"
    );
    assert!(
        !remote
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".part")),
        "partial upload left behind"
    );

    // Another host key in known_hosts: the upload is refused and logged as a failure.
    keygen(&ssh.join("impostor"));
    known_hosts(
        &ssh.join("known_hosts"),
        sshd.port,
        &ssh.join("impostor.pub"),
    );
    for f in akmbaks(&remote) {
        std::fs::remove_file(f).unwrap();
    }
    let (mut server, _) = serve(&config);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let log = std::fs::read_to_string(root.join("backups/backup.log")).unwrap();
        if log.contains("outcome=failure") {
            break;
        }
        assert!(Instant::now() < deadline, "no failed upload logged: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    assert!(server.wait().unwrap().success());
    assert!(
        akmbaks(&remote).is_empty(),
        "uploaded to an unverified host"
    );
}

/// A manual `akm backup` is copied over SFTP like a scheduled one, and says where; with a
/// host key known_hosts does not name, the copy is refused, the local backup stays, and the
/// command says so.
#[test]
fn a_manual_backup_is_copied_too() {
    if !Path::new(SSHD).exists() {
        assert!(std::env::var("CI").is_err(), "{SSHD} missing under CI");
        eprintln!("SKIPPED: {SSHD} not installed (Debian openssh-server)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let ssh = root.join("ssh");
    std::fs::create_dir(&ssh).unwrap();
    keygen(&ssh.join("id"));
    let sshd = start_sshd(&ssh, &ssh.join("id.pub"));
    known_hosts(
        &ssh.join("known_hosts"),
        sshd.port,
        &ssh.join("host_key.pub"),
    );
    let remote = root.join("remote");
    std::fs::create_dir(&remote).unwrap();
    let config = write_config(&root);
    let mut cfg = std::fs::read_to_string(&config).unwrap();
    cfg.push_str(&format!(
        "[backup.sftp]\ndestination = \"{user}@127.0.0.1:{remote}\"\n\
         port = {port}\nidentity = \"{id}\"\nknown_hosts = \"{kh}\"\n",
        user = whoami(),
        remote = remote.display(),
        port = sshd.port,
        id = ssh.join("id").display(),
        kh = ssh.join("known_hosts").display(),
    ));
    std::fs::write(&config, &cfg).unwrap();
    let (mut server, port) = serve(&config);
    let out = json(&akm(&config, port, &["backup", "--json"]));
    let local = PathBuf::from(out["file"].as_str().unwrap());
    let copied = remote.join(local.file_name().unwrap());
    assert_eq!(
        out["uploaded"].as_str().unwrap(),
        format!("{}@127.0.0.1:{}", whoami(), copied.display())
    );
    assert_eq!(
        std::fs::read(&copied).unwrap(),
        std::fs::read(&local).unwrap()
    );
    let log = std::fs::read_to_string(root.join("backups/backup.log")).unwrap();
    assert!(
        log.contains("by=admin") && log.contains("outcome=success"),
        "{log}"
    );

    // The wrong host key: refused, reported, the local backup kept.
    keygen(&ssh.join("impostor"));
    known_hosts(
        &ssh.join("known_hosts"),
        sshd.port,
        &ssh.join("impostor.pub"),
    );
    let refused = akm(&config, port, &["backup", "--json"]);
    let stderr = String::from_utf8_lossy(&refused.stderr).to_string();
    let out = json(&refused);
    assert!(out["upload_error"].as_str().is_some(), "{out}");
    assert!(out.get("uploaded").is_none(), "{out}");
    assert!(stderr.contains("copying it over SFTP failed"), "{stderr}");
    let local = PathBuf::from(out["file"].as_str().unwrap());
    assert!(local.exists());
    assert!(!remote.join(local.file_name().unwrap()).exists());
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    assert!(server.wait().unwrap().success());
}

/// A remote that accepts the TCP connection and then says nothing (a hung SSH server): the
/// upload fails within the configured timeouts instead of hanging every later backup.
#[test]
fn an_sftp_server_that_never_answers_fails_the_upload_in_bounded_time() {
    if Command::new("sftp").arg("-V").output().is_err() {
        eprintln!("SKIPPED: no sftp client");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = silent.incoming().take(2).collect();
        std::thread::sleep(Duration::from_secs(20));
        drop(conns);
    });
    let file = dir.path().join("b.akmbak");
    std::fs::write(&file, b"backup").unwrap();
    // The SSH connect timeout, then the whole-transfer deadline (sftp stopped).
    for (connect, transfer) in [(2, 60), (60, 2)] {
        let target: akm::config::SftpTarget = toml::from_str(&format!(
            "destination = \"backup@127.0.0.1:/srv\"\nport = {port}\nidentity = \"{0}/id\"\n\
             known_hosts = \"{0}/known_hosts\"\nconnect_timeout_secs = {connect}\n\
             transfer_timeout_secs = {transfer}\n",
            dir.path().display()
        ))
        .unwrap();
        let started = Instant::now();
        let err = target
            .upload(&file)
            .expect_err("an upload to a silent server succeeded");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the upload hung for {:?}: {err}",
            started.elapsed()
        );
    }
    drop(held);
}
