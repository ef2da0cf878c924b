//! fsync failures, injected into the real `akm serve` binary with an LD_PRELOAD shim
//! (`tests/shim/fsync_fault.c`, compiled here with `cc`; skipped with a message if there is no
//! C compiler). The shim fails fsync/fdatasync/sync_file_range with EIO on the database's
//! files or, separately, on the audit journal, while a control file exists. While the fault
//! is on, writes get a clear KMIP error and are not acknowledged; once it clears, service
//! resumes without a restart; after a restart every acknowledged key is there with its bytes,
//! the database passes `PRAGMA integrity_check` and `akm audit verify` accepts the journal.
//! The shim's call log shows that SQLite's and the journal's syncs really reach it.

use crate::cli::{serve, serve_with, write_config, BIN};
use crate::support::kmip::*;
use akm::client::{Client, ClientError};
use akm::kmip::enums::{operation as op, result_reason as rr};
use akm::kmip::ProtocolVersion as V;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

/// Which files the fault hits.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// `akm.db` and its `-wal` and `-shm` files.
    Database,
    /// The audit journal.
    Journal,
}

/// A server directory with the shim built beside it.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    tls: Arc<rustls::ClientConfig>,
    shim: PathBuf,
}

impl Setup {
    /// Initializes a server directory and builds the shim; `None` (with a message) without a
    /// C compiler.
    fn new() -> Option<Setup> {
        let dir = tempfile::tempdir().unwrap();
        let shim = build_shim(dir.path())?;
        let config = write_config(dir.path());
        let (mut child, _) = serve(&config);
        // SIGKILL: a SIGTERM this early can arrive before `akm serve` has installed its
        // handler (it prints "listening" first). Initialization is durable by then.
        child.kill().unwrap();
        child.wait().unwrap();
        let certs = dir.path().join("certs");
        let tls = akm::tls::client_config(
            &certs.join("admin.crt"),
            &certs.join("admin.key"),
            &certs.join("ca.crt"),
        )
        .unwrap();
        Some(Setup {
            dir,
            config,
            tls,
            shim,
        })
    }

    /// The canonical path of a file in the data directory (the shim compares the paths
    /// /proc/self/fd resolves to).
    fn data(&self, name: &str) -> PathBuf {
        self.dir
            .path()
            .canonicalize()
            .unwrap()
            .join("data")
            .join(name)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The files the fault hits for `target` (a path prefix).
    fn prefix(&self, target: Target) -> PathBuf {
        match target {
            Target::Database => self.data("akm.db"),
            Target::Journal => self.data("audit/audit.log"),
        }
    }

    /// `akm serve` under the shim, its diagnostic log in `serve.stderr`.
    fn serve_faulty(&self, target: Target) -> (Child, u16) {
        let stderr = std::fs::File::create(self.path("serve.stderr")).unwrap();
        serve_with(&self.config, |cmd| {
            cmd.env("LD_PRELOAD", &self.shim)
                .env("AKM_FAULT_PREFIX", self.prefix(target))
                .env("AKM_FAULT_CONTROL", self.path("fault-on"))
                .env("AKM_FAULT_LOG", self.path("fsync.log"))
                .stderr(Stdio::from(stderr));
        })
    }

    async fn client(&self, port: u16) -> Client {
        Client::connect(&format!("localhost:{port}"), self.tls.clone(), V::V1_4)
            .await
            .unwrap()
    }

    /// The diagnostic log of the server run under the shim.
    fn log(&self) -> String {
        std::fs::read_to_string(self.path("serve.stderr")).unwrap()
    }

    /// The shim's log lines so far: `(function, path, failed)`.
    fn sync_calls(&self) -> Vec<(String, String, bool)> {
        let text = std::fs::read_to_string(self.path("fsync.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                Some((f.next()?.into(), f.next()?.into(), f.next()? == "EIO"))
            })
            .collect()
    }
}

/// Compiles the shim into `dir`; `None` with a message when there is no C compiler.
fn build_shim(dir: &Path) -> Option<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shim/fsync_fault.c");
    let out = dir.join("fsync_fault.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-Wall", "-o"])
        .arg(&out)
        .arg(&source)
        .arg("-ldl")
        .status();
    match status {
        Ok(s) => {
            assert!(s.success(), "cc could not build {}", source.display());
            Some(out)
        }
        Err(e) => {
            eprintln!("SKIPPED: no C compiler (cc) to build the fsync shim: {e}");
            None
        }
    }
}

