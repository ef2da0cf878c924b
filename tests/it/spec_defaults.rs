//! Issue 18's specification bugs, against the real server over TLS: State follows the
//! Activation and Deactivation Dates (Get Attributes, Locate by State, operations) whether the
//! date was set at creation or later, and only the owner moves it; a critical Message
//! Extension rejects the whole message and a non-critical one is ignored; a Compromised key
//! can be re-keyed (a destroyed one cannot); PBKDF2 without Cryptographic Parameters is
//! PBKDF2-HMAC-SHA-1; SHA-1 where SP 800-131A Rev. 2 accepts it (hashing, HMAC, derivation,
//! signature verification) but never to sign; the Usage Limits Count from creation; and a
//! 168-bit Triple-DES key refused as Triple-DES.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::{Client, ClientError};
use akm::kmip::attributes::{self, Attr};
use akm::kmip::enums::{
    cryptographic_algorithm as alg, cryptographic_usage_mask as usage, derivation_method as dm,
    hashing_algorithm as ha, key_format_type as kft, object_type as ot, operation as op,
    padding_method as pad, result_reason as rr, revocation_reason_code as rrc, state,
    usage_limits_unit, validity_indicator,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

/// The Result Reason of a failed call, checked where the version carries it: 1.x has no
/// Wrong Key Lifecycle State, Object Destroyed or Unsupported Cryptographic Parameters, and
/// akm answers those with their nearest 1.x reason.
fn failed_with(v: V, r: Result<Ttlv, ClientError>, reason_2x: u32) {
    let got = reason(r);
    if v.is_v2() {
        assert_eq!(got, reason_2x);
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// AES-256 attributes with Encrypt and Decrypt, plus `extra`.
fn aes_with(extra: &[Attr]) -> Vec<Attr> {
    let mut a = aes_attrs(None);
    a.extend_from_slice(extra);
    a
}

async fn create_with(c: &mut Client, extra: &[Attr]) -> String {
    let v = c.version;
    uid_of(
        &c.call(op::CREATE, create_payload(v, &aes_with(extra)))
            .await
            .unwrap(),
    )
}

fn date(name: &str, at: i64) -> Attr {
    Attr::new(name, Value::DateTime(at))
}

/// Add Attribute payload in the version's encoding.
fn add_attribute(v: V, u: &str, a: &Attr) -> Vec<Ttlv> {
    let mut p = uid(u);
    if v.is_v2() {
        p.push(Ttlv::structure(
            Tag::NEW_ATTRIBUTE,
            vec![attributes::to_v2(a)],
        ));
    } else {
        p.push(attributes::to_v1(a, None));
    }
    p
}

/// Modify Attribute payload (first instance) in the version's encoding.
fn modify_attribute(v: V, u: &str, a: &Attr) -> Vec<Ttlv> {
    let mut p = uid(u);
    if v.is_v2() {
        p.push(Ttlv::structure(
            Tag::NEW_ATTRIBUTE,
            vec![attributes::to_v2(a)],
        ));
    } else {
        p.push(attributes::to_v1(a, Some(0)));
    }
    p
}

async fn locate_by_state(c: &mut Client, s: u32) -> Vec<String> {
    let v = c.version;
    let f = filters(v, &[Attr::new("State", Value::Enumeration(s))]);
    uids_of(&c.call(op::LOCATE, f).await.unwrap())
}

fn ecb() -> Ttlv {
    Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![Ttlv::enumeration(
            Tag::BLOCK_CIPHER_MODE,
            akm::kmip::enums::block_cipher_mode::ECB,
        )],
    )
}

fn encrypt(u: &str) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(ecb());
    p.push(Ttlv::bytes(Tag::DATA, [0u8; 16]));
    p
}

#[tokio::test]
async fn state_follows_the_activation_and_deactivation_dates() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", v).await;
        // Activation Date added later, at now: Active at once, everywhere.
        let later = create_with(&mut c, &[]).await;
        assert_eq!(state_of(&mut c, &later).await, state::PRE_ACTIVE);
        // Another user cannot move the State by setting the date.
        let mut bob = server.client("bob", v).await;
        assert!(bob
            .call(
                op::ADD_ATTRIBUTE,
                add_attribute(v, &later, &date("Activation Date", now()))
            )
            .await
            .is_err());
        assert_eq!(state_of(&mut c, &later).await, state::PRE_ACTIVE);
        c.call(
            op::ADD_ATTRIBUTE,
            add_attribute(v, &later, &date("Activation Date", now())),
        )
        .await
        .unwrap();
        assert_eq!(state_of(&mut c, &later).await, state::ACTIVE);
        assert!(locate_by_state(&mut c, state::ACTIVE)
            .await
            .contains(&later));
        assert!(!locate_by_state(&mut c, state::PRE_ACTIVE)
            .await
            .contains(&later));
        c.call(op::ENCRYPT, encrypt(&later)).await.unwrap();

        // Deactivation Date modified to now: Deactivated, still decrypts, never encrypts.
        c.call(
            op::ADD_ATTRIBUTE,
            add_attribute(v, &later, &date("Deactivation Date", now() + 3600)),
        )
        .await
        .unwrap();
        c.call(
            op::MODIFY_ATTRIBUTE,
            modify_attribute(v, &later, &date("Deactivation Date", now())),
        )
        .await
        .unwrap();
        assert_eq!(state_of(&mut c, &later).await, state::DEACTIVATED);
        failed_with(
            v,
            c.call(op::ENCRYPT, encrypt(&later)).await,
            rr::WRONG_KEY_LIFECYCLE_STATE,
        );

        // Dates given at creation that pass while nobody writes the key: the State read
        // back, Locate by State and the operations all follow them.
        let t = now();
        let expiring = create_with(
            &mut c,
            &[
                date("Activation Date", t - 60),
                date("Deactivation Date", t + 2),
            ],
        )
        .await;
        let pending = create_with(&mut c, &[date("Activation Date", t + 2)]).await;
        assert_eq!(state_of(&mut c, &expiring).await, state::ACTIVE);
        assert_eq!(state_of(&mut c, &pending).await, state::PRE_ACTIVE);
        tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
        // The test server closes idle connections quickly: connect again.
        let mut c = server.client("alice", v).await;
        let mut bob = server.client("bob", v).await;
        assert_eq!(state_of(&mut c, &expiring).await, state::DEACTIVATED);
        assert_eq!(state_of(&mut c, &pending).await, state::ACTIVE);
        let deactivated = locate_by_state(&mut c, state::DEACTIVATED).await;
        assert!(deactivated.contains(&expiring) && deactivated.contains(&later));
        let active = locate_by_state(&mut c, state::ACTIVE).await;
        assert!(active.contains(&pending) && !active.contains(&expiring));
        assert!(!locate_by_state(&mut c, state::PRE_ACTIVE)
            .await
            .contains(&pending));
        failed_with(
            v,
            c.call(op::ENCRYPT, encrypt(&expiring)).await,
            rr::WRONG_KEY_LIFECYCLE_STATE,
        );
        c.call(op::ENCRYPT, encrypt(&pending)).await.unwrap();
        // bob sees none of alice's keys by State.
        assert!(!locate_by_state(&mut bob, state::ACTIVE)
            .await
            .contains(&pending));
    }
    server.stop().await;
}

