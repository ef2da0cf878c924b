//! `akm serve` as systemd runs it: the real binary with `$NOTIFY_SOCKET` bound by the test
//! (and a short `$WATCHDOG_USEC`). It says READY=1 only once the port takes TLS requests,
//! keeps sending WATCHDOG=1, brackets a SIGHUP with RELOADING=1 and READY=1, and says
//! STOPPING=1 on SIGTERM. A reload (SIGHUP or `akm reload`) applies a new CRL, new `[access]`
//! settings and records and a new log level without a restart or dropped connections, and a
//! broken file is refused with the key and the file named while the server carries on. The
//! READY=1 after each RELOADING=1 is how the tests know a SIGHUP's reload is over.

use crate::cli::{write_config, BIN};
use akm::client::Client;
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion as V;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long any one expected notification may take before the test gives up (a bound, so a
/// broken server fails the test rather than hanging it; nothing is asserted about timing).
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `akm serve` and the notification socket it reports to.
pub(crate) struct Service {
    child: Child,
    pub(crate) port: u16,
    config: PathBuf,
    socket: UnixDatagram,
    /// Every notification received, in order.
    seen: Vec<String>,
}

impl Service {
    /// Starts `akm serve --config config` with `$NOTIFY_SOCKET` (in `dir`) and, if given,
    /// `$WATCHDOG_USEC`.
    pub(crate) fn start(config: &Path, dir: &Path, watchdog_usec: Option<u64>) -> Service {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config"])
            .arg(config)
            .env("NOTIFY_SOCKET", &path)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(usec) = watchdog_usec {
            cmd.env("WATCHDOG_USEC", usec.to_string());
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(addr) = line.strip_prefix("akm serve: listening on ") {
                let addr = addr.split_whitespace().next().unwrap();
                break addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Service {
            child,
            port,
            config: config.to_owned(),
            socket,
            seen: Vec::new(),
        }
    }

    /// Receives notifications until one satisfies `want`, and returns it.
    pub(crate) fn wait_for(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut buf = vec![0u8; 4096];
        while Instant::now() < deadline {
            let Ok(len) = self.socket.recv(&mut buf) else {
                assert!(
                    self.child.try_wait().unwrap().is_none(),
                    "the server exited while waiting for {what}; seen {:?}",
                    self.seen
                );
                continue;
            };
            let msg = String::from_utf8_lossy(&buf[..len]).into_owned();
            self.seen.push(msg.clone());
            if want(&msg) {
                return msg;
            }
        }
        panic!("no {what} notification; seen {:?}", self.seen);
    }

    /// Takes in the notifications already sent (by an `akm reload` that has returned, say),
    /// so the next wait sees only later ones.
    fn drain(&mut self) {
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; 4096];
        while let Ok(len) = self.socket.recv(&mut buf) {
            self.seen
                .push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        self.socket.set_nonblocking(false).unwrap();
    }

    /// Sends a signal (`-HUP`, `-TERM`) to the server.
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGHUP, then the RELOADING=1 and READY=1 that bracket the reload; returns the READY=1
    /// notification (its STATUS says whether the reload was refused).
    pub(crate) fn sighup_reload(&mut self) -> String {
        self.drain();
        self.signal("-HUP");
        let reloading = self.wait_for("RELOADING=1", |m| has(m, "RELOADING=1"));
        assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
        self.wait_for("READY=1 after the reload", |m| has(m, "READY=1"))
    }

    /// The `akm` command line against this server as the client `stem` (`stem.crt`,
    /// `stem.key`), or as `[client]` (the administrator) when `stem` is `None`.
    pub(crate) fn akm(&self, stem: Option<&Path>, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.args(["--server", &format!("localhost:{}", self.port)]);
        if let Some(stem) = stem {
            cmd.arg("--cert")
                .arg(stem.with_extension("crt"))
                .arg("--key")
                .arg(stem.with_extension("key"));
        }
        cmd.output().unwrap()
    }

    /// SIGTERM, STOPPING=1, and a clean exit.
    pub(crate) fn stop(mut self) {
        self.signal("-TERM");
        self.wait_for("STOPPING=1", |m| has(m, "STOPPING=1"));
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a notification carries the assignment `line`.
pub(crate) fn has(msg: &str, line: &str) -> bool {
    msg.lines().any(|l| l == line)
}

pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Issues a client certificate from the development CA into `dir/issued`; returns its stem.
pub(crate) fn issue(config: &Path, dir: &Path, cn: &str, ou: &str) -> PathBuf {
    let out_dir = dir.join("issued");
    ok(&Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["cert", "issue", "--cn", cn, "--ou", ou, "--out"])
        .arg(&out_dir)
        .output()
        .unwrap());
    out_dir.join(cn)
}

/// A KMIP connection of the client `stem` that the test keeps open.
pub(crate) struct Conn {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) client: Client,
}

impl Conn {
    pub(crate) fn open(dir: &Path, port: u16, stem: &Path) -> Result<Conn, String> {
        let tls = akm::tls::client_config(
            &stem.with_extension("crt"),
            &stem.with_extension("key"),
            &dir.join("certs/ca.crt"),
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let servers = [format!("localhost:{port}")];
        let client = runtime
            .block_on(Client::connect_any(&servers, tls, V::V1_4))
            .map_err(|e| e.to_string())?;
        Ok(Conn { runtime, client })
    }

    /// Creates an AES key on this connection.
    fn create_key(&mut self) {
        self.runtime
            .block_on(crate::support::kmip::create_key(&mut self.client, None));
    }

    /// The identifiers a Locate without Maximum Items returns.
    pub(crate) fn locate(&mut self) -> Vec<String> {
        let reply = self
            .runtime
            .block_on(self.client.call(op::LOCATE, vec![]))
            .unwrap();
        crate::support::kmip::uids_of(&reply)
    }

    /// A Query on this connection: whether it was answered.
    pub(crate) fn query(&mut self) -> bool {
        self.runtime
            .block_on(self.client.call(op::QUERY, vec![]))
            .is_ok()
    }
}

/// Whether a fresh connection of `stem` gets a request answered (a revoked certificate is
/// refused at the handshake, or for TLS 1.3 at the first exchange).
fn admitted(dir: &Path, port: u16, stem: &Path) -> bool {
    Conn::open(dir, port, stem).is_ok_and(|mut c| c.query())
}

pub(crate) fn edit(config: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(config, f(text)).unwrap();
}

#[test]
fn ready_watchdog_reloading_and_stopping_reach_the_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    // A 400 ms watchdog: heartbeats every 200 ms.
    let mut service = Service::start(&config, dir.path(), Some(400_000));
    let ready = service.wait_for("READY=1", |m| has(m, "READY=1"));
    // Ready means serving: the first connection after it is answered, with no retry.
    let admin = dir.path().join("certs/admin");
    let mut conn = Conn::open(dir.path(), service.port, &admin).unwrap();
    assert!(conn.query(), "READY=1 came before the port answered");
    assert!(ready.contains("STATUS=serving KMIP on "), "{ready}");
    assert!(
        service.seen[..service.seen.len() - 1]
            .iter()
            .all(|m| !has(m, "WATCHDOG=1")),
        "a heartbeat before READY=1: {:?}",
        service.seen
    );
    for _ in 0..3 {
        service.wait_for("WATCHDOG=1", |m| m == "WATCHDOG=1");
    }
    let after = service.sighup_reload();
    assert!(after.contains("configuration reloaded"), "{after}");
    // Heartbeats carry on after the reload, and the open connection too.
    service.wait_for("WATCHDOG=1", |m| m == "WATCHDOG=1");
    assert!(conn.query());
    service.stop();
}

#[test]
fn without_watchdog_usec_there_are_no_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut service = Service::start(&config, dir.path(), None);
    service.wait_for("READY=1", |m| has(m, "READY=1"));
    service.sighup_reload();
    service.signal("-TERM");
    service.wait_for("STOPPING=1", |m| has(m, "STOPPING=1"));
    assert!(service.child.wait().unwrap().success());
    assert!(
        service.seen.iter().all(|m| !has(m, "WATCHDOG=1")),
        "{:?}",
        service.seen
    );
}

#[test]
fn sighup_with_a_new_crl_refuses_the_revoked_client_on_its_next_connection() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    edit(&config, |t| {
        t.replace("[tls]\n", "[tls]\ncrls = [\"../certs/ca.crl\"]\n")
    });
    let mut service = Service::start(&config, dir.path(), None);
    service.wait_for("READY=1", |m| has(m, "READY=1"));
    let eve = issue(&config, dir.path(), "eve", "users");
    let frank = issue(&config, dir.path(), "frank", "users");
    assert!(admitted(dir.path(), service.port, &eve));
    let mut frank_conn = Conn::open(dir.path(), service.port, &frank).unwrap();
    assert!(frank_conn.query());
    ok(&Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["cert", "revoke", "--cert"])
        .arg(eve.with_extension("crt"))
        .output()
        .unwrap());
    let ready = service.sighup_reload();
    assert!(ready.contains("configuration reloaded"), "{ready}");
    assert!(
        !admitted(dir.path(), service.port, &eve),
        "a revoked certificate got in after SIGHUP"
    );
    // Not restarted, nothing else dropped: frank's open connection carries on.
    assert!(frank_conn.query());
    assert!(admitted(dir.path(), service.port, &frank));
    service.stop();
}

