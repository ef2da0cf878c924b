//! Files that hold secrets: the key encryption key and TLS private keys. Owns the rules for
//! creating them (mode 0600 from the first byte, never overwriting, durable on return) and for
//! reading them (only regular files that grant nothing to group or other). Contents never
//! appear in errors.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Owner read and write, nothing for anyone else.
const SECRET_MODE: u32 = 0o600;
/// Readable by all: certificates written beside their keys.
const PUBLIC_MODE: u32 = 0o644;
/// Permission bits for group and other; any of them set makes a secret file unreadable to us.
const GROUP_OTHER_BITS: u32 = 0o077;
/// Largest secret file read. Keys are a few kilobytes; a bigger file is the wrong path, and
/// reading it whole into memory would only hide that.
const MAX_SECRET_BYTES: u64 = 1024 * 1024;

/// Why a secret file could not be written or read. Every message names the path; none carries
/// the file's contents.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// `write_new` found a file (or symlink) already at the path.
    #[error("{} already exists; refusing to overwrite it", .path.display())]
    AlreadyExists {
        /// The path.
        path: PathBuf,
    },
    /// Creating, writing or syncing the file failed.
    #[error("cannot write {}", .path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Syncing the directory that holds the new file failed, so its entry may not be durable.
    #[error("cannot sync directory {} after writing a secret file", .path.display())]
    SyncDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Opening, inspecting or reading the file failed.
    #[error("cannot read secret file {}", .path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The path is a directory, device, FIFO or socket rather than a regular file.
    #[error("secret file {} is not a regular file", .path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// The file is larger than any secret we keep.
    #[error("secret file {} is {size} bytes, more than the {limit} a secret file may hold", .path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// The file's size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file grants some permission to group or other.
    #[error(
        "secret file {path} has mode {mode:04o}, which grants access to group or other; \
         run `chmod 600 {path}`",
        path = .path.display()
    )]
    InsecureMode {
        /// The path.
        path: PathBuf,
        /// The file's permission bits.
        mode: u32,
    },
}

/// Creates `path` with mode 0600, writes `bytes` and syncs both the file and its directory.
/// Refuses to replace anything already at `path`, including a dangling symlink. If writing
/// fails, the partial file is removed.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    write_new_with_mode(path, bytes, SECRET_MODE)
}

/// Creates a non-secret file (mode 0644, e.g. a certificate) the same way: never replacing
/// anything, durable on return.
pub fn write_new_public(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    write_new_with_mode(path, bytes, PUBLIC_MODE)
}

fn write_new_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SecretFileError> {
    let mut file = create_exclusive(path, mode)?;
    if let Err(source) = write_and_sync(&mut file, bytes) {
        // A truncated secret left behind would both block a retry (we never overwrite) and
        // hold part of the key; removal is best effort since we are already failing.
        drop(file);
        let _ = fs::remove_file(path);
        return Err(SecretFileError::Write {
            path: path.to_path_buf(),
            source,
        });
    }
    sync_parent_dir(path)
}

/// Reads a secret file into a buffer that is wiped on drop. Refuses anything but a regular
/// file, a file whose mode grants any permission to group or other, and a file over 1 MiB.
pub fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
    let read_err = |source| SecretFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Checked before opening because opening a FIFO for reading blocks until a writer appears.
    check_metadata(path, &fs::metadata(path).map_err(read_err)?)?;
    let mut file = File::open(path).map_err(read_err)?;
    // Checked again on the open handle: that is the file we actually read.
    let metadata = file.metadata().map_err(read_err)?;
    check_metadata(path, &metadata)?;
    // Sized up front so the buffer is not reallocated while reading, which would leave
    // unwiped copies of the secret in freed memory.
    let capacity = usize::try_from(metadata.len())
        .unwrap_or(0)
        .saturating_add(1);
    let mut contents = Zeroizing::new(Vec::with_capacity(capacity));
    file.read_to_end(&mut contents).map_err(read_err)?;
    Ok(contents)
}

fn create_exclusive(path: &Path, mode: u32) -> Result<File, SecretFileError> {
    // create_new is O_EXCL: it fails on any existing entry and never follows a symlink, and the
    // mode applies at creation so the secret is never readable by others, even briefly.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => SecretFileError::AlreadyExists {
                path: path.to_path_buf(),
            },
            _ => SecretFileError::Write {
                path: path.to_path_buf(),
                source,
            },
        })
}

fn write_and_sync(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the new directory entry durable: without this a crash can lose a file whose
/// contents were already synced.
fn sync_parent_dir(path: &Path) -> Result<(), SecretFileError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| SecretFileError::SyncDir {
            path: dir.to_path_buf(),
            source,
        })
}

fn too_large(path: &Path, size: u64) -> SecretFileError {
    SecretFileError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: MAX_SECRET_BYTES,
    }
}

fn check_metadata(path: &Path, metadata: &fs::Metadata) -> Result<(), SecretFileError> {
    if !metadata.is_file() {
        return Err(SecretFileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    if metadata.len() > MAX_SECRET_BYTES {
        return Err(too_large(path, metadata.len()));
    }
    let mode = metadata.mode() & 0o7777;
    if mode & GROUP_OTHER_BITS != 0 {
        return Err(SecretFileError::InsecureMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn write_new_creates_0600_and_read_returns_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        write_new(&path, b"secret bytes").unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(read(&path).unwrap().as_slice(), b"secret bytes");
    }

    #[test]
    fn write_new_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        write_new(&path, b"first").unwrap();
        let err = write_new(&path, b"second").unwrap_err();
        assert!(
            matches!(err, SecretFileError::AlreadyExists { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(read(&path).unwrap().as_slice(), b"first");
    }

    #[test]
    fn write_new_refuses_a_dangling_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        let link = dir.path().join("kek");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_new(&link, b"secret").unwrap_err();
        assert!(
            matches!(err, SecretFileError::AlreadyExists { .. }),
            "{err:?}"
        );
        assert!(!target.exists());
    }

    #[test]
    fn read_refuses_group_or_other_permissions_with_chmod_hint() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o640, 0o604, 0o644, 0o660, 0o601] {
            let path = dir.path().join(format!("key-{mode:o}"));
            write_new(&path, b"do not print me").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = read(&path).unwrap_err();
            assert!(matches!(err, SecretFileError::InsecureMode { mode: m, .. } if m == mode));
            let msg = err.to_string();
            let shown = path.display().to_string();
            assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
            assert!(msg.contains(&format!("chmod 600 {shown}")), "{msg}");
            assert!(!msg.contains("do not print me"));
        }
    }

    #[test]
    fn read_accepts_owner_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        write_new(&path, b"k").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read(&path).unwrap().as_slice(), b"k");
    }

    #[test]
    fn read_refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
        let err = read(&sub).unwrap_err();
        assert!(matches!(err, SecretFileError::NotRegular { .. }), "{err:?}");
    }

    #[test]
    fn read_refuses_an_oversized_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let big = vec![0u8; MAX_SECRET_BYTES as usize + 1];
        write_new(&path, &big).unwrap();
        let err = read(&path).unwrap_err();
        assert!(matches!(err, SecretFileError::TooLarge { .. }), "{err:?}");
    }

    #[test]
    fn read_of_missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing");
        let err = read(&path).unwrap_err();
        assert!(matches!(err, SecretFileError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
    }
}
