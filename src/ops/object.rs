//! A managed object's metadata as the operations work with it: its attributes in akm's
//! internal form plus the few facts that are not attributes (stored key format, data type).
//! Converts to and from the store's row, deriving the indexed columns from the attributes so
//! the two can never disagree.

use super::stored_size::{self, Repair};
use crate::error::OpError;
use crate::kmip::attr;
use crate::kmip::attributes::{self, Attr};
use crate::kmip::enums::{name_type, state};
use crate::policy::{AccessMode, KeyPolicy};
use crate::store::ObjectRow;
use crate::ttlv::{self, Tag, Ttlv, Value};

/// An object's metadata.
#[derive(Clone, Debug)]
pub struct Object {
    /// Unique Identifier.
    pub uid: String,
    /// Object Type.
    pub object_type: u32,
    /// Owner user (the creator's CN unless the request or an administrator set another).
    pub owner: String,
    /// Owner group (a certificate OU), if any.
    pub owner_group: Option<String>,
    /// Who may use the object besides administrators.
    pub access_mode: AccessMode,
    /// Initial Date.
    pub initial_date: i64,
    /// Key material version, bound into the wrapping.
    pub key_version: i64,
    /// Every attribute instance, in the order they were set.
    pub attrs: Vec<Attr>,
    /// Key Format Type the material was given in.
    pub format: u32,
    /// Secret Data Type or Opaque Data Type.
    pub data_type: Option<u32>,
    /// A Split Key's fields outside its Key Block (parts, identifier, threshold, method).
    pub split: Vec<Ttlv>,
    /// Set by Destroy: the store deletes the wrapped material with the update.
    pub material_destroyed: bool,
    /// The Key Wrapping Data of a key stored wrapped as registered (its wrapping key is not
    /// on this server): the stored material is then the client's wrapped Key Value, which
    /// akm can return as registered but never use.
    pub registered_wrapping: Option<Ttlv>,
}

