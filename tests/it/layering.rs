//! The layering rule: no import cycle between akm's top-level modules (src/X.rs or src/X/).
//!
//! The checker reads every file under src/, collects the `crate::X` and `super::X` paths it
//! names outside comments and string literals (grouped `use crate::{a, b::c}` included), builds
//! the graph between top-level modules and reports each strongly connected component of more
//! than one module, with the edges inside it and where they come from. Unit tests
//! (`#[cfg(test)] mod` blocks and `tests.rs` files) are left out: a test may build a whole
//! server without making its module depend on the layers above. It needs nothing but the
//! source tree, so it also runs standalone: `rustc --test tests/it/layering.rs && ./layering`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// One reference from a file in module `from` to module `to`, at `file:line`.
#[derive(Debug, Clone)]
struct Edge {
    from: String,
    to: String,
    site: String,
}

/// Where the crate's sources are: the manifest directory under cargo, the working directory
/// when compiled standalone with rustc.
fn src_dir() -> PathBuf {
    let root = option_env!("CARGO_MANIFEST_DIR").unwrap_or(".");
    Path::new(root).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read src dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file relative to src/: `src/a/b.rs` and `src/a/b/mod.rs` are `[a, b]`;
/// `src/lib.rs` and `src/main.rs` are the crate roots (`[]`).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && !(parts.is_empty() && (stem == "lib" || stem == "main")) {
        parts.push(stem.to_string());
    }
    parts
}

