//! Starts the real akm server in-process on 127.0.0.1:0 over real TLS, with a CA, server and
//! client certificates generated at test time and a real SQLite file in a temp directory, and
//! makes KMIP clients for any identity.

use akm::app::CtxBuilder;
use akm::audit::signer::{PublicKey, Signer};
use akm::audit::sink::{Sink, SinkSettings};
use akm::audit::{Audit, JournalSettings};
use akm::client::Client;
use akm::crypto::Kek;
use akm::kmip::ProtocolVersion;
use akm::ops::Ctx;
use akm::pki::{Ca, Issued, Validity};
use akm::server::{self, tls, ConnLimits, Settings};
use akm::store::Store;
use akm::ttlv::Limits;
use rustls::RootCertStore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The seed of the audit signing key test servers use.
const AUDIT_SEED: [u8; 32] = [0x5A; 32];

/// The public key that verifies test servers' audit checkpoints.
pub fn audit_public_key() -> PublicKey {
    Signer::from_seed(&AUDIT_SEED).public_key()
}

/// How a test server keeps its audit journal.
#[derive(Default)]
pub struct AuditSetup {
    /// The journal file (default `<dir>/audit/audit.log`).
    pub journal: Option<PathBuf>,
    /// A checkpoint every this many records (default 1000).
    pub checkpoint_every: Option<u64>,
    /// Syslog sinks.
    pub sinks: Vec<SinkSettings>,
    /// When records reach the disk (default: every record before its response).
    pub sync: akm::audit::journal::SyncPolicy,
}

/// What a test server runs with besides its TLS and limits.
#[derive(Default)]
struct Options {
    reload: Option<akm::ops::Reloader>,
    access: akm::policy::Settings,
    interop: bool,
    audit: AuditSetup,
    /// The directory of an earlier server's database, for a restart; a new one if None.
    dir: Option<tempfile::TempDir>,
    /// Key-handling policy (`[crypto]`).
    crypto: akm::ops::CryptoPolicy,
    /// `server.max_locate_items`, if not the default.
    max_locate_items: Option<usize>,
    /// `server.max_attribute_bytes` and `server.max_object_attribute_bytes`, if not the
    /// defaults.
    attribute_limits: Option<akm::config::limits::AttributeLimits>,
    /// Dual control and separation of duties (`[dual_control]`), if not the default (off).
    dual: Option<akm::ops::dual::DualControl>,
    /// Backups into `backups/` of the server's directory (`[backup] dir`), if set.
    backups: bool,
}

/// A running test server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub ca: Ca,
    pub dir: tempfile::TempDir,
    pub ctx: Arc<Ctx>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Default limits for tests: short timeouts so slow-peer tests finish quickly.
pub fn test_settings() -> Settings {
    Settings {
        limits: ConnLimits {
            handshake_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(3),
            frame_timeout: Duration::from_secs(3),
            ttlv: Limits::default(),
            max_batch_items: 1024,
            max_attributes: 1024,
        },
        max_connections: 64,
        max_connections_per_identity: 64,
        // The production defaults: the connection-budget tests rely on them.
        max_handshaking: 256,
        max_handshaking_per_source: 64,
        max_in_flight: 256,
        shutdown_grace: Duration::from_secs(5),
    }
}

/// A server TLS config with a certificate for localhost from `ca`, trusting clients of `ca`.
pub fn server_tls(ca: &Ca) -> Arc<rustls::ServerConfig> {
    let server_cert = ca
        .issue_server(&["localhost".into(), "127.0.0.1".into()])
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    tls::server_config_from(
        vec![server_cert.cert_der().unwrap()],
        server_cert.key_der().unwrap(),
        roots,
        vec![],
    )
    .unwrap()
}

impl TestServer {
    /// Starts a server with the default test settings.
    pub async fn start() -> TestServer {
        TestServer::start_with(test_settings()).await
    }

    /// Starts a server with `settings`.
    pub async fn start_with(settings: Settings) -> TestServer {
        let ca = Ca::generate("akm test CA").unwrap();
        let tls = server_tls(&ca);
        TestServer::start_with_tls(ca, tls, settings).await
    }

    /// Starts a server with a TLS configuration the test built from `ca`.
    pub async fn start_with_tls(
        ca: Ca,
        tls: Arc<rustls::ServerConfig>,
        settings: Settings,
    ) -> TestServer {
        TestServer::start_full(ca, tls, settings, akm::policy::Settings::default()).await
    }

    /// Starts a server with the default test settings that offers the Interop operation
    /// (`server.interop_operations`), as the OASIS test cases need.
    pub async fn start_interop() -> TestServer {
        let ca = Ca::generate("akm test CA").unwrap();
        let tls = server_tls(&ca);
        let handle = Arc::new(tls::TlsHandle::new(tls));
        let options = Options {
            interop: true,
            ..Options::default()
        };
        TestServer::start_inner(ca, handle, test_settings(), options).await
    }