#[test]
fn a_broken_config_is_refused_and_the_server_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    edit(&config, |t| {
        t.replace("[tls]\n", "[tls]\ncrls = [\"../certs/ca.crl\"]\n")
    });
    let good = std::fs::read_to_string(&config).unwrap();
    let mut service = Service::start(&config, dir.path(), None);
    service.wait_for("READY=1", |m| has(m, "READY=1"));
    let admin = dir.path().join("certs/admin");
    let mut conn = Conn::open(dir.path(), service.port, &admin).unwrap();

    // SIGHUP with malformed TOML and with an unknown key: refused, named, still serving.
    for (broken, named) in [
        (good.replace("[store]", "[store"), "akm.toml"),
        (good.replace("[tls]\n", "[tls]\ncrl = []\n"), "crl"),
    ] {
        std::fs::write(&config, broken).unwrap();
        let ready = service.sighup_reload();
        assert!(
            ready.contains("STATUS=serving; last reload refused"),
            "{ready}"
        );
        assert!(ready.contains(named), "{ready}");
        assert!(conn.query(), "the open connection was dropped");
        assert!(admitted(dir.path(), service.port, &admin));
    }

    // `akm reload` with a CRL that is not one: the server refuses, the command prints the
    // key and the file and fails; the previous CRL stays in force.
    std::fs::write(&config, &good).unwrap();
    let crl = dir.path().join("certs/ca.crl");
    let saved = std::fs::read(&crl).unwrap();
    std::fs::write(&crl, "not a CRL").unwrap();
    let out = service.akm(None, &["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tls.crls") && stderr.contains("ca.crl") && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(conn.query());
    assert!(admitted(dir.path(), service.port, &admin));

    // A server certificate that is not there: refused, named.
    std::fs::write(&crl, saved).unwrap();
    edit(&config, |t| {
        t.replace("../certs/server.crt", "../certs/gone.crt")
    });
    let out = service.akm(None, &["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`tls.cert`") && stderr.contains("gone.crt"),
        "{stderr}"
    );
    assert!(conn.query());

    // Fixed: `akm reload` and `akm tls reload` succeed.
    std::fs::write(&config, &good).unwrap();
    ok(&service.akm(None, &["reload"]));
    ok(&service.akm(None, &["tls", "reload"]));
    assert!(conn.query());
    service.stop();
}

