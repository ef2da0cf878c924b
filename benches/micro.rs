//! Criterion micro-benchmarks of the per-request hot paths: TTLV decode and encode of typical
//! requests and responses, key wrap and unwrap under the KEK, the access policy decision, and
//! the store's read path and group-commit write path (one writer, and 16 concurrent writers
//! sharing commits). `cargo bench --bench micro` measures; `cargo test --all-targets` runs
//! each benchmark once as a smoke test.

use akm::client::request;
use akm::crypto::Kek;
use akm::identity::Principal;
use akm::kmip::attributes::{self, encode_attributes, Attr};
use akm::kmip::enums::{cryptographic_algorithm as alg, object_type as ot, operation as op};
use akm::kmip::{encode_response, ProtocolVersion, ResponseItem};
use akm::policy::{self, AccessMode, Accounts, KeyPolicy};
use akm::store::{ObjectRow, Store};
use akm::ttlv::{decode, Limits, Tag, Ttlv, Value};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const UID: &str = "4b1c1c1e-7e0f-4a53-9a7b-5a6d1f2e3c4d";

/// A Get request at 1.4.
fn get_request() -> Ttlv {
    request(
        ProtocolVersion::V1_4,
        &[(op::GET, vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, UID)])],
    )
}

/// A Create request for an AES-256 key with a name, at 1.4.
fn create_request() -> Ttlv {
    let name = Value::Structure(vec![
        Ttlv::text(Tag::NAME_VALUE, "db-volume-key-0001"),
        Ttlv::enumeration(Tag::NAME_TYPE, 1),
    ]);
    let attrs = [
        Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
        Attr::new("Cryptographic Length", Value::Integer(256)),
        Attr::new("Cryptographic Usage Mask", Value::Integer(0x0C)),
        Attr::new("Name", name),
    ];
    let template = Ttlv::structure(
        Tag::TEMPLATE_ATTRIBUTE,
        attrs.iter().map(|a| attributes::to_v1(a, None)).collect(),
    );
    request(
        ProtocolVersion::V1_4,
        &[(
            op::CREATE,
            vec![
                Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
                template,
            ],
        )],
    )
}

/// A Get response carrying a 256-bit key and its attributes, at 1.4.
fn get_response() -> Ttlv {
    let attrs = vec![
        Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
        Attr::new("Cryptographic Length", Value::Integer(256)),
        Attr::new("State", Value::Enumeration(2)),
    ];
    let mut payload = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, UID),
    ];
    payload.extend(encode_attributes(&attrs, ProtocolVersion::V1_4));
    payload.push(Ttlv::bytes(Tag::KEY_MATERIAL, vec![7u8; 32]));
    encode_response(
        ProtocolVersion::V1_4,
        1_700_000_000,
        &[ResponseItem {
            operation: Some(op::GET),
            batch_id: None,
            result: Ok(Some(Ttlv::structure(Tag::RESPONSE_PAYLOAD, payload))),
            undone: false,
        }],
    )
}

fn codec(c: &mut Criterion) {
    let limits = Limits::default();
    for (name, msg) in [
        ("get request", get_request()),
        ("create request", create_request()),
        ("get response", get_response()),
    ] {
        let bytes = msg.encode();
        c.bench_function(&format!("ttlv encode {name} ({} B)", bytes.len()), |b| {
            b.iter(|| black_box(&msg).encode())
        });
        c.bench_function(&format!("ttlv decode {name} ({} B)", bytes.len()), |b| {
            b.iter(|| decode(black_box(&bytes), &limits).unwrap())
        });
    }
}

fn keywrap(c: &mut Criterion) {
    let kek = Kek::from_bytes(&[0x11u8; 32]).unwrap();
    let material = [0x22u8; 32];
    let wrapped = kek.wrap(UID, 1, &material).unwrap();
    c.bench_function("kek wrap 256-bit key", |b| {
        b.iter(|| kek.wrap(UID, 1, black_box(&material)).unwrap())
    });
    c.bench_function("kek unwrap 256-bit key", |b| {
        b.iter(|| kek.unwrap(UID, 1, black_box(&wrapped)).unwrap())
    });
}

fn policy_decision(c: &mut Criterion) {
    let who = Principal {
        cn: "app1".into(),
        ous: vec!["db".into(), "ops".into()],
        serial: "0a1b".into(),
        fingerprint: "00".repeat(32),
        subject: "OU=db, OU=ops, CN=app1".into(),
    };
    let settings = policy::Settings::default();
    let accounts = Accounts::default();
    let key = KeyPolicy {
        owner: "someone-else".into(),
        group: Some("db".into()),
        mode: AccessMode::parse("group").unwrap(),
    };
    c.bench_function("policy decide (group key, unknown-principal grant)", |b| {
        b.iter(|| policy::decide(black_box(&who), &accounts, &settings, Some(&key), op::GET))
    });
}

fn row(i: usize) -> ObjectRow {
    ObjectRow {
        uid: format!("bench-{i:08}"),
        object_type: ot::SYMMETRIC_KEY,
        state: 1,
        owner: "app1".into(),
        owner_group: Some("db".into()),
        access_mode: "user".into(),
        algorithm: Some(alg::AES),
        length: Some(256),
        initial_date: 1_700_000_000,
        activation_date: None,
        deactivation_date: None,
        last_change: 1_700_000_000,
        key_version: 1,
        names: vec![format!("key-{i:08}")],
        groups: vec![],
        attributes: vec![0u8; 200],
        replaces: None,
    }
}

/// Inserts `rows` rows starting at `next`, each its own `Store::write`, from `writers` threads
/// at once (so the writer thread can group their commits); returns the elapsed time.
fn insert_concurrently(
    store: &Arc<Store>,
    kek: &Arc<Kek>,
    next: &mut usize,
    rows: u64,
    writers: usize,
) -> Duration {
    let per_writer = (rows as usize).div_ceil(writers);
    let base = *next;
    *next += per_writer * writers;
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            let (store, kek) = (store.clone(), kek.clone());
            s.spawn(move || {
                for i in 0..per_writer {
                    let r = row(base + w * per_writer + i);
                    let material = kek.wrap(&r.uid, 1, &[0x33u8; 32]).unwrap();
                    store
                        .write(move |tx| tx.insert(&r, Some(&material)))
                        .unwrap();
                }
            });
        }
    });
    start.elapsed()
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("akm.db")).unwrap());
    let kek = Arc::new(Kek::from_bytes(&[0x11u8; 32]).unwrap());
    let mut next = 0usize;
    insert_concurrently(&store, &kek, &mut next, 1000, 16);
    let mut i = 0usize;
    c.bench_function("store get by uid (1,000 keys)", |b| {
        b.iter(|| {
            i = (i + 1) % 1000;
            store.get(&format!("bench-{i:08}")).unwrap().unwrap()
        })
    });
    let mut group = c.benchmark_group("store durable insert");
    group.sample_size(10);
    for writers in [1usize, 16] {
        group.bench_function(format!("{writers} concurrent writer(s), per insert"), |b| {
            b.iter_custom(|iters| insert_concurrently(&store, &kek, &mut next, iters, writers))
        });
    }
    group.finish();
}

criterion_group!(benches, codec, keywrap, policy_decision, store);
criterion_main!(benches);