    /// Starts a server with default settings and the given audit setup.
    pub async fn start_audited(audit: AuditSetup) -> TestServer {
        let ca = Ca::generate("akm test CA").unwrap();
        let handle = Arc::new(tls::TlsHandle::new(server_tls(&ca)));
        let options = Options {
            audit,
            ..Options::default()
        };
        TestServer::start_inner(ca, handle, test_settings(), options).await
    }

    /// Starts a server with the default test TLS and these access settings. The idle timeout
    /// is long: the access tests hold one connection per identity while they work through a
    /// table with the others, which on a loaded machine can outlast the usual 3 s.
    pub async fn start_with_access(access: akm::policy::Settings) -> TestServer {
        let ca = Ca::generate("akm test CA").unwrap();
        let tls = server_tls(&ca);
        let mut settings = test_settings();
        settings.limits.idle_timeout = Duration::from_secs(60);
        TestServer::start_full(ca, tls, settings, access).await
    }

    /// Starts a server like [`TestServer::start_with_access`] (but with an idle timeout of
    /// ten minutes) that also has dual control and separation of duties set as `dual`
    /// (`[dual_control]`).
    pub async fn start_with_access_and_dual(
        access: akm::policy::Settings,
        dual: akm::ops::dual::DualControl,
    ) -> TestServer {
        let ca = Ca::generate("akm test CA").unwrap();
        let handle = Arc::new(tls::TlsHandle::new(server_tls(&ca)));
        let mut settings = test_settings();
        settings.limits.idle_timeout = Duration::from_secs(600);
        let options = Options {
            access,
            dual: Some(dual),
            ..Options::default()
        };
        TestServer::start_inner(ca, handle, settings, options).await
    }

    /// Starts a server like [`TestServer::start_with_access_and_dual`] that also takes
    /// backups into `backups/` of its directory (`[backup] dir`).
    pub async fn start_with_dual_and_backups(dual: akm::ops::dual::DualControl) -> TestServer {
        let ca = Ca::generate("akm test CA").unwrap();
        let handle = Arc::new(tls::TlsHandle::new(server_tls(&ca)));
        let mut settings = test_settings();
        settings.limits.idle_timeout = Duration::from_secs(600);
        let options = Options {
            dual: Some(dual),
            backups: true,
            ..Options::default()
        };
        TestServer::start_inner(ca, handle, settings, options).await
    }

    /// Starts a server with the default test TLS and settings and key-handling `policy`
    /// (`[crypto]` in the config).
    pub async fn start_with_policy(policy: akm::ops::CryptoPolicy) -> TestServer {
        let ca = Ca::generate("akm test CA").unwrap();
        let handle = Arc::new(tls::TlsHandle::new(server_tls(&ca)));
        let options = Options {
            crypto: policy,
            ..Options::default()
        };
        TestServer::start_inner(ca, handle, test_settings(), options).await
    }

    /// Starts a server with everything given.
    pub async fn start_full(
        ca: Ca,
        tls: Arc<rustls::ServerConfig>,
        settings: Settings,
        access: akm::policy::Settings,
    ) -> TestServer {
        let handle = Arc::new(tls::TlsHandle::new(tls));
        TestServer::start_reloadable(ca, handle, None, settings, access).await
    }

    /// Starts a server whose TLS configuration is `handle`, reloadable with `reload` (the
    /// Reload TLS administration operation).
    pub async fn start_reloadable(
        ca: Ca,
        handle: Arc<tls::TlsHandle>,
        reload: Option<akm::ops::Reloader>,
        settings: Settings,
        access: akm::policy::Settings,
    ) -> TestServer {
        let options = Options {
            reload,
            access,
            ..Options::default()
        };
        TestServer::start_inner(ca, handle, settings, options).await
    }

