//! Server-side cryptography against the real server over TLS: Encrypt and Decrypt in every
//! AES mode akm performs, the "protect a data key under a key that stays in akm" round trip,
//! MAC and MAC Verify, Hash, RNG Retrieve, and every refusal: usage mask, state, the
//! Activation / Deactivation / Protect Stop / Process Start dates, usage limits, bad tags,
//! missing IVs, bad tag lengths, refused (non-NIST) algorithms, other owners.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::Client;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    block_cipher_mode as bcm, cryptographic_algorithm as alg, cryptographic_usage_mask as usage,
    hashing_algorithm as ha, key_format_type as kft, object_type as ot, operation as op,
    padding_method as pad, result_reason as rr, revocation_reason_code as rrc, usage_limits_unit,
    validity_indicator,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

const HOUR: i64 = 3600;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Registers raw key `bytes` of `algorithm` with `mask`, active an hour ago, plus `extra`.
async fn register(
    c: &mut Client,
    algorithm: u32,
    bytes: &[u8],
    mask: i32,
    extra: &[Attr],
) -> String {
    let mut attrs = vec![Attr::new("Cryptographic Usage Mask", Value::Integer(mask))];
    if !extra.iter().any(|a| a.name == "Activation Date") {
        attrs.push(Attr::new("Activation Date", Value::DateTime(now() - HOUR)));
    }
    attrs.extend_from_slice(extra);
    let payload = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        template(c.version, &attrs),
        Ttlv::structure(
            Tag::SYMMETRIC_KEY,
            vec![Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::RAW),
                    Ttlv::structure(Tag::KEY_VALUE, vec![Ttlv::bytes(Tag::KEY_MATERIAL, bytes)]),
                    Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, algorithm),
                    Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, (bytes.len() * 8) as i32),
                ],
            )],
        ),
    ];
    uid_of(&c.call(op::REGISTER, payload).await.unwrap())
}

async fn aes_key(c: &mut Client, extra: &[Attr]) -> String {
    register(
        c,
        alg::AES,
        &[0x11; 32],
        usage::ENCRYPT | usage::DECRYPT,
        extra,
    )
    .await
}

fn params(mode: u32, padding: Option<u32>, tag_len: Option<i32>) -> Ttlv {
    let mut p = vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, mode)];
    if let Some(m) = padding {
        p.push(Ttlv::enumeration(Tag::PADDING_METHOD, m));
    }
    if let Some(t) = tag_len {
        p.push(Ttlv::integer(Tag::TAG_LENGTH, t));
    }
    Ttlv::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, p)
}

fn bytes_of(payload: &Ttlv, tag: Tag) -> Option<Vec<u8>> {
    payload
        .child(tag)
        .and_then(Ttlv::as_bytes)
        .map(<[u8]>::to_vec)
}

/// Encrypt payload: key, parameters, data and optional IV / associated data.
fn enc(u: &str, p: Ttlv, data: &[u8], iv: Option<&[u8]>, aad: Option<&[u8]>) -> Vec<Ttlv> {
    let mut out = uid(u);
    out.push(p);
    out.push(Ttlv::bytes(Tag::DATA, data));
    if let Some(iv) = iv {
        out.push(Ttlv::bytes(Tag::IV_COUNTER_NONCE, iv));
    }
    if let Some(a) = aad {
        out.push(Ttlv::bytes(
            Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
            a,
        ));
    }
    out
}

