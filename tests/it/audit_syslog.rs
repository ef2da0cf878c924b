//! Audit sinks against a real rsyslogd: records go out over UDP, TCP (octet counting), TLS
//! (RFC 5425, client certificate) and a local datagram socket (imuxsock, like /dev/log) in key=value, CEF and LEEF inside RFC 5424 and RFC 3164,
//! rsyslog writes them to files, and `akm audit verify` accepts what rsyslog wrote. A TCP sink
//! whose receiver restarts resumes so the receiver's copy has no gap.

use crate::audit::options;
use crate::support::kmip::*;
use crate::support::rsyslog::{rsyslogd, Rsyslog};
use crate::support::server::{AuditSetup, TestServer};
use akm::audit::format::{Format, Framing};
use akm::audit::sink::{SinkSettings, Transport};
use akm::audit::verify;
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion as V;
use std::process::Command;

fn sink(transport: Transport, framing: Framing, format: Format) -> SinkSettings {
    SinkSettings {
        transport,
        framing,
        format,
        app_name: "akm-audit".into(),
        facility: 10,
        hostname: "akm-test".into(),
        queue_records: 100_000,
        journal: None,
    }
}

fn tls_transport(r: &Rsyslog) -> Transport {
    Transport::Tls {
        address: format!("127.0.0.1:{}", r.tls),
        ca: r.client.ca.clone(),
        cert: r.client.cert.clone(),
        key: r.client.key.clone(),
        server_name: Some("localhost".into()),
    }
}

async fn some_requests(server: &TestServer, n: usize) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut c = server.client("alice", V::V1_4).await;
    for _ in 0..n {
        let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let u = create_key(&mut c, Some(&format!("syslog-key-{i}"))).await;
        c.call(op::GET, uid(&u)).await.unwrap();
    }
}

