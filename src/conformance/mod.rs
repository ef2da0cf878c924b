//! Conformance against the OASIS KMIP XML test cases: the XML reader ([`xml`]), the one table
//! of comparison rules ([`compare`]), the replay of a file against a running server
//! ([`replay`]), and here the reporting around them: per-file result lines, the profile group
//! of a file, the allow-list format and the pass-count table the README shows.
//! `akm conformance replay` and the integration tests both use it; the server does not.

pub mod compare;
pub mod replay;
pub mod xml;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One replayed file.
#[derive(Debug)]
pub struct FileReport {
    /// The file as given.
    pub path: PathBuf,
    /// How it went.
    pub outcome: replay::Outcome,
}

impl FileReport {
    /// The file name (`SKLC-M-1-21.xml`).
    pub fn name(&self) -> String {
        file_name(&self.path)
    }

    /// `PASS name (n steps)` or `FAIL name: step k` followed by indented difference lines.
    pub fn render(&self) -> String {
        match &self.outcome {
            Ok(steps) => format!("PASS {} ({steps} steps)", self.name()),
            Err(failure) => {
                let mut out = match failure.step {
                    Some(step) => format!("FAIL {}: step {step}", self.name()),
                    None => format!("FAIL {}", self.name()),
                };
                for line in &failure.details {
                    let _ = write!(out, "\n    {line}");
                }
                out
            }
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// The profile group of a test-case file name: `SKLC` for `SKLC-M-1-21.xml`, `CS-BC` for
/// `CS-BC-M-GCM-1-14.xml` (everything before the `-M-`/`-O-` marker).
pub fn profile_group(name: &str) -> String {
    for marker in ["-M-", "-O-"] {
        if let Some(at) = name.find(marker) {
            return name[..at].to_owned();
        }
    }
    name.trim_end_matches(".xml").to_owned()
}

/// The suite of a vectors path: `2.1/mandatory` for `.../2.1/mandatory/X.xml`, else the
/// version from the file name suffix (`-14`, `-21`) and M/O marker.
pub fn suite_of(path: &Path) -> String {
    let mut parents = path.ancestors().skip(1).filter_map(|p| p.file_name());
    let kind = parents.next().map(|n| n.to_string_lossy().into_owned());
    let version = parents.next().map(|n| n.to_string_lossy().into_owned());
    match (version, kind) {
        (Some(v), Some(k)) if xml::SUITES.contains(&format!("{v}/{k}").as_str()) => {
            format!("{v}/{k}")
        }
        _ => {
            let name = file_name(path);
            let stem = name.trim_end_matches(".xml");
            let version = match stem.rsplit('-').next() {
                Some("14") => "1.4",
                Some("21") => "2.1",
                _ => "?",
            };
            let kind = if name.contains("-M-") {
                "mandatory"
            } else {
                "optional"
            };
            format!("{version}/{kind}")
        }
    }
}

/// A sort key that orders test cases by their numbers (`SKFF-M-2` before `SKFF-M-10`): the
/// text split into runs of digits (compared as numbers) and other text.
pub fn case_order(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits > 0 {
            key.push((String::new(), rest[..digits].parse().unwrap_or(u64::MAX)));
            rest = &rest[digits..];
        } else {
            let text = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            key.push((rest[..text].to_owned(), 0));
            rest = &rest[text..];
        }
    }
    key
}

/// Reads an allow-list: one path relative to the vectors directory per line; `#` starts a
/// comment, blank lines are skipped.
pub fn parse_allow_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The final line: `N passed, M failed`.
pub fn totals(reports: &[FileReport]) -> String {
    let passed = reports.iter().filter(|r| r.outcome.is_ok()).count();
    format!("{passed} passed, {} failed", reports.len() - passed)
}

/// A Markdown table of pass counts per profile group, one column per suite
/// (`1.4/mandatory`...), each cell `passed/files`; a `-` where the suite has no such file.
pub fn pass_table(reports: &[FileReport]) -> String {
    let mut cells: BTreeMap<String, BTreeMap<String, (usize, usize)>> = BTreeMap::new();
    for r in reports {
        let cell = cells
            .entry(profile_group(&r.name()))
            .or_default()
            .entry(suite_of(&r.path))
            .or_default();
        cell.1 += 1;
        if r.outcome.is_ok() {
            cell.0 += 1;
        }
    }
    let mut out = String::from("| group |");
    let mut rule = String::from("|---|");
    for suite in xml::SUITES {
        let _ = write!(out, " {suite} |");
        rule.push_str("---|");
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    let mut total = vec![(0, 0); xml::SUITES.len()];
    for (group, suites) in &cells {
        let _ = write!(out, "| {group} |");
        for (i, suite) in xml::SUITES.iter().enumerate() {
            match suites.get(*suite) {
                Some((p, n)) => {
                    let _ = write!(out, " {p}/{n} |");
                    total[i].0 += p;
                    total[i].1 += n;
                }
                None => out.push_str(" - |"),
            }
        }
        out.push('\n');
    }
    out.push_str("| **all** |");
    for (p, n) in total {
        let _ = write!(out, " **{p}/{n}** |");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_suites_from_names() {
        assert_eq!(profile_group("SKLC-M-1-21.xml"), "SKLC");
        assert_eq!(profile_group("CS-BC-M-GCM-1-14.xml"), "CS-BC");
        assert_eq!(profile_group("SUITEB_128-O-1-14.xml"), "SUITEB_128");
        assert_eq!(profile_group("odd.xml"), "odd");
        let p = Path::new("/v/2.1/mandatory/BL-M-1-21.xml");
        assert_eq!(suite_of(p), "2.1/mandatory");
        assert_eq!(suite_of(Path::new("x/TL-O-2-14.xml")), "1.4/optional");
    }

    #[test]
    fn cases_sort_by_number() {
        let mut names = ["SKFF-M-10-14.xml", "SKFF-M-2-14.xml", "SKFF-M-1-14.xml"];
        names.sort_by_key(|n| case_order(n));
        assert_eq!(
            names,
            ["SKFF-M-1-14.xml", "SKFF-M-2-14.xml", "SKFF-M-10-14.xml"]
        );
    }

    #[test]
    fn allow_list_skips_comments_and_blanks() {
        let text = "# header\n\n1.4/mandatory/A-M-1-14.xml  # why\n  2.1/optional/B.xml\n";
        assert_eq!(
            parse_allow_list(text),
            ["1.4/mandatory/A-M-1-14.xml", "2.1/optional/B.xml"]
        );
    }

    #[test]
    fn table_counts_per_group_and_suite() {
        let ok = |p: &str| FileReport {
            path: PathBuf::from(p),
            outcome: Ok(1),
        };
        let bad = |p: &str| FileReport {
            path: PathBuf::from(p),
            outcome: Err(replay::Failure {
                step: Some(2),
                details: vec!["X: expected 1, got 2".into()],
            }),
        };
        let reports = [
            ok("v/1.4/mandatory/TL-M-1-14.xml"),
            bad("v/1.4/mandatory/TL-M-2-14.xml"),
            ok("v/2.1/optional/TL-O-1-21.xml"),
        ];
        let table = pass_table(&reports);
        assert!(table.contains("| TL | 1/2 | - | - | 1/1 |"), "{table}");
        assert!(table.contains("| **all** | **1/2** | **0/0** | **0/0** | **1/1** |"));
        assert_eq!(totals(&reports), "2 passed, 1 failed");
        assert_eq!(
            reports[1].render(),
            "FAIL TL-M-2-14.xml: step 2\n    X: expected 1, got 2"
        );
    }
}
