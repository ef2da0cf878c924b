//! Interoperability with PyKMIP 0.11, an independent KMIP client: starts the real server
//! in-process on an ephemeral port with a PKI made at test time, then runs
//! `tests/pykmip/interop.py` once per KMIP version (1.2, 1.4, 2.0), each with its own fresh
//! client identities so Locate results cannot mix. Owns finding or creating the Python
//! environment (`target/pykmip-venv`, or `$AKM_PYKMIP_PYTHON`).
//!
//! Without python3, venv or pip the test fails; `AKM_SKIP_PYKMIP=1` skips it (it prints
//! `skipped` and passes): a missing interop run must be a decision, never an accident.

use crate::support::server::{test_settings, TestServer};
use crate::support::venv::{python_succeeds, python_with};
use akm::pki::{Ca, Validity};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The PyKMIP release the interop script is written against.
const PYKMIP_VERSION: &str = "0.11.0";

/// KMIP versions PyKMIP is run at: its default (1.2), the last 1.x and 2.0.
const VERSIONS: [&str; 3] = ["1.2", "1.4", "2.0"];

/// Longest one interop run may take; PyKMIP's own socket timeout is 30 s per call, so a hung
/// server is caught well before this, but a wedged interpreter must not hang the suite.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pykmip_client_interoperates_at_1_2_1_4_and_2_0() {
    if skip_requested() {
        println!("skipped: PyKMIP interop test (AKM_SKIP_PYKMIP=1)");
        return;
    }
    let python = match pykmip_python() {
        Ok(p) => p,
        Err(why) => panic!(
            "PyKMIP interop test cannot run: {why}\n\
             Install python3 with the venv and pip modules (Debian: apt-get install \
             python3-venv python3-pip), point AKM_PYKMIP_PYTHON at an interpreter that has \
             pykmip=={PYKMIP_VERSION}, or set AKM_SKIP_PYKMIP=1 to skip this test on purpose."
        ),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // PyKMIP pauses between calls while it checks results: a roomier idle timeout.
    let mut settings = test_settings();
    settings.limits.idle_timeout = Duration::from_secs(60);
    let server = TestServer::start_with(settings).await;
    let pki = PemFiles::new(&server.ca, dir.path());
    // An existing, empty PyKMIP config file keeps any ~/.pykmip or /etc/pykmip config out.
    let config_file = dir.path().join("pykmip.conf");
    std::fs::write(&config_file, "").expect("write pykmip.conf");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pykmip/interop.py");

    let mut failed = Vec::new();
    for version in VERSIONS {
        let tag = version.replace('.', "_");
        let me = pki.client(&format!("pykmip-{tag}"));
        let other = pki.client(&format!("pykmip-{tag}-other"));
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .args(["--host", "127.0.0.1"])
            .args(["--port", &server.addr.port().to_string()])
            .arg("--ca")
            .arg(&pki.ca_file)
            .arg("--cert")
            .arg(&me.0)
            .arg("--key")
            .arg(&me.1)
            .arg("--other-cert")
            .arg(&other.0)
            .arg("--other-key")
            .arg(&other.1)
            .args(["--version", version])
            .arg("--config-file")
            .arg(&config_file);
        if akm::crypto::backend::FIPS_BUILD {
            cmd.arg("--fips");
        }
        let log = dir.path().join(format!("run-{tag}.log"));
        let (ok, output) = tokio::task::spawn_blocking(move || run_with_timeout(cmd, &log))
            .await
            .expect("interop run");
        println!("---- PyKMIP interop, KMIP {version} ----\n{output}");
        if !ok {
            failed.push(version);
        }
    }
    server.stop().await;
    assert!(
        failed.is_empty(),
        "PyKMIP interop failed for KMIP {failed:?} (see the output above)"
    );
}

pub(crate) fn skip_requested() -> bool {
    std::env::var("AKM_SKIP_PYKMIP").is_ok_and(|v| v == "1")
}

/// Runs `cmd` with stdout and stderr into `log`; returns whether it exited 0, and the log.
pub(crate) fn run_with_timeout(mut cmd: Command, log: &Path) -> (bool, String) {
    let file = std::fs::File::create(log).expect("create run log");
    let err = file.try_clone().expect("clone run log");
    // A file, not a pipe: nobody reads while the child runs, and a pipe could fill up.
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the python run") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut output = std::fs::read_to_string(log).unwrap_or_default();
    match status {
        Some(s) if s.success() => (true, output),
        Some(s) => {
            output.push_str(&format!("python exited with {s}\n"));
            (false, output)
        }
        None => {
            output.push_str(&format!("python killed after {RUN_TIMEOUT:?}\n"));
            (false, output)
        }
    }
}

// ---- the Python side ----

/// The interpreter to run interop.py with: `$AKM_PYKMIP_PYTHON`, else the venv under
/// `target/pykmip-venv`, created (with pykmip pinned) when it is missing or broken. This test
/// and the suite runner (pykmip_suite.rs) share the venv.
pub(crate) fn pykmip_python() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("AKM_PYKMIP_PYTHON") {
        let p = PathBuf::from(p);
        return if has_pykmip(&p) {
            Ok(p)
        } else {
            Err(format!(
                "AKM_PYKMIP_PYTHON={} cannot import kmip {PYKMIP_VERSION}",
                p.display()
            ))
        };
    }
    python_with(
        "pykmip-venv",
        &format!("pykmip=={PYKMIP_VERSION}"),
        has_pykmip,
    )
}

/// Whether `python` runs and imports PyKMIP of the pinned version.
fn has_pykmip(python: &Path) -> bool {
    python_succeeds(
        python,
        &format!("import sys, kmip; sys.exit(kmip.__version__ != {PYKMIP_VERSION:?})"),
    )
}

// ---- certificates as files, for PyKMIP ----

/// Client certificates from the test server's CA, written as PEM files for PyKMIP.
pub(crate) struct PemFiles<'a> {
    ca: &'a Ca,
    dir: PathBuf,
    pub(crate) ca_file: PathBuf,
}

impl<'a> PemFiles<'a> {
    pub(crate) fn new(ca: &'a Ca, dir: &Path) -> PemFiles<'a> {
        let ca_file = dir.join("ca.crt");
        std::fs::write(&ca_file, ca.cert_pem()).expect("write ca.crt");
        PemFiles {
            ca,
            dir: dir.to_path_buf(),
            ca_file,
        }
    }

    /// A new client identity `cn` (OU users): its certificate and key files.
    pub(crate) fn client(&self, cn: &str) -> (PathBuf, PathBuf) {
        let issued = self
            .ca
            .issue_client(cn, &["users".to_string()], Validity::days_from_now(1))
            .expect("issue client certificate");
        let cert = self.dir.join(format!("{cn}.crt"));
        let key = self.dir.join(format!("{cn}.key"));
        std::fs::write(&cert, &issued.cert_pem).expect("write client cert");
        akm::secret_file::write_new(&key, issued.key_pem.as_bytes()).expect("write client key");
        (cert, key)
    }
}
