//! Every case of `../shared/design/BAD_INPUTS.md` against the real server over mutual TLS.
//! For each: the server answers with a KMIP error (or success where the input is legal) or
//! closes only that connection, keeps serving a healthy client, and its memory stays bounded.
//! Cases already covered in `bad_input.rs` are named there; the rest are here.
//!
//! | case | what | test |
//! |---|---|---|
//! | 1 | <8 header bytes then EOF / then stall | `short_header_then_eof_or_stall` |
//! | 2 | length 0xFFFFFFFF then stall | `bad_input::oversized_or_truncated_frames_close_only_that_connection`, `huge_declared_length_then_silence_is_closed` |
//! | 3 | 2 MiB message over the 1 MiB limit | `bad_input::oversized_or_truncated_frames_close_only_that_connection` |
//! | 4 | peer closes after N-1 bytes | `bad_input::truncated_request_then_close_and_idle_peers_are_dropped` |
//! | 5 | child longer than its parent | `bad_input::malformed_ttlv_gets_invalid_message_and_the_connection_carries_on` |
//! | 6 | structure length != sum of children | `framing_and_encoding_cases` |
//! | 7 | fixed-size types with the wrong length | `framing_and_encoding_cases` |
//! | 8 | Big Integer length 0, not a multiple of 8, 1 MiB | `framing_and_encoding_cases` |
//! | 9 | non-zero padding (Integer, Text, Byte String) | `framing_and_encoding_cases` (+ `bad_input`) |
//! | 10 | length 0xFFFFFFF9..0xFFFFFFFF wrapping with padding | `framing_and_encoding_cases` |
//! | 11 | unknown item types, Date-Time Extended on 1.x | `type_and_tag_cases` |
//! | 12 | known tag with the wrong type | `type_and_tag_cases` (+ `bad_input`) |
//! | 13 | unknown tags 0x42xxxx, 0x54xxxx, 0x00xxxx | `type_and_tag_cases` |
//! | 14 | required field missing | `type_and_tag_cases` |
//! | 15 | duplicate singleton | `type_and_tag_cases` |
//! | 16 | fields out of spec order | `type_and_tag_cases` |
//! | 17 | 10 000 nested structures | `bad_input::ten_thousand_deep_nesting_is_refused_without_harm` |
//! | 18 | 100 000 empty children / 100 000 attributes | `amplification_cases` |
//! | 19 | Batch Count 1000 vs 1, 0, negative; 10 000 real items | `amplification_cases` (+ `bad_input`) |
//! | 20 | invalid / overlong UTF-8, NUL, 1 MiB Name | `value_cases` |
//! | 21 | Boolean 2, 0xFF.. | `value_cases` |
//! | 22 | undefined enumerations | `value_cases` |
//! | 23 | Cryptographic Length 0, -1, MIN, MAX, 257 | `value_cases` |
//! | 24 | Date-Time i64::MIN / MAX / negative | `value_cases` |
//! | 25 | Interval 0xFFFFFFFF, Re-key Offset | `value_cases` |
//! | 26 | Protocol Version 99.0 / 0.0 / 1.0 | `bad_input::unsupported_protocol_version_is_answered_in_a_supported_one`, `protocol_version_one_zero_is_answered_in_one_zero` |
//! | 27 | Maximum Response Size 1 | `maximum_response_size_one_is_response_too_large` |
//! | 28 | valid request dripped 1 byte/s | `dripped_request_is_closed_after_the_idle_timeout` (the frame deadline; + `conn_budget`) |
//! | 29 | idle before / after the handshake | `bad_input::truncated_request_then_close_and_idle_peers_are_dropped`, `idle_after_handshake_is_closed` |
//! | 30 | two pipelined requests; request after an error | `pipelined_requests_and_a_request_after_an_error` |
//! | 31 | TLS: no client cert, foreign CA, expired, no CN, TLS 1.0/1.1, close right after ClientHello | `tls_cases` (+ `bad_input::clients_without_a_trusted_certificate_are_refused`); renegotiation is not tested separately: rustls implements none and refuses it |
//! | 32 | plaintext HTTP on 5696 | `bad_input::truncated_request_then_close_and_idle_peers_are_dropped` |
//! | 33 | connection flood over the limit | `connection_flood_does_not_stop_served_clients` (+ `bad_input`, `conn_budget`) |
//! | all | one audit record per rejected message, no key material | `each_rejected_message_has_one_audit_record_without_key_material` |

