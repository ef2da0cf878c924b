//! Where a node keeps its KEKs and how a rotation changes them. Key-file (development) mode:
//! `kek.key` holds the current KEK and, while a rotation runs, `kek.retired` the retired
//! ones. Sealed mode: `kek.sealed` holds them all (current first), sealed again under the same
//! master key, so the custodians' shares or the passphrase stay valid. Files are replaced
//! atomically (write a new 0600 file, fsync, rename), and in an order that leaves a loadable
//! set of KEKs at every step: a rotation interrupted anywhere resumes on the next
//! `akm kek rotate`.

use super::seal::SealedKek;
use super::slot::{KekSlot, Keys};
use super::{random_bytes, CryptoError, Kek, KEK_LEN};
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

impl KekFiles {
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

    /// Ends a rotation once nothing stored references the retired KEKs: they are removed from
    /// the files and from memory (wiped). Returns their ids.
    pub fn finish_rotation(&self, files: &KekFiles) -> Result<Vec<String>, CryptoError> {
        let mut guard = self.kek.write().map_err(|_| CryptoError::NotUnsealed)?;
        let keys: &mut Keys = guard.as_mut().ok_or(CryptoError::NotUnsealed)?;
        if keys.retired.is_empty() {
            return Ok(Vec::new());
        }
        files.persist(self, &[&keys.current])?;
        Ok(keys.retired.drain(..).map(|k| k.id().to_owned()).collect())
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
        assert!(after.unwrap("u", 1, &w_old).is_err(), "old KEK destroyed");
        assert_eq!(
            after.unwrap("u", 1, &w_new).unwrap().as_slice(),
            b"material"
        );
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
