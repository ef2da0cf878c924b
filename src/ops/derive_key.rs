//! Derive Key (KMIP 1.4 §4.6, 2.1 §6.1.17): derives a Symmetric Key or Secret Data from a key
//! or Secret Data the server holds (Derive Key in its usage mask, Active, before its Protect
//! Stop Date) with PBKDF2, HMAC, HASH, NIST SP 800-108 counter mode (HMAC) or HKDF (see
//! `crypto::kdf`), or ENCRYPT (AES through `crypto::cipher`, as the Encrypt operation), stores it like a created object, and links the two (Derived Key on the
//! base, Derivation Base Object on the new one). The length comes from the request's
//! Cryptographic Length (bits, a multiple of 8); a longer length than the method gives is an
//! error, as the spec requires.

use super::create::{generator, store_new};
use super::encrypt::SymParams;
use super::key_use::{load_key_by_uid, Check, Purpose};
use super::rekey::link;
use super::{modify, Call, Caller, Ctx, Reply};
use crate::crypto::cipher::{self, Mode};
use crate::crypto::kdf;
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::{
    cryptographic_algorithm as alg, cryptographic_usage_mask as usage, derivation_method as dm,
    hashing_algorithm as ha, key_format_type as kft, link_type, object_type as ot, operation,
    secret_data_type,
};
use crate::kmip::objects::ManagedObject;
use crate::ttlv::{Tag, Ttlv, Value};
use zeroize::Zeroizing;

/// Runs Derive Key.
pub fn run(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    let object_type = call.object_type()?;
    if !matches!(object_type, ot::SYMMETRIC_KEY | ot::SECRET_DATA) {
        return Err(OpError::InvalidField(
            "Derive Key makes Symmetric Keys or Secret Data".into(),
        ));
    }
    // KMIP: the ID Placeholder is never used in place of the base objects.
    let bases: Vec<&str> = call
        .payload
        .children_with(Tag::UNIQUE_IDENTIFIER)
        .filter_map(Ttlv::as_text)
        .collect();
    let [base] = bases.as_slice() else {
        return Err(OpError::InvalidMessage(
            "Derive Key takes exactly one base object".into(),
        ));
    };
    let method = call
        .payload
        .child(Tag::DERIVATION_METHOD)
        .and_then(Ttlv::as_enum)
        .ok_or_else(|| OpError::InvalidMessage("missing Derivation Method".into()))?;
    let params = call
        .payload
        .child(Tag::DERIVATION_PARAMETERS)
        .ok_or_else(|| OpError::InvalidMessage("missing Derivation Parameters".into()))?;
    let attrs = attributes::read_request_attributes(call.payload, call.version)?;
    let bits = attrs
        .iter()
        .find(|a| a.name == attr::CRYPTOGRAPHIC_LENGTH)
        .and_then(|a| match a.value {
            Value::Integer(v) => Some(v),
            _ => None,
        })
        .ok_or_else(|| OpError::InvalidMessage("missing Cryptographic Length".into()))?;
    let algorithm = attrs
        .iter()
        .find(|a| a.name == attr::CRYPTOGRAPHIC_ALGORITHM)
        .and_then(|a| match a.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        });
    if bits <= 0 || bits % 8 != 0 {
        return Err(OpError::InvalidField(
            "Cryptographic Length must be a positive multiple of 8".into(),
        ));
    }
    if object_type == ot::SYMMETRIC_KEY {
        check_symmetric(algorithm, bits)?;
    }
    let check = Check {
        operation: operation::DERIVE_KEY,
        usage: usage::DERIVE_KEY,
        purpose: Purpose::Protect,
        amount: 0,
        now: call.now,
    };
    let key = load_key_by_uid(ctx, who, base, &check)?;
    refuse_known_derivation(ctx, object_type, method, params, &key.obj)?;
    let max_iterations = ctx.limits.max_pbkdf2_iterations;
    let derived = derive(
        method,
        params,
        &key.material,
        bits as usize / 8,
        &key.obj,
        max_iterations,
    )?;
    key.spend(ctx, who)?;
    let managed = ManagedObject {
        object_type,
        material: derived,
        format: if object_type == ot::SYMMETRIC_KEY {
            kft::RAW
        } else {
            kft::OPAQUE
        },
        algorithm,
        length: Some(bits),
        data_type: (object_type == ot::SECRET_DATA).then_some(secret_data_type::SEED),
        split: Vec::new(),
    };
    let server_attrs = vec![
        Attr::new(attr::ORIGINAL_CREATION_DATE, Value::DateTime(call.now)),
        generator(),
        link(link_type::DERIVATION_BASE_OBJECT_LINK, base),
    ];
    let uid = store_new(ctx, who, call, attrs, server_attrs, managed)?;
    let back = link(link_type::DERIVED_KEY_LINK, &uid);
    modify(
        ctx,
        who,
        (*base).to_owned(),
        operation::DERIVE_KEY,
        call.now,
        move |obj| {
            obj.attrs.push(back);
            Ok(())
        },
    )?;
    Ok(Reply::uid_only(uid))
}

