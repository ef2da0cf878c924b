//! A real rsyslogd for the audit sink tests, started as a child process with its own
//! generated config (imuxsock on its own socket, imudp, imtcp, imtcp over gtls with
//! certificates from a test CA, each input writing to its own file), its own pid file and work directory, in the foreground.
//! Never the system's rsyslog. Absent rsyslogd skips the test with a message, except under
//! CI=true, where it is a failure (.ci/run installs it).

use akm::pki::{Ca, Validity};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The rsyslogd binary, or `None` (after saying why) when the test should be skipped.
pub fn rsyslogd() -> Option<PathBuf> {
    for p in ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("rsyslogd not found but CI=true: .ci/run must install rsyslog and rsyslog-gnutls");
    }
    eprintln!("SKIPPED: rsyslogd not found (apt-get install rsyslog rsyslog-gnutls)");
    None
}

/// A free local port (bound and released; rsyslog binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Client certificate files for the TLS sink, signed by the same CA as rsyslog's.
pub struct TlsFiles {
    /// CA certificate (PEM).
    pub ca: PathBuf,
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Client key (PEM, 0600).
    pub key: PathBuf,
}

/// A running rsyslogd.
pub struct Rsyslog {
    child: Child,
    /// Its directory (config, pid, work dir, output files).
    pub dir: PathBuf,
    /// UDP input port.
    pub udp: u16,
    /// Plain TCP input port.
    pub tcp: u16,
    /// TLS input port.
    pub tls: u16,
    /// Files for a TLS client.
    pub client: TlsFiles,
}

impl Rsyslog {
    /// The local datagram socket rsyslog listens on (like /dev/log).
    pub fn unix_socket(&self) -> PathBuf {
        self.dir.join("log.sock")
    }
}

impl Rsyslog {
    /// Starts rsyslogd in `dir` with inputs on the given ports (0: pick free ones).
    pub fn start(bin: &Path, dir: &Path, ports: (u16, u16, u16)) -> Rsyslog {
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let pick = |p: u16| if p == 0 { free_port() } else { p };
        let (udp, tcp, tls) = (pick(ports.0), pick(ports.1), pick(ports.2));
        let client = write_certs(dir);
        let conf = format!(
            r#"global(workDirectory="{dir}/work"
       defaultNetstreamDriverCAFile="{dir}/ca.pem"
       defaultNetstreamDriverCertFile="{dir}/server.pem"
       defaultNetstreamDriverKeyFile="{dir}/server.key"
       maxMessageSize="64k")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp" maxSessions="20")
input(type="imuxsock" Socket="{dir}/log.sock" CreatePath="on" ruleset="unix")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="tcp")
input(type="imtcp" address="127.0.0.1" port="{tls}" ruleset="tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
ruleset(name="unix") {{ action(type="omfile" file="{dir}/unix.log" template="RSYSLOG_FileFormat") }}
ruleset(name="udp") {{ action(type="omfile" file="{dir}/udp.log" template="RSYSLOG_FileFormat") }}
ruleset(name="tcp") {{ action(type="omfile" file="{dir}/tcp.log" template="RSYSLOG_FileFormat") }}
ruleset(name="tls") {{ action(type="omfile" file="{dir}/tls.log" template="RSYSLOG_FileFormat") }}
"#,
            dir = dir.display()
        );
        let conf_path = dir.join("rsyslog.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("rsyslogd.stderr")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let r = Rsyslog {
            child,
            dir: dir.to_owned(),
            udp,
            tcp,
            tls,
            client,
        };
        r.wait_ready();
        r
    }

    /// Waits until both TCP inputs accept and a probe datagram reaches the UDP file.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.dir.join("log.sock").exists() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not create log.sock: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for port in [self.tcp, self.tls] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "rsyslogd did not open port {port}: {}",
                    self.stderr()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        while !self.read("udp.log").contains("akm-probe") {
            assert!(
                Instant::now() < deadline,
                "rsyslogd UDP input not ready: {}",
                self.stderr()
            );
            probe
                .send_to(b"<14>1 - - akm-probe - - - ready", ("127.0.0.1", self.udp))
                .unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("rsyslogd.stderr")).unwrap_or_default()
    }

    /// An output file's contents ("" if not written yet).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// Waits until output file `name` holds `needle` (bounded; panics with the file if not).
    pub fn wait_for(&self, name: &str, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.read(name).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{name} never got {needle:?}; it holds:\n{}\nrsyslogd stderr:\n{}",
                self.read(name),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops rsyslogd (SIGTERM, then wait).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Writes a CA, rsyslog's server certificate and a client certificate for akm's TLS sink.
fn write_certs(dir: &Path) -> TlsFiles {
    let ca_pem = dir.join("ca.pem");
    if ca_pem.exists() {
        // Restarted in the same directory: keep the same PKI.
        return TlsFiles {
            ca: ca_pem,
            cert: dir.join("client.pem"),
            key: dir.join("client.key"),
        };
    }
    let ca = Ca::generate("rsyslog test CA").unwrap();
    let server = ca
        .issue_server(&["localhost".into(), "127.0.0.1".into()])
        .unwrap();
    let client = ca
        .issue_client("akm-audit", &[], Validity::days_from_now(1))
        .unwrap();
    std::fs::write(&ca_pem, ca.cert_pem()).unwrap();
    std::fs::write(dir.join("server.pem"), &server.cert_pem).unwrap();
    akm::secret_file::write_new(&dir.join("server.key"), server.key_pem.as_bytes()).unwrap();
    std::fs::write(dir.join("client.pem"), &client.cert_pem).unwrap();
    akm::secret_file::write_new(&dir.join("client.key"), client.key_pem.as_bytes()).unwrap();
    TlsFiles {
        ca: ca_pem,
        cert: dir.join("client.pem"),
        key: dir.join("client.key"),
    }
}
