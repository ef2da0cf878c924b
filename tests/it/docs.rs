//! The documentation stays true to the code: the committed man pages and shell completions
//! (`deploy/man`, `deploy/completions`, which the Debian package installs) are exactly what
//! `akm generate-docs` makes from the CLI definition; the man page lists every subcommand;
//! the book's configuration reference lists every key of the commented example
//! `config/akm.toml` and no key the example lacks; the README stays a front page.

use akm::cli::Cli;
use clap::CommandFactory;
use std::collections::BTreeSet;
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
