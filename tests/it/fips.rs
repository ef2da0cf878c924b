//! FIPS mode as an operator and an auditor see it, in whichever flavour this test binary was
//! built: the TLS configurations declare FIPS exactly in the FIPS build (rustls's `fips()`,
//! true only with the aws-lc-rs provider over a module in approved mode); Query's Server
//! Information names the module; `[crypto] require_fips = true` stops a non-FIPS `akm serve`
//! before it listens, and a reload that switches it on is refused; and in the FIPS build KEK
//! wrapping is counted by the module's own service indicator as an approved service, while a
//! caller-nonce GCM seal is not. And what the FIPS build refuses leaves nothing changed and
//! says what it is: a refused Encrypt spends none of a key's Usage Limits, Key Wrap under a
//! 192-bit key is refused as not available, and a passphrase-sealed KEK stops it at start.

use crate::cli::write_config;
use crate::support::server::{server_tls, TestServer};
use akm::crypto::backend::{self, FIPS_BUILD};
use akm::kmip::enums::{operation as op, query_function as qf};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv};
use std::process::Command;

#[tokio::test]
async fn tls_is_fips_exactly_in_the_fips_build_and_query_names_the_module() {
    let server = TestServer::start().await;
    assert_eq!(server_tls(&server.ca).fips(), FIPS_BUILD);
    assert_eq!(server.client_tls("alice", &["users"]).fips(), FIPS_BUILD);
    // A real handshake with that client, then the module in Server Information.
    let mut c = server.client("alice", V::V2_1).await;
    let q = c
        .call(
            op::QUERY,
            vec![Ttlv::enumeration(
                Tag::QUERY_FUNCTION,
                qf::QUERY_SERVER_INFORMATION,
            )],
        )
        .await
        .unwrap();
    let name = q
        .child(Tag::SERVER_INFORMATION)
        .and_then(|i| i.child(Tag::SERVER_NAME))
        .and_then(Ttlv::as_text)
        .unwrap()
        .to_owned();
    let module = backend::module();
    assert!(name.contains(&module.describe()), "{name}");
    assert_eq!(name.contains("FIPS approved mode"), FIPS_BUILD, "{name}");
    server.stop().await;
}

