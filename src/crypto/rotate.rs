//! Where a node keeps its KEKs and how a rotation changes them. Key-file (development) mode:
//! `kek.key` holds the current KEK and, while a rotation runs, `kek.retired` the retired
//! ones. Sealed mode: `kek.sealed` holds them all (current first), sealed again under the same
//! master key, so the custodians' shares or the passphrase stay valid. Files are replaced
//! atomically (write a new 0600 file, fsync, rename), and in an order that leaves a loadable
//! set of KEKs at every step: a rotation interrupted anywhere resumes on the next
//! `akm kek rotate`.
//!
//! A finished rotation does not destroy the retired KEKs: backups taken under them would become
//! unrestorable. They are kept in `kek.archive` beside the key file, each wrapped under the
//! current KEK (so the archive is no more exposed than the keys in the database, and a sealed
//! node's archive opens only once the KEK is unsealed); every later rotation rewraps the
//! archive under its new KEK. Only a restore reads it ([`KekSlot::with_archive`]): the server
//! never wraps or unwraps stored keys with an archived KEK.

use super::seal::SealedKek;
use super::slot::{KekSlot, Keys};
use super::{random_bytes, CryptoError, Kek, Wrapped, KEK_LEN};
use crate::secret_file;
use std::path::{Path, PathBuf};

/// A node's KEK files.
#[derive(Clone, Debug)]
pub struct KekFiles {
    /// The plain (development) KEK file.
    pub plain: PathBuf,
    /// The sealed KEK file.
    pub sealed: PathBuf,
}