use crate::support::kmip::*;
use crate::support::server::{test_settings, TestServer};
use akm::client::{request, response_items, ClientError};
use akm::kmip::enums::{
    cryptographic_algorithm as alg, object_type as ot, operation as op, result_reason as rr,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the server did with one bad input.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// A response whose first item failed with this Result Reason.
    Failed(u32),
    /// A response whose first item succeeded.
    Ok,
    /// The connection was closed without a response.
    Closed,
}

/// The outcomes every malformed request may have: a KMIP error or a closed connection.
const REFUSED: &[Answer] = &[
    Answer::Failed(rr::INVALID_MESSAGE),
    Answer::Failed(rr::INVALID_FIELD),
    Answer::Failed(rr::OPERATION_NOT_SUPPORTED),
    Answer::Closed,
];

/// A TTLV item with a declared length of `value.len()`, padded with zeros to 8 bytes.
fn item(tag: Tag, typ: u8, value: &[u8]) -> Vec<u8> {
    item_len(tag, typ, value.len() as u32, value)
}

/// A TTLV item with any declared length and body (no padding added).
fn item_len(tag: Tag, typ: u8, len: u32, body: &[u8]) -> Vec<u8> {
    let mut out = tag.0.to_be_bytes()[1..].to_vec();
    out.push(typ);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    while out.len() % 8 != 0 {
        out.push(0);
    }
    out
}

/// A structure of raw children bytes.
fn structure(tag: Tag, children: &[u8]) -> Vec<u8> {
    item(tag, 0x01, children)
}

/// A 1.4 request whose one batch item is `operation` with a payload of raw bytes.
fn raw_request(operation: u32, payload: &[u8]) -> Vec<u8> {
    raw_request_in(V::V1_4, operation, payload)
}

fn raw_request_in(version: V, operation: u32, payload: &[u8]) -> Vec<u8> {
    let header = Ttlv::structure(
        Tag::REQUEST_HEADER,
        vec![version.to_ttlv(), Ttlv::integer(Tag::BATCH_COUNT, 1)],
    )
    .encode();
    let mut batch = Ttlv::enumeration(Tag::OPERATION, operation).encode();
    batch.extend(structure(Tag::REQUEST_PAYLOAD, payload));
    let mut body = header;
    body.extend(structure(Tag::BATCH_ITEM, &batch));
    structure(Tag::REQUEST_MESSAGE, &body)
}

/// A Get payload whose Unique Identifier item is `uid_item`.
fn get_with(uid_item: Vec<u8>) -> Vec<u8> {
    raw_request(op::GET, &uid_item)
}

/// Sends `bytes` on a fresh connection and reports what came back.
async fn answer(server: &TestServer, bytes: &[u8]) -> Answer {
    let mut c = server.client("mallory", V::V1_4).await;
    match c.send_bytes(bytes).await {
        Ok(resp) => match response_items(&resp) {
            Ok(items) => match items.into_iter().next() {
                Some(Ok(_)) => Answer::Ok,
                Some(Err(ClientError::Failed { reason, .. })) => Answer::Failed(reason),
                other => panic!("unexpected response item {other:?}"),
            },
            Err(ClientError::Failed { reason, .. }) => Answer::Failed(reason),
            Err(e) => panic!("unparseable response: {e}"),
        },
        Err(ClientError::Io(_)) | Err(ClientError::Protocol(_)) => Answer::Closed,
        Err(e) => panic!("unexpected client error {e}"),
    }
}

/// Runs every case and checks its answer is one of `allowed`, then that a healthy client
/// is still served.
async fn expect_all(server: &TestServer, cases: Vec<(&str, Vec<u8>, &[Answer])>) {
    for (what, bytes, allowed) in cases {
        let got = answer(server, &bytes).await;
        assert!(
            allowed.contains(&got),
            "{what}: got {got:?}, want one of {allowed:?}"
        );
    }
    still_serves(server).await;
}

async fn still_serves(server: &TestServer) {
    let mut c = server.client("healthy", V::V1_4).await;
    create_key(&mut c, None).await;
}

