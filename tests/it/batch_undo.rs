//! Batch Error Continuation Option Undo: when an item fails, what the earlier items of the
//! batch did is undone (a created object disappears, a changed one is as before) and their
//! status is Operation Undone.

use crate::support::kmip::*;
use crate::support::server::TestServer;
use akm::client::request;
use akm::kmip::enums::{
    batch_error_continuation_option as bec, operation as op, result_reason as rr, result_status,
    state,
};
use akm::kmip::ProtocolVersion as V;
use akm::ttlv::{Tag, Ttlv, Value};

fn with_option(mut msg: Ttlv, option: u32) -> Ttlv {
    if let Value::Structure(children) = &mut msg.value {
        if let Value::Structure(h) = &mut children[0].value {
            h.push(Ttlv::enumeration(
                Tag::BATCH_ERROR_CONTINUATION_OPTION,
                option,
            ));
        }
    }
    msg
}

fn statuses(response: &Ttlv) -> Vec<u32> {
    response
        .children_with(Tag::BATCH_ITEM)
        .filter_map(|i| i.child(Tag::RESULT_STATUS).and_then(Ttlv::as_enum))
        .collect()
}

#[tokio::test]
async fn undo_reverts_the_items_before_a_failure() {
    let server = TestServer::start().await;
    for v in [V::V1_4, V::V2_1] {
        let mut c = server.client("alice", v).await;
        let existing = create_key(&mut c, None).await;
        let name = format!("undone-{v}");
        let msg = request(
            v,
            &[
                (op::ACTIVATE, uid(&existing)),
                (op::CREATE, create_payload(v, &aes_attrs(Some(&name)))),
                (op::GET, uid("no-such-key")),
                (op::DESTROY, uid(&existing)),
            ],
        );
        let response = c.send(&with_option(msg, bec::UNDO)).await.unwrap();
        use result_status::*;
        assert_eq!(
            statuses(&response),
            [OPERATION_UNDONE, OPERATION_UNDONE, OPERATION_FAILED]
        );
        // An undone item keeps its payload.
        let created = response
            .children_with(Tag::BATCH_ITEM)
            .nth(1)
            .and_then(|i| i.child(Tag::RESPONSE_PAYLOAD))
            .map(uid_of)
            .expect("the undone Create keeps its payload");
        // The activation is undone, the created key is gone, and its name is free again.
        assert_eq!(state_of(&mut c, &existing).await, state::PRE_ACTIVE);
        let gone = c.call(op::GET, uid(&created)).await;
        assert_eq!(reason(gone), v.result_reason(rr::OBJECT_NOT_FOUND));
        create_key(&mut c, Some(&name)).await;
        // Key material survives an undone Destroy too.
        let msg = request(
            v,
            &[(op::DESTROY, uid(&existing)), (op::GET, uid("no-such-key"))],
        );
        let response = c.send(&with_option(msg, bec::UNDO)).await.unwrap();
        assert_eq!(statuses(&response), [OPERATION_UNDONE, OPERATION_FAILED]);
        let got = c.call(op::GET, uid(&existing)).await.unwrap();
        assert_eq!(key_bytes(&got).len(), 32);
    }
    server.stop().await;
}

// ---- The seams of Undo (issue 16): the batch's own writes, and nothing else. ----

use akm::client::Client;
use akm::kmip::attributes::Attr;
use akm::kmip::enums::{derivation_method as dm, hashing_algorithm as ha, object_type as ot};
use akm::kmip::extension as ext;
use akm::policy::{AccessMode, Operations, Settings};

const ADMINS: &str = "akm-admins";

/// Admins administer; Readers (a group) may only read; callers in no table may do anything
/// to what they own (the default), so "mallory" is a stranger with no right on others' keys.
async fn seams_server() -> TestServer {
    let server = TestServer::start_with_access(Settings {
        admin_group: ADMINS.into(),
        unknown: Some(Operations::all()),
        hide_existence: false,
        default_mode: AccessMode::User,
    })
    .await;
    let mut admin = who(&server, "admin", ADMINS).await;
    admin
        .call(
            ext::OP_SET_ACCOUNT,
            ext::set_account_payload(false, "Readers", Some(true), Some("read")),
        )
        .await
        .unwrap();
    server
}

