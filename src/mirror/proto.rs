//! The mirror protocol: JSON messages in frames of a 4-byte big-endian length and the body,
//! over the mutual-TLS mirror connection. The length is checked against [`MAX_FRAME`] before
//! anything is allocated; frame buffers are wiped after use because object messages carry key
//! material in the clear (inside TLS only). Not KMIP.
//!
//! A conversation: the pushing node sends `Hello`; the receiving node answers `Welcome` with
//! the last sequence number it applied from the pusher; the pusher then sends `Change`s (or a
//! snapshot: `Snapshot` objects and `SnapshotEnd`) and `Ping`s, each answered by an `Ack`.

use crate::settings_digest::SettingsDigest;
use serde::{Deserialize, Serialize};
use std::fmt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::{Zeroize, Zeroizing};

/// The protocol version this build speaks (2: hellos carry the settings digest and head;
/// revocation records).
pub const PROTOCOL: u32 = 2;

/// The largest frame accepted (an object with its attributes and key material).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// A frame announced more than [`MAX_FRAME`] bytes.
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// The body is not a message of this protocol.
    #[error("malformed message: {0}")]
    Malformed(#[source] serde_json::Error),
}

/// Key material in transit: wiped on drop, never printed. On the wire it is a hex string,
/// encoded into and decoded from buffers of exactly the right size, so no growing buffer
/// leaves copies of key bytes behind.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hex = Zeroizing::new(hex::encode(&self.0));
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        struct HexVisitor;
        impl serde::de::Visitor<'_> for HexVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("key material as a hex string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                let mut out = Secret(vec![0u8; v.len() / 2]);
                hex::decode_to_slice(v, &mut out.0)
                    .map_err(|_| E::custom("key material is not hex"))?;
                Ok(out)
            }
        }
        d.deserialize_str(HexVisitor)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// An object as it travels: its row, its plaintext material (if any) and its stamp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireObject {
    /// Unique Identifier.
    pub uid: String,
    /// Object Type.
    pub object_type: u32,
    /// State.
    pub state: u32,
    /// Owner CN.
    pub owner: String,
    /// Owner group (access control).
    pub owner_group: Option<String>,
    /// Access mode (access control).
    pub access_mode: String,
    /// Cryptographic Algorithm.
    pub algorithm: Option<u32>,
    /// Cryptographic Length.
    pub length: Option<i32>,
    /// Initial Date.
    pub initial_date: i64,
    /// Activation Date.
    pub activation_date: Option<i64>,
    /// Deactivation Date.
    pub deactivation_date: Option<i64>,
    /// Last Change Date.
    pub last_change: i64,
    /// Key material version.
    pub key_version: i64,
    /// Names.
    pub names: Vec<String>,
    /// Object Groups.
    pub groups: Vec<String>,
    /// TTLV-encoded attributes.
    pub attributes: Vec<u8>,
    /// The key material, unwrapped by the sender, re-wrapped by the receiver.
    pub material: Option<Secret>,
    /// Stamp: hybrid logical clock.
    pub hlc: i64,
    /// Stamp: the node that made this version.
    pub node: String,
}

/// A user or group record's columns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRecord {
    /// Enabled.
    pub enabled: bool,
    /// Granted operations, as stored.
    pub operations: String,
}

/// What a change carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Item {
    /// The object's current version.
    Object(Box<WireObject>),
    /// A user or group record (access control).
    Account {
        /// `user` or `group`.
        entity: String,
        /// The user's or group's name.
        name: String,
        /// Its columns; `None` when it was deleted.
        record: Option<AccountRecord>,
        /// Stamp clock.
        hlc: i64,
        /// Stamp node.
        node: String,
    },
    /// A revoked client certificate (only ever added; see `store::CertRevocation`).
    Revocation {
        /// The issuer's distinguished name.
        issuer: String,
        /// The serial number, lower-case hex.
        serial: String,
        /// The CRL's reason.
        reason: String,
        /// When it was revoked, seconds since the epoch.
        revoked_at: i64,
        /// Stamp clock.
        hlc: i64,
        /// Stamp node.
        node: String,
    },
    /// The object was deleted (a batch undone).
    Deleted {
        /// Unique Identifier.
        uid: String,
        /// Stamp clock.
        hlc: i64,
        /// Stamp node.
        node: String,
    },
}

/// A protocol message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case", deny_unknown_fields)]
pub enum Msg {
    /// Pusher → receiver: who I am.
    Hello {
        /// Protocol version.
        proto: u32,
        /// The pusher's node id.
        node: String,
        /// The pusher's security settings digest (the receiver refuses a different one).
        #[serde(default)]
        settings: SettingsDigest,
        /// The pusher's newest sequence number.
        #[serde(default)]
        head: i64,
    },
    /// Receiver → pusher: accepted; resume after `applied`.
    Welcome {
        /// Protocol version.
        proto: u32,
        /// The receiver's node id.
        node: String,
        /// The last of the pusher's sequence numbers the receiver applied.
        applied: i64,
        /// The receiver's security settings digest (the pusher checks it too).
        #[serde(default)]
        settings: SettingsDigest,
        /// The receiver's newest sequence number.
        #[serde(default)]
        head: i64,
    },
    /// Receiver → pusher: not accepted, and why.
    Refused {
        /// The reason.
        reason: String,
        /// The receiver's settings digest, when the settings differ (so the pusher can say
        /// which sections).
        #[serde(default)]
        settings: Option<SettingsDigest>,
    },
    /// Pusher → receiver: one change-log entry.
    Change {
        /// The pusher's sequence number of the entry.
        seq: i64,
        /// The pusher's newest sequence number (so the receiver knows its lag).
        head: i64,
        /// The object's current version.
        item: Item,
    },
    /// Pusher → receiver: an object of a snapshot (no sequence number of its own).
    Snapshot {
        /// The object's current version.
        item: Item,
    },
    /// Pusher → receiver: the snapshot is complete up to `upto`.
    SnapshotEnd {
        /// The pusher's sequence number the snapshot covers.
        upto: i64,
    },
    /// Pusher → receiver: keep-alive, carrying the pusher's head and how far the receiver is
    /// complete (everything up to `done` was acknowledged or is not for it: changes the
    /// pusher applied from other peers are not pushed).
    Ping {
        /// The pusher's newest sequence number.
        head: i64,
        /// The receiver has everything of the pusher's up to here.
        done: i64,
    },
    /// Receiver → pusher: everything up to `seq` is durably applied.
    Ack {
        /// The sequence number.
        seq: i64,
    },
}