/// Verifies a receiver's file with the CLI, as an operator would.
fn cli_verify(file: &std::path::Path, dir: &std::path::Path) -> std::process::Output {
    let key = dir.join("audit.pub");
    std::fs::write(&key, crate::support::server::audit_public_key().to_string()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_akm"))
        .args([
            "--config",
            "/nonexistent-akm.toml",
            "audit",
            "verify",
            "--public-key",
        ])
        .arg(&key)
        .arg(file)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_copies_over_udp_tcp_and_tls_verify() {
    let Some(bin) = rsyslogd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(&bin, dir.path(), (0, 0, 0));
    let server = TestServer::start_audited(AuditSetup {
        checkpoint_every: Some(4),
        sinks: vec![
            sink(
                Transport::Udp(format!("127.0.0.1:{}", rsyslog.udp)),
                Framing::Rfc5424,
                Format::KeyValue,
            ),
            sink(
                Transport::Tcp(format!("127.0.0.1:{}", rsyslog.tcp)),
                Framing::Rfc3164,
                Format::Cef,
            ),
            sink(tls_transport(&rsyslog), Framing::Rfc5424, Format::Leef),
            sink(
                Transport::Unix(rsyslog.unix_socket()),
                Framing::Rfc3164,
                Format::KeyValue,
            ),
        ],
        ..AuditSetup::default()
    })
    .await;
    some_requests(&server, 5).await;
    let journal = server.journal_path();
    let _kept = server.stop().await;
    let journal_records = crate::audit::records(&journal).len() as u64;
    for (file, marker) in [
        ("udp.log", " v=1 serial="),
        ("tcp.log", "CEF:0|akm|akm|"),
        ("tls.log", "LEEF:2.0|akm|akm|"),
        ("unix.log", " akm-audit["),
    ] {
        rsyslog.wait_for(file, "reason=final");
        let path = dir.path().join(file);
        assert!(rsyslog.read(file).contains(marker), "{file}");
        let report = verify::verify_file(&path, &options()).unwrap();
        assert!(
            report.fault.is_none(),
            "{file}: {:?}\n{}",
            report.fault,
            rsyslog.read(file)
        );
        assert_eq!(report.records, journal_records, "{file}");
        let out = cli_verify(&path, dir.path());
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // rsyslog understood the syslog headers: host name and tag from RFC 3164 and RFC 5424.
    assert!(rsyslog.read("tcp.log").contains(" akm-audit["));
    let unix = rsyslog.read("unix.log");
    let pid = std::process::id();
    assert!(
        unix.contains(&format!(" akm-audit[{pid}]: v=1 serial=1 ")),
        "{unix}"
    );
    assert!(rsyslog.read("udp.log").contains(" akm-test akm-audit["));

    // A record removed from the SIEM's copy is caught there too.
    let udp = rsyslog.read("udp.log");
    let lines: Vec<&str> = udp.lines().filter(|l| l.contains(" v=1 serial=")).collect();
    let cut: String = udp
        .lines()
        .filter(|l| *l != lines[5])
        .map(|l| format!("{l}\n"))
        .collect();
    let tampered = dir.path().join("udp-tampered.log");
    std::fs::write(&tampered, cut).unwrap();
    let out = cli_verify(&tampered, dir.path());
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("deleted at serial 6"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_sink_resumes_after_the_receiver_restarts_leaving_no_gap() {
    let Some(bin) = rsyslogd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut rsyslog = Rsyslog::start(&bin, dir.path(), (0, 0, 0));
    let ports = (rsyslog.udp, rsyslog.tcp, rsyslog.tls);
    let server = TestServer::start_audited(AuditSetup {
        sinks: vec![
            sink(
                Transport::Tcp(format!("127.0.0.1:{}", rsyslog.tcp)),
                Framing::Rfc5424,
                Format::KeyValue,
            ),
            sink(tls_transport(&rsyslog), Framing::Rfc3164, Format::KeyValue),
        ],
        ..AuditSetup::default()
    })
    .await;
    some_requests(&server, 3).await;
    rsyslog.wait_for("tcp.log", "operation=Get");
    rsyslog.stop();
    // The receiver is down: requests still succeed (the journal is the source of truth).
    some_requests(&server, 4).await;
    let rsyslog = Rsyslog::start(&bin, dir.path(), ports);
    some_requests(&server, 2).await;
    let journal = server.journal_path();
    let _kept = server.stop().await;
    let journal_records = crate::audit::records(&journal).len() as u64;
    for file in ["tcp.log", "tls.log"] {
        rsyslog.wait_for(file, "reason=final");
        let report = verify::verify_file(&dir.path().join(file), &options()).unwrap();
        assert!(
            report.fault.is_none(),
            "{file}: {:?}\n{}",
            report.fault,
            rsyslog.read(file)
        );
        assert_eq!(report.records, journal_records, "{file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_dropped_from_a_full_sink_queue_are_read_back_from_the_journal() {
    let Some(bin) = rsyslogd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tcp = crate::support::rsyslog::free_port();
    let mut tiny = sink(
        Transport::Tcp(format!("127.0.0.1:{tcp}")),
        Framing::Rfc5424,
        Format::KeyValue,
    );
    tiny.queue_records = 3;
    let server = TestServer::start_audited(AuditSetup {
        checkpoint_every: Some(5),
        sinks: vec![tiny],
        ..AuditSetup::default()
    })
    .await;
    // The receiver is not there yet: far more records than the queue holds.
    some_requests(&server, 10).await;
    let rsyslog = Rsyslog::start(&bin, dir.path(), (0, tcp, 0));
    some_requests(&server, 2).await;
    let journal = server.journal_path();
    let _kept = server.stop().await;
    let journal_records = crate::audit::records(&journal).len() as u64;
    rsyslog.wait_for("tcp.log", "reason=final");
    let report = verify::verify_file(&dir.path().join("tcp.log"), &options()).unwrap();
    assert!(
        report.fault.is_none(),
        "{:?}\n{}",
        report.fault,
        rsyslog.read("tcp.log")
    );
    // From serial 1: nothing is missing at the head either.
    assert_eq!(report.first, Some(1));
    assert_eq!(report.records, journal_records);
}
