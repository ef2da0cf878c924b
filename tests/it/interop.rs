//! Transcript tests for the real clients in `../shared/design/INTEROP.md`: for vSphere,
//! MongoDB (and libmongocrypt), Percona/libkmip, Veeam and FortiGate, the operation sequence
//! each sends (protocol versions, header fields, attribute encodings, Locate paging, TLS
//! session resumption) against the in-process server, asserting what the client reads back;
//! then one test per "failure seen in other servers" listed there, and fixes found by running
//! PyKMIP's own suite. The request shapes follow each client's source (libkmip, kms-message)
//! where it is public, and INTEROP.md otherwise.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::kmip::attributes::{self, Attr};
use akm::kmip::enums::{
    certificate_type as cert_type, cryptographic_algorithm as alg,
    cryptographic_usage_mask as mask, key_format_type as kft, object_type as ot, operation as op,
    result_reason as rr, secret_data_type, state,
};
use akm::kmip::ProtocolVersion as V;
use akm::pki::Validity;
use akm::ttlv::{Limits, Tag, Ttlv, Value};
use rustls::HandshakeKind;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The Attribute Index of the 1.x Attribute structures named `attr_name` in a payload.
fn indexes_of(payload: &Ttlv, attr_name: &str) -> Vec<Option<i32>> {
    payload
        .children_with(Tag::ATTRIBUTE)
        .filter(|a| a.child(Tag::ATTRIBUTE_NAME).and_then(Ttlv::as_text) == Some(attr_name))
        .map(|a| a.child(Tag::ATTRIBUTE_INDEX).and_then(Ttlv::as_int))
        .collect()
}

/// PyKMIP reads `attribute_index.value` of the Name it gets back from Get Attributes,
/// Modify Attribute and Delete Attribute, and fails when the index is left out. KMIP lets a
/// server omit index 0; akm sends it, in every 1.x version.
#[tokio::test]
async fn kmip_1_x_attribute_responses_carry_attribute_index_0() {
    let server = TestServer::start().await;
    for version in [V::V1_0, V::V1_2, V::V1_4] {
        let mut c = server.client("pykmip-index", version).await;
        let key_name = format!("index-{version}");
        let u = create_key(&mut c, Some(&key_name)).await;

        let mut p = uid(&u);
        p.push(Ttlv::text(Tag::ATTRIBUTE_NAME, "Name"));
        let got = c.call(op::GET_ATTRIBUTES, p).await.unwrap();
        assert_eq!(indexes_of(&got, "Name"), vec![Some(0)], "{version}");
        // Every multi-instance attribute carries its index; single-instance ones need none.
        let all = c.call(op::GET_ATTRIBUTES, uid(&u)).await.unwrap();
        assert_eq!(indexes_of(&all, "Name"), vec![Some(0)], "{version}");
        assert_eq!(indexes_of(&all, "State"), vec![None], "{version}");

        let renamed = Attr::new("Name", name(&format!("renamed-{version}")));
        let mut p = uid(&u);
        p.push(attributes::to_v1(&renamed, Some(0)));
        let modified = c.call(op::MODIFY_ATTRIBUTE, p).await.unwrap();
        assert_eq!(indexes_of(&modified, "Name"), vec![Some(0)], "{version}");

        let mut p = uid(&u);
        p.push(Ttlv::text(Tag::ATTRIBUTE_NAME, "Name"));
        p.push(Ttlv::integer(Tag::ATTRIBUTE_INDEX, 0));
        let deleted = c.call(op::DELETE_ATTRIBUTE, p).await.unwrap();
        assert_eq!(indexes_of(&deleted, "Name"), vec![Some(0)], "{version}");
        let echoed = deleted
            .child(Tag::ATTRIBUTE)
            .and_then(|a| attributes::from_v1(a).ok())
            .map(|(a, _)| a);
        assert_eq!(echoed, Some(renamed), "Delete echoes the deleted instance");
        assert!(get_attrs(&mut c, &u, &["Name"]).await.is_empty());
    }
    server.stop().await;
}

// ---- helpers: requests shaped exactly as each client builds them ----

/// A 1.x Attribute structure.
fn attr(attr_name: &str, value: Value) -> Ttlv {
    attributes::to_v1(&Attr::new(attr_name, value), None)
}

/// A Template-Attribute holding `attrs`.
fn template_attribute(attrs: Vec<Ttlv>) -> Ttlv {
    Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, attrs)
}

/// A request message whose header carries `extra` fields after the Protocol Version (libkmip
/// sends Maximum Response Size and Time Stamp; most clients send nothing more).
fn message(version: V, extra: Vec<Ttlv>, items: Vec<Ttlv>) -> Ttlv {
    let mut header = vec![version.to_ttlv()];
    header.extend(extra);
    header.push(Ttlv::integer(Tag::BATCH_COUNT, items.len() as i32));
    let mut children = vec![Ttlv::structure(Tag::REQUEST_HEADER, header)];
    children.extend(items);
    Ttlv::structure(Tag::REQUEST_MESSAGE, children)
}

/// A request batch item, with a Unique Batch Item ID when the client sends one.
fn item(operation: u32, batch_id: Option<&[u8]>, payload: Vec<Ttlv>) -> Ttlv {
    let mut c = vec![Ttlv::enumeration(Tag::OPERATION, operation)];
    if let Some(id) = batch_id {
        c.push(Ttlv::bytes(Tag::UNIQUE_BATCH_ITEM_ID, id));
    }
    c.push(Ttlv::structure(Tag::REQUEST_PAYLOAD, payload));
    Ttlv::structure(Tag::BATCH_ITEM, c)
}

/// Sends one single-item message and returns the whole response message.
async fn send(c: &mut akm::client::Client, msg: &Ttlv) -> Ttlv {
    c.send(msg).await.expect("a response message")
}

/// The payload of a response's only batch item, which must have succeeded.
fn ok(response: &Ttlv) -> Ttlv {
    let mut items = akm::client::response_items(response).expect("a response message");
    assert_eq!(items.len(), 1, "one batch item expected: {response:?}");
    items
        .remove(0)
        .unwrap_or_else(|e| panic!("operation failed: {e}"))
}

/// The Result Reason of a response's only batch item, which must have failed with a Result
/// Message (PyKMIP and libkmip both read it).
fn failed(response: &Ttlv) -> u32 {
    let item = response.child(Tag::BATCH_ITEM).expect("a batch item");
    assert!(
        item.child(Tag::RESULT_MESSAGE)
            .and_then(Ttlv::as_text)
            .is_some_and(|m| !m.is_empty()),
        "a failure carries a Result Message: {item:?}"
    );
    reason(Err(akm::client::response_items(response)
        .unwrap()
        .remove(0)
        .expect_err("the operation should have failed")))
}

/// The response header holds exactly Protocol Version (the request's), Time Stamp and Batch
/// Count: PyKMIP and libkmip reject any other field there.
fn assert_plain_header(response: &Ttlv, version: V) {
    let header = response
        .child(Tag::RESPONSE_HEADER)
        .expect("a response header");
    let tags: Vec<Tag> = header.children().iter().map(|t| t.tag).collect();
    assert_eq!(
        tags,
        vec![Tag::PROTOCOL_VERSION, Tag::TIME_STAMP, Tag::BATCH_COUNT],
        "{version} response header"
    );
    assert_eq!(response_version(response), Some(version));
}

/// Create's Template-Attribute for an AES-256 key usable to encrypt and decrypt, as vSphere,
/// MongoDB and libkmip send it (no Name unless `key_name`, no Object Group unless `group`).
fn aes_256_template(key_name: Option<&str>, group: Option<&str>) -> Ttlv {
    let mut attrs = vec![
        attr("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
        attr("Cryptographic Length", Value::Integer(256)),
        attr(
            "Cryptographic Usage Mask",
            Value::Integer(mask::ENCRYPT | mask::DECRYPT),
        ),
    ];
    if let Some(n) = key_name {
        attrs.push(attr("Name", name(n)));
    }
    if let Some(g) = group {
        attrs.push(attr("Object Group", Value::TextString(g.into())));
    }
    template_attribute(attrs)
}

fn create_aes_256(key_name: Option<&str>, group: Option<&str>) -> Vec<Ttlv> {
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        aes_256_template(key_name, group),
    ]
}

/// A Get Attributes payload naming `names` (1.x Attribute Name strings).
fn get_attributes(u: &str, names: &[&str]) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.extend(names.iter().map(|n| Ttlv::text(Tag::ATTRIBUTE_NAME, *n)));
    p
}

/// The single State of a 1.x Get Attributes response.
fn state_in(payload: &Ttlv) -> u32 {
    let attrs = attrs_of(V::V1_0, payload);
    match attrs.as_slice() {
        [a] if a.name == "State" => match a.value {
            Value::Enumeration(s) => s,
            ref other => panic!("State is not an Enumeration: {other:?}"),
        },
        other => panic!("expected exactly the State attribute, got {other:?}"),
    }
}

// ---- VMware vSphere / vSAN: KMIP 1.1 ----