    async fn start_inner(
        ca: Ca,
        handle: Arc<tls::TlsHandle>,
        settings: Settings,
        options: Options,
    ) -> TestServer {
        let dir = options.dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let store = Store::open(&dir.path().join("akm.db")).unwrap();
        let kek = Kek::from_bytes(&[0x4B; 32]).unwrap();
        let audit = options.audit;
        let journal = JournalSettings {
            path: audit
                .journal
                .unwrap_or_else(|| dir.path().join("audit").join("audit.log")),
            server_name: "akm-test".into(),
            checkpoint_every: audit.checkpoint_every.unwrap_or(1000),
            checkpoint_secs: 60,
            sync: audit.sync,
        };
        let sinks = audit
            .sinks
            .into_iter()
            .map(|mut s| {
                s.journal.get_or_insert_with(|| journal.path.clone());
                Sink::start(s).unwrap()
            })
            .collect();
        let audit = Audit::open(journal, Signer::from_seed(&AUDIT_SEED), sinks).unwrap();
        let mut ctx = CtxBuilder::new(store, kek, audit).build();
        ctx.access = options.access.into();
        ctx.reload = options.reload;
        ctx.interop = options.interop;
        // The client CA the listener trusts, as `tls.client_ca` names it to a real server.
        ctx.client_ca_subjects = akm::identity::subject_of(ca.cert_der().as_ref())
            .into_iter()
            .collect::<Vec<_>>()
            .into();
        ctx.crypto = options.crypto;
        if let Some(n) = options.max_locate_items {
            ctx.max_locate_items = n.into();
        }
        if let Some(limits) = options.attribute_limits {
            ctx.attribute_limits = limits;
        }
        if let Some(dual) = options.dual {
            ctx.dual = dual;
        }
        if options.backups {
            ctx.backup = Some(Arc::new(akm::backup::Runner {
                dir: dir.path().join("backups"),
                sftp: None,
            }));
        }
        let ctx = Arc::new(ctx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve_reloadable(
            listener,
            handle,
            ctx.clone(),
            settings,
            async {
                let _ = stopped.await;
            },
        ));
        TestServer {
            addr,
            ca,
            dir,
            ctx,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts a server (new CA, default settings) whose Locate returns at most `limit`
    /// identifiers (`server.max_locate_items`).
    pub async fn start_with_locate_limit(limit: usize) -> TestServer {
        let ca = Ca::generate("akm test CA").unwrap();
        let handle = Arc::new(tls::TlsHandle::new(server_tls(&ca)));
        let options = Options {
            max_locate_items: Some(limit),
            ..Options::default()
        };
        TestServer::start_inner(ca, handle, test_settings(), options).await
    }

    /// Starts a server (new CA, default settings) with these limits on stored attribute bytes.
    pub async fn start_with_attribute_limits(
        limits: akm::config::limits::AttributeLimits,
    ) -> TestServer {
        let ca = Ca::generate("akm test CA").unwrap();
        let handle = Arc::new(tls::TlsHandle::new(server_tls(&ca)));
        let options = Options {
            attribute_limits: Some(limits),
            ..Options::default()
        };
        TestServer::start_inner(ca, handle, test_settings(), options).await
    }

    /// Starts a server on `dir`, which holds the database of a stopped server, with the same
    /// CA and default settings: a restart, for tests of what survives one.
    pub async fn start_with_dir(ca: Ca, dir: tempfile::TempDir) -> TestServer {
        let handle = Arc::new(tls::TlsHandle::new(server_tls(&ca)));
        let options = Options {
            dir: Some(dir),
            ..Options::default()
        };
        TestServer::start_inner(ca, handle, test_settings(), options).await
    }

    /// Starts a server (new CA, default settings) whose database lives in `dir` and whose
    /// journal is set up by `audit`: for tests that put the two on different filesystems.
    pub async fn start_in(dir: tempfile::TempDir, audit: AuditSetup) -> TestServer {
        let ca = Ca::generate("akm test CA").unwrap();
        let handle = Arc::new(tls::TlsHandle::new(server_tls(&ca)));
        let options = Options {
            dir: Some(dir),
            audit,
            ..Options::default()
        };
        TestServer::start_inner(ca, handle, test_settings(), options).await
    }

    /// The audit journal file.
    pub fn journal_path(&self) -> PathBuf {
        self.ctx.audit.path().to_owned()
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("akm.db")
    }

    /// A client TLS config for identity `cn` in groups `ous`.
    pub fn client_tls(&self, cn: &str, ous: &[&str]) -> Arc<rustls::ClientConfig> {
        let ous: Vec<String> = ous.iter().map(|s| s.to_string()).collect();
        let issued = self
            .ca
            .issue_client(cn, &ous, Validity::days_from_now(1))
            .unwrap();
        self.client_tls_for(&issued)
    }

    /// A client TLS config presenting `issued`.
    pub fn client_tls_for(&self, issued: &Issued) -> Arc<rustls::ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.cert_der().clone()).unwrap();
        akm::tls::client_config_from(
            vec![issued.cert_der().unwrap()],
            issued.key_der().unwrap(),
            roots,
        )
        .unwrap()
    }

    /// A connected client for `cn` speaking `version`.
    pub async fn client(&self, cn: &str, version: ProtocolVersion) -> Client {
        self.connect(self.client_tls(cn, &["users"]), version)
            .await
            .unwrap()
    }

    /// Connects with a client TLS config; the error is the caller's to examine.
    pub async fn connect(
        &self,
        tls: Arc<rustls::ClientConfig>,
        version: ProtocolVersion,
    ) -> Result<Client, akm::client::ClientError> {
        Client::connect(&format!("localhost:{}", self.addr.port()), tls, version).await
    }

    /// Stops the server, waits for it to drain, and hands back its directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        self.ctx.store.close();
        self.ctx.audit.close();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}
