//! Red-team regressions for the issue-19 architecture changes, over real TLS: the one
//! group-commit worker behind the store writer and the audit journal (concurrent writes,
//! failing writes, Undo batches and journal rotations at once: every acknowledged write is
//! stored and recorded exactly once, and the chain verifies across the rotated files), and
//! the one operation registry (refusals by protocol version, switch and identity are the same
//! as before and every refusal is audited under the operation's name).

use crate::audit::{options, records};
use crate::support::kmip::*;
use crate::support::server::{AuditSetup, TestServer};
use akm::audit::record::Record;
use akm::audit::verify;
use akm::client::{request, Client};
use akm::kmip::enums::{
    batch_error_continuation_option as bec, operation as op, result_reason as rr, result_status,
};
use akm::kmip::extension as ext;
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};
use std::collections::HashMap;
use std::path::PathBuf;

/// `msg` with Batch Error Continuation Option `option` in its header.
fn with_option(mut msg: Ttlv, option: u32) -> Ttlv {
    if let Value::Structure(children) = &mut msg.value {
        if let Value::Structure(h) = &mut children[0].value {
            h.push(Ttlv::enumeration(
                Tag::BATCH_ERROR_CONTINUATION_OPTION,
                option,
            ));
        }
    }
    msg
}

/// Each batch item's Result Status and, when it has one, its payload's Unique Identifier.
fn items(response: &Ttlv) -> Vec<(u32, Option<String>)> {
    response
        .children_with(Tag::BATCH_ITEM)
        .map(|i| {
            let status = i.child(Tag::RESULT_STATUS).and_then(Ttlv::as_enum).unwrap();
            let uid = i
                .child(Tag::RESPONSE_PAYLOAD)
                .and_then(|p| p.child(Tag::UNIQUE_IDENTIFIER))
                .and_then(Ttlv::as_text)
                .map(str::to_owned);
            (status, uid)
        })
        .collect()
}

/// What one client of the stress test was told.
#[derive(Default)]
struct Told {
    /// Keys whose Create (alone or in a committed Undo batch) succeeded.
    created: Vec<String>,
    /// Keys created by an Undo batch that was undone.
    undone: Vec<String>,
    /// Names of undone Creates, which must be free afterwards.
    undone_names: Vec<String>,
    /// Creates of the contested name that succeeded.
    contested_won: usize,
}

/// A client creating uniquely named keys and a key named "contested" again and again: every
/// Create after its first fails on the name inside a write group it shares with the other
/// clients' writes, which must commit regardless.
async fn plain_writer(mut c: Client, tag: usize, rounds: usize) -> Told {
    let mut told = Told::default();
    for i in 0..rounds {
        told.created
            .push(create_key(&mut c, Some(&format!("plain-{tag}-{i}"))).await);
        let v = c.version;
        match c
            .call(op::CREATE, create_payload(v, &aes_attrs(Some("contested"))))
            .await
        {
            Ok(reply) => {
                told.created.push(uid_of(&reply));
                told.contested_won += 1;
            }
            Err(e) => assert_eq!(
                reason(Err(e)),
                v.result_reason(rr::NON_UNIQUE_NAME_ATTRIBUTE),
                "a losing Create fails with the name collision only"
            ),
        }
    }
    told
}

/// A client sending Undo batches: one that fails at its last item (everything undone), one
/// that succeeds (Create, then Activate through the ID Placeholder).
async fn undo_writer(mut c: Client, rounds: usize) -> Told {
    use result_status::{OPERATION_FAILED, OPERATION_UNDONE, SUCCESS};
    let v = c.version;
    let mut told = Told::default();
    for i in 0..rounds {
        let name = format!("undone-{i}");
        let failing = request(
            v,
            &[
                (op::CREATE, create_payload(v, &aes_attrs(Some(&name)))),
                (op::ACTIVATE, vec![]),
                (op::GET, uid("no-such-key")),
            ],
        );
        let got = items(&c.send(&with_option(failing, bec::UNDO)).await.unwrap());
        let statuses: Vec<u32> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            statuses,
            [OPERATION_UNDONE, OPERATION_UNDONE, OPERATION_FAILED]
        );
        told.undone
            .push(got[0].1.clone().expect("an undone Create keeps its uid"));
        told.undone_names.push(name);

        let kept = request(
            v,
            &[
                (
                    op::CREATE,
                    create_payload(v, &aes_attrs(Some(&format!("kept-{i}")))),
                ),
                (op::ACTIVATE, vec![]),
            ],
        );
        let got = items(&c.send(&with_option(kept, bec::UNDO)).await.unwrap());
        assert_eq!(
            got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [SUCCESS, SUCCESS]
        );
        told.created.push(got[0].1.clone().unwrap());
    }
    told
}

