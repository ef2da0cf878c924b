//! KMIP operations, one file each, and the batch dispatcher that runs a request message's
//! items in order (ID Placeholder, Batch Error Continuation Option). Operations are
//! synchronous: the server runs the dispatcher on the blocking pool, so the SQLite calls they
//! make never block an async worker. Operations reach storage only through `store`.

mod access;
mod activate;
mod admin;
mod attribute_edit;
mod backup_runner;
mod check;
pub mod cost;
mod create;
mod create_key_pair;
mod custody;
mod decrypt;
mod derive_key;
mod destroy;
mod discover_versions;
pub mod dual;
mod encrypt;
mod get;
mod get_attribute_list;
mod get_attributes;
mod hash;
mod interop;
mod key_use;
mod locate;
mod log;
mod mac;
mod object;
mod obtain_lease;
mod pkcs12;
mod query;
mod register;
pub mod registry;
mod rekey;
mod revoke;
mod revoke_certificate;
mod rng_retrieve;
pub mod rotation;
mod rsa_oaep;
mod sign;
mod stored_size;
pub mod stream;
mod unwrap;
mod wrap;

pub use access::{AccessRecord, Caller};
pub use admin::{admin_operation, AdminOp};
pub use backup_runner::{BackupInfo, BackupRunner};
pub use object::{name_value as object_name, Object};
pub use query::{PROFILES_V1, PROFILES_V2};
pub use stored_size::{Writer, STORED_RECORD_MAX_BYTES};

use crate::config::limits::AttributeLimits;
use crate::crypto::slot::KekSlot;
use crate::error::OpError;
use crate::identity::Principal;
use crate::kmip::enums::operation as op;
use crate::kmip::{OnError, ProtocolVersion, RequestMessage, ResponseItem};
use crate::policy;
use crate::store::Store;
use crate::ttlv::{Tag, Ttlv};
use std::sync::Arc;

/// What every operation may use.
#[derive(Debug)]
pub struct Ctx {
    /// The key store.
    pub store: Store,
    /// The key encryption key, sealed until custodians unseal it (or open from a key file).
    pub kek: KekSlot,
    /// The access settings (`[access]` in the config), replaced by a configuration reload.
    pub access: Live<policy::Settings>,
    /// Reloads the server's configuration (the Reload Configuration and Reload TLS
    /// administration operations, and SIGHUP); `None` where nothing can be reloaded.
    pub reload: Option<Reloader>,
    /// Whether the Interop operation is available (test servers only: KMIP 2.1 §6.1.26).
    pub interop: bool,
    /// The audit journal every request is recorded in before it is answered.
    pub audit: crate::audit::Audit,
    /// Takes the Backup operation's backups (into `[backup] dir`, copied to `[backup.sftp]`);
    /// `None`: no backups.
    pub backup: Option<Arc<dyn BackupRunner>>,
    /// Where the KEKs are kept, for Rotate KEK; `None`: no rotation.
    pub kek_files: Option<crate::crypto::rotate::KekFiles>,
    /// Dual control (`[dual_control]`): guarded operations and open authorization windows.
    pub dual: dual::DualControl,
    /// How keys may be used and leave the server.
    pub crypto: CryptoPolicy,
    /// Open multi-part (streaming) operations, in this node's memory.
    pub streams: stream::Streams,
    /// Most Unique Identifiers one Locate returns (`server.max_locate_items`), replaced by
    /// a configuration reload.
    pub max_locate_items: Live<usize>,
    /// The CPU budget of one request message and its items.
    pub limits: cost::RequestLimits,
    /// Limits on stored attribute bytes (`server.max_attribute_bytes`,
    /// `server.max_object_attribute_bytes`).
    pub attribute_limits: AttributeLimits,
    /// Request counters for the status listener's `/metrics`, updated by the KMIP listener.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Every revoked client certificate in the store (from this node's CRLs or a peer's),
    /// checked by the KMIP listener after the handshake and before each request.
    pub revoked_certs: Arc<crate::store::RevokedCerts>,
    /// The subjects of the client CAs `tls.client_ca` trusts (narrowed to the pinned ones):
    /// the only issuers Revoke Certificate accepts; replaced by a configuration reload.
    pub client_ca_subjects: Live<Vec<String>>,
    /// The digest of the security settings in force, compared with mirror peers'; replaced
    /// by a configuration reload.
    pub settings: Live<crate::settings_digest::SettingsDigest>,
}