impl Object {
    /// The first value of attribute `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.attrs.iter().find(|a| a.name == name).map(|a| &a.value)
    }

    /// Every value of attribute `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.attrs
            .iter()
            .filter(move |a| a.name == name)
            .map(|a| &a.value)
    }

    /// The Unique Identifier of this object's first Link of Link Type `kind`, if any.
    pub fn link(&self, kind: u32) -> Option<String> {
        self.all(attr::LINK).find_map(|v| match v {
            Value::Structure(fields) => {
                let of_kind = fields
                    .iter()
                    .any(|f| f.tag == Tag::LINK_TYPE && f.as_enum() == Some(kind));
                of_kind
                    .then(|| {
                        fields
                            .iter()
                            .find(|f| f.tag == Tag::LINKED_OBJECT_IDENTIFIER)
                            .and_then(Ttlv::as_text)
                            .map(str::to_owned)
                    })
                    .flatten()
            }
            _ => None,
        })
    }

    /// Sets single-valued attribute `name`, replacing any value.
    pub fn set(&mut self, name: &str, value: Value) {
        match self.attrs.iter_mut().find(|a| a.name == name) {
            Some(a) => a.value = value,
            None => self.attrs.push(Attr::new(name, value)),
        }
    }

    /// The access policy of a stored row, read from its columns alone (so access is decided
    /// before the attributes are decoded).
    pub fn row_policy(row: &ObjectRow) -> Result<KeyPolicy, OpError> {
        let mode = AccessMode::parse(&row.access_mode)
            .ok_or_else(|| OpError::CorruptRecord(row.uid.clone()))?;
        Ok(KeyPolicy {
            owner: row.owner.clone(),
            group: row.owner_group.clone(),
            mode,
        })
    }

    /// The object's access policy.
    pub fn key_policy(&self) -> KeyPolicy {
        KeyPolicy {
            owner: self.owner.clone(),
            group: self.owner_group.clone(),
            mode: self.access_mode,
        }
    }

    /// The object's State.
    pub fn state(&self) -> u32 {
        self.enum_attr(attr::STATE).unwrap_or(state::PRE_ACTIVE)
    }

    /// The State the object's dates put it in at `now`. KMIP 1.4 §3.22 and 2.1 §4.57 (State,
    /// transitions 4 and 6): a Pre-Active object becomes Active when its Activation Date is
    /// reached (or modified to the past or now), and an Active one Deactivated when its
    /// Deactivation Date is. "Only the transitions described above are permitted", so a
    /// Pre-Active object reaches Deactivated only through Active: with a passed Deactivation
    /// Date but no passed Activation Date it stays Pre-Active (unusable either way).
    pub fn state_at(&self, now: i64) -> u32 {
        let reached = |name: &str| self.date_attr(name).is_some_and(|d| d <= now);
        let mut current = self.state();
        if current == state::PRE_ACTIVE && reached(attr::ACTIVATION_DATE) {
            current = state::ACTIVE;
        }
        if current == state::ACTIVE && reached(attr::DEACTIVATION_DATE) {
            current = state::DEACTIVATED;
        }
        current
    }

    /// Moves State to where the dates put it at `now` ([`Object::state_at`]), so every
    /// operation, Get Attributes and Locate see the same State, and the next write stores it
    /// (and mirrors it) through the normal write path. Returns whether it changed.
    pub fn settle_state(&mut self, now: i64) -> bool {
        let due = self.state_at(now);
        if due == self.state() {
            return false;
        }
        self.set(attr::STATE, Value::Enumeration(due));
        true
    }

    /// Records a change at `now` (Last Change Date).
    pub fn touch(&mut self, now: i64) {
        self.set(attr::LAST_CHANGE_DATE, Value::DateTime(now));
    }

    /// Decodes a store row.
    pub fn from_row(row: ObjectRow) -> Result<Object, OpError> {
        Object::decode(row, || Repair::None)
    }

    /// Whether `row` decodes as a stored object (its access mode and its record within the
    /// stored-record limit): mirroring stores nothing from a peer that would not.
    pub fn readable(row: &ObjectRow) -> bool {
        AccessMode::parse(&row.access_mode).is_some()
            && Record::decode(&row.attributes, &stored_size::stored_record_limits()).is_some()
    }

    /// Decodes a store row; if its record does not decode within the stored-record limit,
    /// asks `repair` how far to go (an administrator's clean-up of a bad record).
    pub fn decode(row: ObjectRow, repair: impl FnOnce() -> Repair) -> Result<Object, OpError> {
        let corrupt = || OpError::CorruptRecord(row.uid.clone());
        let access_mode = AccessMode::parse(&row.access_mode).ok_or_else(corrupt)?;
        let record = match Record::decode(&row.attributes, &stored_size::stored_record_limits()) {
            Some(r) => r,
            None => Record::repair(&row, repair()).ok_or_else(corrupt)?,
        };
        Ok(Object {
            uid: row.uid,
            object_type: row.object_type,
            owner: row.owner,
            owner_group: row.owner_group,
            access_mode,
            initial_date: row.initial_date,
            key_version: row.key_version,
            attrs: record.attrs,
            format: record.format,
            data_type: record.data_type,
            split: record.split,
            material_destroyed: false,
            registered_wrapping: record.registered_wrapping,
        })
    }

    /// Encodes for the store, deriving the indexed columns from the attributes.
    pub fn to_row(&self) -> ObjectRow {
        let mut meta = vec![Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, self.format)];
        if let Some(dt) = self.data_type {
            meta.push(Ttlv::enumeration(Tag::SECRET_DATA_TYPE, dt));
        }
        if !self.split.is_empty() {
            meta.push(Ttlv::structure(Tag::SPLIT_KEY, self.split.clone()));
        }
        if let Some(w) = &self.registered_wrapping {
            meta.push(w.clone());
        }
        let blob = Ttlv::structure(
            Tag::ATTRIBUTES,
            vec![
                Ttlv::structure(
                    Tag::ATTRIBUTES,
                    self.attrs.iter().map(attributes::to_v2).collect(),
                ),
                Ttlv::structure(Tag::KEY_BLOCK, meta),
            ],
        );
        ObjectRow {
            uid: self.uid.clone(),
            object_type: self.object_type,
            state: self.state(),
            owner: self.owner.clone(),
            owner_group: self.owner_group.clone(),
            access_mode: self.access_mode.as_str().to_owned(),
            algorithm: self.enum_attr(attr::CRYPTOGRAPHIC_ALGORITHM),
            length: self.int_attr(attr::CRYPTOGRAPHIC_LENGTH),
            initial_date: self.initial_date,
            activation_date: self.date_attr(attr::ACTIVATION_DATE),
            deactivation_date: self.date_attr(attr::DEACTIVATION_DATE),
            last_change: self
                .date_attr(attr::LAST_CHANGE_DATE)
                .unwrap_or(self.initial_date),
            key_version: self.key_version,
            names: self.names(),
            groups: self
                .all(attr::OBJECT_GROUP)
                .filter_map(|v| match v {
                    Value::TextString(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            attributes: blob.encode(),
            replaces: self.link(crate::kmip::enums::link_type::REPLACED_OBJECT_LINK),
        }
    }

    /// The Name values.
    pub fn names(&self) -> Vec<String> {
        self.all(attr::NAME).filter_map(name_value).collect()
    }

    /// The value of single-valued Enumeration attribute `name`.
    pub fn enum_attr(&self, name: &str) -> Option<u32> {
        match self.get(name) {
            Some(Value::Enumeration(v)) => Some(*v),
            _ => None,
        }
    }

    /// The value of single-valued Integer attribute `name`.
    pub fn int_attr(&self, name: &str) -> Option<i32> {
        match self.get(name) {
            Some(Value::Integer(v)) => Some(*v),
            _ => None,
        }
    }

    /// The value of single-valued Date-Time attribute `name`.
    pub fn date_attr(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Value::DateTime(v)) => Some(*v),
            _ => None,
        }
    }
}