/// This process's resident set size in KiB (the server runs in-process).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn uid_text(v: &str) -> Vec<u8> {
    item(Tag::UNIQUE_IDENTIFIER, 0x07, v.as_bytes())
}

#[tokio::test]
async fn framing_and_encoding_cases() {
    let server = TestServer::start().await;
    let before = rss_kib();
    let mut cases: Vec<(&str, Vec<u8>, &[Answer])> = Vec::new();
    // 6: a structure whose length leaves a gap (trailing garbage) after its children.
    let mut gap = uid_text("1");
    gap.extend_from_slice(&[0xAB; 8]);
    cases.push(("6 trailing garbage in structure", get_with(gap), REFUSED));
    let mut whole = raw_request(op::GET, &uid_text("1"));
    whole.extend_from_slice(&[0; 8]);
    // Bytes after a frame are the next frame: the first is answered (no such key), the
    // zeros after it are no TTLV header and close the connection.
    cases.push((
        "6 trailing bytes after the message",
        whole,
        &[Answer::Failed(rr::ITEM_NOT_FOUND)],
    ));
    // 7: fixed-size types with the wrong length.
    for (what, typ, len) in [
        ("7 integer len 0", 0x02u8, 0u32),
        ("7 integer len 8", 0x02, 8),
        ("7 enum len 2", 0x05, 2),
        ("7 interval len 0", 0x0A, 0),
        ("7 long len 4", 0x03, 4),
        ("7 datetime len 0", 0x09, 0),
        ("7 boolean len 4", 0x06, 4),
        ("7 boolean len 0", 0x06, 0),
    ] {
        let body = vec![0u8; len as usize];
        let bad = item_len(Tag(0x42_0001), typ, len, &body);
        cases.push((what, get_with(bad), REFUSED));
    }
    // 8: Big Integer length 0, not a multiple of 8, 1 MiB (over the message limit).
    for (what, len) in [("8 big int len 0", 0u32), ("8 big int len 5", 5)] {
        let bad = item_len(Tag(0x42_0001), 0x04, len, &vec![0; len as usize]);
        cases.push((what, get_with(bad), REFUSED));
    }
    let big = item(Tag(0x42_0001), 0x04, &vec![0; 1 << 20]);
    cases.push(("8 big int 1 MiB", get_with(big), REFUSED));
    // 9: non-zero padding after a Text String and a Byte String.
    let mut text = uid_text("abc");
    text[8 + 3] = 0x01;
    cases.push(("9 text padding", get_with(text), REFUSED));
    let mut bytes = item(Tag(0x420042), 0x08, b"abc");
    bytes[8 + 3] = 0x01;
    cases.push(("9 byte string padding", get_with(bytes), REFUSED));
    // 10: lengths that wrap when padded.
    for len in [0xFFFF_FFF9u32, 0xFFFF_FFFC, 0xFFFF_FFFF] {
        let bad = item_len(Tag::UNIQUE_IDENTIFIER, 0x07, len, b"abcdefgh");
        cases.push(("10 wrapping text length", get_with(bad), REFUSED));
        let bad = item_len(Tag::REQUEST_PAYLOAD, 0x01, len, &[]);
        cases.push(("10 wrapping structure length", get_with(bad), REFUSED));
    }
    expect_all(&server, cases).await;
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 256 * 1024, "RSS grew by {grown} KiB");
    server.stop().await;
}