async fn who(server: &TestServer, cn: &str, ou: &str) -> Client {
    server
        .connect(server.client_tls(cn, &[ou]), V::V2_1)
        .await
        .unwrap()
}

fn undo(items: &[(u32, Vec<Ttlv>)]) -> Ttlv {
    with_option(request(V::V2_1, items), bec::UNDO)
}

fn shared_attrs(key_name: &str) -> Vec<Attr> {
    let mut attrs = aes_attrs(Some(key_name));
    attrs.push(Attr::new(
        "x-akm-access-mode",
        Value::TextString("any".into()),
    ));
    attrs
}

/// Revoke as compromised.
fn revoke_compromised(u: &str) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(Ttlv::structure(
        Tag::REVOCATION_REASON,
        vec![Ttlv::enumeration(
            Tag::REVOCATION_REASON_CODE,
            akm::kmip::enums::revocation_reason_code::KEY_COMPROMISE,
        )],
    ));
    p
}

/// The journal's lines that record batch items.
fn journal_lines(server: &TestServer) -> Vec<String> {
    std::fs::read_to_string(server.journal_path())
        .unwrap()
        .lines()
        .filter(|l| l.contains("event=kmip"))
        .map(str::to_owned)
        .collect()
}

/// Finding 1: a read-only user's Undo batch Locates an administrator's shared key and then
/// fails. The Locate is undone (it wrote nothing), and the key is untouched: row, name and
/// material.
#[tokio::test]
async fn undo_never_deletes_an_object_the_batch_only_located() {
    let server = seams_server().await;
    let mut admin = who(&server, "admin", ADMINS).await;
    let key = uid_of(
        &admin
            .call(
                op::CREATE,
                create_payload(V::V2_1, &shared_attrs("shared-x")),
            )
            .await
            .unwrap(),
    );
    admin.call(op::ACTIVATE, uid(&key)).await.unwrap();
    let before = key_bytes(&admin.call(op::GET, uid(&key)).await.unwrap());
    let mut reader = who(&server, "rita", "Readers").await;
    let located = filters(V::V2_1, &[Attr::new("Name", name("shared-x"))]);
    let response = reader
        .send(&undo(&[
            (op::LOCATE, located),
            (op::GET, uid("no-such-key")),
        ]))
        .await
        .unwrap();
    use result_status::*;
    assert_eq!(statuses(&response), [OPERATION_UNDONE, OPERATION_FAILED]);
    assert_eq!(state_of(&mut admin, &key).await, state::ACTIVE);
    assert_eq!(
        key_bytes(&admin.call(op::GET, uid(&key)).await.unwrap()),
        before
    );
    let found = admin
        .call(
            op::LOCATE,
            filters(V::V2_1, &[Attr::new("Name", name("shared-x"))]),
        )
        .await
        .unwrap();
    assert_eq!(uids_of(&found), [key]);
    server.stop().await;
}