/// SIGTERM; whether the server exited cleanly.
fn stop(child: &mut Child) -> bool {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    child.wait().unwrap().success()
}

fn new_key(i: u8) -> Vec<u8> {
    (0..32u8)
        .map(|b| b.wrapping_mul(13).wrapping_add(i))
        .collect()
}

/// The message a client gets while the fault is on.
fn expected_message(target: Target) -> &'static str {
    match target {
        Target::Database => "key store: I/O error on the database filesystem; nothing was written",
        Target::Journal => "audit journal unavailable",
    }
}

fn assert_refused(target: Target, r: Result<akm::ttlv::Ttlv, ClientError>, what: &str) {
    match r {
        Err(ClientError::Failed { reason, message }) => {
            assert_eq!(reason, rr::GENERAL_FAILURE, "{what}: {message}");
            assert_eq!(message, expected_message(target), "{what}");
        }
        other => panic!("{what} with failing fsync on the {target:?}: {other:?}"),
    }
}

async fn fsync_failure_is_refused_then_recovered(target: Target) {
    let Some(s) = Setup::new() else { return };
    let (mut child, port) = s.serve_faulty(target);
    let mut c = s.client(port).await;
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..3 {
        let r = c
            .call(
                op::REGISTER,
                register_key_payload(V::V1_4, &new_key(i), &[]),
            )
            .await
            .unwrap();
        acked.push((uid_of(&r), new_key(i)));
    }
    // Served once, so a Get of it later writes nothing to the store.
    let got = c.call(op::GET, uid(&acked[0].0)).await.unwrap();
    assert_eq!(key_bytes(&got), acked[0].1);

    // The syncs really pass through the shim (not assumed): SQLite's on the WAL at commit,
    // the journal's fdatasync on every group.
    let calls = s.sync_calls();
    let synced = |suffix: &str| {
        calls
            .iter()
            .any(|(_, p, failed)| p.ends_with(suffix) && !failed)
    };
    match target {
        Target::Database => assert!(synced("akm.db-wal"), "no WAL sync seen: {calls:?}"),
        Target::Journal => assert!(synced("audit.log"), "no journal sync seen: {calls:?}"),
    }

    print_calls(target, "before the fault", &calls);
    std::fs::write(s.path("fault-on"), b"").unwrap();
    for i in 10..13 {
        let r = c
            .call(
                op::REGISTER,
                register_key_payload(V::V1_4, &new_key(i), &[]),
            )
            .await;
        assert_refused(target, r, "Register");
    }
    let r = c
        .call(op::CREATE, create_payload(V::V1_4, &aes_attrs(None)))
        .await;
    assert_refused(target, r, "Create");
    let calls = s.sync_calls();
    print_calls(target, "with the fault", &calls);
    assert!(calls.iter().any(|c| c.2), "the shim failed no sync");
    let get = c.call(op::GET, uid(&acked[0].0)).await;
    match target {
        // A read needs no sync: it is served while the database cannot sync.
        Target::Database => assert_eq!(key_bytes(&get.unwrap()), acked[0].1),
        // Every request needs its audit record: nothing is served while the journal fails.
        Target::Journal => assert_refused(target, get, "Get"),
    }

    // The fault clears: the same connection is served again, no restart.
    std::fs::remove_file(s.path("fault-on")).unwrap();
    let r = c
        .call(
            op::REGISTER,
            register_key_payload(V::V1_4, &new_key(20), &[]),
        )
        .await
        .unwrap();
    acked.push((uid_of(&r), new_key(20)));
    for (u, bytes) in &acked {
        let got = c.call(op::GET, uid(u)).await.unwrap();
        assert_eq!(&key_bytes(&got), bytes, "key {u} after the fault cleared");
    }
    drop(c);
    let clean = stop(&mut child);
    check_operator_log(&s, target);
    assert!(
        clean,
        "akm serve under the shim failed to stop: {}",
        s.log()
    );

    // After a restart (without the shim) everything acknowledged is there.
    let (mut child, port) = serve(&s.config);
    let mut c = s.client(port).await;
    for (u, bytes) in &acked {
        let got = c.call(op::GET, uid(u)).await.unwrap();
        assert_eq!(&key_bytes(&got), bytes, "key {u} after a restart");
    }
    // Refused writes whose data reached the file anyway may be there (a refusal means "not
    // acknowledged", not "certainly absent"); say how many.
    let all = uids_of(&c.call(op::LOCATE, vec![]).await.unwrap());
    println!(
        "{target:?}: {} acknowledged keys intact after a restart; {} objects in all",
        acked.len(),
        all.len()
    );
    drop(c);
    assert!(
        stop(&mut child),
        "akm serve failed to stop after the restart"
    );
    integrity_check(&s.data("akm.db"));
    audit_verify(&s);
}