/// PCI mode: no symmetric key the client could compute, which would be a key registered in
/// the clear by another name (and, made a wrapping key, would take any key out): HASH over
/// the Derivation Data ignores the base key, and Secret Data is taken in the clear.
fn refuse_known_derivation(
    ctx: &Ctx,
    object_type: u32,
    method: u32,
    params: &Ttlv,
    base: &super::Object,
) -> Result<(), OpError> {
    if !ctx.crypto.pci_mode || object_type != ot::SYMMETRIC_KEY {
        return Ok(());
    }
    let hash_of_data = method == dm::HASH && params.child(Tag::DERIVATION_DATA).is_some();
    if hash_of_data || base.object_type != ot::SYMMETRIC_KEY {
        return Err(OpError::KnownDerivation);
    }
    Ok(())
}

/// A derived symmetric key must be an AES or HMAC key of a length akm uses.
fn check_symmetric(algorithm: Option<u32>, bits: i32) -> Result<(), OpError> {
    match algorithm {
        None => Err(OpError::InvalidMessage(
            "a derived key needs a Cryptographic Algorithm".into(),
        )),
        Some(alg::AES) if [128, 192, 256].contains(&bits) => Ok(()),
        Some(alg::AES) => Err(OpError::InvalidField(
            "AES keys are 128, 192 or 256 bits".into(),
        )),
        Some(alg::HMAC_SHA1 | alg::HMAC_SHA256 | alg::HMAC_SHA384 | alg::HMAC_SHA512) => Ok(()),
        Some(a) => match crate::crypto::digest::refused_algorithm(a) {
            Some(name) => Err(OpError::RefusedAlgorithm(name)),
            None => Err(OpError::UnsupportedParameters(
                "derived keys are AES or HMAC-SHA-1/256/384/512",
            )),
        },
    }
}

/// Runs the derivation `method` with `params` over the base material, refusing more PBKDF2
/// iterations than `max_iterations`.
fn derive(
    method: u32,
    params: &Ttlv,
    base: &[u8],
    len: usize,
    base_obj: &super::Object,
    max_iterations: u32,
) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let field = |tag| params.child(tag);
    let bytes = |tag| -> Result<Option<&[u8]>, OpError> {
        match field(tag) {
            None => Ok(None),
            Some(t) => t
                .as_bytes()
                .map(Some)
                .ok_or_else(|| OpError::InvalidMessage(format!("{tag:?} must be a byte string"))),
        }
    };
    let crypto = field(Tag::CRYPTOGRAPHIC_PARAMETERS);
    // The PRF's hash: the Hashing Algorithm, or the HMAC named as Cryptographic Algorithm, or
    // for an HMAC base key its own algorithm; otherwise the method's default: for PBKDF2 the
    // one of PKCS#5 (RFC 8018 Appendix A.2, PBKDF2-params: prf DEFAULT algid-hmacWithSHA1),
    // which KMIP 1.4 §4.6 and 2.1 §6.1.14 refer to; SHA-256 for the others.
    let hash = crypto
        .and_then(|c| c.child(Tag::HASHING_ALGORITHM))
        .and_then(Ttlv::as_enum)
        .or_else(|| {
            crypto
                .and_then(|c| c.child(Tag::CRYPTOGRAPHIC_ALGORITHM))
                .and_then(Ttlv::as_enum)
                .and_then(hmac_hash)
        })
        .or_else(|| {
            base_obj
                .enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM)
                .and_then(hmac_hash)
        })
        .unwrap_or(if method == dm::PBKDF2 {
            ha::SHA_1
        } else {
            ha::SHA_256
        });
    let data = bytes(Tag::DERIVATION_DATA)?;
    let need_data =
        || data.ok_or_else(|| OpError::InvalidMessage("missing Derivation Data".into()));
    let out = match method {
        dm::PBKDF2 => {
            let salt = bytes(Tag::SALT)?
                .ok_or_else(|| OpError::InvalidMessage("PBKDF2 needs a Salt".into()))?;
            let iterations = field(Tag::ITERATION_COUNT)
                .and_then(Ttlv::as_int)
                .ok_or_else(|| OpError::InvalidMessage("PBKDF2 needs an Iteration Count".into()))?;
            let iterations = u32::try_from(iterations).unwrap_or(0);
            if iterations > max_iterations {
                return Err(OpError::InvalidField(format!(
                    "Iteration Count {iterations} is over this server's limit of \
                     {max_iterations} (server.max_pbkdf2_iterations)"
                )));
            }
            kdf::pbkdf2(hash, base, salt, iterations, len)
        }
        dm::HMAC => kdf::hmac(hash, base, need_data()?, len),
        dm::HASH => kdf::hash(hash, data.unwrap_or(base), len),
        dm::NIST800_108_C => kdf::sp800_108_counter(hash, base, need_data()?, len),
        dm::HKDF => kdf::hkdf(
            hash,
            bytes(Tag::SALT)?.unwrap_or(&[]),
            base,
            data.unwrap_or(&[]),
            len,
        ),
        dm::ENCRYPT => {
            return encrypt(
                crypto,
                bytes(Tag::INITIALIZATION_VECTOR)?,
                base,
                need_data()?,
                len,
                base_obj,
            )
        }
        _ => {
            return Err(OpError::UnsupportedParameters(
                "derivation methods: PBKDF2, HMAC, HASH, NIST800-108-C, HKDF and ENCRYPT",
            ))
        }
    };
    out.map_err(|e| match e {
        kdf::KdfError::Digest(d) => OpError::Digest(d),
        kdf::KdfError::NotInModule(why) => {
            OpError::Crypto(crate::crypto::CryptoError::NotInModule(why))
        }
        other => OpError::InvalidField(other.to_string()),
    })
}