/// Key-handling policy from `[crypto]` in the configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct CryptoPolicy {
    /// PCI mode: secret keys (symmetric and private keys) are served by Get only wrapped
    /// under another key, and Register refuses them in the clear.
    pub pci_mode: bool,
}

impl CryptoPolicy {
    /// Whether PCI mode keeps objects of `object_type` from crossing the wire in the clear
    /// (either way: Get and Register). Public keys, certificates and secret data are not
    /// keys PCI DSS keeps secret.
    pub fn clear_refused(&self, object_type: u32) -> bool {
        use crate::kmip::enums::object_type as ot;
        self.pci_mode && matches!(object_type, ot::SYMMETRIC_KEY | ot::PRIVATE_KEY)
    }

    /// PCI mode's key separation: a key whose usage `mask` lets it both wrap (or unwrap) keys
    /// and encrypt (or decrypt) data is refused for either use. Otherwise a key served
    /// wrapped under it comes out in the clear through Decrypt (RFC 3394 is AES block
    /// decryptions), and Encrypt forges wrappings of keys the client chose.
    pub fn check_separation(&self, mask: i32) -> Result<(), OpError> {
        use crate::kmip::enums::cryptographic_usage_mask as usage;
        let wraps = mask & (usage::WRAP_KEY | usage::UNWRAP_KEY) != 0;
        let data = mask & (usage::ENCRYPT | usage::DECRYPT) != 0;
        if self.pci_mode && wraps && data {
            return Err(OpError::KeySeparation);
        }
        Ok(())
    }
}

/// A reload action (blocking), given the context it applies to. It returns the changed keys
/// that need a restart; the error says why the new configuration was refused (naming the key
/// and the file), for the log and the caller.
#[derive(Clone)]
pub struct Reloader(pub Arc<ReloadFn>);

/// What a [`Reloader`] runs.
pub type ReloadFn = dyn Fn(&Ctx) -> Result<Vec<String>, String> + Send + Sync;

/// A value a reload replaces while requests read it: each reader gets the value in force when
/// it asks, whole (the old or the new one, never a mix), without taking a lock.
#[derive(Debug, Default)]
pub struct Live<T>(arc_swap::ArcSwap<T>);

impl<T> Live<T> {
    /// A cell holding `value`.
    pub fn new(value: T) -> Live<T> {
        Live(arc_swap::ArcSwap::from_pointee(value))
    }

    /// The value in force.
    pub fn current(&self) -> Arc<T> {
        self.0.load_full()
    }

    /// Puts `value` in force for later readers.
    pub fn replace(&self, value: T) {
        self.0.store(Arc::new(value));
    }
}

impl<T> From<T> for Live<T> {
    fn from(value: T) -> Live<T> {
        Live::new(value)
    }
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloader")
    }
}

/// One batch item as an operation sees it.
pub struct Call<'a> {
    /// The request's protocol version (the response uses it too).
    pub version: ProtocolVersion,
    /// The Operation value.
    pub operation: u32,
    /// The Request Payload.
    pub payload: &'a Ttlv,
    /// The ID Placeholder left by an earlier item of the same message.
    pub placeholder: Option<&'a str>,
    /// The time of the request, seconds since the epoch.
    pub now: i64,
    /// What the message has spent of its cost budget and time (operations whose cost the
    /// estimate cannot know charge it as they go).
    pub meter: &'a cost::Meter,
}

