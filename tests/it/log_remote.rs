//! The server's own log lines to remote syslog (`[[log.remote]]`) from a real `akm serve`
//! to a real rsyslogd: UDP at info, TCP (RFC 3164) at warn, TLS (RFC 5425) at debug. Each
//! receiver gets the lines at or above its level and no others, and no key material reaches
//! any of them, even at debug.

use crate::cli::{akm, json, serve, write_config};
use crate::support::rsyslog::{rsyslogd, Rsyslog};

#[test]
fn log_lines_reach_remote_syslog_at_each_receivers_level_without_key_material() {
    let Some(bin) = rsyslogd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(&bin, &dir.path().join("rsyslog"), (0, 0, 0));
    let config = write_config(dir.path());
    let c = &rsyslog.client;
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[store]",
        // Every certificate is within the warning threshold: a WARN line at start.
        "expiry_warning_days = 3650\n[store]",
    );
    let remote = format!(
        "[log]\nlevel = \"info\"\n\
         [[log.remote]]\ntransport = \"udp\"\naddress = \"127.0.0.1:{udp}\"\nlevel = \"info\"\n\
         [[log.remote]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:{tcp}\"\nframing = \"rfc3164\"\n\
         [[log.remote]]\ntransport = \"tls\"\naddress = \"127.0.0.1:{tls}\"\nlevel = \"debug\"\n\
         tls_ca = \"{ca}\"\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"\ntls_server_name = \"localhost\"\n",
        udp = rsyslog.udp,
        tcp = rsyslog.tcp,
        tls = rsyslog.tls,
        ca = c.ca.display(),
        cert = c.cert.display(),
        key = c.key.display(),
    );
    std::fs::write(&config, format!("{text}{remote}")).unwrap();
    let (mut server, port) = serve(&config);

    // Info and above over UDP, with the RFC 5424 APP-NAME.
    rsyslog.wait_for("udp.log", "serving");
    rsyslog.wait_for("udp.log", "server certificate CN=localhost");
    assert!(
        rsyslog.read("udp.log").contains(" akm["),
        "{}",
        rsyslog.read("udp.log")
    );
    // Warnings only over TCP.
    rsyslog.wait_for("tcp.log", "server certificate CN=localhost");
    let tcp = rsyslog.read("tcp.log");
    assert!(!tcp.contains("INFO"), "{tcp}");
    assert!(tcp.contains("WARN"), "{tcp}");

    // Key material in a response never reaches the log, even at debug.
    let uid = json(&akm(&config, port, &["key", "create", "--json"]))["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let material = json(&akm(
        &config,
        port,
        &["key", "get", &uid, "--material", "--json"],
    ))["material_hex"]
        .as_str()
        .unwrap()
        .to_owned();
    // Both connections' debug lines (create, then get) have arrived.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rsyslog.read("tls.log").matches("client connected").count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            rsyslog.read("tls.log")
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for file in ["udp.log", "tcp.log", "tls.log"] {
        let got = rsyslog.read(file).to_lowercase();
        assert!(!got.contains(&material), "key material in {file}");
    }
    assert!(
        rsyslog.read("tls.log").contains("DEBUG"),
        "{}",
        rsyslog.read("tls.log")
    );

    server.kill().unwrap();
    server.wait().unwrap();
}