/// The source with comments, string literals and char literals blanked out (newlines kept, so
/// line numbers still match).
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if (c == 'r' || c == 'b')
            && !prev_is_ident(&b, i)
            && raw_string_hashes(&b, i).is_some()
        {
            let (start, hashes) = raw_string_hashes(&b, i).expect("checked");
            i = start;
            loop {
                if i >= b.len() {
                    break;
                }
                if b[i] == '"' && (0..hashes).all(|k| b.get(i + 1 + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            i += 1;
        } else if c == '\'' && is_char_literal(&b, i) {
            i += 1;
            while i < b.len() && b[i] != '\'' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// At `r"`, `r#"`, `br"`, `br#"`: the index after the opening quote and the number of hashes.
fn raw_string_hashes(b: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if b[j] == 'b' {
        j += 1;
    }
    if b.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while b.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (b.get(j) == Some(&'"')).then_some((j + 1, hashes))
}

/// `'x'` or `'\n'` is a char literal; `'a` (a lifetime or label) is not.
fn is_char_literal(b: &[char], i: usize) -> bool {
    matches!(
        (b.get(i + 1), b.get(i + 2)),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn ident_at(code: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < code.len() && is_ident_char(code[i]) {
        i += 1;
    }
    (code[start..i].iter().collect(), i)
}

fn skip_ws(code: &[char], mut i: usize) -> usize {
    while i < code.len() && code[i].is_whitespace() {
        i += 1;
    }
    i
}

/// The first segments named after position `i` (just past `crate::`): one identifier, or each
/// top-level entry of a `{...}` group.
fn first_segments(code: &[char], i: usize) -> Vec<String> {
    let i = skip_ws(code, i);
    if code.get(i) != Some(&'{') {
        let (id, _) = ident_at(code, i);
        return vec![id];
    }
    let mut names = Vec::new();
    let mut depth = 0;
    let mut j = i;
    let mut expect_name = true;
    while j < code.len() {
        match code[j] {
            '{' => {
                depth += 1;
                j += 1;
                if depth == 1 {
                    expect_name = true;
                }
            }
            '}' => {
                depth -= 1;
                j += 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => {
                expect_name = true;
                j += 1;
            }
            c if depth == 1 && expect_name && is_ident_char(c) => {
                let (id, end) = ident_at(code, j);
                names.push(id);
                expect_name = false;
                j = end;
            }
            _ => j += 1,
        }
    }
    names
}

/// The code with each `#[cfg(test)] mod name { ... }` block blanked out: unit tests may use
/// higher layers (to build a server, say) without that being a dependency of the module.
fn without_test_modules(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out: Vec<char> = chars.clone();
    let mut from = 0;
    while let Some(at) = find(&chars, from, "#[cfg(test)]") {
        let mut j = skip_ws(&chars, at + "#[cfg(test)]".len());
        from = j;
        if !starts_with(&chars, j, "mod ") {
            continue;
        }
        while j < chars.len() && chars[j] != '{' && chars[j] != ';' {
            j += 1;
        }
        if chars.get(j) != Some(&'{') {
            continue;
        }
        let mut depth = 0;
        let mut k = j;
        while k < chars.len() {
            match chars[k] {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if chars[k] != '\n' {
                out[k] = ' ';
            }
            k += 1;
            if depth == 0 {
                break;
            }
        }
        from = k;
    }
    out.into_iter().collect()
}

fn find(chars: &[char], from: usize, pat: &str) -> Option<usize> {
    (from..chars.len()).find(|&i| starts_with(chars, i, pat))
}

/// Every top-level module a file refers to, with the line of each reference.
fn references(code: &str, module: &[String]) -> Vec<(String, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\n' {
            line += 1;
        }
        let at_word_start = i == 0 || !(is_ident_char(chars[i - 1]) || chars[i - 1] == ':');
        if at_word_start && starts_with(&chars, i, "crate::") {
            for name in first_segments(&chars, i + "crate::".len()) {
                found.push((name, line));
            }
            i += "crate::".len();
            continue;
        }
        if at_word_start && starts_with(&chars, i, "super::") {
            let mut depth = 0;
            let mut j = i;
            while starts_with(&chars, j, "super::") {
                depth += 1;
                j += "super::".len();
            }
            // `super` from a module at path [a, b] is [a]; a reference resolves to a top-level
            // module only when it climbs to the crate root.
            if depth >= module.len() {
                for name in first_segments(&chars, j) {
                    found.push((name, line));
                }
            }
            i = j;
            continue;
        }
        i += 1;
    }
    found
}

fn starts_with(chars: &[char], i: usize, pat: &str) -> bool {
    pat.chars()
        .enumerate()
        .all(|(k, p)| chars.get(i + k) == Some(&p))
}

/// All edges between distinct top-level modules of the library (main.rs, the binary, is left out).
fn edges() -> (BTreeSet<String>, Vec<Edge>) {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeSet::new();
    let mut edges = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).expect("under src");
        let module = module_path(rel);
        let Some(top) = module.first().cloned() else {
            continue;
        };
        modules.insert(top.clone());
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue; // a `#[cfg(test)] mod tests;` file
        }
        let text = fs::read_to_string(path).expect("read source");
        let code = without_test_modules(&code_only(&text));
        for (to, line) in references(&code, &module) {
            if to != top && !to.is_empty() {
                edges.push(Edge {
                    from: top.clone(),
                    to,
                    site: format!("src/{}:{line}", rel.display()),
                });
            }
        }
    }
    edges.retain(|e| modules.contains(&e.to));
    (modules, edges)
}

/// Tarjan's strongly connected components of more than one node.
fn cycles(modules: &BTreeSet<String>, edges: &[Edge]) -> Vec<Vec<String>> {
    let mut adj: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for m in modules {
        adj.entry(m).or_default();
    }
    for e in edges {
        adj.entry(&e.from).or_default().insert(&e.to);
    }
    struct T<'a> {
        adj: &'a BTreeMap<&'a str, BTreeSet<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        for &w in &t.adj[v] {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = Vec::new();
            loop {
                let w = t.stack.pop().expect("on stack");
                t.on.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                t.out.push(scc);
            }
        }
    }
    let mut t = T {
        adj: &adj,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for &v in adj.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// A readable account of each cycle: its modules, then every edge inside it with up to three
/// of the places it comes from.
fn describe(cycles: &[Vec<String>], edges: &[Edge]) -> String {
    let mut text = String::new();
    for scc in cycles {
        text.push_str(&format!("cycle: {}\n", scc.join(", ")));
        let mut inside: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for e in edges {
            if scc.contains(&e.from) && scc.contains(&e.to) {
                inside.entry((&e.from, &e.to)).or_default().push(&e.site);
            }
        }
        for ((from, to), sites) in inside {
            let shown: Vec<&str> = sites.iter().take(3).copied().collect();
            let more = sites.len().saturating_sub(3);
            let tail = if more > 0 {
                format!(" (+{more})")
            } else {
                String::new()
            };
            text.push_str(&format!("  {from} -> {to}: {}{tail}\n", shown.join(", ")));
        }
    }
    text
}

/// The layering rule: every top-level module depends only on modules that do not depend
/// back on it. The leaves (`clock`, `primitives`, ...) are the bottom, `config` just above
/// them; `app` (the composition root) sits under the daemon.
#[test]
fn top_level_modules_have_no_import_cycle() {
    let (modules, edges) = edges();
    assert!(
        modules.len() > 10,
        "found the modules under src/: {modules:?}"
    );
    let found = cycles(&modules, &edges);
    assert!(
        found.is_empty(),
        "import cycles between top-level modules:\n{}",
        describe(&found, &edges)
    );
}

/// `config` is plain data and its validation, importing only the leaves `clock` and
/// `primitives`, so every module may read it and the modules that own runtime types build them
/// from it.
#[test]
fn config_imports_no_other_module() {
    let (_, edges) = edges();
    // Leaves only: `clock` (the schedule's day rules) and `primitives` (the digest of the
    // parsed text, in the build's cryptographic library).
    let imports: Vec<String> = edges
        .iter()
        .filter(|e| {
            e.from == "config" && !["config", "clock", "primitives"].contains(&e.to.as_str())
        })
        .map(|e| format!("{} ({})", e.to, e.site))
        .collect();
    assert!(imports.is_empty(), "config imports: {imports:?}");
}

/// `src/app/` is the only place the server's context is assembled: no other file builds an
/// `ops::Ctx` with a struct literal (the daemon and the tests go through `app::CtxBuilder`).
#[test]
fn only_the_composition_root_builds_the_context() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut builders = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).expect("under src");
        let code = code_only(&fs::read_to_string(path).expect("read source"));
        let chars: Vec<char> = code.chars().collect();
        let mut from = 0;
        while let Some(at) = find(&chars, from, "Ctx {") {
            from = at + 1;
            let before: String = chars[at.saturating_sub(12)..at].iter().collect();
            let declares = ["struct ", "impl "].iter().any(|k| before.ends_with(k));
            let whole_word = at == 0 || !is_ident_char(chars[at - 1]);
            if whole_word && !declares && !rel.starts_with("app") {
                builders.push(rel.display().to_string());
            }
        }
    }
    assert!(
        builders.is_empty(),
        "ops::Ctx built outside src/app/: {builders:?}"
    );
}

/// `ops` sits below the listeners, mirroring, backups, the composition root and the command
/// line: the Backup operation reaches backups only through the `ops::BackupRunner` port that
/// `app` fills, so no `ops` file names a module of those layers.
#[test]
fn ops_uses_no_layer_above_it() {
    let above = [
        "server",
        "certexpiry",
        "mirror",
        "revocations",
        "status",
        "backup",
        "app",
        "reload",
        "daemon",
        "cli",
    ];
    let (_, edges) = edges();
    let upward: Vec<String> = edges
        .iter()
        .filter(|e| e.from == "ops" && above.contains(&e.to.as_str()))
        .map(|e| format!("ops -> {}: {}", e.to, e.site))
        .collect();
    assert!(
        upward.is_empty(),
        "ops imports a layer above it:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_super_paths() {
    let code = code_only(
        "use crate::{audit::x, store, kmip::{a, b}};\n// crate::ops::Ctx\nlet s = \"crate::cli\";\nuse super::super::mirror::M;\n",
    );
    let refs: Vec<String> = references(&code, &["server".into(), "conn".into()])
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(refs, ["audit", "store", "kmip", "mirror"]);
}

#[test]
fn the_checker_reports_a_cycle_and_its_edges() {
    let edge = |from: &str, to: &str| Edge {
        from: from.into(),
        to: to.into(),
        site: format!("src/{from}.rs:1"),
    };
    let modules: BTreeSet<String> = ["a", "b", "c"].iter().map(|m| m.to_string()).collect();
    let edges = vec![edge("a", "b"), edge("b", "a"), edge("c", "a")];
    let found = cycles(&modules, &edges);
    assert_eq!(found, vec![vec!["a".to_string(), "b".to_string()]]);
    let text = describe(&found, &edges);
    assert!(text.contains("a -> b: src/a.rs:1") && text.contains("b -> a: src/b.rs:1"));
    assert!(!text.contains("c ->"), "{text}");
    assert!(cycles(&modules, &edges[..1]).is_empty());
}

/// Prints each top-level module's imports (`module: a, b, c`), for the module map in
/// docs/src/architecture.md: `cargo test --test it print_module_map -- --ignored --nocapture`.
/// Each top-level module with the modules it uses (its `uses` column: "nothing" for a leaf).
fn module_map() -> BTreeMap<String, String> {
    let (modules, edges) = edges();
    modules
        .iter()
        .map(|m| {
            let uses: BTreeSet<&str> = edges
                .iter()
                .filter(|e| &e.from == m)
                .map(|e| e.to.as_str())
                .collect();
            let uses = if uses.is_empty() {
                "nothing".to_string()
            } else {
                uses.into_iter().collect::<Vec<_>>().join(", ")
            };
            (m.clone(), uses)
        })
        .collect()
}

/// The module table of the book's architecture page: module → its `uses` column.
fn documented_module_map() -> BTreeMap<String, String> {
    let page = src_dir().join("../docs/src/architecture.md");
    let text = fs::read_to_string(&page).expect("docs/src/architecture.md");
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
            let module = cells.first()?.trim().strip_prefix('`')?.strip_suffix('`')?;
            let uses = cells.get(3)?.trim();
            Some((module.to_string(), uses.to_string()))
        })
        .collect()
}

#[test]
fn the_architecture_page_shows_the_real_module_map() {
    let real = module_map();
    let documented = documented_module_map();
    let mut wrong = Vec::new();
    for (module, uses) in &real {
        match documented.get(module) {
            None => wrong.push(format!("`{module}` has no row (uses: {uses})")),
            Some(d) if d != uses => {
                wrong.push(format!("`{module}` uses {uses}, the page says {d}"))
            }
            Some(_) => {}
        }
    }
    for module in documented.keys().filter(|m| !real.contains_key(*m)) {
        wrong.push(format!("`{module}` has a row but no module"));
    }
    assert!(
        wrong.is_empty(),
        "docs/src/architecture.md's module table is stale (print the map with \
         `cargo test --test it print_module_map -- --ignored --nocapture`):\n{}",
        wrong.join("\n")
    );
}

#[test]
#[ignore = "on demand: prints the module map's `uses` column"]
fn print_module_map() {
    for (module, uses) in module_map() {
        println!("{module}: {uses}");
    }
}