/// vCenter creates an AES-256 key, asks for its State at once, activates it if it is
/// Pre-Active (vSphere only encrypts with Active keys), and at VM power-on (a new connection)
/// gets the key. It never destroys keys.
#[tokio::test]
async fn vsphere_creates_checks_state_activates_and_gets_at_power_on() {
    let server = TestServer::start().await;
    let v = V::V1_1;
    let mut vcenter = server.client("vcenter", v).await;
    let created = send(
        &mut vcenter,
        &message(
            v,
            vec![],
            vec![item(op::CREATE, None, create_aes_256(None, None))],
        ),
    )
    .await;
    assert_plain_header(&created, v);
    let created = ok(&created);
    assert_eq!(
        created.child(Tag::OBJECT_TYPE).and_then(Ttlv::as_enum),
        Some(ot::SYMMETRIC_KEY)
    );
    let u = uid_of(&created);

    let got = vcenter
        .call(op::GET_ATTRIBUTES, get_attributes(&u, &["State"]))
        .await;
    assert_eq!(state_in(&got.unwrap()), state::PRE_ACTIVE);
    vcenter.call(op::ACTIVATE, uid(&u)).await.unwrap();
    let got = vcenter
        .call(op::GET_ATTRIBUTES, get_attributes(&u, &["State"]))
        .await;
    assert_eq!(state_in(&got.unwrap()), state::ACTIVE);

    // Power-on: a fresh connection of the same identity fetches the key.
    let mut power_on = server.client("vcenter", v).await;
    let got = send(
        &mut power_on,
        &message(v, vec![], vec![item(op::GET, None, uid(&u))]),
    )
    .await;
    assert_plain_header(&got, v);
    let got = ok(&got);
    assert_eq!(
        got.child(Tag::OBJECT_TYPE).and_then(Ttlv::as_enum),
        Some(ot::SYMMETRIC_KEY)
    );
    assert_eq!(key_bytes(&got).len(), 32);
    let got = power_on
        .call(op::GET_ATTRIBUTES, get_attributes(&u, &["State"]))
        .await;
    assert_eq!(state_in(&got.unwrap()), state::ACTIVE);
    server.stop().await;
}

// ---- MongoDB Enterprise (KMIP 1.2) and libmongocrypt (KMIP 1.0 and 1.2) ----

/// mongod creates an AES-256 key when it has no key id, gets it, activates it, then polls
/// the State and shuts down when the key is no longer Active. With the default protocol it
/// wraps its keystore with Encrypt/Decrypt on the server, naming no parameters: akm uses
/// AES-CBC with PKCS#5 padding and returns the IV it made.
#[tokio::test]
async fn mongodb_creates_gets_activates_and_polls_state() {
    let server = TestServer::start().await;
    let v = V::V1_2;
    let mut mongod = server.client("mongod", v).await;
    let u = uid_of(
        &mongod
            .call(op::CREATE, create_aes_256(None, None))
            .await
            .unwrap(),
    );
    let got = mongod.call(op::GET, uid(&u)).await.unwrap();
    assert_eq!(key_bytes(&got).len(), 32);
    mongod.call(op::ACTIVATE, uid(&u)).await.unwrap();
    for _poll in 0..3 {
        let got = mongod
            .call(op::GET_ATTRIBUTES, get_attributes(&u, &["State"]))
            .await;
        assert_eq!(state_in(&got.unwrap()), state::ACTIVE);
    }

    // Keystore wrapping: Encrypt with only the key and the data (AES-CBC, PKCS#5, a server-made
    // IV), then Decrypt with the IV it got back.
    let encrypt = vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, u.clone()),
        Ttlv::bytes(Tag::DATA, vec![0x5A; 32]),
    ];
    let sealed = send(
        &mut mongod,
        &message(v, vec![], vec![item(op::ENCRYPT, None, encrypt)]),
    )
    .await;
    assert_plain_header(&sealed, v);
    let sealed = ok(&sealed);
    let field = |t| sealed.child(t).and_then(Ttlv::as_bytes).unwrap().to_vec();
    let decrypt = vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, u.clone()),
        Ttlv::bytes(Tag::DATA, field(Tag::DATA)),
        Ttlv::bytes(Tag::IV_COUNTER_NONCE, field(Tag::IV_COUNTER_NONCE)),
    ];
    let opened = send(
        &mut mongod,
        &message(v, vec![], vec![item(op::DECRYPT, None, decrypt)]),
    )
    .await;
    assert_eq!(
        ok(&opened).child(Tag::DATA).and_then(Ttlv::as_bytes),
        Some(&[0x5A; 32][..])
    );

    // An operator revokes the key: the next poll sees it, so mongod stops cleanly.
    let mut revoke = uid(&u);
    revoke.push(Ttlv::structure(
        Tag::REVOCATION_REASON,
        vec![Ttlv::enumeration(
            Tag::REVOCATION_REASON_CODE,
            akm::kmip::enums::revocation_reason_code::CESSATION_OF_OPERATION,
        )],
    ));
    mongod.call(op::REVOKE, revoke).await.unwrap();
    let got = mongod
        .call(op::GET_ATTRIBUTES, get_attributes(&u, &["State"]))
        .await;
    assert_eq!(state_in(&got.unwrap()), state::DEACTIVATED);
    // A key id the server never issued (mongod restarted with a wrong --kmipKeyIdentifier).
    let unknown = mongod
        .call(
            op::GET_ATTRIBUTES,
            get_attributes("no-such-key", &["State"]),
        )
        .await;
    assert_eq!(reason(unknown), rr::ITEM_NOT_FOUND);
    server.stop().await;
}

/// mongod checks the server certificate's name strictly. A server certificate made by akm's
/// development PKI for the names an operator configured is accepted for each of them (DNS
/// name and IP address) and refused for any other name.
#[tokio::test]
async fn mongodb_strict_hostname_check_passes_for_the_configured_names_only() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["kms.example.com".to_string(), "127.0.0.1".to_string()];
    let files = akm::pki::init_dev_pki(dir.path(), &names).unwrap();
    let ca = akm::pki::Ca::from_pem(
        &std::fs::read(&files.ca_cert).unwrap(),
        &std::fs::read(&files.ca_key).unwrap(),
    )
    .unwrap();
    let no_crls: [&std::path::Path; 0] = [];
    let tls = akm::server::tls::server_config(
        &files.server_cert,
        &files.server_key,
        &files.ca_cert,
        &no_crls,
    )
    .unwrap();
    let server = TestServer::start_with_tls(ca, tls, crate::support::server::test_settings()).await;
    let client =
        akm::tls::client_config(&files.user_cert, &files.user_key, &files.ca_cert).unwrap();
    for (host, accepted) in [
        ("kms.example.com", true),
        ("127.0.0.1", true),
        ("other.example.com", false),
        ("127.0.0.2", false),
    ] {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
        let result = tokio_rustls::TlsConnector::from(client.clone())
            .connect(name, tcp)
            .await;
        assert_eq!(result.is_ok(), accepted, "server name {host}");
        if let Ok(mut stream) = result {
            let v = V::V1_2;
            let located = raw_call(
                &mut stream,
                &message(v, vec![], vec![item(op::LOCATE, None, vec![])]),
            )
            .await;
            ok(&located);
        }
    }
    server.stop().await;
}

/// libmongocrypt (client-side field level encryption) registers a 96-byte Secret Data (type
/// Seed, format Opaque, Usage Mask 0) in KMIP 1.0 with a Unique Batch Item ID, activates it
/// and gets it back byte for byte.
#[tokio::test]
async fn libmongocrypt_registers_96_byte_secret_data_activates_and_gets_it() {
    let server = TestServer::start().await;
    let v = V::V1_0;
    let mut c = server.client("libmongocrypt", v).await;
    let secret: Vec<u8> = (0..96u8).map(|b| b.wrapping_mul(7) ^ 0xA5).collect();
    let register = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SECRET_DATA),
        template_attribute(vec![attr("Cryptographic Usage Mask", Value::Integer(0))]),
        Ttlv::structure(
            Tag::SECRET_DATA,
            vec![
                Ttlv::enumeration(Tag::SECRET_DATA_TYPE, secret_data_type::SEED),
                Ttlv::structure(
                    Tag::KEY_BLOCK,
                    vec![
                        Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::OPAQUE),
                        Ttlv::structure(
                            Tag::KEY_VALUE,
                            vec![Ttlv::bytes(Tag::KEY_MATERIAL, secret.clone())],
                        ),
                    ],
                ),
            ],
        ),
    ];
    let response = send(
        &mut c,
        &message(v, vec![], vec![item(op::REGISTER, Some(b"A"), register)]),
    )
    .await;
    assert_plain_header(&response, v);
    let batch_item = response.child(Tag::BATCH_ITEM).unwrap();
    assert_eq!(
        batch_item
            .child(Tag::UNIQUE_BATCH_ITEM_ID)
            .and_then(Ttlv::as_bytes),
        Some(&b"A"[..]),
        "the Unique Batch Item ID is echoed"
    );
    let u = uid_of(&ok(&response));
    let activated = send(
        &mut c,
        &message(v, vec![], vec![item(op::ACTIVATE, None, uid(&u))]),
    )
    .await;
    assert_eq!(uid_of(&ok(&activated)), u);
    let got = ok(&send(
        &mut c,
        &message(v, vec![], vec![item(op::GET, None, uid(&u))]),
    )
    .await);
    assert_eq!(
        got.child(Tag::OBJECT_TYPE).and_then(Ttlv::as_enum),
        Some(ot::SECRET_DATA)
    );
    let data = got.child(Tag::SECRET_DATA).expect("a Secret Data object");
    assert_eq!(
        data.child(Tag::SECRET_DATA_TYPE).and_then(Ttlv::as_enum),
        Some(secret_data_type::SEED)
    );
    let block = data.child(Tag::KEY_BLOCK).unwrap();
    assert_eq!(
        block.child(Tag::KEY_FORMAT_TYPE).and_then(Ttlv::as_enum),
        Some(kft::OPAQUE)
    );
    assert_eq!(key_bytes(&got), secret);
    server.stop().await;
}