#[tokio::test]
async fn encrypt_and_decrypt_in_every_mode_with_server_generated_ivs() {
    let server = TestServer::start().await;
    for version in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", version).await;
        let u = aes_key(&mut c, &[]).await;
        let data = b"thirty-three bytes of plaintext!!".to_vec();
        for (mode, padding, iv_len) in [
            (bcm::GCM, None, 12),
            (bcm::CBC, Some(pad::PKCS5), 16),
            (bcm::CTR, None, 16),
            (bcm::ECB, Some(pad::PKCS5), 0),
        ] {
            let p = params(mode, padding, None);
            let got = c
                .call(op::ENCRYPT, enc(&u, p.clone(), &data, None, Some(b"hdr")))
                .await
                .unwrap();
            let ct = bytes_of(&got, Tag::DATA).unwrap();
            assert_ne!(ct, data);
            let iv = bytes_of(&got, Tag::IV_COUNTER_NONCE);
            assert_eq!(iv.as_ref().map_or(0, Vec::len), iv_len, "mode {mode}");
            let mut back = enc(&u, p, &ct, iv.as_deref(), Some(b"hdr"));
            if let Some(tag) = bytes_of(&got, Tag::AUTHENTICATED_ENCRYPTION_TAG) {
                assert_eq!(tag.len(), 16);
                back.push(Ttlv::bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, tag));
            }
            let plain = c.call(op::DECRYPT, back).await.unwrap();
            assert_eq!(bytes_of(&plain, Tag::DATA).unwrap(), data, "mode {mode}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_data_key_is_protected_by_a_named_key_that_never_leaves_akm() {
    let server = TestServer::start().await;
    let mut c = server.client("app", V::V2_1).await;
    let kek = aes_key(&mut c, &[Attr::new("Name", name("app-master"))]).await;
    let data_key = [0x42u8; 32];
    // The application encrypts its data key under the named key and keeps only the result.
    let p = params(bcm::GCM, None, Some(16));
    let wrapped = c
        .call(
            op::ENCRYPT,
            enc(&kek, p.clone(), &data_key, None, Some(b"app/v1")),
        )
        .await
        .unwrap();
    let ct = bytes_of(&wrapped, Tag::DATA).unwrap();
    let iv = bytes_of(&wrapped, Tag::IV_COUNTER_NONCE).unwrap();
    let tag = bytes_of(&wrapped, Tag::AUTHENTICATED_ENCRYPTION_TAG).unwrap();
    assert!(!ct.windows(8).any(|w| w == &data_key[..8]));
    // Later (another connection) it unwraps it.
    let mut c2 = server.client("app", V::V2_1).await;
    let mut req = enc(&kek, p.clone(), &ct, Some(&iv), Some(b"app/v1"));
    req.push(Ttlv::bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, tag.clone()));
    let got = c2.call(op::DECRYPT, req).await.unwrap();
    assert_eq!(bytes_of(&got, Tag::DATA).unwrap(), data_key);
    // Different associated data, a flipped tag bit: Cryptographic Failure, no plaintext.
    let mut req = enc(&kek, p.clone(), &ct, Some(&iv), Some(b"app/v2"));
    req.push(Ttlv::bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, tag.clone()));
    assert_eq!(
        reason(c2.call(op::DECRYPT, req).await),
        rr::CRYPTOGRAPHIC_FAILURE
    );
    let mut bad = tag;
    bad[15] ^= 1;
    let mut req = enc(&kek, p, &ct, Some(&iv), Some(b"app/v1"));
    req.push(Ttlv::bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, bad));
    assert_eq!(
        reason(c2.call(op::DECRYPT, req).await),
        rr::CRYPTOGRAPHIC_FAILURE
    );
    server.stop().await;
}