#[test]
fn akm_reload_with_a_broken_local_file_fails_before_asking_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut service = Service::start(&config, dir.path(), None);
    service.wait_for("READY=1", |m| has(m, "READY=1"));
    edit(&config, |t| {
        t.replace("[server]\n", "[server]\nmax_connections = 0\n")
    });
    let out = service.akm(None, &["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("server.max_connections") && stderr.contains("akm.toml"),
        "{stderr}"
    );
    service.stop();
}

#[test]
fn access_records_and_the_admin_group_change_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    edit(&config, |t| {
        t + "[access]\nadmin_group = \"admins\"\n[access.users.zed]\noperations = [\"get\"]\n"
    });
    let mut service = Service::start(&config, dir.path(), None);
    service.wait_for("READY=1", |m| has(m, "READY=1"));
    let olga = issue(&config, dir.path(), "olga", "ops");
    // Not an administrator yet.
    assert_eq!(
        service
            .akm(Some(&olga), &["user", "list", "--json"])
            .status
            .code(),
        Some(2)
    );
    // Nor may olga reload.
    let refused = service.akm(Some(&olga), &["reload"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr)
        .contains("permission denied: olga may not reload config"));
    // A record added at run time, which no reload removes.
    ok(&service.akm(None, &["user", "set", "runtime-added", "--ops", "locate"]));

    edit(&config, |t| {
        t.replace("admin_group = \"admins\"", "admin_group = \"ops\"")
            .replace("[access.users.zed]", "[access.users.yan]")
    });
    let ready = service.sighup_reload();
    assert!(ready.contains("configuration reloaded"), "{ready}");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&service.akm(Some(&olga), &["user", "list", "--json"]))).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    // yan is new; zed, dropped from the file, and the run-time record stay.
    for name in ["yan", "zed", "runtime-added"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    // The old administrators group no longer administers.
    assert_eq!(
        service.akm(None, &["user", "list", "--json"]).status.code(),
        Some(2)
    );
    service.stop();
}

