//! A private, real PostgreSQL server for tests: Debian's binaries (`initdb`, `postgres`) run into
//! a temporary directory as an unprivileged user (PostgreSQL refuses root, and tests run as root
//! in CI), listening on a free port on 127.0.0.1 only, with trust authentication for the `akm`
//! role, and TLS with a server certificate for 127.0.0.1 and `localhost` from a CA made at start
//! ([`PgServer::ca_file`]; plain connections are accepted too). One server per test process,
//! started on first use; each test gets a database of its
//! own ([`database`]). A watchdog shell holds the server: when the test process ends, however it
//! ends, its end of the watchdog's stdin closes and the watchdog stops the server and removes the
//! directory. Never the system's PostgreSQL.
//!
//! Without the binaries a test is skipped with a `SKIPPED` line, except under `CI=true`, where
//! it fails (.ci/setup installs the `postgresql` package). Shared by the store's unit tests
//! (included with `#[path]`) and the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The running server of this test process.
pub struct PgServer {
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// The temporary directory (data directory, socket, logs).
    pub dir: PathBuf,
    /// The PEM CA certificate the server's TLS certificate chains to.
    pub ca_file: PathBuf,
    /// The binaries.
    bin: PathBuf,
    /// The user it runs as (when the tests run as root).
    user: Option<String>,
    /// The watchdog shell; the server stops when its stdin closes.
    _watchdog: std::sync::Mutex<Child>,
}

/// A database of its own for one test on the shared server.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// A connection string for it (key=value form, no TLS).
    pub url: String,
}

/// The PostgreSQL binary directory: `$AKM_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`
/// holding `initdb` and `postgres`.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("AKM_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("postgres").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The server of this process, started on first use; `None` (after a SKIPPED line) when
/// PostgreSQL is not installed outside CI.
pub fn server() -> Option<&'static PgServer> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let Some(bin) = bin_dir() else {
                assert!(
                    !under_ci(),
                    "CI=true but the PostgreSQL binaries are missing (/usr/lib/postgresql/*/bin): \
                     .ci/setup installs Debian's postgresql"
                );
                eprintln!(
                    "SKIPPED: PostgreSQL not installed (apt-get install postgresql, or set \
                     AKM_PG_BIN to its bin directory)"
                );
                return None;
            };
            Some(start(&bin))
        })
        .as_ref()
}

/// A server of the caller's own, which it may stop and start (a database restart under
/// load); it stops when dropped. `None`: skipped, as [`server`].
pub fn own_server() -> Option<PgServer> {
    server()?;
    Some(start(&bin_dir()?))
}

/// A fresh, empty database on the server (`None`: skipped, see [`server`]).
pub fn database() -> Option<TestDb> {
    server()?.database()
}

impl PgServer {
    /// A fresh, empty database on this server.
    pub fn database(&self) -> Option<TestDb> {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let server = self;
        let name = format!("akm_test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut admin = postgres::Client::connect(&server.url("postgres"), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        Some(TestDb {
            url: server.url(&name),
            name,
        })
    }

    /// Stops the server (fast shutdown: sessions are cut off, the data is flushed), keeps it
    /// down for `down_for`, and starts it again on the same port and data.
    pub fn restart(&self, down_for: Duration) {
        let data = self.dir.join("data").display().to_string();
        self.pg_ctl(&["stop", "-m", "fast", "-w", "-D", &data]);
        std::thread::sleep(down_for);
        // A log of its own: the first one belongs to the watchdog's user.
        let log = self.dir.join("server-restarted.log").display().to_string();
        self.pg_ctl(&["start", "-w", "-D", &data, "-l", &log]);
        wait_ready(&self.bin, self.port, &self.dir);
    }

    /// Runs `pg_ctl args` as the server's user.
    fn pg_ctl(&self, args: &[&str]) {
        let mut cmd = match &self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(self.bin.join("pg_ctl"));
                c
            }
            None => Command::new(self.bin.join("pg_ctl")),
        };
        let out = cmd.args(args).output().expect("pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A connection string for database `db` as the `akm` role, without TLS.
    pub fn url(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=akm dbname={db} connect_timeout=10",
            self.port
        )
    }
}

