//! The sealed KEK: the KEK encrypted (AES-256-GCM) under a master key that is never on disk
//! in the clear. The master key is either split into M-of-N custodian shares (Shamir over
//! GF(256), see `shamir`) or derived from a passphrase with Argon2id. The sealed file is text:
//! a header naming the scheme, then the nonce and ciphertext; the header is the associated
//! data, so editing it (say, lowering the threshold) makes the file fail to open. For shares
//! the header also holds the SHA-256 of every share, so a wrong share is named as soon as it
//! is offered rather than after the threshold is reached.

use super::shamir::{self, Share};
use super::{random_bytes, sha256, CryptoError, Kek, KEK_LEN, NONCE_LEN};
use crate::crypto::backend::gcm::{Aes256Gcm, Payload};
use std::path::Path;
use zeroize::Zeroizing;

const MAGIC: &str = "akm-sealed-kek v1";
const SHARE_PREFIX: &str = "akm-kek-share-v1";

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Argon2Params {
    /// The production parameters: 256 MiB, 3 passes, 4 lanes (above the RFC 9106 second
    /// recommended option of 64 MiB, 3 passes, 4 lanes).
    pub const STRONG: Argon2Params = Argon2Params {
        m_kib: 256 * 1024,
        t: 3,
        p: 4,
    };
    /// The least accepted when opening a file, so an edited header cannot weaken it much
    /// (the header is authenticated too): 64 MiB, 3 passes.
    pub const MINIMUM: Argon2Params = Argon2Params {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };
}

/// How the master key is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Split into shares, `threshold` of `digests.len()` needed.
    Shares {
        /// M.
        threshold: u8,
        /// A random identifier of this share set, in every share.
        set_id: String,
        /// SHA-256 (hex) of each share's bytes, by index 1..=N.
        digests: Vec<String>,
    },
    /// Derived from a passphrase.
    Passphrase {
        /// The Argon2id parameters.
        params: Argon2Params,
        /// The salt (hex).
        salt: String,
    },
}

/// A parsed sealed KEK file.
#[derive(Clone, Debug)]
pub struct SealedKek {
    /// The id of the KEK inside (not secret).
    pub kek_id: String,
    /// The scheme.
    pub scheme: Scheme,
    header: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// What unsealing yields: the KEKs (current first) and the master key, kept in memory so a
/// rotation can seal the new KEK under the same shares or passphrase.
pub struct Opened {
    /// The current KEK, then those a rotation in progress still needs.
    pub keks: Vec<Kek>,
    /// The master key.
    pub master: Zeroizing<Vec<u8>>,
}

/// A custodian share as written to its file: set id, index, threshold, bytes and a checksum.
pub struct ShareText(pub Zeroizing<String>);

fn bad(what: &str) -> CryptoError {
    CryptoError::Sealed(format!("sealed KEK file: {what}"))
}

fn encrypt(master: &[u8], kek: &[u8], header: &str) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
    let cipher = Aes256Gcm::new_from_slice(master).map_err(|_| CryptoError::Wrap)?;
    cipher
        .seal(Payload {
            msg: kek,
            aad: header.as_bytes(),
        })
        .map_err(|_| CryptoError::Wrap)
}

impl SealedKek {
    /// Seals `kek_bytes` under a fresh master key split into `shares` shares, any `threshold`
    /// of which unseal it. Returns the sealed file and the share texts (index order).
    pub fn seal_with_shares(
        kek_bytes: &[u8],
        threshold: usize,
        shares: usize,
    ) -> Result<(SealedKek, Vec<ShareText>), CryptoError> {
        let kek_id = Kek::from_bytes(kek_bytes)?.id().to_owned();
        let master = random_bytes(KEK_LEN);
        let parts = shamir::split(&master, threshold, shares)
            .map_err(|e| CryptoError::Sealed(e.to_string()))?;
        let set_id = hex::encode(random_bytes(8).as_slice());
        let digests: Vec<String> = parts
            .iter()
            .map(|s| hex::encode(sha256(&s.bytes)))
            .collect();
        let texts = parts
            .iter()
            .map(|s| share_text(&set_id, threshold as u8, s))
            .collect();
        let scheme = Scheme::Shares {
            threshold: threshold as u8,
            set_id,
            digests,
        };
        Ok((Self::build(&master, kek_bytes, kek_id, scheme)?, texts))
    }