#[test]
fn the_log_level_changes_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let log = dir.path().join("akm.log");
    edit(&config, |t| {
        t + "[log]\nlevel = \"info\"\nfile = \"../akm.log\"\n"
    });
    let mut service = Service::start(&config, dir.path(), None);
    service.wait_for("READY=1", |m| has(m, "READY=1"));
    let admin = dir.path().join("certs/admin");
    assert!(admitted(dir.path(), service.port, &admin));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("client connected"), "debug at info: {text}");

    edit(&config, |t| {
        t.replace("level = \"info\"", "level = \"debug\"")
    });
    service.sighup_reload();
    assert!(admitted(dir.path(), service.port, &admin));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("client connected"),
        "no debug after the reload: {text}"
    );

    // And back: what was logged stays, nothing new at debug.
    edit(&config, |t| {
        t.replace("level = \"debug\"", "level = \"basic\"")
    });
    service.sighup_reload();
    let before = std::fs::read_to_string(&log)
        .unwrap()
        .matches("client connected")
        .count();
    assert!(admitted(dir.path(), service.port, &admin));
    let after = std::fs::read_to_string(&log)
        .unwrap()
        .matches("client connected")
        .count();
    assert_eq!(before, after);

    // The log file moves: at debug again, the next connection is logged in the new file only.
    let moved = dir.path().join("akm-moved.log");
    edit(&config, |t| {
        t.replace("level = \"basic\"", "level = \"debug\"")
            .replace("../akm.log", "../akm-moved.log")
    });
    let ready = service.sighup_reload();
    assert!(ready.contains("configuration reloaded"), "{ready}");
    assert!(!ready.contains("restart needed"), "{ready}");
    assert!(admitted(dir.path(), service.port, &admin));
    let text = std::fs::read_to_string(&moved).unwrap();
    assert!(text.contains("client connected"), "{text}");
    let old = std::fs::read_to_string(&log).unwrap();
    assert_eq!(old.matches("client connected").count(), after);

    // A file that cannot be opened is refused, named, and the log stays where it was.
    edit(&config, |t| {
        t.replace("../akm-moved.log", "../no/such/dir/akm.log")
    });
    let ready = service.sighup_reload();
    assert!(
        ready.contains("last reload refused") && ready.contains("`log.file`: cannot open"),
        "{ready}"
    );
    assert!(admitted(dir.path(), service.port, &admin));
    let text = std::fs::read_to_string(&moved).unwrap();
    assert_eq!(text.matches("client connected").count(), 2, "{text}");
    service.stop();
}