impl Call<'_> {
    /// The Object Type the item names (Create, Register).
    pub fn object_type(&self) -> Result<u32, OpError> {
        self.payload
            .child(Tag::OBJECT_TYPE)
            .and_then(Ttlv::as_enum)
            .ok_or_else(|| OpError::InvalidMessage("missing Object Type".into()))
    }

    /// The Unique Identifier the item names, or the ID Placeholder when it names none.
    pub fn uid(&self) -> Result<String, OpError> {
        // The operations that call this take one Unique Identifier (KMIP 1.4 §4, 2.1 §6.1:
        // "Unique Identifier, No" in each payload table, never "MAY be repeated"); using
        // the first of two would act on an object the client may not have meant.
        if self
            .payload
            .children_with(Tag::UNIQUE_IDENTIFIER)
            .nth(1)
            .is_some()
        {
            return Err(OpError::InvalidMessage(
                "more than one Unique Identifier in a payload that takes one".into(),
            ));
        }
        match self.payload.child(Tag::UNIQUE_IDENTIFIER) {
            Some(t) => t
                .as_text()
                .map(str::to_owned)
                .ok_or_else(|| OpError::InvalidMessage("Unique Identifier must be text".into())),
            None => self
                .placeholder
                .map(str::to_owned)
                .ok_or_else(|| OpError::InvalidMessage("missing Unique Identifier".into())),
        }
    }
}

/// A successful operation's result.
pub struct Reply {
    /// The Response Payload's children.
    pub payload: Vec<Ttlv>,
    /// The object this item acted on, which becomes the ID Placeholder for later items.
    pub uid: Option<String>,
}

impl Reply {
    /// A reply with only a Unique Identifier, the answer of most lifecycle operations.
    pub fn uid_only(uid: String) -> Reply {
        Reply::for_object(uid, Vec::new())
    }

    /// A reply about one object: its Unique Identifier, then `rest`.
    pub fn for_object(uid: String, rest: Vec<Ttlv>) -> Reply {
        let mut payload = Vec::with_capacity(rest.len() + 1);
        payload.push(Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()));
        payload.extend(rest);
        Reply {
            payload,
            uid: Some(uid),
        }
    }
}

fn run_one(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    // A sealed server answers only what tells a client where it stands and what unseals it.
    if ctx.kek.is_sealed() && !custody::allowed_while_sealed(call.operation) {
        return Err(OpError::Sealed);
    }
    dual::check_separation(ctx, who, call)?;
    // Dual control: a guarded operation runs only in a window a second administrator
    // opened, and is then recorded with both names.
    match ctx.dual.admits(&who.cn, call.operation, call.now)? {
        None => run_unguarded(ctx, who, call),
        Some(second) => {
            let result = run_unguarded(ctx, who, call);
            dual::record(ctx, who, call, &second, result.is_ok());
            result
        }
    }
}

fn run_unguarded(ctx: &Ctx, who: &Caller, call: &Call<'_>) -> Result<Reply, OpError> {
    if let Some(custody_op) = custody::custody_operation(call.operation) {
        who.require(call.operation)?;
        return custody::run(ctx, who, call, custody_op);
    }
    if let Some(admin_op) = admin_operation(call.operation) {
        // Reading a key's policy is reading one of its attributes: whoever may Get Attributes
        // of the key may. Everything else is for administrators.
        let operation = match admin_op {
            AdminOp::GetKeyPolicy => op::GET_ATTRIBUTES,
            _ => call.operation,
        };
        who.require(operation)?;
        return admin::run(ctx, who, call, admin_op);
    }
    let Some(registered) = registry::find(call.operation, call.version, ctx.interop) else {
        return Err(OpError::OperationNotSupported);
    };
    // The system tables first: may this caller perform this operation at all? Operations on
    // an object then check the object's own policy when they load it.
    who.require(call.operation)?;
    (registered.run)(ctx, who, call)
}

/// Runs every batch item of `msg` for `who` and returns the response items.
pub fn dispatch(ctx: &Ctx, who: &Principal, msg: &RequestMessage, now: i64) -> Vec<ResponseItem> {
    dispatch_recorded(ctx, who, msg, now).0
}

