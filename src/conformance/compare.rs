//! Compares the response akm sent with the response an OASIS test case expects. Owns the ONE
//! table of comparison rules ([`RULES`]), each row citing the permitted variation of KMIP
//! Additional Message Encodings v1.0 §8.4 ("Permitted Test Case Variations") that allows it,
//! and the walk that applies them and reports path-level differences.
//!
//! Placeholders in the expected response (`$UNIQUE_IDENTIFIER_0`, `$KEY_MATERIAL`, ...) are
//! bound to the actual value on first sight and must be equal afterwards; `$NOW±n` means "any
//! time" (§8.4.1 lets server-set dates vary).

use crate::kmip::enums::{operation as op, ENUM_TABLE};
use crate::ttlv::{Tag, Ttlv, Value, TAG_TABLE};
use std::collections::HashMap;

/// How one element of the expected response is compared with the actual one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Present in both, same value (structures: same children, matched by tag and order).
    Exact,
    /// The value may differ, and the element may be missing from either side.
    Ignore,
    /// Must be present; its value may differ.
    Present,
    /// May be missing from either side; when both have it, compared exactly.
    Optional,
    /// May be missing from either side when its value is 0; otherwise exact.
    ZeroOrAbsent,
    /// A structure whose expected children must each match a distinct actual child, in any
    /// order; the actual one may have more.
    Subset,
    /// Exact when the expected value is one the client sent earlier in the file (a fixed
    /// value the server must keep); ignored when the server generated it.
    ClientFixed,
}

/// Where a rule applies: the element's tag, optionally only under a given parent tag, and
/// optionally only in the batch item of a given operation.
#[derive(Clone, Copy, Debug)]
pub struct Scope {
    /// The element's tag.
    pub tag: Tag,
    /// Only under this parent.
    pub parent: Option<Tag>,
    /// Only in a batch item of this Operation.
    pub operation: Option<u32>,
}

const fn any(tag: Tag) -> Scope {
    Scope {
        tag,
        parent: None,
        operation: None,
    }
}

const fn under(parent: Tag, tag: Tag) -> Scope {
    Scope {
        tag,
        parent: Some(parent),
        operation: None,
    }
}

const fn payload_of(operation: u32) -> Scope {
    Scope {
        tag: Tag::RESPONSE_PAYLOAD,
        parent: None,
        operation: Some(operation),
    }
}

/// A list item of a Query response payload.
const fn query_list(tag: Tag) -> Scope {
    Scope {
        tag,
        parent: Some(Tag::RESPONSE_PAYLOAD),
        operation: Some(op::QUERY),
    }
}

