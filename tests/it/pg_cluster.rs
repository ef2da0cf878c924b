//! Several real `akm serve` processes on one real PostgreSQL database (issue 22): a key made
//! through one node is served by the other; the database's invariants hold while both write;
//! a scheduled rotation is made once, by one node; a node killed with -9 under load loses no
//! acknowledged write; a database restarted under load gives the clients clean errors, then
//! service resumes without restarting akm. A node with another KEK, or a second process with
//! a node id already in use, is refused at start. Skipped (SKIPPED) without PostgreSQL
//! installed, except under CI=true.

use crate::mirror_control::served;
use crate::support::cluster::{Cluster, Options};
use crate::support::kmip::*;
use crate::support::postgres;
use akm::client::{Client, ClientError};
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{operation as op, result_reason as rr};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};
use rand_core::{OsRng, RngCore};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Two nodes on a fresh database of the shared test server (`None`: skipped).
fn pair(extra: &str) -> Option<(Cluster, postgres::TestDb)> {
    let db = blocking(postgres::database)?;
    let cluster = Cluster::start(Options::shared(2, &db.url, extra));
    Some((cluster, db))
}

/// Runs blocking code (the synchronous PostgreSQL client drives a runtime of its own) from a
/// test's async body.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Runs `query` on the test database directly (the test's own view of the rows).
fn sql(db: &postgres::TestDb, query: &str) -> Vec<::postgres::Row> {
    blocking(|| {
        let mut c = ::postgres::Client::connect(&db.url, ::postgres::NoTls).unwrap();
        c.query(query, &[]).unwrap()
    })
}

/// A random 256-bit key.
fn random_key() -> Vec<u8> {
    let mut k = vec![0u8; 32];
    OsRng.fill_bytes(&mut k);
    k
}

/// Registers `bytes` as an AES key named `key_name`; its uid.
async fn register(c: &mut Client, bytes: &[u8], key_name: &str) -> Result<String, ClientError> {
    let attrs = [Attr::new("Name", name(key_name))];
    let r = c
        .call(op::REGISTER, register_key_payload(c.version, bytes, &attrs))
        .await?;
    Ok(uid_of(&r))
}

async fn get_bytes(c: &mut Client, u: &str) -> Result<Vec<u8>, ClientError> {
    Ok(key_bytes(&c.call(op::GET, uid(u)).await?))
}