#[tokio::test]
async fn the_keys_own_cryptographic_parameters_apply_when_the_request_has_none() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let cbc = Value::Structure(vec![
        Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, bcm::CBC),
        Ttlv::enumeration(Tag::PADDING_METHOD, pad::PKCS5),
    ]);
    let u = aes_key(&mut c, &[Attr::new("Cryptographic Parameters", cbc)]).await;
    let mut req = uid(&u);
    req.push(Ttlv::bytes(Tag::DATA, b"abc".to_vec()));
    req.push(Ttlv::bytes(Tag::IV_COUNTER_NONCE, vec![0u8; 16]));
    let got = c.call(op::ENCRYPT, req).await.unwrap();
    assert_eq!(bytes_of(&got, Tag::DATA).unwrap().len(), 16);
    // Decrypt without the IV: Invalid Message.
    let mut req = uid(&u);
    req.push(Ttlv::bytes(Tag::DATA, bytes_of(&got, Tag::DATA).unwrap()));
    assert_eq!(reason(c.call(op::DECRYPT, req).await), rr::INVALID_MESSAGE);
    // No parameters anywhere: AES-CBC with PKCS#5 padding and a server-made IV.
    let bare = aes_key(&mut c, &[]).await;
    let mut req = uid(&bare);
    req.push(Ttlv::bytes(Tag::DATA, b"no parameters".to_vec()));
    let got = c.call(op::ENCRYPT, req).await.unwrap();
    let iv = bytes_of(&got, Tag::IV_COUNTER_NONCE).expect("a server-made IV");
    assert_eq!(iv.len(), 16);
    let mut req = uid(&bare);
    req.push(Ttlv::bytes(Tag::DATA, bytes_of(&got, Tag::DATA).unwrap()));
    req.push(Ttlv::bytes(Tag::IV_COUNTER_NONCE, iv));
    let back = c.call(op::DECRYPT, req).await.unwrap();
    assert_eq!(bytes_of(&back, Tag::DATA).unwrap(), b"no parameters");
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let u = aes_key(&mut c, &[]).await;
    let gcm = |t| params(bcm::GCM, None, Some(t));
    for bad_len in [1, 8, 17, 32] {
        let r = c
            .call(
                op::ENCRYPT,
                enc(&u, gcm(bad_len), b"x", Some(&[0; 12]), None),
            )
            .await;
        assert_eq!(reason(r), rr::GENERAL_FAILURE, "tag length {bad_len}");
    }
    // GCM decrypt without a tag.
    let r = c
        .call(op::DECRYPT, enc(&u, gcm(16), b"x", Some(&[0; 12]), None))
        .await;
    assert_eq!(reason(r), rr::INVALID_MESSAGE);
    // CBC without padding on data that is not whole blocks; a 12-byte CBC IV.
    let cbc = params(bcm::CBC, None, None);
    let r = c
        .call(
            op::ENCRYPT,
            enc(&u, cbc.clone(), b"short", Some(&[0; 16]), None),
        )
        .await;
    assert_eq!(reason(r), rr::INVALID_FIELD);
    let r = c
        .call(op::ENCRYPT, enc(&u, cbc, &[0; 16], Some(&[0; 12]), None))
        .await;
    assert_eq!(reason(r), rr::INVALID_FIELD);
    // Bad PKCS#5 padding on decrypt.
    let padded = params(bcm::ECB, Some(pad::PKCS5), None);
    let r = c
        .call(op::DECRYPT, enc(&u, padded, &[0; 16], None, None))
        .await;
    assert_eq!(reason(r), rr::CRYPTOGRAPHIC_FAILURE);
    // A mode akm does not perform, a padding it does not do.
    let r = c
        .call(
            op::ENCRYPT,
            enc(&u, params(bcm::CFB, None, None), &[0; 16], None, None),
        )
        .await;
    assert_eq!(reason(r), rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS);
    let r = c
        .call(
            op::ENCRYPT,
            enc(
                &u,
                params(bcm::CBC, Some(pad::ANSI_X9_23), None),
                &[0; 16],
                None,
                None,
            ),
        )
        .await;
    assert_eq!(reason(r), rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS);
    // Missing Data, in each operation that needs it; a multi-part request.
    for operation in [op::ENCRYPT, op::DECRYPT, op::MAC, op::MAC_VERIFY, op::SIGN] {
        assert_eq!(
            reason(c.call(operation, uid(&u)).await),
            rr::INVALID_MESSAGE,
            "operation {operation:#x}"
        );
    }
    // A later part of a multi-part operation whose Correlation Value is unknown.
    let mut multi = enc(&u, params(bcm::ECB, None, None), &[0; 16], None, None);
    multi.push(Ttlv::bytes(Tag::CORRELATION_VALUE, vec![1; 16]));
    assert_eq!(
        reason(c.call(op::DECRYPT, multi).await),
        rr::INVALID_CORRELATION_VALUE
    );
    // An unknown key; another owner's key.
    let r = c
        .call(
            op::ENCRYPT,
            enc(
                "no-such-key",
                params(bcm::ECB, None, None),
                &[0; 16],
                None,
                None,
            ),
        )
        .await;
    assert_eq!(reason(r), rr::OBJECT_NOT_FOUND);
    let mut mallory = server.client("mallory", V::V2_1).await;
    let r = mallory
        .call(
            op::ENCRYPT,
            enc(&u, params(bcm::ECB, None, None), &[0; 16], None, None),
        )
        .await;
    assert_eq!(reason(r), rr::PERMISSION_DENIED);
    server.stop().await;
}