/// The ENCRYPT method (KMIP 1.4 §4.6): the Derivation Data encrypted with the base key under
/// the Cryptographic Parameters of the Derivation Parameters, through the same AES code and
/// parameter checks as the Encrypt operation. The derived value is the first `len` bytes of
/// the ciphertext; asking for more than the ciphertext holds is an error. The parameters are
/// required (the spec names them as the input of this method), a mode that needs an IV needs
/// the Initialization Vector (there is no response field to return a server-made one), and GCM
/// is refused because its tag would have no place in the derived value.
fn encrypt(
    crypto: Option<&Ttlv>,
    iv: Option<&[u8]>,
    base: &[u8],
    data: &[u8],
    len: usize,
    base_obj: &super::Object,
) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let crypto = crypto.ok_or_else(|| {
        OpError::InvalidMessage("the ENCRYPT derivation needs Cryptographic Parameters".into())
    })?;
    let sym = SymParams::from_params(Some(crypto.children()), base_obj)?;
    if sym.random_iv {
        return Err(OpError::InvalidField(
            "the ENCRYPT derivation takes its IV from the Derivation Parameters, not Random IV"
                .into(),
        ));
    }
    if sym.mode == Mode::Gcm {
        return Err(OpError::UnsupportedParameters(
            "the ENCRYPT derivation uses ECB, CBC or CTR (a GCM tag has no place in a derived key)",
        ));
    }
    let iv = match (sym.mode.needs_iv(), iv) {
        (true, None) => {
            return Err(OpError::InvalidMessage(
                "the ENCRYPT derivation in this mode needs an Initialization Vector".into(),
            ))
        }
        (_, iv) => iv.unwrap_or(&[]),
    };
    let (ciphertext, _) = cipher::encrypt(base, &sym.params(iv, &[]), data)?;
    let ciphertext = Zeroizing::new(ciphertext);
    if len > ciphertext.len() || len > kdf::MAX_OUTPUT {
        return Err(OpError::InvalidField(
            "the requested length exceeds the ENCRYPT derivation's ciphertext".into(),
        ));
    }
    Ok(Zeroizing::new(ciphertext[..len].to_vec()))
}

/// The hash of an HMAC Cryptographic Algorithm.
fn hmac_hash(a: u32) -> Option<u32> {
    match a {
        alg::HMAC_SHA256 => Some(ha::SHA_256),
        alg::HMAC_SHA384 => Some(ha::SHA_384),
        alg::HMAC_SHA512 => Some(ha::SHA_512),
        alg::HMAC_SHA1 => Some(ha::SHA_1),
        alg::HMAC_MD5 => Some(ha::MD5),
        _ => None,
    }
}