#[test]
fn keys_that_need_a_restart_are_reported_by_every_reload_until_then() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut service = Service::start(&config, dir.path(), None);
    service.wait_for("READY=1", |m| has(m, "READY=1"));
    let reload = |service: &Service| -> serde_json::Value {
        serde_json::from_str(&ok(&service.akm(None, &["reload", "--json"]))).unwrap()
    };
    assert_eq!(reload(&service)["restart_needed"], serde_json::json!([]));
    edit(&config, |t| {
        t.replace(
            "[server]\n",
            "[server]\nmax_connections = 7\nidle_timeout_secs = 9\n",
        )
    });
    // Named in dotted-key order.
    let keys = serde_json::json!(["server.idle_timeout_secs", "server.max_connections"]);
    assert_eq!(reload(&service)["restart_needed"], keys);
    // Still not in force, so still reported; and in the service status after SIGHUP.
    assert_eq!(reload(&service)["restart_needed"], keys);
    let ready = service.sighup_reload();
    assert!(
        ready.contains("restart needed for server.idle_timeout_secs, server.max_connections"),
        "{ready}"
    );
    let text = ok(&service.akm(None, &["reload"]));
    assert!(
        text.contains("waiting for a restart: server.idle_timeout_secs, server.max_connections"),
        "{text}"
    );
    service.stop();
}

#[test]
fn a_failed_start_says_why_in_the_status_and_never_ready() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    // The port is taken, so the server cannot bind it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    edit(&config, |t| {
        t.replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
    });
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_nonblocking(true).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    while let Ok(len) = socket.recv(&mut buf) {
        seen.push(String::from_utf8_lossy(&buf[..len]).into_owned());
    }
    assert!(seen.iter().all(|m| !has(m, "READY=1")), "{seen:?}");
    let last = seen.last().expect("no notification at all");
    assert!(
        last.starts_with("STATUS=failed: cannot listen on 127.0.0.1:"),
        "{seen:?}"
    );
}

/// `server.max_locate_items` changes on reload, on open connections too: a Locate over five
/// keys returns the old cap, then the new one, and the reload names the key as applied. A
/// key read only at start (`server.max_depth`) is named as waiting for a restart by `akm
/// reload` and in the READY=1 status; a client that is not an administrator may not reload.
#[test]
fn a_reload_applies_max_locate_items_and_names_restart_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    edit(&config, |t| {
        t.replace("[server]\n", "[server]\nmax_locate_items = 3\n")
    });
    let mut service = Service::start(&config, dir.path(), None);
    service.wait_for("READY=1", |m| has(m, "READY=1"));
    let admin = dir.path().join("certs/admin");
    let mut conn = Conn::open(dir.path(), service.port, &admin).unwrap();
    for _ in 0..5 {
        conn.create_key();
    }
    assert_eq!(conn.locate().len(), 3);

    // Raised by SIGHUP: the open connection's next Locate returns four.
    edit(&config, |t| {
        t.replace("max_locate_items = 3", "max_locate_items = 4")
    });
    let ready = service.sighup_reload();
    assert!(ready.contains("applied server.max_locate_items"), "{ready}");
    assert!(!ready.contains("restart needed"), "{ready}");
    assert_eq!(conn.locate().len(), 4);

    // A non-administrator's `akm reload` is refused and changes nothing.
    edit(&config, |t| {
        t.replace(
            "max_locate_items = 4",
            "max_locate_items = 2\nmax_depth = 32",
        )
    });
    let eve = issue(&config, dir.path(), "eve", "users");
    let refused = service.akm(Some(&eve), &["reload"]);
    assert!(!refused.status.success());
    assert_eq!(conn.locate().len(), 4);

    // Lowered by `akm reload`, with a key that needs a restart: that one is named.
    service.drain();
    let out = ok(&service.akm(None, &["reload", "--json"]));
    let reply: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        reply["restart_needed"],
        serde_json::json!(["server.max_depth"]),
        "{out}"
    );
    let ready = service.wait_for("READY=1 after akm reload", |m| has(m, "READY=1"));
    assert!(
        ready.contains("applied server.max_locate_items")
            && ready.contains("restart needed for server.max_depth"),
        "{ready}"
    );
    assert_eq!(conn.locate().len(), 2);
    let mut fresh = Conn::open(dir.path(), service.port, &admin).unwrap();
    assert_eq!(fresh.locate().len(), 2);
    service.stop();
}