#[test]
fn require_fips_stops_a_non_fips_server_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[crypto]\nrequire_fips = true\n");
    std::fs::write(&config, text).unwrap();
    if FIPS_BUILD {
        // The FIPS build meets the requirement and serves.
        let (mut child, port) = crate::cli::serve(&config);
        assert!(port > 0);
        child.kill().unwrap();
        child.wait().unwrap();
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_akm"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("require_fips = true"), "{stderr}");
    assert!(stderr.contains("not the FIPS build"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}

/// `require_fips = true` written into the file of a running server and reloaded (`akm reload`,
/// as SIGHUP does): a binary that is not the FIPS build refuses the reload with the key's name
/// and keeps its previous configuration, rather than serving on under a file that demands FIPS
/// until the next restart; the FIPS build takes it.
#[test]
fn require_fips_switched_on_by_a_reload_is_refused_by_a_non_fips_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let good = std::fs::read_to_string(&config).unwrap();
    let (mut server, port) = crate::cli::serve(&config);
    // The CLI reads a copy without the key; the server's own file gets it.
    let cli_config = config.with_file_name("cli.toml");
    std::fs::write(&cli_config, &good).unwrap();
    std::fs::write(&config, format!("{good}[crypto]\nrequire_fips = true\n")).unwrap();
    let reload = crate::cli::akm(&cli_config, port, &["reload"]);
    let stderr = String::from_utf8_lossy(&reload.stderr).into_owned();
    if FIPS_BUILD {
        assert!(reload.status.success(), "{stderr}");
    } else {
        assert_eq!(reload.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("crypto.require_fips"), "{stderr}");
        assert!(stderr.contains("not the FIPS build"), "{stderr}");
    }
    // Still serving either way.
    crate::cli::json(&crate::cli::akm(
        &cli_config,
        port,
        &["key", "list", "--json"],
    ));
    server.kill().unwrap();
    server.wait().unwrap();
}

/// The module's own FIPS service indicator (AWS-LC's per-thread counter of approved services
/// completed) around one KEK wrap: it advances, so the wrap ran in the module as an approved
/// service. The KEK id probe, a caller-nonce seal, leaves it where it was: the indicator tells
/// the two apart, so the first assertion means something.
#[cfg(feature = "fips")]
#[test]
#[allow(unsafe_code)] // the module's C indicator API has no safe wrapper in aws-lc-rs
fn kek_wrapping_is_an_approved_service_of_the_module() {
    fn approved_services_during(f: impl FnOnce()) -> u64 {
        // SAFETY: both calls only read and bump a thread-local counter inside the module.
        let before = unsafe { aws_lc_fips_sys::FIPS_service_indicator_before_call() };
        f();
        let after = unsafe { aws_lc_fips_sys::FIPS_service_indicator_after_call() };
        after - before
    }
    aws_lc_rs::try_fips_mode().unwrap();
    let kek = akm::crypto::Kek::from_bytes(&[5u8; 32]).unwrap();
    let mut wrapped = None;
    let counted = approved_services_during(|| wrapped = Some(kek.wrap("uid", 1, b"key").unwrap()));
    assert!(counted >= 1, "KEK wrap was not an approved service");
    let wrapped = wrapped.unwrap();
    let opened = approved_services_during(|| {
        assert_eq!(kek.unwrap("uid", 1, &wrapped).unwrap().as_slice(), b"key");
    });
    assert!(opened >= 1, "KEK unwrap was not an approved service");
    let gcm = akm::crypto::backend::gcm::Aes256Gcm::new_from_slice(&[5u8; 32]).unwrap();
    let probe = approved_services_during(|| {
        gcm.id_probe(b"akm-kek-id").unwrap();
    });
    assert_eq!(probe, 0, "a caller-nonce GCM seal counted as approved");
}

/// An Encrypt refused after its key was loaded costs the key nothing: the FIPS build's refusals
/// (here a GCM Encrypt with the client's IV) and a bad parameter in either build (a 5-byte CBC
/// IV) leave the key's Usage Limits as they were, so the two uses a key allows are still there.
/// A Decrypt whose tag does not verify did use the key, and counts: a tag oracle is bounded by
/// the limits like any use.
#[tokio::test]
async fn a_refused_encrypt_spends_none_of_the_keys_usage_limits() {
    use crate::support::kmip::{reason, register_key_payload, uid_of};
    use akm::kmip::attributes::Attr;
    use akm::kmip::enums::{
        block_cipher_mode as bcm, cryptographic_usage_mask as usage, result_reason as rr,
        usage_limits_unit,
    };
    use akm::ttlv::Value;
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let attrs = [
        Attr::new(
            "Cryptographic Usage Mask",
            Value::Integer(usage::ENCRYPT | usage::DECRYPT),
        ),
        Attr::new("Activation Date", Value::DateTime(now - 3600)),
        Attr::new(
            "Usage Limits",
            Value::Structure(vec![
                Ttlv::long(Tag::USAGE_LIMITS_TOTAL, 2),
                Ttlv::enumeration(Tag::USAGE_LIMITS_UNIT, usage_limits_unit::OBJECT),
            ]),
        ),
    ];
    let register = register_key_payload(V::V2_1, &[7u8; 32], &attrs);
    let key = uid_of(&c.call(op::REGISTER, register).await.unwrap());
    let encrypt = |mode: u32, iv: Option<&[u8]>| {
        let mut p = vec![
            Ttlv::text(Tag::UNIQUE_IDENTIFIER, key.clone()),
            Ttlv::structure(
                Tag::CRYPTOGRAPHIC_PARAMETERS,
                vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, mode)],
            ),
            Ttlv::bytes(Tag::DATA, b"sixteen bytes!!!".to_vec()),
        ];
        if let Some(iv) = iv {
            p.push(Ttlv::bytes(Tag::IV_COUNTER_NONCE, iv.to_vec()));
        }
        p
    };
    let bad_iv = c
        .call(op::ENCRYPT, encrypt(bcm::CBC, Some(&[1u8; 5])))
        .await;
    assert_eq!(reason(bad_iv), rr::INVALID_FIELD);
    if FIPS_BUILD {
        let client_iv = c
            .call(op::ENCRYPT, encrypt(bcm::GCM, Some(&[1u8; 12])))
            .await;
        assert_eq!(reason(client_iv), rr::FEATURE_NOT_SUPPORTED);
    }
    let sealed = c
        .call(op::ENCRYPT, encrypt(bcm::GCM, None))
        .await
        .expect("the key's uses were spent by refused requests");
    let field = |tag| sealed.child(tag).and_then(Ttlv::as_bytes).unwrap().to_vec();
    let mut tag = field(Tag::AUTHENTICATED_ENCRYPTION_TAG);
    tag[0] ^= 1;
    let forged = vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, key.clone()),
        Ttlv::structure(
            Tag::CRYPTOGRAPHIC_PARAMETERS,
            vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, bcm::GCM)],
        ),
        Ttlv::bytes(Tag::DATA, field(Tag::DATA)),
        Ttlv::bytes(Tag::IV_COUNTER_NONCE, field(Tag::IV_COUNTER_NONCE)),
        Ttlv::bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, tag),
    ];
    let forged = c.call(op::DECRYPT, forged).await;
    assert_eq!(reason(forged), rr::CRYPTOGRAPHIC_FAILURE);
    let spent = c.call(op::ENCRYPT, encrypt(bcm::GCM, None)).await;
    assert_eq!(reason(spent), rr::PERMISSION_DENIED);
    server.stop().await;
}