#[tokio::test]
async fn type_and_tag_cases() {
    let server = TestServer::start().await;
    let mut cases: Vec<(&str, Vec<u8>, &[Answer])> = Vec::new();
    // 11: undefined item types, and Date-Time Extended in a 1.x request.
    for typ in [0x00u8, 0x0C, 0x0D, 0x7F, 0xFF] {
        let bad = item_len(Tag::UNIQUE_IDENTIFIER, typ, 0, &[]);
        cases.push(("11 unknown item type", get_with(bad), REFUSED));
    }
    let dte = item(Tag::ACTIVATION_DATE, 0x0B, &1i64.to_be_bytes());
    cases.push(("11 date-time extended on 1.4", get_with(dte), REFUSED));
    // 12: Unique Identifier as an Integer.
    let int_uid = item(Tag::UNIQUE_IDENTIFIER, 0x02, &7i32.to_be_bytes());
    cases.push(("12 uid as integer", get_with(int_uid), REFUSED));
    // 13: unknown tags in the KMIP range, the extension range, and out of range.
    for tag in [0x42_7FFF, 0x54_1234, 0x00_0001] {
        let mut payload = uid_text("1");
        payload.extend(item(Tag(tag), 0x02, &[0, 0, 0, 1]));
        cases.push((
            "13 unknown tag in a payload",
            get_with(payload),
            &[
                Answer::Failed(rr::INVALID_MESSAGE),
                Answer::Failed(rr::INVALID_FIELD),
                Answer::Failed(rr::ITEM_NOT_FOUND),
            ],
        ));
        let msg = structure(Tag(tag), &[]);
        cases.push(("13 unknown tag as the message", msg, REFUSED));
    }
    // 14: required fields missing.
    let pv = V::V1_4.to_ttlv().encode();
    let count = Ttlv::integer(Tag::BATCH_COUNT, 1).encode();
    let operation = Ttlv::enumeration(Tag::OPERATION, op::QUERY).encode();
    let payload = structure(Tag::REQUEST_PAYLOAD, &[]);
    let msg = |header: &[u8], batch: &[u8]| {
        let mut body = structure(Tag::REQUEST_HEADER, header);
        body.extend(structure(Tag::BATCH_ITEM, batch));
        structure(Tag::REQUEST_MESSAGE, &body)
    };
    let cat = |a: &[u8], b: &[u8]| [a, b].concat();
    cases.push((
        "14 no protocol version",
        msg(&count, &cat(&operation, &payload)),
        REFUSED,
    ));
    cases.push((
        "14 no batch count",
        msg(&pv, &cat(&operation, &payload)),
        REFUSED,
    ));
    cases.push(("14 no operation", msg(&cat(&pv, &count), &payload), REFUSED));
    cases.push((
        "14 no request payload",
        msg(&cat(&pv, &count), &operation),
        // The parser is lenient here: an operation whose payload may be empty (Query) runs
        // without one.
        &[
            Answer::Ok,
            Answer::Failed(rr::INVALID_MESSAGE),
            Answer::Failed(rr::INVALID_FIELD),
            Answer::Failed(rr::MISSING_DATA),
        ],
    ));
    let mut no_batch = structure(Tag::REQUEST_HEADER, &cat(&pv, &count));
    no_batch = structure(Tag::REQUEST_MESSAGE, &no_batch);
    cases.push(("14 no batch item", no_batch, REFUSED));
    // 15: duplicate singletons.
    let header = structure(Tag::REQUEST_HEADER, &cat(&pv, &count));
    let batch = structure(Tag::BATCH_ITEM, &cat(&operation, &payload));
    let two_headers = structure(
        Tag::REQUEST_MESSAGE,
        &[&header[..], &header, &batch].concat(),
    );
    cases.push(("15 two request headers", two_headers, REFUSED));
    let two_uids = get_with(cat(&uid_text("1"), &uid_text("2")));
    // The Get payload takes one Unique Identifier: two are refused, not the first used.
    cases.push((
        "15 two uids in get",
        two_uids,
        &[Answer::Failed(rr::INVALID_MESSAGE)],
    ));
    // 16: batch item before the header.
    let reordered = structure(Tag::REQUEST_MESSAGE, &cat(&batch, &header));
    // The parser finds fields by tag, so order is tolerated: the request is answered
    // correctly (or refused), never misread.
    cases.push((
        "16 batch item before header",
        reordered,
        &[Answer::Ok, Answer::Failed(rr::INVALID_MESSAGE)],
    ));
    expect_all(&server, cases).await;
    server.stop().await;
}

