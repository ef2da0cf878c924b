//! Multi-part (streaming) cryptographic operations over TLS (KMIP 2.1 §6.1: Init Indicator,
//! Correlation Value, Final Indicator): Decrypt, MAC, MAC Verify, Sign, Signature Verify and
//! Hash give in parts what they give in one call, and Encrypt's final part may carry no Data
//! (issue 18, bug 6). A stream belongs to the certificate that began it: a stranger who sends
//! its Correlation Value is refused and the stream goes on; each part checks the key again;
//! the per-client and per-stream limits hold; an Undo batch refuses stream parts.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::Client;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{
    batch_error_continuation_option as bec, block_cipher_mode as bcm,
    cryptographic_algorithm as alg, cryptographic_usage_mask as usage, hashing_algorithm as ha,
    key_format_type as kft, object_type as ot, operation as op, padding_method as pad,
    result_reason as rr, result_status, revocation_reason_code as rrc, validity_indicator,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Registers a 256-bit key of `algorithm` with `mask`, active since an hour ago.
async fn key(c: &mut Client, algorithm: u32, mask: i32) -> String {
    let attrs = vec![
        Attr::new("Cryptographic Usage Mask", Value::Integer(mask)),
        Attr::new("Activation Date", Value::DateTime(now() - 3600)),
    ];
    let payload = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        template(c.version, &attrs),
        Ttlv::structure(
            Tag::SYMMETRIC_KEY,
            vec![Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::RAW),
                    Ttlv::structure(
                        Tag::KEY_VALUE,
                        vec![Ttlv::bytes(Tag::KEY_MATERIAL, [7u8; 32])],
                    ),
                    Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, algorithm),
                    Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 256),
                ],
            )],
        ),
    ];
    uid_of(&c.call(op::REGISTER, payload).await.unwrap())
}

fn bytes_of(payload: &Ttlv, tag: Tag) -> Option<Vec<u8>> {
    payload
        .child(tag)
        .and_then(Ttlv::as_bytes)
        .map(<[u8]>::to_vec)
}

fn params(items: Vec<Ttlv>) -> Ttlv {
    Ttlv::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, items)
}

/// The fields of one part: `fields`, then Data (if any), then the stream's own.
fn part_payload(
    fields: &[Ttlv],
    data: Option<&[u8]>,
    correlation: Option<&[u8]>,
    last: bool,
) -> Vec<Ttlv> {
    let mut req = fields.to_vec();
    if let Some(d) = data {
        req.push(Ttlv::bytes(Tag::DATA, d));
    }
    match correlation {
        None => req.push(Ttlv::boolean(Tag::INIT_INDICATOR, true)),
        Some(cv) => req.push(Ttlv::bytes(Tag::CORRELATION_VALUE, cv)),
    }
    if last {
        req.push(Ttlv::boolean(Tag::FINAL_INDICATOR, true));
    }
    req
}

/// Runs `operation` in parts: the first part carries `first` and `chunks[0]`, the middle
/// ones only their chunk (and the key, if `key` names one), the final one `last` and the last
/// chunk. Asserts that no part before the final one carries any of `outputs`; returns the
/// final response payload.
async fn in_parts(
    c: &mut Client,
    operation: u32,
    key: Option<&str>,
    first: Vec<Ttlv>,
    chunks: &[&[u8]],
    last: Vec<Ttlv>,
    outputs: &[Tag],
) -> Ttlv {
    let key_field: Vec<Ttlv> = key.map(uid).unwrap_or_default();
    let mut head = key_field.clone();
    head.extend(first);
    let got = c
        .call(operation, part_payload(&head, Some(chunks[0]), None, false))
        .await
        .unwrap();
    let cv = bytes_of(&got, Tag::CORRELATION_VALUE).expect("a Correlation Value");
    for t in outputs {
        assert!(got.child(*t).is_none(), "{t:?} before the final part");
    }
    for chunk in &chunks[1..chunks.len() - 1] {
        let got = c
            .call(
                operation,
                part_payload(&key_field, Some(chunk), Some(&cv), false),
            )
            .await
            .unwrap();
        for t in outputs {
            assert!(got.child(*t).is_none(), "{t:?} before the final part");
        }
        assert_eq!(bytes_of(&got, Tag::CORRELATION_VALUE), Some(cv.clone()));
    }
    let mut tail = key_field;
    tail.extend(last);
    let done = c
        .call(
            operation,
            part_payload(&tail, Some(chunks[chunks.len() - 1]), Some(&cv), true),
        )
        .await
        .unwrap();
    // The stream is over: its Correlation Value is no longer known.
    let again = c
        .call(operation, part_payload(&[], Some(b"x"), Some(&cv), true))
        .await;
    assert_eq!(reason(again), rr::INVALID_CORRELATION_VALUE);
    done
}