/// The `server=` of every record in node `i`'s audit journal with `field=value`.
fn records_with(c: &Cluster, i: usize, field: &str, value: &str) -> Vec<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(c.nodes[i].dir.join("data/audit/audit.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| akm::audit::record::Record::parse_line(l).ok())
        .filter(|r| r.get(field) == Some(value))
        .map(|r| {
            ["server", "operation", "outcome", "uid", "user", "detail"]
                .iter()
                .filter_map(|k| {
                    r.get(k)
                        .map(|v| (k.to_string(), akm::audit::record::unescape(v)))
                })
                .collect()
        })
        .collect()
}

/// The database's invariants, read directly: names unique among an owner's live objects,
/// material only for objects that exist, the change log numbered without gaps.
fn assert_invariants(db: &postgres::TestDb) {
    let count = |query: &str| -> i64 { sql(db, query)[0].get(0) };
    let duplicates = count(
        "SELECT COUNT(*) FROM (SELECT o.owner, n.name FROM names n \
         JOIN objects o ON o.uid = n.uid WHERE o.state NOT IN (5, 6) \
         GROUP BY o.owner, n.name HAVING COUNT(*) > 1) d",
    );
    assert_eq!(
        duplicates, 0,
        "a Name held twice by one owner's live objects"
    );
    let orphans = count(
        "SELECT COUNT(*) FROM material m LEFT JOIN objects o ON o.uid = m.uid \
         WHERE o.uid IS NULL",
    );
    assert_eq!(orphans, 0, "material without its object");
    let entries = count("SELECT COUNT(*) FROM change_log");
    let newest = count("SELECT COALESCE(MAX(seq), 0) FROM change_log");
    let log: Vec<(i64, String, String)> =
        sql(db, "SELECT seq, entity, kind FROM change_log ORDER BY seq")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    assert_eq!(entries, newest, "the change log has gaps: {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_through_one_node_is_served_by_the_other_and_names_stay_unique() {
    let Some((c, db)) = pair("") else { return };
    let mut one = c.client(0).await;
    let mut two = c.client(1).await;
    let bytes = random_key();
    let u = register(&mut one, &bytes, "payments").await.unwrap();
    // At once through the other node: no replication delay, one database.
    assert_eq!(get_bytes(&mut two, &u).await.unwrap(), bytes);
    let found = two
        .call(
            op::LOCATE,
            filters(two.version, &[Attr::new("Name", name("payments"))]),
        )
        .await
        .unwrap();
    assert_eq!(uid_of(&found), u);
    // The Name is taken for this owner on every node.
    match register(&mut two, &random_key(), "payments").await {
        // KMIP 1.4 has no Non-Unique Name Attribute reason: Invalid Field, saying why.
        Err(ClientError::Failed { reason, message }) => {
            assert_eq!(reason, rr::INVALID_FIELD, "{message}");
            assert!(message.contains("name already in use"), "{message}");
        }
        other => panic!("a second key named payments: {other:?}"),
    }
    // A lifecycle change through one node holds on the other: destroyed through node two,
    // node one serves no material.
    two.call(op::DESTROY, uid(&u)).await.unwrap();
    assert!(get_bytes(&mut one, &u).await.is_err());
    // Each node's own journal records what it did, naming the node.
    let registered = records_with(&c, 0, "operation", "Register");
    assert!(
        registered
            .iter()
            .any(|r| r.get("uid") == Some(&u) && r.get("server").map(String::as_str) == Some("n0")),
        "{registered:?}"
    );
    let destroyed = records_with(&c, 1, "operation", "Destroy");
    assert!(
        destroyed
            .iter()
            .any(|r| r.get("uid") == Some(&u) && r.get("server").map(String::as_str) == Some("n1")),
        "{destroyed:?}"
    );
    assert_invariants(&db);
}

/// A node that brings another KEK is refused at start, naming the fix; so is a second process
/// for a node id a live node holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_kek_or_a_node_id_in_use_is_refused_at_start() {
    let Some((c, _db)) = pair("") else { return };
    let mut one = c.client(0).await;
    register(&mut one, &random_key(), "k").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start = |config_text: String| {
        let config = dir.path().join("akm.toml");
        std::fs::write(&config, config_text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_akm"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Node n0's files and configuration, with a KEK of its own and another node id.
    let base = std::fs::read_to_string(c.nodes[0].config())
        .unwrap()
        .replace(
            "certs_dir = \"certs\"",
            &format!("certs_dir = \"{}\"", c.nodes[0].dir.join("certs").display()),
        )
        .replace("listen = \"", "listen = \"127.0.0.1:0\"\n# was \"");
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::create_dir_all(dir.path().join("certs")).unwrap();
    for f in std::fs::read_dir(c.nodes[0].dir.join("certs")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.path().join("certs").join(f.file_name())).unwrap();
    }
    akm::crypto::Kek::generate(&dir.path().join("data/kek.key")).unwrap();
    let other_kek = start(base.replace("node_id = \"n0\"", "node_id = \"n9\""));
    assert!(
        other_kek.contains("every akm node on one database needs the same KEK"),
        "{other_kek}"
    );
    // The same KEK as the cluster, but node n1's id while n1 runs.
    std::fs::remove_file(dir.path().join("data/kek.key")).unwrap();
    akm::secret_file::write_new(
        &dir.path().join("data/kek.key"),
        &std::fs::read(c.nodes[0].dir.join("data/kek.key")).unwrap(),
    )
    .unwrap();
    let same_id = start(base.replace("node_id = \"n0\"", "node_id = \"n1\""));
    assert!(
        same_id.contains("\"n1\" is in use by another live akm process"),
        "{same_id}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_rotation_is_made_once_by_one_node() {
    let Some((c, db)) = pair("[crypto]\nrotation_check_secs = 1\n") else {
        return;
    };
    let mut alice = c.client_as(0, "alice").await;
    let now = akm::clock::now_secs();
    let attrs = {
        let mut a = aes_attrs(Some("orders"));
        a.push(Attr::new("Activation Date", Value::DateTime(now - 86_400)));
        a.push(Attr::new("Rotate Automatic", Value::Boolean(true)));
        a.push(Attr::new("Rotate Interval", Value::Interval(3)));
        a
    };
    let r = alice
        .call(op::CREATE, create_payload(alice.version, &attrs))
        .await
        .unwrap();
    let first = uid_of(&r);
    // Long enough for several rotations (one every three seconds), each checked for by both
    // nodes every second.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let successes = |i| {
        records_with(&c, i, "event", "rotation")
            .into_iter()
            .filter(|r| r.get("outcome").map(String::as_str) == Some("success"))
            .count()
    };
    let (by0, by1) = (successes(0), successes(1));
    assert!(by0 + by1 >= 2, "too few rotations: {by0} + {by1}");
    assert!(by0 == 0 || by1 == 0, "both nodes rotated: {by0} and {by1}");
    // One linear chain: each version replaced at most once, every version but the first
    // replaces one, and one current holder of the name.
    let replaces: Vec<Option<String>> = sql(&db, "SELECT replaces FROM objects")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let replaced: Vec<&String> = replaces.iter().flatten().collect();
    let distinct: BTreeSet<&String> = replaced.iter().copied().collect();
    assert_eq!(distinct.len(), replaced.len(), "a version replaced twice");
    assert_eq!(replaced.len() + 1, replaces.len());
    assert_eq!(by0 + by1, replaced.len());
    let holders = alice
        .call(
            op::LOCATE,
            filters(alice.version, &[Attr::new("Name", name("orders"))]),
        )
        .await
        .unwrap();
    let holders: Vec<&str> = holders
        .children()
        .iter()
        .filter(|t| t.tag == Tag::UNIQUE_IDENTIFIER)
        .filter_map(Ttlv::as_text)
        .collect();
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_ne!(holders[0], first);
    assert_invariants(&db);
}

/// Acknowledged writes, and how many were refused, of writers on every node.
#[derive(Default)]
struct Load {
    acked: Mutex<Vec<(String, Vec<u8>)>>,
    refused: AtomicUsize,
    stop: AtomicBool,
}

/// Registers named random keys through `addr` until told to stop: each acknowledged one is
/// recorded; a refused one is counted (the server must answer with a KMIP error, never
/// hang); a lost connection is made again (the node may be gone for good).
async fn write(load: Arc<Load>, addr: String, tls: Arc<rustls::ClientConfig>, tag: String) {
    let mut n = 0;
    while !load.stop.load(Ordering::Relaxed) {
        let Ok(mut c) = Client::connect(&addr, tls.clone(), V::V1_4).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while !load.stop.load(Ordering::Relaxed) {
            n += 1;
            let bytes = random_key();
            let call = tokio::time::timeout(
                Duration::from_secs(90),
                register(&mut c, &bytes, &format!("{tag}-{n}")),
            )
            .await
            .expect("a write neither answered nor refused within 90 s");
            match call {
                Ok(u) => load.acked.lock().unwrap().push((u, bytes)),
                Err(ClientError::Failed { reason, message }) => {
                    assert_eq!(reason, rr::GENERAL_FAILURE, "{message}");
                    load.refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => break,
            }
        }
    }
}

/// Starts `per_node` writers on each node of `c`.
fn start_writers(
    c: &Cluster,
    load: &Arc<Load>,
    per_node: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (i, node) in c.nodes.iter().enumerate() {
        for w in 0..per_node {
            tasks.push(tokio::spawn(write(
                load.clone(),
                node.kmip.to_string(),
                c.admin_tls(),
                format!("n{i}-w{w}"),
            )));
        }
    }
    tasks
}

async fn stop_writers(load: &Arc<Load>, tasks: Vec<tokio::task::JoinHandle<()>>) {
    load.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
}

/// Every acknowledged key is served through `client` with its bytes.
async fn assert_all_there(client: &mut Client, acked: &[(String, Vec<u8>)]) {
    for (u, bytes) in acked {
        let got = get_bytes(client, u)
            .await
            .unwrap_or_else(|e| panic!("acknowledged key {u} lost: {e}"));
        assert_eq!(&got, bytes, "key {u} changed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_under_load_loses_no_acknowledged_write() {
    let Some((mut c, db)) = pair("") else { return };
    let load = Arc::new(Load::default());
    let tasks = start_writers(&c, &load, 3);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.kill(0);
    let at_kill = load.acked.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop_writers(&load, tasks).await;
    let acked = std::mem::take(&mut *load.acked.lock().unwrap());
    assert!(
        acked.len() > at_kill,
        "node n1 stopped writing when n0 was killed"
    );
    assert!(
        at_kill > 10,
        "too few writes before the kill to mean anything"
    );
    let mut two = c.client(1).await;
    assert_all_there(&mut two, &acked).await;
    assert_invariants(&db);
    // The killed node starts again (once its hold on its node id lapses) and serves them too;
    // it names the changes it may not have audited before it died.
    c.start_node(0);
    let mut one = c.client(0).await;
    assert_all_there(&mut one, &acked).await;
    assert_invariants(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restarted_under_load_gives_clean_errors_then_service_resumes() {
    let Some(server) = blocking(postgres::own_server) else {
        return;
    };
    let db = blocking(|| server.database()).unwrap();
    let c = Cluster::start(Options::shared(2, &db.url, ""));
    let load = Arc::new(Load::default());
    let tasks = start_writers(&c, &load, 2);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = load.acked.lock().unwrap().len();
    blocking(|| server.restart(Duration::from_secs(2)));
    let after_restart = load.acked.lock().unwrap().len();
    // Service resumes by itself: both nodes acknowledge writes again.
    let resumed = crate::support::cluster::eventually(Duration::from_secs(30), || {
        load.acked.lock().unwrap().len() > after_restart + 20
    });
    stop_writers(&load, tasks).await;
    assert!(
        before > 10,
        "too few writes before the restart to mean anything"
    );
    assert!(resumed, "writes did not resume after the database restart");
    assert!(
        load.refused.load(Ordering::Relaxed) > 0,
        "no write was refused while the database was down"
    );
    let acked = std::mem::take(&mut *load.acked.lock().unwrap());
    for i in 0..2 {
        let mut client = c.client(i).await;
        assert_all_there(&mut client, &acked).await;
        // Both nodes keep writing after the restart.
        register(&mut client, &random_key(), &format!("after-{i}"))
            .await
            .unwrap();
    }
    assert_invariants(&db);
}

/// A certificate an administrator revokes through one node is refused by the other within
/// its change-log follower's period, with no mirroring between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_through_one_node_is_refused_by_the_other() {
    use akm::kmip::extension as ext;
    let Some((c, _db)) = pair("") else { return };
    let erin =
        c.ca.issue_client("erin", &[], akm::pki::Validity::days_from_now(1))
            .unwrap();
    let principal = akm::identity::principal_from_der(erin.cert_der().unwrap().as_ref()).unwrap();
    let issuer = akm::identity::issuer_of(erin.cert_der().unwrap().as_ref()).unwrap();
    assert!(served(&c, 1, &erin).await);
    let mut admin = c.client(0).await;
    admin
        .call(
            ext::OP_REVOKE_CERTIFICATE,
            ext::revoke_certificate_payload(&issuer, &principal.serial),
        )
        .await
        .unwrap();
    assert!(!served(&c, 0, &erin).await, "node 0 still serves erin");
    let mut refused = false;
    for _ in 0..50 {
        if !served(&c, 1, &erin).await {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        refused,
        "node 1 still serves erin 10 s after the revocation"
    );
}

/// `akm init` on a fresh database makes the schema and records the node's KEK; on a database
/// nodes already serve it refuses, naming the way to join, and leaves nothing behind.
#[test]
fn akm_init_on_postgres_records_the_kek_and_a_second_init_is_refused() {
    let Some(db) = postgres::database() else {
        return;
    };
    let init = |dir: &std::path::Path, node: &str| {
        let config = dir.join("akm.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\ndata_dir = \"data\"\nbackend = \"postgres\"\nurl = \"{}\"\n\
                 tls = \"off\"\nnode_id = \"{node}\"\n",
                db.url
            ),
        )
        .unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_akm"))
            .arg("--config")
            .arg(&config)
            .arg("init")
            .output()
            .unwrap()
    };
    let first = tempfile::tempdir().unwrap();
    let out = init(first.path(), "n1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kek =
        akm::crypto::Kek::from_bytes(&std::fs::read(first.path().join("data/kek.key")).unwrap())
            .unwrap();
    let recorded: String = sql(&db, "SELECT kek_id FROM database_kek")[0].get(0);
    assert_eq!(recorded, kek.id());
    let second = tempfile::tempdir().unwrap();
    let out = init(second.path(), "n2");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "already holds keys wrapped under KEK {}",
            kek.id()
        )),
        "{err}"
    );
    assert!(
        !second.path().join("data/kek.key").exists(),
        "a KEK was left behind"
    );
}

/// KEK rotation through one node of a shared database is refused (the other nodes hold only
/// the current KEK): nothing is rewrapped, the database's KEK stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kek_rotation_is_refused_on_a_shared_database() {
    let Some((c, db)) = pair("") else { return };
    let mut one = c.client(0).await;
    let bytes = random_key();
    let u = register(&mut one, &bytes, "kept").await.unwrap();
    let before: String = sql(&db, "SELECT kek_id FROM database_kek")[0].get(0);
    let (ok, out) = blocking(|| c.nodes[0].akm(&["kek", "rotate"]));
    assert!(!ok, "{out}");
    assert!(
        out.contains("KEK rotation on a PostgreSQL store shared by several nodes"),
        "{out}"
    );
    let after: String = sql(&db, "SELECT kek_id FROM database_kek")[0].get(0);
    assert_eq!(before, after);
    let kek_ids: Vec<String> = sql(&db, "SELECT DISTINCT kek_id FROM material")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kek_ids, vec![before]);
    let mut two = c.client(1).await;
    assert_eq!(get_bytes(&mut two, &u).await.unwrap(), bytes);
}