/// A request of `items` whose item `marked` carries a Message Extension.
fn with_extension(v: V, items: &[(u32, Vec<Ttlv>)], marked: usize, critical: bool) -> Ttlv {
    let mut msg = akm::client::request(v, items);
    let Value::Structure(children) = &mut msg.value else {
        unreachable!()
    };
    let item = children
        .iter_mut()
        .filter(|c| c.tag == Tag::BATCH_ITEM)
        .nth(marked)
        .unwrap();
    let Value::Structure(fields) = &mut item.value else {
        unreachable!()
    };
    fields.push(Ttlv::structure(
        Tag::MESSAGE_EXTENSION,
        vec![
            Ttlv::text(Tag::VENDOR_IDENTIFICATION, "ACME_KMS"),
            Ttlv::boolean(Tag::CRITICALITY_INDICATOR, critical),
            Ttlv::structure(Tag::VENDOR_EXTENSION, vec![]),
        ],
    ));
    msg
}

#[tokio::test]
async fn a_critical_message_extension_rejects_the_whole_message() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", v).await;
        let named = |n: &str| (op::CREATE, create_payload(v, &aes_attrs(Some(n))));
        let tag = if v.is_v2() { "21" } else { "14" };
        let (a, b) = (format!("ext-a-{tag}"), format!("ext-b-{tag}"));
        // Critical on the second item: neither item runs, both answer Feature Not Supported.
        let msg = with_extension(v, &[named(&a), named(&b)], 1, true);
        let items = akm::client::response_items(&c.send(&msg).await.unwrap()).unwrap();
        assert_eq!(items.len(), 2);
        for item in items {
            match item {
                Err(ClientError::Failed { reason, .. }) => {
                    assert_eq!(reason, rr::FEATURE_NOT_SUPPORTED)
                }
                other => panic!("{other:?}"),
            }
        }
        for n in [&a, &b] {
            let f = filters(v, &[Attr::new("Name", name(n))]);
            assert!(uids_of(&c.call(op::LOCATE, f).await.unwrap()).is_empty());
        }
        // Non-critical: ignored, the message runs.
        let msg = with_extension(v, &[named(&a), named(&b)], 0, false);
        let items = akm::client::response_items(&c.send(&msg).await.unwrap()).unwrap();
        assert!(items.iter().all(Result::is_ok), "{items:?}");
    }
    server.stop().await;
}