// ---- MySQL Enterprise keyring_okv: KMIP 1.1 ----

/// keyring_okv creates a named master key, gets it, rotates by creating the next key (the
/// old one stays readable for re-encryption) and destroys keys it no longer needs. It never
/// activates them, so they stay Pre-Active, which KMIP lets Get read and Destroy remove.
#[tokio::test]
async fn mysql_keyring_okv_creates_rotates_and_destroys() {
    let server = TestServer::start().await;
    let v = V::V1_1;
    let mut mysqld = server.client("mysqld", v).await;
    let mut keys = Vec::new();
    for generation in 1..=2 {
        let key_name = format!("INNODBKey-4b1f-{generation}");
        let u = uid_of(
            &mysqld
                .call(op::CREATE, create_aes_256(Some(&key_name), None))
                .await
                .unwrap(),
        );
        let got = mysqld.call(op::GET, uid(&u)).await.unwrap();
        keys.push((u, key_bytes(&got)));
    }
    assert_ne!(keys[0].1, keys[1].1, "a rotation gives a new key");
    // After rotation the old key still serves, byte for byte, until it is destroyed.
    let old = mysqld.call(op::GET, uid(&keys[0].0)).await.unwrap();
    assert_eq!(key_bytes(&old), keys[0].1);
    let destroyed = send(
        &mut mysqld,
        &message(v, vec![], vec![item(op::DESTROY, None, uid(&keys[0].0))]),
    )
    .await;
    assert_plain_header(&destroyed, v);
    assert_eq!(uid_of(&ok(&destroyed)), keys[0].0);
    assert_eq!(
        reason(mysqld.call(op::GET, uid(&keys[0].0)).await),
        rr::ITEM_NOT_FOUND
    );
    let current = mysqld.call(op::GET, uid(&keys[1].0)).await.unwrap();
    assert_eq!(key_bytes(&current), keys[1].1);
    server.stop().await;
}

// ---- Percona keyring_kmip / pg_tde (libkmip): KMIP 1.0 and 1.4 ----

/// libkmip's request header: it adds Maximum Response Size and Time Stamp.
fn libkmip_header() -> Vec<Ttlv> {
    vec![
        Ttlv::integer(Tag::MAXIMUM_RESPONSE_SIZE, 8192),
        Ttlv::datetime(Tag::TIME_STAMP, 1_700_000_000),
    ]
}

/// One libkmip call: a KMIP 1.0 (or `v`) message with libkmip's header.
async fn libkmip(c: &mut akm::client::Client, v: V, operation: u32, payload: Vec<Ttlv>) -> Ttlv {
    let response = send(
        c,
        &message(v, libkmip_header(), vec![item(operation, None, payload)]),
    )
    .await;
    assert_plain_header(&response, v);
    response
}

/// libkmip's Locate loop (kmippp `op_locate`, `op_locate_by_group`, `op_all`): KMIP 1.0,
/// Maximum Items 16, Offset Items only when non-zero, until it has Located Items ids or a
/// page comes back empty. Returns the ids and the number of calls it took.
async fn libkmip_locate_all(c: &mut akm::client::Client, filters: &[Ttlv]) -> (Vec<String>, usize) {
    let (mut upto, mut all, mut calls) = (0usize, 1usize, 0usize);
    let mut found = Vec::new();
    while upto < all {
        calls += 1;
        assert!(calls <= 100, "libkmip's Locate loop does not end");
        let mut p = vec![Ttlv::integer(Tag::MAXIMUM_ITEMS, 16)];
        if upto > 0 {
            p.push(Ttlv::integer(Tag::OFFSET_ITEMS, upto as i32));
        }
        p.extend(filters.iter().cloned());
        let page = ok(&libkmip(c, V::V1_0, op::LOCATE, p).await);
        let ids = uids_of(&page);
        assert!(ids.len() <= 16, "Maximum Items is honoured");
        match page.child(Tag::LOCATED_ITEMS).and_then(Ttlv::as_int) {
            Some(n) if n != 0 => all = n as usize,
            // Without Located Items libkmip keeps asking until a page is empty.
            _ => {
                all += ids.len();
                if ids.is_empty() {
                    all -= 1;
                }
            }
        }
        upto += ids.len();
        found.extend(ids);
    }
    (found, calls)
}

/// Percona's keyring: Create (KMIP 1.0, with Name and Object Group) or Register (KMIP 1.4,
/// with libkmip's stray Key Compression Type in a symmetric Key Block), Activate, Get, Get
/// Attributes (Name), Locate by Name, by group and all, paged 16 at a time with Offset Items
/// (sent even in 1.0 requests), and Destroy.
#[tokio::test]
async fn percona_libkmip_creates_registers_locates_in_pages_and_destroys() {
    let server = TestServer::start().await;
    let mut c = server.client("percona", V::V1_0).await;
    let created = ok(&libkmip(
        &mut c,
        V::V1_0,
        op::CREATE,
        create_aes_256(Some("percona-master-1"), Some("percona-keys")),
    )
    .await);
    let created = uid_of(&created);

    let key = [0x3Cu8; 32];
    let register = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
        template_attribute(vec![
            attr("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
            attr("Cryptographic Length", Value::Integer(256)),
            attr(
                "Cryptographic Usage Mask",
                Value::Integer(mask::ENCRYPT | mask::DECRYPT),
            ),
            attr("Name", name("percona-registered-1")),
        ]),
        Ttlv::structure(
            Tag::SYMMETRIC_KEY,
            vec![Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::RAW),
                    Ttlv::enumeration(
                        Tag::KEY_COMPRESSION_TYPE,
                        akm::kmip::enums::key_compression_type::EC_PUBLIC_KEY_TYPE_UNCOMPRESSED,
                    ),
                    Ttlv::structure(Tag::KEY_VALUE, vec![Ttlv::bytes(Tag::KEY_MATERIAL, key)]),
                    Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                    Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 256),
                ],
            )],
        ),
    ];
    let registered = uid_of(&ok(&libkmip(&mut c, V::V1_4, op::REGISTER, register).await));

    for (u, key_name) in [
        (&created, "percona-master-1"),
        (&registered, "percona-registered-1"),
    ] {
        ok(&libkmip(&mut c, V::V1_0, op::ACTIVATE, uid(u)).await);
        let got = ok(&libkmip(&mut c, V::V1_0, op::GET, uid(u)).await);
        assert_eq!(key_bytes(&got).len(), 32);
        let names = ok(&libkmip(
            &mut c,
            V::V1_0,
            op::GET_ATTRIBUTES,
            get_attributes(u, &["Name"]),
        )
        .await);
        let names: Vec<Attr> = attrs_of(V::V1_0, &names);
        assert_eq!(names, vec![Attr::new("Name", name(key_name))]);
        // Locate by Name: Object Type and Name, exactly one answer.
        let by_name = [
            attr("Object Type", Value::Enumeration(ot::SYMMETRIC_KEY)),
            attr("Name", name(key_name)),
        ];
        let (ids, _) = libkmip_locate_all(&mut c, &by_name).await;
        assert_eq!(
            &ids,
            std::slice::from_ref(u),
            "Locate by Name finds exactly {key_name}"
        );
    }
    let got = ok(&libkmip(&mut c, V::V1_0, op::GET, uid(&registered)).await);
    assert_eq!(key_bytes(&got), key);

    // 40 more keys in one group, made in one batch.
    let batch: Vec<(u32, Vec<Ttlv>)> = (0..40)
        .map(|i| {
            (
                op::CREATE,
                create_aes_256(Some(&format!("bulk-{i:02}")), Some("bulk")),
            )
        })
        .collect();
    let bulk: Vec<String> = c
        .batch(&batch)
        .await
        .unwrap()
        .into_iter()
        .map(|r| uid_of(&r.unwrap()))
        .collect();
    let by_group = [
        attr("Object Type", Value::Enumeration(ot::SYMMETRIC_KEY)),
        attr("Object Group", Value::TextString("bulk".into())),
    ];
    let (ids, calls) = libkmip_locate_all(&mut c, &by_group).await;
    assert_eq!(
        ids, bulk,
        "three pages of 16, 16 and 8, in order, none twice"
    );
    assert!(calls <= 4, "{calls} Locate calls for 40 keys");
    let (ids, _) = libkmip_locate_all(
        &mut c,
        &[attr("Object Type", Value::Enumeration(ot::SYMMETRIC_KEY))],
    )
    .await;
    assert_eq!(ids.len(), 42);
    assert!(ids.contains(&created) && ids.contains(&registered));

    // Destroy: KMIP lets only Pre-Active or Deactivated objects be destroyed, so an Active key
    // is refused with a clear error; revoked first, it is destroyed, and Get then answers
    // Item Not Found, which libkmip's op_get reads as "no such key".
    let refused = libkmip(&mut c, V::V1_0, op::DESTROY, uid(&created)).await;
    assert_eq!(failed(&refused), rr::PERMISSION_DENIED);
    let mut revoke = uid(&created);
    revoke.push(Ttlv::structure(
        Tag::REVOCATION_REASON,
        vec![Ttlv::enumeration(
            Tag::REVOCATION_REASON_CODE,
            akm::kmip::enums::revocation_reason_code::CESSATION_OF_OPERATION,
        )],
    ));
    ok(&libkmip(&mut c, V::V1_0, op::REVOKE, revoke).await);
    ok(&libkmip(&mut c, V::V1_0, op::DESTROY, uid(&created)).await);
    let gone = libkmip(&mut c, V::V1_0, op::GET, uid(&created)).await;
    assert_eq!(failed(&gone), rr::ITEM_NOT_FOUND);
    // A Pre-Active key (created, never activated) is destroyed directly.
    ok(&libkmip(&mut c, V::V1_0, op::DESTROY, uid(&bulk[0])).await);
    server.stop().await;
}