/// The comparison rules, first match wins; anything not listed is [`Rule::Exact`] (Operation,
/// Result Status, Result Reason, object types, client-set attribute values). The third column
/// is the permitted variation (Additional Message Encodings v1.0 §8.4) that allows the rule.
#[rustfmt::skip]
pub const RULES: &[(Scope, Rule, &str)] = &[
    // §8.4.1 Variable Items.
    (any(Tag::TIME_STAMP), Rule::Ignore, "8.4.1 TimeStamp"),
    (any(Tag::UNIQUE_BATCH_ITEM_ID), Rule::Ignore, "8.4.1 UniqueBatchItemIdentifier"),
    (any(Tag::ASYNCHRONOUS_CORRELATION_VALUE), Rule::Ignore, "8.4.1 AsynchronousCorrelationValue"),
    (any(Tag::SERVER_CORRELATION_VALUE), Rule::Ignore, "server-chosen, like 8.4.1 AsynchronousCorrelationValue"),
    (any(Tag::KEY_MATERIAL), Rule::ClientFixed, "8.4.1 KeyMaterial of server-generated objects"),
    (any(Tag::DATA), Rule::ClientFixed, "8.4.1 Data: variable cryptographic output"),
    (any(Tag::SIGNATURE_DATA), Rule::ClientFixed, "8.4.1 SignatureData: variable cryptographic output"),
    (any(Tag::MAC_DATA), Rule::ClientFixed, "8.4.1 MACData: variable cryptographic output"),
    (any(Tag::IV_COUNTER_NONCE), Rule::ClientFixed, "8.4.1 IVCounterNonce: variable cryptographic output"),
    (any(Tag::ACTIVATION_DATE), Rule::ClientFixed, "8.4.1 ActivationDate not fixed by the request"),
    (any(Tag::ARCHIVE_DATE), Rule::ClientFixed, "8.4.1 ArchiveDate not fixed by the request"),
    (any(Tag::COMPROMISE_DATE), Rule::ClientFixed, "8.4.1 CompromiseDate not fixed by the request"),
    (any(Tag::COMPROMISE_OCCURRENCE_DATE), Rule::ClientFixed, "8.4.1 CompromiseOccurrenceDate not fixed by the request"),
    (any(Tag::DEACTIVATION_DATE), Rule::ClientFixed, "8.4.1 DeactivationDate not fixed by the request"),
    (any(Tag::DESTROY_DATE), Rule::ClientFixed, "8.4.1 DestroyDate not fixed by the request"),
    (any(Tag::INITIAL_DATE), Rule::ClientFixed, "8.4.1 InitialDate not fixed by the request"),
    (any(Tag::LAST_CHANGE_DATE), Rule::ClientFixed, "8.4.1 LastChangeDate not fixed by the request"),
    (any(Tag::PROCESS_START_DATE), Rule::ClientFixed, "8.4.1 ProcessStartDate not fixed by the request"),
    (any(Tag::PROTECT_STOP_DATE), Rule::ClientFixed, "8.4.1 ProtectStopDate not fixed by the request"),
    (any(Tag::VALIDITY_DATE), Rule::ClientFixed, "8.4.1 ValidityDate not fixed by the request"),
    (any(Tag::ORIGINAL_CREATION_DATE), Rule::ClientFixed, "8.4.1 OriginalCreationDate not fixed by the request"),
    (any(Tag::LINKED_OBJECT_IDENTIFIER), Rule::Ignore, "8.4.1 LinkedObjectIdentifier"),
    // In 1.x the Digest's fields sit in an AttributeValue, so the value is matched anywhere.
    (any(Tag::DIGEST_VALUE), Rule::Ignore, "8.4.1 Digest b. the Digest Value"),
    (under(Tag::DIGEST, Tag::HASHING_ALGORITHM), Rule::Ignore, "8.4.1 Digest a. the HashingAlgorithm the server selects"),
    (under(Tag::DIGEST, Tag::KEY_FORMAT_TYPE), Rule::Ignore, "8.4.1 KeyFormatType selected by the server"),
    // Not named in §8.4.1, but the same kind of server choice as the Digest's hashing
    // algorithm (8.4.1 Digest a.); the vectors' ANSI X9.31 generator is one NIST withdrew
    // (SP 800-131A Rev. 1 disallows it after 2015), so a server may not report it.
    (any(Tag::RANDOM_NUMBER_GENERATOR), Rule::Present, "like 8.4.1 Digest a.: the generator the server selects"),
    (payload_of(op::QUERY), Rule::Subset, "8.4.1 Query: the lists below may vary; other items are compared"),
    // The operations and object types a profile requires are the ones its test cases use,
    // which the replay checks by running them; the lists Query reports may differ either way.
    (query_list(Tag::OPERATION), Rule::Ignore, "8.4.1 Operation Types reported in Query other than those required"),
    (query_list(Tag::OBJECT_TYPE), Rule::Ignore, "8.4.1 Object Types reported in Query other than those required"),
    (any(Tag::EXTENSION_INFORMATION), Rule::Ignore, "8.4.1 Extensions reported in Query"),
    (any(Tag::APPLICATION_NAMESPACE), Rule::Ignore, "8.4.1 Application Namespaces reported in Query"),
    (payload_of(op::DISCOVER_VERSIONS), Rule::Subset, "8.4.1 DiscoverVersions may list additional protocol versions"),
    (payload_of(op::GET_ATTRIBUTES), Rule::Subset, "8.4.1 additional attributes beyond those noted in the response"),
    (payload_of(op::GET_ATTRIBUTE_LIST), Rule::Subset, "8.4.1 additional attributes beyond those noted in the response"),
    (any(Tag::ATTRIBUTES), Rule::Subset, "8.4.1 additional attributes; Object Group and y- attributes may be added"),
    (any(Tag::VENDOR_IDENTIFICATION), Rule::Ignore, "8.4.1 VendorIdentification may vary"),
    (any(Tag::SERVER_INFORMATION), Rule::Ignore, "server-specific, like 8.4.1 VendorIdentification"),
    (any(Tag::RESULT_MESSAGE), Rule::Ignore, "8.4.1 ResultMessage may or may not be included, and vary"),
    (any(Tag::ATTRIBUTE_INDEX), Rule::ZeroOrAbsent, "8.4.1 AttributeIndex 0 may or may not be included"),
    (under(Tag::RESPONSE_PAYLOAD, Tag::TEMPLATE_ATTRIBUTE), Rule::Optional, "8.4.1 optional TemplateAttribute in responses"),
    (under(Tag::RESPONSE_PAYLOAD, Tag::LOCATED_ITEMS), Rule::Optional, "KMIP 2.1 Locate response: Located Items is optional (MAY omit, MAY return)"),
    (any(Tag::MESSAGE_EXTENSION), Rule::Optional, "8.4.1 non-critical vendor Message Extensions"),
];

