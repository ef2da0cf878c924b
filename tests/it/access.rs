//! Access control end to end: five identities (alice and sam in HR, bob in Finance, admin in
//! the administrators group, nobody without OU) against keys in every access mode, over real
//! mutual TLS, with the system tables set through the administration operations. Each
//! (identity, mode, operation) runs on a fresh key so the outcome depends on policy only.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::Client;
use akm::kmip::attributes::{to_v1, Attr};
use akm::kmip::enums::{operation as op, result_reason as rr, revocation_reason_code as rrc};
use akm::kmip::extension::{self as ext, parse_accounts, parse_key_policy};
use akm::kmip::ProtocolVersion as V;
use akm::policy::{AccessMode, Operations, Settings};
use akm::ttlv::{Tag, Ttlv, Value};

const ADMIN_GROUP: &str = "akm-admins";

/// The five identities: CN and OUs.
const IDENTITIES: [(&str, &[&str]); 5] = [
    ("alice", &["HR"]),
    ("sam", &["HR"]),
    ("bob", &["Finance"]),
    ("admin", &[ADMIN_GROUP]),
    ("nobody", &[]),
];

fn access_settings() -> Settings {
    Settings {
        admin_group: ADMIN_GROUP.into(),
        // Callers in no table may read what is open to everyone, nothing more.
        unknown: Some(Operations::parse(&["get", "locate"]).unwrap()),
        hide_existence: false,
        default_mode: AccessMode::User,
    }
}

async fn client(server: &TestServer, cn: &str) -> Client {
    let ous = IDENTITIES.iter().find(|(n, _)| *n == cn).unwrap().1;
    server
        .connect(server.client_tls(cn, ous), V::V1_4)
        .await
        .unwrap()
}

/// A server where HR may do everything and Finance may read, set up by the administrator.
async fn server() -> TestServer {
    server_with(access_settings()).await
}

async fn server_with(settings: Settings) -> TestServer {
    let server = TestServer::start_with_access(settings).await;
    let mut admin = client(&server, "admin").await;
    admin
        .call(
            ext::OP_SET_ACCOUNT,
            ext::set_account_payload(false, "HR", None, Some("all")),
        )
        .await
        .unwrap();
    admin
        .call(
            ext::OP_SET_ACCOUNT,
            ext::set_account_payload(false, "Finance", Some(true), Some("read")),
        )
        .await
        .unwrap();
    server
}

fn mode_attr(mode: AccessMode) -> Attr {
    Attr::new("x-akm-access-mode", Value::TextString(mode.as_str().into()))
}

fn note(text: &str) -> Attr {
    Attr::new("x-note", Value::TextString(text.into()))
}

/// Alice's key in `mode` (owner group HR, her OU), named, with an `x-note` to edit.
async fn alices_key(alice: &mut Client, mode: AccessMode, key_name: &str) -> String {
    let mut attrs = aes_attrs(Some(key_name));
    attrs.push(mode_attr(mode));
    attrs.push(note("n"));
    uid_of(
        &alice
            .call(op::CREATE, create_payload(V::V1_4, &attrs))
            .await
            .unwrap(),
    )
}

include!("../policy/key_table.rs");

fn payload_for(operation: u32, u: &str) -> Vec<Ttlv> {
    let mut p = uid(u);
    match operation {
        op::ADD_ATTRIBUTE => p.push(to_v1(&note("added"), None)),
        op::MODIFY_ATTRIBUTE => p.push(to_v1(&note("changed"), Some(0))),
        op::DELETE_ATTRIBUTE => {
            p.push(Ttlv::text(Tag::ATTRIBUTE_NAME, "x-note"));
            p.push(Ttlv::integer(Tag::ATTRIBUTE_INDEX, 0));
        }
        op::SET_ATTRIBUTE => p.push(Ttlv::structure(
            Tag::NEW_ATTRIBUTE,
            vec![akm::kmip::attributes::to_v2(&Attr::new(
                "Comment",
                Value::TextString("set".into()),
            ))],
        )),
        op::REVOKE => p.push(Ttlv::structure(
            Tag::REVOCATION_REASON,
            vec![Ttlv::enumeration(
                Tag::REVOCATION_REASON_CODE,
                rrc::KEY_COMPROMISE,
            )],
        )),
        _ => {}
    }
    p
}