impl KekFiles {
    /// The node's KEK files as `[store]` places them.
    pub fn of(store: &crate::config::StoreConfig) -> KekFiles {
        KekFiles {
            plain: store.kek(),
            sealed: store.sealed_kek(),
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Replaces `path` with `bytes` atomically (mode 0600).
fn replace_secret(path: &Path, bytes: &[u8]) -> Result<(), CryptoError> {
    let tmp = with_suffix(path, ".new");
    let _ = std::fs::remove_file(&tmp);
    secret_file::write_new(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
        .map_err(|e| CryptoError::Sealed(format!("cannot replace {}: {e}", path.display())))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn keks_from(bytes: &[u8], path: &Path) -> Result<Vec<Kek>, CryptoError> {
    if bytes.len() % KEK_LEN != 0 {
        return Err(CryptoError::KekLength {
            path: path.display().to_string(),
            len: bytes.len(),
        });
    }
    bytes.chunks(KEK_LEN).map(Kek::from_bytes).collect()
}

/// The associated data an archived KEK is wrapped with.
fn archive_uid(id: &str) -> String {
    format!("kek-archive:{id}")
}

/// Reads `path` (absent: empty): one line per archived KEK, `<its id> <wrapping KEK id>
/// <nonce hex> <ciphertext hex>`.
fn read_archive(path: &Path) -> Result<Vec<(String, Wrapped)>, CryptoError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let bad = || CryptoError::Sealed(format!("{} is damaged", path.display()));
    let text = String::from_utf8(secret_file::read(path)?.to_vec()).map_err(|_| bad())?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [id, kek_id, nonce, ct] = f[..] else {
                return Err(bad());
            };
            let wrapped = Wrapped {
                kek_id: kek_id.to_owned(),
                nonce: hex::decode(nonce).map_err(|_| bad())?,
                ciphertext: hex::decode(ct).map_err(|_| bad())?,
            };
            Ok((id.to_owned(), wrapped))
        })
        .collect()
}

/// Unwraps the archive's KEKs with whichever of `keys` wrapped each.
fn open_archive(path: &Path, keys: &Keys) -> Result<Vec<Kek>, CryptoError> {
    read_archive(path)?
        .into_iter()
        .map(|(id, w)| {
            let wrapping = keys.find(&w.kek_id).ok_or_else(|| {
                CryptoError::Sealed(format!(
                    "{}: KEK {id} is wrapped under KEK {}, which this node does not hold",
                    path.display(),
                    w.kek_id
                ))
            })?;
            Kek::from_bytes(&wrapping.unwrap(&archive_uid(&id), 0, &w)?)
        })
        .collect()
}

impl KekFiles {
    /// The retired KEKs kept, wrapped under the current KEK, to restore older backups.
    pub fn archive(&self) -> PathBuf {
        self.plain.with_extension("archive")
    }

    /// Writes `kept` into the archive, wrapped under `current`.
    fn write_archive(&self, current: &Kek, kept: &[Kek]) -> Result<(), CryptoError> {
        let mut text = String::new();
        for k in kept {
            let w = current.wrap(&archive_uid(k.id()), 0, k.bytes())?;
            text.push_str(&format!(
                "{} {} {} {}\n",
                k.id(),
                w.kek_id,
                hex::encode(&w.nonce),
                hex::encode(&w.ciphertext)
            ));
        }
        replace_secret(&self.archive(), text.as_bytes())
    }

    /// The retired KEKs of key-file mode, during a rotation.
    pub fn retired(&self) -> PathBuf {
        self.plain.with_extension("retired")
    }

    /// Loads the KEK slot: sealed when the sealed file exists, else open from the key file
    /// (and the retired file of an interrupted rotation).
    pub fn load(&self) -> Result<KekSlot, CryptoError> {
        if self.sealed.exists() {
            return Ok(KekSlot::sealed(SealedKek::load(&self.sealed)?));
        }
        let current = Kek::load(&self.plain)?;
        let retired = match self.retired().exists() {
            true => keks_from(&secret_file::read(&self.retired())?, &self.retired())?,
            false => Vec::new(),
        };
        Ok(KekSlot::open_with(current, retired))
    }

    /// Writes `keks` (current first) where this node keeps them.
    fn persist(&self, slot: &KekSlot, keks: &[&Kek]) -> Result<(), CryptoError> {
        if let Some(sealed) = &slot.sealed {
            let master = slot.master.lock().map_err(|_| CryptoError::NotUnsealed)?;
            let master = master.as_ref().ok_or(CryptoError::NotUnsealed)?;
            let resealed = sealed.reseal(master, keks)?;
            return replace_secret(&self.sealed, resealed.to_text().as_bytes());
        }
        let retired: Vec<u8> = keks[1..].iter().flat_map(|k| k.bytes().to_vec()).collect();
        let retired = zeroize::Zeroizing::new(retired);
        // Retired first: until the new KEK replaces kek.key, it has wrapped nothing.
        if retired.is_empty() {
            replace_secret(&self.plain, keks[0].bytes())?;
            let _ = std::fs::remove_file(self.retired());
        } else {
            replace_secret(&self.retired(), &retired)?;
            replace_secret(&self.plain, keks[0].bytes())?;
        }
        Ok(())
    }
}

impl KekSlot {
    /// Starts a rotation unless one is in progress: a new KEK becomes current (persisted
    /// before it wraps anything) and the old one is retired. Returns the new KEK's id if it
    /// started one. Wrapping pauses only while the files are written.
    pub fn begin_rotation(&self, files: &KekFiles) -> Result<Option<String>, CryptoError> {
        let mut guard = self.kek.write().map_err(|_| CryptoError::NotUnsealed)?;
        let keys = guard.as_mut().ok_or(CryptoError::NotUnsealed)?;
        if !keys.retired.is_empty() {
            return Ok(None);
        }
        let new = Kek::from_bytes(&random_bytes(KEK_LEN))?;
        files.persist(self, &[&new, &keys.current])?;
        let old = std::mem::replace(&mut keys.current, new);
        keys.retired.push(old);
        Ok(Some(keys.current.id().to_owned()))
    }

    /// Ends a rotation once nothing stored references the retired KEKs: they move to the
    /// archive (wrapped under the current KEK, for restoring older backups, with the ones
    /// archived before, rewrapped), and leave the KEK files and memory. Returns their ids.
    pub fn finish_rotation(&self, files: &KekFiles) -> Result<Vec<String>, CryptoError> {
        let mut guard = self.kek.write().map_err(|_| CryptoError::NotUnsealed)?;
        let keys: &mut Keys = guard.as_mut().ok_or(CryptoError::NotUnsealed)?;
        if keys.retired.is_empty() {
            return Ok(Vec::new());
        }
        // The archive first: if we stop before the KEK files change, the next call redoes it.
        let mut kept = open_archive(&files.archive(), keys)?;
        for k in &keys.retired {
            if !kept.iter().any(|a| a.id() == k.id()) {
                kept.push(Kek::from_bytes(k.bytes())?);
            }
        }
        files.write_archive(&keys.current, &kept)?;
        files.persist(self, &[&keys.current])?;
        Ok(keys.retired.drain(..).map(|k| k.id().to_owned()).collect())
    }

    /// For a restore: an open slot with this slot's KEKs and the archived ones, which unwrap
    /// backups (and their keys) taken before a rotation; it still wraps with the current KEK.
    pub fn with_archive(&self, files: &KekFiles) -> Result<KekSlot, CryptoError> {
        let guard = self.kek.read().map_err(|_| CryptoError::NotUnsealed)?;
        let keys = guard.as_ref().ok_or(CryptoError::NotUnsealed)?;
        let mut others = Vec::new();
        for k in keys.retired.iter() {
            others.push(Kek::from_bytes(k.bytes())?);
        }
        others.extend(open_archive(&files.archive(), keys)?);
        Ok(KekSlot::open_with(
            Kek::from_bytes(keys.current.bytes())?,
            others,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> KekFiles {
        KekFiles {
            plain: dir.join("kek.key"),
            sealed: dir.join("kek.sealed"),
        }
    }

    #[test]
    fn key_file_rotation_persists_each_step_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        Kek::generate(&f.plain).unwrap();
        let slot = f.load().unwrap();
        let w_old = slot.wrap("u", 1, b"material").unwrap();
        let new_id = slot.begin_rotation(&f).unwrap().unwrap();
        assert_eq!(slot.begin_rotation(&f).unwrap(), None, "one at a time");
        assert_eq!(slot.id().unwrap(), new_id);
        // Interrupted here: a reload has both and unwraps the old blob.
        let reloaded = f.load().unwrap();
        assert_eq!(reloaded.id().unwrap(), new_id);
        assert_eq!(
            reloaded.unwrap("u", 1, &w_old).unwrap().as_slice(),
            b"material"
        );
        let w_new = slot.wrap("u", 1, b"material").unwrap();
        assert_eq!(w_new.kek_id, new_id);
        let gone = slot.finish_rotation(&f).unwrap();
        assert_eq!(gone, vec![w_old.kek_id.clone()]);
        assert!(!f.retired().exists());
        let after = f.load().unwrap();
        assert!(after.unwrap("u", 1, &w_old).is_err(), "old KEK out of use");
        assert_eq!(
            after.unwrap("u", 1, &w_new).unwrap().as_slice(),
            b"material"
        );
        // Kept in the archive, wrapped under the new KEK, for restores only; a second
        // rotation rewraps the archive and keeps both.
        let restoring = after.with_archive(&f).unwrap();
        assert_eq!(restoring.id().unwrap(), new_id);
        assert_eq!(
            restoring.unwrap("u", 1, &w_old).unwrap().as_slice(),
            b"material"
        );
        after.begin_rotation(&f).unwrap().unwrap();
        after.finish_rotation(&f).unwrap();
        let twice = f.load().unwrap().with_archive(&f).unwrap();
        assert_eq!(
            twice.unwrap("u", 1, &w_old).unwrap().as_slice(),
            b"material"
        );
        assert_eq!(
            twice.unwrap("u", 1, &w_new).unwrap().as_slice(),
            b"material"
        );
        assert!(!std::fs::read_to_string(f.archive())
            .unwrap()
            .contains(&hex::encode(Kek::load(&f.plain).unwrap().bytes())));
    }

    #[test]
    fn sealed_rotation_keeps_the_shares_valid() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let (sealed, texts) = SealedKek::seal_with_shares(&[9u8; 32], 2, 3).unwrap();
        sealed.write_new(&f.sealed).unwrap();
        let slot = f.load().unwrap();
        assert!(
            slot.begin_rotation(&f).is_err(),
            "sealed: nothing to rotate"
        );
        slot.submit_share(&texts[0].0).unwrap();
        slot.submit_share(&texts[1].0).unwrap();
        let w_old = slot.wrap("u", 1, b"m").unwrap();
        let new_id = slot.begin_rotation(&f).unwrap().unwrap();
        let reload = |a: usize, b: usize| {
            let s = f.load().unwrap();
            s.submit_share(&texts[a].0).unwrap();
            s.submit_share(&texts[b].0).unwrap();
            s
        };
        let mid = reload(1, 2);
        assert_eq!(mid.id().unwrap(), new_id);
        assert_eq!(mid.unwrap("u", 1, &w_old).unwrap().as_slice(), b"m");
        slot.finish_rotation(&f).unwrap();
        let done = reload(0, 2);
        assert_eq!(done.id().unwrap(), new_id);
        assert!(done.unwrap("u", 1, &w_old).is_err());
        assert!(done.retired_ids().is_empty());
    }
}