#[tokio::test]
async fn withdrawn_algorithms_are_never_used() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let u = aes_key(&mut c, &[]).await;
    // Asking for Triple-DES or Blowfish with an AES key.
    for refused in [alg::_3DES, alg::DES, alg::BLOWFISH, alg::RC4, alg::IDEA] {
        let p = Ttlv::structure(
            Tag::CRYPTOGRAPHIC_PARAMETERS,
            vec![
                Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, bcm::ECB),
                Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, refused),
            ],
        );
        let r = c.call(op::ENCRYPT, enc(&u, p, &[0; 16], None, None)).await;
        assert_eq!(reason(r), rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS);
    }
    // A Triple-DES key is refused at Register, as at Create, so it is never used.
    let attrs = vec![Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::ENCRYPT),
    )];
    let mut payload = register_key_payload(c.version, &[0x5A; 24], &attrs);
    if let Some(Value::Structure(block)) = payload
        .iter_mut()
        .find(|t| t.tag == Tag::SYMMETRIC_KEY)
        .and_then(|k| match &mut k.value {
            Value::Structure(f) => f.first_mut().map(|b| &mut b.value),
            _ => None,
        })
    {
        for f in block.iter_mut() {
            if f.tag == Tag::CRYPTOGRAPHIC_ALGORITHM {
                f.value = Value::Enumeration(alg::_3DES);
            }
        }
    }
    let r = c.call(op::REGISTER, payload).await;
    match r {
        Err(akm::client::ClientError::Failed {
            reason, message, ..
        }) => {
            assert_eq!(reason, rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS);
            assert!(message.contains("Triple-DES"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // MD5 hashes (SHA-1 is acceptable for hashing: SP 800-131A Rev. 2 §9).
    for h in [ha::MD5] {
        assert_eq!(
            reason(c.call(op::HASH, hash_payload(h, b"abc")).await),
            rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn usage_mask_state_and_dates_are_enforced_on_every_call() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let ecb = || params(bcm::ECB, None, None);
    let block = [7u8; 16];
    // Encrypt-only key: Decrypt is refused.
    let enc_only = register(&mut c, alg::AES, &[1; 16], usage::ENCRYPT, &[]).await;
    c.call(op::ENCRYPT, enc(&enc_only, ecb(), &block, None, None))
        .await
        .unwrap();
    let r = c
        .call(op::DECRYPT, enc(&enc_only, ecb(), &block, None, None))
        .await;
    assert_eq!(reason(r), rr::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK);
    // Activation Date in the future: Pre-Active, nothing works.
    let future = register(
        &mut c,
        alg::AES,
        &[2; 16],
        usage::ENCRYPT | usage::DECRYPT,
        &[Attr::new("Activation Date", Value::DateTime(now() + HOUR))],
    )
    .await;
    assert_eq!(
        state_of(&mut c, &future).await,
        akm::kmip::enums::state::PRE_ACTIVE
    );
    for o in [op::ENCRYPT, op::DECRYPT] {
        let r = c.call(o, enc(&future, ecb(), &block, None, None)).await;
        assert_eq!(reason(r), rr::WRONG_KEY_LIFECYCLE_STATE);
    }
    // Protect Stop Date passed: no Encrypt, Decrypt still works.
    let stopped = aes_key(
        &mut c,
        &[Attr::new("Protect Stop Date", Value::DateTime(now() - 60))],
    )
    .await;
    let r = c
        .call(op::ENCRYPT, enc(&stopped, ecb(), &block, None, None))
        .await;
    assert_eq!(reason(r), rr::WRONG_KEY_LIFECYCLE_STATE);
    c.call(op::DECRYPT, enc(&stopped, ecb(), &block, None, None))
        .await
        .unwrap();
    // Process Start Date ahead: Encrypt works, Decrypt not yet.
    let later = aes_key(
        &mut c,
        &[Attr::new(
            "Process Start Date",
            Value::DateTime(now() + HOUR),
        )],
    )
    .await;
    c.call(op::ENCRYPT, enc(&later, ecb(), &block, None, None))
        .await
        .unwrap();
    let r = c
        .call(op::DECRYPT, enc(&later, ecb(), &block, None, None))
        .await;
    assert_eq!(reason(r), rr::WRONG_KEY_LIFECYCLE_STATE);
    // Deactivation Date passed (set, stored state still Active): decrypt only.
    let expired = aes_key(
        &mut c,
        &[Attr::new("Deactivation Date", Value::DateTime(now() - 1))],
    )
    .await;
    let r = c
        .call(op::ENCRYPT, enc(&expired, ecb(), &block, None, None))
        .await;
    assert_eq!(reason(r), rr::WRONG_KEY_LIFECYCLE_STATE);
    c.call(op::DECRYPT, enc(&expired, ecb(), &block, None, None))
        .await
        .unwrap();
    // Revoked (Deactivated): decrypt only; destroyed: nothing.
    let revoked = aes_key(&mut c, &[]).await;
    let mut rv = uid(&revoked);
    rv.push(Ttlv::structure(
        Tag::REVOCATION_REASON,
        vec![Ttlv::enumeration(
            Tag::REVOCATION_REASON_CODE,
            rrc::CESSATION_OF_OPERATION,
        )],
    ));
    c.call(op::REVOKE, rv).await.unwrap();
    let r = c
        .call(op::ENCRYPT, enc(&revoked, ecb(), &block, None, None))
        .await;
    assert_eq!(reason(r), rr::WRONG_KEY_LIFECYCLE_STATE);
    c.call(op::DECRYPT, enc(&revoked, ecb(), &block, None, None))
        .await
        .unwrap();
    c.call(op::DESTROY, uid(&revoked)).await.unwrap();
    let r = c
        .call(op::DECRYPT, enc(&revoked, ecb(), &block, None, None))
        .await;
    assert_eq!(reason(r), rr::OBJECT_DESTROYED);
    // Usage Limits of 32 bytes: two 16-byte calls, then Permission Denied.
    let limits = Value::Structure(vec![
        Ttlv::long(Tag::USAGE_LIMITS_TOTAL, 32),
        Ttlv::enumeration(Tag::USAGE_LIMITS_UNIT, usage_limits_unit::BYTE),
    ]);
    let limited = aes_key(&mut c, &[Attr::new("Usage Limits", limits)]).await;
    for _ in 0..2 {
        c.call(op::ENCRYPT, enc(&limited, ecb(), &block, None, None))
            .await
            .unwrap();
    }
    let r = c
        .call(op::ENCRYPT, enc(&limited, ecb(), &block, None, None))
        .await;
    assert_eq!(reason(r), rr::PERMISSION_DENIED);
    server.stop().await;
}

fn hash_payload(h: u32, data: &[u8]) -> Vec<Ttlv> {
    vec![
        Ttlv::structure(
            Tag::CRYPTOGRAPHIC_PARAMETERS,
            vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, h)],
        ),
        Ttlv::bytes(Tag::DATA, data),
    ]
}

#[tokio::test]
async fn mac_and_mac_verify_with_hmac_sha2() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let mask = usage::MAC_GENERATE | usage::MAC_VERIFY;
    let k = register(&mut c, alg::HMAC_SHA256, b"Jefe", mask, &[]).await;
    let msg = b"what do ya want for nothing?";
    let mut req = uid(&k);
    req.push(Ttlv::bytes(Tag::DATA, msg.to_vec()));
    let got = c.call(op::MAC, req).await.unwrap();
    let tag = bytes_of(&got, Tag::MAC_DATA).unwrap();
    // RFC 4231 test case 2.
    assert_eq!(
        hex::encode(&tag),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    for (data, expected) in [
        (&msg[..], validity_indicator::VALID),
        (&b"tampered"[..], validity_indicator::INVALID),
    ] {
        let mut req = uid(&k);
        req.push(Ttlv::bytes(Tag::DATA, data.to_vec()));
        req.push(Ttlv::bytes(Tag::MAC_DATA, tag.clone()));
        let got = c.call(op::MAC_VERIFY, req).await.unwrap();
        assert_eq!(
            got.child(Tag::VALIDITY_INDICATOR).and_then(Ttlv::as_enum),
            Some(expected)
        );
    }
    // HMAC-SHA-512 chosen by the request's Hashing Algorithm.
    let mut req = uid(&k);
    req.push(Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_512)],
    ));
    req.push(Ttlv::bytes(Tag::DATA, msg.to_vec()));
    let got = c.call(op::MAC, req).await.unwrap();
    assert_eq!(bytes_of(&got, Tag::MAC_DATA).unwrap().len(), 64);
    // A key without MAC Generate in its mask; MAC Verify without MAC Data.
    let verify_only = register(&mut c, alg::HMAC_SHA256, b"k", usage::MAC_VERIFY, &[]).await;
    let mut req = uid(&verify_only);
    req.push(Ttlv::bytes(Tag::DATA, msg.to_vec()));
    assert_eq!(
        reason(c.call(op::MAC, req.clone()).await),
        rr::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK
    );
    assert_eq!(
        reason(c.call(op::MAC_VERIFY, req).await),
        rr::INVALID_MESSAGE
    );
    // An AES key is not an HMAC key.
    let aes = register(&mut c, alg::AES, &[0; 16], mask, &[]).await;
    let mut req = uid(&aes);
    req.push(Ttlv::bytes(Tag::DATA, msg.to_vec()));
    assert_eq!(
        reason(c.call(op::MAC, req).await),
        rr::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS
    );
    server.stop().await;
}