/// The user the server runs as: when root, Debian's `postgres` (or `nobody`); else ourselves.
fn server_user() -> Option<String> {
    let me = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return None;
    }
    for user in ["postgres", "nobody"] {
        if Command::new("id")
            .arg("-u")
            .arg(user)
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(user.to_owned());
        }
    }
    panic!(
        "running as root, and neither the postgres nor the nobody user exists to run PostgreSQL as"
    );
}

/// The watchdog: initdb, start the server in the background, say so, then wait for stdin to
/// close and stop the server (fast shutdown) and remove the directory.
const WATCHDOG: &str = r#"
set -e
dir=$1 bin=$2 port=$3 user=$4
as() { if [ -n "$user" ]; then runuser -u "$user" -- "$@"; else "$@"; fi; }
as "$bin/initdb" -D "$dir/data" -U akm --auth=trust -E UTF8 --no-sync --no-instructions \
    >"$dir/initdb.log" 2>&1
# In the configuration file, so a restart (pg_ctl start) needs no options.
cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
max_connections = 300
ssl = on
ssl_cert_file = '$dir/tls/server.crt'
ssl_key_file = '$dir/tls/server.key'
EOF
as "$bin/postgres" -D "$dir/data" >"$dir/server.log" 2>&1 &
echo started
cat >/dev/null || true
kill -INT "$(head -1 "$dir/data/postmaster.pid")" 2>/dev/null || true
wait || true
rm -rf "$dir"
"#;

fn start(bin: &Path) -> PgServer {
    let dir = std::env::temp_dir().join(format!(
        "akm-pg-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    ));
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let ca_file = write_tls_files(&dir);
    let user = server_user();
    if let Some(user) = &user {
        // The server's user must own the directory it writes its socket and data into, and
        // its TLS key (PostgreSQL refuses a key file of someone else's).
        let status = Command::new("chown")
            .arg("-R")
            .arg(user)
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(status.success(), "chown {user} {}", dir.display());
    }
    let port = free_port();
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("akm-pg-watchdog")
        .arg(&dir)
        .arg(bin)
        .arg(port.to_string())
        .arg(user.unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the PostgreSQL watchdog shell");
    let mut said = String::new();
    use std::io::BufRead;
    let _ = std::io::BufReader::new(watchdog.stdout.take().expect("piped")).read_line(&mut said);
    assert_eq!(
        said.trim(),
        "started",
        "initdb failed: {}",
        std::fs::read_to_string(dir.join("initdb.log")).unwrap_or_default()
    );
    wait_ready(bin, port, &dir);
    PgServer {
        port,
        dir,
        ca_file,
        bin: bin.to_owned(),
        user: server_user(),
        _watchdog: std::sync::Mutex::new(watchdog),
    }
}

/// A CA and a server certificate for 127.0.0.1 and `localhost` under `dir/tls`; the CA's
/// file.
fn write_tls_files(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "akm test PostgreSQL CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("server key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    let tls = dir.join("tls");
    std::fs::create_dir(&tls).expect("tls dir");
    let ca_file = tls.join("ca.crt");
    std::fs::write(&ca_file, ca_cert.pem()).expect("ca.crt");
    std::fs::write(tls.join("server.crt"), cert.pem()).expect("server.crt");
    let key_file = tls.join("server.key");
    std::fs::write(&key_file, key.serialize_pem()).expect("server.key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
        .expect("server.key mode");
    ca_file
}

/// Waits until the server accepts connections (generously: a loaded CI machine is slow).
fn wait_ready(bin: &Path, port: u16, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "2"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the test PostgreSQL did not accept connections within 60 s:\n{}",
        std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
    );
}

/// A free local port (bound and released; the server binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}