fn message() -> Vec<u8> {
    (0u8..=250).cycle().take(1000).collect()
}

fn thirds(m: &[u8]) -> [&[u8]; 3] {
    [&m[..17], &m[17..600], &m[600..]]
}

#[tokio::test]
#[cfg_attr(
    feature = "fips",
    ignore = "client-IV GCM encryption is refused in the FIPS build"
)]
async fn decrypt_mac_and_hash_in_parts_give_what_one_call_gives() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let m = message();
    // Decrypt, in CBC and in GCM (the tag comes with the first part, 2.1 §6.1.11).
    let aes = key(&mut c, alg::AES, usage::ENCRYPT | usage::DECRYPT).await;
    for (mode, padding, iv) in [
        (bcm::CBC, Some(pad::PKCS5), vec![3u8; 16]),
        (bcm::GCM, None, vec![4u8; 12]),
    ] {
        let mut p = vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, mode)];
        p.extend(padding.map(|x| Ttlv::enumeration(Tag::PADDING_METHOD, x)));
        let mut req = uid(&aes);
        req.push(params(p.clone()));
        req.push(Ttlv::bytes(Tag::DATA, m.clone()));
        req.push(Ttlv::bytes(Tag::IV_COUNTER_NONCE, iv.clone()));
        let sealed = c.call(op::ENCRYPT, req).await.unwrap();
        let ct = bytes_of(&sealed, Tag::DATA).unwrap();
        let mut first = vec![params(p), Ttlv::bytes(Tag::IV_COUNTER_NONCE, iv)];
        first.extend(
            bytes_of(&sealed, Tag::AUTHENTICATED_ENCRYPTION_TAG)
                .map(|t| Ttlv::bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, t)),
        );
        let plain = in_parts(
            &mut c,
            op::DECRYPT,
            Some(&aes),
            first,
            &thirds(&ct),
            vec![],
            &[Tag::DATA],
        )
        .await;
        assert_eq!(bytes_of(&plain, Tag::DATA), Some(m.clone()), "mode {mode}");
    }
    // MAC and MAC Verify.
    let hmac = key(
        &mut c,
        alg::HMAC_SHA256,
        usage::MAC_GENERATE | usage::MAC_VERIFY,
    )
    .await;
    let mut req = uid(&hmac);
    req.push(Ttlv::bytes(Tag::DATA, m.clone()));
    let whole = bytes_of(&c.call(op::MAC, req).await.unwrap(), Tag::MAC_DATA).unwrap();
    let parts = in_parts(
        &mut c,
        op::MAC,
        Some(&hmac),
        vec![],
        &thirds(&m),
        vec![],
        &[Tag::MAC_DATA],
    )
    .await;
    assert_eq!(bytes_of(&parts, Tag::MAC_DATA), Some(whole.clone()));
    for (tag, expected) in [
        (whole.clone(), validity_indicator::VALID),
        (vec![0; 32], validity_indicator::INVALID),
    ] {
        let verdict = in_parts(
            &mut c,
            op::MAC_VERIFY,
            Some(&hmac),
            vec![],
            &thirds(&m),
            vec![Ttlv::bytes(Tag::MAC_DATA, tag)],
            &[Tag::VALIDITY_INDICATOR],
        )
        .await;
        assert_eq!(
            verdict
                .child(Tag::VALIDITY_INDICATOR)
                .and_then(Ttlv::as_enum),
            Some(expected)
        );
    }
    // Hash: the parameters with the first part, the digest with the last.
    let sha = params(vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_256)]);
    let whole = c
        .call(
            op::HASH,
            vec![sha.clone(), Ttlv::bytes(Tag::DATA, m.clone())],
        )
        .await
        .unwrap();
    let parts = in_parts(
        &mut c,
        op::HASH,
        None,
        vec![sha],
        &thirds(&m),
        vec![],
        &[Tag::DATA],
    )
    .await;
    assert_eq!(bytes_of(&parts, Tag::DATA), bytes_of(&whole, Tag::DATA));
    server.stop().await;
}

