//! Real `akm serve` processes mirroring to each other on loopback addresses (node i listens on
//! 127.0.0.{i+1}), with a PKI generated at test time, and a fault-injecting proxy on every
//! mirror link (one per direction, so a link can be cut both ways). Nodes can be stopped with
//! SIGKILL and restarted on the same data.

use super::proxy::{Fault, Proxy};
use akm::client::Client;
use akm::crypto::Kek;
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion;
use akm::mirror::status::{self, Status};
use akm::pki::{Ca, Validity};
use akm::tls;
use rustls::RootCertStore;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One node's files, addresses and process.
pub struct Node {
    /// Node id (`n0`, `n1`, ...).
    pub id: String,
    /// Its directory (config, certs, data, log).
    pub dir: PathBuf,
    /// KMIP address.
    pub kmip: SocketAddr,
    /// Mirror listener address.
    pub mirror: SocketAddr,
    child: Option<Child>,
}

/// A set of mirrored nodes.
pub struct Cluster {
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Proxies by (from, to): node `from` pushes to node `to` through it.
    pub proxies: BTreeMap<(usize, usize), Proxy>,
    /// The CA every node trusts.
    pub ca: Ca,
    /// The dedicated mirror CA (`certs/mirror-ca.crt`), with [`PeerIdentity::CnUnderMirrorCa`].
    pub mirror_ca: Option<Ca>,
    admin: Arc<rustls::ClientConfig>,
    _tmp: tempfile::TempDir,
}

fn free_port(ip: &str) -> SocketAddr {
    std::net::TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
}

fn write_public(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// The configuration of a node on a shared PostgreSQL database.
fn write_shared_config(node: &Node, url: &str, extra: &str) {
    let text = format!(
        "[server]\nlisten = \"{}\"\n\n[tls]\ncerts_dir = \"certs\"\n\n\
         [store]\ndata_dir = \"data\"\nbackend = \"postgres\"\nurl = \"{url}\"\ntls = \"off\"\n\
         node_id = \"{}\"\n\n[log]\nlevel = \"info\"\n\n[client]\nserver = \"{}\"\n{extra}\n",
        node.kmip, node.id, node.kmip
    );
    std::fs::write(node.dir.join("akm.toml"), text).unwrap();
}

/// How nodes identify their peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerIdentity {
    /// Pinned certificate fingerprints; peer certificates (CN `localhost`) from the client CA,
    /// as the README sets up.
    Fingerprint,
    /// CN `akm-n<i>` under a dedicated mirror CA (`mirror.ca = "certs/mirror-ca.crt"`).
    CnUnderMirrorCa,
}

/// Options of a cluster.
#[derive(Clone)]
pub struct Options {
    /// Number of nodes.
    pub nodes: usize,
    /// Extra lines in every node's `[mirror]` section (mode, timeouts).
    pub mirror_extra: String,
    /// How nodes identify their peers.
    pub identity: PeerIdentity,
    /// A PostgreSQL database (its connection string, no TLS) every node shares instead of
    /// mirroring: one KEK for all, no `[mirror]` section (`mirror_extra` is then appended to
    /// the configuration as it is), `store.node_id` the node's id.
    pub shared_database: Option<String>,
}

impl Options {
    /// `n` nodes in asynchronous mode.
    pub fn nodes(n: usize) -> Options {
        Options {
            nodes: n,
            mirror_extra: String::new(),
            identity: PeerIdentity::Fingerprint,
            shared_database: None,
        }
    }

    /// `n` nodes sharing the PostgreSQL database at `url`, with `extra` configuration.
    pub fn shared(n: usize, url: &str, extra: &str) -> Options {
        Options {
            mirror_extra: extra.into(),
            shared_database: Some(url.into()),
            ..Options::nodes(n)
        }
    }
}

