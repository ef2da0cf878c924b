//! The backup file: a text header naming the backup, the KEK and the data key wrapped under
//! it, then the database snapshot in AES-256-GCM chunks. Each chunk's nonce is its counter and
//! a last-chunk flag, and its associated data the header's SHA-256 with the same counter and
//! flag, so a reordered, dropped, truncated, appended-to or edited file fails to decrypt. A
//! fresh random data key per backup makes the counter nonces safe. Reading is bounded: the
//! header and each chunk have a maximum size checked before allocating.

use crate::crypto::backend::gcm::{Aes256Gcm, Payload};
use crate::crypto::slot::KekSlot;
use crate::crypto::{random_bytes, sha256, Wrapped};
use std::io::{Read, Write};
use zeroize::Zeroizing;

const MAGIC: &str = "akm-backup v1";
/// Plaintext bytes per chunk.
pub const CHUNK_BYTES: usize = 64 * 1024;
const MAX_HEADER: usize = 4096;
const TAG_LEN: usize = 16;

/// Why a backup file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is not an akm backup, or it was damaged, truncated or tampered with.
    #[error("the backup file is damaged or tampered with: {0}")]
    Corrupt(&'static str),
    /// The KEK at hand is not the one the backup was made under.
    #[error("the backup was made under KEK {backup}, this node has KEK {node}")]
    WrongKek {
        /// The backup's KEK id.
        backup: String,
        /// The node's.
        node: String,
    },
    /// The KEK is sealed or failed.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

/// What the header says.
#[derive(Clone, Debug)]
pub struct Header {
    /// Random identifier of this backup.
    pub backup_id: String,
    /// Seconds since the epoch.
    pub created: i64,
    /// The KEK the data key is wrapped under.
    pub kek_id: String,
    wrapped: Wrapped,
    text: String,
}

fn key_uid(backup_id: &str) -> String {
    format!("backup/{backup_id}")
}

fn chunk_nonce(counter: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

fn chunk_aad(header_digest: &[u8], counter: u64, last: bool) -> Vec<u8> {
    let mut aad = header_digest.to_vec();
    aad.extend_from_slice(&counter.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Why the FIPS build writes no backup (`crypto::backend::outside_module`).
pub const WRITING_REFUSED: &str =
    "writing a backup (its AES-GCM chunk nonces are a counter, not module-generated IVs)";

/// Refuses in the FIPS build, which writes no backup: its chunk nonces are a deterministic
/// counter construction, and the module approves AES-GCM encryption only under IVs it
/// generates. Restoring (decryption) works in both builds.
pub fn writable() -> Result<(), FormatError> {
    crate::crypto::backend::outside_module(WRITING_REFUSED).map_err(|refused| {
        FormatError::Crypto(crate::crypto::CryptoError::Sealed(refused.to_string()))
    })
}

/// Encrypts `input` (a snapshot) into `out` under a fresh data key wrapped by `kek`.
pub fn encrypt(
    kek: &KekSlot,
    created: i64,
    input: &mut impl Read,
    out: &mut impl Write,
) -> Result<Header, FormatError> {
    writable()?;
    let backup_id = hex::encode(random_bytes(8).as_slice());
    let data_key = random_bytes(32);
    let wrapped = kek.wrap(&key_uid(&backup_id), 0, &data_key)?;
    let text = format!(
        "{MAGIC}\nbackup-id {backup_id}\ncreated {created}\nkek-id {}\nkey-nonce {}\nkey-ciphertext {}\n\n",
        wrapped.kek_id,
        hex::encode(&wrapped.nonce),
        hex::encode(&wrapped.ciphertext)
    );
    out.write_all(text.as_bytes())?;
    let digest = sha256(text.as_bytes());
    let cipher = Aes256Gcm::new_from_slice(&data_key).map_err(|_| FormatError::Corrupt("key"))?;
    let mut buf = Zeroizing::new(vec![0u8; CHUNK_BYTES]);
    let mut next = Zeroizing::new(vec![0u8; CHUNK_BYTES]);
    let mut len = read_full(input, &mut buf)?;
    let mut counter = 0u64;
    loop {
        // Read ahead one chunk so the last one is known and flagged.
        let next_len = if len == CHUNK_BYTES {
            read_full(input, &mut next)?
        } else {
            0
        };
        let last = next_len == 0;
        let ct = cipher
            .encrypt(
                &chunk_nonce(counter, last),
                Payload {
                    msg: &buf[..len],
                    aad: &chunk_aad(&digest, counter, last),
                },
            )
            .map_err(|_| FormatError::Corrupt("encryption"))?;
        out.write_all(&(ct.len() as u32).to_be_bytes())?;
        out.write_all(&ct)?;
        if last {
            break;
        }
        std::mem::swap(&mut buf, &mut next);
        len = next_len;
        counter += 1;
    }
    out.flush()?;
    Ok(Header {
        kek_id: wrapped.kek_id.clone(),
        backup_id,
        created,
        wrapped,
        text,
    })
}

/// Reads and parses the header (at most 4 KiB).
pub fn read_header(input: &mut impl Read) -> Result<Header, FormatError> {
    let mut text = Vec::new();
    let mut byte = [0u8; 1];
    while !text.ends_with(b"\n\n") {
        if text.len() >= MAX_HEADER || input.read(&mut byte)? == 0 {
            return Err(FormatError::Corrupt("no backup header"));
        }
        text.push(byte[0]);
    }
    let text = String::from_utf8(text).map_err(|_| FormatError::Corrupt("header is not text"))?;
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(FormatError::Corrupt("not an akm backup file"));
    }
    let mut field = |name: &str| -> Result<String, FormatError> {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|v| v.strip_prefix(' '))
            .map(str::to_owned)
            .ok_or(FormatError::Corrupt("malformed header"))
    };
    let backup_id = field("backup-id")?;
    let created = field("created")?
        .parse()
        .map_err(|_| FormatError::Corrupt("malformed header"))?;
    let kek_id = field("kek-id")?;
    let nonce =
        hex::decode(field("key-nonce")?).map_err(|_| FormatError::Corrupt("malformed header"))?;
    let ciphertext = hex::decode(field("key-ciphertext")?)
        .map_err(|_| FormatError::Corrupt("malformed header"))?;
    Ok(Header {
        wrapped: Wrapped {
            kek_id: kek_id.clone(),
            nonce,
            ciphertext,
        },
        backup_id,
        created,
        kek_id,
        text,
    })
}

/// Decrypts the chunks after `header` from `input` into `out`, authenticating every one and
/// the end of the file; `progress` gets the ciphertext bytes consumed so far.
pub fn decrypt(
    kek: &KekSlot,
    header: &Header,
    input: &mut impl Read,
    out: &mut impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<(), FormatError> {
    // A backup from before a KEK rotation opens with the archived KEK a restore adds.
    if let Some(node) = kek.id().filter(|_| !kek.holds(&header.kek_id)) {
        return Err(FormatError::WrongKek {
            backup: header.kek_id.clone(),
            node,
        });
    }
    let data_key = kek
        .unwrap(&key_uid(&header.backup_id), 0, &header.wrapped)
        .map_err(|_| FormatError::Corrupt("the data key does not unwrap"))?;
    let cipher = Aes256Gcm::new_from_slice(&data_key).map_err(|_| FormatError::Corrupt("key"))?;
    let digest = sha256(header.text.as_bytes());
    let mut consumed = header.text.len() as u64;
    let mut ct = vec![0u8; CHUNK_BYTES + TAG_LEN];
    for counter in 0u64.. {
        let mut len = [0u8; 4];
        if read_full(input, &mut len)? != 4 {
            return Err(FormatError::Corrupt("truncated: the last chunk is missing"));
        }
        let len = u32::from_be_bytes(len) as usize;
        if !(TAG_LEN..=CHUNK_BYTES + TAG_LEN).contains(&len) {
            return Err(FormatError::Corrupt("bad chunk length"));
        }
        if read_full(input, &mut ct[..len])? != len {
            return Err(FormatError::Corrupt("truncated chunk"));
        }
        consumed += 4 + len as u64;
        // A chunk opens either as a middle chunk or as the last one; try the flag its size
        // suggests first.
        let open = |last: bool| {
            cipher
                .decrypt(
                    &chunk_nonce(counter, last),
                    Payload {
                        msg: &ct[..len],
                        aad: &chunk_aad(&digest, counter, last),
                    },
                )
                .ok()
                .map(|p| (Zeroizing::new(p), last))
        };
        let likely_last = len < CHUNK_BYTES + TAG_LEN;
        let (plain, last) = open(likely_last)
            .or_else(|| open(!likely_last))
            .ok_or(FormatError::Corrupt("a chunk fails to authenticate"))?;
        out.write_all(&plain)?;
        progress(consumed);
        if last {
            let mut extra = [0u8; 1];
            if input.read(&mut extra)? != 0 {
                return Err(FormatError::Corrupt("bytes after the last chunk"));
            }
            return Ok(());
        }
    }
    Err(FormatError::Corrupt("too many chunks"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Kek;

    fn slot(b: u8) -> KekSlot {
        KekSlot::from(Kek::from_bytes(&[b; 32]).unwrap())
    }

    fn round_trip(kek: &KekSlot, file: &[u8]) -> Result<Vec<u8>, FormatError> {
        let mut input = file;
        let header = read_header(&mut input)?;
        let mut out = Vec::new();
        decrypt(kek, &header, &mut input, &mut out, &mut |_| {})?;
        Ok(out)
    }

    fn backup_of(kek: &KekSlot, data: &[u8]) -> Vec<u8> {
        let mut file = Vec::new();
        encrypt(kek, 1, &mut &data[..], &mut file).unwrap();
        file
    }

    #[test]
    fn sizes_round_trip_including_chunk_boundaries() {
        let kek = slot(1);
        for size in [
            0,
            1,
            CHUNK_BYTES - 1,
            CHUNK_BYTES,
            CHUNK_BYTES + 1,
            3 * CHUNK_BYTES,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
            let file = backup_of(&kek, &data);
            assert_eq!(round_trip(&kek, &file).unwrap(), data, "size {size}");
        }
    }

    #[test]
    fn every_flipped_byte_truncation_and_extension_is_refused() {
        let kek = slot(2);
        let data: Vec<u8> = (0..CHUNK_BYTES + 100).map(|i| i as u8).collect();
        let file = backup_of(&kek, &data);
        // Every header byte and a spread of body bytes.
        let positions = (0..300)
            .chain((300..file.len()).step_by(997))
            .chain([file.len() - 1]);
        for pos in positions {
            let mut bad = file.clone();
            bad[pos] ^= 0x01;
            assert!(round_trip(&kek, &bad).is_err(), "flip at {pos} accepted");
        }
        for cut in [10, 200, file.len() - CHUNK_BYTES, file.len() - 1] {
            assert!(
                round_trip(&kek, &file[..cut]).is_err(),
                "cut at {cut} accepted"
            );
        }
        // Dropping the last chunk leaves a file ending in a middle chunk.
        let header_len = read_header(&mut &file[..]).unwrap().text.len();
        let first = header_len + 4 + CHUNK_BYTES + TAG_LEN;
        assert!(round_trip(&kek, &file[..first]).is_err());
        let mut longer = file.clone();
        longer.push(0);
        assert!(round_trip(&kek, &longer).is_err());
    }

    #[test]
    fn another_kek_is_named() {
        let file = backup_of(&slot(3), b"data");
        let err = round_trip(&slot(4), &file).unwrap_err();
        assert!(matches!(err, FormatError::WrongKek { .. }), "{err}");
    }

    #[test]
    fn a_hostile_chunk_length_is_refused_before_allocating() {
        let kek = slot(5);
        let file = backup_of(&kek, b"x");
        let header_len = read_header(&mut &file[..]).unwrap().text.len();
        let mut bad = file.clone();
        bad[header_len..header_len + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = round_trip(&kek, &bad).unwrap_err().to_string();
        assert!(err.contains("chunk length"), "{err}");
        let long_header = vec![b'a'; 10_000];
        assert!(read_header(&mut &long_header[..]).is_err());
    }
}
