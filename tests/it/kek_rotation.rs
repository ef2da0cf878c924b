//! KEK rotation through the `akm` binary: a rotation interrupted after one batch survives a
//! restart (both KEKs are on disk; every key reads), then `akm kek rotate` resumes and
//! finishes under a concurrent Create/Get load with no failed request; every key reads back
//! with the same bytes, the retired KEK is out of use (kept only in the archive), and after
//! another restart everything still reads. The audit journal records start and finish.

use crate::cli::{akm, json, serve};
use crate::support::kmip::{aes_attrs, create_key, create_payload, key_bytes, uid};
use akm::client::Client;
use akm::kmip::custody as ext;
use akm::kmip::enums::operation as op;
use akm::kmip::ProtocolVersion;
use akm::ttlv::Ttlv;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

fn stop(mut server: Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(server.wait().unwrap().success());
}

async fn connect(dir: &Path, port: u16) -> Client {
    let certs = dir.join("certs");
    let tls = akm::tls::client_config(
        &certs.join("admin.crt"),
        &certs.join("admin.key"),
        &certs.join("ca.crt"),
    )
    .unwrap();
    Client::connect(&format!("localhost:{port}"), tls, ProtocolVersion::V1_4)
        .await
        .unwrap()
}

async fn check_all(c: &mut Client, keys: &[(String, Vec<u8>)]) {
    for (u, bytes) in keys {
        let got = key_bytes(&c.call(op::GET, uid(u)).await.unwrap());
        assert_eq!(&got, bytes, "key {u}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kek_rotation_under_load_interrupted_and_resumed_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let config = crate::cli::write_config(&root);
    let (server, port) = serve(&config);
    let mut c = connect(&root, port).await;
    let mut keys = Vec::new();
    for _ in 0..150 {
        let u = create_key(&mut c, None).await;
        let b = key_bytes(&c.call(op::GET, uid(&u)).await.unwrap());
        keys.push((u, b));
    }
    let old_kek = std::fs::read(root.join("data/kek.key")).unwrap();

    // One batch of 20, then the server stops: the rotation is half done.
    let step = c
        .call(
            ext::OP_ROTATE_KEK,
            vec![Ttlv::integer(ext::TAG_BATCH_LIMIT, 20)],
        )
        .await
        .unwrap();
    let step = akm::cli::custody::rotate_from(&step).unwrap();
    assert_eq!(step["rewrapped"], 20);
    assert_eq!(step["remaining"], 130);
    let new_id = step["kek_id"].as_str().unwrap().to_owned();
    assert!(root.join("data/kek.retired").exists());
    assert_ne!(std::fs::read(root.join("data/kek.key")).unwrap(), old_kek);
    let bad = c
        .call(
            ext::OP_ROTATE_KEK,
            vec![Ttlv::integer(ext::TAG_BATCH_LIMIT, 0)],
        )
        .await;
    assert!(bad.is_err(), "a zero batch is refused");
    drop(c);
    stop(server);

    let (server, port) = serve(&config);
    let mut c = connect(&root, port).await;
    check_all(&mut c, &keys).await;
    let status = json(&akm(&config, port, &["kek", "status", "--json"]));
    assert_eq!(status["kek_id"], new_id.as_str());

    // Resume under load.
    let done = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..3usize {
        let (done, root, started) = (done.clone(), root.clone(), started.clone());
        let known: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        workers.push(tokio::spawn(async move {
            let mut c = connect(&root, port).await;
            let (mut failures, mut ok, mut i) = (Vec::new(), 0usize, w);
            while !done.load(Ordering::Relaxed) {
                started.fetch_add(1, Ordering::Relaxed);
                let v = c.version;
                let created = c
                    .call(op::CREATE, create_payload(v, &aes_attrs(None)))
                    .await;
                let got = c.call(op::GET, uid(&known[i % known.len()])).await;
                i += 7;
                for r in [created, got] {
                    match r {
                        Ok(_) => ok += 1,
                        Err(e) => failures.push(e.to_string()),
                    }
                }
            }
            (ok, failures)
        }));
    }
    // The rotation starts once the load runs, and runs in small batches beside it.
    while started.load(Ordering::Relaxed) < 10 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (cfg, p) = (config.clone(), port);
    let rotated = tokio::task::spawn_blocking(move || {
        akm(&cfg, p, &["kek", "rotate", "--batch", "5", "--json"])
    })
    .await
    .unwrap();
    done.store(true, Ordering::Relaxed);
    let mut total_ok = 0;
    for w in workers {
        let (ok, failures) = w.await.unwrap();
        assert!(
            failures.is_empty(),
            "requests failed during rotation: {failures:?}"
        );
        total_ok += ok;
    }
    let progress = String::from_utf8_lossy(&rotated.stderr).to_string();
    let out = json(&rotated);
    assert_eq!(out["remaining"], 0);
    assert_eq!(out["kek_id"], new_id.as_str());
    assert_eq!(out["retired"].as_array().unwrap().len(), 1, "{out}");
    assert!(progress.contains("remaining"), "{progress}");
    eprintln!("{total_ok} requests succeeded during the rotation; {progress}");
    assert!(
        !root.join("data/kek.retired").exists(),
        "retired KEK left on disk"
    );
    check_all(&mut c, &keys).await;
    drop(c);
    stop(server);

    // The old KEK is gone and nothing needed it.
    let (server, port) = serve(&config);
    let mut c = connect(&root, port).await;
    check_all(&mut c, &keys).await;
    drop(c);
    stop(server);
    let journal = std::fs::read_to_string(root.join("data/audit/audit.log")).unwrap();
    assert!(
        journal.contains("kek\\x20rotation\\x20started"),
        "no start record"
    );
    assert!(
        journal.contains("kek\\x20rotation\\x20finished"),
        "no finish record"
    );
}