/// What an object's stored record holds besides the indexed columns.
struct Record {
    attrs: Vec<Attr>,
    format: u32,
    data_type: Option<u32>,
    split: Vec<Ttlv>,
    registered_wrapping: Option<Ttlv>,
}

impl Record {
    /// Decodes a stored record; None if it does not decode within `limits`.
    fn decode(bytes: &[u8], limits: &ttlv::Limits) -> Option<Record> {
        let blob = ttlv::decode(bytes, limits).ok()?;
        let attrs = blob
            .child(Tag::ATTRIBUTES)?
            .children()
            .iter()
            .map(attributes::from_v2)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let meta = blob.child(Tag::KEY_BLOCK);
        Some(Record {
            attrs,
            format: meta
                .and_then(|m| m.child(Tag::KEY_FORMAT_TYPE))
                .and_then(Ttlv::as_enum)
                .unwrap_or(0),
            data_type: meta
                .and_then(|m| m.child(Tag::SECRET_DATA_TYPE))
                .and_then(Ttlv::as_enum),
            split: meta
                .and_then(|m| m.child(Tag::SPLIT_KEY))
                .map(|s| s.children().to_vec())
                .unwrap_or_default(),
            registered_wrapping: meta.and_then(|m| m.child(Tag::KEY_WRAPPING_DATA)).cloned(),
        })
    }

    /// The record of `row`, whose record did not decode normally, as far as `repair` allows.
    fn repair(row: &ObjectRow, repair: Repair) -> Option<Record> {
        if repair == Repair::None {
            return None;
        }
        if let Some(record) = Record::decode(&row.attributes, &stored_size::repair_limits()) {
            tracing::warn!(
                uid = %row.uid,
                bytes = row.attributes.len(),
                "stored attributes over the stored-record limit read for an administrator's repair"
            );
            return Some(record);
        }
        if repair != Repair::Rebuild {
            return None;
        }
        tracing::warn!(
            uid = %row.uid,
            "stored attributes are unreadable: rebuilt from the indexed columns for an \
             administrator's repair; the other attributes are dropped and the key is locked"
        );
        Some(Record::from_columns(row))
    }

    /// A record rebuilt from the indexed columns of a row whose record is damaged. What the
    /// columns do not hold is lost, the key format among it, so the key is locked: Sensitive,
    /// not Extractable, and no cryptographic use.
    fn from_columns(row: &ObjectRow) -> Record {
        let mut attrs = vec![
            Attr::new(attr::UNIQUE_IDENTIFIER, Value::TextString(row.uid.clone())),
            Attr::new(attr::OBJECT_TYPE, Value::Enumeration(row.object_type)),
            Attr::new(attr::STATE, Value::Enumeration(row.state)),
            Attr::new(attr::INITIAL_DATE, Value::DateTime(row.initial_date)),
            Attr::new(attr::LAST_CHANGE_DATE, Value::DateTime(row.last_change)),
            Attr::new(attr::SENSITIVE, Value::Boolean(true)),
            Attr::new(attr::EXTRACTABLE, Value::Boolean(false)),
            Attr::new(attr::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(0)),
        ];
        let optional = [
            (
                attr::CRYPTOGRAPHIC_ALGORITHM,
                row.algorithm.map(Value::Enumeration),
            ),
            (attr::CRYPTOGRAPHIC_LENGTH, row.length.map(Value::Integer)),
            (
                attr::ACTIVATION_DATE,
                row.activation_date.map(Value::DateTime),
            ),
            (
                attr::DEACTIVATION_DATE,
                row.deactivation_date.map(Value::DateTime),
            ),
        ];
        attrs.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some(Attr::new(name, value?))),
        );
        attrs.extend(row.names.iter().map(|n| {
            Attr::new(
                attr::NAME,
                Value::Structure(vec![
                    Ttlv::text(Tag::NAME_VALUE, n.clone()),
                    Ttlv::enumeration(Tag::NAME_TYPE, name_type::UNINTERPRETED_TEXT_STRING),
                ]),
            )
        }));
        attrs.extend(
            row.groups
                .iter()
                .map(|g| Attr::new(attr::OBJECT_GROUP, Value::TextString(g.clone()))),
        );
        Record {
            attrs,
            format: 0,
            data_type: None,
            split: Vec::new(),
            registered_wrapping: None,
        }
    }
}

/// The Name Value of a Name attribute value.
pub fn name_value(v: &Value) -> Option<String> {
    match v {
        Value::Structure(c) => c
            .iter()
            .find(|i| i.tag == Tag::NAME_VALUE)
            .and_then(Ttlv::as_text)
            .map(str::to_owned),
        _ => None,
    }
}