/// Get with a Key Wrapping Specification under a 192-bit AES wrapping key, in both KW and KWP:
/// the FIPS build refuses it as what it is (Feature Not Supported, "not available in the FIPS
/// build", the 192-bit key named), not as a wrapping key of the wrong size; the default build
/// wraps.
#[tokio::test]
async fn key_wrap_under_a_192_bit_key_is_refused_as_such_in_the_fips_build() {
    use crate::support::kmip::{aes_attrs, create_payload, register_key_payload, uid_of};
    use akm::client::ClientError;
    use akm::kmip::attributes::Attr;
    use akm::kmip::enums::{
        block_cipher_mode as bcm, cryptographic_usage_mask as usage, result_reason as rr,
        wrapping_method,
    };
    use akm::ttlv::Value;
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let kek_attrs = [
        Attr::new("Cryptographic Usage Mask", Value::Integer(usage::WRAP_KEY)),
        Attr::new("Activation Date", Value::DateTime(now - 3600)),
    ];
    let register = register_key_payload(V::V2_1, &[3u8; 24], &kek_attrs);
    let kek = uid_of(&c.call(op::REGISTER, register).await.unwrap());
    let create = create_payload(V::V2_1, &aes_attrs(None));
    let key = uid_of(&c.call(op::CREATE, create).await.unwrap());
    for mode in [bcm::NISTKEYWRAP, bcm::AESKEYWRAPPADDING] {
        let spec = Ttlv::structure(
            Tag::KEY_WRAPPING_SPECIFICATION,
            vec![
                Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
                Ttlv::structure(
                    Tag::ENCRYPTION_KEY_INFORMATION,
                    vec![
                        Ttlv::text(Tag::UNIQUE_IDENTIFIER, kek.clone()),
                        Ttlv::structure(
                            Tag::CRYPTOGRAPHIC_PARAMETERS,
                            vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, mode)],
                        ),
                    ],
                ),
            ],
        );
        let got = c
            .call(
                op::GET,
                vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, key.clone()), spec],
            )
            .await;
        match got {
            Err(ClientError::Failed { reason, message }) if FIPS_BUILD => {
                assert_eq!(reason, rr::FEATURE_NOT_SUPPORTED, "{message}");
                assert!(message.contains("FIPS build"), "{message}");
                assert!(message.contains("192-bit"), "{message}");
            }
            Ok(_) if !FIPS_BUILD => {}
            other => panic!("mode {mode:#x}: {other:?}"),
        }
    }
    server.stop().await;
}

/// A node whose KEK is sealed with a passphrase: the FIPS build cannot open one (Argon2id is
/// not an approved KDF), so it refuses to start and says why, rather than start sealed for
/// good and refuse every unseal; the default build starts sealed, waiting for the passphrase.
#[test]
fn a_passphrase_sealed_kek_stops_the_fips_build_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut first, _) = crate::cli::serve(&config);
    first.kill().unwrap();
    first.wait().unwrap();
    let data = dir.path().join("data");
    std::fs::remove_file(data.join("kek.key")).unwrap();
    let sealed = format!(
        "akm-sealed-kek v1\nkek-id 0123456789abcdef\nscheme passphrase\n\
         argon2id m=65536 t=3 p=1\nsalt {}\nnonce {}\nciphertext {}\n",
        "00".repeat(16),
        "11".repeat(12),
        "22".repeat(48)
    );
    akm::secret_file::write_new(&data.join("kek.sealed"), sealed.as_bytes()).unwrap();
    if !FIPS_BUILD {
        let (mut server, port) = crate::cli::serve(&config);
        assert!(port > 0);
        server.kill().unwrap();
        server.wait().unwrap();
        return;
    }
    let stderr = refused_at_start(&config);
    assert!(stderr.contains("sealed with a passphrase"), "{stderr}");
    assert!(
        stderr.contains("not available in the FIPS build"),
        "{stderr}"
    );
}

