//! The audit commands and log rotation as an operator uses them: `akm init` makes the audit
//! signing key, `akm audit public-key` exports it, the real logrotate (rule from the README,
//! postrotate SIGHUP) splits the journal and the diagnostic logs into new files, `akm audit verify` accepts the rotated and
//! the new journal (together and apart) and rejects a tampered copy with exit code 3, and
//! `akm audit export --csv` writes the trail.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_akm");

pub(crate) fn write_config(dir: &Path) -> PathBuf {
    let config_dir = dir.join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let path = config_dir.join("akm.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:0\"\nauto_init = true\n\
         [tls]\ncerts_dir = \"../certs\"\ncert = \"../certs/server.crt\"\nkey = \"../certs/server.key\"\nclient_ca = \"../certs/ca.crt\"\n\
         [store]\ndata_dir = \"../data\"\n\
         [client]\ncert = \"../certs/admin.crt\"\nkey = \"../certs/admin.key\"\nca = \"../certs/ca.crt\"\n\
         [log]\nlevel = \"verbose\"\nfile = \"../logs/akm.log\"\nerror_file = \"../logs/error.log\"\n\
         syslog = \"../logs/syslog.sock\"\nsyslog_facility = \"local1\"\n\
         [audit]\nserver_name = \"kms-test\"\n",
    )
    .unwrap();
    path
}

pub(crate) fn akm(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn serve(config: &Path) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(addr) = line.strip_prefix("akm serve: listening on ") {
            let addr = addr.split_whitespace().next().unwrap();
            break addr.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, port)
}