#[tokio::test]
async fn sign_and_signature_verify_in_parts() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let (private, public) = crate::signatures::make_pair(&mut c, alg::EC, 256).await;
    let m = message();
    let signed = in_parts(
        &mut c,
        op::SIGN,
        Some(&private),
        vec![],
        &thirds(&m),
        vec![],
        &[Tag::SIGNATURE_DATA],
    )
    .await;
    let sig = bytes_of(&signed, Tag::SIGNATURE_DATA).unwrap();
    // The one-call form verifies the signature made in parts, and the other way round.
    let mut req = uid(&public);
    req.push(Ttlv::bytes(Tag::DATA, m.clone()));
    req.push(Ttlv::bytes(Tag::SIGNATURE_DATA, sig.clone()));
    let got = c.call(op::SIGNATURE_VERIFY, req).await.unwrap();
    assert_eq!(
        got.child(Tag::VALIDITY_INDICATOR).and_then(Ttlv::as_enum),
        Some(validity_indicator::VALID)
    );
    let mut tampered = m.clone();
    tampered[900] ^= 1;
    for (data, expected) in [
        (&m, validity_indicator::VALID),
        (&tampered, validity_indicator::INVALID),
    ] {
        let verdict = in_parts(
            &mut c,
            op::SIGNATURE_VERIFY,
            Some(&public),
            vec![],
            &thirds(data),
            vec![Ttlv::bytes(Tag::SIGNATURE_DATA, sig.clone())],
            &[Tag::VALIDITY_INDICATOR],
        )
        .await;
        assert_eq!(
            verdict
                .child(Tag::VALIDITY_INDICATOR)
                .and_then(Ttlv::as_enum),
            Some(expected)
        );
    }
    server.stop().await;
}

/// Bug 6: Data is optional in every part of a multi-part Encrypt, the final one included.
#[tokio::test]
#[cfg_attr(
    feature = "fips",
    ignore = "streamed GCM encryption is refused in the FIPS build"
)]
async fn multi_part_encrypt_final_part_may_carry_no_data() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let aes = key(&mut c, alg::AES, usage::ENCRYPT | usage::DECRYPT).await;
    let m = message();
    let p = params(vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, bcm::GCM)]);
    let iv = vec![9u8; 12];
    let mut whole = uid(&aes);
    whole.extend([
        p.clone(),
        Ttlv::bytes(Tag::DATA, m.clone()),
        Ttlv::bytes(Tag::IV_COUNTER_NONCE, iv.clone()),
    ]);
    let whole = c.call(op::ENCRYPT, whole).await.unwrap();
    let mut head = uid(&aes);
    head.extend([p, Ttlv::bytes(Tag::IV_COUNTER_NONCE, iv)]);
    let first = c
        .call(op::ENCRYPT, part_payload(&head, Some(&m), None, false))
        .await
        .unwrap();
    let cv = bytes_of(&first, Tag::CORRELATION_VALUE).unwrap();
    let mut out = bytes_of(&first, Tag::DATA).unwrap();
    let last = c
        .call(op::ENCRYPT, part_payload(&uid(&aes), None, Some(&cv), true))
        .await
        .unwrap();
    out.extend(bytes_of(&last, Tag::DATA).unwrap_or_default());
    assert_eq!(Some(out), bytes_of(&whole, Tag::DATA));
    assert_eq!(
        bytes_of(&last, Tag::AUTHENTICATED_ENCRYPTION_TAG),
        bytes_of(&whole, Tag::AUTHENTICATED_ENCRYPTION_TAG)
    );
    server.stop().await;
}

