//! KMIP values in words for people, shared by the CLI and the management console: state and
//! algorithm names, attribute values as JSON (enumerations and masks by their spec names,
//! dates in RFC 3339, bytes in hex), usage names, and the few request attributes both build.
//! Never key material: attributes carry none.

use super::attr;
use super::attributes::{self, Attr};
use super::enums::{cryptographic_algorithm as alg, name_type, state};
use super::names;
use crate::clock::rfc3339;
use crate::ttlv::{Tag, Ttlv, Value};
use serde_json::{json, Value as Json};

/// A KMIP 1.x Attribute item of `name` and `value`, for a request.
pub fn attr(name: &str, value: Value) -> Ttlv {
    attributes::to_v1(&Attr::new(name, value), None)
}

/// The name of a State value, in the words akm's CLI and console use (`pre-active`).
pub fn state_name(v: u32) -> &'static str {
    match v {
        state::PRE_ACTIVE => "pre-active",
        state::ACTIVE => "active",
        state::DEACTIVATED => "deactivated",
        state::COMPROMISED => "compromised",
        state::DESTROYED => "destroyed",
        state::DESTROYED_COMPROMISED => "destroyed-compromised",
        _ => "unknown",
    }
}

/// The Cryptographic Algorithm of a name akm creates keys of (`aes`, `hmac-sha256`, any
/// case); the error lists the names there are.
pub fn algorithm(name: &str) -> Result<u32, String> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "aes" => alg::AES,
        "hmac-sha256" => alg::HMAC_SHA256,
        "hmac-sha384" => alg::HMAC_SHA384,
        "hmac-sha512" => alg::HMAC_SHA512,
        other => {
            return Err(format!(
                "unknown algorithm {other:?}; use aes, hmac-sha256, hmac-sha384 or hmac-sha512"
            ))
        }
    })
}

/// The name of a Cryptographic Algorithm akm creates keys of (`AES`), or its code in hex.
pub fn algorithm_name(v: u32) -> String {
    match v {
        alg::AES => "AES".into(),
        alg::HMAC_SHA256 => "HMAC-SHA256".into(),
        alg::HMAC_SHA384 => "HMAC-SHA384".into(),
        alg::HMAC_SHA512 => "HMAC-SHA512".into(),
        other => format!("0x{other:08X}"),
    }
}

/// A Name attribute's value: `n` as uninterpreted text.
pub fn name_value(n: &str) -> Value {
    Value::Structure(vec![
        Ttlv::text(Tag::NAME_VALUE, n),
        Ttlv::enumeration(Tag::NAME_TYPE, name_type::UNINTERPRETED_TEXT_STRING),
    ])
}

/// The Cryptographic Usage Mask of comma-separated usage names (`encrypt,decrypt`); the
/// error names the unknown word and the words there are.
pub fn usage_mask(names: &str) -> Result<i32, String> {
    use crate::kmip::enums::cryptographic_usage_mask as u;
    let mut mask = 0;
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        mask |= match name {
            "encrypt" => u::ENCRYPT,
            "decrypt" => u::DECRYPT,
            "wrap-key" => u::WRAP_KEY,
            "unwrap-key" => u::UNWRAP_KEY,
            "mac-generate" => u::MAC_GENERATE,
            "mac-verify" => u::MAC_VERIFY,
            "derive-key" => u::DERIVE_KEY,
            "export" => u::EXPORT,
            other => {
                return Err(format!(
                    "unknown usage {other:?}; use encrypt, decrypt, wrap-key, unwrap-key, \
                     mac-generate, mac-verify, derive-key or export"
                ))
            }
        };
    }
    if mask == 0 {
        return Err("names no usage; e.g. encrypt,decrypt".into());
    }
    Ok(mask)
}

/// An attribute value for display: never key bytes (none are attributes), digests in hex,
/// enumerations by their spec name (`Symmetric Key`), masks as names (`Encrypt|Decrypt`).
pub fn show_value(a: &Attr) -> Json {
    match (a.name.as_str(), &a.value) {
        (attr::STATE, Value::Enumeration(v)) => json!(state_name(*v)),
        (attr::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(v)) => json!(algorithm_name(*v)),
        (name, v) => shown(Some(name), v),
    }
}

/// `v` for display; `name` is its attribute's or tag's spec name, which chooses the table an
/// enumeration or mask value is named from.
fn shown(name: Option<&str>, v: &Value) -> Json {
    match v {
        Value::Structure(c) => {
            let mut m = serde_json::Map::new();
            for i in c {
                let field = i
                    .tag
                    .name()
                    .map_or_else(|| format!("{:?}", i.tag), str::to_owned);
                m.insert(field, shown(i.tag.name(), &i.value));
            }
            Json::Object(m)
        }
        Value::Integer(i) => match name {
            Some(n) if names::is_mask(n) => json!(names::mask_names(n, *i)),
            _ => json!(i),
        },
        Value::LongInteger(i) => json!(i),
        Value::DateTime(secs) => json!(rfc3339(*secs)),
        Value::DateTimeExtended(micros) => json!(rfc3339(micros.div_euclid(1_000_000))),
        Value::Enumeration(e) => match name.and_then(|n| names::value_name(n, *e)) {
            Some(n) => json!(n),
            None => json!(format!("0x{e:08X}")),
        },
        Value::Boolean(b) => json!(b),
        Value::TextString(s) => json!(s),
        Value::ByteString(b) | Value::BigInteger(b) => json!(hex::encode(b.as_slice())),
        Value::Interval(i) => json!(i),
    }
}