    /// Seals `kek_bytes` under a key derived from `passphrase` with Argon2id.
    pub fn seal_with_passphrase(
        kek_bytes: &[u8],
        passphrase: &[u8],
        params: Argon2Params,
    ) -> Result<SealedKek, CryptoError> {
        if passphrase.len() < 12 {
            return Err(CryptoError::Sealed(
                "the passphrase must be at least 12 characters".into(),
            ));
        }
        let kek_id = Kek::from_bytes(kek_bytes)?.id().to_owned();
        let salt = hex::encode(random_bytes(16).as_slice());
        let master = derive(passphrase, &salt, params)?;
        let scheme = Scheme::Passphrase { params, salt };
        Self::build(&master, kek_bytes, kek_id, scheme)
    }

    fn build(
        master: &[u8],
        kek_bytes: &[u8],
        kek_id: String,
        scheme: Scheme,
    ) -> Result<SealedKek, CryptoError> {
        let header = header_text(&kek_id, &scheme);
        let (nonce, ciphertext) = encrypt(master, kek_bytes, &header)?;
        Ok(SealedKek {
            kek_id,
            scheme,
            header,
            nonce,
            ciphertext,
        })
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        format!(
            "{}nonce {}\nciphertext {}\n",
            self.header,
            hex::encode(&self.nonce),
            hex::encode(&self.ciphertext)
        )
    }

    /// Parses a sealed KEK file's text.
    pub fn parse(text: &str) -> Result<SealedKek, CryptoError> {
        let split_at = text.find("nonce ").ok_or_else(|| bad("no nonce line"))?;
        let (header, rest) = text.split_at(split_at);
        let mut lines = header.lines();
        if lines.next() != Some(MAGIC) {
            return Err(bad("not an akm sealed KEK file"));
        }
        let mut kek_id = None;
        let mut scheme_name = None;
        let (mut threshold, mut set_id, mut digests) = (None, None, Vec::new());
        let (mut params, mut salt) = (None, None);
        for line in lines {
            let (key, value) = line.split_once(' ').ok_or_else(|| bad("malformed line"))?;
            match key {
                "kek-id" => kek_id = Some(value.to_owned()),
                "scheme" => scheme_name = Some(value.to_owned()),
                "threshold" => threshold = value.parse::<u8>().ok(),
                "set" => set_id = Some(value.to_owned()),
                "share-sha256" => digests.push(value.to_owned()),
                "argon2id" => params = parse_params(value),
                "salt" => salt = Some(value.to_owned()),
                _ => return Err(bad("unknown header line")),
            }
        }
        let scheme = match scheme_name.as_deref() {
            Some("shares") => Scheme::Shares {
                threshold: threshold
                    .filter(|&m| m >= 2 && usize::from(m) <= digests.len())
                    .ok_or_else(|| bad("bad threshold"))?,
                set_id: set_id.ok_or_else(|| bad("no share set id"))?,
                digests,
            },
            Some("passphrase") => Scheme::Passphrase {
                params: params.ok_or_else(|| bad("bad argon2id parameters"))?,
                salt: salt.ok_or_else(|| bad("no salt"))?,
            },
            _ => return Err(bad("unknown scheme")),
        };
        let mut nonce = None;
        let mut ciphertext = None;
        for line in rest.lines() {
            match line.split_once(' ') {
                Some(("nonce", v)) => nonce = hex::decode(v).ok(),
                Some(("ciphertext", v)) => ciphertext = hex::decode(v).ok(),
                _ => return Err(bad("malformed trailer")),
            }
        }
        Ok(SealedKek {
            kek_id: kek_id.ok_or_else(|| bad("no kek-id"))?,
            scheme,
            header: header.to_owned(),
            nonce: nonce
                .filter(|n| n.len() == NONCE_LEN)
                .ok_or_else(|| bad("bad nonce"))?,
            ciphertext: ciphertext.ok_or_else(|| bad("bad ciphertext"))?,
        })
    }