fn revoke(u: &str, code: u32) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(Ttlv::structure(
        Tag::REVOCATION_REASON,
        vec![Ttlv::enumeration(Tag::REVOCATION_REASON_CODE, code)],
    ));
    p
}

#[tokio::test]
async fn a_compromised_key_can_be_rekeyed_and_a_destroyed_one_cannot() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", v).await;
        let old = create_with(&mut c, &[date("Activation Date", now() - 60)]).await;
        c.call(op::REVOKE, revoke(&old, rrc::KEY_COMPROMISE))
            .await
            .unwrap();
        assert_eq!(state_of(&mut c, &old).await, state::COMPROMISED);
        // Another user may not re-key it.
        let mut bob = server.client("bob", v).await;
        assert!(bob.call(op::RE_KEY, uid(&old)).await.is_err());
        let new = uid_of(&c.call(op::RE_KEY, uid(&old)).await.unwrap());
        // The replacement's State follows its dates (copied: active a minute ago), and it
        // carries none of the old key's compromise.
        assert_eq!(state_of(&mut c, &new).await, state::ACTIVE);
        assert!(get_attrs(&mut c, &new, &["Compromise Date"])
            .await
            .is_empty());
        c.call(op::ENCRYPT, encrypt(&new)).await.unwrap();
        // With an Offset, the new key is Pre-Active until its Activation Date.
        let other = create_with(&mut c, &[date("Activation Date", now() - 60)]).await;
        c.call(op::REVOKE, revoke(&other, rrc::KEY_COMPROMISE))
            .await
            .unwrap();
        let mut p = uid(&other);
        p.push(Ttlv::interval(Tag::OFFSET, 3600));
        let offset = uid_of(&c.call(op::RE_KEY, p).await.unwrap());
        assert_eq!(state_of(&mut c, &offset).await, state::PRE_ACTIVE);
        // Destroyed (Compromised): no key value left to replace.
        let gone = create_with(&mut c, &[]).await;
        c.call(op::REVOKE, revoke(&gone, rrc::KEY_COMPROMISE))
            .await
            .unwrap();
        c.call(op::DESTROY, uid(&gone)).await.unwrap();
        failed_with(
            v,
            c.call(op::RE_KEY, uid(&gone)).await,
            rr::OBJECT_DESTROYED,
        );
    }
    server.stop().await;
}

const PASSWORD: [u8; 32] = [0x21; 32];

async fn derivation_base(c: &mut Client) -> String {
    let attrs = vec![Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::DERIVE_KEY),
    )];
    let u = uid_of(
        &c.call(
            op::REGISTER,
            register_key_payload(c.version, &PASSWORD, &attrs),
        )
        .await
        .unwrap(),
    );
    c.call(op::ACTIVATE, uid(&u)).await.unwrap();
    u
}

fn derive_payload(v: V, base: &str, method: u32, params: Vec<Ttlv>, bits: i32) -> Vec<Ttlv> {
    let attrs = vec![
        Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
        Attr::new("Cryptographic Length", Value::Integer(bits)),
        Attr::new("Cryptographic Usage Mask", Value::Integer(usage::ENCRYPT)),
    ];
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, base),
        Ttlv::enumeration(Tag::DERIVATION_METHOD, method),
        Ttlv::structure(Tag::DERIVATION_PARAMETERS, params),
        template(v, &attrs),
    ]
}

