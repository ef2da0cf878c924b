//! The KEK as the running server holds it: either unsealed (in memory) or sealed, waiting for
//! custodian shares or a passphrase. Operations wrap and unwrap through the slot; while it is
//! sealed they fail (the dispatcher refuses them first). Shares offered so far are kept in
//! zeroizing buffers until the threshold is met, and dropped as soon as the KEK opens.
//! During a KEK rotation the slot holds the new (current) KEK, which wraps, and the retired
//! ones, which still unwrap what they wrapped: each wrapped blob names its KEK.

use super::seal::{Opened, SealedKek};
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

/// The unsealed KEKs.
pub(crate) struct Keys {
    /// Wraps everything new.
    pub(crate) current: Kek,
    /// Still unwrap what they wrapped until a rotation has rewrapped it all.
    pub(crate) retired: Vec<Kek>,
}

impl Keys {
    pub(crate) fn find(&self, id: &str) -> Option<&Kek> {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .find(|k| k.id() == id)
    }
}

/// The KEK slot of a server.
pub struct KekSlot {
    pub(crate) kek: RwLock<Option<Keys>>,
    pub(crate) sealed: Option<SealedKek>,
    /// The master key, once unsealed (sealed mode only), to seal a rotated KEK again.
    pub(crate) master: Mutex<Option<Zeroizing<Vec<u8>>>>,
    pending: Mutex<Vec<Share>>,
}

impl fmt::Debug for KekSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KekSlot(sealed: {})", self.is_sealed())
    }
}

impl From<Kek> for KekSlot {
    fn from(kek: Kek) -> KekSlot {
        KekSlot::open_with(kek, Vec::new())
    }
}

impl KekSlot {
    /// An open slot (key-file mode) with the current KEK and those a rotation in progress
    /// still needs.
    pub fn open_with(current: Kek, retired: Vec<Kek>) -> KekSlot {
        KekSlot {
            kek: RwLock::new(Some(Keys { current, retired })),
            sealed: None,
            master: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// A slot holding a sealed KEK: the server serves nothing until it is unsealed.
    pub fn sealed(sealed: SealedKek) -> KekSlot {
        KekSlot {
            kek: RwLock::new(None),
            sealed: Some(sealed),
            master: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// The ids of the retired KEKs still held (a rotation is in progress when any).
    pub fn retired_ids(&self) -> Vec<String> {
        self.kek
            .read()
            .ok()
            .and_then(|k| {
                k.as_ref()
                    .map(|k| k.retired.iter().map(|r| r.id().to_owned()).collect())
            })
            .unwrap_or_default()
    }

    /// Whether the slot holds the KEK `id` (current or retired; false while sealed).
    pub fn holds(&self, id: &str) -> bool {
        self.kek
            .read()
            .ok()
            .is_some_and(|k| k.as_ref().is_some_and(|k| k.find(id).is_some()))
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

    fn install(&self, opened: Opened) {
        let mut keks = opened.keks.into_iter();
        let Some(current) = keks.next() else { return };
        if let Ok(mut m) = self.master.lock() {
            *m = Some(opened.master);
        }
        if let Ok(mut slot) = self.kek.write() {
            *slot = Some(Keys {
                current,
                retired: keks.collect(),
            });
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
        let opened = self.sealed_file()?.open_with_passphrase(passphrase)?;
        self.install(opened);
        Ok(self.status())
    }

    /// The current KEK's id, if unsealed.
    pub fn id(&self) -> Option<String> {
        self.kek
            .read()
            .ok()?
            .as_ref()
            .map(|k| k.current.id().to_owned())
    }

    /// Wraps with the KEK (see [`Kek::wrap`]); fails while sealed.
    pub fn wrap(&self, uid: &str, version: i64, material: &[u8]) -> Result<Wrapped, CryptoError> {
        let guard = self.kek.read().map_err(|_| CryptoError::NotUnsealed)?;
        guard
            .as_ref()
            .ok_or(CryptoError::NotUnsealed)?
            .current
            .wrap(uid, version, material)
    }

    /// Unwraps with the KEK that wrapped it (see [`Kek::unwrap`]); fails while sealed.
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
            .find(&wrapped.kek_id)
            .ok_or(CryptoError::Unwrap)?
            .unwrap(uid, version, wrapped)
    }
}

/// Wrapping and unwrapping stored key material, by a bare [`Kek`] or a server's
/// [`KekSlot`] (which also unwraps with retired KEKs during a rotation).
pub trait Wrapping {
    /// See [`Kek::wrap`].
    fn wrap_material(
        &self,
        uid: &str,
        version: i64,
        material: &[u8],
    ) -> Result<Wrapped, CryptoError>;
    /// See [`Kek::unwrap`].
    fn unwrap_material(
        &self,
        uid: &str,
        version: i64,
        wrapped: &Wrapped,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
}

impl Wrapping for Kek {
    fn wrap_material(
        &self,
        uid: &str,
        version: i64,
        material: &[u8],
    ) -> Result<Wrapped, CryptoError> {
        self.wrap(uid, version, material)
    }
    fn unwrap_material(
        &self,
        uid: &str,
        version: i64,
        wrapped: &Wrapped,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.unwrap(uid, version, wrapped)
    }
}

impl Wrapping for KekSlot {
    fn wrap_material(
        &self,
        uid: &str,
        version: i64,
        material: &[u8],
    ) -> Result<Wrapped, CryptoError> {
        self.wrap(uid, version, material)
    }
    fn unwrap_material(
        &self,
        uid: &str,
        version: i64,
        wrapped: &Wrapped,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.unwrap(uid, version, wrapped)
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
