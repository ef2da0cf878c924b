//! The `man akm` pages and the shell completions, generated from the clap definition
//! ([`super::Cli`]) so they always match the real subcommands and flags. The hidden
//! `akm generate-docs --out DIR` writes them; the generated files are committed under
//! `deploy/` (where the Debian package takes them from) and a test checks they are current.

use super::Cli;
use clap::CommandFactory;
use clap_complete::Shell;
use std::io;
use std::path::{Path, PathBuf};

/// The shells completions are made for, with the file name each one's loader looks for.
const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "akm"),
    (Shell::Zsh, "_akm"),
    (Shell::Fish, "akm.fish"),
];

/// Writes `DIR/man/akm.1`, one `DIR/man/akm-<subcommand>.1` per visible subcommand, and
/// `DIR/completions/{akm,_akm,akm.fish}`. Returns the files written, in a stable order.
pub fn generate(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = man_pages(&dir.join("man"))?;
    written.extend(completions(&dir.join("completions"))?);
    Ok(written)
}

/// The command as the docs show it: built, so subcommands carry their full `akm x` names.
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

fn man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let cmd = command();
    let mut written = vec![write_man_page(dir, "akm.1", cmd.clone())?];
    // `help` is clap's own; its page would only repeat the list above.
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("akm-{}.1", sub.get_name());
        // Built subcommands carry the display name `akm-<name>`, which the page's title uses.
        written.push(write_man_page(dir, &name, sub.clone())?);
    }
    Ok(written)
}

fn write_man_page(dir: &Path, file: &str, cmd: clap::Command) -> io::Result<PathBuf> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut page)?;
    let path = dir.join(file);
    std::fs::write(&path, page)?;
    Ok(path)
}

fn completions(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (shell, file) in SHELLS {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command(), "akm", &mut script);
        let path = dir.join(file);
        std::fs::write(&path, script)?;
        written.push(path);
    }
    Ok(written)
}
