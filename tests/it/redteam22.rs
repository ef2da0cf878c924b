//! Red team of issue 22 (several `akm serve` nodes on one PostgreSQL database): what an
//! operator's ordinary mistakes do at the seams between nodes. A node that stalled past its
//! hold on its node id while a second process started as the same node stops serving once it
//! resumes, rather than writing as that node beside it. Nodes whose security settings differ
//! (one node's `[access]` changed and reloaded, the other's forgotten) refuse client writes
//! until they agree, as mirror peers do; a node restarted on its own with a stale file does not
//! write its declared user records over the database's (re-enabling a disabled user); a key's
//! Usage Limits spent through both nodes at once are never overspent. Skipped (SKIPPED) without PostgreSQL installed, except
//! under CI=true.

use crate::support::cluster::{eventually, Cluster, Options};
use crate::support::kmip::*;
use crate::support::postgres;
use akm::client::Client;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::operation as op;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Runs blocking code (the synchronous PostgreSQL client drives a runtime of its own) from a
/// test's async body.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Sends `signal` (`-STOP`, `-CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Who holds node id `node`'s lease now, as the database says.
fn node_holder(url: &str, node: &str) -> Option<String> {
    blocking(|| {
        let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
        c.query_opt(
            "SELECT holder FROM leases WHERE name = $1",
            &[&format!("node:{node}")],
        )
        .unwrap()
        .map(|r| r.get(0))
    })
}

/// A second `akm serve` process started with node `i`'s configuration, certificates and KEK
/// (its own data directory and port): the operator's copied configuration.
fn start_copy_of(c: &Cluster, i: usize, dir: &std::path::Path) -> Child {
    let node = &c.nodes[i];
    let config = std::fs::read_to_string(node.config())
        .unwrap()
        .replace("listen = \"", "listen = \"127.0.0.1:0\"\n# was \"");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    for f in std::fs::read_dir(node.dir.join("certs")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.join("certs").join(f.file_name())).unwrap();
    }
    akm::secret_file::write_new(
        &dir.join("data/kek.key"),
        &std::fs::read(node.dir.join("data/kek.key")).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("akm.toml"), config).unwrap();
    let log = std::fs::File::create(dir.join("akm.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_akm"))
        .arg("--config")
        .arg(dir.join("akm.toml"))
        .arg("serve")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// A node stopped (SIGSTOP: a VM paused, a process swapped out) past its hold on its node
/// id, while the operator starts a second process with the same configuration: the second
/// takes the id. When the first resumes it must not go on serving as that node beside the
/// second (their change-log entries and audit marks would mix): it stops, in failure, naming
/// the other holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_id_was_taken_while_it_stalled_stops_serving() {
    let Some(db) = blocking(postgres::database) else {
        return;
    };
    let mut c = Cluster::start(Options::shared(1, &db.url, ""));
    let pid = c.pid(0).unwrap();
    signal(pid, "-STOP");
    tokio::time::sleep(akm::store::NODE_LEASE + Duration::from_secs(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut copy = start_copy_of(&c, 0, dir.path());
    let copy_pid = format!("pid {} ", copy.id());
    let taken = eventually(Duration::from_secs(30), || {
        node_holder(&db.url, "n0").is_some_and(|h| h.contains(&copy_pid))
    });
    signal(pid, "-CONT");
    assert!(
        taken,
        "the copy did not take n0's lapsed id: {}",
        std::fs::read_to_string(dir.path().join("akm.log")).unwrap_or_default()
    );
    let stopped = eventually(Duration::from_secs(30), || c.exited(0).is_some());
    let _ = copy.kill();
    let _ = copy.wait();
    let log = c.nodes[0].log();
    assert!(
        stopped,
        "n0 goes on serving after another process took its id: {log}"
    );
    assert!(!c.exited(0).unwrap().success());
    assert!(
        log.contains("\"n0\" is in use by another live akm process"),
        "{log}"
    );
}

/// Registers a fresh AES key named `key_name` through `c`: the refusal's text, if refused.
async fn register(c: &mut Client, key_name: &str) -> Result<(), String> {
    let attrs = [Attr::new("Name", name(key_name))];
    c.call(
        op::REGISTER,
        register_key_payload(c.version, &[7u8; 32], &attrs),
    )
    .await
    .map(drop)
    .map_err(|e| e.to_string())
}

/// Node `i`'s configuration with `[access]` text appended (or the original again), reloaded.
fn reconfigure(c: &Cluster, i: usize, original: &str, access: &str) {
    std::fs::write(c.nodes[i].config(), format!("{original}{access}")).unwrap();
    signal(c.pid(i).unwrap(), "-HUP");
}

/// An operator changes `[access]` on one node of a shared database and forgets the other: the
/// two would judge the same client differently, each writing to the one database. Client
/// writes are refused through both, naming the node and the section, until the settings
/// agree again; then they resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_whose_security_settings_differ_refuse_client_writes_until_they_agree() {
    let Some(db) = blocking(postgres::database) else {
        return;
    };
    let c = Cluster::start(Options::shared(2, &db.url, ""));
    let (mut zero, mut one) = (c.client(0).await, c.client(1).await);
    register(&mut zero, "before").await.unwrap();
    let original = std::fs::read_to_string(c.nodes[1].config()).unwrap();
    reconfigure(&c, 1, &original, "\n[access]\nhide_existence = true\n");
    let mut refusals = (String::new(), String::new());
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (a, b) = (
            register(&mut zero, &format!("a{i}")).await,
            register(&mut one, &format!("b{i}")).await,
        );
        if let (Err(a), Err(b)) = (a, b) {
            refusals = (a, b);
            break;
        }
    }
    let (a, b) = refusals;
    assert!(
        a.contains("security settings of other akm node(s)") && a.contains("n1 (access)"),
        "node 0 still writes beside a node with other settings: {a:?}"
    );
    assert!(b.contains("n0 (access)"), "{b:?}");
    reconfigure(&c, 1, &original, "");
    let mut resumed = false;
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if register(&mut zero, &format!("c{i}")).await.is_ok()
            && register(&mut one, &format!("d{i}")).await.is_ok()
        {
            resumed = true;
            break;
        }
    }
    assert!(resumed, "writes did not resume once the settings agree");
}