/// The `kmip` records of `operation` for `uid` with `outcome`.
fn count(recs: &[Record], operation: &str, uid: &str, outcome: &str) -> usize {
    recs.iter()
        .filter(|r| {
            r.get("event") == Some("kmip")
                && r.get("operation") == Some(operation)
                && r.get("uid") == Some(uid)
                && r.get("outcome") == Some(outcome)
        })
        .count()
}

/// Plain writes from three clients (each also losing a name contest inside shared write
/// groups), Undo batches that fail and that commit from a fourth, and four journal rotations
/// (logrotate's rename and the reopen SIGHUP and `akm reload` do), all at once. Afterwards
/// every key a client was told about exists, every undone key and name does not, each is
/// recorded exactly once with the outcome the client got, and the journal chain verifies
/// across the rotated files with contiguous serials.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_undo_batches_and_rotations_keep_every_answer_durable_and_recorded_once()
{
    const ROUNDS: usize = 12;
    let server = TestServer::start_audited(AuditSetup {
        checkpoint_every: Some(7),
        ..AuditSetup::default()
    })
    .await;
    let journal = server.journal_path();
    let mut tasks = Vec::new();
    for (tag, v) in [V::V1_4, V::V2_1, V::V2_0].into_iter().enumerate() {
        let c = server.client(&format!("writer{tag}"), v).await;
        tasks.push(tokio::spawn(plain_writer(c, tag, ROUNDS)));
    }
    let c = server.client("batcher", V::V2_1).await;
    tasks.push(tokio::spawn(undo_writer(c, ROUNDS)));
    let rotator = {
        let ctx = server.ctx.clone();
        let journal = journal.clone();
        tokio::task::spawn_blocking(move || {
            let mut rotated = Vec::new();
            for n in 1..=4 {
                std::thread::sleep(std::time::Duration::from_millis(40));
                let to = journal.with_extension(format!("log.r{n}"));
                std::fs::rename(&journal, &to).unwrap();
                ctx.audit.reopen().expect("reopen under load");
                rotated.push(to);
            }
            rotated
        })
    };
    let mut told = Told::default();
    for t in tasks {
        let t = t.await.unwrap();
        told.created.extend(t.created);
        told.undone.extend(t.undone);
        told.undone_names.extend(t.undone_names);
        told.contested_won += t.contested_won;
    }
    let mut files: Vec<PathBuf> = rotator.await.unwrap();
    // Names are unique per owner: each writer's first Create of the name wins.
    assert_eq!(told.contested_won, 3, "one Create of the name per owner");

    // What the clients were told is what the store holds.
    let mut admin = server
        .connect(server.client_tls("root", &["admins"]), V::V2_1)
        .await
        .unwrap();
    for u in &told.undone {
        let gone = admin.call(op::GET_ATTRIBUTES, uid(u)).await;
        assert_eq!(
            reason(gone),
            V::V2_1.result_reason(rr::OBJECT_NOT_FOUND),
            "undone {u} exists"
        );
    }
    for name in &told.undone_names {
        let found = admin
            .call(
                op::LOCATE,
                filters(
                    V::V2_1,
                    &[akm::kmip::attributes::Attr::new("Name", self::name(name))],
                ),
            )
            .await
            .unwrap();
        assert!(uids_of(&found).is_empty(), "undone name {name} is taken");
    }
    for u in &told.created {
        admin.call(op::GET_ATTRIBUTES, uid(u)).await.unwrap();
    }
    // Kept until the end: the journal files live in the server's directory.
    let _dir = server.stop().await;

    // The chain verifies across every file, serials run on without a gap or a repeat.
    files.push(journal);
    let report = verify::verify_files(&files, &options()).unwrap();
    assert!(report.fault.is_none(), "{:?}", report.fault);
    assert_eq!(report.duplicates, 0);
    let recs: Vec<Record> = files.iter().flat_map(|f| records(f)).collect();
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.serial().unwrap(), i as u64 + 1, "serial of record {i}");
    }
    let reopens = recs
        .iter()
        .filter(|r| r.get("reason") == Some("reopen"))
        .count();
    assert_eq!(reopens, 4);
    // Each answer is recorded once, as the client was told.
    for u in &told.created {
        assert_eq!(count(&recs, "Create", u, "success"), 1, "Create of {u}");
    }
    for u in &told.undone {
        assert_eq!(
            count(&recs, "Create", u, "undone"),
            1,
            "undone Create of {u}"
        );
        assert_eq!(
            count(&recs, "Create", u, "success"),
            0,
            "undone {u} as success"
        );
    }
    let mut contested: HashMap<&str, usize> = HashMap::new();
    for r in recs
        .iter()
        .filter(|r| r.get("name") == Some("contested") && r.get("operation") == Some("Create"))
    {
        *contested.entry(r.get("outcome").unwrap_or("")).or_default() += 1;
    }
    assert_eq!(contested.get("success"), Some(&3), "{contested:?}");
    assert_eq!(
        contested.get("failure"),
        Some(&(3 * ROUNDS - 3)),
        "{contested:?}"
    );
}