#[tokio::test]
async fn hash_and_rng_retrieve() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    let got = c
        .call(op::HASH, hash_payload(ha::SHA_256, b"abc"))
        .await
        .unwrap();
    assert_eq!(
        hex::encode(bytes_of(&got, Tag::DATA).unwrap()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        reason(
            c.call(op::HASH, vec![Ttlv::bytes(Tag::DATA, b"abc".to_vec())])
                .await
        ),
        rr::INVALID_MESSAGE
    );
    let rng = |n| vec![Ttlv::integer(Tag::DATA_LENGTH, n)];
    let a = bytes_of(&c.call(op::RNG_RETRIEVE, rng(32)).await.unwrap(), Tag::DATA).unwrap();
    let b = bytes_of(&c.call(op::RNG_RETRIEVE, rng(32)).await.unwrap(), Tag::DATA).unwrap();
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    for bad in [0, -1, 1 << 30] {
        assert_eq!(
            reason(c.call(op::RNG_RETRIEVE, rng(bad)).await),
            rr::INVALID_FIELD
        );
    }
    assert_eq!(
        reason(c.call(op::RNG_RETRIEVE, vec![]).await),
        rr::INVALID_MESSAGE
    );
    // KMIP 1.0 has no cryptographic operations.
    let mut old = server.client("alice", V::V1_0).await;
    assert_eq!(
        reason(old.call(op::RNG_RETRIEVE, rng(8)).await),
        rr::OPERATION_NOT_SUPPORTED
    );
    server.stop().await;
}

