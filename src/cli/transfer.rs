//! `akm key export` and `akm key import`: moving a key between servers (or into escrow)
//! wrapped, never in the clear. Export is a KMIP Get with a Key Wrapping Specification naming
//! an AES wrapping key (NIST Key Wrap) or an RSA public key (OAEP); the wrapped object goes to
//! a new file of mode 0600 with what Register needs to rebuild it. Import is a Register of
//! that wrapped object: a server that holds the wrapping key (for a public key, its private
//! key) unwraps it and stores it under its own KEK; one that does not keeps it as registered.

use super::CliError;
use crate::client::Client;
use crate::kmip::attr;
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::{link_type, object_type as ot, operation as op, wrapping_method};
use crate::ttlv::{Tag, Ttlv, Value};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};

/// The `format` of an export file.
const FORMAT: &str = "akm-wrapped-key/1";
/// The largest export file read back (a wrapped RSA-4096 private key is a few kB).
const MAX_FILE: u64 = 1 << 20;

/// What an export file holds (JSON). No key material in the clear: `object` is the KMIP
/// object as Get returned it, its Key Value wrapped.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExportFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The key's Unique Identifier on the server it came from.
    pub uid: String,
    /// Its Name there, if it had one.
    pub name: Option<String>,
    /// Its KMIP Object Type.
    pub object_type: u32,
    /// Its Cryptographic Usage Mask (Register needs one).
    pub usage_mask: Option<i32>,
    /// The wrapping key's Unique Identifier on the exporting server.
    pub wrapped_with: String,
    /// Whether the wrapping key is a public key (unwrapped with its private key).
    pub wrapped_with_public: bool,
    /// The object (e.g. Symmetric Key) as TTLV, hex.
    pub object: String,
}

/// Exports `uid` wrapped under `wrapping` (`public`: an RSA public key) into `out`.
pub async fn export(
    client: &mut Client,
    uid: &str,
    wrapping: &str,
    public: bool,
    out: &Path,
) -> Result<Json, CliError> {
    // Refuse before asking the server, so nothing is fetched for a file we cannot write.
    if out.exists() {
        return Err(CliError::Usage(format!(
            "{} already exists; refusing to overwrite it (choose another --out)",
            out.display()
        )));
    }
    let attrs = get_attributes(
        client,
        uid,
        &[
            attr::OBJECT_TYPE,
            attr::NAME,
            attr::CRYPTOGRAPHIC_USAGE_MASK,
        ],
    )
    .await?;
    let mut object_type = None;
    let mut name = None;
    let mut usage_mask = None;
    for a in &attrs {
        match (a.name.as_str(), &a.value) {
            (attr::OBJECT_TYPE, Value::Enumeration(t)) => object_type = Some(*t),
            (attr::NAME, v) => name = crate::ops::object_name(v),
            (attr::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(m)) => usage_mask = Some(*m),
            _ => {}
        }
    }
    let object_type = object_type.unwrap_or(ot::SYMMETRIC_KEY);
    let spec = Ttlv::structure(
        Tag::KEY_WRAPPING_SPECIFICATION,
        vec![
            Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
            Ttlv::structure(
                Tag::ENCRYPTION_KEY_INFORMATION,
                vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, wrapping)],
            ),
        ],
    );
    let got = client
        .call(op::GET, vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid), spec])
        .await?;
    let object = got
        .children()
        .iter()
        .find(|c| c.tag != Tag::OBJECT_TYPE && c.tag != Tag::UNIQUE_IDENTIFIER)
        .ok_or_else(|| {
            CliError::Client(crate::client::ClientError::Protocol(
                "Get returned no object".into(),
            ))
        })?;
    let file = ExportFile {
        format: FORMAT.into(),
        uid: uid.to_owned(),
        name,
        object_type,
        usage_mask,
        wrapped_with: wrapping.to_owned(),
        wrapped_with_public: public,
        object: hex::encode(object.encode()),
    };
    let text = serde_json::to_vec_pretty(&file).map_err(|e| CliError::Failed(e.to_string()))?;
    crate::secret_file::write_new(out, &text)
        .map_err(|e| CliError::Failed(format!("akm key export: {e}")))?;
    Ok(json!({
        "uid": uid,
        "wrapped_with": wrapping,
        "file": out.display().to_string(),
    }))
}