/// Finding 2: a stranger's Undo batch names the owner's key (in a payload that ignores it)
/// and keeps running while the owner revokes and destroys the key and an administrator
/// changes its policy; when the batch fails, none of that is written back.
#[tokio::test]
async fn undo_never_writes_back_what_others_changed_meanwhile() {
    let server = seams_server().await;
    let mut owner = who(&server, "olga", "Ops").await;
    let key = create_key(&mut owner, Some("olgas-key")).await;
    owner.call(op::ACTIVATE, uid(&key)).await.unwrap();
    let mut mallory = who(&server, "mallory", "Guests").await;
    let base = uid_of(
        &mallory
            .call(
                op::REGISTER,
                register_key_payload(
                    V::V2_1,
                    &[7u8; 32],
                    &[Attr::new(
                        "Cryptographic Usage Mask",
                        Value::Integer(akm::kmip::enums::cryptographic_usage_mask::DERIVE_KEY),
                    )],
                ),
            )
            .await
            .unwrap(),
    );
    mallory.call(op::ACTIVATE, uid(&base)).await.unwrap();
    let slow = |i: i32| {
        vec![
            Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
            Ttlv::text(Tag::UNIQUE_IDENTIFIER, base.clone()),
            Ttlv::enumeration(Tag::DERIVATION_METHOD, dm::PBKDF2),
            Ttlv::structure(
                Tag::DERIVATION_PARAMETERS,
                vec![
                    Ttlv::structure(
                        Tag::CRYPTOGRAPHIC_PARAMETERS,
                        vec![Ttlv::enumeration(Tag::HASHING_ALGORITHM, ha::SHA_256)],
                    ),
                    Ttlv::bytes(Tag::SALT, vec![i as u8; 16]),
                    Ttlv::integer(Tag::ITERATION_COUNT, 50_000),
                ],
            ),
            template(V::V2_1, &aes_attrs(None)),
        ]
    };
    // Query ignores the Unique Identifier; the old undo journal snapshotted it anyway.
    let mut named = vec![Ttlv::enumeration(Tag::QUERY_FUNCTION, 1)];
    named.push(Ttlv::text(Tag::UNIQUE_IDENTIFIER, key.clone()));
    let batch = undo(&[
        (op::QUERY, named),
        (op::DERIVE_KEY, slow(1)),
        (op::DERIVE_KEY, slow(2)),
        (op::DERIVE_KEY, slow(3)),
        (op::GET, uid("no-such-key")),
    ]);
    let attack = tokio::spawn(async move { mallory.send(&batch).await.unwrap() });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    owner
        .call(op::REVOKE, revoke_compromised(&key))
        .await
        .unwrap();
    owner.call(op::DESTROY, uid(&key)).await.unwrap();
    let mut admin = who(&server, "admin", ADMINS).await;
    admin
        .call(
            ext::OP_SET_KEY_POLICY,
            ext::set_key_policy_payload(&key, None, None, Some("user")),
        )
        .await
        .unwrap();
    let response = attack.await.unwrap();
    use result_status::*;
    assert_eq!(
        statuses(&response),
        [
            OPERATION_UNDONE,
            OPERATION_UNDONE,
            OPERATION_UNDONE,
            OPERATION_UNDONE,
            OPERATION_FAILED
        ]
    );
    // Destroyed stays destroyed, with no material; the policy change stands.
    assert_eq!(
        state_of(&mut admin, &key).await,
        state::DESTROYED_COMPROMISED
    );
    assert!(server.ctx.store.get_material(&key).unwrap().is_none());
    assert_eq!(
        server.ctx.store.get(&key).unwrap().unwrap().access_mode,
        "user"
    );
    server.stop().await;
}

/// Finding 3: undone items are audited as `outcome=undone`, and an undone batch leaves no
/// change-log entry, so nothing of it can reach a mirror peer.
#[tokio::test]
async fn undone_items_are_audited_and_never_logged_for_peers() {
    let server = seams_server().await;
    let mut owner = who(&server, "olga", "Ops").await;
    let key = create_key(&mut owner, Some("audited")).await;
    let seq = server.ctx.store.last_change_seq().unwrap();
    let response = owner
        .send(&undo(&[
            (op::ACTIVATE, uid(&key)),
            (
                op::CREATE,
                create_payload(V::V2_1, &aes_attrs(Some("made"))),
            ),
            (op::GET, uid("no-such-key")),
        ]))
        .await
        .unwrap();
    use result_status::*;
    assert_eq!(
        statuses(&response),
        [OPERATION_UNDONE, OPERATION_UNDONE, OPERATION_FAILED]
    );
    assert_eq!(server.ctx.store.last_change_seq().unwrap(), seq);
    let lines = journal_lines(&server);
    let last: Vec<&String> = lines.iter().rev().take(3).rev().collect();
    assert!(last[0].contains("operation=Activate") && last[0].contains("outcome=undone"));
    assert!(last[1].contains("operation=Create") && last[1].contains("outcome=undone"));
    assert!(last[2].contains("operation=Get") && last[2].contains("outcome=failure"));
    // A batch that succeeds commits everything, once.
    let response = owner
        .send(&undo(&[
            (op::ACTIVATE, uid(&key)),
            (
                op::CREATE,
                create_payload(V::V2_1, &aes_attrs(Some("made"))),
            ),
        ]))
        .await
        .unwrap();
    assert_eq!(statuses(&response), [SUCCESS, SUCCESS]);
    assert_eq!(state_of(&mut owner, &key).await, state::ACTIVE);
    assert!(server.ctx.store.last_change_seq().unwrap() > seq);
    server.stop().await;
}