/// Like [`dispatch`], and also returns every access decision taken, allowed or denied, each
/// naming its batch item, for the audit log.
///
/// A message sent with Batch Error Continuation Option Undo runs in one store transaction
/// (see [`crate::store::Batch`]): if an item fails, the transaction is rolled back, so exactly
/// the batch's own writes disappear and nothing else is touched, and the earlier items answer
/// Operation Undone.
pub fn dispatch_recorded(
    ctx: &Ctx,
    who: &Principal,
    msg: &RequestMessage,
    now: i64,
) -> (Vec<ResponseItem>, Vec<AccessRecord>) {
    let undo = msg.header.on_error == OnError::Undo;
    let meter = match metered(ctx, msg, undo) {
        Ok(m) => m,
        Err(e) => return (fail_every_item(msg, &e), Vec::new()),
    };
    // A critical Message Extension akm does not understand rejects the whole message, before
    // any item runs (KMIP 1.4 §6.16 and §11.1: Feature Not Supported; 2.1 §9.13).
    if let Some(vendor) = &msg.unknown_critical_extension {
        tracing::info!(user = %who.cn, %vendor, "request refused: a critical Message Extension this server does not understand");
        let e = OpError::FeatureNotSupported(
            "a Message Extension marked critical that this server does not understand",
        );
        return (fail_every_item(msg, &e), Vec::new());
    }
    if !undo {
        return run_items(ctx, who, msg, now, &meter);
    }
    let batch = match ctx.store.begin_batch() {
        Ok(b) => b,
        Err(e) => return (fail_every_item(msg, &e.into()), Vec::new()),
    };
    meter.restart_clock();
    let (mut out, records) = run_items(ctx, who, msg, now, &meter);
    if out.iter().any(|i| i.result.is_err()) {
        drop(batch);
        mark_undone(&mut out);
    } else if let Err(e) = batch.commit() {
        tracing::error!(error = %e, "committing an Undo batch failed");
        let failure = OpError::from(e).to_failure();
        for item in &mut out {
            item.result = Err(failure.clone());
        }
    }
    (out, records)
}

/// The meter of a message whose estimated cost is within its budget; a dearer message is
/// refused before any item runs. An Undo batch holds the store's write lock while it runs, so
/// its budget and time are smaller.
fn metered(ctx: &Ctx, msg: &RequestMessage, undo: bool) -> Result<cost::Meter, OpError> {
    let cost = cost::of_message(&msg.items);
    let budget = ctx.limits.max_request_cost;
    if cost > budget {
        return Err(OpError::ServerLimitExceeded(format!(
            "the request is estimated at {cost} cost units, over the budget of {budget} \
             (server.max_request_cost): send fewer or cheaper items per message"
        )));
    }
    if !undo {
        return Ok(cost::Meter::new(budget, cost, cost::REQUEST_DEADLINE));
    }
    let undo_budget = budget.min(cost::MAX_UNDO_COST);
    if cost > undo_budget {
        return Err(OpError::ServerLimitExceeded(format!(
            "the Undo batch is estimated at {cost} cost units, over the {undo_budget} an Undo \
             batch may cost (it holds the key store's write lock while it runs): send \
             expensive items without Undo"
        )));
    }
    Ok(cost::Meter::new(undo_budget, cost, cost::UNDO_DEADLINE))
}

/// Every item of `msg` answered with the same failure (nothing ran).
fn fail_every_item(msg: &RequestMessage, e: &OpError) -> Vec<ResponseItem> {
    let failure = e.to_failure();
    msg.items
        .iter()
        .map(|item| ResponseItem {
            operation: Some(item.operation),
            batch_id: item.batch_id.clone(),
            result: Err(failure.clone()),
            undone: false,
        })
        .collect()
}