/// The `kmip` records of `operation` by `user`: their outcome and reason.
fn outcomes(recs: &[Record], user: &str, operation: &str) -> Vec<(String, String)> {
    recs.iter()
        .filter(|r| {
            r.get("event") == Some("kmip")
                && r.get("user") == Some(user)
                && r.get("operation") == Some(operation)
        })
        .map(|r| {
            (
                r.get("outcome").unwrap_or("").to_owned(),
                r.get("reason").unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// What the registry must refuse, written out rather than read from the registry: the
/// cryptographic operations at 1.0 and 1.1, Set Attribute and Log before 2.0, Interop on a
/// server without the switch (at every version), an unknown vendor code; akm's vendor
/// operations to a non-administrator (denied, not unknown). Every refusal is answered and
/// recorded under the operation's name, and the ID Placeholder does not let a refused
/// operation through inside a batch.
#[tokio::test]
async fn the_registry_refuses_by_version_switch_and_identity_and_records_every_refusal() {
    let server = TestServer::start_audited(AuditSetup::default()).await;
    let crypto = [
        (op::ENCRYPT, "Encrypt"),
        (op::DECRYPT, "Decrypt"),
        (op::SIGN, "Sign"),
        (op::SIGNATURE_VERIFY, "SignatureVerify"),
        (op::MAC, "MAC"),
        (op::MAC_VERIFY, "MACVerify"),
        (op::HASH, "Hash"),
        (op::RNG_RETRIEVE, "RNGRetrieve"),
    ];
    for v in [V::V1_0, V::V1_1] {
        let mut c = server.client(&format!("old{}", v.minor), v).await;
        for (code, _) in crypto {
            let r = c.call(code, vec![]).await;
            assert_eq!(reason(r), rr::OPERATION_NOT_SUPPORTED, "{code:#x} at {v}");
        }
        // Inside a batch, with the Create's object as the ID Placeholder.
        let key = create_payload(v, &aes_attrs(None));
        let mut got = c
            .batch(&[(op::CREATE, key), (op::ENCRYPT, vec![])])
            .await
            .unwrap();
        assert_eq!(got.len(), 2);
        let encrypt = got.pop().unwrap();
        assert!(got[0].is_ok());
        assert_eq!(
            reason(encrypt),
            rr::OPERATION_NOT_SUPPORTED,
            "Encrypt through a placeholder at {v}"
        );
    }
    let mut v14 = server.client("v14", V::V1_4).await;
    for code in [op::SET_ATTRIBUTE, op::LOG] {
        assert_eq!(
            reason(v14.call(code, vec![]).await),
            rr::OPERATION_NOT_SUPPORTED
        );
    }
    for v in [V::V1_4, V::V2_0, V::V2_1] {
        let mut c = server.client("interop", v).await;
        let r = c.call(op::INTEROP, vec![]).await;
        assert_eq!(reason(r), rr::OPERATION_NOT_SUPPORTED, "Interop at {v}");
        let r = c.call(0x8000_0999, vec![]).await;
        assert_eq!(reason(r), rr::OPERATION_NOT_SUPPORTED, "vendor code at {v}");
    }
    // akm's own vendor operations: refused to a non-administrator, at any version.
    let mut eve = server.client("eve", V::V2_1).await;
    for code in [
        ext::OP_LIST_ACCOUNTS,
        ext::OP_SET_ACCOUNT,
        ext::OP_DELETE_ACCOUNT,
        ext::OP_SET_KEY_POLICY,
        ext::OP_RELOAD_CONFIG,
        ext::OP_RELOAD_TLS,
        akm::kmip::custody::OP_BACKUP,
        akm::kmip::custody::OP_ROTATE_KEK,
    ] {
        let r = eve.call(code, vec![]).await;
        assert_eq!(reason(r), rr::PERMISSION_DENIED, "{code:#x} by eve");
    }
    let journal = server.journal_path();
    let dir = server.stop().await;
    let recs = records(&journal);
    drop(dir);
    let unsupported = ("failure".to_owned(), "OperationNotSupported".to_owned());
    for user in ["old0", "old1"] {
        for (_, name) in crypto {
            let got = outcomes(&recs, user, name);
            let expected = if name == "Encrypt" { 2 } else { 1 };
            assert_eq!(got, vec![unsupported.clone(); expected], "{name} by {user}");
        }
    }
    assert_eq!(
        outcomes(&recs, "v14", "SetAttribute"),
        vec![unsupported.clone(); 1]
    );
    assert_eq!(outcomes(&recs, "v14", "Log"), vec![unsupported.clone(); 1]);
    assert_eq!(
        outcomes(&recs, "interop", "Interop"),
        vec![unsupported.clone(); 3]
    );
    assert_eq!(
        outcomes(&recs, "interop", "0x80000999"),
        vec![unsupported; 3]
    );
    let denied = ("failure".to_owned(), "PermissionDenied".to_owned());
    for name in [
        "x-ListAccounts",
        "x-SetAccount",
        "x-DeleteAccount",
        "x-SetKeyPolicy",
        "x-ReloadConfig",
        "x-ReloadTls",
        "x-Backup",
        "x-RotateKek",
    ] {
        assert_eq!(
            outcomes(&recs, "eve", name),
            vec![denied.clone(); 1],
            "{name}"
        );
    }
}

/// Whether an administration request (List Accounts) on the open connection `c` is allowed;
/// any other answer than Permission Denied fails the test.
fn administers(c: &mut crate::service::Conn) -> bool {
    match c.runtime.block_on(
        c.client
            .call(ext::OP_LIST_ACCOUNTS, ext::list_accounts_payload(true)),
    ) {
        Ok(_) => true,
        Err(e) => {
            assert_eq!(reason(Err(e)), rr::PERMISSION_DENIED);
            false
        }
    }
}

/// Whether a Locate on the open connection `c` is allowed (else Permission Denied).
fn locates(c: &mut crate::service::Conn) -> bool {
    match c.runtime.block_on(c.client.call(op::LOCATE, vec![])) {
        Ok(_) => true,
        Err(e) => {
            assert_eq!(reason(Err(e)), rr::PERMISSION_DENIED);
            false
        }
    }
}

/// A reload changes `[access]` for connections already open, on their very next request, and
/// a refused reload changes nothing at all. Three clients hold connections throughout: the
/// administrator (OU admins), olga (OU ops) and zed (a user record). A reload that promotes
/// ops and disables zed, but also carries a bad `access.default_mode` (or, valid itself, names
/// a server certificate that is not there) is refused whole: the error names the key, nobody
/// gains or loses anything, and zed's record is not written. Made valid, it takes effect on
/// the open connections at once: olga administers, the old administrators do not, zed is
/// refused. Demoted again (by olga's own `akm reload`), olga loses administration on her open
/// connection at once, and zed comes back.
#[test]
fn reloaded_access_applies_to_open_connections_at_once_and_a_refused_reload_changes_nothing() {
    use crate::service::{edit, has, issue, ok, Conn, Service};
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::write_config(dir.path());
    edit(&config, |t| {
        t + "[access]\nadmin_group = \"admins\"\n[access.users.zed]\noperations = [\"all\"]\n"
    });
    let mut service = Service::start(&config, dir.path(), None);
    service.wait_for("READY=1", |m| has(m, "READY=1"));
    let olga = issue(&config, dir.path(), "olga", "ops");
    let zed = issue(&config, dir.path(), "zed", "users");
    let port = service.port;
    let mut root = Conn::open(dir.path(), port, &dir.path().join("certs/admin")).unwrap();
    let mut olga_conn = Conn::open(dir.path(), port, &olga).unwrap();
    let mut zed_conn = Conn::open(dir.path(), port, &zed).unwrap();
    let before = |root: &mut Conn, olga: &mut Conn, zed: &mut Conn| {
        assert!(administers(root), "the administrators lost administration");
        assert!(!administers(olga), "olga administers");
        assert!(locates(zed), "zed was refused");
    };
    before(&mut root, &mut olga_conn, &mut zed_conn);

    let good = std::fs::read_to_string(&config).unwrap();
    let promoted = good
        .replace("admin_group = \"admins\"", "admin_group = \"ops\"")
        .replace(
            "[access.users.zed]\n",
            "[access.users.zed]\nenabled = false\n",
        );
    // A bad enum value beside the changes: SIGHUP and `akm reload` refuse it, naming the key.
    let bad_enum = promoted.replace("[access]\n", "[access]\ndefault_mode = \"everyone\"\n");
    std::fs::write(&config, &bad_enum).unwrap();
    let ready = service.sighup_reload();
    assert!(ready.contains("last reload refused"), "{ready}");
    assert!(ready.contains("access.default_mode"), "{ready}");
    let out = service.akm(None, &["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("access.default_mode"), "{stderr}");
    before(&mut root, &mut olga_conn, &mut zed_conn);
    // A valid file whose server certificate is missing: refused before any of it applies.
    std::fs::write(
        &config,
        promoted.replace("../certs/server.crt", "../certs/gone.crt"),
    )
    .unwrap();
    let out = service.akm(None, &["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`tls.cert`"), "{stderr}");
    before(&mut root, &mut olga_conn, &mut zed_conn);
    let listed = ok(&service.akm(None, &["user", "list", "--json"]));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let zed_record = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "zed")
        .expect("zed's record");
    assert_eq!(zed_record["enabled"], true, "{zed_record}");

    // Valid: in force on the open connections at their next request.
    std::fs::write(&config, &promoted).unwrap();
    let ready = service.sighup_reload();
    assert!(ready.contains("applied access."), "{ready}");
    assert!(administers(&mut olga_conn), "olga was not promoted");
    assert!(
        !administers(&mut root),
        "the old administrators kept administration"
    );
    assert!(!locates(&mut zed_conn), "disabled zed still locates");
    // The old administrators may no longer reload either.
    assert_eq!(service.akm(None, &["reload"]).status.code(), Some(2));

    // Demoted by olga's own reload: her open connection loses administration at once.
    std::fs::write(&config, &good).unwrap();
    ok(&service.akm(Some(&olga), &["reload"]));
    before(&mut root, &mut olga_conn, &mut zed_conn);
    assert!(root.query() && olga_conn.query() && zed_conn.query());
    service.stop();
}

/// One client of the full-disk test: registers `rounds` keys, each carrying ~240 KB of
/// attributes (so a group of them outgrows SQLite's page cache and spills to the WAL while
/// the disk is full), and returns each key's name with whether it was acknowledged.
async fn big_registers(mut c: Client, tag: usize, rounds: usize) -> Vec<(String, bool)> {
    use akm::kmip::attributes::Attr;
    let mut told = Vec::new();
    for i in 0..rounds {
        let key_name = format!("big-{tag}-{i}");
        let mut attrs = vec![Attr::new("Name", name(&key_name))];
        for pad in ["x-pad-a", "x-pad-b", "x-pad-c", "x-pad-d"] {
            let text = format!("{key_name}{pad}").repeat(60_000 / 16);
            attrs.push(Attr::new(pad, Value::TextString(text)));
        }
        let key: Vec<u8> = (0..32u8).map(|b| b ^ (i as u8)).collect();
        let r = c
            .call(op::REGISTER, register_key_payload(c.version, &key, &attrs))
            .await;
        told.push((key_name, r.is_ok()));
    }
    told
}

/// The database's filesystem nearly full while many clients write large objects at once
/// (root needed for the tmpfs; skipped otherwise): some writes fail, maybe in the middle of a
/// group as SQLite spills its cache, and whatever each client was told is what the store
/// holds once space returns: an acknowledged key is there, a refused one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_filling_disk_under_concurrent_large_writes_keeps_every_answer_true() {
    use crate::audit_disk_full::{fill, Tmpfs};
    use akm::kmip::attributes::Attr;
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let Some(_tmpfs) = Tmpfs::mount(&mnt, "6m") else {
        return;
    };
    let dir = tempfile::tempdir_in(&mnt).unwrap();
    let server = TestServer::start_in(
        dir,
        AuditSetup {
            journal: Some(base.path().join("audit.log")),
            ..AuditSetup::default()
        },
    )
    .await;
    // Leave about 1.5 MB: less than a few groups of these writes need.
    let filler = mnt.join("filler");
    fill(&filler);
    let full = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(full.saturating_sub(1_500_000))
        .unwrap();
    let mut tasks = Vec::new();
    for tag in 0..32 {
        let c = server.client(&format!("big{tag}"), V::V1_4).await;
        tasks.push(tokio::spawn(big_registers(c, tag, 4)));
    }
    let mut told = Vec::new();
    for (tag, t) in tasks.into_iter().enumerate() {
        told.push((tag, t.await.unwrap()));
    }
    std::fs::remove_file(&filler).unwrap();
    let refused = told
        .iter()
        .flat_map(|(_, t)| t)
        .filter(|(_, ok)| !ok)
        .count();
    assert!(refused > 0, "the disk never filled up");
    for (tag, t) in &told {
        let mut c = server.client(&format!("big{tag}"), V::V1_4).await;
        for (key_name, ok) in t {
            let found = c
                .call(
                    op::LOCATE,
                    filters(V::V1_4, &[Attr::new("Name", name(key_name))]),
                )
                .await
                .unwrap();
            assert_eq!(
                uids_of(&found).len(),
                usize::from(*ok),
                "{key_name}: acknowledged {ok}"
            );
        }
    }
    server.stop().await;
}

/// On a mirrored pair in rpo-zero mode that refuses on timeout, with the peer down, a reload
/// that changes `[access]` is the first write no peer confirms: its records are committed on
/// this node (and mirrored when the peer returns). The reload must then apply the rest of
/// `[access]` with them, not report itself refused while the new records are already in force
/// and the old settings stay (half applied). Later reloads, while client writes are refused,
/// must still apply (else no `[access]` change or new CRL could be put in force until the
/// peer is back).
#[test]
fn a_reload_whose_records_no_peer_confirms_is_applied_whole() {
    use crate::support::cluster::{Cluster, Options};
    let mut cluster = Cluster::start(Options {
        mirror_extra: "mode = \"rpo-zero\"\nrpo_timeout_ms = 1000\non_timeout = \"refuse\"\n"
            .into(),
        ..Options::nodes(2)
    });
    assert!(cluster.stop(1));
    let node = &cluster.nodes[0];
    let config = node.config();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text + "\n[access]\nhide_existence = true\n[access.users.zed]\noperations = [\"get\"]\n",
    )
    .unwrap();
    let (reloaded, out) = node.akm(&["reload", "--json"]);
    let zed = node
        .accounts()
        .contains_key(&("user".to_owned(), "zed".to_owned()));
    assert!(
        reloaded,
        "reload refused while its records are {}: {out}",
        if zed { "in force" } else { "absent" }
    );
    assert!(zed, "zed's record was not written");
    // Now that client writes are refused for want of a peer, the operator can still reload
    // and change who may do what (a reload writes the declared records every time).
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("[\"get\"]", "[\"locate\"]")).unwrap();
    let (again, out) = node.akm(&["reload", "--json"]);
    assert!(again, "{out}");
    let ops = &node.accounts()[&("user".to_owned(), "zed".to_owned())].1;
    assert_eq!(ops, "locate");
}