/// A stranger who learns a Correlation Value can neither continue nor end the stream; the
/// owner goes on. Each part checks the key again: a key revoked mid-stream ends it.
#[tokio::test]
async fn a_stranger_is_refused_mid_stream_and_every_part_checks_the_key() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice", V::V2_1).await;
    let mut mallory = server.client("mallory", V::V2_1).await;
    let hmac = key(&mut alice, alg::HMAC_SHA256, usage::MAC_GENERATE).await;
    let m = message();
    let first = alice
        .call(
            op::MAC,
            part_payload(&uid(&hmac), Some(&m[..10]), None, false),
        )
        .await
        .unwrap();
    let cv = bytes_of(&first, Tag::CORRELATION_VALUE).unwrap();
    for fields in [uid(&hmac), vec![]] {
        for last in [false, true] {
            let r = mallory
                .call(
                    op::MAC,
                    part_payload(&fields, Some(b"evil"), Some(&cv), last),
                )
                .await;
            assert_eq!(reason(r), rr::INVALID_CORRELATION_VALUE);
        }
    }
    // The same client may not turn the stream into another operation either.
    let r = alice
        .call(
            op::MAC_VERIFY,
            part_payload(&[], Some(b"x"), Some(&cv), false),
        )
        .await;
    assert_eq!(reason(r), rr::INVALID_CORRELATION_VALUE);
    let done = alice
        .call(op::MAC, part_payload(&[], Some(&m[10..]), Some(&cv), true))
        .await
        .unwrap();
    let mut req = uid(&hmac);
    req.push(Ttlv::bytes(Tag::DATA, m.clone()));
    let whole = alice.call(op::MAC, req).await.unwrap();
    assert_eq!(
        bytes_of(&done, Tag::MAC_DATA),
        bytes_of(&whole, Tag::MAC_DATA)
    );
    // Revoked between two parts: the next part is refused, and the stream is over.
    let first = alice
        .call(op::MAC, part_payload(&uid(&hmac), Some(b"a"), None, false))
        .await
        .unwrap();
    let cv = bytes_of(&first, Tag::CORRELATION_VALUE).unwrap();
    let mut revoke = uid(&hmac);
    revoke.push(Ttlv::structure(
        Tag::REVOCATION_REASON,
        vec![Ttlv::enumeration(
            Tag::REVOCATION_REASON_CODE,
            rrc::CESSATION_OF_OPERATION,
        )],
    ));
    alice.call(op::REVOKE, revoke).await.unwrap();
    let r = alice
        .call(op::MAC, part_payload(&[], Some(b"b"), Some(&cv), false))
        .await;
    assert_eq!(reason(r), rr::WRONG_KEY_LIFECYCLE_STATE);
    let r = alice
        .call(op::MAC, part_payload(&[], Some(b"c"), Some(&cv), true))
        .await;
    assert_eq!(reason(r), rr::INVALID_CORRELATION_VALUE);
    server.stop().await;
}

fn sha256_first(data: &[u8]) -> Vec<Ttlv> {
    let sha = params(vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_256)]);
    part_payload(&[sha], Some(data), None, false)
}

/// A client may hold only so many open streams, each only so much data; another client is
/// not held back by the first one's streams.
#[tokio::test]
async fn streams_are_bounded_per_client_and_in_size() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice", V::V2_1).await;
    let mut bob = server.client("bob", V::V2_1).await;
    let mut open = Vec::new();
    for _ in 0..akm::ops::stream::MAX_STREAMS_PER_CLIENT {
        let got = alice.call(op::HASH, sha256_first(b"x")).await.unwrap();
        open.push(bytes_of(&got, Tag::CORRELATION_VALUE).unwrap());
    }
    assert_eq!(
        reason(alice.call(op::HASH, sha256_first(b"x")).await),
        rr::SERVER_LIMIT_EXCEEDED
    );
    bob.call(op::HASH, sha256_first(b"x")).await.unwrap();
    // Finishing one makes room for another.
    alice
        .call(op::HASH, part_payload(&[], None, Some(&open[0]), true))
        .await
        .unwrap();
    alice.call(op::HASH, sha256_first(b"x")).await.unwrap();
    // One stream holds at most MAX_STREAM_BYTES; the part that would pass it is refused and
    // ends the stream.
    let chunk = vec![0u8; 600 * 1024];
    let got = bob.call(op::HASH, sha256_first(&chunk)).await.unwrap();
    let cv = bytes_of(&got, Tag::CORRELATION_VALUE).unwrap();
    let r = bob
        .call(op::HASH, part_payload(&[], Some(&chunk), Some(&cv), false))
        .await;
    assert_eq!(reason(r), rr::SERVER_LIMIT_EXCEEDED);
    let r = bob
        .call(op::HASH, part_payload(&[], None, Some(&cv), true))
        .await;
    assert_eq!(reason(r), rr::INVALID_CORRELATION_VALUE);
    server.stop().await;
}

