//! TTLV: the KMIP binary encoding. Owns the item model, the tag type and its generated
//! constants, the infallible encoder and the bounded decoder. Knows nothing of KMIP semantics
//! and does no I/O: the server hands it complete frames whose length it has already checked
//! with [`frame_length`].

mod decode;
mod tags;

pub use decode::{decode, frame_length, DecodeError, Limits};
pub use tags::TAG_TABLE;

use std::fmt;
use zeroize::Zeroizing;

/// A TTLV tag (3 bytes on the wire). Unknown tags round-trip and print in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

impl Tag {
    /// The spec name of this tag, if it is a known KMIP tag.
    pub fn name(self) -> Option<&'static str> {
        TAG_TABLE
            .binary_search_by_key(&self.0, |(value, _, _)| *value)
            .ok()
            .map(|i| TAG_TABLE[i].1)
    }

    /// The tag whose spec name is `name` ("Cryptographic Algorithm"), used for 1.x attribute names.
    pub fn from_name(name: &str) -> Option<Tag> {
        TAG_TABLE
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(value, _, _)| Tag(*value))
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "Tag(0x{:06X})", self.0),
        }
    }
}

/// TTLV item type codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ItemType {
    /// 0x01
    Structure = 0x01,
    /// 0x02
    Integer = 0x02,
    /// 0x03
    LongInteger = 0x03,
    /// 0x04
    BigInteger = 0x04,
    /// 0x05
    Enumeration = 0x05,
    /// 0x06
    Boolean = 0x06,
    /// 0x07
    TextString = 0x07,
    /// 0x08
    ByteString = 0x08,
    /// 0x09
    DateTime = 0x09,
    /// 0x0A
    Interval = 0x0A,
    /// 0x0B (KMIP 2.x)
    DateTimeExtended = 0x0B,
}

impl ItemType {
    /// The item type for a wire code, if it is one.
    pub fn from_code(code: u8) -> Option<ItemType> {
        use ItemType::*;
        Some(match code {
            0x01 => Structure,
            0x02 => Integer,
            0x03 => LongInteger,
            0x04 => BigInteger,
            0x05 => Enumeration,
            0x06 => Boolean,
            0x07 => TextString,
            0x08 => ByteString,
            0x09 => DateTime,
            0x0A => Interval,
            0x0B => DateTimeExtended,
            _ => return None,
        })
    }
}

/// The value of a TTLV item. Byte strings are wiped on drop (they carry key material) and
/// never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// Ordered children.
    Structure(Vec<Ttlv>),
    /// Signed 32-bit integer.
    Integer(i32),
    /// Signed 64-bit integer.
    LongInteger(i64),
    /// Big-endian two's complement, length a multiple of 8 bytes.
    BigInteger(Zeroizing<Vec<u8>>),
    /// Unsigned 32-bit enumeration value.
    Enumeration(u32),
    /// Boolean.
    Boolean(bool),
    /// UTF-8 text.
    TextString(String),
    /// Opaque bytes.
    ByteString(Zeroizing<Vec<u8>>),
    /// Seconds since the Unix epoch.
    DateTime(i64),
    /// Seconds.
    Interval(u32),
    /// Microseconds since the Unix epoch (KMIP 2.x).
    DateTimeExtended(i64),
}

impl Value {
    /// The wire item type of this value.
    pub fn item_type(&self) -> ItemType {
        match self {
            Value::Structure(_) => ItemType::Structure,
            Value::Integer(_) => ItemType::Integer,
            Value::LongInteger(_) => ItemType::LongInteger,
            Value::BigInteger(_) => ItemType::BigInteger,
            Value::Enumeration(_) => ItemType::Enumeration,
            Value::Boolean(_) => ItemType::Boolean,
            Value::TextString(_) => ItemType::TextString,
            Value::ByteString(_) => ItemType::ByteString,
            Value::DateTime(_) => ItemType::DateTime,
            Value::Interval(_) => ItemType::Interval,
            Value::DateTimeExtended(_) => ItemType::DateTimeExtended,
        }
    }

    /// The length of this value's encoding after an item header, padding included: what
    /// [`Ttlv::encode`] would write for it, computed without encoding (size limits use it).
    pub fn encoded_len(&self) -> usize {
        let body = match self {
            Value::Structure(children) => return children.iter().map(Ttlv::encoded_len).sum(),
            Value::Integer(_) | Value::Enumeration(_) | Value::Interval(_) => 4,
            Value::LongInteger(_)
            | Value::DateTime(_)
            | Value::DateTimeExtended(_)
            | Value::Boolean(_) => 8,
            Value::BigInteger(b) | Value::ByteString(b) => b.len(),
            Value::TextString(s) => s.len(),
        };
        body + padding(body)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Structure(children) => f.debug_list().entries(children).finish(),
            Value::Integer(v) => write!(f, "Integer({v})"),
            Value::LongInteger(v) => write!(f, "LongInteger({v})"),
            Value::BigInteger(b) => write!(f, "BigInteger(<{} bytes>)", b.len()),
            Value::Enumeration(v) => write!(f, "Enumeration(0x{v:08X})"),
            Value::Boolean(v) => write!(f, "Boolean({v})"),
            Value::TextString(s) => write!(f, "TextString({s:?})"),
            Value::ByteString(b) => write!(f, "ByteString(<{} bytes>)", b.len()),
            Value::DateTime(v) => write!(f, "DateTime({v})"),
            Value::Interval(v) => write!(f, "Interval({v})"),
            Value::DateTimeExtended(v) => write!(f, "DateTimeExtended({v})"),
        }
    }
}