impl Cluster {
    /// Writes the PKI and configs and starts every node.
    pub fn start(opts: Options) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::generate("akm mirror test CA").unwrap();
        let mirror_ca = (opts.identity == PeerIdentity::CnUnderMirrorCa)
            .then(|| Ca::generate("akm dedicated mirror CA").unwrap());
        let mut nodes = Vec::new();
        let mut fingerprints = Vec::new();
        for i in 0..opts.nodes {
            let ip = format!("127.0.0.{}", i + 1);
            let dir = tmp.path().join(format!("n{i}"));
            let certs = dir.join("certs");
            std::fs::create_dir_all(&certs).unwrap();
            std::fs::create_dir_all(dir.join("data")).unwrap();
            let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), ip.clone()];
            let server = ca.issue_server(&names).unwrap();
            write_public(&certs.join("server.crt"), &server.cert_pem);
            akm::secret_file::write_new(&certs.join("server.key"), server.key_pem.as_bytes())
                .unwrap();
            let peer = match &mirror_ca {
                Some(m) => {
                    write_public(&certs.join("mirror-ca.crt"), m.cert_pem());
                    let mut peer_names = vec![format!("akm-n{i}")];
                    peer_names.extend(names.iter().cloned());
                    m.issue_peer(&peer_names).unwrap()
                }
                None => ca.issue_peer(&names).unwrap(),
            };
            write_public(&certs.join("mirror.crt"), &peer.cert_pem);
            akm::secret_file::write_new(&certs.join("mirror.key"), peer.key_pem.as_bytes())
                .unwrap();
            write_public(&certs.join("ca.crt"), ca.cert_pem());
            let kek = dir.join("data/kek.key");
            match (&opts.shared_database, nodes.first()) {
                // Nodes on one database hold the same KEK, as operators copy it.
                (Some(_), Some(first)) => {
                    let first: &Node = first;
                    akm::secret_file::write_new(
                        &kek,
                        &std::fs::read(first.dir.join("data/kek.key")).unwrap(),
                    )
                    .unwrap();
                }
                _ => drop(Kek::generate(&kek).unwrap()),
            }
            fingerprints.push(hex::encode(akm::crypto::sha256(
                peer.cert_der().unwrap().as_ref(),
            )));
            nodes.push(Node {
                id: format!("n{i}"),
                dir,
                kmip: free_port(&ip),
                mirror: free_port(&ip),
                child: None,
            });
        }
        let admin = ca
            .issue_client("admin", &["admins".into()], Validity::days_from_now(1))
            .unwrap();
        for node in &nodes {
            let certs = node.dir.join("certs");
            write_public(&certs.join("admin.crt"), &admin.cert_pem);
            akm::secret_file::write_new(&certs.join("admin.key"), admin.key_pem.as_bytes())
                .unwrap();
        }
        let mut proxies = BTreeMap::new();
        if let Some(url) = &opts.shared_database {
            for node in &nodes {
                write_shared_config(node, url, &opts.mirror_extra);
            }
        }
        for from in (0..opts.nodes).filter(|_| opts.shared_database.is_none()) {
            for (to, target) in nodes.iter().enumerate() {
                if from != to {
                    proxies.insert((from, to), Proxy::start(target.mirror));
                }
            }
        }
        for (i, node) in nodes
            .iter()
            .enumerate()
            .filter(|_| opts.shared_database.is_none())
        {
            // Before the extra lines, which may open another section.
            let mirror_ca_line = if mirror_ca.is_some() {
                "ca = \"certs/mirror-ca.crt\"\n"
            } else {
                ""
            };
            let mut text = format!(
                "[server]\nlisten = \"{}\"\n\n[tls]\ncerts_dir = \"certs\"\n\n\
                 [store]\ndata_dir = \"data\"\n\n[log]\nlevel = \"info\"\n\n\
                 [client]\nserver = \"{}\"\n\n\
                 [mirror]\nnode_id = \"{}\"\nlisten = \"{}\"\n{mirror_ca_line}{}\n",
                node.kmip, node.kmip, node.id, node.mirror, opts.mirror_extra
            );
            for (j, peer) in nodes.iter().enumerate() {
                if i != j {
                    let identity = match opts.identity {
                        PeerIdentity::Fingerprint => {
                            format!("fingerprint = \"{}\"", fingerprints[j])
                        }
                        PeerIdentity::CnUnderMirrorCa => format!("cn = \"akm-n{j}\""),
                    };
                    text.push_str(&format!(
                        "[[mirror.peers]]\nnode_id = \"{}\"\naddress = \"{}\"\n\
                         server_name = \"localhost\"\n{identity}\n\n",
                        peer.id,
                        proxies[&(i, j)].addr,
                    ));
                }
            }
            std::fs::write(node.dir.join("akm.toml"), text).unwrap();
        }
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let admin = tls::client_config_from(
            vec![admin.cert_der().unwrap()],
            admin.key_der().unwrap(),
            roots,
        )
        .unwrap();
        let mut cluster = Cluster {
            nodes,
            proxies,
            ca,
            mirror_ca,
            admin,
            _tmp: tmp,
        };
        for i in 0..opts.nodes {
            cluster.start_node(i);
        }
        cluster
    }

    /// Starts (or restarts) node `i` and waits until both its listeners accept.
    pub fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("akm.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_akm"))
            .arg("--config")
            .arg(node.dir.join("akm.toml"))
            .arg("serve")
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(45);
        let mirrored = std::fs::read_to_string(node.dir.join("akm.toml"))
            .unwrap()
            .contains("[mirror]");
        let listeners = if mirrored {
            vec![node.kmip, node.mirror]
        } else {
            vec![node.kmip]
        };
        for addr in listeners {
            while std::net::TcpStream::connect(addr).is_err() {
                if let Some(status) = node.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!("node {} exited with {status}: {}", node.id, node.log());
                }
                assert!(Instant::now() < deadline, "node {} did not start", node.id);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// How node `i`'s process ended, if it has (without waiting).
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        self.nodes[i].child.as_mut()?.try_wait().unwrap()
    }

    /// Kills node `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops node `i` with SIGTERM (a clean shutdown); returns whether it exited successfully.
    pub fn stop(&mut self, i: usize) -> bool {
        let Some(mut c) = self.nodes[i].child.take() else {
            return false;
        };
        let sent = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        sent.success() && c.wait().unwrap().success()
    }

    /// Applies `fault` to both directions between nodes `a` and `b`.
    pub fn link(&self, a: usize, b: usize, fault: Fault) {
        self.proxies[&(a, b)].set(fault);
        self.proxies[&(b, a)].set(fault);
    }

    /// A KMIP client (identity `admin`) of node `i`.
    pub async fn client(&self, i: usize) -> Client {
        Client::connect(
            &self.nodes[i].kmip.to_string(),
            self.admin.clone(),
            ProtocolVersion::V1_4,
        )
        .await
        .unwrap()
    }

    /// A KMIP client of node `i` as user `cn` (a certificate from the cluster's CA, no OU).
    pub async fn client_as(&self, i: usize, cn: &str) -> Client {
        self.client_in(i, cn, &[]).await
    }

    /// A KMIP client of node `i` as user `cn` in groups `ous` (certificate OUs).
    pub async fn client_in(&self, i: usize, cn: &str, ous: &[&str]) -> Client {
        let ous: Vec<String> = ous.iter().map(|o| o.to_string()).collect();
        let issued = self
            .ca
            .issue_client(cn, &ous, Validity::days_from_now(1))
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.cert_der().clone()).unwrap();
        let tls = tls::client_config_from(
            vec![issued.cert_der().unwrap()],
            issued.key_der().unwrap(),
            roots,
        )
        .unwrap();
        Client::connect(&self.nodes[i].kmip.to_string(), tls, ProtocolVersion::V1_4)
            .await
            .unwrap()
    }

    /// The admin client TLS configuration.
    pub fn admin_tls(&self) -> Arc<rustls::ClientConfig> {
        self.admin.clone()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// One object as stored: (state, attributes, has material).
pub type Row = (u32, Vec<u8>, bool);

impl Node {
    /// Everything the node logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("akm.log")).unwrap_or_default()
    }

    /// The node's objects (uid → state, attributes, has material), read from its database
    /// read-only (the test's view; the node keeps running).
    pub fn objects(&self) -> BTreeMap<String, Row> {
        let c = rusqlite::Connection::open_with_flags(
            self.dir.join("data/akm.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        let mut stmt = c
            .prepare(
                "SELECT o.uid, o.state, o.attributes, \
                 EXISTS (SELECT 1 FROM material m WHERE m.uid = o.uid) FROM objects o",
            )
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
            })
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// The `detail` of every `event=mirror` record in the node's audit journal.
    pub fn mirror_audit(&self) -> Vec<String> {
        let text =
            std::fs::read_to_string(self.dir.join("data/audit/audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| akm::audit::record::Record::parse_line(l).ok())
            .filter(|r| r.get("event") == Some("mirror"))
            .map(|r| akm::audit::record::unescape(r.get("detail").unwrap_or("")))
            .collect()
    }

    /// Whether the audit journal has a mirror record whose detail contains `text`.
    pub fn audited(&self, text: &str) -> bool {
        self.mirror_audit().iter().any(|d| d.contains(text))
    }

    /// The node's user and group records: (kind, name) → (enabled, operations).
    pub fn accounts(&self) -> BTreeMap<(String, String), (bool, String)> {
        let c = rusqlite::Connection::open_with_flags(
            self.dir.join("data/akm.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut out = BTreeMap::new();
        for (kind, table) in [("user", "acl_users"), ("group", "acl_groups")] {
            let mut stmt = c
                .prepare(&format!("SELECT name, enabled, operations FROM {table}"))
                .unwrap();
            let rows = stmt
                .query_map([], |r| {
                    Ok(((kind.to_string(), r.get(0)?), (r.get(1)?, r.get(2)?)))
                })
                .unwrap();
            out.extend(rows.map(Result::unwrap));
        }
        out
    }

    /// The access policy of `uid`: (owner, owner group, access mode).
    pub fn policy_of(&self, uid: &str) -> Option<(String, Option<String>, String)> {
        let c = rusqlite::Connection::open_with_flags(
            self.dir.join("data/akm.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        c.query_row(
            "SELECT owner, owner_group, access_mode FROM objects WHERE uid = ?1",
            [uid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .ok()
    }

    /// Runs `akm --config <this node's config> <args>` (a client of this node) and returns
    /// (success, stdout + stderr).
    pub fn akm(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_akm"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// The KEK id under which the node's material for `uid` is wrapped.
    pub fn kek_id_of(&self, uid: &str) -> Option<String> {
        let c = rusqlite::Connection::open_with_flags(
            self.dir.join("data/akm.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        c.query_row("SELECT kek_id FROM material WHERE uid = ?1", [uid], |r| {
            r.get(0)
        })
        .ok()
    }

    /// The node's mirror status file.
    pub fn status(&self) -> Option<Status> {
        status::read_file(&self.dir.join("data/mirror-status.json")).ok()
    }

    /// The node's config file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("akm.toml")
    }
}

/// Creates a named AES key on `client`; returns its uid.
pub async fn create_key(client: &mut Client, name: &str) -> String {
    let payload =
        super::kmip::create_payload(ProtocolVersion::V1_4, &super::kmip::aes_attrs(Some(name)));
    let r = client.call(op::CREATE, payload).await.unwrap();
    super::kmip::uid_of(&r)
}

/// Polls `f` every 50 ms until it is true or `limit` passes; returns whether it became true.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