/// A stream lives in memory, which an Undo batch could not roll back: its parts are refused
/// there (and the batch is undone); single-part calls are not affected.
#[tokio::test]
async fn undo_batches_refuse_stream_parts() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V2_1).await;
    let sha = params(vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_256)]);
    let mut msg = akm::client::request(
        V::V2_1,
        &[
            (
                op::HASH,
                vec![sha.clone(), Ttlv::bytes(Tag::DATA, b"one".to_vec())],
            ),
            (op::HASH, sha256_first(b"two")),
        ],
    );
    if let Value::Structure(children) = &mut msg.value {
        if let Value::Structure(h) = &mut children[0].value {
            h.push(Ttlv::enumeration(
                Tag::BATCH_ERROR_CONTINUATION_OPTION,
                bec::UNDO,
            ));
        }
    }
    let response = c.send(&msg).await.unwrap();
    let items: Vec<&Ttlv> = response.children_with(Tag::BATCH_ITEM).collect();
    let status = |i: usize| items[i].child(Tag::RESULT_STATUS).and_then(Ttlv::as_enum);
    assert_eq!(status(0), Some(result_status::OPERATION_UNDONE));
    assert_eq!(status(1), Some(result_status::OPERATION_FAILED));
    assert_eq!(
        items[1].child(Tag::RESULT_REASON).and_then(Ttlv::as_enum),
        Some(rr::FEATURE_NOT_SUPPORTED)
    );
    server.stop().await;
}

/// KMIP 1.4 clients stream too (1.4 §4.29-4.34, §4.37); the 1.4 response downgrades Invalid
/// Correlation Value to a reason 1.4 has (Invalid Field).
#[tokio::test]
async fn streams_work_at_kmip_1_4() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    let m = message();
    let sha = params(vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_256)]);
    let whole = c
        .call(
            op::HASH,
            vec![sha.clone(), Ttlv::bytes(Tag::DATA, m.clone())],
        )
        .await
        .unwrap();
    let got = c.call(op::HASH, sha256_first(&m[..500])).await.unwrap();
    let cv = bytes_of(&got, Tag::CORRELATION_VALUE).unwrap();
    let done = c
        .call(
            op::HASH,
            part_payload(&[], Some(&m[500..]), Some(&cv), true),
        )
        .await
        .unwrap();
    assert_eq!(bytes_of(&done, Tag::DATA), bytes_of(&whole, Tag::DATA));
    let r = c
        .call(op::HASH, part_payload(&[], Some(b"x"), Some(&cv), true))
        .await;
    assert_eq!(reason(r), rr::INVALID_FIELD);
    server.stop().await;
}

/// A stream lives on the node that began it: on a mirrored pair the peer does not know its
/// Correlation Value (the client starts again there after a failover), and the first node
/// still completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_per_node_on_a_mirrored_pair() {
    use crate::support::cluster::{Cluster, Options};
    let cluster = Cluster::start(Options::nodes(2));
    let mut a = cluster.client(0).await;
    let mut b = cluster.client(1).await;
    let m = message();
    let got = a.call(op::HASH, sha256_first(&m[..100])).await.unwrap();
    let cv = bytes_of(&got, Tag::CORRELATION_VALUE).unwrap();
    let r = b
        .call(
            op::HASH,
            part_payload(&[], Some(&m[100..]), Some(&cv), true),
        )
        .await;
    // The cluster's clients speak KMIP 1.4, where Invalid Correlation Value (a 2.x reason)
    // is answered as Invalid Field.
    assert_eq!(reason(r), rr::INVALID_FIELD);
    let done = a
        .call(
            op::HASH,
            part_payload(&[], Some(&m[100..]), Some(&cv), true),
        )
        .await
        .unwrap();
    let sha = params(vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_256)]);
    let whole = b
        .call(op::HASH, vec![sha, Ttlv::bytes(Tag::DATA, m.clone())])
        .await
        .unwrap();
    assert_eq!(bytes_of(&done, Tag::DATA), bytes_of(&whole, Tag::DATA));
}