/// The rule for `tag` under `parent` in a batch item of `operation`.
pub fn rule_for(tag: Tag, parent: Option<Tag>, operation: Option<u32>) -> Rule {
    RULES
        .iter()
        .find(|(scope, _, _)| {
            scope.tag == tag
                && scope.parent.is_none_or(|p| Some(p) == parent)
                && scope.operation.is_none_or(|o| Some(o) == operation)
        })
        .map_or(Rule::Exact, |(_, rule, _)| *rule)
}

/// What the comparison needs besides the two trees.
pub struct Context<'a> {
    /// Placeholders of the expected response by XML path (as `xml::Placeholder::path` gives
    /// them): the token, e.g. `$UNIQUE_IDENTIFIER_0` or `$NOW`.
    pub placeholders: &'a HashMap<String, String>,
    /// Placeholder name → the value bound on first sight; grows as the file runs.
    pub bindings: &'a mut HashMap<String, Value>,
    /// Every leaf value the client sent so far in this file (for [`Rule::ClientFixed`]).
    pub sent: &'a [Value],
}

/// Compares `actual` with `expected`; returns one line per difference, each starting with
/// the XML path of the expected element. Bindings are updated only when there is no
/// difference, so a failed step leaves them as they were.
pub fn compare(expected: &Ttlv, actual: &Ttlv, cx: &mut Context<'_>) -> Vec<String> {
    let mut walk = Walk {
        placeholders: cx.placeholders,
        bindings: cx.bindings.clone(),
        sent: cx.sent,
        attribute: None,
        diffs: Vec::new(),
    };
    let path = xml_name(expected.tag);
    if expected.tag != actual.tag {
        return vec![format!(
            "{path}: expected <{path}>, got <{}>",
            xml_name(actual.tag)
        )];
    }
    walk.item(expected, actual, &path, None, None);
    if walk.diffs.is_empty() {
        *cx.bindings = walk.bindings;
    }
    walk.diffs
}

struct Walk<'a> {
    placeholders: &'a HashMap<String, String>,
    bindings: HashMap<String, Value>,
    sent: &'a [Value],
    /// The attribute a 1.x Attribute structure being walked names (its AttributeValue
    /// follows that attribute's rules).
    attribute: Option<Tag>,
    diffs: Vec<String>,
}