/// Runs the items in order, feeding each one's object to the next as the ID Placeholder,
/// and stops at the first failure unless the message says Continue.
fn run_items(
    ctx: &Ctx,
    who: &Principal,
    msg: &RequestMessage,
    now: i64,
    meter: &cost::Meter,
) -> (Vec<ResponseItem>, Vec<AccessRecord>) {
    let caller = Caller::load(ctx, who).inspect_err(|e| {
        tracing::error!(user = %who.cn, error = %e, "cannot read the caller's access records");
    });
    let undo = msg.header.on_error == OnError::Undo;
    let mut response_bytes = 0usize;
    let mut placeholder: Option<String> = None;
    let mut out = Vec::with_capacity(msg.items.len());
    let mut records = Vec::new();
    for (index, item) in msg.items.iter().enumerate() {
        let call = Call {
            version: msg.header.version,
            operation: item.operation,
            payload: &item.payload,
            placeholder: placeholder.as_deref(),
            now,
            meter,
        };
        let result = match &caller {
            Ok(caller) => {
                let mut caller = caller.clone();
                caller.at_item(index);
                let result = meter
                    .check_time()
                    .and_then(|()| if undo { undoable(&call) } else { Ok(()) })
                    .and_then(|()| run_one(ctx, &caller, &call));
                records.extend(caller.take_records());
                result
            }
            // The caller's records could not be read (database failure): nothing is allowed.
            Err(_) => Err(OpError::AccessRecordsUnavailable),
        };
        // The answer is bounded as well as the question: an item whose payload would take the
        // response past the limit fails instead (and is dropped here, wiped if it held keys).
        let result = result.and_then(|reply| {
            response_bytes += reply.payload.iter().map(Ttlv::encoded_len).sum::<usize>();
            if response_bytes > ctx.limits.max_response_bytes {
                return Err(OpError::ResponseTooLarge(ctx.limits.max_response_bytes));
            }
            Ok(reply)
        });
        let failed = result.is_err();
        let result = match result {
            Ok(reply) => {
                // Locate always replaces the ID Placeholder: with the object when it found
                // exactly one, else with nothing, so that later items fail rather than act on
                // an earlier object (KMIP 2.1 §6.1.28).
                if reply.uid.is_some() || item.operation == op::LOCATE {
                    placeholder = reply.uid;
                }
                Ok(Some(Ttlv::structure(Tag::RESPONSE_PAYLOAD, reply.payload)))
            }
            Err(e) => {
                tracing::info!(operation = %crate::audit::operation_name(item.operation), user = %who.cn, error = %e, "operation failed");
                Err(e.to_failure())
            }
        };
        out.push(ResponseItem {
            operation: Some(item.operation),
            batch_id: item.batch_id.clone(),
            result,
            undone: false,
        });
        if failed && msg.header.on_error != OnError::Continue {
            break;
        }
    }
    (out, records)
}

/// Whether `call` may run inside an Undo batch. Operations whose effect lives outside the key
/// store (files, the KEK, dual-control windows, the loaded configuration, the in-memory state
/// of a multi-part operation) could not be rolled back with it, so they are refused there.
fn undoable(call: &Call<'_>) -> Result<(), OpError> {
    let operation = call.operation;
    if stream::is_multi_part(call.payload) {
        return Err(OpError::FeatureNotSupported(
            "a part of a multi-part operation cannot be undone: send it in a batch without Undo",
        ));
    }
    use crate::kmip::custody::{OP_AUTHORIZE, OP_BACKUP, OP_ROTATE_KEK, OP_UNSEAL};
    use crate::kmip::extension::{OP_RELOAD_CONFIG, OP_RELOAD_TLS, OP_REVOKE_CERTIFICATE};
    if matches!(
        operation,
        OP_UNSEAL
            | OP_BACKUP
            | OP_ROTATE_KEK
            | OP_AUTHORIZE
            | OP_RELOAD_TLS
            | OP_RELOAD_CONFIG
            | OP_REVOKE_CERTIFICATE
    ) {
        return Err(OpError::FeatureNotSupported(
            "this operation cannot be undone: send it in a batch without Undo",
        ));
    }
    Ok(())
}