    /// Reads and parses a sealed KEK file (a secret file: 0600, refused if group/other
    /// readable).
    pub fn load(path: &Path) -> Result<SealedKek, CryptoError> {
        let bytes = crate::secret_file::read(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("not text"))?;
        SealedKek::parse(text)
    }

    /// Writes the file (mode 0600, never overwriting).
    pub fn write_new(&self, path: &Path) -> Result<(), CryptoError> {
        crate::secret_file::write_new(path, self.to_text().as_bytes())?;
        Ok(())
    }

    /// Opens the sealed KEKs with a master key: the current one first, then any a rotation
    /// in progress still needs.
    fn open(&self, master: &[u8]) -> Result<Vec<Kek>, CryptoError> {
        let cipher = Aes256Gcm::new_from_slice(master).map_err(|_| CryptoError::Wrap)?;
        let kek = cipher
            .decrypt(
                &self.nonce,
                Payload {
                    msg: &self.ciphertext,
                    aad: self.header.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Unseal("the shares or passphrase do not open the KEK"))?;
        if kek.is_empty() || kek.len() % KEK_LEN != 0 {
            return Err(bad("sealed content is not a list of KEKs"));
        }
        kek.chunks(KEK_LEN).map(Kek::from_bytes).collect()
    }

    /// The same scheme (same shares or passphrase) sealing `keks` instead (current first),
    /// for a rotation; `master` is the key the custodians' unseal produced.
    pub fn reseal(&self, master: &[u8], keks: &[&Kek]) -> Result<SealedKek, CryptoError> {
        let current = keks.first().ok_or_else(|| bad("nothing to seal"))?;
        let mut plain = Zeroizing::new(Vec::with_capacity(keks.len() * KEK_LEN));
        for k in keks {
            plain.extend_from_slice(k.bytes());
        }
        Self::build(master, &plain, current.id().to_owned(), self.scheme.clone())
    }

    /// Opens the sealed KEKs with a passphrase; also returns the master key.
    pub fn open_with_passphrase(&self, passphrase: &[u8]) -> Result<Opened, CryptoError> {
        let Scheme::Passphrase { params, salt } = &self.scheme else {
            return Err(CryptoError::Unseal(
                "this KEK is sealed with custodian shares, not a passphrase",
            ));
        };
        if params.m_kib < Argon2Params::MINIMUM.m_kib || params.t < Argon2Params::MINIMUM.t {
            return Err(bad("argon2id parameters below the minimum"));
        }
        let master = derive(passphrase, salt, *params)?;
        let keks = self.open(&master)?;
        Ok(Opened { keks, master })
    }

    /// Checks one share text against this file: its checksum, its set, its index and the
    /// recorded digest. Returns the share.
    pub fn check_share(&self, text: &str) -> Result<Share, CryptoError> {
        let Scheme::Shares {
            set_id, digests, ..
        } = &self.scheme
        else {
            return Err(CryptoError::Unseal(
                "this KEK is sealed with a passphrase, not custodian shares",
            ));
        };
        let share = parse_share(text, set_id)?;
        let expected = digests.get(usize::from(share.index) - 1);
        if expected != Some(&hex::encode(sha256(&share.bytes))) {
            return Err(CryptoError::Unseal(
                "the share is not one of this KEK's shares",
            ));
        }
        Ok(share)
    }

    /// The number of shares needed (None for a passphrase).
    pub fn threshold(&self) -> Option<usize> {
        match &self.scheme {
            Scheme::Shares { threshold, .. } => Some(usize::from(*threshold)),
            Scheme::Passphrase { .. } => None,
        }
    }

    /// Opens the sealed KEKs with checked shares (at least the threshold); also returns the
    /// master key.
    pub fn open_with_shares(&self, shares: &[Share]) -> Result<Opened, CryptoError> {
        if shares.len() < self.threshold().unwrap_or(usize::MAX) {
            return Err(CryptoError::Unseal("fewer shares than the threshold"));
        }
        let master = shamir::combine(shares).map_err(|e| CryptoError::Sealed(e.to_string()))?;
        let keks = self.open(&master)?;
        Ok(Opened { keks, master })
    }
}

fn header_text(kek_id: &str, scheme: &Scheme) -> String {
    let mut h = format!("{MAGIC}\nkek-id {kek_id}\n");
    match scheme {
        Scheme::Shares {
            threshold,
            set_id,
            digests,
        } => {
            h.push_str(&format!(
                "scheme shares\nthreshold {threshold}\nset {set_id}\n"
            ));
            for d in digests {
                h.push_str(&format!("share-sha256 {d}\n"));
            }
        }
        Scheme::Passphrase { params, salt } => h.push_str(&format!(
            "scheme passphrase\nargon2id m={} t={} p={}\nsalt {salt}\n",
            params.m_kib, params.t, params.p
        )),
    }
    h
}

fn parse_params(value: &str) -> Option<Argon2Params> {
    let mut p = Argon2Params {
        m_kib: 0,
        t: 0,
        p: 0,
    };
    for part in value.split(' ') {
        let (k, v) = part.split_once('=')?;
        let v: u32 = v.parse().ok()?;
        match k {
            "m" => p.m_kib = v,
            "t" => p.t = v,
            "p" => p.p = v,
            _ => return None,
        }
    }
    // Bounded so a hostile file cannot make the server allocate without limit (4 GiB).
    (p.m_kib > 0 && p.m_kib <= 4 * 1024 * 1024 && p.t > 0 && p.t <= 64 && (1..=16).contains(&p.p))
        .then_some(p)
}

/// Argon2id of the passphrase with the hex salt, 32 bytes.
pub(crate) fn derive(
    passphrase: &[u8],
    salt_hex: &str,
    params: Argon2Params,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if let Err(refused) = super::backend::outside_module(
        "a passphrase-sealed KEK (Argon2id is not an approved KDF; use the KEK file or shares)",
    ) {
        return Err(CryptoError::Sealed(refused.to_string()));
    }
    let salt = hex::decode(salt_hex).map_err(|_| bad("bad salt"))?;
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(KEK_LEN))
        .map_err(|_| bad("bad argon2id parameters"))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new(vec![0u8; KEK_LEN]);
    a.hash_password_into(passphrase, &salt, &mut out)
        .map_err(|_| bad("argon2id failed"))?;
    Ok(out)
}