#[tokio::test]
async fn amplification_cases() {
    let server = TestServer::start().await;
    let before = rss_kib();
    let mut cases: Vec<(&str, Vec<u8>, &[Answer])> = Vec::new();
    // 18: 100 000 zero-length children (800 KB, under the size limit).
    let wide: Vec<u8> = (0..100_000)
        .flat_map(|_| item(Tag(0x42_0001), 0x01, &[]))
        .collect();
    cases.push(("18 100 000 empty children", get_with(wide), REFUSED));
    // 100 000 attributes in one Create (refused by the attribute limit or the size limit).
    let attr = Ttlv::structure(
        Tag::ATTRIBUTE,
        vec![
            Ttlv::text(Tag::ATTRIBUTE_NAME, "x"),
            Ttlv::integer(Tag::ATTRIBUTE_VALUE, 1),
        ],
    )
    .encode();
    let template = structure(Tag::TEMPLATE_ATTRIBUTE, &attr.repeat(100_000));
    let create = [
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY).encode(),
        template,
    ]
    .concat();
    cases.push((
        "18 100 000 attributes",
        raw_request(op::CREATE, &create),
        REFUSED,
    ));
    // 19: Batch Count 0 and negative; 10 000 real batch items.
    for n in [0, -1, i32::MIN] {
        let mut r = request(V::V1_4, &[(op::QUERY, vec![])]);
        if let akm::ttlv::Value::Structure(c) = &mut r.value {
            if let akm::ttlv::Value::Structure(h) = &mut c[0].value {
                h[1] = Ttlv::integer(Tag::BATCH_COUNT, n);
            }
        }
        cases.push(("19 batch count", r.encode(), REFUSED));
    }
    let many: Vec<(u32, Vec<Ttlv>)> = (0..10_000).map(|_| (op::QUERY, vec![])).collect();
    cases.push((
        "19 10 000 batch items",
        request(V::V1_4, &many).encode(),
        REFUSED,
    ));
    expect_all(&server, cases).await;
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 256 * 1024, "RSS grew by {grown} KiB");
    server.stop().await;
}

/// A 1.4 Create payload for an AES key with these attribute (name, value) pairs replacing
/// or adding to the usual algorithm and length.
fn create_with(extra: Vec<(&str, Ttlv)>) -> Vec<Ttlv> {
    let mut attrs = vec![
        (
            "Cryptographic Algorithm",
            Ttlv::enumeration(Tag::ATTRIBUTE_VALUE, alg::AES),
        ),
        (
            "Cryptographic Length",
            Ttlv::integer(Tag::ATTRIBUTE_VALUE, 256),
        ),
        (
            "Cryptographic Usage Mask",
            Ttlv::integer(Tag::ATTRIBUTE_VALUE, 12),
        ),
    ];
    for (name, value) in extra {
        attrs.retain(|(n, _)| *n != name);
        attrs.push((name, value));
    }
    let attrs = attrs
        .into_iter()
        .map(|(n, v)| Ttlv::structure(Tag::ATTRIBUTE, vec![Ttlv::text(Tag::ATTRIBUTE_NAME, n), v]))
        .collect();
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, attrs),
    ]
}

fn encoded(operation: u32, payload: Vec<Ttlv>) -> Vec<u8> {
    request(V::V1_4, &[(operation, payload)]).encode()
}