/// Whether `cn` has a Query answered by node `i`.
async fn answered(c: &Cluster, i: usize, cn: &str) -> bool {
    c.client_as(i, cn)
        .await
        .call(op::QUERY, vec![])
        .await
        .is_ok()
}

/// Both nodes declare user mallory; the operator disables her in node 0's configuration and
/// reloads it (in force on both: the records are in the one database), forgetting node 1's
/// file. Node 1 then restarts on its own (a crash, a host reboot): its stale records must not
/// be written over the database's, re-enabling mallory on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_with_stale_declared_records_does_not_re_enable_a_disabled_user() {
    let Some(db) = blocking(postgres::database) else {
        return;
    };
    let mut c = Cluster::start(Options::shared(
        2,
        &db.url,
        "[access.users.mallory]\nenabled = true\n",
    ));
    assert!(answered(&c, 0, "mallory").await);
    let original = std::fs::read_to_string(c.nodes[0].config()).unwrap();
    std::fs::write(
        c.nodes[0].config(),
        original.replace("enabled = true", "enabled = false"),
    )
    .unwrap();
    signal(c.pid(0).unwrap(), "-HUP");
    let mut disabled = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if !answered(&c, 0, "mallory").await && !answered(&c, 1, "mallory").await {
            disabled = true;
            break;
        }
    }
    assert!(disabled, "the reload did not disable mallory");
    // Some time later (node 0 publishes its settings at the reload, and every second).
    tokio::time::sleep(akm::node_settings::COMPARE_EVERY).await;
    assert!(c.stop(1));
    c.start_node(1);
    assert!(
        !answered(&c, 0, "mallory").await,
        "node 1's stale records re-enabled mallory on node 0: {}",
        c.nodes[1].log()
    );
    assert!(!answered(&c, 1, "mallory").await);
    assert!(
        c.nodes[1].log().contains("not applied"),
        "{}",
        c.nodes[1].log()
    );
}

/// Usage Limits of six uses, spent by clients of both nodes at once (twenty attempts): the
/// count is checked and kept in the writer's transaction, under the lock every node's writes
/// take, so exactly six succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_limits_spent_through_two_nodes_at_once_are_never_overspent() {
    use akm::kmip::enums::{
        block_cipher_mode as bcm, cryptographic_usage_mask as usage, usage_limits_unit,
    };
    use akm::ttlv::{Tag, Ttlv, Value};
    let Some(db) = blocking(postgres::database) else {
        return;
    };
    let c = Cluster::start(Options::shared(2, &db.url, ""));
    let mut admin = c.client(0).await;
    let now = akm::clock::now_secs();
    let attrs = [
        Attr::new(
            "Cryptographic Usage Mask",
            Value::Integer(usage::ENCRYPT | usage::DECRYPT),
        ),
        Attr::new("Activation Date", Value::DateTime(now - 3600)),
        Attr::new(
            "Usage Limits",
            Value::Structure(vec![
                Ttlv::long(Tag::USAGE_LIMITS_TOTAL, 6),
                Ttlv::enumeration(Tag::USAGE_LIMITS_UNIT, usage_limits_unit::OBJECT),
            ]),
        ),
    ];
    let r = admin
        .call(
            op::REGISTER,
            register_key_payload(admin.version, &[9u8; 32], &attrs),
        )
        .await
        .unwrap();
    let key = uid_of(&r);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let mut client = c.client(i % 2).await;
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for _ in 0..2 {
                let mut req = uid(&key);
                req.push(Ttlv::structure(
                    Tag::CRYPTOGRAPHIC_PARAMETERS,
                    vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, bcm::ECB)],
                ));
                req.push(Ttlv::bytes(Tag::DATA, [0u8; 16]));
                if client.call(op::ENCRYPT, req).await.is_ok() {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut succeeded = 0;
    for t in tasks {
        succeeded += t.await.unwrap();
    }
    assert_eq!(succeeded, 6, "Usage Limits of 6 spent through two nodes");
}
