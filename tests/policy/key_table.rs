// The expected access decisions on a key, written out once by hand and checked at two
// levels: against `policy::decide` (src/policy/tests.rs) and over mutual TLS against the real
// server (tests/it/access.rs). Included with `include!`, so `op` and `AccessMode` are the
// includer's imports. The system tables both tests set up: group HR may do everything,
// Finance may read, group Old and user mallory are disabled, and callers named by no record
// may Get and Locate; the key is owned by alice in group HR.

/// Operations on a key, in the column order of [`KEY_TABLE`] (tests/it/access.rs sends Set
/// Attribute in KMIP 2.1, the others in 1.4).
const KEY_OPS: [u32; 13] = [
    op::LOCATE,
    op::CHECK,
    op::GET,
    op::GET_ATTRIBUTES,
    op::GET_ATTRIBUTE_LIST,
    op::ADD_ATTRIBUTE,
    op::MODIFY_ATTRIBUTE,
    op::DELETE_ATTRIBUTE,
    op::SET_ATTRIBUTE,
    op::OBTAIN_LEASE,
    op::ACTIVATE,
    op::REVOKE,
    op::DESTROY,
];

/// (identity, mode of a key owned by alice in group HR, Y/N per [`KEY_OPS`] column).
///                                     L Ck G GA GAL AA MA DA SA OL Ac Rv D
const KEY_TABLE: &[(&str, AccessMode, &str)] = &[
    ("alice", AccessMode::Any, "YYYYYYYYYYYYY"),
    ("alice", AccessMode::Group, "YYYYYYYYYYYYY"),
    ("alice", AccessMode::User, "YYYYYYYYYYYYY"),
    ("alice", AccessMode::UserAndGroup, "YYYYYYYYYYYYY"),
    ("sam", AccessMode::Any, "YYYYYYYYYYYYY"),
    ("sam", AccessMode::Group, "YYYYYYYYYYYYY"),
    ("sam", AccessMode::User, "NNNNNNNNNNNNN"),
    ("sam", AccessMode::UserAndGroup, "NNNNNNNNNNNNN"),
    ("bob", AccessMode::Any, "YYYYYNNNNNNNN"),
    ("bob", AccessMode::Group, "NNNNNNNNNNNNN"),
    ("bob", AccessMode::User, "NNNNNNNNNNNNN"),
    ("bob", AccessMode::UserAndGroup, "NNNNNNNNNNNNN"),
    ("admin", AccessMode::Any, "YYYYYYYYYYYYY"),
    ("admin", AccessMode::Group, "YYYYYYYYYYYYY"),
    ("admin", AccessMode::User, "YYYYYYYYYYYYY"),
    ("admin", AccessMode::UserAndGroup, "YYYYYYYYYYYYY"),
    ("nobody", AccessMode::Any, "YNYNNNNNNNNNN"),
    ("nobody", AccessMode::Group, "NNNNNNNNNNNNN"),
    ("nobody", AccessMode::User, "NNNNNNNNNNNNN"),
    ("nobody", AccessMode::UserAndGroup, "NNNNNNNNNNNNN"),
    ("mallory", AccessMode::Any, "NNNNNNNNNNNNN"),
    ("mallory", AccessMode::Group, "NNNNNNNNNNNNN"),
    ("mallory", AccessMode::User, "NNNNNNNNNNNNN"),
    ("mallory", AccessMode::UserAndGroup, "NNNNNNNNNNNNN"),
    ("olga", AccessMode::Any, "NNNNNNNNNNNNN"),
    ("olga", AccessMode::Group, "NNNNNNNNNNNNN"),
    ("olga", AccessMode::User, "NNNNNNNNNNNNN"),
    ("olga", AccessMode::UserAndGroup, "NNNNNNNNNNNNN"),
    ("hank", AccessMode::Any, "YYYYYYYYYYYYY"),
    ("hank", AccessMode::Group, "YYYYYYYYYYYYY"),
    ("hank", AccessMode::User, "NNNNNNNNNNNNN"),
    ("hank", AccessMode::UserAndGroup, "NNNNNNNNNNNNN"),
];