impl Walk<'_> {
    /// Compares two items with the same tag; `rule` is the rule this element was found under.
    fn item(
        &mut self,
        expected: &Ttlv,
        actual: &Ttlv,
        path: &str,
        parent: Option<Tag>,
        operation: Option<u32>,
    ) {
        // A 1.x AttributeValue follows the rules of the attribute its AttributeName names, so
        // that one row covers both encodings.
        let tag = match self.attribute {
            Some(attribute) if expected.tag == Tag::ATTRIBUTE_VALUE => attribute,
            _ => expected.tag,
        };
        let rule = rule_for(tag, parent, operation);
        if rule == Rule::Ignore || rule == Rule::Present {
            return;
        }
        match (&expected.value, &actual.value) {
            (Value::Structure(e), Value::Structure(a)) => {
                // A batch item's children are compared under its Operation's rules.
                let operation = if expected.tag == Tag::BATCH_ITEM {
                    expected.child(Tag::OPERATION).and_then(Ttlv::as_enum)
                } else {
                    operation
                };
                let saved = self.attribute;
                self.attribute = expected
                    .child(Tag::ATTRIBUTE_NAME)
                    .and_then(Ttlv::as_text)
                    .and_then(Tag::from_name);
                if rule == Rule::Subset {
                    self.subset(e, a, path, tag, operation);
                } else {
                    self.ordered(e, a, path, tag, operation);
                }
                self.attribute = saved;
            }
            _ => self.leaf(expected, actual, path, rule),
        }
    }

    fn leaf(&mut self, expected: &Ttlv, actual: &Ttlv, path: &str, rule: Rule) {
        if expected.value.item_type() != actual.value.item_type() {
            self.diffs.push(format!(
                "{path}: expected a {:?}, got {}",
                expected.value.item_type(),
                show(actual)
            ));
            return;
        }
        if let Some(token) = self.placeholders.get(path) {
            let name = placeholder_name(token);
            if name == "NOW" {
                return; // a time the server chose: §8.4.1 lets it vary
            }
            match self.bindings.get(name) {
                Some(bound) if *bound == actual.value => {}
                Some(bound) => self.diffs.push(format!(
                    "{path}: expected {token} = {}, got {}",
                    show(&Ttlv::new(expected.tag, bound.clone())),
                    show(actual)
                )),
                None => {
                    self.bindings.insert(name.to_owned(), actual.value.clone());
                }
            }
            return;
        }
        if rule == Rule::ClientFixed && !self.sent.contains(&expected.value) {
            return; // the server generated it
        }
        if expected.value != actual.value {
            self.diffs.push(format!(
                "{path}: expected {}, got {}",
                show(expected),
                show(actual)
            ));
        }
    }

    /// Children matched by tag and by order among siblings of the same tag.
    fn ordered(
        &mut self,
        expected: &[Ttlv],
        actual: &[Ttlv],
        path: &str,
        parent: Tag,
        operation: Option<u32>,
    ) {
        let mut seen: HashMap<Tag, usize> = HashMap::new();
        for e in expected {
            let k = seen.entry(e.tag).or_default();
            let child_path = child_path(path, expected, e.tag, *k);
            let found = actual.iter().filter(|a| a.tag == e.tag).nth(*k);
            *k += 1;
            match found {
                Some(a) => self.item(e, a, &child_path, Some(parent), operation),
                None => self.missing(e, &child_path, parent, operation),
            }
        }
        let mut counted: HashMap<Tag, usize> = HashMap::new();
        for a in actual {
            let index = counted.entry(a.tag).or_default();
            if *index >= seen.get(&a.tag).copied().unwrap_or(0) {
                self.unexpected(a, path, parent, operation);
            }
            *index += 1;
        }
    }

    /// Each expected child must match a distinct actual child with the same tag, in any order.
    fn subset(
        &mut self,
        expected: &[Ttlv],
        actual: &[Ttlv],
        path: &str,
        parent: Tag,
        operation: Option<u32>,
    ) {
        let mut used = vec![false; actual.len()];
        let mut seen: HashMap<Tag, usize> = HashMap::new();
        for e in expected {
            let k = seen.entry(e.tag).or_default();
            let child_path = child_path(path, expected, e.tag, *k);
            *k += 1;
            let candidates: Vec<usize> = (0..actual.len())
                .filter(|&i| !used[i] && actual[i].tag == e.tag)
                .collect();
            // The candidate with the fewest differences makes the most useful report.
            let mut closest: Option<Vec<String>> = None;
            let mut matched = false;
            for &i in &candidates {
                let mut trial = Walk {
                    placeholders: self.placeholders,
                    bindings: self.bindings.clone(),
                    sent: self.sent,
                    attribute: self.attribute,
                    diffs: Vec::new(),
                };
                trial.item(e, &actual[i], &child_path, Some(parent), operation);
                if trial.diffs.is_empty() {
                    self.bindings = trial.bindings;
                    used[i] = true;
                    matched = true;
                    break;
                }
                if closest.as_ref().is_none_or(|c| trial.diffs.len() < c.len()) {
                    closest = Some(trial.diffs);
                }
            }
            match closest {
                _ if matched => {}
                Some(diffs) => {
                    if candidates.len() > 1 {
                        self.diffs.push(format!(
                            "{child_path}: none of the {} unmatched actual <{}> matches; the closest:",
                            candidates.len(),
                            xml_name(e.tag)
                        ));
                    }
                    self.diffs.extend(diffs);
                }
                None => self.missing(e, &child_path, parent, operation),
            }
        }
    }

    fn missing(&mut self, e: &Ttlv, path: &str, parent: Tag, operation: Option<u32>) {
        let rule = rule_for(e.tag, Some(parent), operation);
        let optional = matches!(rule, Rule::Ignore | Rule::Optional)
            || (rule == Rule::ZeroOrAbsent && e.as_int() == Some(0));
        if !optional {
            self.diffs
                .push(format!("{path}: missing (expected {})", show(e)));
        }
    }

    fn unexpected(&mut self, a: &Ttlv, path: &str, parent: Tag, operation: Option<u32>) {
        let rule = rule_for(a.tag, Some(parent), operation);
        let optional = matches!(rule, Rule::Ignore | Rule::Optional)
            || (rule == Rule::ZeroOrAbsent && a.as_int() == Some(0));
        if !optional {
            self.diffs.push(format!(
                "{path}/{}: unexpected (got {})",
                xml_name(a.tag),
                show(a)
            ));
        }
    }
}

