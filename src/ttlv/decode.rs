//! The bounded TTLV decoder. Every length is checked against the bytes that remain before
//! anything is allocated or sliced, fixed-size types must have their exact length, padding must
//! be zero, text must be UTF-8, nesting is capped and trailing bytes are rejected. Any input
//! gives a value or an error, never a panic.

use super::{padding, ItemType, Tag, Ttlv, Value};
use std::fmt;
use zeroize::Zeroizing;

/// Decoder limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest whole message (header included) accepted, in bytes.
    pub max_message_bytes: usize,
    /// Deepest structure nesting accepted (the outer message is depth 1).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// Why a TTLV buffer could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than an item header or its declared length needs.
    Truncated {
        /// Byte offset of the item.
        offset: usize,
    },
    /// The message is larger than the configured limit.
    TooLarge {
        /// Declared size in bytes.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// An item type byte that TTLV does not define.
    UnknownType {
        /// Byte offset of the item.
        offset: usize,
        /// The type byte.
        code: u8,
    },
    /// A fixed-size type with the wrong length, or a Big Integer not a multiple of 8.
    BadLength {
        /// Byte offset of the item.
        offset: usize,
        /// The item's type.
        item_type: ItemType,
        /// The declared length.
        len: u32,
    },
    /// Padding bytes that are not zero.
    NonZeroPadding {
        /// Byte offset of the item.
        offset: usize,
    },
    /// A Boolean whose value is neither 0 nor 1.
    BadBoolean {
        /// Byte offset of the item.
        offset: usize,
    },
    /// A Text String that is not UTF-8.
    BadUtf8 {
        /// Byte offset of the item.
        offset: usize,
    },
    /// Structures nested deeper than the limit.
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// Bytes left after the top-level item.
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { offset } => write!(f, "item at offset {offset} is truncated"),
            DecodeError::TooLarge { size, limit } => {
                write!(f, "message of {size} bytes exceeds the {limit}-byte limit")
            }
            DecodeError::UnknownType { offset, code } => {
                write!(f, "unknown item type 0x{code:02X} at offset {offset}")
            }
            DecodeError::BadLength {
                offset,
                item_type,
                len,
            } => write!(
                f,
                "{item_type:?} at offset {offset} has invalid length {len}"
            ),
            DecodeError::NonZeroPadding { offset } => {
                write!(f, "non-zero padding in item at offset {offset}")
            }
            DecodeError::BadBoolean { offset } => {
                write!(f, "boolean at offset {offset} is neither 0 nor 1")
            }
            DecodeError::BadUtf8 { offset } => {
                write!(f, "text string at offset {offset} is not UTF-8")
            }
            DecodeError::TooDeep { limit } => write!(f, "structures nested deeper than {limit}"),
            DecodeError::TrailingBytes { count } => {
                write!(f, "{count} bytes after the end of the message")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Reads a message's 8-byte header and returns the whole message length (header included),
/// checked against the limit before the caller allocates anything. The top item must be a
/// Structure; anything else means the framing is broken.
pub fn frame_length(header: &[u8; 8], limits: &Limits) -> Result<usize, DecodeError> {
    if header[3] != ItemType::Structure as u8 {
        return Err(DecodeError::UnknownType {
            offset: 0,
            code: header[3],
        });
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let total = 8 + u64::from(len);
    if total > limits.max_message_bytes as u64 {
        return Err(DecodeError::TooLarge {
            size: total,
            limit: limits.max_message_bytes,
        });
    }
    if len % 8 != 0 {
        return Err(DecodeError::BadLength {
            offset: 0,
            item_type: ItemType::Structure,
            len,
        });
    }
    Ok(total as usize)
}

/// Decodes exactly one item from `buf`; trailing bytes are an error.
pub fn decode(buf: &[u8], limits: &Limits) -> Result<Ttlv, DecodeError> {
    if buf.len() > limits.max_message_bytes {
        return Err(DecodeError::TooLarge {
            size: buf.len() as u64,
            limit: limits.max_message_bytes,
        });
    }
    let mut reader = Reader { buf, pos: 0 };
    let item = reader.item(1, limits.max_depth)?;
    match buf.len() - reader.pos {
        0 => Ok(item),
        count => Err(DecodeError::TrailingBytes { count }),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, offset: usize) -> Result<&[u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(DecodeError::Truncated { offset })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn item(&mut self, depth: usize, max_depth: usize) -> Result<Ttlv, DecodeError> {
        let offset = self.pos;
        let header = self.take(8, offset)?;
        let tag = Tag(u32::from_be_bytes([0, header[0], header[1], header[2]]));
        let code = header[3];
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let item_type =
            ItemType::from_code(code).ok_or(DecodeError::UnknownType { offset, code })?;
        let bad_length = DecodeError::BadLength {
            offset,
            item_type,
            len,
        };
        let body_len = len as usize;
        let pad = padding(body_len);
        let padded = body_len
            .checked_add(pad)
            .ok_or(DecodeError::Truncated { offset })?;
        let raw = self.take(padded, offset)?;
        let (body, padding_bytes) = raw.split_at(body_len);
        if padding_bytes.iter().any(|b| *b != 0) {
            return Err(DecodeError::NonZeroPadding { offset });
        }
        let value = match item_type {
            ItemType::Structure => {
                if depth > max_depth {
                    return Err(DecodeError::TooDeep { limit: max_depth });
                }
                if body_len % 8 != 0 {
                    return Err(bad_length);
                }
                let mut sub = Reader { buf: body, pos: 0 };
                let mut children = Vec::new();
                while sub.pos < body.len() {
                    children.push(sub.item(depth + 1, max_depth)?);
                }
                Value::Structure(children)
            }
            ItemType::Integer | ItemType::Enumeration | ItemType::Interval => {
                let v: [u8; 4] = body.try_into().map_err(|_| bad_length)?;
                match item_type {
                    ItemType::Integer => Value::Integer(i32::from_be_bytes(v)),
                    ItemType::Enumeration => Value::Enumeration(u32::from_be_bytes(v)),
                    _ => Value::Interval(u32::from_be_bytes(v)),
                }
            }
            ItemType::LongInteger | ItemType::DateTime | ItemType::DateTimeExtended => {
                let v = i64::from_be_bytes(body.try_into().map_err(|_| bad_length)?);
                match item_type {
                    ItemType::LongInteger => Value::LongInteger(v),
                    ItemType::DateTime => Value::DateTime(v),
                    _ => Value::DateTimeExtended(v),
                }
            }
            ItemType::Boolean => {
                match u64::from_be_bytes(body.try_into().map_err(|_| bad_length)?) {
                    0 => Value::Boolean(false),
                    1 => Value::Boolean(true),
                    _ => return Err(DecodeError::BadBoolean { offset }),
                }
            }
            ItemType::BigInteger => {
                if body.is_empty() || body.len() % 8 != 0 {
                    return Err(bad_length);
                }
                Value::BigInteger(Zeroizing::new(body.to_vec()))
            }
            ItemType::TextString => match std::str::from_utf8(body) {
                Ok(s) => Value::TextString(s.to_owned()),
                Err(_) => return Err(DecodeError::BadUtf8 { offset }),
            },
            ItemType::ByteString => Value::ByteString(Zeroizing::new(body.to_vec())),
        };
        Ok(Ttlv::new(tag, value))
    }
}