/// One part of a multi-part Encrypt; returns the response payload.
async fn part(
    c: &mut Client,
    u: &str,
    p: Ttlv,
    data: &[u8],
    first: Option<&[u8]>,
    correlation: Option<&[u8]>,
    last: bool,
) -> Ttlv {
    let mut req = enc(u, p, data, first, None);
    match correlation {
        None => req.push(Ttlv::boolean(Tag::INIT_INDICATOR, true)),
        Some(cv) => req.push(Ttlv::bytes(Tag::CORRELATION_VALUE, cv)),
    }
    if last {
        req.push(Ttlv::boolean(Tag::FINAL_INDICATOR, true));
    }
    c.call(op::ENCRYPT, req).await.unwrap()
}

#[tokio::test]
#[cfg_attr(
    feature = "fips",
    ignore = "client-IV and streamed GCM encryption are refused in the FIPS build"
)]
async fn multi_part_encrypt_gives_what_one_call_gives() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let u = aes_key(&mut c, &[]).await;
    let message: Vec<u8> = (0u8..70).collect();
    for (mode, padding, iv) in [
        (bcm::CBC, Some(pad::PKCS5), vec![3u8; 16]),
        (bcm::GCM, None, vec![4u8; 12]),
        (bcm::CTR, None, vec![5u8; 16]),
    ] {
        let p = params(mode, padding, None);
        let whole = c
            .call(op::ENCRYPT, enc(&u, p.clone(), &message, Some(&iv), None))
            .await
            .unwrap();
        let first = part(&mut c, &u, p.clone(), &message[..5], Some(&iv), None, false).await;
        let cv = bytes_of(&first, Tag::CORRELATION_VALUE).expect("a Correlation Value");
        let mut out = bytes_of(&first, Tag::DATA).unwrap();
        let second = part(
            &mut c,
            &u,
            p.clone(),
            &message[5..40],
            None,
            Some(&cv),
            false,
        )
        .await;
        out.extend(bytes_of(&second, Tag::DATA).unwrap());
        let last = part(&mut c, &u, p.clone(), &message[40..], None, Some(&cv), true).await;
        out.extend(bytes_of(&last, Tag::DATA).unwrap());
        assert_eq!(out, bytes_of(&whole, Tag::DATA).unwrap(), "mode {mode}");
        assert_eq!(
            bytes_of(&last, Tag::AUTHENTICATED_ENCRYPTION_TAG),
            bytes_of(&whole, Tag::AUTHENTICATED_ENCRYPTION_TAG)
        );
        // The stream is closed: its Correlation Value is no longer known.
        let mut again = enc(&u, p, b"x", None, None);
        again.push(Ttlv::bytes(Tag::CORRELATION_VALUE, cv));
        assert_eq!(
            reason(c.call(op::ENCRYPT, again).await),
            rr::INVALID_CORRELATION_VALUE
        );
    }
    // Another identity cannot continue someone's stream.
    let p = params(bcm::CTR, None, None);
    let first = part(&mut c, &u, p.clone(), b"abc", Some(&[1u8; 16]), None, false).await;
    let cv = bytes_of(&first, Tag::CORRELATION_VALUE).unwrap();
    let mut other = server.client("mallory", V::V2_1).await;
    let mut req = enc(&u, p, b"def", None, None);
    req.push(Ttlv::bytes(Tag::CORRELATION_VALUE, cv));
    assert!(matches!(
        reason(other.call(op::ENCRYPT, req).await),
        rr::INVALID_CORRELATION_VALUE
    ));
    server.stop().await;
}
