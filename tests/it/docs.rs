//! The documentation stays true to the code: the committed man pages and shell completions
//! (`deploy/man`, `deploy/completions`, which the Debian package installs) are exactly what
//! `akm generate-docs` makes from the CLI definition; the man page lists every subcommand;
//! the book's configuration reference lists every key of the commented example
//! `config/akm.toml` and no key the example lacks, every key of the config types and the
//! default the types give it; the README stays a front page.

use akm::cli::Cli;
use clap::CommandFactory;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The file names in a directory, sorted.
fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The top-level subcommands a user sees (`help` is clap's own).
fn visible_subcommands() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| s.get_name().to_owned())
        .collect()
}

#[test]
fn committed_man_pages_and_completions_are_current() {
    let fresh = tempfile::tempdir().unwrap();
    akm::cli::docs::generate(fresh.path()).unwrap();
    let regenerate = "regenerate them: cargo run -- generate-docs --out deploy";
    for part in ["man", "completions"] {
        let (made, committed) = (fresh.path().join(part), repo("deploy").join(part));
        assert_eq!(
            names_in(&made),
            names_in(&committed),
            "deploy/{part} differs from what the CLI generates; {regenerate}"
        );
        for name in names_in(&made) {
            assert!(
                read(&made.join(&name)) == read(&committed.join(&name)),
                "deploy/{part}/{name} is stale; {regenerate}"
            );
        }
    }
}

#[test]
fn man_page_and_completions_name_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    akm::cli::docs::generate(dir.path()).unwrap();
    let subcommands = visible_subcommands();
    for expected in [
        "serve", "init", "key", "backup", "restore", "mirror", "reload",
    ] {
        assert!(subcommands.iter().any(|s| s == expected), "no {expected}");
    }
    let page = read(&dir.path().join("man/akm.1"));
    let bash = read(&dir.path().join("completions/akm"));
    let fish = read(&dir.path().join("completions/akm.fish"));
    for sub in &subcommands {
        // roff escapes the hyphen: the SUBCOMMANDS section lists `akm\-key(1)`.
        let reference = format!("akm\\-{}(1)", sub.replace('-', "\\-"));
        assert!(page.contains(&reference), "akm.1 lacks {reference}");
        assert!(
            dir.path().join(format!("man/akm-{sub}.1")).exists(),
            "no akm-{sub}.1"
        );
        assert!(bash.contains(sub.as_str()), "bash completion lacks {sub}");
        assert!(fish.contains(sub.as_str()), "fish completion lacks {sub}");
    }
}

/// Keys of the example config, commented out or not, as `section.key`. A line is a key when,
/// without its leading `#`, it parses as TOML (so prose that happens to hold `=` is not);
/// `[access.users.X]` and `[access.groups.X]` records become `access.users.NAME` and
/// `access.groups.NAME`, as the reference writes them.
fn example_config_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim_start_matches('#').trim();
        if line.is_empty() || line.parse::<toml::Table>().is_err() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            section = header.trim_matches(|c| c == '[' || c == ']').to_owned();
            continue;
        }
        let key = line.split('=').next().unwrap().trim();
        keys.insert(match section.split('.').collect::<Vec<_>>()[..] {
            ["access", table @ ("users" | "groups"), _] => format!("access.{table}.NAME"),
            _ => format!("{section}.{key}"),
        });
    }
    keys
}

/// Keys in the first column of the reference's tables. A cell lists one or more keys in
/// backticks: `a.b`, then siblings by their last part alone (`a.b`, `c` is `a.b` and `a.c`);
/// `[[a.b]]` names an array of tables whose keys follow; `mirror.peers[].x` is `mirror.peers.x`.
fn reference_table_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split('|').nth(1).unwrap();
        let mut prefix = String::new();
        for token in cell.split('`').skip(1).step_by(2) {
            let token = token.replace("[]", "");
            if let Some(table) = token.strip_prefix("[[") {
                prefix = table.trim_end_matches(']').to_owned();
            } else if let Some((parent, _)) = token.rsplit_once('.') {
                prefix = parent.to_owned();
                keys.insert(token.clone());
            } else {
                keys.insert(format!("{prefix}.{token}"));
            }
        }
    }
    keys
}

