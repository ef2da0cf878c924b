//! Seeds the fuzz corpora from the OASIS KMIP XML test cases: every request (and, for the
//! TTLV decoder, every response) of every test case becomes one binary TTLV file under
//! `fuzz/corpus/<target>/`. The shared vectors are read at run time and never committed.
//!
//! Usage (from the repository root): `cargo run --manifest-path fuzz/Cargo.toml --bin
//! seed_corpus [VECTORS_DIR] [CORPUS_DIR]`; defaults `../shared/kmip/vectors` (or
//! `$AKM_KMIP_VECTORS`) and `fuzz/corpus`.

use akm::conformance::xml::{vector_files, FixedResolver, Side, TestCase};
use std::path::PathBuf;
use std::process::ExitCode;

/// The targets whose input is a request message.
const REQUEST_TARGETS: [&str; 3] = ["ttlv_decode", "kmip_parse", "dispatch"];

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let vectors = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("AKM_KMIP_VECTORS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("../shared/kmip/vectors"))
    });
    let corpus = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("fuzz/corpus"));
    let files = match vector_files(&vectors) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("seed_corpus: no OASIS vectors ({e}); nothing seeded");
            return ExitCode::SUCCESS;
        }
    };
    for target in REQUEST_TARGETS {
        if let Err(e) = std::fs::create_dir_all(corpus.join(target)) {
            eprintln!("seed_corpus: {}: {e}", corpus.join(target).display());
            return ExitCode::FAILURE;
        }
    }
    let (mut written, mut skipped) = (0usize, 0usize);
    for path in files {
        let case = match TestCase::load(&path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("seed_corpus: skipping {e}");
                skipped += 1;
                continue;
            }
        };
        let stem = case.file.trim_end_matches(".xml").to_owned();
        for i in 0..case.exchanges.len() {
            for side in [Side::Request, Side::Response] {
                let Ok(msg) = case.message(i, side, &mut FixedResolver::default()) else {
                    skipped += 1;
                    continue;
                };
                let bytes = msg.encode();
                let targets: &[&str] = match side {
                    Side::Request => &REQUEST_TARGETS,
                    Side::Response => &REQUEST_TARGETS[..1],
                };
                for target in targets {
                    let file = corpus
                        .join(target)
                        .join(format!("{stem}-{i}-{side:?}.ttlv"));
                    if let Err(e) = std::fs::write(&file, &bytes) {
                        eprintln!("seed_corpus: {}: {e}", file.display());
                        return ExitCode::FAILURE;
                    }
                    written += 1;
                }
            }
        }
    }
    println!("seed_corpus: wrote {written} files, skipped {skipped} messages");
    ExitCode::SUCCESS
}