/// Operations whose effect lives outside the key store cannot be rolled back, so an Undo
/// batch refuses them (and rolls back what came before).
#[tokio::test]
async fn undo_refuses_what_it_could_not_roll_back() {
    let server = seams_server().await;
    let mut admin = who(&server, "admin", ADMINS).await;
    let response = admin
        .send(&undo(&[
            (
                op::CREATE,
                create_payload(V::V2_1, &aes_attrs(Some("kept-out"))),
            ),
            (akm::kmip::custody::OP_BACKUP, vec![]),
        ]))
        .await
        .unwrap();
    use result_status::*;
    assert_eq!(statuses(&response), [OPERATION_UNDONE, OPERATION_FAILED]);
    let failed = response.children_with(Tag::BATCH_ITEM).nth(1).unwrap();
    assert_eq!(
        failed.child(Tag::RESULT_REASON).and_then(Ttlv::as_enum),
        Some(rr::FEATURE_NOT_SUPPORTED)
    );
    let found = admin
        .call(
            op::LOCATE,
            filters(V::V2_1, &[Attr::new("Name", name("kept-out"))]),
        )
        .await
        .unwrap();
    assert!(uids_of(&found).is_empty());
    server.stop().await;
}

/// An online certificate revocation takes effect outside the batch's transaction (the
/// listeners' in-memory set), so an Undo batch refuses it: the certificate stays served and
/// nothing is recorded.
#[tokio::test]
async fn undo_refuses_an_online_certificate_revocation() {
    let server = seams_server().await;
    let mut admin = who(&server, "admin", ADMINS).await;
    let carol = server
        .ca
        .issue_client("carol", &[], akm::pki::Validity::days_from_now(1))
        .unwrap();
    let der = carol.cert_der().unwrap();
    let issuer = akm::identity::issuer_of(der.as_ref()).unwrap();
    let serial = akm::identity::principal_from_der(der.as_ref())
        .unwrap()
        .serial;
    let response = admin
        .send(&undo(&[
            (
                op::CREATE,
                create_payload(V::V2_1, &aes_attrs(Some("before"))),
            ),
            (
                ext::OP_REVOKE_CERTIFICATE,
                ext::revoke_certificate_payload(&issuer, &serial),
            ),
        ]))
        .await
        .unwrap();
    use result_status::*;
    assert_eq!(statuses(&response), [OPERATION_UNDONE, OPERATION_FAILED]);
    let failed = response.children_with(Tag::BATCH_ITEM).nth(1).unwrap();
    assert_eq!(
        failed.child(Tag::RESULT_REASON).and_then(Ttlv::as_enum),
        Some(rr::FEATURE_NOT_SUPPORTED)
    );
    assert!(server.ctx.store.cert_revocations().unwrap().is_empty());
    let mut c = server
        .connect(server.client_tls_for(&carol), V::V2_1)
        .await
        .unwrap();
    c.call(op::QUERY, vec![]).await.unwrap();
    server.stop().await;
}