#[test]
fn configuration_reference_matches_the_example_config() {
    let example = example_config_keys(&read(&repo("config/akm.toml")));
    let reference = reference_table_keys(&read(&repo("docs/src/configuration.md")));
    assert!(example.len() > 80, "parsed too few keys: {example:?}");
    let undocumented: Vec<_> = example.difference(&reference).collect();
    assert!(
        undocumented.is_empty(),
        "keys in config/akm.toml missing from docs/src/configuration.md: {undocumented:?}"
    );
    let not_in_example: Vec<_> = reference.difference(&example).collect();
    assert!(
        not_in_example.is_empty(),
        "keys in docs/src/configuration.md missing from config/akm.toml (add them there, \
         commented out): {not_in_example:?}"
    );
}

/// The reference's rows: each key of the first column (as [`reference_table_keys`] reads
/// them) with the row's default cell.
fn reference_defaults(text: &str) -> BTreeMap<String, String> {
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let default = line.split('|').nth(2).unwrap().trim().to_owned();
        for key in reference_table_keys(line) {
            rows.insert(key, default.clone());
        }
    }
    rows
}

/// A configuration holding one of each array of tables and optional table, setting only
/// what they require, so their keys (and the defaults of the rest) show when serialized.
const SAMPLE_TABLES: &str = "[backup.sftp]\ndestination = \"u@h:/d\"\nidentity = \"id\"\n\
    known_hosts = \"kh\"\n[[log.remote]]\ntransport = \"udp\"\naddress = \"h:514\"\n\
    [[audit.sinks]]\ntransport = \"udp\"\naddress = \"h:514\"\n\
    [mirror]\nnode_id = \"a\"\nlisten = \"127.0.0.1:5697\"\n\
    [[mirror.peers]]\nnode_id = \"b\"\naddress = \"h:1\"\n\
    fingerprint = \"abababababababababababababababababababababababababababababababab\"\n\
    [access.users.x]\n[access.groups.y]\n";

/// The keys a sample sets itself: their values are not defaults.
const SAMPLE_SET: &[&str] = &[
    "backup.sftp.destination",
    "backup.sftp.identity",
    "backup.sftp.known_hosts",
    "log.remote.transport",
    "log.remote.address",
    "audit.sinks.transport",
    "audit.sinks.address",
    "mirror.node_id",
    "mirror.listen",
    "mirror.peers.node_id",
    "mirror.peers.address",
    "mirror.peers.fingerprint",
];