#[tokio::test]
async fn value_cases() {
    let server = TestServer::start().await;
    let mut cases: Vec<(&str, Vec<u8>, &[Answer])> = Vec::new();
    // 20: invalid and overlong UTF-8 (refused by the decoder); NUL and a 1 MiB name.
    for (what, text) in [
        ("20 invalid utf-8", &[0xFFu8, 0xFE][..]),
        ("20 overlong utf-8", &[0xC0, 0xAF][..]),
    ] {
        cases.push((
            what,
            get_with(item(Tag::UNIQUE_IDENTIFIER, 0x07, text)),
            REFUSED,
        ));
    }
    let not_found: &[Answer] = &[Answer::Failed(rr::ITEM_NOT_FOUND)];
    cases.push(("20 embedded NUL", get_with(uid_text("a\0b")), not_found));
    let huge_name = Ttlv::structure(
        Tag::ATTRIBUTE_VALUE,
        vec![
            Ttlv::text(Tag::NAME_VALUE, "n".repeat(1 << 20)),
            Ttlv::enumeration(Tag(0x420054), 1),
        ],
    );
    cases.push((
        "20 1 MiB name",
        encoded(op::CREATE, create_with(vec![("Name", huge_name)])),
        REFUSED,
    ));
    // 21: Boolean values other than 0 and 1.
    for v in [2u64, u64::MAX] {
        let b = item(Tag(0x420001), 0x06, &v.to_be_bytes());
        cases.push(("21 boolean", get_with(b), REFUSED));
    }
    // 22: undefined enumerations.
    cases.push((
        "22 operation 0xDEADBEEF",
        encoded(0xDEAD_BEEF, vec![]),
        REFUSED,
    ));
    let bad_type = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, 0),
        create_with(vec![])[1].clone(),
    ];
    cases.push(("22 object type 0", encoded(op::CREATE, bad_type), REFUSED));
    let bad_alg = create_with(vec![(
        "Cryptographic Algorithm",
        Ttlv::enumeration(Tag::ATTRIBUTE_VALUE, 0x7FFF_FFFF),
    )]);
    cases.push((
        "22 algorithm 0x7FFFFFFF",
        encoded(op::CREATE, bad_alg),
        &[
            Answer::Failed(rr::INVALID_FIELD),
            Answer::Failed(rr::INVALID_MESSAGE),
            Answer::Failed(rr::FEATURE_NOT_SUPPORTED),
            Answer::Failed(rr::CRYPTOGRAPHIC_FAILURE),
        ],
    ));
    // 23: Cryptographic Length edges.
    for len in [0, -1, i32::MIN, i32::MAX, 257] {
        let c = create_with(vec![(
            "Cryptographic Length",
            Ttlv::integer(Tag::ATTRIBUTE_VALUE, len),
        )]);
        cases.push((
            "23 cryptographic length",
            encoded(op::CREATE, c),
            &[
                Answer::Failed(rr::INVALID_FIELD),
                Answer::Failed(rr::INVALID_MESSAGE),
                Answer::Failed(rr::CRYPTOGRAPHIC_FAILURE),
                Answer::Failed(rr::FEATURE_NOT_SUPPORTED),
            ],
        ));
    }
    // 24: Date-Time extremes as an Activation Date (accepted or refused, never overflowed),
    // and in the request header's Time Stamp.
    for t in [i64::MIN, i64::MAX, -1] {
        let c = create_with(vec![(
            "Activation Date",
            Ttlv::datetime(Tag::ATTRIBUTE_VALUE, t),
        )]);
        cases.push((
            "24 activation date",
            encoded(op::CREATE, c),
            &[
                Answer::Ok,
                Answer::Failed(rr::INVALID_FIELD),
                Answer::Failed(rr::INVALID_MESSAGE),
            ],
        ));
    }
    // 25: Interval 0xFFFFFFFF as a Re-key Offset (Re-key is not offered) and as a Lease Time.
    let rekey = vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, "1"),
        Ttlv::interval(Tag::OFFSET, u32::MAX),
    ];
    cases.push((
        "25 re-key offset",
        encoded(op::RE_KEY, rekey),
        &[
            Answer::Failed(rr::OPERATION_NOT_SUPPORTED),
            Answer::Failed(rr::ITEM_NOT_FOUND),
            Answer::Failed(rr::INVALID_FIELD),
        ],
    ));
    let lease = create_with(vec![(
        "Lease Time",
        Ttlv::interval(Tag::ATTRIBUTE_VALUE, u32::MAX),
    )]);
    cases.push((
        "25 lease time",
        encoded(op::CREATE, lease),
        &[
            Answer::Ok,
            Answer::Failed(rr::INVALID_FIELD),
            Answer::Failed(rr::INVALID_MESSAGE),
        ],
    ));
    expect_all(&server, cases).await;
    server.stop().await;
}

#[tokio::test]
async fn protocol_version_one_zero_is_answered_in_one_zero() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    let resp = c
        .send(&request(V::V1_0, &[(op::DISCOVER_VERSIONS, vec![])]))
        .await
        .unwrap();
    assert_eq!(response_version(&resp), Some(V::V1_0));
    server.stop().await;
}

#[tokio::test]
async fn maximum_response_size_one_is_response_too_large() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    let mut r = request(V::V1_4, &[(op::QUERY, vec![])]);
    if let akm::ttlv::Value::Structure(children) = &mut r.value {
        if let akm::ttlv::Value::Structure(h) = &mut children[0].value {
            h.insert(1, Ttlv::integer(Tag::MAXIMUM_RESPONSE_SIZE, 1));
        }
    }
    let resp = c.send(&r).await.unwrap();
    let first = response_items(&resp).unwrap().into_iter().next().unwrap();
    assert_eq!(reason(first), rr::RESPONSE_TOO_LARGE);
    // The connection carries on.
    create_key(&mut c, None).await;
    server.stop().await;
}