fn share_checksum(set_id: &str, index: u8, threshold: u8, bytes: &[u8]) -> String {
    let mut input = format!("{SHARE_PREFIX}:{set_id}:{index}:{threshold}:").into_bytes();
    input.extend_from_slice(bytes);
    hex::encode(&sha256(&input)[..4])
}

fn share_text(set_id: &str, threshold: u8, share: &Share) -> ShareText {
    let hexbytes = Zeroizing::new(hex::encode(share.bytes.as_slice()));
    let check = share_checksum(set_id, share.index, threshold, &share.bytes);
    ShareText(Zeroizing::new(format!(
        "{SHARE_PREFIX}:{set_id}:{}:{threshold}:{}:{check}\n",
        share.index, *hexbytes
    )))
}

/// Parses a share text, checking its checksum (a mistyped share is caught here) and that it
/// belongs to `set_id`.
pub fn parse_share(text: &str, set_id: &str) -> Result<Share, CryptoError> {
    let fields: Vec<&str> = text.trim().split(':').collect();
    let [prefix, set, index, threshold, bytes, check] = fields[..] else {
        return Err(CryptoError::Unseal("not an akm KEK share"));
    };
    if prefix != SHARE_PREFIX {
        return Err(CryptoError::Unseal("not an akm KEK share"));
    }
    let index: u8 = index
        .parse()
        .ok()
        .filter(|&i| i > 0)
        .ok_or(CryptoError::Unseal("bad share index"))?;
    let threshold: u8 = threshold
        .parse()
        .map_err(|_| CryptoError::Unseal("bad share threshold"))?;
    let bytes = Zeroizing::new(
        hex::decode(bytes)
            .ok()
            .filter(|b| b.len() == KEK_LEN)
            .ok_or(CryptoError::Unseal("bad share bytes"))?,
    );
    if share_checksum(set, index, threshold, &bytes) != check {
        return Err(CryptoError::Unseal(
            "share checksum mismatch: the share was mistyped or damaged",
        ));
    }
    if set != set_id {
        return Err(CryptoError::Unseal(
            "the share belongs to another KEK's share set",
        ));
    }
    Ok(Share { index, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEK: [u8; 32] = [0x42; 32];

    fn shares_of(texts: &[ShareText], sealed: &SealedKek, which: &[usize]) -> Vec<Share> {
        which
            .iter()
            .map(|&i| sealed.check_share(&texts[i].0).unwrap())
            .collect()
    }

    #[test]
    fn shares_open_with_threshold_and_not_below() {
        let (sealed, texts) = SealedKek::seal_with_shares(&KEK, 3, 5).unwrap();
        let sealed = SealedKek::parse(&sealed.to_text()).unwrap();
        let kek = sealed
            .open_with_shares(&shares_of(&texts, &sealed, &[4, 0, 2]))
            .unwrap()
            .keks
            .remove(0);
        assert_eq!(kek.id(), Kek::from_bytes(&KEK).unwrap().id());
        assert_eq!(sealed.kek_id, kek.id());
        assert!(matches!(
            sealed.open_with_shares(&shares_of(&texts, &sealed, &[1, 3])),
            Err(CryptoError::Unseal(_))
        ));
    }

    #[test]
    fn damaged_foreign_and_forged_shares_are_named() {
        let (sealed, texts) = SealedKek::seal_with_shares(&KEK, 2, 3).unwrap();
        let (_, other) = SealedKek::seal_with_shares(&KEK, 2, 3).unwrap();
        let mut typo = texts[0].0.to_string();
        let pos = typo.len() - 20;
        let c = if &typo[pos..pos + 1] == "0" { "1" } else { "0" };
        typo.replace_range(pos..pos + 1, c);
        let err = sealed.check_share(&typo).err().unwrap().to_string();
        assert!(err.contains("checksum"), "{err}");
        let err = sealed.check_share(&other[0].0).err().unwrap().to_string();
        assert!(err.contains("another"), "{err}");
        assert!(sealed.check_share("hello").is_err());
        assert!(sealed.open_with_passphrase(b"whatever passphrase").is_err());
    }

    #[test]
    fn an_edited_header_fails_to_open() {
        let (sealed, texts) = SealedKek::seal_with_shares(&KEK, 3, 5).unwrap();
        let text = sealed.to_text().replace("threshold 3", "threshold 2");
        let edited = SealedKek::parse(&text).unwrap();
        let shares = shares_of(&texts, &edited, &[0, 1]);
        assert!(matches!(
            edited.open_with_shares(&shares),
            Err(CryptoError::Unseal(_))
        ));
    }

    #[test]
    #[cfg_attr(
        feature = "fips",
        ignore = "Argon2id sealing is refused in the FIPS build"
    )]
    fn passphrase_round_trip_and_wrong_passphrase() {
        let params = Argon2Params::MINIMUM;
        let sealed =
            SealedKek::seal_with_passphrase(&KEK, b"correct horse battery", params).unwrap();
        let sealed = SealedKek::parse(&sealed.to_text()).unwrap();
        let kek = sealed
            .open_with_passphrase(b"correct horse battery")
            .unwrap()
            .keks
            .remove(0);
        assert_eq!(kek.id(), sealed.kek_id);
        assert!(matches!(
            sealed.open_with_passphrase(b"correct horse battery!"),
            Err(CryptoError::Unseal(_))
        ));
        assert!(SealedKek::seal_with_passphrase(&KEK, b"short", params).is_err());
        assert!(sealed.check_share("x").is_err());
    }

    #[test]
    fn malformed_files_are_refused() {
        for text in [
            "",
            "hello\nnonce 00\n",
            "akm-sealed-kek v1\nkek-id x\nscheme shares\nthreshold 9\nset a\nnonce 00\n",
            "akm-sealed-kek v1\nkek-id x\nscheme passphrase\nargon2id m=99999999999 t=1 p=1\nsalt 00\nnonce 000000000000000000000000\nciphertext 00\n",
            "akm-sealed-kek v1\nbogus line\nnonce 00\n",
        ] {
            assert!(SealedKek::parse(text).is_err(), "{text:?}");
        }
    }
}