/// Every key of the config types, dotted as the reference writes them, with its default
/// when the types give one (`None`: no value, or one the reference describes in words).
/// `Config::default()` gives the top-level sections' defaults; the sample the keys and
/// defaults inside arrays of tables and optional tables (paths there are resolved against
/// the file, so they are left to the words).
fn type_keys() -> BTreeMap<String, Option<serde_json::Value>> {
    let mut keys = BTreeMap::new();
    let defaults = serde_json::to_value(akm::config::Config::default()).unwrap();
    flatten(&defaults, "", &mut keys);
    let sample = akm::config::Config::parse(SAMPLE_TABLES, Path::new("/etc/akm/akm.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut from_sample = BTreeMap::new();
    flatten(&serde_json::to_value(sample).unwrap(), "", &mut from_sample);
    for (key, value) in from_sample {
        let value = value.filter(|v| {
            !SAMPLE_SET.contains(&key.as_str()) && !v.as_str().is_some_and(|s| s.contains('/'))
        });
        let entry = keys.entry(key).or_insert(None);
        if entry.is_none() {
            *entry = value;
        }
    }
    // An optional table absent by default (`mirror`, `backup.sftp`) is its keys.
    let tables: Vec<String> = keys
        .keys()
        .filter(|k| keys.keys().any(|other| other.starts_with(&format!("{k}."))))
        .cloned()
        .collect();
    keys.retain(|k, _| !tables.contains(k));
    keys
}

/// Adds the leaf keys of `value` under `prefix`: tables are walked, an array of tables by
/// its first table, `access.users` and `access.groups` stand as `access.users.NAME`.
fn flatten(
    value: &serde_json::Value,
    prefix: &str,
    out: &mut BTreeMap<String, Option<serde_json::Value>>,
) {
    use serde_json::Value;
    if matches!(prefix, "access.users" | "access.groups") {
        out.insert(format!("{prefix}.NAME"), None);
        return;
    }
    match value {
        Value::Object(map) => {
            for (name, v) in map {
                let key = match prefix {
                    "" => name.clone(),
                    _ => format!("{prefix}.{name}"),
                };
                flatten(v, &key, out);
            }
        }
        Value::Array(items) if items.first().is_some_and(Value::is_object) => {
            flatten(&items[0], prefix, out);
        }
        Value::Array(items) if items.is_empty() && ARRAYS_OF_TABLES.contains(&prefix) => {}
        Value::Null => {
            out.insert(prefix.to_owned(), None);
        }
        other => {
            out.insert(prefix.to_owned(), Some(other.clone()));
        }
    }
}

/// The arrays of tables (empty by default: their keys come from the sample).
const ARRAYS_OF_TABLES: &[&str] = &["log.remote", "audit.sinks", "mirror.peers"];

/// The default a reference cell states first: the text of its first code span, or its
/// first word, without quotes (`"every-record"` and `every-record` are the same).
fn stated_default(cell: &str) -> String {
    let first = match cell.strip_prefix('`') {
        Some(rest) => rest.split('`').next().unwrap_or(""),
        None => cell
            .split(|c: char| c.is_whitespace() || c == ',' || c == '(')
            .next()
            .unwrap_or(""),
    };
    first.replace(['"', ' '], "")
}

/// A default value as the reference writes it.
fn written(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string().replace(['"', ' '], ""),
    }
}

/// The reference documents every key of the config types and no other, and the default it
/// states for each is the default the types give (`Config::default()` and the serde
/// defaults): the defaults are written once, in the types, and the book is checked against
/// them.
#[test]
fn configuration_reference_states_every_key_and_its_default_from_the_types() {
    let reference = reference_defaults(&read(&repo("docs/src/configuration.md")));
    let types = type_keys();
    assert!(types.len() > 100, "found too few keys: {types:?}");
    let undocumented: Vec<_> = types
        .keys()
        .filter(|k| !reference.contains_key(*k))
        .collect();
    assert!(
        undocumented.is_empty(),
        "keys of the config types missing from docs/src/configuration.md: {undocumented:?}"
    );
    let unknown: Vec<_> = reference
        .keys()
        .filter(|k| !types.contains_key(*k))
        .collect();
    assert!(
        unknown.is_empty(),
        "keys in docs/src/configuration.md that the config does not have: {unknown:?}"
    );
    let wrong: Vec<String> = types
        .iter()
        .filter_map(|(key, value)| Some((key, written(value.as_ref()?))))
        .filter(|(key, value)| stated_default(&reference[*key]) != *value)
        .map(|(key, value)| {
            format!(
                "{key}: the types say {value}, the book {:?}",
                reference[key]
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "defaults in docs/src/configuration.md that differ from the types:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn stated_defaults_read_the_first_value_of_a_cell() {
    assert_eq!(stated_default("`\"every-record\"`"), "every-record");
    assert_eq!(stated_default("0 (none)"), "0");
    assert_eq!(stated_default("`[\"all\"]`"), "[all]");
    assert_eq!(written(&serde_json::json!(["all"])), "[all]");
    assert_eq!(written(&serde_json::json!(10000)), "10000");
}

#[test]
fn example_key_parser_skips_prose_and_reads_commented_keys() {
    let keys = example_config_keys(
        "[server]\nlisten = \"x\"\n# max_depth = 64\n# separate_duties = true keeps admins out\n\
         # [[mirror.peers]]\n# cn = \"b\"\n# [access.users.mallory]\n# enabled = false\n",
    );
    let expected: BTreeSet<String> = [
        "server.listen",
        "server.max_depth",
        "mirror.peers.cn",
        "access.users.NAME",
    ]
    .map(String::from)
    .into();
    assert_eq!(keys, expected);
}

#[test]
fn readme_is_a_front_page() {
    let lines = read(&repo("README.md")).lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; move depth into docs/src"
    );
}