/// Whether the peer closes `s` (EOF or reset) before `within`.
pub(crate) async fn closed_within(s: &mut (impl AsyncReadExt + Unpin), within: Duration) -> bool {
    let mut buf = [0u8; 64];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// A raw TLS stream (not `Client`) to `server`, for byte-level timing of writes.
pub(crate) async fn raw_tls(
    server: &TestServer,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tls = server.client_tls("slow", &["users"]);
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = akm::tls::server_name("localhost").unwrap();
    tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn short_header_then_eof_or_stall() {
    let server = TestServer::start().await;
    // Three header bytes then EOF.
    let mut s = raw_tls(&server).await;
    s.write_all(&[0x42, 0x00, 0x78]).await.unwrap();
    s.shutdown().await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(10)).await);
    // Three header bytes then silence: closed by the frame timeout (3 s in tests).
    let mut s = raw_tls(&server).await;
    s.write_all(&[0x42, 0x00, 0x78]).await.unwrap();
    s.flush().await.unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(30)).await,
        "slow-loris header kept open"
    );
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn huge_declared_length_then_silence_is_closed() {
    let server = TestServer::start().await;
    let before = rss_kib();
    let mut s = raw_tls(&server).await;
    s.write_all(&[0x42, 0x00, 0x78, 0x01, 0xFF, 0xFF, 0xFF, 0xFF])
        .await
        .unwrap();
    s.flush().await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(30)).await);
    // A length just under the limit, then silence: closed by the frame timeout.
    let mut s = raw_tls(&server).await;
    s.write_all(&[0x42, 0x00, 0x78, 0x01, 0x00, 0x0F, 0xFF, 0xF0])
        .await
        .unwrap();
    s.flush().await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(30)).await);
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn dripped_request_is_closed_after_the_idle_timeout() {
    let server = TestServer::start().await;
    let good = request(V::V1_4, &[(op::QUERY, vec![])]).encode();
    let mut s = raw_tls(&server).await;
    // One byte a second; the whole request must arrive within the frame timeout (3 s here),
    // so the server closes long before the ~100 bytes are through.
    let mut closed = false;
    for b in &good {
        if s.write_all(&[*b]).await.is_err() || s.flush().await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut s, Duration::from_secs(1)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "a request dripped at 1 byte/s was served");
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn idle_after_handshake_is_closed() {
    let server = TestServer::start().await;
    let mut s = raw_tls(&server).await;
    assert!(
        closed_within(&mut s, Duration::from_secs(30)).await,
        "idle session kept open"
    );
    server.stop().await;
}

#[tokio::test]
async fn pipelined_requests_and_a_request_after_an_error() {
    let server = TestServer::start().await;
    let mut c = server.client("alice", V::V1_4).await;
    let good = request(V::V1_4, &[(op::QUERY, vec![])]).encode();
    let bad = get_with(item(Tag::UNIQUE_IDENTIFIER, 0x02, &[0, 0, 0, 1]));
    // Two requests in one write (one TLS record, one segment): two responses in order.
    let both = [bad.clone(), good.clone()].concat();
    let first = c.send_bytes(&both).await.unwrap();
    assert_eq!(
        reason(response_items(&first).unwrap().remove(0)),
        rr::INVALID_MESSAGE
    );
    let second = c.read_response().await.unwrap();
    assert!(response_items(&second).unwrap()[0].is_ok());
    // And a request after an error response on the same connection.
    let again = c.send_bytes(&good).await.unwrap();
    assert!(response_items(&again).unwrap()[0].is_ok());
    server.stop().await;
}

/// A minimal TLS 1.0 (or 1.1) ClientHello record offering one RSA cipher suite.
fn old_client_hello(minor: u8) -> Vec<u8> {
    let mut hello = vec![0x03, minor];
    hello.extend_from_slice(&[0x11; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x02, 0x00, 0x2F]); // TLS_RSA_WITH_AES_128_CBC_SHA
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0x00];
    hs.extend_from_slice(&(hello.len() as u16).to_be_bytes());
    hs.extend(hello);
    let mut record = vec![0x16, 0x03, minor];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend(hs);
    record
}

