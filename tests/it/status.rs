//! The HTTPS status listener against a real server: `/health`, `/metrics` checked by an
//! independent parser (PyPI `prometheus_client` in a venv under `target/`) with counters that
//! move after KMIP requests, refusals of bad HTTP, client certificates when exposed, and the
//! status page rendered by headless Chromium (screenshot and DOM).
//!
//! Without python3/venv/pip the metrics test fails; `AKM_SKIP_PROMETHEUS=1` skips it.
//! Without Chromium (`/usr/bin/chromium`, or `$AKM_CHROMIUM`) the browser test is skipped
//! with a message, except under `CI=true`, where it fails.

use crate::support::kmip::create_key;
use crate::support::server::TestServer;
use crate::support::status::{self as st, anonymous_tls, get, raw};
use crate::support::venv::{python_succeeds, python_with};
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion as V;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The pinned independent parser.
const PROMETHEUS_CLIENT: &str = "0.21.1";

/// Parses exposition text with `prometheus_client.parser.text_string_to_metric_families`
/// and prints, per family, its type and samples (name, labels, value as text).
const PARSE_PY: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type,
                   "samples": [[s.name, s.labels, repr(float(s.value))] for s in f.samples]}
print(json.dumps(out))
"#;

/// The venv's interpreter, made (with prometheus_client pinned) when missing.
fn prometheus_python() -> Result<PathBuf, String> {
    let check = format!(
        "import sys, importlib.metadata as m; sys.exit(m.version('prometheus_client') != {PROMETHEUS_CLIENT:?})"
    );
    python_with(
        "prometheus-venv",
        &format!("prometheus_client=={PROMETHEUS_CLIENT}"),
        |python| python_succeeds(python, &check),
    )
}