// ---- FortiGate 7.4+: KMIP 1.0 to 1.4 ----

/// FortiGate creates a key per IPsec tunnel, finds it again by Name given inside a
/// Template-Attribute (not as bare Attribute items), gets and activates it. Every version it
/// may speak, each name finding exactly its own key.
#[tokio::test]
async fn fortigate_locates_by_name_inside_a_template_attribute() {
    let server = TestServer::start().await;
    for v in [V::V1_0, V::V1_1, V::V1_2, V::V1_3, V::V1_4] {
        let mut fgt = server.client(&format!("fortigate-{v}"), v).await;
        let mut made = Vec::new();
        for tunnel in 0..3 {
            let key_name = format!("fgt-ipsec-{v}-{tunnel}");
            let u = uid_of(
                &fgt.call(op::CREATE, create_aes_256(Some(&key_name), None))
                    .await
                    .unwrap(),
            );
            made.push((key_name, u));
        }
        for (key_name, u) in &made {
            let locate = vec![template_attribute(vec![attr("Name", name(key_name))])];
            let response = send(
                &mut fgt,
                &message(v, vec![], vec![item(op::LOCATE, None, locate)]),
            )
            .await;
            assert_plain_header(&response, v);
            assert_eq!(
                &uids_of(&ok(&response)),
                std::slice::from_ref(u),
                "{v} {key_name}"
            );
            let got = fgt.call(op::GET, uid(u)).await.unwrap();
            assert_eq!(key_bytes(&got).len(), 32);
            fgt.call(op::ACTIVATE, uid(u)).await.unwrap();
        }
        let unknown = vec![template_attribute(vec![attr(
            "Name",
            name("fgt-no-such-tunnel"),
        )])];
        assert!(uids_of(&fgt.call(op::LOCATE, unknown).await.unwrap()).is_empty());
    }
    server.stop().await;
}

// ---- raw TLS, for the tests that look at the handshake or send broken frames ----

/// A TLS connection to the test server without akm's client on top.
async fn raw_connect(
    server: &TestServer,
    config: Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let host = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(host, tcp)
        .await
        .expect("TLS handshake")
}

/// Sends a message on a raw connection and reads the response message.
async fn raw_call(stream: &mut tokio_rustls::client::TlsStream<TcpStream>, msg: &Ttlv) -> Ttlv {
    stream.write_all(&msg.encode()).await.unwrap();
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await.unwrap();
    let limits = Limits::default();
    let total = akm::ttlv::frame_length(&header, &limits).unwrap();
    let mut frame = vec![0u8; total];
    frame[..8].copy_from_slice(&header);
    stream.read_exact(&mut frame[8..]).await.unwrap();
    akm::ttlv::decode(&frame, &limits).unwrap()
}

/// A client TLS configuration for `cn` that only speaks TLS 1.2.
fn tls12_only(server: &TestServer, cn: &str) -> Arc<rustls::ClientConfig> {
    let issued = server
        .ca
        .issue_client(cn, &["users".to_string()], Validity::days_from_now(1))
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca.cert_der().clone()).unwrap();
    let provider = akm::crypto::backend::tls_provider();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![issued.cert_der().unwrap()], issued.key_der().unwrap())
            .unwrap(),
    )
}

// ---- Veeam Backup & Replication 12+: KMIP 1.4 ----

/// Veeam tests the connection with a Locate, then creates an RSA-2048 key pair and gets both
/// keys. It reconnects with TLS
/// session resumption (1.3 and 1.2); a resumed session keeps the client's identity, so its
/// objects are still its own.
#[tokio::test]
async fn veeam_locates_as_a_connection_test_and_resumes_tls_sessions() {
    let server = TestServer::start().await;
    let v = V::V1_4;
    let configs = [
        ("TLS 1.3", server.client_tls("veeam-13", &["users"])),
        ("TLS 1.2", tls12_only(&server, "veeam-12")),
    ];
    for (tls, config) in configs {
        let mut first = raw_connect(&server, config.clone()).await;
        assert_eq!(
            first.get_ref().1.handshake_kind(),
            Some(HandshakeKind::Full),
            "{tls}"
        );
        let probe = raw_call(
            &mut first,
            &message(v, vec![], vec![item(op::LOCATE, None, vec![])]),
        )
        .await;
        assert_plain_header(&probe, v);
        assert!(
            uids_of(&ok(&probe)).is_empty(),
            "{tls}: a new identity owns nothing"
        );

        let key_pair = vec![
            Ttlv::structure(
                Tag::COMMON_TEMPLATE_ATTRIBUTE,
                vec![
                    attr("Cryptographic Algorithm", Value::Enumeration(alg::RSA)),
                    attr("Cryptographic Length", Value::Integer(2048)),
                ],
            ),
            Ttlv::structure(
                Tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
                vec![attr(
                    "Cryptographic Usage Mask",
                    Value::Integer(mask::DECRYPT),
                )],
            ),
            Ttlv::structure(
                Tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE,
                vec![attr(
                    "Cryptographic Usage Mask",
                    Value::Integer(mask::ENCRYPT),
                )],
            ),
        ];
        let pair = raw_call(
            &mut first,
            &message(v, vec![], vec![item(op::CREATE_KEY_PAIR, None, key_pair)]),
        )
        .await;
        assert_plain_header(&pair, v);
        let pair = ok(&pair);
        for tag in [
            Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER,
            Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER,
        ] {
            let id = pair.child(tag).and_then(Ttlv::as_text).unwrap().to_owned();
            let got = raw_call(
                &mut first,
                &message(v, vec![], vec![item(op::GET, None, uid(&id))]),
            )
            .await;
            assert!(!key_bytes(&ok(&got)).is_empty(), "{tls}: {tag:?} served");
        }
        // An object to find again after resuming.
        let created = raw_call(
            &mut first,
            &message(
                v,
                vec![],
                vec![item(op::CREATE, None, create_aes_256(None, None))],
            ),
        )
        .await;
        let u = uid_of(&ok(&created));
        first.shutdown().await.unwrap();

        let mut resumed = raw_connect(&server, config).await;
        assert_eq!(
            resumed.get_ref().1.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{tls}: the second connection resumes the session"
        );
        let located = raw_call(
            &mut resumed,
            &message(v, vec![], vec![item(op::LOCATE, None, vec![])]),
        )
        .await;
        let found = uids_of(&ok(&located));
        assert!(found.contains(&u) && found.len() == 3, "{tls}: {found:?}");
        let got = raw_call(
            &mut resumed,
            &message(v, vec![], vec![item(op::GET, None, uid(&u))]),
        )
        .await;
        assert_eq!(key_bytes(&ok(&got)).len(), 32, "{tls}");
    }
    server.stop().await;
}

// ---- failures seen in other KMIP servers (../shared/design/INTEROP.md) ----

/// Attribute names of KMIP 1.0 (section 3 of the 1.0 specification).
const KMIP_1_0_ATTRIBUTES: &[&str] = &[
    "Unique Identifier",
    "Name",
    "Object Type",
    "Cryptographic Algorithm",
    "Cryptographic Length",
    "Cryptographic Parameters",
    "Cryptographic Domain Parameters",
    "Certificate Type",
    "Certificate Identifier",
    "Certificate Subject",
    "Certificate Issuer",
    "Digest",
    "Operation Policy Name",
    "Cryptographic Usage Mask",
    "Lease Time",
    "Usage Limits",
    "State",
    "Initial Date",
    "Activation Date",
    "Process Start Date",
    "Protect Stop Date",
    "Deactivation Date",
    "Destroy Date",
    "Compromise Occurrence Date",
    "Compromise Date",
    "Revocation Reason",
    "Archive Date",
    "Object Group",
    "Link",
    "Application Specific Information",
    "Contact Information",
    "Last Change Date",
];

/// Attributes added after 1.0 and the version that brought each (1.4 specification, section
/// 3); a 1.x response may hold only those of its version or older.
const LATER_1_X_ATTRIBUTES: &[(&str, V)] = &[
    ("Certificate Length", V::V1_1),
    ("X.509 Certificate Identifier", V::V1_1),
    ("X.509 Certificate Subject", V::V1_1),
    ("X.509 Certificate Issuer", V::V1_1),
    ("Digital Signature Algorithm", V::V1_1),
    ("Fresh", V::V1_1),
    ("Alternative Name", V::V1_2),
    ("Key Value Present", V::V1_2),
    ("Key Value Location", V::V1_2),
    ("Original Creation Date", V::V1_2),
    ("Random Number Generator", V::V1_3),
    ("PKCS#12 Friendly Name", V::V1_4),
    ("Description", V::V1_4),
    ("Comment", V::V1_4),
    ("Sensitive", V::V1_4),
    ("Always Sensitive", V::V1_4),
    ("Extractable", V::V1_4),
    ("Never Extractable", V::V1_4),
];

/// Whether `attr_name` exists in KMIP `version` (1.x).
fn attribute_in_1_x(attr_name: &str, version: V) -> bool {
    attr_name.starts_with("x-")
        || attr_name.starts_with("y-")
        || KMIP_1_0_ATTRIBUTES.contains(&attr_name)
        || LATER_1_X_ATTRIBUTES
            .iter()
            .any(|(n, since)| *n == attr_name && *since <= version)
}