fn hash_params(h: u32) -> Ttlv {
    Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, h)],
    )
}

async fn derived(c: &mut Client, payload: Vec<Ttlv>) -> Vec<u8> {
    let got = c.call(op::DERIVE_KEY, payload).await.unwrap();
    key_bytes(&c.call(op::GET, uid(&uid_of(&got))).await.unwrap())
}

#[tokio::test]
async fn pbkdf2_defaults_to_hmac_sha1_and_sha1_derivations_work() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("deriver", v).await;
        let base = derivation_base(&mut c).await;
        let pbkdf2 = |params: Option<Ttlv>| {
            let mut p: Vec<Ttlv> = params.into_iter().collect();
            p.push(Ttlv::bytes(Tag::SALT, b"NaCl salt sixteen".to_vec()));
            p.push(Ttlv::integer(Tag::ITERATION_COUNT, 1000));
            p
        };
        let expect = |alg| {
            let mut out = [0u8; 16];
            akm::crypto::backend::prim::pbkdf2::derive(
                alg,
                std::num::NonZeroU32::new(1000).unwrap(),
                b"NaCl salt sixteen",
                &PASSWORD,
                &mut out,
            );
            out.to_vec()
        };
        // No Cryptographic Parameters: PKCS#5's default PRF, HMAC-SHA-1.
        let key = derived(
            &mut c,
            derive_payload(v, &base, dm::PBKDF2, pbkdf2(None), 128),
        )
        .await;
        assert_eq!(
            key,
            expect(akm::crypto::backend::prim::pbkdf2::PBKDF2_HMAC_SHA1)
        );
        // Named: what was asked.
        let key = derived(
            &mut c,
            derive_payload(
                v,
                &base,
                dm::PBKDF2,
                pbkdf2(Some(hash_params(ha::SHA_256))),
                128,
            ),
        )
        .await;
        assert_eq!(
            key,
            expect(akm::crypto::backend::prim::pbkdf2::PBKDF2_HMAC_SHA256)
        );
        // HMAC-SHA-1 and SHA-1 HASH derivations.
        let data = |h| {
            vec![
                hash_params(h),
                Ttlv::bytes(Tag::DERIVATION_DATA, b"context".to_vec()),
            ]
        };
        let key = derived(
            &mut c,
            derive_payload(v, &base, dm::HMAC, data(ha::SHA_1), 128),
        )
        .await;
        let tag = akm::crypto::backend::prim::hmac::sign(
            &akm::crypto::backend::prim::hmac::Key::new(
                akm::crypto::backend::prim::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                &PASSWORD,
            ),
            b"context",
        );
        assert_eq!(key, &tag.as_ref()[..16]);
        let key = derived(
            &mut c,
            derive_payload(v, &base, dm::HASH, data(ha::SHA_1), 128),
        )
        .await;
        let d = akm::crypto::backend::prim::digest::digest(
            &akm::crypto::backend::prim::digest::SHA1_FOR_LEGACY_USE_ONLY,
            b"context",
        );
        assert_eq!(key, &d.as_ref()[..16]);
        // MD5 stays refused.
        failed_with(
            v,
            c.call(
                op::DERIVE_KEY,
                derive_payload(v, &base, dm::HMAC, data(ha::MD5), 128),
            )
            .await,
            rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS,
        );
    }
    server.stop().await;
}

