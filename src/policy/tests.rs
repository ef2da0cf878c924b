//! The policy table: every identity × access mode × operation, written out by hand, against
//! [`decide`].

use super::*;
use crate::kmip::enums::operation as op;

fn principal(cn: &str, ous: &[&str]) -> Principal {
    Principal {
        cn: cn.into(),
        ous: ous.iter().map(|s| s.to_string()).collect(),
        serial: "01".into(),
        fingerprint: "00".into(),
        subject: format!("CN={cn}"),
    }
}

fn account(enabled: bool, ops: &[&str]) -> Account {
    Account {
        enabled,
        operations: Operations::parse(ops).unwrap(),
    }
}

/// The system tables of the table test: HR may do everything, Finance may read, the group
/// Old is disabled, the user mallory is disabled, and callers named by no record may Get
/// and Locate.
fn accounts_of(who: &Principal) -> Accounts {
    let user = match who.cn.as_str() {
        "mallory" => Some(account(false, &["all"])),
        _ => None,
    };
    let groups = who
        .ous
        .iter()
        .filter_map(|g| {
            let a = match g.as_str() {
                "HR" => account(true, &["all"]),
                "Finance" => account(true, &["read"]),
                "Old" => account(false, &["all"]),
                _ => return None,
            };
            Some((g.clone(), a))
        })
        .collect();
    Accounts { user, groups }
}

fn settings() -> Settings {
    Settings {
        admin_group: "akm-admins".into(),
        unknown: Some(Operations::parse(&["get", "locate"]).unwrap()),
        hide_existence: false,
        default_mode: AccessMode::User,
    }
}

/// The identities: name, OUs.
const IDENTITIES: &[(&str, &[&str])] = &[
    ("alice", &["HR"]),
    ("sam", &["HR"]),
    ("bob", &["Finance"]),
    ("admin", &["akm-admins"]),
    ("nobody", &[]),
    ("mallory", &["HR"]),
    ("olga", &["Old"]),
    // In HR through a second OU; a disabled first OU does not hide it.
    ("hank", &["Old", "HR"]),
];

include!("../../tests/policy/key_table.rs");

/// Operations that name no key, in the column order of [`NO_KEY_TABLE`]; the last is an
/// akm administration operation.
const NO_KEY_OPS: [u32; 8] = [
    op::CREATE,
    op::REGISTER,
    op::LOCATE,
    op::QUERY,
    op::DISCOVER_VERSIONS,
    op::INTEROP,
    op::LOG,
    EXTENSION_OPERATIONS + 1,
];

///                                    C R L Q DV I Lg admin
const NO_KEY_TABLE: &[(&str, &str)] = &[
    ("alice", "YYYYYYYN"),
    ("sam", "YYYYYYYN"),
    ("bob", "NNYYYYNN"),
    ("admin", "YYYYYYYY"),
    ("nobody", "NNYYYYNN"),
    ("mallory", "NNNNNNNN"),
    ("olga", "NNNYYYNN"),
    ("hank", "YYYYYYYN"),
];

fn identity(name: &str) -> Principal {
    let (cn, ous) = IDENTITIES.iter().find(|(n, _)| *n == name).unwrap();
    principal(cn, ous)
}

fn check(row: &str, expected: &str, ops: &[u32], key: Option<&KeyPolicy>) {
    let who = identity(row);
    let accounts = accounts_of(&who);
    assert_eq!(expected.len(), ops.len(), "row {row}");
    for (operation, want) in ops.iter().zip(expected.chars()) {
        let d = decide(&who, &accounts, &settings(), key, *operation);
        assert_eq!(
            d.allowed,
            want == 'Y',
            "{row} op 0x{operation:X} on {key:?}: {d:?}"
        );
    }
}

#[test]
fn key_table() {
    // Every identity with every mode is in the table.
    for (name, _) in IDENTITIES {
        for mode in AccessMode::ALL {
            let n = KEY_TABLE
                .iter()
                .filter(|(w, m, _)| w == name && *m == mode)
                .count();
            assert_eq!(n, 1, "{name} {mode}");
        }
    }
    for (who, mode, expected) in KEY_TABLE {
        let key = KeyPolicy {
            owner: "alice".into(),
            group: Some("HR".into()),
            mode: *mode,
        };
        check(who, expected, &KEY_OPS, Some(&key));
    }
}