#[tokio::test]
async fn tls_cases() {
    let server = TestServer::start().await;
    // No client certificate at all.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca.cert_der().clone()).unwrap();
    let anonymous =
        rustls::ClientConfig::builder_with_provider(akm::crypto::backend::tls_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let refused = match server
        .connect(std::sync::Arc::new(anonymous), V::V1_4)
        .await
    {
        Err(_) => true,
        Ok(mut c) => c
            .send(&request(V::V1_4, &[(op::QUERY, vec![])]))
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate was served");
    // A certificate without a CN.
    let no_cn = server
        .ca
        .issue_client("", &["users".into()], akm::pki::Validity::days_from_now(1));
    if let Ok(issued) = no_cn {
        let refused = match server
            .connect(server.client_tls_for(&issued), V::V1_4)
            .await
        {
            Err(_) => true,
            Ok(mut c) => c
                .send(&request(V::V1_4, &[(op::QUERY, vec![])]))
                .await
                .is_err(),
        };
        assert!(refused, "a certificate without a CN was served");
    }
    // TLS 1.0 and 1.1 ClientHellos, and a ClientHello followed at once by close.
    for minor in [1u8, 2] {
        let mut raw = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        raw.write_all(&old_client_hello(minor)).await.unwrap();
        let mut buf = [0u8; 64];
        // The server answers with an alert (or nothing) and closes; never a ServerHello.
        let n = tokio::time::timeout(Duration::from_secs(10), raw.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert!(
            n == 0 || buf[0] == 0x15,
            "TLS 1.{} hello got record type {}",
            minor - 1,
            buf[0]
        );
    }
    let mut raw = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(&old_client_hello(3)).await.unwrap();
    // close_notify (alert level 1, description 0) right after the hello, then EOF.
    raw.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00])
        .await
        .unwrap();
    raw.shutdown().await.unwrap();
    assert!(closed_within(&mut raw, Duration::from_secs(10)).await);
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn connection_flood_does_not_stop_served_clients() {
    let mut settings = test_settings();
    settings.max_connections = 8;
    let server = TestServer::start_with(settings).await;
    let mut served = server.client("alice", V::V1_4).await;
    create_key(&mut served, None).await;
    // 200 raw connections that never handshake: each new one past the pending-handshake
    // budget (64 from one address) evicts the oldest; the rest close at the handshake timeout.
    let mut flood = Vec::new();
    for _ in 0..200 {
        if let Ok(s) = tokio::net::TcpStream::connect(server.addr).await {
            flood.push(s);
        }
    }
    // The session opened before the flood is still served throughout.
    for _ in 0..5 {
        create_key(&mut served, None).await;
    }
    drop(flood);
    // Once the flood is gone, new clients get in again.
    let mut ok = false;
    for _ in 0..100 {
        let tls = server.client_tls("carol", &["users"]);
        if let Ok(mut c) = server.connect(tls, V::V1_4).await {
            if c.call(op::QUERY, vec![]).await.is_ok() {
                ok = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "no new client was served after the flood");
    server.stop().await;
}

#[tokio::test]
async fn each_rejected_message_has_one_audit_record_without_key_material() {
    let server = TestServer::start().await;
    let secret = [0xA7u8; 32];
    // Well-framed but malformed messages, one carrying key bytes in a Register.
    let mut register = request(
        V::V1_4,
        &[(op::REGISTER, register_key_payload(V::V1_4, &secret, &[]))],
    )
    .encode();
    let at = register.len() - 1;
    register[at] = 0xFF; // non-zero padding after the last item: undecodable
    let bad = [
        register,
        get_with(item(Tag::UNIQUE_IDENTIFIER, 0x02, &[0, 0, 0, 1])),
        get_with(item_len(Tag::UNIQUE_IDENTIFIER, 0x07, 0xFFFF_FFFF, b"")),
    ];
    for bytes in &bad {
        let got = answer(&server, bytes).await;
        assert!(REFUSED.contains(&got));
    }
    let journal = server.journal_path();
    let _dir = server.stop().await;
    let text = std::fs::read_to_string(&journal).unwrap();
    let refused = crate::audit::records(&journal)
        .into_iter()
        // Refused before dispatch (`message`) or by the operation's payload parser (`kmip`).
        .filter(|r| matches!(r.get("event"), Some("message" | "kmip")))
        .filter(|r| r.get("outcome") == Some("failure"))
        .count();
    assert_eq!(
        refused,
        bad.len(),
        "one record per rejected message:\n{text}"
    );
    assert!(!text.to_lowercase().contains(&hex::encode(secret)));
}
