//! The KEK as the running server holds it: either unsealed (in memory) or sealed, waiting for
//! custodian shares or a passphrase. Operations wrap and unwrap through the slot; while it is
//! sealed they fail (the dispatcher refuses them first). Shares offered so far are kept in
//! zeroizing buffers until the threshold is met, and dropped as soon as the KEK opens.

use super::seal::SealedKek;
use super::shamir::Share;
use super::{CryptoError, Kek, Wrapped};
use std::fmt;
use std::sync::{Mutex, RwLock};
use zeroize::Zeroizing;

/// Where the server's KEK stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealStatus {
    /// True until the KEK is open.
    pub sealed: bool,
    /// "key-file" (development auto-unseal), "shares" or "passphrase".
    pub scheme: &'static str,
    /// Shares needed (0 for the other schemes).
    pub threshold: usize,
    /// Shares accepted so far (0 once unsealed).
    pub progress: usize,
    /// The KEK's id (not secret).
    pub kek_id: String,
}

/// The KEK slot of a server.
pub struct KekSlot {
    kek: RwLock<Option<Kek>>,
    sealed: Option<SealedKek>,
    pending: Mutex<Vec<Share>>,
}

impl fmt::Debug for KekSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KekSlot(sealed: {})", self.is_sealed())
    }
}

impl From<Kek> for KekSlot {
    fn from(kek: Kek) -> KekSlot {
        KekSlot {
            kek: RwLock::new(Some(kek)),
            sealed: None,
            pending: Mutex::new(Vec::new()),
        }
    }
}

impl KekSlot {
    /// A slot holding a sealed KEK: the server serves nothing until it is unsealed.
    pub fn sealed(sealed: SealedKek) -> KekSlot {
        KekSlot {
            kek: RwLock::new(None),
            sealed: Some(sealed),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Whether the KEK is still sealed.
    pub fn is_sealed(&self) -> bool {
        self.kek.read().map(|k| k.is_none()).unwrap_or(true)
    }

    /// The current status.
    pub fn status(&self) -> SealStatus {
        let progress = self.pending.lock().map(|p| p.len()).unwrap_or(0);
        let (scheme, threshold, kek_id) = match &self.sealed {
            None => ("key-file", 0, self.id().unwrap_or_default()),
            Some(s) => (
                if s.threshold().is_some() {
                    "shares"
                } else {
                    "passphrase"
                },
                s.threshold().unwrap_or(0),
                s.kek_id.clone(),
            ),
        };
        SealStatus {
            sealed: self.is_sealed(),
            scheme,
            threshold,
            progress: if self.is_sealed() { progress } else { 0 },
            kek_id,
        }
    }

    fn sealed_file(&self) -> Result<&SealedKek, CryptoError> {
        if !self.is_sealed() {
            return Err(CryptoError::Unseal("the server is already unsealed"));
        }
        self.sealed
            .as_ref()
            .ok_or(CryptoError::Unseal("the server is already unsealed"))
    }

    fn install(&self, kek: Kek) {
        if let Ok(mut slot) = self.kek.write() {
            *slot = Some(kek);
        }
    }

    /// Offers one custodian share. The share is checked at once (checksum, share set,
    /// recorded digest); at the threshold the KEK is opened and the shares dropped.
    pub fn submit_share(&self, text: &str) -> Result<SealStatus, CryptoError> {
        let sealed = self.sealed_file()?;
        let share = sealed.check_share(text)?;
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| CryptoError::Unseal("unseal state poisoned"))?;
        if pending.iter().any(|s| s.index == share.index) {
            return Err(CryptoError::Unseal("this share was already given"));
        }
        pending.push(share);
        if pending.len() >= sealed.threshold().unwrap_or(usize::MAX) {
            let opened = sealed.open_with_shares(&pending);
            pending.clear();
            self.install(opened?);
        }
        drop(pending);
        Ok(self.status())
    }

    /// Offers the passphrase.
    pub fn submit_passphrase(
        &self,
        passphrase: &Zeroizing<Vec<u8>>,
    ) -> Result<SealStatus, CryptoError> {
        let kek = self.sealed_file()?.open_with_passphrase(passphrase)?;
        self.install(kek);
        Ok(self.status())
    }

    /// The KEK's id, if unsealed.
    pub fn id(&self) -> Option<String> {
        self.kek.read().ok()?.as_ref().map(|k| k.id().to_owned())
    }

    /// Wraps with the KEK (see [`Kek::wrap`]); fails while sealed.
    pub fn wrap(&self, uid: &str, version: i64, material: &[u8]) -> Result<Wrapped, CryptoError> {
        let guard = self.kek.read().map_err(|_| CryptoError::NotUnsealed)?;
        guard
            .as_ref()
            .ok_or(CryptoError::NotUnsealed)?
            .wrap(uid, version, material)
    }

    /// Unwraps with the KEK (see [`Kek::unwrap`]); fails while sealed.
    pub fn unwrap(
        &self,
        uid: &str,
        version: i64,
        wrapped: &Wrapped,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let guard = self.kek.read().map_err(|_| CryptoError::NotUnsealed)?;
        guard
            .as_ref()
            .ok_or(CryptoError::NotUnsealed)?
            .unwrap(uid, version, wrapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_slot_refuses_to_wrap_until_the_threshold() {
        let (sealed, texts) = SealedKek::seal_with_shares(&[7u8; 32], 2, 3).unwrap();
        let slot = KekSlot::sealed(sealed);
        assert!(slot.is_sealed());
        assert!(matches!(
            slot.wrap("u", 1, b"m"),
            Err(CryptoError::NotUnsealed)
        ));
        let st = slot.submit_share(&texts[2].0).unwrap();
        assert_eq!((st.sealed, st.progress, st.threshold), (true, 1, 2));
        assert!(slot.submit_share(&texts[2].0).is_err(), "same share twice");
        assert!(slot
            .submit_passphrase(&Zeroizing::new(b"x".to_vec()))
            .is_err());
        let st = slot.submit_share(&texts[0].0).unwrap();
        assert_eq!((st.sealed, st.progress), (false, 0));
        let w = slot.wrap("u", 1, b"m").unwrap();
        assert_eq!(slot.unwrap("u", 1, &w).unwrap().as_slice(), b"m");
        assert!(slot.submit_share(&texts[1].0).is_err(), "already unsealed");
        assert_eq!(slot.status().scheme, "shares");
    }

    #[test]
    fn a_key_file_slot_is_open() {
        let slot = KekSlot::from(Kek::from_bytes(&[1u8; 32]).unwrap());
        assert!(!slot.is_sealed());
        assert_eq!(slot.status().scheme, "key-file");
        assert!(slot.submit_share("x").is_err());
    }
}
