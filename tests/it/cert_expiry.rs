//! Certificate expiry warnings through a real `akm serve`: a server certificate and a client
//! certificate (signed from a CSR with `akm cert sign --days 3`) that expire within
//! `tls.expiry_warning_days` show on the status page and in `/metrics`, and earn a log line
//! and an audit record at start. A client certificate expiring soon is named on the page only
//! to an administrator.

use crate::cli::{write_config, BIN};
use crate::support::status::raw;
use rustls_pki_types::pem::PemObject;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Replaces the development server certificate with one of the same CA valid `days` days.
fn short_lived_server_certificate(certs: &Path, days: i64) {
    let ca_der = rustls_pki_types::CertificateDer::from_pem_file(certs.join("ca.crt")).unwrap();
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(certs.join("ca.key")).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_der(&ca_der, ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = |t: i64| {
        x509_parser::time::ASN1Time::from_timestamp(t)
            .unwrap()
            .to_datetime()
    };
    params.not_before = at(now - 3600);
    params.not_after = at(now + days * 86_400);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::remove_file(certs.join("server.crt")).unwrap();
    std::fs::remove_file(certs.join("server.key")).unwrap();
    std::fs::write(certs.join("server.crt"), cert.pem()).unwrap();
    akm::secret_file::write_new(&certs.join("server.key"), key.serialize_pem().as_bytes()).unwrap();
}

/// Starts `akm serve`; returns it and its status listener's address. Its stderr goes to
/// `log`.
fn serve_with_status(config: &Path, log: &Path) -> (std::process::Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(rest) =
            line.strip_prefix("akm serve: status page, /health and /metrics on https://")
        {
            break rest.trim_end_matches('/').parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

fn get(addr: SocketAddr, tls: Arc<rustls::ClientConfig>, path: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let reply = rt.block_on(raw(addr, tls, request.as_bytes())).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

fn anonymous(certs: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_file(certs.join("ca.crt")).unwrap())
        .unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(akm::crypto::backend::tls_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn wait_for(path: &Path, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never got {needle:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn soon_expiring_certificates_warn_on_the_page_in_metrics_the_log_and_the_audit_journal() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}[status]\nlisten = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    let certs = dir.path().join("certs");
    // A first start makes the development PKI; then the certificates that expire soon.
    let init = Command::new(BIN)
        .args(["init", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    short_lived_server_certificate(&certs, 5);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dave");
    let csr = dir.path().join("dave.csr");
    std::fs::write(&csr, params.serialize_request(&key).unwrap().pem().unwrap()).unwrap();
    let signed = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["cert", "sign", "--days", "3", "--csr"])
        .arg(&csr)
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    // One that is far from expiry is watched but not warned about.
    let issued = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["cert", "issue", "--cn", "erin", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(issued.status.success());

    let log = dir.path().join("server.log");
    let (mut server, status) = serve_with_status(&config, &log);

    wait_for(&log, "client certificate CN=dave");
    let log_text = wait_for(&log, "server certificate CN=localhost");
    assert!(
        log_text.contains("in 4 days") || log_text.contains("in 5 days"),
        "{log_text}"
    );
    assert!(!log_text.contains("CN=erin"), "{log_text}");
    let journal = wait_for(
        &dir.path().join("data/audit/audit.log"),
        "event=certificate",
    );
    let records: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains("event=certificate"))
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records.iter().any(|r| r.contains(" user=dave ")),
        "{records:?}"
    );

    // Client certificates are labelled by serial (no user names in /metrics).
    let listed = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["cert", "list", "--json"])
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let serial_of = |user: &str| -> String {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["user"] == user)
            .and_then(|c| c["serial"].as_str())
            .unwrap()
            .to_owned()
    };
    let metrics = get(status, anonymous(&certs), "/metrics");
    assert!(!metrics.contains("dave"), "{metrics}");
    let gauge = |kind: &str, cn: &str| -> f64 {
        let serial = if kind == "client" {
            serial_of(cn)
        } else {
            String::new()
        };
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("akm_certificate_expiry_seconds{")
                    && l.contains(&format!("kind=\"{kind}\""))
                    && l.contains(&format!("serial=\"{serial}"))
            })
            .unwrap_or_else(|| panic!("no gauge for {cn}:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let day = 86_400.0;
    let server_left = gauge("server", "localhost");
    assert!(
        server_left > 4.0 * day && server_left <= 5.0 * day,
        "{server_left}"
    );
    let dave_left = gauge("client", "dave");
    assert!(
        dave_left > 2.0 * day && dave_left <= 3.0 * day,
        "{dave_left}"
    );
    assert!(gauge("client", "erin") > 300.0 * day);
    assert!(
        metrics.contains("\nakm_certificates_expiring 2\n"),
        "{metrics}"
    );

    // The page: the server's certificate for all; dave named only to an administrator.
    let page = get(status, anonymous(&certs), "/");
    assert!(page.contains("<h2>Certificates</h2>"), "{page}");
    assert!(page.contains("server CN=localhost"), "{page}");
    assert!(!page.contains("CN=dave"), "{page}");
    assert!(
        page.contains("1 client certificate(s) expire soon"),
        "{page}"
    );
    let admin = akm::tls::client_config(
        &certs.join("admin.crt"),
        &certs.join("admin.key"),
        &certs.join("ca.crt"),
    )
    .unwrap();
    let page = get(status, admin, "/");
    assert!(page.contains("client CN=dave"), "{page}");
    assert!(page.contains("renew soon"), "{page}");

    server.kill().unwrap();
    server.wait().unwrap();
}