/// Runs `akm serve` on `config`, which must refuse to start (exit code 1) within a minute
/// without listening; its stderr. A server that does start is killed and the test fails.
fn refused_at_start(config: &std::path::Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_akm"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("akm serve started where it must refuse to");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    stderr
}

/// A backup schedule on the FIPS build, which writes no backup: refused at start with the keys
/// named, rather than a server that snapshots its store and fails every turn; the default
/// build starts with it.
#[test]
fn a_backup_schedule_stops_the_fips_build_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}[backup]\ninterval_secs = 3600\n")).unwrap();
    if !FIPS_BUILD {
        let (mut server, port) = crate::cli::serve(&config);
        assert!(port > 0);
        server.kill().unwrap();
        server.wait().unwrap();
        return;
    }
    let stderr = refused_at_start(&config);
    assert!(
        stderr.contains("[backup] schedule / interval_secs"),
        "{stderr}"
    );
    assert!(
        stderr.contains("not available in the FIPS build"),
        "{stderr}"
    );
}

/// Derive Key below the module's PBKDF2 floor (a 4-byte Salt, 1000 iterations) and HKDF without
/// Derivation Data (its info): the FIPS build refuses both as not available (the module would
/// run them as non-approved services); the default build derives. HKDF
/// without a Salt runs in both (the salt is then HashLen zeros, which the module approves).
#[tokio::test]
async fn derivations_below_the_modules_approved_parameters_are_refused_in_the_fips_build() {
    use crate::support::kmip::{register_key_payload, uid_of};
    use akm::client::ClientError;
    use akm::kmip::attributes::Attr;
    use akm::kmip::enums::{
        cryptographic_algorithm as alg, cryptographic_usage_mask as usage, derivation_method as dm,
        object_type as ot, result_reason as rr,
    };
    use akm::ttlv::Value;
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let base_attrs = [Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::DERIVE_KEY),
    )];
    let register = register_key_payload(V::V2_1, &[0x21; 32], &base_attrs);
    let base = uid_of(&c.call(op::REGISTER, register).await.unwrap());
    c.call(
        op::ACTIVATE,
        vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, base.clone())],
    )
    .await
    .unwrap();
    let derive = |method: u32, params: Vec<Ttlv>| {
        let attrs = [
            Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
            Attr::new("Cryptographic Length", Value::Integer(128)),
            Attr::new("Cryptographic Usage Mask", Value::Integer(usage::ENCRYPT)),
        ];
        vec![
            Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
            Ttlv::text(Tag::UNIQUE_IDENTIFIER, base.clone()),
            Ttlv::enumeration(Tag::DERIVATION_METHOD, method),
            Ttlv::structure(Tag::DERIVATION_PARAMETERS, params),
            crate::support::kmip::template(V::V2_1, &attrs),
        ]
    };
    let short_salt = vec![
        Ttlv::bytes(Tag::SALT, b"NaCl".to_vec()),
        Ttlv::integer(Tag::ITERATION_COUNT, 1000),
    ];
    let no_info = vec![Ttlv::bytes(Tag::SALT, vec![9u8; 16])];
    for refused in [derive(dm::PBKDF2, short_salt), derive(dm::HKDF, no_info)] {
        match c.call(op::DERIVE_KEY, refused).await {
            Err(ClientError::Failed { reason, message }) if FIPS_BUILD => {
                assert_eq!(reason, rr::FEATURE_NOT_SUPPORTED, "{message}");
                assert!(message.contains("FIPS build"), "{message}");
            }
            Ok(_) if !FIPS_BUILD => {}
            other => panic!("{other:?}"),
        }
    }
    let no_salt = vec![Ttlv::bytes(Tag::DERIVATION_DATA, b"info".to_vec())];
    c.call(op::DERIVE_KEY, derive(dm::HKDF, no_salt))
        .await
        .unwrap();
    server.stop().await;
}