#[tokio::test]
#[cfg_attr(
    feature = "fips",
    ignore = "RSASSA-PSS with SHA-1 is refused in the FIPS build"
)]
async fn sha1_hashes_macs_and_verifies_but_never_signs() {
    let server = TestServer::start().await;
    let v = V::V2_1;
    let mut c = server.client("alice", v).await;
    // Hash.
    let got = c
        .call(
            op::HASH,
            vec![
                hash_params(ha::SHA_1),
                Ttlv::bytes(Tag::DATA, b"abc".to_vec()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        hex::encode(got.child(Tag::DATA).and_then(Ttlv::as_bytes).unwrap()),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    // MAC with an HMAC-SHA-1 key.
    let mac_key = [0x0b; 20];
    let attrs = vec![
        Attr::new(
            "Cryptographic Usage Mask",
            Value::Integer(usage::MAC_GENERATE | usage::MAC_VERIFY),
        ),
        date("Activation Date", now() - 60),
    ];
    let mut payload = register_key_payload(v, &mac_key, &attrs);
    set_key_block_algorithm(&mut payload, alg::HMAC_SHA1);
    let k = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
    let mut p = uid(&k);
    p.push(Ttlv::bytes(Tag::DATA, b"Hi There".to_vec()));
    let got = c.call(op::MAC, p).await.unwrap();
    // RFC 2202 test case 1.
    assert_eq!(
        hex::encode(got.child(Tag::MAC_DATA).and_then(Ttlv::as_bytes).unwrap()),
        "b617318655057264e28bc0b6fb378c8ef146be00"
    );

    // Signatures: SHA-1 generation refused, verification of SHA-1 signatures works.
    let (private, public) = rsa_pair(&mut c).await;
    let sha1_pkcs1 = || {
        Ttlv::structure(
            Tag::CRYPTOGRAPHIC_PARAMETERS,
            vec![
                Ttlv::enumeration(Tag::PADDING_METHOD, pad::PKCS1_V1_5),
                Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_1),
                Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::RSA),
            ],
        )
    };
    let sha1_pss = || {
        Ttlv::structure(
            Tag::CRYPTOGRAPHIC_PARAMETERS,
            vec![
                Ttlv::enumeration(Tag::PADDING_METHOD, pad::PSS),
                Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_1),
                Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::RSA),
            ],
        )
    };
    for params in [sha1_pkcs1(), sha1_pss()] {
        let mut p = uid(&private);
        p.push(params);
        p.push(Ttlv::bytes(Tag::DATA, b"m".to_vec()));
        match c.call(op::SIGN, p).await {
            Err(ClientError::Failed { reason, message }) => {
                assert_eq!(reason, rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS);
                assert!(message.contains("SHA-1"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    let key = private_key(&mut c, &private).await;
    let data = b"legacy signed data";
    let pkcs1_sig = sign_pkcs1_sha1(&key, data);
    let pss_sig = sign_pss_sha1(&key, data, 20);
    let pss_long_salt = sign_pss_sha1(&key, data, 64);
    for (params, sig, valid) in [
        (sha1_pkcs1(), &pkcs1_sig, true),
        (sha1_pss(), &pss_sig, true),
        (sha1_pss(), &pss_long_salt, true),
        (sha1_pss(), &pkcs1_sig, false),
        (sha1_pkcs1(), &pss_sig, false),
    ] {
        let mut p = uid(&public);
        p.push(params);
        p.push(Ttlv::bytes(Tag::DATA, data.to_vec()));
        p.push(Ttlv::bytes(Tag::SIGNATURE_DATA, sig.clone()));
        let got = c.call(op::SIGNATURE_VERIFY, p).await.unwrap();
        let want = if valid {
            validity_indicator::VALID
        } else {
            validity_indicator::INVALID
        };
        assert_eq!(
            got.child(Tag::VALIDITY_INDICATOR).and_then(Ttlv::as_enum),
            Some(want)
        );
    }
    server.stop().await;
}

/// Sets the Cryptographic Algorithm inside a Register payload's Key Block.
fn set_key_block_algorithm(payload: &mut [Ttlv], algorithm: u32) {
    fn visit(t: &mut Ttlv, algorithm: u32) {
        if t.tag == Tag::CRYPTOGRAPHIC_ALGORITHM {
            t.value = Value::Enumeration(algorithm);
        }
        if let Value::Structure(children) = &mut t.value {
            if t.tag == Tag::ATTRIBUTES || t.tag == Tag::TEMPLATE_ATTRIBUTE {
                return;
            }
            for c in children {
                visit(c, algorithm);
            }
        }
    }
    for t in payload {
        visit(t, algorithm);
    }
}

async fn rsa_pair(c: &mut Client) -> (String, String) {
    let v = c.version;
    let common = vec![
        Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::RSA)),
        Attr::new("Cryptographic Length", Value::Integer(2048)),
    ];
    let private = vec![Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::SIGN),
    )];
    let public = vec![Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::VERIFY),
    )];
    let wrap = |tag, attrs: &[Attr]| Ttlv::structure(tag, template(v, attrs).children().to_vec());
    let got = c
        .call(
            op::CREATE_KEY_PAIR,
            vec![
                wrap(Tag::COMMON_ATTRIBUTES, &common),
                wrap(Tag::PRIVATE_KEY_ATTRIBUTES, &private),
                wrap(Tag::PUBLIC_KEY_ATTRIBUTES, &public),
            ],
        )
        .await
        .unwrap();
    let text = |t| got.child(t).and_then(Ttlv::as_text).unwrap().to_owned();
    let pair = (
        text(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        text(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    );
    c.call(op::ACTIVATE, uid(&pair.0)).await.unwrap();
    c.call(op::ACTIVATE, uid(&pair.1)).await.unwrap();
    pair
}

async fn private_key(c: &mut Client, u: &str) -> rsa::RsaPrivateKey {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let got = c.call(op::GET, uid(u)).await.unwrap();
    let format = got
        .children()
        .iter()
        .find_map(|o| o.child(Tag::KEY_BLOCK))
        .and_then(|b| b.child(Tag::KEY_FORMAT_TYPE))
        .and_then(Ttlv::as_enum);
    let der = key_bytes(&got);
    match format {
        Some(kft::PKCS_1) => rsa::RsaPrivateKey::from_pkcs1_der(&der).unwrap(),
        _ => rsa::RsaPrivateKey::from_pkcs8_der(&der).unwrap(),
    }
}

fn sha1(parts: &[&[u8]]) -> Vec<u8> {
    let mut ctx = akm::crypto::backend::prim::digest::Context::new(
        &akm::crypto::backend::prim::digest::SHA1_FOR_LEGACY_USE_ONLY,
    );
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().to_vec()
}

/// RSASSA-PKCS1-v1_5 with SHA-1 (RFC 8017 §9.2: DigestInfo with the SHA-1 OID).
fn sign_pkcs1_sha1(key: &rsa::RsaPrivateKey, data: &[u8]) -> Vec<u8> {
    let mut info = hex::decode("3021300906052b0e03021a05000414").unwrap();
    info.extend(sha1(&[data]));
    key.sign(rsa::Pkcs1v15Sign::new_unprefixed(), &info)
        .unwrap()
}

/// RSASSA-PSS with SHA-1 and MGF1-SHA-1 and a salt of `salt_len` bytes (RFC 8017 §9.1.1),
/// with the raw private-key operation.
fn sign_pss_sha1(key: &rsa::RsaPrivateKey, data: &[u8], salt_len: usize) -> Vec<u8> {
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let em_bits = key.n().bits() - 1;
    let em_len = em_bits.div_ceil(8);
    let salt = vec![0x5a; salt_len];
    let h = sha1(&[&[0u8; 8], &sha1(&[data]), &salt]);
    let mut db = vec![0u8; em_len - salt_len - 20 - 2];
    db.push(1);
    db.extend_from_slice(&salt);
    let mut mask = Vec::new();
    let mut counter: u32 = 0;
    while mask.len() < db.len() {
        mask.extend(sha1(&[&h, &counter.to_be_bytes()]));
        counter += 1;
    }
    let mut em: Vec<u8> = db.iter().zip(mask).map(|(a, b)| a ^ b).collect();
    em[0] &= 0xff >> (8 * em_len - em_bits);
    em.extend_from_slice(&h);
    em.push(0xbc);
    let m = rsa::BigUint::from_bytes_be(&em);
    let s = m.modpow(key.d(), key.n()).to_bytes_be();
    let mut sig = vec![0u8; key.size() - s.len()];
    sig.extend(s);
    sig
}

fn usage_limits(total: i64, count: Option<i64>) -> Attr {
    let mut fields = vec![Ttlv::long(Tag::USAGE_LIMITS_TOTAL, total)];
    if let Some(c) = count {
        fields.push(Ttlv::long(Tag::USAGE_LIMITS_COUNT, c));
    }
    fields.push(Ttlv::enumeration(
        Tag::USAGE_LIMITS_UNIT,
        usage_limits_unit::OBJECT,
    ));
    Attr::new("Usage Limits", Value::Structure(fields))
}

async fn usage_count(c: &mut Client, u: &str) -> Option<i64> {
    match get_attrs(c, u, &["Usage Limits"])
        .await
        .first()
        .map(|a| &a.value)
    {
        Some(Value::Structure(f)) => f
            .iter()
            .find(|t| t.tag == Tag::USAGE_LIMITS_COUNT)
            .and_then(Ttlv::as_long),
        other => panic!("no Usage Limits: {other:?}"),
    }
}

#[tokio::test]
async fn usage_limits_count_is_there_from_creation() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", v).await;
        // The client's Count is ignored at creation: the Count starts at the Total.
        let u = create_with(
            &mut c,
            &[
                date("Activation Date", now() - 60),
                usage_limits(10, Some(3)),
            ],
        )
        .await;
        assert_eq!(usage_count(&mut c, &u).await, Some(10));
        c.call(op::ENCRYPT, encrypt(&u)).await.unwrap();
        assert_eq!(usage_count(&mut c, &u).await, Some(9));
        // A corrected Total keeps the use so far; a client's Count is ignored.
        c.call(
            op::MODIFY_ATTRIBUTE,
            modify_attribute(v, &u, &usage_limits(20, Some(100))),
        )
        .await
        .unwrap();
        assert_eq!(usage_count(&mut c, &u).await, Some(19));
        // Added later: starts at the Total too.
        let w = create_with(&mut c, &[]).await;
        c.call(
            op::ADD_ATTRIBUTE,
            add_attribute(v, &w, &usage_limits(5, None)),
        )
        .await
        .unwrap();
        assert_eq!(usage_count(&mut c, &w).await, Some(5));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_168_bit_triple_des_key_is_refused_as_triple_des() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", v).await;
        for declared in [168, 192] {
            let mut payload = register_key_payload(v, &[0x5A; 24], &[]);
            set_key_block_algorithm(&mut payload, alg::_3DES);
            fn set_length(t: &mut Ttlv, bits: i32) {
                if t.tag == Tag::CRYPTOGRAPHIC_LENGTH {
                    t.value = Value::Integer(bits);
                }
                if let Value::Structure(children) = &mut t.value {
                    children.iter_mut().for_each(|c| set_length(c, bits));
                }
            }
            payload.iter_mut().for_each(|t| set_length(t, declared));
            match c.call(op::REGISTER, payload).await {
                Err(ClientError::Failed { reason, message }) => {
                    if v.is_v2() {
                        assert_eq!(reason, rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS);
                    }
                    assert!(message.contains("Triple-DES"), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }
    server.stop().await;
}

/// Whether node `i` of `c` reports `u` in State `s` through Get Attributes and Locate by State.
async fn node_reports(c: &crate::support::cluster::Cluster, i: usize, u: &str, s: u32) -> bool {
    let mut client = c.client(i).await;
    state_of(&mut client, u).await == s
        && locate_by_state(&mut client, s).await.iter().any(|x| x == u)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrored_nodes_agree_on_the_state_the_dates_give() {
    use crate::support::cluster::{eventually, Cluster, Options};
    use std::time::Duration;
    let c = Cluster::start(Options::nodes(2));
    let mut a = c.client(0).await;
    // Activation Date set on node 0: the stored State changes there through the normal write
    // path and reaches node 1 with the rest of the object.
    let u = create_with(&mut a, &[]).await;
    a.call(
        op::ADD_ATTRIBUTE,
        add_attribute(V::V1_4, &u, &date("Activation Date", now())),
    )
    .await
    .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || c.nodes[1]
            .objects()
            .get(&u)
            .is_some_and(|row| row.0 == state::ACTIVE)),
        "the Active State did not reach node 1"
    );
    assert!(node_reports(&c, 0, &u, state::ACTIVE).await);
    assert!(node_reports(&c, 1, &u, state::ACTIVE).await);
    // A Deactivation Date that passes with no write: both nodes report Deactivated.
    let t = now();
    let expiring = create_with(
        &mut a,
        &[
            date("Activation Date", t - 60),
            date("Deactivation Date", t + 2),
        ],
    )
    .await;
    assert!(eventually(Duration::from_secs(10), || c.nodes[1]
        .objects()
        .contains_key(&expiring)));
    std::thread::sleep(Duration::from_millis(3200));
    assert!(node_reports(&c, 0, &expiring, state::DEACTIVATED).await);
    assert!(node_reports(&c, 1, &expiring, state::DEACTIVATED).await);
}