#[test]
fn no_key_table() {
    assert_eq!(NO_KEY_TABLE.len(), IDENTITIES.len());
    for (who, expected) in NO_KEY_TABLE {
        check(who, expected, &NO_KEY_OPS, None);
    }
}

#[test]
fn reasons_say_why() {
    let key = KeyPolicy {
        owner: "alice".into(),
        group: Some("HR".into()),
        mode: AccessMode::Group,
    };
    let reason = |name: &str, k: Option<&KeyPolicy>, o: u32| {
        let who = identity(name);
        decide(&who, &accounts_of(&who), &settings(), k, o).reason
    };
    assert_eq!(
        reason("admin", Some(&key), op::DESTROY),
        Reason::Administrator
    );
    assert_eq!(
        reason("sam", Some(&key), op::GET),
        Reason::AccessMode(AccessMode::Group)
    );
    assert_eq!(
        reason("bob", Some(&key), op::GET),
        Reason::NotPermittedByKey(AccessMode::Group)
    );
    assert_eq!(
        reason("bob", Some(&key), op::DESTROY),
        Reason::OperationNotGranted
    );
    assert_eq!(reason("mallory", None, op::QUERY), Reason::UserDisabled);
    assert_eq!(
        reason("alice", None, EXTENSION_OPERATIONS + 3),
        Reason::AdminOnly
    );
    assert_eq!(reason("alice", None, op::CREATE), Reason::Granted);
    assert_eq!(reason("alice", None, op::QUERY), Reason::Informational);
}

#[test]
fn unknown_callers_follow_the_setting() {
    let who = principal("stranger", &["Nowhere"]);
    let accounts = Accounts::default();
    let mut s = settings();
    s.unknown = None;
    let d = decide(&who, &accounts, &s, None, op::LOCATE);
    assert_eq!(d, Decision::deny(Reason::UnknownPrincipal));
    assert!(decide(&who, &accounts, &s, None, op::QUERY).allowed);
    s.unknown = Some(Operations::all());
    assert!(decide(&who, &accounts, &s, None, op::CREATE).allowed);
}

#[test]
fn a_group_mode_key_without_a_group_admits_nobody_but_admins() {
    let key = KeyPolicy {
        owner: "alice".into(),
        group: None,
        mode: AccessMode::Group,
    };
    for (name, _) in IDENTITIES {
        let who = identity(name);
        let d = decide(&who, &accounts_of(&who), &settings(), Some(&key), op::GET);
        assert_eq!(d.allowed, *name == "admin", "{name}");
    }
}

#[test]
fn a_disabled_admin_group_makes_no_administrators() {
    let who = principal("admin", &["akm-admins"]);
    let accounts = Accounts {
        user: None,
        groups: vec![("akm-admins".into(), account(false, &[]))],
    };
    assert!(!is_admin(&who, &accounts, &settings()));
    let d = decide(&who, &accounts, &settings(), None, EXTENSION_OPERATIONS + 1);
    assert_eq!(d.reason, Reason::AdminOnly);
}

#[test]
fn case_matters_in_names() {
    let key = KeyPolicy {
        owner: "alice".into(),
        group: Some("HR".into()),
        mode: AccessMode::UserAndGroup,
    };
    let who = principal("Alice", &["hr"]);
    let d = decide(&who, &Accounts::default(), &settings(), Some(&key), op::GET);
    assert!(!d.allowed);
}

#[test]
fn operation_lists_parse_and_print() {
    let ops = Operations::parse(&["read", "destroy"]).unwrap();
    assert_eq!(
        ops.names(),
        [
            "locate",
            "check",
            "get",
            "get-attributes",
            "get-attribute-list",
            "destroy"
        ]
    );
    assert_eq!(Operations::parse_list(&ops.to_list()).unwrap(), ops);
    assert_eq!(Operations::parse(&["get", "fly"]).unwrap_err(), "fly");
    assert_eq!(Operations::parse_list("").unwrap(), Operations::none());
    assert_eq!(Operations::parse(&["all"]).unwrap(), Operations::all());
    for mode in AccessMode::ALL {
        assert_eq!(AccessMode::parse(mode.as_str()), Some(mode));
    }
    assert_eq!(AccessMode::parse("everyone"), None);
}