/// Counts the bytes an encoding would take, so the frame buffer can be allocated once.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The longest one frame may take to leave: a peer that stops reading fails the write (and
/// the link reconnects) instead of holding the pusher forever.
pub const WRITE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Writes one message as a frame, within [`WRITE_LIMIT`]. The frame is encoded into a buffer
/// of its exact size (no reallocation copies key bytes around) and wiped afterwards.
pub async fn write_msg<W: AsyncWrite + Unpin>(w: &mut W, msg: &Msg) -> Result<(), ProtoError> {
    let mut size = Counter(0);
    serde_json::to_writer(&mut size, msg).map_err(ProtoError::Malformed)?;
    let len = size.0;
    if len > MAX_FRAME {
        return Err(ProtoError::TooLarge(len));
    }
    let mut frame = Zeroizing::new(Vec::with_capacity(4 + len));
    frame.extend_from_slice(&(len as u32).to_be_bytes());
    serde_json::to_writer(&mut *frame, msg).map_err(ProtoError::Malformed)?;
    let sent = tokio::time::timeout(WRITE_LIMIT, async {
        w.write_all(&frame).await?;
        w.flush().await
    })
    .await;
    match sent {
        Ok(done) => Ok(done?),
        Err(_) => Err(ProtoError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the peer took no data for 30 s",
        ))),
    }
}

/// Reads one frame and decodes it; the length is checked before allocating.
pub async fn read_msg<R: AsyncRead + Unpin>(r: &mut R) -> Result<Msg, ProtoError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ProtoError::TooLarge(len));
    }
    let mut body = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut body).await?;
    decode(&body)
}

/// Decodes a frame body.
pub fn decode(body: &[u8]) -> Result<Msg, ProtoError> {
    serde_json::from_slice(body).map_err(ProtoError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_bad_frames_are_refused() {
        let msg = Msg::Change {
            seq: 7,
            head: 9,
            item: Item::Deleted {
                uid: "u".into(),
                hlc: 1,
                node: "a".into(),
            },
        };
        let mut buf = Vec::new();
        write_msg(&mut buf, &msg).await.unwrap();
        assert_eq!(read_msg(&mut buf.as_slice()).await.unwrap(), msg);

        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert!(matches!(
            read_msg(&mut &huge[..]).await,
            Err(ProtoError::TooLarge(_))
        ));
        let mut junk = 5u32.to_be_bytes().to_vec();
        junk.extend_from_slice(b"{nope");
        assert!(matches!(
            read_msg(&mut junk.as_slice()).await,
            Err(ProtoError::Malformed(_))
        ));
        let unknown = br#"{"t":"hello","proto":2,"node":"a","extra":1}"#;
        assert!(decode(unknown).is_err());
        let short = [0u8, 0, 0, 9, b'{'];
        assert!(matches!(
            read_msg(&mut &short[..]).await,
            Err(ProtoError::Io(_))
        ));
    }

    #[test]
    fn objects_round_trip() {
        let obj = WireObject {
            uid: "u".into(),
            object_type: 2,
            state: 2,
            owner: "o".into(),
            owner_group: Some("g".into()),
            access_mode: "group".into(),
            algorithm: Some(3),
            length: None,
            initial_date: 1,
            activation_date: Some(2),
            deactivation_date: None,
            last_change: 3,
            key_version: 1,
            names: vec!["n".into()],
            groups: vec![],
            attributes: vec![1, 2],
            material: Some(Secret(vec![9; 32])),
            hlc: 5,
            node: "a".into(),
        };
        let msg = Msg::Snapshot {
            item: Item::Object(Box::new(obj)),
        };
        let body = serde_json::to_vec(&msg).unwrap();
        assert_eq!(decode(&body).unwrap(), msg);
    }

    #[test]
    fn secrets_do_not_print_and_travel_as_hex() {
        assert_eq!(format!("{:?}", Secret(vec![1, 2, 3])), "Secret(3 bytes)");
        assert_eq!(
            serde_json::to_string(&Secret(vec![1, 0xab])).unwrap(),
            "\"01ab\""
        );
        let s: Secret = serde_json::from_str("\"01ab\"").unwrap();
        assert_eq!(s.0, vec![1, 0xab]);
        assert!(serde_json::from_str::<Secret>("\"0g\"").is_err());
        assert!(serde_json::from_str::<Secret>("\"abc\"").is_err());
        assert!(serde_json::from_str::<Secret>("[1,2]").is_err());
    }
}