/// The highest Result Reason a 1.x version defines (General Failure aside): 1.0 ends at Key
/// Compression Type Not Supported, 1.1 adds Encoding Option Error, 1.2 Key Value Not Present
/// and the attestation reasons, 1.4 Sensitive, Not Extractable and Object Already Exists.
fn last_reason(version: V) -> u32 {
    match version {
        V::V1_0 => rr::KEY_COMPRESSION_TYPE_NOT_SUPPORTED,
        V::V1_1 => rr::ENCODING_OPTION_ERROR,
        V::V1_2 | V::V1_3 => rr::ATTESTATION_FAILED,
        _ => rr::OBJECT_ALREADY_EXISTS,
    }
}

/// "A 2.x attribute (e.g. Fresh) or 2.x Result Reason sent in a 1.x response broke 1.0
/// clients": for every 1.x version, Get Attributes holds only attributes of that version and
/// the failures akm gives most often use only that version's Result Reasons.
#[tokio::test]
async fn kmip_1_x_responses_hold_only_their_versions_attributes_and_reasons() {
    let server = TestServer::start().await;
    for v in [V::V1_0, V::V1_1, V::V1_2, V::V1_3, V::V1_4] {
        let mut c = server.client(&format!("old-client-{v}"), v).await;
        let u = uid_of(
            &c.call(op::CREATE, create_aes_256(Some(&format!("old-{v}")), None))
                .await
                .unwrap(),
        );
        c.call(op::ACTIVATE, uid(&u)).await.unwrap();
        let all = c.call(op::GET_ATTRIBUTES, uid(&u)).await.unwrap();
        for a in attrs_of(v, &all) {
            assert!(
                attribute_in_1_x(&a.name, v),
                "{v} response holds {:?}",
                a.name
            );
        }
        let list = c.call(op::GET_ATTRIBUTE_LIST, uid(&u)).await.unwrap();
        for n in list
            .children_with(Tag::ATTRIBUTE_NAME)
            .filter_map(Ttlv::as_text)
        {
            assert!(attribute_in_1_x(n, v), "{v} attribute list holds {n:?}");
        }

        let mut reasons = vec![
            reason(c.call(op::ACTIVATE, uid(&u)).await), // wrong state
            reason(c.call(op::DESTROY, uid(&u)).await),  // Active: not destroyable
            reason(c.call(op::GET, uid("no-such-object")).await),
            reason(c.call(op::CREATE_KEY_PAIR, vec![]).await), // not implemented
            reason(
                c.call(op::GET_ATTRIBUTES, get_attributes("", &["State"]))
                    .await,
            ),
        ];
        let mut read_only = uid(&u);
        read_only.push(attr("State", Value::Enumeration(state::ACTIVE)));
        reasons.push(reason(c.call(op::ADD_ATTRIBUTE, read_only).await));
        let mut missing = uid(&u);
        missing.push(Ttlv::text(Tag::ATTRIBUTE_NAME, "Contact Information"));
        reasons.push(reason(c.call(op::DELETE_ATTRIBUTE, missing).await));
        let mut revoke = uid(&u);
        revoke.push(Ttlv::structure(
            Tag::REVOCATION_REASON,
            vec![Ttlv::enumeration(
                Tag::REVOCATION_REASON_CODE,
                akm::kmip::enums::revocation_reason_code::CESSATION_OF_OPERATION,
            )],
        ));
        c.call(op::REVOKE, revoke).await.unwrap();
        c.call(op::DESTROY, uid(&u)).await.unwrap();
        reasons.push(reason(c.call(op::GET, uid(&u)).await)); // destroyed
        for r in reasons {
            assert!(
                r <= last_reason(v) || r == rr::GENERAL_FAILURE,
                "{v} response carries Result Reason 0x{r:X}, newer than {v}"
            );
        }
    }
    server.stop().await;
}

/// "A 1.0 request answered with a malformed response header": success and failure answers
/// to 1.0 (and each later) request carry exactly Protocol Version (the request's), Time Stamp
/// and Batch Count, and a batch item carries its Operation.
#[tokio::test]
async fn responses_to_every_version_have_a_plain_header() {
    let server = TestServer::start().await;
    for v in [
        V::V1_0,
        V::V1_1,
        V::V1_2,
        V::V1_3,
        V::V1_4,
        V::V2_0,
        V::V2_1,
    ] {
        let mut c = server.client("header-check", v).await;
        let discover = send(
            &mut c,
            &message(v, vec![], vec![item(op::DISCOVER_VERSIONS, None, vec![])]),
        )
        .await;
        assert_plain_header(&discover, v);
        let missing = send(
            &mut c,
            &message(v, vec![], vec![item(op::GET, None, uid("nothing"))]),
        )
        .await;
        assert_plain_header(&missing, v);
        failed(&missing);
        let batch_item = missing.child(Tag::BATCH_ITEM).unwrap();
        assert_eq!(
            batch_item.child(Tag::OPERATION).and_then(Ttlv::as_enum),
            Some(op::GET)
        );
    }
    server.stop().await;
}

/// "Attributes embedded in Key Value broke Veeam": a Get answer's Key Value holds the Key
/// Material and nothing else, in every version.
#[tokio::test]
async fn key_value_holds_only_key_material() {
    let server = TestServer::start().await;
    for v in [V::V1_0, V::V1_2, V::V1_4, V::V2_0, V::V2_1] {
        let mut c = server.client("veeam-get", v).await;
        let u = create_key(&mut c, None).await;
        let got = c.call(op::GET, uid(&u)).await.unwrap();
        let key_value = got
            .child(Tag::SYMMETRIC_KEY)
            .and_then(|k| k.child(Tag::KEY_BLOCK))
            .and_then(|b| b.child(Tag::KEY_VALUE))
            .expect("Symmetric Key / Key Block / Key Value");
        let tags: Vec<Tag> = key_value.children().iter().map(|t| t.tag).collect();
        assert_eq!(tags, vec![Tag::KEY_MATERIAL], "{v}");
    }
    server.stop().await;
}

/// "Locate ignoring the Name filter returned the same key for every name (FortiGate IPsec
/// broke)": with several keys, Locate by each name, bare (1.x), in a Template-Attribute
/// (FortiGate) and as 2.x Attributes, finds that key alone.
#[tokio::test]
async fn locate_by_name_finds_only_that_name() {
    let server = TestServer::start().await;
    for v in [V::V1_0, V::V1_4, V::V2_0] {
        let mut c = server.client(&format!("namer-{v}"), v).await;
        let mut made = Vec::new();
        for i in 0..4 {
            let n = format!("tunnel-{v}-{i}");
            made.push((n.clone(), create_key(&mut c, Some(&n)).await));
        }
        for (n, u) in &made {
            let by_name = [Attr::new("Name", name(n))];
            let found = c.call(op::LOCATE, filters(v, &by_name)).await.unwrap();
            assert_eq!(&uids_of(&found), std::slice::from_ref(u), "{v} {n}");
            if !v.is_v2() {
                let wrapped = vec![template_attribute(vec![attr("Name", name(n))])];
                let found = c.call(op::LOCATE, wrapped).await.unwrap();
                assert_eq!(
                    &uids_of(&found),
                    std::slice::from_ref(u),
                    "{v} {n} in a template"
                );
            }
        }
    }
    server.stop().await;
}

/// "Locate returned the server's internal wrapping key to an ordinary user": the KEK is not a
/// managed object, and Locate, whatever its filters or Storage Status Mask, returns only the
/// caller's own objects; another identity's are neither found nor readable.
#[tokio::test]
async fn locate_returns_only_the_callers_objects() {
    let server = TestServer::start().await;
    let mut owner = server.client("owner", V::V1_4).await;
    let mine: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(create_key(&mut owner, Some(&format!("owned-{i}"))).await);
        }
        v
    };
    for version in [V::V1_0, V::V1_4, V::V2_1] {
        let mut stranger = server.client("stranger", version).await;
        let everything = vec![Ttlv::integer(Tag::STORAGE_STATUS_MASK, 7)];
        assert!(uids_of(&stranger.call(op::LOCATE, everything).await.unwrap()).is_empty());
        assert!(uids_of(&stranger.call(op::LOCATE, vec![]).await.unwrap()).is_empty());
        let by_name = filters(version, &[Attr::new("Name", name("owned-0"))]);
        assert!(uids_of(&stranger.call(op::LOCATE, by_name).await.unwrap()).is_empty());
        let by_type = filters(
            version,
            &[Attr::new(
                "Object Type",
                Value::Enumeration(ot::SYMMETRIC_KEY),
            )],
        );
        assert!(uids_of(&stranger.call(op::LOCATE, by_type).await.unwrap()).is_empty());
        assert!(stranger.call(op::GET, uid(&mine[0])).await.is_err());
    }
    let all = owner
        .call(op::LOCATE, vec![Ttlv::integer(Tag::STORAGE_STATUS_MASK, 7)])
        .await;
    assert_eq!(uids_of(&all.unwrap()), mine);
    server.stop().await;
}