/// A parsed family: its type and (sample name, labels, value).
#[derive(Debug)]
struct Family {
    kind: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

/// `text` parsed by prometheus_client; panics with the parser's complaint if it refuses it.
fn parse_metrics(python: &Path, text: &str) -> BTreeMap<String, Family> {
    use std::io::Write;
    let mut child = Command::new(python)
        .args(["-c", PARSE_PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused /metrics: {}\n--- text ---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Json = serde_json::from_slice(&out.stdout).unwrap();
    json.as_object()
        .unwrap()
        .iter()
        .map(|(name, f)| {
            let samples = f["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let labels = s[1]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect();
                    let value = s[2].as_str().unwrap().parse::<f64>().unwrap();
                    (s[0].as_str().unwrap().to_owned(), labels, value)
                })
                .collect();
            let kind = f["type"].as_str().unwrap().to_owned();
            (name.clone(), Family { kind, samples })
        })
        .collect()
}

/// The value of the sample `name` whose labels include `labels`.
fn value(families: &BTreeMap<String, Family>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families
        .values()
        .flat_map(|f| &f.samples)
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_ok_when_serving() {
    let server = TestServer::start().await;
    let status = st::start(&server, false, &[]).await;
    let r = get(&server, &status, "/health").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body.trim(), r#"{"status":"ok"}"#);
    assert!(
        r.head.contains("Content-Type: application/json"),
        "{}",
        r.head
    );
    assert!(r.head.contains("Connection: close"), "{}", r.head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_counters_move() {
    if std::env::var_os("AKM_SKIP_PROMETHEUS").is_some() {
        eprintln!("skipped: AKM_SKIP_PROMETHEUS is set");
        return;
    }
    let python = prometheus_python().unwrap_or_else(|e| {
        panic!("{e}\nInstall python3 with venv and pip (Debian: apt-get install python3-venv python3-pip), or set AKM_SKIP_PROMETHEUS=1")
    });
    let server = TestServer::start().await;
    let status = st::start(&server, false, &[]).await;
    let mut c = server.client("alice", V::V1_4).await;
    create_key(&mut c, Some("metrics-key")).await;

    let r = get(&server, &status, "/metrics").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.head.contains("text/plain; version=0.0.4"), "{}", r.head);
    let before = parse_metrics(&python, &r.body);
    for (family, kind) in [
        ("akm_requests", "counter"),
        ("akm_request_duration_seconds", "histogram"),
        ("akm_connections_open", "gauge"),
        ("akm_connections", "counter"),
        ("akm_tls_handshake_failures", "counter"),
        ("akm_messages_refused", "counter"),
        ("akm_objects", "gauge"),
        ("akm_kek_sealed", "gauge"),
        ("akm_up", "gauge"),
        ("akm_audit_journal_writable", "gauge"),
        ("akm_audit_journal_serial", "gauge"),
        ("akm_audit_last_checkpoint_serial", "gauge"),
        ("akm_process_start_time_seconds", "gauge"),
        ("akm_build_info", "gauge"),
    ] {
        let f = before
            .get(family)
            .unwrap_or_else(|| panic!("no family {family} in:\n{}", r.body));
        assert_eq!(f.kind, kind, "{family}");
    }
    let created = |f: &BTreeMap<String, Family>| {
        value(
            f,
            "akm_requests_total",
            &[("operation", "Create"), ("outcome", "success")],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(created(&before), 1.0);
    assert_eq!(
        value(
            &before,
            "akm_objects",
            &[("type", "SymmetricKey"), ("state", "PreActive")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&before, "akm_connections_open", &[]), Some(1.0));
    assert_eq!(value(&before, "akm_kek_sealed", &[]), Some(0.0));
    assert_eq!(value(&before, "akm_up", &[]), Some(1.0));
    let count = value(
        &before,
        "akm_request_duration_seconds_count",
        &[("operation", "Create")],
    );
    assert_eq!(count, Some(1.0));
    let inf = value(
        &before,
        "akm_request_duration_seconds_bucket",
        &[("operation", "Create"), ("le", "+Inf")],
    );
    assert_eq!(inf, Some(1.0));

    // Another Create, a failing Get, and a refused handshake move their counters.
    create_key(&mut c, None).await;
    let missing = c
        .call(op::GET, crate::support::kmip::uid("no-such-key"))
        .await;
    assert!(missing.is_err());
    let refused = raw(status_kmip_addr(&server), anonymous_tls(&server), b"").await;
    assert!(
        refused.is_err(),
        "a KMIP handshake without a client certificate must fail"
    );
    // The server counts the refused handshake just after sending its alert: wait for it.
    let mut after = parse_metrics(&python, &get(&server, &status, "/metrics").await.body);
    for _ in 0..100 {
        if value(&after, "akm_tls_handshake_failures_total", &[]).unwrap_or(0.0) >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = parse_metrics(&python, &get(&server, &status, "/metrics").await.body);
    }
    assert_eq!(created(&after), 2.0);
    assert_eq!(
        value(
            &after,
            "akm_requests_total",
            &[("operation", "Get"), ("outcome", "failure")]
        ),
        Some(1.0)
    );
    assert!(value(&after, "akm_tls_handshake_failures_total", &[]).unwrap() >= 1.0);
    assert!(
        value(&after, "akm_audit_journal_serial", &[]).unwrap()
            > value(&before, "akm_audit_journal_serial", &[]).unwrap()
    );
    assert_eq!(
        value(
            &after,
            "akm_objects",
            &[("type", "SymmetricKey"), ("state", "PreActive")]
        ),
        Some(2.0)
    );
}

/// The KMIP listener's address (for a handshake that must fail).
fn status_kmip_addr(server: &TestServer) -> std::net::SocketAddr {
    server.addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_and_the_listener_stays_up() {
    let server = TestServer::start().await;
    let status = st::start(&server, false, &[]).await;
    let tls = || anonymous_tls(&server);
    let cases: [(&[u8], u16); 7] = [
        (b"POST /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"DELETE / HTTP/1.1\r\n\r\n", 405),
        (b"GET / HTTP/9.9\r\n\r\n", 400),
        (b"\x16\x03\x01garbage\r\n\r\n", 400),
        (b"GET relative HTTP/1.1\r\n\r\n", 400),
        (b"GET /nope HTTP/1.1\r\n\r\n", 404),
        (b"GET /health HTTP/1.1\r\nX: \xff\xfe\r\n\r\n", 200),
    ];
    for (request, expected) in cases {
        let r = raw(status.addr, tls(), request).await.unwrap();
        assert_eq!(
            r.status,
            expected,
            "{:?} -> {r:?}",
            String::from_utf8_lossy(request)
        );
    }
    let r = raw(status.addr, tls(), b"POST / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert!(r.head.contains("Allow: GET, HEAD"), "{}", r.head);
    // A head larger than the limit: 431, without reading it all into memory.
    let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let r = raw(status.addr, tls(), &big).await;
    if let Ok(r) = r {
        assert_eq!(r.status, 431, "{r:?}");
    }
    // HEAD: headers, no body.
    let r = raw(status.addr, tls(), b"HEAD /metrics HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "{r:?}");
    assert!(r.head.contains("Content-Length: "), "{}", r.head);
    // Plain TCP garbage (no TLS) and a client that closes at once.
    for junk in [&b"GET / HTTP/1.1\r\n\r\n"[..], b"", b"\x00\x01\x02"] {
        use tokio::io::AsyncWriteExt;
        let mut tcp = tokio::net::TcpStream::connect(status.addr).await.unwrap();
        let _ = tcp.write_all(junk).await;
        drop(tcp);
    }
    // A client that sends half a head and goes quiet is cut off at the header timeout.
    let r = raw(status.addr, tls(), b"GET / HTTP/1.1\r\n")
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("in time"), "{r:?}");
    let r = get(&server, &status, "/health").await;
    assert_eq!(r.status, 200, "the listener must still answer: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exposed_listener_requires_a_client_certificate_in_an_allowed_group() {
    let server = TestServer::start().await;
    let status = st::start(&server, true, &["admins", "monitoring"]).await;
    let request = b"GET /health HTTP/1.1\r\n\r\n";
    let anonymous = raw(status.addr, anonymous_tls(&server), request).await;
    assert!(
        anonymous.is_err(),
        "no client certificate must fail the handshake: {anonymous:?}"
    );
    let outsider = raw(status.addr, server.client_tls("bob", &["users"]), request)
        .await
        .unwrap();
    assert_eq!(outsider.status, 403, "{outsider:?}");
    let monitor = raw(
        status.addr,
        server.client_tls("prometheus", &["monitoring"]),
        request,
    )
    .await
    .unwrap();
    assert_eq!(monitor.status, 200, "{monitor:?}");
    // A certificate from another CA is refused at the handshake.
    let other = TestServer::start().await;
    let stranger = raw(status.addr, other.client_tls("eve", &["admins"]), request).await;
    assert!(stranger.is_err(), "{stranger:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lists_counts_and_audit_events_escaped() {
    let server = TestServer::start().await;
    let status = st::start(&server, false, &[]).await;
    let mut c = server.client("alice", V::V1_4).await;
    create_key(&mut c, Some("<script>alert(1)</script>")).await;
    let r = get_as_admin(&server, &status, "/").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.head.contains("text/html"), "{}", r.head);
    let page = r.body;
    assert!(
        page.contains("id=\"state\" class=\"badge ok\">serving<"),
        "{page}"
    );
    assert!(page.contains("PreActive<b>1</b>"), "{page}");
    assert!(page.contains("<td>Create</td>"), "{page}");
    assert!(page.contains("<td>alice</td>"), "{page}");
    assert!(!page.contains("<script>"), "client text must be escaped");
}

// ---- headless Chromium ----

/// The browser: `$AKM_CHROMIUM` or /usr/bin/chromium. `None`: skip (outside CI).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("AKM_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    let msg = format!(
        "{} not found: install Chromium (Debian: apt-get install chromium) or set AKM_CHROMIUM",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("skipped: {msg}");
    None
}

/// Runs headless Chromium on `url` with `extra` arguments; its stdout. Killed if it has not
/// finished after a generous while, so a wedged browser fails the test instead of hanging it.
fn run_chromium(browser: &Path, profile: &Path, url: &str, extra: &[&str]) -> String {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--ignore-certificate-errors",
        "--window-size=1200,900",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().expect("cannot start chromium");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.expect("chromium failed"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("chromium did not finish");
        }
    };
    assert!(
        out.status.success(),
        "chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_status_page_renders_in_headless_chromium() {
    let Some(browser) = chromium() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (server, status) = runtime.block_on(async {
        let server = TestServer::start().await;
        let status = st::start(&server, false, &[]).await;
        let mut c = server.client("alice", V::V1_4).await;
        for name in ["payments-kek", "backup-key", "tokenization"] {
            let u = create_key(&mut c, Some(name)).await;
            if name == "payments-kek" {
                c.call(op::ACTIVATE, crate::support::kmip::uid(&u))
                    .await
                    .unwrap();
            }
        }
        let _ = c
            .call(op::GET, crate::support::kmip::uid("no-such-key"))
            .await;
        (server, status)
    });
    let url = format!("https://127.0.0.1:{}/", status.addr.port());
    let work = tempfile::tempdir().unwrap();
    let shot = work.path().join("status.png");
    run_chromium(
        &browser,
        &work.path().join("profile-shot"),
        &url,
        &[&format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(&shot).expect("no screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "screenshot suspiciously small: {} bytes",
        png.len()
    );
    if let Some(dest) = std::env::var_os("AKM_STATUS_SCREENSHOT") {
        std::fs::copy(&shot, dest).unwrap();
    }
    let dom = run_chromium(
        &browser,
        &work.path().join("profile-dom"),
        &url,
        &["--dump-dom"],
    );
    assert!(dom.contains("akm key server"), "{dom}");
    assert!(dom.contains("serving"), "{dom}");
    assert!(dom.contains("id=\"key-counts\""), "{dom}");
    assert!(dom.contains("total<b>3</b>"), "{dom}");
    assert!(dom.contains("Active<b>1</b>"), "{dom}");
    assert!(dom.contains("PreActive<b>2</b>"), "{dom}");
    assert!(dom.contains("id=\"audit-events\""), "{dom}");
    assert!(dom.contains("<td>Activate</td>"), "{dom}");
    assert!(dom.contains("ItemNotFound"), "{dom}");
    drop(status);
    runtime.block_on(server.stop());
}

// ---- the daemon ----

/// Starts `akm serve` on `config`; the child and the status listener's address it printed.
fn serve_with_status(config: &Path) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(crate::cli::BIN)
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server exited before the status listener started")
            .unwrap();
        if let Some(rest) =
            line.strip_prefix("akm serve: status page, /health and /metrics on https://")
        {
            break rest.trim_end_matches('/').parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

/// A client TLS configuration trusting the development CA in `certs`, presenting
/// `identity` (`admin`, `user`) if given.
fn dev_tls(certs: &Path, identity: Option<&str>) -> std::sync::Arc<rustls::ClientConfig> {
    use akm::tls;
    let mut roots = rustls::RootCertStore::empty();
    for c in tls::load_certs(&certs.join("ca.crt")).unwrap() {
        roots.add(c).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(akm::crypto::backend::tls_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    std::sync::Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some(who) => builder
            .with_client_auth_cert(
                tls::load_certs(&certs.join(format!("{who}.crt"))).unwrap(),
                tls::load_key(&certs.join(format!("{who}.key"))).unwrap(),
            )
            .unwrap(),
    })
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

#[test]
fn akm_serve_starts_the_status_listener_from_the_config() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::write_config(dir.path());
    let base = std::fs::read_to_string(&config).unwrap();
    let certs = dir.path().join("certs");
    let health = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

    std::fs::write(
        &config,
        format!("{base}[status]\nlisten = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    let (child, addr) = serve_with_status(&config);
    let r = runtime
        .block_on(raw(addr, dev_tls(&certs, None), health))
        .unwrap();
    assert_eq!(
        (r.status, r.body.trim()),
        (200, r#"{"status":"ok"}"#),
        "{r:?}"
    );
    stop(child);

    // Client certificates required: the admin group (access.admin_group) gets in, users not.
    let required =
        format!("{base}[status]\nlisten = \"127.0.0.1:0\"\nrequire_client_cert = true\n");
    std::fs::write(&config, required).unwrap();
    let (child, addr) = serve_with_status(&config);
    runtime.block_on(async {
        assert!(raw(addr, dev_tls(&certs, None), health).await.is_err());
        let user = raw(addr, dev_tls(&certs, Some("user")), health)
            .await
            .unwrap();
        assert_eq!(user.status, 403, "{user:?}");
        let admin = raw(addr, dev_tls(&certs, Some("admin")), health)
            .await
            .unwrap();
        assert_eq!(admin.status, 200, "{admin:?}");
    });
    stop(child);

    // Exposed without client certificates: refused at start, naming the key.
    let exposed = format!("{base}[status]\nlisten = \"0.0.0.0:0\"\nrequire_client_cert = false\n");
    std::fs::write(&config, exposed).unwrap();
    let out = Command::new(crate::cli::BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("status.require_client_cert"), "{err}");
}

#[test]
fn a_revoked_certificate_is_refused_after_sighup() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::write_config(dir.path());
    let base = std::fs::read_to_string(&config).unwrap().replacen(
        "client_ca = \"../certs/ca.crt\"\n",
        "client_ca = \"../certs/ca.crt\"\ncrls = [\"../certs/ca.crl\"]\n",
        1,
    );
    let text = format!(
        "{base}[status]\nlisten = \"127.0.0.1:0\"\nrequire_client_cert = true\nallowed_groups = [\"users\"]\n"
    );
    std::fs::write(&config, text).unwrap();
    let certs = dir.path().join("certs");
    let health = b"GET /health HTTP/1.1\r\n\r\n";
    let (child, addr) = serve_with_status(&config);
    let before = runtime
        .block_on(raw(addr, dev_tls(&certs, Some("user")), health))
        .unwrap();
    assert_eq!(before.status, 200, "{before:?}");

    let revoked = Command::new(crate::cli::BIN)
        .arg("--config")
        .arg(&config)
        .args(["cert", "revoke", "--cert"])
        .arg(certs.join("user.crt"))
        .output()
        .unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    // The reload runs in the server's own time: wait for it to take effect.
    let refused = runtime.block_on(async {
        for _ in 0..200 {
            if raw(addr, dev_tls(&certs, Some("user")), health)
                .await
                .is_err()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    assert!(
        refused,
        "the revoked certificate is still accepted after SIGHUP"
    );
    stop(child);
}

// ---- mirror peers ----

/// The status listener address node `i` of `cluster` printed to its log.
fn status_addr_of(cluster: &crate::support::cluster::Cluster, i: usize) -> std::net::SocketAddr {
    let prefix = "akm serve: status page, /health and /metrics on https://";
    let mut found = None;
    crate::support::cluster::eventually(Duration::from_secs(30), || {
        found = cluster.nodes[i].log().lines().find_map(|l| {
            l.strip_prefix(prefix)
                .map(|a| a.trim_end_matches('/').to_owned())
        });
        found.is_some()
    });
    found
        .expect("node did not print its status address")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_peers_and_their_lag_show_in_metrics_and_on_the_page() {
    use crate::support::cluster::{Cluster, Options};
    let mut opts = Options::nodes(2);
    // A [status] table after [mirror]'s keys (its peers follow as [[mirror.peers]]).
    opts.mirror_extra = "\n[status]\nlisten = \"127.0.0.1:0\"\n".into();
    let mut cluster = Cluster::start(opts);
    let addr = status_addr_of(&cluster, 0);
    let admin = cluster.admin_tls();
    let get = |path: &'static str| {
        let request = format!("GET {path} HTTP/1.1\r\n\r\n");
        let tls = admin.clone();
        async move { raw(addr, tls, request.as_bytes()).await.unwrap() }
    };
    let mut c = cluster.client(0).await;
    crate::support::cluster::create_key(&mut c, "mirrored").await;
    let up = "akm_mirror_peer_connected{peer=\"n1\",direction=\"outbound\"} 1\n";
    let caught_up = "akm_mirror_peer_lag_entries{peer=\"n1\"} 0\n";
    let agree = "akm_mirror_peer_settings_match{peer=\"n1\"} 1\n";
    let mut metrics = String::new();
    for _ in 0..300 {
        metrics = get("/metrics").await.body;
        if metrics.contains(up) && metrics.contains(caught_up) && metrics.contains(agree) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metrics.contains(up) && metrics.contains(caught_up) && metrics.contains(agree),
        "{metrics}"
    );
    assert!(
        metrics.contains("akm_mirror_status_age_seconds "),
        "{metrics}"
    );
    let page = get("/").await.body;
    assert!(page.contains("<td>n1</td>"), "{page}");

    // Node 1 gone: the link goes down and new changes wait for it.
    cluster.kill(1);
    crate::support::cluster::create_key(&mut c, "waiting").await;
    let down = "akm_mirror_peer_connected{peer=\"n1\",direction=\"outbound\"} 0\n";
    for _ in 0..300 {
        metrics = get("/metrics").await.body;
        if metrics.contains(down) && !metrics.contains(caught_up) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metrics.contains(down), "{metrics}");
    assert!(
        !metrics.contains(caught_up),
        "the change node 1 missed must show as lag: {metrics}"
    );

    // Node 1 back with other security settings: the gauge says they differ.
    let path = cluster.nodes[1].config();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n[crypto]\npci_mode = true\n")).unwrap();
    cluster.start_node(1);
    let differ = "akm_mirror_peer_settings_match{peer=\"n1\"} 0\n";
    for _ in 0..300 {
        metrics = get("/metrics").await.body;
        if metrics.contains(differ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metrics.contains(differ), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_cannot_hold_the_only_slot() {
    let server = TestServer::start().await;
    let status = st::start_limited(&server, false, &[], 1).await;
    // A client that connects and says nothing is evicted by the next one.
    let _idle = tokio::net::TcpStream::connect(status.addr).await.unwrap();
    let r = raw(
        status.addr,
        anonymous_tls(&server),
        b"GET /health HTTP/1.1\r\n\r\n",
    )
    .await
    .expect("an idle connection must not keep /health out");
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_with_forty_idle_connections_open() {
    let server = TestServer::start().await;
    // The default number of slots.
    let status = st::start_limited(&server, false, &[], 16).await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(tokio::net::TcpStream::connect(status.addr).await.unwrap());
    }
    // And some that finished the handshake but never send a request.
    for _ in 0..8 {
        let tcp = tokio::net::TcpStream::connect(status.addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        if let Ok(tls) = tokio_rustls::TlsConnector::from(anonymous_tls(&server))
            .connect(name, tcp)
            .await
        {
            idle.push(tls.into_inner().0);
        }
    }
    let started = std::time::Instant::now();
    let r = get(&server, &status, "/health").await;
    assert_eq!(r.status, 200, "{r:?}");
    // Well under the 2 s header timeout that would otherwise free the slots.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
}

/// `GET path` presenting a certificate of the administrators' group.
async fn get_as_admin(server: &TestServer, status: &st::StatusListener, path: &str) -> st::Reply {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let tls = server.client_tls("root", &[st::ADMIN_GROUP]);
    raw(status.addr, tls, request.as_bytes()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_objects_show_only_to_an_administrator_certificate() {
    let server = TestServer::start().await;
    let status = st::start(&server, false, &[]).await;
    let mut c = server.client("alice-payroll", V::V1_4).await;
    let uid = create_key(&mut c, Some("payroll-master-key")).await;
    c.call(op::ACTIVATE, crate::support::kmip::uid(&uid))
        .await
        .unwrap();
    let secrets = [
        uid.as_str(),
        "payroll-master-key",
        "alice-payroll",
        "127.0.0.1",
    ];
    // Plain loopback, and a certificate outside the administrators' group: aggregates only.
    let plain = get(&server, &status, "/").await;
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let user = raw(status.addr, server.client_tls("bob", &["users"]), request)
        .await
        .unwrap();
    for r in [&plain, &user] {
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.contains("Active<b>1</b>"), "counts still show");
        assert!(
            r.body.contains("<td>Activate</td>"),
            "operations still show"
        );
        for secret in secrets {
            assert!(!r.body.contains(secret), "{secret:?} shown: {}", r.body);
        }
    }
    let admin = get_as_admin(&server, &status, "/").await;
    assert_eq!(admin.status, 200, "{admin:?}");
    for secret in secrets {
        assert!(
            admin.body.contains(secret),
            "{secret:?} missing for the administrator"
        );
    }
}

// ---- audit sinks ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_is_down_shows_a_backlog_that_drains_when_it_returns() {
    use crate::support::server::AuditSetup;
    use akm::audit::format::{Format, Framing};
    use akm::audit::sink::{SinkSettings, Transport};
    // A port with nothing listening on it yet: the receiver is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let sink = SinkSettings {
        transport: Transport::Tcp(port.to_string()),
        framing: Framing::Rfc5424,
        format: Format::KeyValue,
        app_name: "akm-audit".into(),
        facility: 10,
        hostname: "akm-test".into(),
        queue_records: 1000,
        journal: None,
    };
    let server = TestServer::start_audited(AuditSetup {
        sinks: vec![sink],
        ..AuditSetup::default()
    })
    .await;
    let status = st::start(&server, false, &[]).await;
    let mut c = server.client("alice", V::V1_4).await;
    create_key(&mut c, Some("while-the-sink-is-down")).await;
    let series = format!("akm_audit_sink_backlog_records{{sink=\"tcp://{port}\"}} ");
    let backlog = |text: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.parse().ok())
    };
    let metrics = get(&server, &status, "/metrics").await.body;
    let pending = backlog(&metrics).unwrap_or_else(|| panic!("no sink backlog in {metrics}"));
    assert!(
        pending >= 2,
        "start, checkpoint and the Create wait: {metrics}"
    );
    let page = get(&server, &status, "/").await.body;
    assert!(page.contains(&format!("<td>tcp://{port}</td>")), "{page}");

    // The receiver comes up: the sink reconnects and the backlog drains to 0.
    let receiver = tokio::net::TcpListener::bind(port).await.unwrap();
    let drain = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut conn, _) = receiver.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        while conn.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    });
    let mut drained = false;
    for _ in 0..300 {
        let metrics = get(&server, &status, "/metrics").await.body;
        if backlog(&metrics) == Some(0) {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        drained,
        "the backlog did not drain once the receiver was up"
    );
    drop(status);
    server.stop().await;
    drain.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_counts_are_cached_between_scrapes() {
    use akm::status::snapshot::Source;
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    create_key(&mut c, None).await;
    let total = |source: std::sync::Arc<Source>| async move {
        tokio::task::spawn_blocking(move || {
            let counts = source.snapshot().objects.unwrap();
            counts.iter().map(|c| c.count).sum::<u64>()
        })
        .await
        .unwrap()
    };
    let cached = std::sync::Arc::new(Source::new(
        server.ctx.clone(),
        None,
        Duration::from_secs(3600),
    ));
    let fresh = std::sync::Arc::new(Source::new(server.ctx.clone(), None, Duration::ZERO));
    assert_eq!(total(cached.clone()).await, 1);
    create_key(&mut c, None).await;
    // Within the cache period the store is not asked again; without a cache it is.
    assert_eq!(total(cached).await, 1);
    assert_eq!(total(fresh).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_material_reaches_the_page_or_the_metrics() {
    let server = TestServer::start().await;
    let status = st::start(&server, false, &[]).await;
    let mut c = server.client("alice", V::V1_4).await;
    let u = create_key(&mut c, Some("secret-holder")).await;
    let got = c
        .call(op::GET, crate::support::kmip::uid(&u))
        .await
        .unwrap();
    let key = crate::support::kmip::key_bytes(&got);
    assert_eq!(key.len(), 32);
    let forms = [
        hex::encode(&key),
        hex::encode_upper(&key),
        String::from_utf8_lossy(&key).into_owned(),
    ];
    for path in ["/", "/metrics", "/health"] {
        let body = get(&server, &status, path).await.body;
        for form in &forms {
            assert!(!body.contains(form.as_str()), "{path} shows key material");
        }
    }
}