/// `path/Name`, with `[k]` (1-based) when several expected siblings share the tag, the way
/// the XML reader writes placeholder paths.
fn child_path(path: &str, siblings: &[Ttlv], tag: Tag, k: usize) -> String {
    let name = xml_name(tag);
    if siblings.iter().filter(|s| s.tag == tag).count() > 1 {
        format!("{path}/{name}[{}]", k + 1)
    } else {
        format!("{path}/{name}")
    }
}

/// `NAME` of a `$NAME±n` token.
fn placeholder_name(token: &str) -> &str {
    let body = token.strip_prefix('$').unwrap_or(token);
    body.find(['+', '-']).map_or(body, |at| &body[..at])
}

/// The XML element name of a tag, or `x` + hex for an unknown one.
pub fn xml_name(tag: Tag) -> String {
    TAG_TABLE
        .binary_search_by_key(&tag.0, |(value, _, _)| *value)
        .map(|i| TAG_TABLE[i].2.to_owned())
        .unwrap_or_else(|_| format!("x{:06X}", tag.0))
}

/// A short rendering of an item for a diff line. Byte strings show only their length: they
/// may be key material.
fn show(t: &Ttlv) -> String {
    match &t.value {
        Value::Structure(children) => format!("a structure of {} items", children.len()),
        Value::Enumeration(v) if t.tag == Tag::ATTRIBUTE_REFERENCE => xml_name(Tag(*v)),
        Value::Enumeration(v) => match enum_token(t.tag, *v) {
            Some(token) => token.to_owned(),
            None => format!("0x{v:08X}"),
        },
        Value::TextString(s) => format!("{s:?}"),
        Value::Integer(v) => v.to_string(),
        Value::LongInteger(v) => v.to_string(),
        Value::Boolean(v) => v.to_string(),
        Value::DateTime(v) | Value::DateTimeExtended(v) => format!("time {v}"),
        Value::Interval(v) => format!("{v} s"),
        Value::ByteString(b) | Value::BigInteger(b) => format!("<{} bytes>", b.len()),
    }
}