/// "Uncapped length field: one client made the server allocate 4 GiB": a frame header
/// announcing nearly 4 GiB is refused before anything is allocated (the connection ends), and
/// the server goes on serving.
#[tokio::test]
async fn a_four_gib_length_field_is_refused_and_the_server_carries_on() {
    let server = TestServer::start().await;
    let mut stream = raw_connect(&server, server.client_tls("greedy", &["users"])).await;
    let mut header = Vec::new();
    header.extend_from_slice(&[0x42, 0x00, 0x78, 0x01]); // Request Message, Structure
    header.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
    stream.write_all(&header).await.unwrap();
    stream.write_all(&[0u8; 64]).await.unwrap();
    let mut buf = Vec::new();
    // The server may answer with an error message before closing; either way it closes.
    let _ = stream.read_to_end(&mut buf).await;
    assert!(buf.len() < 4096, "no large answer to a bogus length");
    let mut c = server.client("greedy", V::V1_4).await;
    create_key(&mut c, None).await;
    server.stop().await;
}

/// "Client certificates without SAN/EKU": an appliance certificate with only a subject (CN
/// and OU), no Subject Alternative Name and no Extended Key Usage, chained to the trusted CA,
/// is accepted and identifies the client.
#[tokio::test]
async fn a_client_certificate_without_san_or_eku_is_accepted() {
    let server = TestServer::start().await;
    let ca_key = rcgen::KeyPair::from_pem(&server.ca.key_pem()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_der(server.ca.cert_der(), ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "old-appliance");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, "users");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca.cert_der().clone()).unwrap();
    let config = akm::tls::client_config_from(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        roots,
    )
    .unwrap();
    let mut c = server.connect(config.clone(), V::V1_2).await.unwrap();
    let u = create_key(&mut c, Some("appliance-key")).await;
    // The same certificate on a new connection is the same identity: it owns the key.
    let mut again = server.connect(config, V::V1_2).await.unwrap();
    assert_eq!(
        uids_of(&again.call(op::LOCATE, vec![]).await.unwrap()),
        vec![u]
    );
    server.stop().await;
}

/// Standard base64 of `bytes`, to look for key material written that way in logs.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ABC[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// "Debug logging of whole requests wrote key material into logs": the real `akm serve` at
/// trace level (config and RUST_LOG) registers and returns a key; its log holds none of the
/// key's bytes, in hex, base64, Rust debug or raw form.
#[tokio::test]
async fn trace_logging_never_writes_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("akm.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\nauto_init = true\n\
         [tls]\ncerts_dir = \"certs\"\ncert = \"certs/server.crt\"\nkey = \"certs/server.key\"\n\
         client_ca = \"certs/ca.crt\"\n[store]\ndata_dir = \"data\"\n[log]\nlevel = \"trace\"\n",
    )
    .unwrap();
    let log_path = dir.path().join("server.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_akm"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let port: u16 = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let port = loop {
            let line = lines.next().expect("akm serve exited").unwrap();
            if let Some(rest) = line.strip_prefix("akm serve: listening on ") {
                let addr = rest.split_whitespace().next().unwrap();
                break addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        port
    })
    .await
    .unwrap();

    let certs = dir.path().join("certs");
    let tls = akm::tls::client_config(
        &certs.join("user.crt"),
        &certs.join("user.key"),
        &certs.join("ca.crt"),
    )
    .unwrap();
    let key: Vec<u8> = (0..32u8).map(|i| 0xA0 ^ i.wrapping_mul(13)).collect();
    for v in [V::V1_0, V::V1_4, V::V2_1] {
        let mut c = akm::client::Client::connect(&format!("localhost:{port}"), tls.clone(), v)
            .await
            .unwrap();
        let u = uid_of(
            &c.call(op::REGISTER, register_key_payload(v, &key, &[]))
                .await
                .unwrap(),
        );
        assert_eq!(key_bytes(&c.call(op::GET, uid(&u)).await.unwrap()), key);
        // A failing request with key bytes in it is logged too, and must not echo them.
        let mut bad = register_key_payload(v, &key, &[]);
        bad.remove(0);
        assert!(c.call(op::REGISTER, bad).await.is_err());
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let log = std::fs::read(&log_path).unwrap();
    let text = String::from_utf8_lossy(&log);
    assert!(
        text.contains("TRACE") || text.contains("DEBUG"),
        "the server logged at trace level"
    );
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let debug = format!("{:?}", &key[..4]);
    let debug = debug.trim_end_matches(']');
    for needle in [
        hex.clone(),
        hex.to_uppercase(),
        base64(&key),
        debug.to_owned(),
    ] {
        assert!(
            !text.contains(&needle),
            "the log holds key material as {needle:?}"
        );
    }
    assert!(
        !log.windows(16).any(|w| w == &key[..16]),
        "the log holds raw key bytes"
    );
}

#[test]
fn base64_matches_the_rfc_4648_examples() {
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

/// "A server that lost its database locked every encrypted VM" and "expiring a key that is
/// still in use locked VMs": an activated key survives a restart of the server on the same
/// database, is still Active with no Deactivation Date (akm never deactivates on its own), and
/// is served byte for byte.
#[tokio::test]
async fn an_active_key_survives_a_restart_and_stays_active() {
    let server = TestServer::start().await;
    let ca = akm::pki::Ca::from_pem(
        server.ca.cert_pem().as_bytes(),
        server.ca.key_pem().as_bytes(),
    )
    .unwrap();
    let mut vcenter = server.client("vcenter", V::V1_1).await;
    let u = uid_of(
        &vcenter
            .call(op::CREATE, create_aes_256(None, None))
            .await
            .unwrap(),
    );
    vcenter.call(op::ACTIVATE, uid(&u)).await.unwrap();
    let before = key_bytes(&vcenter.call(op::GET, uid(&u)).await.unwrap());
    drop(vcenter);
    let dir = server.stop().await;

    let again = TestServer::start_with_dir(ca, dir).await;
    let mut vcenter = again.client("vcenter", V::V1_1).await;
    assert_eq!(
        key_bytes(&vcenter.call(op::GET, uid(&u)).await.unwrap()),
        before
    );
    let got = vcenter
        .call(
            op::GET_ATTRIBUTES,
            get_attributes(&u, &["State", "Deactivation Date"]),
        )
        .await
        .unwrap();
    // state_in insists on State alone: no Deactivation Date has appeared.
    assert_eq!(state_in(&got), state::ACTIVE);
    again.stop().await;
}

// ---- fixes found by PyKMIP's integration suite ----

/// A Register payload for a certificate of `certificate_type` with `value`.
fn register_certificate(v: V, certificate_type: u32, value: &[u8], attrs: &[Attr]) -> Vec<Ttlv> {
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::CERTIFICATE),
        template(v, attrs),
        Ttlv::structure(
            Tag::CERTIFICATE,
            vec![
                Ttlv::enumeration(Tag::CERTIFICATE_TYPE, certificate_type),
                Ttlv::bytes(Tag::CERTIFICATE_VALUE, value),
            ],
        ),
    ]
}

/// PyKMIP registers X.509 certificates, gets them back byte for byte, finds them by
/// Certificate Type, and revokes and destroys them. akm keeps the certificate as given and
/// sets Certificate Type and Certificate Length, which a 1.0 client does not get (it is a
/// KMIP 1.1 attribute).
#[tokio::test]
async fn certificates_register_get_locate_and_destroy() {
    let server = TestServer::start().await;
    // Any bytes: akm does not parse certificates, it stores them.
    let der = server.ca.cert_der().to_vec();
    for v in [V::V1_0, V::V1_2, V::V2_1] {
        let mut c = server.client(&format!("cert-owner-{v}"), v).await;
        let usage = [Attr::new(
            "Cryptographic Usage Mask",
            Value::Integer(mask::SIGN | mask::VERIFY),
        )];
        let registered = c
            .call(
                op::REGISTER,
                register_certificate(v, cert_type::X_509, &der, &usage),
            )
            .await
            .unwrap();
        let u = uid_of(&registered);

        let got = c.call(op::GET, uid(&u)).await.unwrap();
        assert_eq!(
            got.child(Tag::OBJECT_TYPE).and_then(Ttlv::as_enum),
            Some(ot::CERTIFICATE)
        );
        let cert = got.child(Tag::CERTIFICATE).expect("a Certificate");
        assert_eq!(
            cert.child(Tag::CERTIFICATE_TYPE).and_then(Ttlv::as_enum),
            Some(cert_type::X_509)
        );
        assert_eq!(
            cert.child(Tag::CERTIFICATE_VALUE).and_then(Ttlv::as_bytes),
            Some(der.as_slice())
        );
        let attrs = get_attrs(&mut c, &u, &["Certificate Type", "Certificate Length"]).await;
        let mut want = vec![Attr::new(
            "Certificate Type",
            Value::Enumeration(cert_type::X_509),
        )];
        if v != V::V1_0 {
            want.push(Attr::new(
                "Certificate Length",
                Value::Integer(der.len() as i32),
            ));
        }
        assert_eq!(attrs, want, "{v}");

        let x509 = [Attr::new(
            "Certificate Type",
            Value::Enumeration(cert_type::X_509),
        )];
        let found = c.call(op::LOCATE, filters(v, &x509)).await.unwrap();
        assert_eq!(uids_of(&found), vec![u.clone()], "{v}");
        let pgp = [Attr::new(
            "Certificate Type",
            Value::Enumeration(cert_type::PGP),
        )];
        assert!(uids_of(&c.call(op::LOCATE, filters(v, &pgp)).await.unwrap()).is_empty());

        // A certificate has no key format to convert to.
        let mut as_raw = uid(&u);
        as_raw.push(Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::RAW));
        assert_eq!(
            reason(c.call(op::GET, as_raw).await),
            rr::KEY_FORMAT_TYPE_NOT_SUPPORTED
        );
        let empty = c
            .call(
                op::REGISTER,
                register_certificate(v, cert_type::X_509, &[], &[]),
            )
            .await;
        assert_eq!(reason(empty), rr::INVALID_FIELD, "{v}");
        let mut no_type = register_certificate(v, cert_type::X_509, &der, &[]);
        no_type[2] = Ttlv::structure(
            Tag::CERTIFICATE,
            vec![Ttlv::bytes(Tag::CERTIFICATE_VALUE, der.clone())],
        );
        assert_eq!(
            reason(c.call(op::REGISTER, no_type).await),
            rr::INVALID_FIELD
        );

        let mut revoke = uid(&u);
        revoke.push(Ttlv::structure(
            Tag::REVOCATION_REASON,
            vec![Ttlv::enumeration(
                Tag::REVOCATION_REASON_CODE,
                akm::kmip::enums::revocation_reason_code::KEY_COMPROMISE,
            )],
        ));
        c.call(op::REVOKE, revoke).await.unwrap();
        c.call(op::DESTROY, uid(&u)).await.unwrap();
        assert!(c.call(op::GET, uid(&u)).await.is_err());
    }
    server.stop().await;
}