/// One TTLV item: a tag and a value.
#[derive(Clone, PartialEq, Eq)]
pub struct Ttlv {
    /// The item's tag.
    pub tag: Tag,
    /// The item's value (its type is implied).
    pub value: Value,
}

impl fmt::Debug for Ttlv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:?}", self.tag, self.value)
    }
}

impl Ttlv {
    /// An item from its parts.
    pub fn new(tag: Tag, value: Value) -> Ttlv {
        Ttlv { tag, value }
    }
    /// A structure.
    pub fn structure(tag: Tag, children: Vec<Ttlv>) -> Ttlv {
        Ttlv::new(tag, Value::Structure(children))
    }
    /// An integer.
    pub fn integer(tag: Tag, v: i32) -> Ttlv {
        Ttlv::new(tag, Value::Integer(v))
    }
    /// A long integer.
    pub fn long(tag: Tag, v: i64) -> Ttlv {
        Ttlv::new(tag, Value::LongInteger(v))
    }
    /// An enumeration.
    pub fn enumeration(tag: Tag, v: u32) -> Ttlv {
        Ttlv::new(tag, Value::Enumeration(v))
    }
    /// A boolean.
    pub fn boolean(tag: Tag, v: bool) -> Ttlv {
        Ttlv::new(tag, Value::Boolean(v))
    }
    /// A text string.
    pub fn text(tag: Tag, v: impl Into<String>) -> Ttlv {
        Ttlv::new(tag, Value::TextString(v.into()))
    }
    /// A byte string.
    pub fn bytes(tag: Tag, v: impl Into<Vec<u8>>) -> Ttlv {
        Ttlv::new(tag, Value::ByteString(Zeroizing::new(v.into())))
    }
    /// A date-time (seconds since the epoch).
    pub fn datetime(tag: Tag, v: i64) -> Ttlv {
        Ttlv::new(tag, Value::DateTime(v))
    }
    /// An interval (seconds).
    pub fn interval(tag: Tag, v: u32) -> Ttlv {
        Ttlv::new(tag, Value::Interval(v))
    }

    /// Children of a structure; empty for any other type.
    pub fn children(&self) -> &[Ttlv] {
        match &self.value {
            Value::Structure(c) => c,
            _ => &[],
        }
    }
    /// The first child with `tag`.
    pub fn child(&self, tag: Tag) -> Option<&Ttlv> {
        self.children().iter().find(|c| c.tag == tag)
    }
    /// Every child with `tag`, in order.
    pub fn children_with(&self, tag: Tag) -> impl Iterator<Item = &Ttlv> {
        self.children().iter().filter(move |c| c.tag == tag)
    }
    /// The value as text, if it is a Text String.
    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::TextString(s) => Some(s),
            _ => None,
        }
    }
    /// The value as an enumeration.
    pub fn as_enum(&self) -> Option<u32> {
        match self.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        }
    }
    /// The value as an integer.
    pub fn as_int(&self) -> Option<i32> {
        match self.value {
            Value::Integer(v) => Some(v),
            _ => None,
        }
    }
    /// The value as a long integer.
    pub fn as_long(&self) -> Option<i64> {
        match self.value {
            Value::LongInteger(v) => Some(v),
            _ => None,
        }
    }
    /// The value as a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Boolean(v) => Some(v),
            _ => None,
        }
    }
    /// The value as bytes, if it is a Byte String.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::ByteString(b) => Some(b),
            _ => None,
        }
    }
    /// The value as a date-time in seconds (Date-Time Extended is truncated to seconds).
    pub fn as_datetime(&self) -> Option<i64> {
        match self.value {
            Value::DateTime(v) => Some(v),
            Value::DateTimeExtended(v) => Some(v.div_euclid(1_000_000)),
            _ => None,
        }
    }

    /// Appends this item's encoding to `out`. Encoding cannot fail.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tag.0.to_be_bytes()[1..]);
        out.push(self.value.item_type() as u8);
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let body_at = out.len();
        match &self.value {
            Value::Structure(children) => children.iter().for_each(|c| c.encode_into(out)),
            Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Enumeration(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::LongInteger(v) | Value::DateTime(v) | Value::DateTimeExtended(v) => {
                out.extend_from_slice(&v.to_be_bytes())
            }
            Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
            Value::BigInteger(b) | Value::ByteString(b) => out.extend_from_slice(b),
            Value::TextString(s) => out.extend_from_slice(s.as_bytes()),
        }
        let len = out.len() - body_at;
        // A structure larger than 4 GiB cannot be built from decoded input (frames are capped);
        // saturating keeps encoding infallible for locally built values too.
        let wire_len = u32::try_from(len).unwrap_or(u32::MAX);
        out[len_at..body_at].copy_from_slice(&wire_len.to_be_bytes());
        out.resize(out.len() + padding(len), 0);
    }

    /// The length of this item's encoding (header, value and padding), without encoding it.
    pub fn encoded_len(&self) -> usize {
        8 + self.value.encoded_len()
    }

    /// This item's encoding as a new buffer, allocated once at its exact size: a growing
    /// buffer would leave freed, unwiped copies of any key bytes it holds.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        debug_assert_eq!(out.len(), out.capacity());
        out
    }
}

/// Padding bytes after a value of `len` bytes (values are aligned to 8 bytes).
pub(crate) fn padding(len: usize) -> usize {
    (8 - len % 8) % 8
}

#[cfg(test)]
mod tests;