/// Counts of the shim's log by function, file and outcome, for `--nocapture` runs.
fn print_calls(target: Target, when: &str, calls: &[(String, String, bool)]) {
    let mut counts = std::collections::BTreeMap::new();
    for (f, p, failed) in calls {
        let file = Path::new(p)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        let outcome = if *failed { "EIO" } else { "ok" };
        *counts.entry(format!("{f} {file} {outcome}")).or_insert(0) += 1;
    }
    println!("{target:?} {when}: sync calls seen by the shim: {counts:?}");
}

/// The operator's log names the failing file and says what happened.
fn check_operator_log(s: &Setup, target: Target) {
    let log = s.log();
    // The path as configured (`config/../data/...`), so only its end is compared.
    let (what, path) = match target {
        Target::Database => ("I/O error committing to the database", "/data/akm.db"),
        Target::Journal => ("audit journal cannot be written", "/data/audit/audit.log"),
    };
    assert!(log.contains(what), "no {what:?} in the server log:\n{log}");
    assert!(
        log.contains(path),
        "the server log does not name {path}:\n{log}"
    );
}

fn integrity_check(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(result, "ok");
}

fn audit_verify(s: &Setup) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&s.config)
        .args(["audit", "verify", "--first-serial", "1"])
        .arg(s.data("audit/audit.log"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "akm audit verify refused the journal: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn failing_database_fsync_refuses_writes_then_resumes_and_loses_nothing() {
    fsync_failure_is_refused_then_recovered(Target::Database).await;
}

#[tokio::test]
async fn failing_journal_fsync_refuses_requests_then_resumes_and_the_chain_verifies() {
    fsync_failure_is_refused_then_recovered(Target::Journal).await;
}

/// A change committed whose audit record could not be written (the journal's fsync failed
/// right after the commit), then kill -9: at the next start the journal names it
/// (`event=audit.recover`), once, and the chain still verifies.
#[tokio::test]
async fn a_commit_whose_audit_record_was_lost_is_named_at_the_next_start() {
    let Some(s) = Setup::new() else { return };
    let (mut child, port) = s.serve_faulty(Target::Journal);
    let mut c = s.client(port).await;
    c.call(
        op::REGISTER,
        register_key_payload(V::V1_4, &new_key(1), &[]),
    )
    .await
    .unwrap();
    std::fs::write(s.path("fault-on"), b"").unwrap();
    // Committed to the database, then refused because its record could not be made durable.
    let r = c
        .call(
            op::REGISTER,
            register_key_payload(V::V1_4, &new_key(2), &[]),
        )
        .await;
    assert_refused(Target::Journal, r, "Register");
    drop(c);
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_file(s.path("fault-on")).unwrap();

    let journal = || std::fs::read_to_string(s.data("audit/audit.log")).unwrap();
    let recovered = |text: &str| {
        text.lines()
            .filter(|l| l.contains("event=audit.recover"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (mut child, port) = serve(&s.config);
    let mut c = s.client(port).await;
    let uids = uids_of(&c.call(op::LOCATE, vec![]).await.unwrap());
    let text = journal();
    for u in &uids {
        assert!(text.contains(u.as_str()), "the journal never names {u}");
    }
    let first = recovered(&text);
    assert!(!first.is_empty(), "no audit.recover record in:\n{text}");
    drop(c);
    assert!(stop(&mut child));

    // A clean restart names nothing again.
    let (mut child, _) = serve(&s.config);
    assert!(stop(&mut child));
    assert_eq!(recovered(&journal()), first, "recovery records repeated");
    audit_verify(&s);
}