/// A Register payload for a public or private key: `bytes` in `format`, RSA-2048 per the
/// Key Block.
fn register_asymmetric(v: V, object_type: u32, format: u32, bytes: &[u8]) -> Vec<Ttlv> {
    let tag = if object_type == ot::PUBLIC_KEY {
        Tag::PUBLIC_KEY
    } else {
        Tag::PRIVATE_KEY
    };
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, object_type),
        template(v, &[]),
        Ttlv::structure(
            tag,
            vec![Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, format),
                    Ttlv::structure(Tag::KEY_VALUE, vec![Ttlv::bytes(Tag::KEY_MATERIAL, bytes)]),
                    Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::RSA),
                    Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 2048),
                ],
            )],
        ),
    ]
}

/// PyKMIP (and Veeam, once it has a key pair) register public and private keys and get them
/// back: akm stores the encoded key as given (PKCS#1, X.509 SubjectPublicKeyInfo, PKCS#8,
/// Raw) and returns it in that format, refusing conversions it cannot make.
#[tokio::test]
async fn public_and_private_keys_register_and_get_in_their_format() {
    let server = TestServer::start().await;
    let pair = rcgen::KeyPair::generate().unwrap();
    let spki = pair.public_key_raw().to_vec();
    let pkcs8 = pair.serialize_der();
    for v in [V::V1_2, V::V1_4, V::V2_1] {
        let mut c = server.client(&format!("asym-{v}"), v).await;
        for (object_type, format, bytes) in [
            (ot::PUBLIC_KEY, kft::X_509, spki.as_slice()),
            (ot::PUBLIC_KEY, kft::PKCS_1, &spki[24..]),
            (ot::PRIVATE_KEY, kft::PKCS_8, pkcs8.as_slice()),
            (ot::PRIVATE_KEY, kft::RAW, &pkcs8[..40]),
        ] {
            let what = format!("{v} type {object_type} format {format}");
            let registered = c
                .call(
                    op::REGISTER,
                    register_asymmetric(v, object_type, format, bytes),
                )
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let u = uid_of(&registered);
            let got = c.call(op::GET, uid(&u)).await.unwrap();
            assert_eq!(
                got.child(Tag::OBJECT_TYPE).and_then(Ttlv::as_enum),
                Some(object_type)
            );
            let block = got
                .child(if object_type == ot::PUBLIC_KEY {
                    Tag::PUBLIC_KEY
                } else {
                    Tag::PRIVATE_KEY
                })
                .and_then(|k| k.child(Tag::KEY_BLOCK))
                .unwrap_or_else(|| panic!("{what}: no Key Block"));
            assert_eq!(
                block.child(Tag::KEY_FORMAT_TYPE).and_then(Ttlv::as_enum),
                Some(format),
                "{what}"
            );
            assert_eq!(
                block
                    .child(Tag::CRYPTOGRAPHIC_ALGORITHM)
                    .and_then(Ttlv::as_enum),
                Some(alg::RSA)
            );
            assert_eq!(
                block
                    .child(Tag::CRYPTOGRAPHIC_LENGTH)
                    .and_then(Ttlv::as_int),
                Some(2048)
            );
            assert_eq!(key_bytes(&got), bytes, "{what}");
            // Asking for another encoding is refused, not answered with the wrong bytes.
            let other = if format == kft::PKCS_8 {
                kft::PKCS_1
            } else {
                kft::PKCS_8
            };
            let mut p = uid(&u);
            p.push(Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, other));
            assert_eq!(
                reason(c.call(op::GET, p).await),
                rr::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                "{what}"
            );
        }
    }
    server.stop().await;
}

/// A Register payload for an AES-128 split key part with the given fields.
fn register_split_key(v: V, fields: Vec<Ttlv>, bytes: &[u8]) -> Vec<Ttlv> {
    let mut object = fields;
    object.push(Ttlv::structure(
        Tag::KEY_BLOCK,
        vec![
            Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::RAW),
            Ttlv::structure(Tag::KEY_VALUE, vec![Ttlv::bytes(Tag::KEY_MATERIAL, bytes)]),
            Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
            Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, (bytes.len() * 8) as i32),
        ],
    ));
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SPLIT_KEY),
        template(v, &[]),
        Ttlv::structure(Tag::SPLIT_KEY, object),
    ]
}

/// The four required Split Key fields: `parts`, part `id`, `threshold`, `method`.
fn split_fields(parts: i32, id: i32, threshold: i32, method: u32) -> Vec<Ttlv> {
    vec![
        Ttlv::integer(Tag::SPLIT_KEY_PARTS, parts),
        Ttlv::integer(Tag::KEY_PART_IDENTIFIER, id),
        Ttlv::integer(Tag::SPLIT_KEY_THRESHOLD, threshold),
        Ttlv::enumeration(Tag::SPLIT_KEY_METHOD, method),
    ]
}

/// PyKMIP registers a split key part (3 parts, part 1, threshold 2, XOR) and reads every field
/// back: akm stores the part and its Split Key fields as given, and refuses inconsistent ones.
#[tokio::test]
async fn split_keys_register_and_get_with_their_fields() {
    use akm::kmip::enums::split_key_method as skm;
    let server = TestServer::start().await;
    let part = [0x66u8; 16];
    for v in [V::V1_2, V::V1_4, V::V2_1] {
        let mut c = server.client(&format!("splitter-{v}"), v).await;
        let fields = split_fields(3, 1, 2, skm::XOR);
        let u = uid_of(
            &c.call(op::REGISTER, register_split_key(v, fields.clone(), &part))
                .await
                .unwrap(),
        );
        let got = c.call(op::GET, uid(&u)).await.unwrap();
        assert_eq!(
            got.child(Tag::OBJECT_TYPE).and_then(Ttlv::as_enum),
            Some(ot::SPLIT_KEY)
        );
        let split = got.child(Tag::SPLIT_KEY).expect("a Split Key");
        let tags: Vec<Tag> = split.children().iter().map(|t| t.tag).collect();
        assert_eq!(
            tags,
            vec![
                Tag::SPLIT_KEY_PARTS,
                Tag::KEY_PART_IDENTIFIER,
                Tag::SPLIT_KEY_THRESHOLD,
                Tag::SPLIT_KEY_METHOD,
                Tag::KEY_BLOCK
            ],
            "{v}"
        );
        assert_eq!(&split.children()[..4], fields.as_slice(), "{v}");
        assert_eq!(key_bytes(&got), part);

        // Prime Field Size comes with the prime-field method and only with it.
        let prime = Ttlv::new(
            Tag::PRIME_FIELD_SIZE,
            Value::BigInteger(vec![0, 0, 0, 0, 0, 0, 0x01, 0x01].into()),
        );
        let mut with_prime = split_fields(3, 2, 2, skm::POLYNOMIAL_SHARING_PRIME_FIELD);
        with_prime.push(prime.clone());
        let u = uid_of(
            &c.call(op::REGISTER, register_split_key(v, with_prime, &part))
                .await
                .unwrap(),
        );
        let got = c.call(op::GET, uid(&u)).await.unwrap();
        assert_eq!(
            got.child(Tag::SPLIT_KEY)
                .and_then(|s| s.child(Tag::PRIME_FIELD_SIZE)),
            Some(&prime)
        );

        let mut xor_with_prime = split_fields(3, 3, 2, skm::XOR);
        xor_with_prime.push(prime.clone());
        for (what, bad) in [
            ("threshold above parts", split_fields(2, 1, 3, skm::XOR)),
            ("part 0", split_fields(3, 0, 2, skm::XOR)),
            (
                "prime field without its size",
                split_fields(3, 1, 2, skm::POLYNOMIAL_SHARING_PRIME_FIELD),
            ),
            ("a size without the prime field", xor_with_prime),
            ("no method", split_fields(3, 1, 2, skm::XOR)[..3].to_vec()),
        ] {
            let r = c
                .call(op::REGISTER, register_split_key(v, bad, &part))
                .await;
            assert_eq!(reason(r), rr::INVALID_FIELD, "{v}: {what}");
        }
    }
    server.stop().await;
}