/// Runs `operation` as `c` on key `u` (named `key_name`): true if allowed, false if refused
/// with Permission Denied (any other failure fails the test).
async fn attempt(c: &mut Client, operation: u32, u: &str, key_name: &str) -> bool {
    if operation == op::LOCATE {
        let found = c
            .call(
                op::LOCATE,
                filters(V::V1_4, &[Attr::new("Name", name(key_name))]),
            )
            .await
            .unwrap();
        return uids_of(&found) == [u.to_owned()];
    }
    match c.call(operation, payload_for(operation, u)).await {
        Ok(_) => true,
        Err(e) => {
            assert_eq!(
                reason(Err(e)),
                rr::PERMISSION_DENIED,
                "operation {operation}"
            );
            false
        }
    }
}

#[tokio::test]
async fn every_identity_mode_and_operation_matches_the_policy_table() {
    let server = server().await;
    let mut alice = client(&server, "alice").await;
    // Each identity with a 1.4 and a 2.1 connection.
    let mut clients = Vec::new();
    for (cn, ous) in IDENTITIES {
        let v2 = server
            .connect(server.client_tls(cn, ous), V::V2_1)
            .await
            .unwrap();
        clients.push((cn, client(&server, cn).await, v2));
    }
    let mut n = 0;
    // The rows of the shared table for the five identities this server knows.
    let rows = KEY_TABLE
        .iter()
        .filter(|(who, _, _)| IDENTITIES.iter().any(|(cn, _)| cn == who));
    for (who, mode, expected) in rows {
        let (_, v1, v2) = clients.iter_mut().find(|(cn, _, _)| cn == who).unwrap();
        for (operation, want) in KEY_OPS.iter().zip(expected.chars()) {
            n += 1;
            let key_name = format!("k{n}");
            let u = alices_key(&mut alice, *mode, &key_name).await;
            let c = if *operation == op::SET_ATTRIBUTE {
                &mut *v2
            } else {
                &mut *v1
            };
            let allowed = attempt(c, *operation, &u, &key_name).await;
            assert_eq!(allowed, want == 'Y', "{who} op {operation} on a {mode} key");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn create_and_register_follow_the_system_tables() {
    let server = server().await;
    for (cn, may_create) in [
        ("alice", true),
        ("sam", true),
        ("bob", false),
        ("admin", true),
        ("nobody", false),
    ] {
        let mut c = client(&server, cn).await;
        let created = c
            .call(op::CREATE, create_payload(V::V1_4, &aes_attrs(None)))
            .await;
        let registered = c
            .call(
                op::REGISTER,
                register_key_payload(V::V1_4, &[7; 32], &aes_attrs(None)),
            )
            .await;
        for r in [created, registered] {
            match may_create {
                true => assert!(r.is_ok(), "{cn}: {r:?}"),
                false => assert_eq!(reason(r), rr::PERMISSION_DENIED, "{cn}"),
            }
        }
        // Query and Discover Versions are open to every authenticated client.
        c.call(op::QUERY, vec![]).await.unwrap();
        c.call(op::DISCOVER_VERSIONS, vec![]).await.unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn new_keys_take_their_policy_from_the_creator_and_the_request() {
    let server = server().await;
    let mut alice = client(&server, "alice").await;
    let mut admin = client(&server, "admin").await;
    let policy_of = |p: &Ttlv| parse_key_policy(p).unwrap();
    // By default: owner alice, group her OU, mode from the settings.
    let u = create_key(&mut alice, None).await;
    let p = policy_of(&admin.call(ext::OP_GET_KEY_POLICY, uid(&u)).await.unwrap());
    assert_eq!(
        (p.owner.as_str(), p.group.as_deref(), p.mode.as_str()),
        ("alice", Some("HR"), "user")
    );
    // A group she is not in, an owner other than herself, a bad mode: refused.
    for (attr, value, want) in [
        ("x-akm-owner-group", "Finance", rr::PERMISSION_DENIED),
        ("x-akm-owner", "bob", rr::PERMISSION_DENIED),
        ("x-akm-access-mode", "everyone", rr::INVALID_FIELD),
        ("x-akm-colour", "red", rr::INVALID_FIELD),
    ] {
        let mut attrs = aes_attrs(None);
        attrs.push(Attr::new(attr, Value::TextString(value.into())));
        let r = alice
            .call(op::CREATE, create_payload(V::V1_4, &attrs))
            .await;
        assert_eq!(reason(r), want, "{attr}={value}");
    }
    // A caller without OU cannot make a group key.
    let mut nobody = server
        .connect(server.client_tls("nobody", &[]), V::V1_4)
        .await
        .unwrap();
    let mut attrs = aes_attrs(None);
    attrs.push(mode_attr(AccessMode::Group));
    // (nobody may not create at all here; the administrator makes the point instead.)
    let r = nobody
        .call(op::CREATE, create_payload(V::V1_4, &attrs))
        .await;
    assert_eq!(reason(r), rr::PERMISSION_DENIED);
    // An administrator may create a key for someone else's group and user.
    let mut attrs = aes_attrs(Some("for-bob"));
    attrs.push(Attr::new("x-akm-owner", Value::TextString("bob".into())));
    attrs.push(Attr::new(
        "x-akm-owner-group",
        Value::TextString("Finance".into()),
    ));
    attrs.push(mode_attr(AccessMode::UserAndGroup));
    let u = uid_of(
        &admin
            .call(op::CREATE, create_payload(V::V1_4, &attrs))
            .await
            .unwrap(),
    );
    let p = policy_of(&admin.call(ext::OP_GET_KEY_POLICY, uid(&u)).await.unwrap());
    assert_eq!(
        (p.owner.as_str(), p.group.as_deref(), p.mode.as_str()),
        ("bob", Some("Finance"), "user-and-group")
    );
    let mut bob = client(&server, "bob").await;
    bob.call(op::GET, uid(&u)).await.unwrap();
    // The access attributes cannot be edited afterwards, even by the owner.
    let u = create_key(&mut alice, None).await;
    let mut p = uid(&u);
    p.push(to_v1(&mode_attr(AccessMode::Any), None));
    assert_eq!(
        reason(alice.call(op::ADD_ATTRIBUTE, p).await),
        rr::PERMISSION_DENIED
    );
    server.stop().await;
}

#[tokio::test]
async fn administrators_change_key_policy_and_the_tables() {
    let server = server().await;
    let mut alice = client(&server, "alice").await;
    let mut admin = client(&server, "admin").await;
    let mut bob = client(&server, "bob").await;
    let mut sam = client(&server, "sam").await;
    let u = create_key(&mut alice, None).await;
    assert_eq!(
        reason(bob.call(op::GET, uid(&u)).await),
        rr::PERMISSION_DENIED
    );
    // Non-administrators may not use the administration operations at all.
    for (operation, payload) in [
        (ext::OP_LIST_ACCOUNTS, ext::list_accounts_payload(true)),
        (
            ext::OP_SET_ACCOUNT,
            ext::set_account_payload(true, "alice", None, Some("all")),
        ),
        (
            ext::OP_DELETE_ACCOUNT,
            ext::delete_account_payload(false, "HR"),
        ),
        (
            ext::OP_SET_KEY_POLICY,
            ext::set_key_policy_payload(&u, None, None, Some("any")),
        ),
    ] {
        assert_eq!(
            reason(alice.call(operation, payload).await),
            rr::PERMISSION_DENIED,
            "operation 0x{operation:X}"
        );
    }
    // The owner may read her key's policy; bob, who may not use the key, may not.
    let p = alice.call(ext::OP_GET_KEY_POLICY, uid(&u)).await.unwrap();
    assert_eq!(parse_key_policy(&p).unwrap().mode, "user");
    assert_eq!(
        reason(bob.call(ext::OP_GET_KEY_POLICY, uid(&u)).await),
        rr::PERMISSION_DENIED
    );
    // Open the key to everyone: bob (Finance, read) can now Get it but not Destroy it.
    let p = admin
        .call(
            ext::OP_SET_KEY_POLICY,
            ext::set_key_policy_payload(&u, None, None, Some("any")),
        )
        .await
        .unwrap();
    assert_eq!(parse_key_policy(&p).unwrap().mode, "any");
    bob.call(op::GET, uid(&u)).await.unwrap();
    assert_eq!(
        reason(bob.call(op::DESTROY, uid(&u)).await),
        rr::PERMISSION_DENIED
    );
    // Hand it to Finance in group mode: bob keeps access, sam (HR) loses it.
    admin
        .call(
            ext::OP_SET_KEY_POLICY,
            ext::set_key_policy_payload(&u, Some("bob"), Some("Finance"), Some("group")),
        )
        .await
        .unwrap();
    bob.call(op::GET, uid(&u)).await.unwrap();
    assert_eq!(
        reason(sam.call(op::GET, uid(&u)).await),
        rr::PERMISSION_DENIED
    );
    // Group mode needs a group; a bad mode and an unknown key are refused.
    for (payload, want) in [
        (
            ext::set_key_policy_payload(&u, None, Some(""), None),
            rr::INVALID_FIELD,
        ),
        (
            ext::set_key_policy_payload(&u, None, None, Some("all")),
            rr::INVALID_FIELD,
        ),
        (
            ext::set_key_policy_payload("no-such-key", None, None, Some("any")),
            rr::ITEM_NOT_FOUND,
        ),
    ] {
        assert_eq!(
            reason(admin.call(ext::OP_SET_KEY_POLICY, payload).await),
            want
        );
    }
    // Disable sam: he is refused everything, even Query; enable him again.
    admin
        .call(
            ext::OP_SET_ACCOUNT,
            ext::set_account_payload(true, "sam", Some(false), None),
        )
        .await
        .unwrap();
    assert_eq!(
        reason(
            sam.call(op::CREATE, create_payload(V::V1_4, &aes_attrs(None)))
                .await
        ),
        rr::PERMISSION_DENIED
    );
    assert_eq!(
        reason(sam.call(op::QUERY, vec![]).await),
        rr::PERMISSION_DENIED
    );
    admin
        .call(
            ext::OP_SET_ACCOUNT,
            ext::set_account_payload(true, "sam", Some(true), None),
        )
        .await
        .unwrap();
    create_key(&mut sam, None).await;
    // Narrow HR to read: alice can no longer create.
    admin
        .call(
            ext::OP_SET_ACCOUNT,
            ext::set_account_payload(false, "HR", None, Some("read")),
        )
        .await
        .unwrap();
    assert_eq!(
        reason(
            alice
                .call(op::CREATE, create_payload(V::V1_4, &aes_attrs(None)))
                .await
        ),
        rr::PERMISSION_DENIED
    );
    let groups = parse_accounts(
        &admin
            .call(ext::OP_LIST_ACCOUNTS, ext::list_accounts_payload(false))
            .await
            .unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["Finance", "HR"]);
    assert_eq!(
        groups[1].operations,
        Operations::parse(&["read"]).unwrap().names()
    );
    let users = parse_accounts(
        &admin
            .call(ext::OP_LIST_ACCOUNTS, ext::list_accounts_payload(true))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(users.len(), 1);
    assert!(users[0].enabled && users[0].operations.is_empty());
    // Deleting, then deleting again.
    admin
        .call(
            ext::OP_DELETE_ACCOUNT,
            ext::delete_account_payload(true, "sam"),
        )
        .await
        .unwrap();
    assert_eq!(
        reason(
            admin
                .call(
                    ext::OP_DELETE_ACCOUNT,
                    ext::delete_account_payload(true, "sam")
                )
                .await
        ),
        rr::ITEM_NOT_FOUND
    );
    // Malformed administration requests get clear errors.
    for (operation, payload, want) in [
        (ext::OP_LIST_ACCOUNTS, vec![], rr::INVALID_MESSAGE),
        (
            ext::OP_LIST_ACCOUNTS,
            vec![Ttlv::enumeration(ext::TAG_ACCOUNT_KIND, 9)],
            rr::INVALID_FIELD,
        ),
        (
            ext::OP_SET_ACCOUNT,
            ext::set_account_payload(false, "HR", None, Some("get,fly")),
            rr::INVALID_FIELD,
        ),
        (
            ext::OP_SET_ACCOUNT,
            ext::set_account_payload(false, "", None, None),
            rr::INVALID_FIELD,
        ),
        (
            ext::OP_SET_ACCOUNT,
            vec![ext::kind_item(true)],
            rr::INVALID_MESSAGE,
        ),
        (ext::OP_GET_KEY_POLICY, vec![], rr::INVALID_MESSAGE),
        // Fields of the wrong type.
        (
            ext::OP_SET_ACCOUNT,
            vec![ext::kind_item(true), Ttlv::text(ext::TAG_ACCOUNT, "sam")],
            rr::INVALID_MESSAGE,
        ),
        (
            ext::OP_SET_ACCOUNT,
            vec![
                ext::kind_item(true),
                Ttlv::structure(
                    ext::TAG_ACCOUNT,
                    vec![
                        Ttlv::text(ext::TAG_ACCOUNT_NAME, "sam"),
                        Ttlv::integer(ext::TAG_ENABLED, 1),
                    ],
                ),
            ],
            rr::INVALID_FIELD,
        ),
        (
            ext::OP_DELETE_ACCOUNT,
            vec![
                ext::kind_item(true),
                Ttlv::integer(ext::TAG_ACCOUNT_NAME, 1),
            ],
            rr::INVALID_FIELD,
        ),
        (
            ext::OP_LIST_ACCOUNTS,
            vec![Ttlv::text(ext::TAG_ACCOUNT_KIND, "user")],
            rr::INVALID_FIELD,
        ),
        // Disabling the administrators group, or oneself, would lock administrators out.
        (
            ext::OP_SET_ACCOUNT,
            ext::set_account_payload(false, ADMIN_GROUP, Some(false), None),
            rr::INVALID_FIELD,
        ),
        (
            ext::OP_SET_ACCOUNT,
            ext::set_account_payload(true, "admin", Some(false), None),
            rr::INVALID_FIELD,
        ),
        (ext::OP_GET_KEY_POLICY, uid("nope"), rr::ITEM_NOT_FOUND),
    ] {
        assert_eq!(
            reason(admin.call(operation, payload).await),
            want,
            "operation 0x{operation:X}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn hide_existence_answers_item_not_found() {
    let mut settings = access_settings();
    settings.hide_existence = true;
    let server = server_with(settings).await;
    let mut alice = client(&server, "alice").await;
    let mut sam = client(&server, "sam").await;
    let u = create_key(&mut alice, None).await;
    for operation in [op::GET, op::GET_ATTRIBUTES, op::ACTIVATE, op::DESTROY] {
        assert_eq!(
            reason(sam.call(operation, uid(&u)).await),
            rr::ITEM_NOT_FOUND,
            "operation {operation}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_callers_can_be_refused() {
    let mut settings = access_settings();
    settings.unknown = None;
    let server = TestServer::start_with_access(settings).await;
    let mut stranger = server
        .connect(server.client_tls("stranger", &["Nowhere"]), V::V1_4)
        .await
        .unwrap();
    assert_eq!(
        reason(
            stranger
                .call(op::CREATE, create_payload(V::V1_4, &aes_attrs(None)))
                .await
        ),
        rr::PERMISSION_DENIED
    );
    stranger.call(op::QUERY, vec![]).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_certificate_with_several_ous_is_in_every_group() {
    let server = server().await;
    let mut alice = client(&server, "alice").await;
    let u = alices_key(&mut alice, AccessMode::Group, "hr-key").await;
    // First OU Finance (read), second HR: in HR for the key, granted the union of both.
    let mut carol = server
        .connect(server.client_tls("carol", &["Finance", "HR"]), V::V1_4)
        .await
        .unwrap();
    carol.call(op::GET, uid(&u)).await.unwrap();
    carol.call(op::ACTIVATE, uid(&u)).await.unwrap();
    // Her own keys belong to her first OU unless she names another of hers.
    let mine = create_key(&mut carol, None).await;
    let mut admin = client(&server, "admin").await;
    let p = parse_key_policy(
        &admin
            .call(ext::OP_GET_KEY_POLICY, uid(&mine))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(p.group.as_deref(), Some("Finance"));
    let mut attrs = aes_attrs(None);
    attrs.push(Attr::new(
        "x-akm-owner-group",
        Value::TextString("HR".into()),
    ));
    attrs.push(mode_attr(AccessMode::Group));
    let shared = uid_of(
        &carol
            .call(op::CREATE, create_payload(V::V1_4, &attrs))
            .await
            .unwrap(),
    );
    // sam (HR) may use it; bob (Finance) may not.
    let mut sam = client(&server, "sam").await;
    sam.call(op::GET, uid(&shared)).await.unwrap();
    let mut bob = client(&server, "bob").await;
    assert_eq!(
        reason(bob.call(op::GET, uid(&shared)).await),
        rr::PERMISSION_DENIED
    );
    server.stop().await;
}

#[tokio::test]
async fn every_decision_is_recorded_for_the_audit_log() {
    let server = server().await;
    let mut alice = client(&server, "alice").await;
    let u = create_key(&mut alice, None).await;
    // Three items: a Get bob may not do, a Locate he may, an administration operation.
    let msg = akm::client::request(
        V::V1_4,
        &[
            (op::GET, uid(&u)),
            (op::LOCATE, vec![]),
            (ext::OP_LIST_ACCOUNTS, ext::list_accounts_payload(true)),
        ],
    );
    let mut msg = akm::kmip::RequestMessage::parse(msg).unwrap();
    msg.header.on_error = akm::kmip::OnError::Continue;
    let bob = akm::identity::Principal {
        cn: "bob".into(),
        ous: vec!["Finance".into()],
        serial: "01".into(),
        fingerprint: "00".into(),
        subject: "OU=Finance, CN=bob".into(),
    };
    let ctx = server.ctx.clone();
    let (items, records) =
        tokio::task::spawn_blocking(move || akm::ops::dispatch_recorded(&ctx, &bob, &msg, 0))
            .await
            .unwrap();
    assert_eq!(items.len(), 3);
    let summary: Vec<(usize, u32, Option<&str>, bool)> = records
        .iter()
        .map(|r| (r.item, r.operation, r.uid.as_deref(), r.decision.allowed))
        .collect();
    assert_eq!(
        summary,
        [
            (0, op::GET, None, true),
            (0, op::GET, Some(u.as_str()), false),
            (1, op::LOCATE, None, true),
            (2, ext::OP_LIST_ACCOUNTS, None, false),
        ]
    );
    assert!(records
        .iter()
        .all(|r| r.user == "bob" && r.groups == ["Finance"]));
    assert_eq!(
        records[1].decision.reason,
        akm::policy::Reason::NotPermittedByKey(AccessMode::User)
    );
    server.stop().await;
}

#[tokio::test]
async fn policy_attributes_work_in_kmip_2_x_and_bad_ones_are_refused() {
    let server = server().await;
    let mut alice = server
        .connect(server.client_tls("alice", &["HR"]), V::V2_1)
        .await
        .unwrap();
    let mut attrs = aes_attrs(None);
    attrs.push(mode_attr(AccessMode::Any));
    let u = uid_of(
        &alice
            .call(op::CREATE, create_payload(V::V2_1, &attrs))
            .await
            .unwrap(),
    );
    let mut admin = client(&server, "admin").await;
    let p = parse_key_policy(&admin.call(ext::OP_GET_KEY_POLICY, uid(&u)).await.unwrap()).unwrap();
    assert_eq!(p.mode, "any");
    // Not text, given twice, an empty group named by an administrator.
    let mut twice = aes_attrs(None);
    twice.push(mode_attr(AccessMode::Any));
    twice.push(mode_attr(AccessMode::User));
    let mut not_text = aes_attrs(None);
    not_text.push(Attr::new("x-akm-access-mode", Value::Integer(1)));
    let mut empty_group = aes_attrs(None);
    empty_group.push(Attr::new(
        "x-akm-owner-group",
        Value::TextString(String::new()),
    ));
    for attrs in [twice, not_text] {
        let r = alice
            .call(op::CREATE, create_payload(V::V2_1, &attrs))
            .await;
        assert_eq!(reason(r), rr::INVALID_FIELD);
    }
    let r = admin
        .call(op::CREATE, create_payload(V::V1_4, &empty_group))
        .await;
    assert_eq!(reason(r), rr::INVALID_FIELD);
    // Set Key Policy with a field of the wrong type or an empty owner.
    let wrong_type = vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, u.clone()),
        Ttlv::integer(ext::TAG_ACCESS_MODE, 1),
    ];
    let empty_owner = ext::set_key_policy_payload(&u, Some(""), None, None);
    for payload in [wrong_type, empty_owner] {
        assert_eq!(
            reason(admin.call(ext::OP_SET_KEY_POLICY, payload).await),
            rr::INVALID_FIELD
        );
    }
    server.stop().await;
}

/// Opens the test server's database beside the server, as a damaged file would look.
fn tamper(server: &TestServer, sql: &str) {
    let c = rusqlite::Connection::open(server.db_path()).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c.execute_batch(sql).unwrap();
}

#[tokio::test]
async fn unreadable_policy_records_fail_closed() {
    let server = server().await;
    let mut alice = client(&server, "alice").await;
    let u = create_key(&mut alice, Some("damaged"));
    let u = u.await;
    // A group record whose operation list does not parse: its members get General Failure,
    // never a grant.
    tamper(
        &server,
        "UPDATE acl_groups SET operations = 'get,fly' WHERE name = 'HR'",
    );
    assert_eq!(
        reason(alice.call(op::GET, uid(&u)).await),
        rr::GENERAL_FAILURE
    );
    tamper(
        &server,
        "UPDATE acl_groups SET operations = 'all' WHERE name = 'HR'",
    );
    alice.call(op::GET, uid(&u)).await.unwrap();
    // An object whose access mode does not parse: unusable, and never located.
    tamper(
        &server,
        &format!("UPDATE objects SET access_mode = 'everyone' WHERE uid = '{u}'"),
    );
    assert_eq!(
        reason(alice.call(op::GET, uid(&u)).await),
        rr::GENERAL_FAILURE
    );
    let found = alice
        .call(
            op::LOCATE,
            filters(V::V1_4, &[Attr::new("Name", name("damaged"))]),
        )
        .await
        .unwrap();
    assert!(uids_of(&found).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn locate_never_lists_anything_but_keys() {
    // Users, groups and policy records exist (set up by `server`), the KEK is in use: an
    // administrator's unfiltered Locate, in every storage mask, lists exactly the keys made.
    let server = server().await;
    let mut alice = client(&server, "alice").await;
    let made = [
        create_key(&mut alice, None).await,
        create_key(&mut alice, None).await,
    ];
    let mut admin = client(&server, "admin").await;
    let mut found = uids_of(&admin.call(op::LOCATE, vec![]).await.unwrap());
    found.sort();
    let mut want = made.to_vec();
    want.sort();
    assert_eq!(found, want);
    let everything = vec![Ttlv::integer(Tag::STORAGE_STATUS_MASK, 7)];
    let mut found = uids_of(&admin.call(op::LOCATE, everything).await.unwrap());
    found.sort();
    assert_eq!(found, want);
    server.stop().await;
}

/// On demand (`cargo test --test it access_cost -- --ignored --nocapture`): what access
/// control costs per request. Prints figures; asserts only the outcomes.
#[tokio::test]
#[ignore]
async fn access_cost_figures() {
    let server = server().await;
    let mut alice = client(&server, "alice").await;
    let mut carl = server
        .connect(server.client_tls("carl", &["HR"]), V::V1_4)
        .await
        .unwrap();
    // 2000 keys: half alice's (user mode), half carl's open to everyone.
    let mut mine = Vec::new();
    for i in 0..1000 {
        mine.push(alices_key(&mut alice, AccessMode::User, &format!("a{i}")).await);
        let mut attrs = aes_attrs(Some(&format!("b{i}")));
        attrs.push(mode_attr(AccessMode::Any));
        carl.call(op::CREATE, create_payload(V::V1_4, &attrs))
            .await
            .unwrap();
    }
    let t = std::time::Instant::now();
    for u in mine.iter().take(1000) {
        alice.call(op::GET, uid(u)).await.unwrap();
    }
    let get = t.elapsed() / 1000;
    let t = std::time::Instant::now();
    for _ in 0..20 {
        let found = alice.call(op::LOCATE, vec![]).await.unwrap();
        assert_eq!(uids_of(&found).len(), 2000);
    }
    let locate_alice = t.elapsed() / 20;
    let mut sam = client(&server, "sam").await;
    let t = std::time::Instant::now();
    for _ in 0..20 {
        let found = sam.call(op::LOCATE, vec![]).await.unwrap();
        assert_eq!(uids_of(&found).len(), 1000);
    }
    let locate_sam = t.elapsed() / 20;
    let mut admin = client(&server, "admin").await;
    let t = std::time::Instant::now();
    for _ in 0..20 {
        admin.call(op::LOCATE, vec![]).await.unwrap();
    }
    let locate_admin = t.elapsed() / 20;
    println!(
        "Get (user-mode key, caller in HR): {get:?} per request\n\
         Locate of 2000 keys, alice sees 2000: {locate_alice:?}\n\
         Locate of 2000 keys, sam sees 1000: {locate_sam:?}\n\
         Locate of 2000 keys, admin (no pre-filter): {locate_admin:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_certificate_the_identity_rules_refuse_gets_no_service() {
    let server = server().await;
    let ous: Vec<&str> = (0..=akm::identity::MAX_GROUPS).map(|_| "HR").collect();
    // Verified by TLS, but with more OUs than akm accepts: closed before any request.
    let refused = match server
        .connect(server.client_tls("crowd", &ous), V::V1_4)
        .await
    {
        Err(_) => true,
        Ok(mut c) => c.call(op::QUERY, vec![]).await.is_err(),
    };
    assert!(refused, "a certificate with too many OUs was served");
    let mut alice = client(&server, "alice").await;
    alice.call(op::QUERY, vec![]).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn an_undone_batch_puts_a_key_policy_back() {
    use akm::kmip::enums::batch_error_continuation_option as bec;
    let server = server().await;
    let mut alice = client(&server, "alice").await;
    let u = create_key(&mut alice, None).await;
    let mut admin = client(&server, "admin").await;
    let mut msg = akm::client::request(
        V::V1_4,
        &[
            (
                ext::OP_SET_KEY_POLICY,
                ext::set_key_policy_payload(&u, None, None, Some("any")),
            ),
            (op::GET, uid("no-such-key")),
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
    admin.send(&msg).await.unwrap();
    let p = parse_key_policy(&admin.call(ext::OP_GET_KEY_POLICY, uid(&u)).await.unwrap()).unwrap();
    assert_eq!(p.mode, "user", "the undone policy change stuck");
    server.stop().await;
}

#[tokio::test]
async fn a_new_key_belongs_to_the_first_group_that_counts() {
    let server = server().await;
    let mut admin = client(&server, "admin").await;
    admin
        .call(
            ext::OP_SET_ACCOUNT,
            ext::set_account_payload(false, "Old", Some(false), Some("all")),
        )
        .await
        .unwrap();
    // First OU Old is disabled: the key goes to HR, the first enabled one.
    let mut hank = server
        .connect(server.client_tls("hank", &["Old", "HR"]), V::V1_4)
        .await
        .unwrap();
    let u = create_key(&mut hank, None).await;
    let p = parse_key_policy(&admin.call(ext::OP_GET_KEY_POLICY, uid(&u)).await.unwrap()).unwrap();
    assert_eq!(p.group.as_deref(), Some("HR"));
    // An administrator naming a group with control characters is refused.
    let mut attrs = aes_attrs(None);
    attrs.push(Attr::new(
        "x-akm-owner-group",
        Value::TextString("H\nR".into()),
    ));
    assert_eq!(
        reason(
            admin
                .call(op::CREATE, create_payload(V::V1_4, &attrs))
                .await
        ),
        rr::INVALID_FIELD
    );
    server.stop().await;
}

#[tokio::test]
async fn the_audit_record_says_why_access_was_denied() {
    let server = server().await;
    let mut alice = client(&server, "alice").await;
    let u = create_key(&mut alice, None).await;
    let mut bob = client(&server, "bob").await;
    assert_eq!(
        reason(bob.call(op::GET, uid(&u)).await),
        rr::PERMISSION_DENIED
    );
    assert_eq!(
        reason(bob.call(op::DESTROY, uid(&u)).await),
        rr::PERMISSION_DENIED
    );
    let mut admin = client(&server, "admin").await;
    admin.call(op::GET, uid(&u)).await.unwrap();
    let journal = server.journal_path();
    let _dir = server.stop().await;
    let records = crate::audit::records(&journal);
    // The kmip records carry the reason in their detail.
    let details: Vec<String> = records
        .iter()
        .filter(|r| r.get("event") == Some("kmip"))
        .map(|r| akm::audit::record::unescape(r.get("detail").unwrap_or("")))
        .collect();
    assert!(
        details.contains(&"access denied: key access mode user".to_string()),
        "{details:?}"
    );
    assert!(
        details.contains(&"access denied: operation not granted to the caller".to_string()),
        "{details:?}"
    );
    assert!(
        details.contains(&"access: administrator".to_string()),
        "{details:?}"
    );
    // Each denial record names the caller and the key.
    for r in &records {
        let detail = akm::audit::record::unescape(r.get("detail").unwrap_or(""));
        if detail.starts_with("access denied") {
            assert_eq!(r.get("user"), Some("bob"));
            assert_eq!(r.get("uid"), Some(u.as_str()));
        }
    }
}