/// Marks the items that succeeded before the failed one as Operation Undone: their writes
/// were rolled back with the batch's transaction, so what they returned must not outlive them
/// either (a ciphertext whose usage count was rolled back, key material whose Fresh flag was):
/// an undone item's payload keeps only its Unique Identifier.
fn mark_undone(out: &mut [ResponseItem]) {
    for item in out.iter_mut() {
        if let Ok(payload) = &mut item.result {
            item.undone = true;
            if let Some(p) = payload {
                let uid = p.child(Tag::UNIQUE_IDENTIFIER).cloned();
                *p = Ttlv::structure(Tag::RESPONSE_PAYLOAD, uid.into_iter().collect());
            }
        }
    }
}

/// Loads an object for `who`, checking it exists and that policy allows `operation`. The
/// policy comes from the row's columns, so access is decided even for a record that does not
/// decode; such a record is then read only as far as `stored_size::Repair` lets `who`.
pub fn load_for(ctx: &Ctx, who: &Caller, uid: &str, operation: u32) -> Result<Object, OpError> {
    let row = ctx.store.get_object(uid)?.ok_or(OpError::NotFound)?;
    admit(who, row, uid, operation)
}

/// [`load_for`] with the object's wrapped key material, read in the same statement (Get).
/// The material is only returned once `who` is admitted.
pub fn load_with_material_for(
    ctx: &Ctx,
    who: &Caller,
    uid: &str,
    operation: u32,
) -> Result<(Object, Option<crate::crypto::Wrapped>), OpError> {
    let (row, material) = ctx.store.get_with_material(uid)?.ok_or(OpError::NotFound)?;
    Ok((admit(who, row, uid, operation)?, material))
}

/// Checks that policy allows `who` `operation` on the stored `row` and decodes it.
fn admit(
    who: &Caller,
    row: crate::store::ObjectRow,
    uid: &str,
    operation: u32,
) -> Result<Object, OpError> {
    who.require_key(&Object::row_policy(&row)?, uid, operation)?;
    let mut obj = Object::decode(row, || stored_size::Repair::for_caller(who, operation))?;
    // Every operation sees the State the dates have put the object in by now.
    obj.settle_state(crate::clock::now_secs());
    Ok(obj)
}

/// Read-modify-write of one object inside the writer's transaction: loads it, checks access,
/// lets `change` edit it, and stores the result (and drops its key material if `change` asked
/// to) if it is within the limits on stored attribute bytes. Returns what `change` returned,
/// once the write is durable.
pub fn modify<T, F>(
    ctx: &Ctx,
    who: &Caller,
    uid: String,
    operation: u32,
    now: i64,
    change: F,
) -> Result<T, OpError>
where
    T: Send + 'static,
    F: FnOnce(&mut Object) -> Result<T, OpError> + Send + 'static,
{
    let who = who.clone();
    let limits = ctx.attribute_limits;
    ctx.store.write(move |tx| {
        let row = tx.get(&uid)?.ok_or(OpError::NotFound)?;
        who.require_key(&Object::row_policy(&row)?, &uid, operation)?;
        let stored_len = row.attributes.len();
        let mut obj = Object::decode(row, || stored_size::Repair::for_caller(&who, operation))?;
        let before = limits.before(stored_len, &obj);
        // The change sees the State the dates have put the object in, and a date it sets to
        // now or the past moves the State at once (KMIP 2.1 §4.57, transitions 4 and 6);
        // the write stores, and so mirrors, the State with the rest.
        obj.settle_state(now);
        let out = change(&mut obj)?;
        obj.settle_state(now);
        obj.touch(now);
        let row = obj.to_row();
        let writer = stored_size::Writer::of(operation);
        limits.check_write(Some(&before), &obj, row.attributes.len(), writer)?;
        tx.update(&row)?;
        if obj.material_destroyed {
            tx.delete_material(&row.uid)?;
        }
        Ok(out)
    })
}