/// The XML token of enumeration value `v` of the enumeration named like `tag`.
fn enum_token(tag: Tag, v: u32) -> Option<&'static str> {
    let enumeration = match tag {
        Tag::OPERATION => "Operation",
        _ => tag.name()?,
    };
    ENUM_TABLE
        .iter()
        .find(|(e, _, _, value)| *e == enumeration && *value == v)
        .map(|(_, _, token, _)| *token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmip::enums::{object_type as ot, result_status as rs};

    fn item(op_: u32, payload: Vec<Ttlv>) -> Ttlv {
        Ttlv::structure(
            Tag::RESPONSE_MESSAGE,
            vec![Ttlv::structure(
                Tag::BATCH_ITEM,
                vec![
                    Ttlv::enumeration(Tag::OPERATION, op_),
                    Ttlv::enumeration(Tag::RESULT_STATUS, rs::SUCCESS),
                    Ttlv::structure(Tag::RESPONSE_PAYLOAD, payload),
                ],
            )],
        )
    }

    const UID_PATH: &str = "ResponseMessage/BatchItem/ResponsePayload/UniqueIdentifier";

    /// Compares with `placeholders` and `sent`, starting from `bindings`.
    fn diff(
        expected: &Ttlv,
        actual: &Ttlv,
        placeholders: &[(&str, &str)],
        bindings: &mut HashMap<String, Value>,
        sent: &[Value],
    ) -> Vec<String> {
        let placeholders = placeholders
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        let mut cx = Context {
            placeholders: &placeholders,
            bindings,
            sent,
        };
        compare(expected, actual, &mut cx)
    }

    fn plain(expected: &Ttlv, actual: &Ttlv) -> Vec<String> {
        diff(expected, actual, &[], &mut HashMap::new(), &[])
    }

    #[test]
    fn exact_fields_report_the_path_and_both_values() {
        let e = item(
            op::CREATE,
            vec![Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY)],
        );
        let a = item(
            op::CREATE,
            vec![Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SECRET_DATA)],
        );
        assert_eq!(
            plain(&e, &a),
            ["ResponseMessage/BatchItem/ResponsePayload/ObjectType: expected SymmetricKey, got SecretData"]
        );
        let none = item(op::CREATE, vec![]);
        assert_eq!(
            plain(&e, &none),
            ["ResponseMessage/BatchItem/ResponsePayload/ObjectType: missing (expected SymmetricKey)"]
        );
        assert_eq!(
            plain(&none, &e),
            ["ResponseMessage/BatchItem/ResponsePayload/ObjectType: unexpected (got SymmetricKey)"]
        );
        let text = item(op::CREATE, vec![Ttlv::text(Tag::OBJECT_TYPE, "x")]);
        assert_eq!(plain(&e, &text).len(), 1);
        let other = Ttlv::structure(Tag::REQUEST_MESSAGE, vec![]);
        assert_eq!(plain(&e, &other).len(), 1);
    }

    #[test]
    fn placeholders_bind_once_and_then_must_match() {
        let e = item(
            op::CREATE,
            vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, "$UNIQUE_IDENTIFIER_0")],
        );
        let a1 = item(op::CREATE, vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, "id-1")]);
        let a2 = item(op::CREATE, vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, "id-2")]);
        let ph = [(UID_PATH, "$UNIQUE_IDENTIFIER_0")];
        let mut bindings = HashMap::new();
        assert!(diff(&e, &a1, &ph, &mut bindings, &[]).is_empty());
        assert_eq!(
            bindings.get("UNIQUE_IDENTIFIER_0"),
            Some(&Value::TextString("id-1".into()))
        );
        assert!(diff(&e, &a1, &ph, &mut bindings, &[]).is_empty());
        let d = diff(&e, &a2, &ph, &mut bindings, &[]);
        assert_eq!(d.len(), 1);
        assert!(d[0].contains("$UNIQUE_IDENTIFIER_0 = \"id-1\""), "{d:?}");
        // A failed comparison binds nothing.
        let e2 = item(
            op::CREATE,
            vec![
                Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SYMMETRIC_KEY),
                Ttlv::text(Tag::UNIQUE_IDENTIFIER, "$UNIQUE_IDENTIFIER_1"),
            ],
        );
        let a3 = item(
            op::CREATE,
            vec![
                Ttlv::enumeration(Tag::OBJECT_TYPE, ot::SECRET_DATA),
                Ttlv::text(Tag::UNIQUE_IDENTIFIER, "id-3"),
            ],
        );
        let ph1 = [(UID_PATH, "$UNIQUE_IDENTIFIER_1")];
        assert_eq!(diff(&e2, &a3, &ph1, &mut bindings, &[]).len(), 1);
        assert!(!bindings.contains_key("UNIQUE_IDENTIFIER_1"));
    }

    #[test]
    fn server_chosen_values_vary_and_client_fixed_ones_do_not() {
        let material = |b: &[u8]| item(op::GET, vec![Ttlv::bytes(Tag::KEY_MATERIAL, b.to_vec())]);
        // Generated by the server: any bytes.
        assert!(plain(&material(&[1; 16]), &material(&[2; 16])).is_empty());
        // Sent by the client: must come back unchanged.
        let sent = [Value::ByteString(vec![1u8; 16].into())];
        let d = diff(
            &material(&[1; 16]),
            &material(&[2; 16]),
            &[],
            &mut HashMap::new(),
            &sent,
        );
        assert_eq!(d.len(), 1);
        // Time stamps and result messages never count; $NOW means any time.
        let header = |t: i64, msg: &str| {
            Ttlv::structure(
                Tag::RESPONSE_MESSAGE,
                vec![
                    Ttlv::structure(
                        Tag::RESPONSE_HEADER,
                        vec![Ttlv::datetime(Tag::TIME_STAMP, t)],
                    ),
                    Ttlv::structure(Tag::BATCH_ITEM, vec![Ttlv::text(Tag::RESULT_MESSAGE, msg)]),
                ],
            )
        };
        assert!(plain(&header(1, "DENIED"), &header(2, "refused")).is_empty());
        let now = [(
            "ResponseMessage/BatchItem/ResponsePayload/InitialDate",
            "$NOW",
        )];
        let e = item(
            op::GET_ATTRIBUTES,
            vec![Ttlv::datetime(Tag::INITIAL_DATE, 5)],
        );
        let a = item(
            op::GET_ATTRIBUTES,
            vec![Ttlv::datetime(Tag::INITIAL_DATE, 9)],
        );
        assert!(diff(&e, &a, &now, &mut HashMap::new(), &[]).is_empty());
    }

    #[test]
    fn lists_are_subsets_in_any_order() {
        let attr = |name: &str, v: i32| {
            Ttlv::structure(
                Tag::ATTRIBUTE,
                vec![
                    Ttlv::text(Tag::ATTRIBUTE_NAME, name),
                    Ttlv::integer(Tag::ATTRIBUTE_VALUE, v),
                ],
            )
        };
        let e = item(
            op::GET_ATTRIBUTES,
            vec![attr("Cryptographic Length", 256), attr("x-a", 1)],
        );
        let a = item(
            op::GET_ATTRIBUTES,
            vec![
                attr("x-a", 1),
                attr("x-extra", 2),
                attr("Cryptographic Length", 256),
            ],
        );
        assert!(plain(&e, &a).is_empty());
        let wrong = item(
            op::GET_ATTRIBUTES,
            vec![attr("x-a", 1), attr("Cryptographic Length", 128)],
        );
        let d = plain(&e, &wrong);
        assert!(
            d.iter().any(|l| l.contains("expected 256, got 128")),
            "{d:?}"
        );
        // Outside the subset rules extra children are differences.
        let e = item(op::ACTIVATE, vec![]);
        let a = item(op::ACTIVATE, vec![attr("x-a", 1)]);
        assert_eq!(plain(&e, &a).len(), 1);
        // Query's operation list may differ either way.
        let q = |ops: &[u32]| {
            item(
                op::QUERY,
                ops.iter()
                    .map(|o| Ttlv::enumeration(Tag::OPERATION, *o))
                    .collect(),
            )
        };
        assert!(plain(&q(&[op::CREATE, op::POLL]), &q(&[op::GET])).is_empty());
    }

    #[test]
    fn optional_items_may_be_absent() {
        let index = |i: i32| {
            item(
                op::GET_ATTRIBUTES,
                vec![Ttlv::structure(
                    Tag::ATTRIBUTE,
                    vec![
                        Ttlv::text(Tag::ATTRIBUTE_NAME, "x-a"),
                        Ttlv::integer(Tag::ATTRIBUTE_INDEX, i),
                        Ttlv::integer(Tag::ATTRIBUTE_VALUE, 1),
                    ],
                )],
            )
        };
        let bare = item(
            op::GET_ATTRIBUTES,
            vec![Ttlv::structure(
                Tag::ATTRIBUTE,
                vec![
                    Ttlv::text(Tag::ATTRIBUTE_NAME, "x-a"),
                    Ttlv::integer(Tag::ATTRIBUTE_VALUE, 1),
                ],
            )],
        );
        assert!(plain(&index(0), &bare).is_empty());
        assert!(plain(&bare, &index(0)).is_empty());
        assert!(!plain(&index(1), &bare).is_empty());
        // Random Number Generator: present, any value; absent is a difference.
        let rng = |alg: u32| {
            item(
                op::GET_ATTRIBUTES,
                vec![Ttlv::structure(
                    Tag::ATTRIBUTES,
                    vec![Ttlv::structure(
                        Tag::RANDOM_NUMBER_GENERATOR,
                        vec![Ttlv::enumeration(Tag::RNG_ALGORITHM, alg)],
                    )],
                )],
            )
        };
        assert!(plain(&rng(5), &rng(1)).is_empty());
        let empty = item(
            op::GET_ATTRIBUTES,
            vec![Ttlv::structure(Tag::ATTRIBUTES, vec![])],
        );
        assert_eq!(plain(&rng(5), &empty).len(), 1);
        // A 1.x AttributeValue follows its attribute's rule: a Digest value may vary.
        let digest = |b: u8| {
            item(
                op::GET_ATTRIBUTES,
                vec![Ttlv::structure(
                    Tag::ATTRIBUTE,
                    vec![
                        Ttlv::text(Tag::ATTRIBUTE_NAME, "Digest"),
                        Ttlv::structure(
                            Tag::ATTRIBUTE_VALUE,
                            vec![Ttlv::bytes(Tag::DIGEST_VALUE, vec![b; 32])],
                        ),
                    ],
                )],
            )
        };
        assert!(plain(&digest(1), &digest(2)).is_empty());
    }
}