/// A Key Wrapping Specification: Encrypt under `key` with `mode`, and `encoding` if given.
fn wrapping_spec(key: &str, mode: u32, encoding: Option<u32>) -> Ttlv {
    let mut spec = vec![
        Ttlv::enumeration(
            Tag::WRAPPING_METHOD,
            akm::kmip::enums::wrapping_method::ENCRYPT,
        ),
        Ttlv::structure(
            Tag::ENCRYPTION_KEY_INFORMATION,
            vec![
                Ttlv::text(Tag::UNIQUE_IDENTIFIER, key),
                Ttlv::structure(
                    Tag::CRYPTOGRAPHIC_PARAMETERS,
                    vec![Ttlv::enumeration(Tag::BLOCK_CIPHER_MODE, mode)],
                ),
            ],
        ),
    ];
    if let Some(e) = encoding {
        spec.push(Ttlv::enumeration(Tag::ENCODING_OPTION, e));
    }
    Ttlv::structure(Tag::KEY_WRAPPING_SPECIFICATION, spec)
}

/// A Cryptographic Parameters attribute naming NIST Key Wrap: KMIP 1.4 section 2.1.6 has the
/// server check the parameters a Key Wrapping Specification names against the wrapping key's.
fn nist_key_wrap_parameters() -> Attr {
    Attr::new(
        "Cryptographic Parameters",
        Value::Structure(vec![Ttlv::enumeration(
            Tag::BLOCK_CIPHER_MODE,
            akm::kmip::enums::block_cipher_mode::NISTKEYWRAP,
        )]),
    )
}

/// The Key Block of a Get answer for a symmetric key.
fn key_block(got: &Ttlv) -> &Ttlv {
    got.child(Tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .expect("Symmetric Key / Key Block")
}

/// PyKMIP (and other clients that export keys) gets a key wrapped under another of its keys
/// with NIST Key Wrap: the Key Value becomes the wrapped bytes (a Byte String, KMIP 1.4
/// section 2.1.3) and Key Wrapping Data says how, for No Encoding (the key bytes) and TTLV
/// Encoding (the whole Key Value). The wrapping key must be the caller's, an Active AES key
/// with Wrap Key usage and the Cryptographic Parameters named; other wrapping methods and modes
/// are refused cleanly.
#[tokio::test]
async fn get_wraps_a_key_under_another_with_nist_key_wrap() {
    use akm::kmip::enums::{block_cipher_mode as bcm, encoding_option as eo};
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client(&format!("wrapper-{v}"), v).await;
        let k = create_key(&mut c, None).await;
        let plain = key_bytes(&c.call(op::GET, uid(&k)).await.unwrap());
        let wrap_mask = Attr::new(
            "Cryptographic Usage Mask",
            Value::Integer(mask::WRAP_KEY | mask::UNWRAP_KEY),
        );
        let attrs = [
            Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
            Attr::new("Cryptographic Length", Value::Integer(256)),
            wrap_mask,
            nist_key_wrap_parameters(),
        ];
        let w = uid_of(&c.call(op::CREATE, create_payload(v, &attrs)).await.unwrap());
        let w_bytes = key_bytes(&c.call(op::GET, uid(&w)).await.unwrap());

        // The wrapping key is still Pre-Active: refused.
        let mut p = uid(&k);
        p.push(wrapping_spec(&w, bcm::NISTKEYWRAP, Some(eo::NO_ENCODING)));
        let early = c.call(op::GET, p.clone()).await;
        if v.is_v2() {
            assert_eq!(reason(early), rr::WRONG_KEY_LIFECYCLE_STATE);
        } else {
            assert!(early.is_err());
        }
        c.call(op::ACTIVATE, uid(&w)).await.unwrap();

        // No Encoding: the 32 key bytes, wrapped to 40.
        let got = c.call(op::GET, p).await.unwrap();
        let block = key_block(&got);
        let wrapped = block
            .child(Tag::KEY_VALUE)
            .and_then(Ttlv::as_bytes)
            .expect("a wrapped Key Value is a Byte String");
        assert_eq!(wrapped.len(), 40);
        assert_ne!(&wrapped[8..], plain.as_slice());
        let unwrapped = akm::crypto::keywrap::unwrap(&w_bytes, wrapped).unwrap();
        assert_eq!(unwrapped.as_slice(), plain.as_slice(), "{v}");
        let data = block
            .child(Tag::KEY_WRAPPING_DATA)
            .expect("Key Wrapping Data");
        assert_eq!(
            data.child(Tag::ENCRYPTION_KEY_INFORMATION)
                .and_then(|e| e.child(Tag::UNIQUE_IDENTIFIER))
                .and_then(Ttlv::as_text),
            Some(w.as_str())
        );
        assert_eq!(
            data.child(Tag::ENCODING_OPTION).and_then(Ttlv::as_enum),
            Some(eo::NO_ENCODING)
        );
        assert_eq!(
            block
                .child(Tag::CRYPTOGRAPHIC_ALGORITHM)
                .and_then(Ttlv::as_enum),
            Some(alg::AES)
        );

        // TTLV Encoding (the default): the whole Key Value structure is wrapped.
        let mut p = uid(&k);
        p.push(wrapping_spec(&w, bcm::NISTKEYWRAP, None));
        let got = c.call(op::GET, p).await.unwrap();
        let wrapped = key_block(&got)
            .child(Tag::KEY_VALUE)
            .and_then(Ttlv::as_bytes)
            .unwrap();
        let unwrapped = akm::crypto::keywrap::unwrap(&w_bytes, wrapped).unwrap();
        let key_value = akm::ttlv::decode(&unwrapped, &Limits::default()).unwrap();
        assert_eq!(key_value.tag, Tag::KEY_VALUE);
        assert_eq!(
            key_value.child(Tag::KEY_MATERIAL).and_then(Ttlv::as_bytes),
            Some(plain.as_slice())
        );

        // Refusals: a key without Wrap Key usage, an unknown key, another mode or method, and
        // material that is not whole 8-byte blocks.
        let plain_key = create_key(&mut c, None).await;
        c.call(op::ACTIVATE, uid(&plain_key)).await.unwrap();
        let mut p = uid(&k);
        p.push(wrapping_spec(&plain_key, bcm::NISTKEYWRAP, None));
        let no_wrap_usage = c.call(op::GET, p).await;
        if v.is_v2() {
            assert_eq!(
                reason(no_wrap_usage),
                rr::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK
            );
        } else {
            assert!(no_wrap_usage.is_err());
        }
        let mut p = uid(&k);
        p.push(wrapping_spec("no-such-key", bcm::NISTKEYWRAP, None));
        assert!(c.call(op::GET, p).await.is_err());
        let mut p = uid(&k);
        // Parameters the wrapping key does not have (KMIP 1.4 section 2.1.6).
        p.push(wrapping_spec(&w, bcm::CBC, None));
        assert_eq!(reason(c.call(op::GET, p).await), rr::INVALID_FIELD);
        let mut p = uid(&k);
        let mut spec = wrapping_spec(&w, bcm::NISTKEYWRAP, None);
        if let Value::Structure(fields) = &mut spec.value {
            fields[0] = Ttlv::enumeration(
                Tag::WRAPPING_METHOD,
                akm::kmip::enums::wrapping_method::MAC_SIGN,
            );
        }
        p.push(spec);
        assert_eq!(reason(c.call(op::GET, p).await), rr::FEATURE_NOT_SUPPORTED);
        let odd = vec![
            Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SECRET_DATA),
            template(v, &[]),
            Ttlv::structure(
                Tag::SECRET_DATA,
                vec![
                    Ttlv::enumeration(Tag::SECRET_DATA_TYPE, secret_data_type::PASSWORD),
                    Ttlv::structure(
                        Tag::KEY_BLOCK,
                        vec![
                            Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, kft::OPAQUE),
                            Ttlv::structure(
                                Tag::KEY_VALUE,
                                vec![Ttlv::bytes(Tag::KEY_MATERIAL, vec![1u8; 21])],
                            ),
                        ],
                    ),
                ],
            ),
        ];
        let odd = uid_of(&c.call(op::REGISTER, odd).await.unwrap());
        let mut p = uid(&odd);
        p.push(wrapping_spec(&w, bcm::NISTKEYWRAP, Some(eo::NO_ENCODING)));
        assert_eq!(reason(c.call(op::GET, p).await), rr::INVALID_FIELD, "{v}");
    }
    server.stop().await;
}

/// A Sensitive key is never served in the clear, but may leave the server wrapped.
#[tokio::test]
async fn a_sensitive_key_is_served_only_wrapped() {
    use akm::kmip::enums::block_cipher_mode as bcm;
    let server = TestServer::start().await;
    let v = V::V2_1;
    let mut c = server.client("sensitive", v).await;
    let mut attrs = aes_attrs(None);
    attrs.push(Attr::new("Sensitive", Value::Boolean(true)));
    let k = uid_of(&c.call(op::CREATE, create_payload(v, &attrs)).await.unwrap());
    assert_eq!(reason(c.call(op::GET, uid(&k)).await), rr::SENSITIVE);
    let wrap_attrs = [
        Attr::new("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
        Attr::new("Cryptographic Length", Value::Integer(128)),
        Attr::new("Cryptographic Usage Mask", Value::Integer(mask::WRAP_KEY)),
        nist_key_wrap_parameters(),
    ];
    let w = uid_of(
        &c.call(op::CREATE, create_payload(v, &wrap_attrs))
            .await
            .unwrap(),
    );
    c.call(op::ACTIVATE, uid(&w)).await.unwrap();
    let mut p = uid(&k);
    p.push(wrapping_spec(&w, bcm::NISTKEYWRAP, None));
    let got = c.call(op::GET, p).await.unwrap();
    assert!(key_block(&got).child(Tag::KEY_WRAPPING_DATA).is_some());
    server.stop().await;
}