/// On a mirrored pair: an undone batch never reaches the peer, a committed Undo batch does,
/// whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_on_a_mirrored_pair_sends_only_committed_batches() {
    use crate::support::cluster::{eventually, Cluster, Options};
    use std::time::Duration;
    let c = Cluster::start(Options::nodes(2));
    let mut a = c.client(0).await;
    let existing = crate::support::cluster::create_key(&mut a, "mirrored-existing").await;
    assert!(eventually(Duration::from_secs(10), || c.nodes[1]
        .objects()
        .contains_key(&existing)));
    let failing = with_option(
        request(
            a.version,
            &[
                (op::ACTIVATE, uid(&existing)),
                (
                    op::CREATE,
                    create_payload(a.version, &aes_attrs(Some("never-mirrored"))),
                ),
                (op::GET, uid("no-such-key")),
            ],
        ),
        bec::UNDO,
    );
    let response = a.send(&failing).await.unwrap();
    assert_eq!(
        statuses(&response).last(),
        Some(&result_status::OPERATION_FAILED)
    );
    let committed = with_option(
        request(
            a.version,
            &[
                (
                    op::CREATE,
                    create_payload(a.version, &aes_attrs(Some("mirrored-whole"))),
                ),
                (op::ACTIVATE, vec![]),
            ],
        ),
        bec::UNDO,
    );
    let response = a.send(&committed).await.unwrap();
    assert_eq!(
        statuses(&response),
        [result_status::SUCCESS, result_status::SUCCESS]
    );
    let made = response
        .children_with(Tag::BATCH_ITEM)
        .next()
        .and_then(|i| i.child(Tag::RESPONSE_PAYLOAD))
        .map(uid_of)
        .unwrap();
    // The committed batch arrives whole (created and active); the undone one never did, so
    // the peer's copy of the existing key was never activated.
    assert!(eventually(Duration::from_secs(10), || c.nodes[1]
        .objects()
        .get(&made)
        .is_some_and(|row| row.0 == state::ACTIVE)));
    let peer = c.nodes[1].objects();
    assert_eq!(peer[&existing].0, state::PRE_ACTIVE);
    assert_eq!(peer.len(), 2, "only the two committed keys");
}

/// Dual control inside Undo batches: a window admits every guarded item of its operation in
/// one batch; an item of another guarded operation with no window fails and undoes the
/// approved items before it; a batch undone does not use the window up.
#[tokio::test]
async fn undo_batches_under_dual_control_are_as_approved_as_their_least_approved_item() {
    let server = TestServer::start_with_access_and_dual(
        Settings {
            admin_group: ADMINS.into(),
            unknown: Some(Operations::all()),
            hide_existence: false,
            default_mode: AccessMode::User,
        },
        akm::ops::dual::DualControl::new(vec!["create".into(), "attributes".into()], 15),
    )
    .await;
    let mut admin = who(&server, "admin", ADMINS).await;
    let create = |n: &str| (op::CREATE, create_payload(V::V1_4, &aes_attrs(Some(n))));
    let v1_undo = |items: &[(u32, Vec<Ttlv>)]| with_option(request(V::V1_4, items), bec::UNDO);
    use akm::kmip::custody;
    use result_status::*;
    let alone = admin.send(&v1_undo(&[create("dc-1")])).await.unwrap();
    assert_eq!(statuses(&alone), [OPERATION_FAILED]);
    let mut alice = who(&server, "alice", ADMINS).await;
    alice
        .call(
            custody::OP_AUTHORIZE,
            vec![
                Ttlv::text(custody::TAG_AUTHORIZED_USER, "admin"),
                Ttlv::text(custody::TAG_GUARDED_OPERATION, "create"),
            ],
        )
        .await
        .unwrap();
    // Creates are approved, the attribute change is not: the whole batch is undone.
    let contact = Attr::new("Contact Information", Value::TextString("ops".into()));
    let mixed = admin
        .send(&v1_undo(&[
            create("dc-1"),
            create("dc-2"),
            (
                op::ADD_ATTRIBUTE,
                vec![akm::kmip::attributes::to_v1(&contact, None)],
            ),
        ]))
        .await
        .unwrap();
    assert_eq!(
        statuses(&mixed),
        [OPERATION_UNDONE, OPERATION_UNDONE, OPERATION_FAILED]
    );
    let failed = mixed.children_with(Tag::BATCH_ITEM).nth(2).unwrap();
    assert_eq!(
        failed.child(Tag::RESULT_REASON).and_then(Ttlv::as_enum),
        Some(rr::PERMISSION_DENIED)
    );
    for n in ["dc-1", "dc-2"] {
        let found = admin
            .call(op::LOCATE, filters(V::V2_1, &[Attr::new("Name", name(n))]))
            .await
            .unwrap();
        assert!(uids_of(&found).is_empty(), "{n} survived the undone batch");
    }
    // The window is still open: both Creates of one batch go through.
    let ok = admin
        .send(&v1_undo(&[create("dc-1"), create("dc-2")]))
        .await
        .unwrap();
    assert_eq!(statuses(&ok), [SUCCESS, SUCCESS]);
    server.stop().await;
}
