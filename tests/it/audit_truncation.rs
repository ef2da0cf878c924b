//! A journal cut back to an earlier clean stop (every record after an earlier `final`
//! checkpoint removed) is a valid chain on its own. `akm audit verify` catches it with
//! `--max-age` (which now applies however the journal ends), against a SIEM's copy of the
//! records (the RFC 5424 datagrams a UDP sink sent, and a key=value copy), and against a
//! checkpoint noted elsewhere (`--expect-checkpoint`); its OK line names the last signed
//! checkpoint and its time. Real `akm serve` processes write the journals.

use crate::audit_cli::{akm, ok, serve, signal, write_config};
use akm::audit::record::Record;
use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A SIEM standing in for rsyslog's file output: every datagram the UDP sink sends, one per
/// line, as received (RFC 5424 header and key=value body).
struct Siem {
    file: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Siem {
    fn start(dir: &Path) -> (Siem, u16) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let file = dir.join("siem.log");
        let stop = Arc::new(AtomicBool::new(false));
        let (path, stopped) = (file.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut out = std::fs::File::create(path).unwrap();
            let mut buf = [0u8; 65536];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    out.write_all(&buf[..n]).unwrap();
                    out.write_all(b"\n").unwrap();
                }
            }
        });
        (Siem { file, stop }, port)
    }

    /// Waits until the copy holds `n` final checkpoints.
    fn wait_for_finals(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .matches("reason=final")
            .count()
            < n
        {
            assert!(
                Instant::now() < deadline,
                "the SIEM copy lacks {n} final checkpoints"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Siem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts `akm serve`, creates keys `names`, stops it with SIGTERM (a `final` checkpoint).
fn run_server(config: &Path, names: &[&str]) {
    let (mut server, port) = serve(config);
    let server_arg = format!("localhost:{port}");
    for name in names {
        ok(akm(
            config,
            &["key", "create", "--name", name, "--server", &server_arg],
        ));
    }
    signal(&server, "-TERM");
    assert!(server.wait().unwrap().success());
}

fn journal_records(path: &Path) -> Vec<(String, Record)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| (l.to_owned(), Record::parse_line(l).unwrap()))
        .collect()
}

fn serial(r: &Record) -> u64 {
    r.serial().unwrap()
}

/// Runs `akm audit verify` with `args` and the public key; (exit code, stdout, stderr).
fn verify(config: &Path, public: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["audit", "verify", "--public-key", public.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = akm(config, &all);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_fails(result: (Option<i32>, String, String), wanted: &[&str]) {
    let (code, stdout, stderr) = result;
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    for w in wanted {
        assert!(stderr.contains(w), "wanted {w:?} in: {stderr}");
    }
}

fn assert_ok(result: (Option<i32>, String, String)) -> String {
    let (code, stdout, stderr) = result;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    stdout
}

#[test]
fn a_journal_cut_back_to_an_earlier_final_checkpoint_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (siem, siem_port) = Siem::start(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[[audit.sinks]]\ntransport = \"udp\"\naddress = \"127.0.0.1:{siem_port}\"\nframing = \"rfc5424\"\nformat = \"kv\"\n"
    ));
    std::fs::write(&config, text).unwrap();
    ok(akm(&config, &["init"]));
    let public = dir.path().join("audit.pub");
    ok(akm(
        &config,
        &["audit", "public-key", "--out", public.to_str().unwrap()],
    ));
    let p = |path: &Path| path.to_str().unwrap().to_owned();

    // Two runs of the server, each closed by a final checkpoint; the first one is old by the
    // time the journal is verified.
    run_server(&config, &["first"]);
    std::thread::sleep(Duration::from_millis(2500));
    run_server(&config, &["second", "third"]);
    siem.wait_for_finals(2);
    let journal = dir.path().join("data/audit/audit.log");
    let records = journal_records(&journal);
    let finals: Vec<&Record> = records
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.get("reason") == Some("final"))
        .collect();
    assert_eq!(finals.len(), 2);
    let (f1, f2) = (finals[0], finals[1]);
    let f2_hash = f2.get("hash").unwrap();

    // The attack: every record after the first final checkpoint removed.
    let cut = dir.path().join("cut.log");
    let kept: String = records
        .iter()
        .take_while(|(_, r)| serial(r) <= serial(f1))
        .map(|(l, _)| format!("{l}\n"))
        .collect();
    std::fs::write(&cut, kept).unwrap();
    let cut_arg = p(&cut);
    let missing = format!("truncated at serial {}", serial(f1) + 1);

    // On its own it verifies, but the OK line shows how old its end is.
    let stdout = assert_ok(verify(&config, &public, &[&cut_arg]));
    assert!(
        stdout.contains(&format!(
            "last signed checkpoint: serial {} at {} (final, ",
            serial(f1),
            f1.get("time").unwrap()
        )),
        "{stdout}"
    );
    // --max-age applies to a journal ending with a final checkpoint too.
    assert_fails(
        verify(&config, &public, &["--max-age", "2", &cut_arg]),
        &[&missing, "older than 2 s"],
    );
    let full = assert_ok(verify(
        &config,
        &public,
        &["--max-age", "600", &p(&journal)],
    ));
    assert!(
        full.contains(&format!("last signed checkpoint: serial {} ", serial(f2))),
        "{full}"
    );
    // Against the SIEM's RFC 5424 copy and a key=value copy: the records beyond are named.
    let kv_copy = dir.path().join("kv-copy.log");
    std::fs::copy(&journal, &kv_copy).unwrap();
    for copy in [&siem.file, &kv_copy] {
        assert_fails(
            verify(&config, &public, &["--against", &p(copy), &cut_arg]),
            &[
                &missing,
                &format!("up to {}", serial(f2)),
                &format!("including checkpoint {} signed at", serial(f2)),
            ],
        );
    }
    // A checkpoint copied from elsewhere: the cut journal does not reach it.
    let expected = format!("{}:{f2_hash}", serial(f2));
    assert_fails(
        verify(
            &config,
            &public,
            &["--expect-checkpoint", &expected, &cut_arg],
        ),
        &[&missing],
    );

    // The untouched journal still verifies against its SIEM copy and the checkpoint.
    let stdout = assert_ok(verify(
        &config,
        &public,
        &[
            "--against",
            &p(&siem.file),
            "--expect-checkpoint",
            &expected,
            &p(&journal),
        ],
    ));
    assert!(
        stdout.contains(&format!(
            "second copy: {} records compared",
            records.len() + 1
        )),
        "{stdout}"
    );
    // A different hash for a checkpoint the journal holds.
    let wrong = format!("{}:{}", serial(f1), "0".repeat(64));
    assert_fails(
        verify(
            &config,
            &public,
            &["--expect-checkpoint", &wrong, &p(&journal)],
        ),
        &[&format!("modified at serial {}", serial(f1))],
    );

    // The cut journal put back and the server started on it: it continues the chain from the
    // first final checkpoint with fresh signatures, so the journal alone verifies, but the
    // SIEM received the lost records under the same serials.
    std::fs::copy(&cut, &journal).unwrap();
    run_server(&config, &["after-cut"]);
    siem.wait_for_finals(3);
    assert_ok(verify(&config, &public, &[&p(&journal)]));
    assert_fails(
        verify(
            &config,
            &public,
            &["--against", &p(&siem.file), &p(&journal)],
        ),
        &[
            &format!("modified at serial {}", serial(f1) + 1),
            "differs from the second copy's",
        ],
    );
}