/// Imports the export file `path`: Register of its wrapped object, unwrapped by the server
/// with `unwrap_with` (default: the key it was wrapped with, or for a public key its
/// private key).
pub async fn import(
    client: &mut Client,
    path: &Path,
    name: Option<String>,
    unwrap_with: Option<String>,
    keep_wrapped: bool,
) -> Result<Json, CliError> {
    let file = read_export(path)?;
    let bytes = hex::decode(&file.object).map_err(|_| bad_file(path, "`object` is not hex"))?;
    let mut object = crate::ttlv::decode(&bytes, &crate::ttlv::Limits::default())
        .map_err(|e| bad_file(path, &format!("`object` is not a KMIP object: {e}")))?;
    let unwrap_with = match unwrap_with {
        Some(u) => u,
        None if file.wrapped_with_public => private_key_of(client, &file.wrapped_with).await?,
        None => file.wrapped_with.clone(),
    };
    name_unwrapping_key(&mut object, &unwrap_with)
        .ok_or_else(|| bad_file(path, "the object carries no Key Wrapping Data"))?;
    if !keep_wrapped {
        require_usable(client, &unwrap_with).await?;
    }
    let mut template = vec![attributes::to_v1(
        &Attr::new(
            attr::CRYPTOGRAPHIC_USAGE_MASK,
            Value::Integer(file.usage_mask.unwrap_or(0x0C)),
        ),
        None,
    )];
    if let Some(n) = &name {
        template.push(attributes::to_v1(
            &Attr::new(
                attr::NAME,
                Value::Structure(vec![
                    Ttlv::text(Tag::NAME_VALUE, n),
                    Ttlv::enumeration(
                        Tag::NAME_TYPE,
                        crate::kmip::enums::name_type::UNINTERPRETED_TEXT_STRING,
                    ),
                ]),
            ),
            None,
        ));
    }
    let payload = vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, file.object_type),
        Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, template),
        object,
    ];
    let got = client.call(op::REGISTER, payload).await?;
    let uid = got
        .child(Tag::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .unwrap_or("")
        .to_owned();
    Ok(
        json!({ "uid": uid, "imported_from": file.uid, "unwrapped_with": unwrap_with, "name": name }),
    )
}

/// Refuses an import the server would keep wrapped (unusable here) because the caller cannot
/// use the unwrapping key: the server treats such a key as absent rather than refusing.
async fn require_usable(client: &mut Client, unwrap_with: &str) -> Result<(), CliError> {
    match get_attributes(client, unwrap_with, &[attr::CRYPTOGRAPHIC_USAGE_MASK]).await {
        Ok(_) => Ok(()),
        Err(CliError::Client(crate::client::ClientError::Failed { reason, .. })) => {
            Err(CliError::Client(crate::client::ClientError::Failed {
                reason,
                message: format!(
                    "the unwrapping key {unwrap_with} is not on this server or you may not use \
                     it, so the imported key would stay wrapped and unusable here; use \
                     --unwrap-with to name another key, or --keep-wrapped to keep it wrapped \
                     on purpose (escrow)"
                ),
            }))
        }
        Err(e) => Err(e),
    }
}

fn bad_file(path: &Path, why: &str) -> CliError {
    CliError::Usage(format!(
        "{} is not an akm key export file: {why}",
        path.display()
    ))
}

fn read_export(path: &Path) -> Result<ExportFile, CliError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > MAX_FILE {
        return Err(bad_file(path, "it is larger than 1 MiB"));
    }
    let text = std::fs::read(path)
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))?;
    let file: ExportFile =
        serde_json::from_slice(&text).map_err(|e| bad_file(path, &e.to_string()))?;
    if file.format != FORMAT {
        return Err(bad_file(
            path,
            &format!("format is {:?}, not {FORMAT:?}", file.format),
        ));
    }
    Ok(file)
}

/// Points the object's Key Wrapping Data at `uid`; `None` when it has none.
fn name_unwrapping_key(object: &mut Ttlv, uid: &str) -> Option<()> {
    let block = child_mut(object, Tag::KEY_BLOCK)?;
    let data = child_mut(block, Tag::KEY_WRAPPING_DATA)?;
    let info = child_mut(data, Tag::ENCRYPTION_KEY_INFORMATION)?;
    let id = child_mut(info, Tag::UNIQUE_IDENTIFIER)?;
    *id = Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid);
    Some(())
}

fn child_mut(t: &mut Ttlv, tag: Tag) -> Option<&mut Ttlv> {
    match &mut t.value {
        Value::Structure(children) => children.iter_mut().find(|c| c.tag == tag),
        _ => None,
    }
}

/// The private key linked to public key `uid` (its Private Key Link).
async fn private_key_of(client: &mut Client, uid: &str) -> Result<String, CliError> {
    let links = get_attributes(client, uid, &[attr::LINK]).await?;
    links
        .iter()
        .find_map(|a| {
            let Value::Structure(fields) = &a.value else {
                return None;
            };
            let kind = fields.iter().find(|f| f.tag == Tag::LINK_TYPE)?.as_enum()?;
            (kind == link_type::PRIVATE_KEY_LINK).then(|| {
                fields
                    .iter()
                    .find(|f| f.tag == Tag::LINKED_OBJECT_IDENTIFIER)
                    .and_then(Ttlv::as_text)
                    .map(str::to_owned)
            })?
        })
        .ok_or_else(|| {
            CliError::Usage(format!(
                "the key was wrapped with public key {uid}, which has no private key on this \
                 server; name the unwrapping key with --unwrap-with"
            ))
        })
}

async fn get_attributes(
    client: &mut Client,
    uid: &str,
    names: &[&str],
) -> Result<Vec<Attr>, CliError> {
    let mut payload = vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid)];
    payload.extend(names.iter().map(|n| Ttlv::text(Tag::ATTRIBUTE_NAME, *n)));
    let got = client.call(op::GET_ATTRIBUTES, payload).await?;
    Ok(got
        .children_with(Tag::ATTRIBUTE)
        .filter_map(|a| attributes::from_v1(a).ok().map(|(a, _)| a))
        .collect())
}

/// Where `akm key export` writes when no --out is given: `<uid>.akmkey` here.
pub fn default_out(uid: &str) -> PathBuf {
    PathBuf::from(format!("{uid}.akmkey"))
}