pub(crate) fn signal(child: &Child, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

/// Rotates the journal and the diagnostic log with the real logrotate and the rule the
/// README gives (postrotate sends SIGHUP). Without logrotate (outside CI) does what it does:
/// rename, then SIGHUP.
fn rotate(dir: &Path, server: &Child) {
    let files = [dir.join("data/audit/audit.log"), dir.join("logs/akm.log")];
    let logrotate = Path::new("/usr/sbin/logrotate");
    if !logrotate.exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "logrotate not found but CI=true: .ci/run must install it"
        );
        eprintln!("logrotate not found: rotating by rename + SIGHUP instead");
        for f in &files {
            let mut to = f.as_os_str().to_owned();
            to.push(".1");
            std::fs::rename(f, to).unwrap();
        }
        signal(server, "-HUP");
        return;
    }
    let conf = dir.join("logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{} {} {{\n    daily\n    rotate 400\n    missingok\n    notifempty\n    nocompress\n    sharedscripts\n    postrotate\n        kill -HUP {}\n    endscript\n}}\n",
            files[0].display(),
            files[1].display(),
            server.id()
        ),
    )
    .unwrap();
    let out = Command::new(logrotate)
        .arg("--force")
        .arg("--state")
        .arg(dir.join("logrotate.state"))
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logrotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_for(path: &Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(path)
        .unwrap_or_default()
        .contains(needle)
    {
        assert!(
            Instant::now() < deadline,
            "{} never got {needle:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn init_export_rotate_verify_and_export_csv() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let init = ok(akm(&config, &["init"]));
    assert!(init.contains("audit signing key written"), "{init}");
    use std::os::unix::fs::PermissionsExt;
    let key_mode = std::fs::metadata(dir.path().join("data/audit-signing.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let public = dir.path().join("audit.pub");
    ok(akm(
        &config,
        &["audit", "public-key", "--out", public.to_str().unwrap()],
    ));
    assert!(std::fs::read_to_string(&public)
        .unwrap()
        .starts_with("ed25519:"));

    // A local syslog socket standing in for /dev/log.
    let syslog =
        std::os::unix::net::UnixDatagram::bind(dir.path().join("logs/syslog.sock")).unwrap();
    let syslog_seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = syslog_seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = syslog.recv(&mut buf) {
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    let (server, port) = serve(&config);
    let server_arg = format!("localhost:{port}");
    let key = |name: &str| {
        ok(akm(
            &config,
            &["key", "create", "--name", name, "--server", &server_arg],
        ));
    };
    key("before-rotation");
    // An administration command (an akm KMIP extension) is audited like any operation.
    ok(akm(
        &config,
        &[
            "user",
            "set",
            "carol",
            "--ops",
            "get",
            "--server",
            &server_arg,
        ],
    ));
    let journal = dir.path().join("data/audit/audit.log");
    let rotated = dir.path().join("data/audit/audit.log.1");
    let log = dir.path().join("logs/akm.log");
    rotate(dir.path(), &server);
    wait_for(&journal, "reason=reopen");
    wait_for(&rotated, "reason=rotate");
    key("after-rotation");
    signal(&server, "-TERM");
    let mut server = server;
    assert!(server.wait().unwrap().success());

    // The diagnostic logs: the startup warning for a chatty level, the new file after
    // SIGHUP, and an error stream with warnings and errors only.
    let old_log = std::fs::read_to_string(dir.path().join("logs/akm.log.1")).unwrap();
    assert!(old_log.contains("may expose sensitive"), "{old_log}");
    let new_log = std::fs::read_to_string(&log).unwrap();
    assert!(new_log.contains("audit journal reopened"), "{new_log}");
    let errors = std::fs::read_to_string(dir.path().join("logs/error.log")).unwrap();
    assert!(
        errors.contains("WARN") && !errors.contains(" INFO "),
        "{errors}"
    );

    // The same streams reach syslog under their own app-names: local1 (17) * 8 + severity.
    let wanted = |d: &[String]| {
        d.iter()
            .any(|d| d.starts_with("<140>akm-error[") && d.contains("may expose sensitive"))
            && d.iter()
                .any(|d| d.starts_with("<142>akm[") && d.contains("audit journal reopened"))
    };
    // The datagrams are queued already; the reader thread may not have taken them yet.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wanted(&syslog_seen.lock().unwrap()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let datagrams = syslog_seen.lock().unwrap().clone();
    assert!(
        datagrams
            .iter()
            .any(|d| d.starts_with("<140>akm-error[") && d.contains("may expose sensitive")),
        "{datagrams:?}"
    );
    assert!(
        datagrams
            .iter()
            .any(|d| d.starts_with("<142>akm[") && d.contains("audit journal reopened")),
        "{datagrams:?}"
    );
    assert!(!datagrams.iter().any(|d| d.starts_with("<142>akm-error[")));

    let verify = |files: &[&Path]| {
        let mut args = vec!["audit", "verify", "--public-key", public.to_str().unwrap()];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        akm(&config, &args)
    };
    let both = ok(verify(&[&rotated, &journal]));
    assert!(both.contains("OK:"), "{both}");
    ok(akm(
        &config,
        &[
            "audit",
            "verify",
            "--first-serial",
            "1",
            rotated.to_str().unwrap(),
            journal.to_str().unwrap(),
        ],
    ));
    // The new file alone does not go back to serial 1.
    let out = akm(
        &config,
        &[
            "audit",
            "verify",
            "--first-serial",
            "1",
            journal.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    ok(verify(&[&rotated]));
    ok(verify(&[&journal]));
    // Without --public-key, the configured signing key is used.
    ok(akm(
        &config,
        &["audit", "verify", journal.to_str().unwrap()],
    ));

    // A tampered copy: exit 3, the fault named.
    let text = std::fs::read_to_string(&journal).unwrap();
    let tampered = dir.path().join("tampered.log");
    std::fs::write(
        &tampered,
        text.replacen("outcome=success", "outcome=failure", 1),
    )
    .unwrap();
    let out = verify(&[&tampered]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("modified at serial"), "{stderr}");
    // Out of order files: the new one before the rotated one.
    let out = verify(&[&journal, &rotated]);
    assert_eq!(out.status.code(), Some(3));
    // Several keys (a signing-key change): the one each checkpoint names is used.
    let other = dir.path().join("other.pub");
    std::fs::write(
        &other,
        "ed25519:0000000000000000000000000000000000000000000000000000000000000000\n",
    )
    .unwrap();
    let both_keys = akm(
        &config,
        &[
            "audit",
            "verify",
            "--public-key",
            other.to_str().unwrap(),
            "--public-key",
            public.to_str().unwrap(),
            journal.to_str().unwrap(),
        ],
    );
    ok(both_keys);
    let wrong_key = akm(
        &config,
        &[
            "audit",
            "verify",
            "--public-key",
            other.to_str().unwrap(),
            journal.to_str().unwrap(),
        ],
    );
    assert_eq!(wrong_key.status.code(), Some(3));
    // A missing file is a usage error.
    let out = verify(&[Path::new("/nonexistent/audit.log")]);
    assert_eq!(out.status.code(), Some(64));

    let csv = ok(akm(
        &config,
        &[
            "audit",
            "export",
            "--csv",
            rotated.to_str().unwrap(),
            journal.to_str().unwrap(),
        ],
    ));
    assert!(
        csv.contains(",config,"),
        "the start records the configuration: {csv}"
    );
    let mut rows = csv.lines();
    assert!(rows.next().unwrap().starts_with("serial,time,server,"));
    let rows: Vec<&str> = rows.collect();
    assert!(
        rows.iter()
            .any(|r| r.contains(",x-SetAccount,") && r.contains(",success,")),
        "{csv}"
    );
    let creates: Vec<&str> = rows
        .iter()
        .copied()
        .filter(|r| r.contains(",Create,"))
        .collect();
    assert_eq!(creates.len(), 2, "{csv}");
    assert!(creates[0].contains("before-rotation") && creates[0].contains(",kms-test,"));
}

#[test]
fn an_unusable_journal_or_sink_certificate_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    // Before init there is no signing key to export.
    let out = akm(&config, &["audit", "public-key"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("audit-signing.key"), "{err}");
    ok(akm(&config, &["init"]));
    let base = std::fs::read_to_string(&config).unwrap();
    let start = |extra: &str| {
        std::fs::write(&config, format!("{base}{extra}")).unwrap();
        let out = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The journal's directory is a file.
    std::fs::write(dir.path().join("not-a-dir"), "").unwrap();
    let err = start("journal = \"../not-a-dir/audit.log\"\n");
    assert!(err.contains("not-a-dir"), "{err}");
    // A TLS sink whose client certificate does not exist.
    let err = start(
        "[[audit.sinks]]\ntransport = \"tls\"\naddress = \"127.0.0.1:6514\"\n\
         tls_ca = \"../certs/ca.crt\"\ntls_cert = \"../missing.crt\"\ntls_key = \"../certs/admin.key\"\n",
    );
    assert!(err.contains("missing.crt"), "{err}");
}
