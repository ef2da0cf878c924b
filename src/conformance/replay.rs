//! Replays one OASIS test-case file against a running KMIP server over mutual TLS: one
//! connection per file, each request sent in order, each response compared with the expected
//! one by the rules of [`super::compare`]. Owns the placeholder bindings of a run: a response
//! placeholder is bound on first sight and substituted into later requests. A request
//! placeholder that no response bound by name stands for the element it names in an earlier
//! response, as the test-case documents use it: `$DATA_0` is the first Data a response
//! carried, `$MAC_DATA` and `$IV_COUNTER_NONCE` the latest MAC Data and IV/Counter/Nonce
//! (CS-BC-M-13-14 and CS-AC-M-6 give the server's output as a literal in the expected
//! response and send it back by placeholder). The value is the server's, not the literal.
//! Steps (exchanges) are numbered from 1, like the request messages of the files.

use super::compare::{self, Context};
use super::xml::{Placeholder, Resolver, Side, TestCase};
use crate::client::Client;
use crate::kmip::ProtocolVersion;
use crate::ttlv::{ItemType, Tag, Ttlv, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Where and as whom to replay.
#[derive(Clone)]
pub struct Target {
    /// `host:port` of the server; the host is checked against its certificate.
    pub addr: String,
    /// The client TLS configuration (client certificate and trusted CA).
    pub tls: Arc<rustls::ClientConfig>,
}

/// Why a file did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The exchange that failed, numbered from 1 (the first request/response pair is step 1),
    /// or `None` when the file could not be read or the connection not made.
    pub step: Option<usize>,
    /// What went wrong: one line per path-level difference, or the error.
    pub details: Vec<String>,
}

/// The outcome of one file: the number of exchanges run, or where it failed.
pub type Outcome = Result<usize, Failure>;

/// Replays the test case at `path` against `target`.
pub async fn replay_file(path: &Path, target: &Target) -> Outcome {
    let case = TestCase::load(path).map_err(|e| Failure {
        step: None,
        details: vec![e],
    })?;
    replay(&case, target).await
}

/// Replays a loaded test case against `target`.
pub async fn replay(case: &TestCase, target: &Target) -> Outcome {
    let fail = |step: Option<usize>, why: String| Failure {
        step,
        details: vec![why],
    };
    // The client's own version field is unused: requests are sent exactly as the file says.
    let mut client = Client::connect(&target.addr, target.tls.clone(), ProtocolVersion::V2_1)
        .await
        .map_err(|e| fail(None, format!("connect to {}: {e}", target.addr)))?;
    let mut run = Run::default();
    for index in 0..case.exchanges.len() {
        let step = index + 1;
        let now = crate::clock::now_secs();
        let request = case
            .message(index, Side::Request, &mut Substitute { run: &run, now })
            .map_err(|e| fail(Some(step), e))?;
        collect_leaves(&request, &mut run.sent);
        let actual = client
            .send(&request)
            .await
            .map_err(|e| fail(Some(step), format!("no response: {e}")))?;
        collect_returned(&actual, &mut run.returned);
        let mut placeholders = HashMap::new();
        let expected = case
            .message(
                index,
                Side::Response,
                &mut Record {
                    placeholders: &mut placeholders,
                    now,
                },
            )
            .map_err(|e| fail(Some(step), e))?;
        let mut cx = Context {
            placeholders: &placeholders,
            bindings: &mut run.bindings,
            sent: &run.sent,
        };
        let diffs = compare::compare(&expected, &actual, &mut cx);
        if !diffs.is_empty() {
            return Err(Failure {
                step: Some(step),
                details: diffs,
            });
        }
    }
    // An orderly goodbye (close_notify), so the server logs no dropped connection per file.
    let _ = client.close().await;
    Ok(case.exchanges.len())
}

/// The state of one file's run.
#[derive(Default)]
struct Run {
    /// Placeholder name → the value the server gave it.
    bindings: HashMap<String, Value>,
    /// Every leaf value sent so far, for the rule that fixed values must come back unchanged.
    sent: Vec<Value>,
    /// Every leaf of the response payloads so far, in order: its element name (normalized by
    /// [`element_key`]) and value, for request placeholders no response bound by name.
    returned: Vec<(String, Value)>,
}

impl Run {
    /// The value an unbound request placeholder stands for: `NAME_n` is the n-th (from 0)
    /// element NAME of the responses so far, `NAME` the latest one.
    fn returned_value(&self, name: &str, item_type: ItemType) -> Option<Value> {
        let (element, index) = match name.rsplit_once('_') {
            Some((element, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                (element, n.parse::<usize>().ok())
            }
            _ => (name, None),
        };
        let key = element_key(element);
        let mut values = self
            .returned
            .iter()
            .filter(|(k, v)| *k == key && v.item_type() == item_type)
            .map(|(_, v)| v);
        match index {
            Some(n) => values.nth(n).cloned(),
            None => values.next_back().cloned(),
        }
    }
}

/// An element name compared without case and underscores: the placeholder `MAC_DATA` and the
/// XML element `MACData` are the same.
fn element_key(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Records the leaves under the Response Payloads of `response`.
fn collect_returned(response: &Ttlv, out: &mut Vec<(String, Value)>) {
    fn leaves(t: &Ttlv, out: &mut Vec<(String, Value)>) {
        match &t.value {
            Value::Structure(children) => children.iter().for_each(|c| leaves(c, out)),
            value => out.push((element_key(&compare::xml_name(t.tag)), value.clone())),
        }
    }
    for item in response.children_with(Tag::BATCH_ITEM) {
        if let Some(payload) = item.child(Tag::RESPONSE_PAYLOAD) {
            leaves(payload, out);
        }
    }
}

fn collect_leaves(t: &Ttlv, out: &mut Vec<Value>) {
    match &t.value {
        Value::Structure(children) => children.iter().for_each(|c| collect_leaves(c, out)),
        value => {
            if !out.contains(value) {
                out.push(value.clone());
            }
        }
    }
}

/// Request placeholders: `$NOW±n` is the client clock ± n, anything else the value bound
/// from an earlier response. An unbound one is a harness or test-case error.
struct Substitute<'a> {
    run: &'a Run,
    now: i64,
}

impl Resolver for Substitute<'_> {
    fn resolve(&mut self, p: &Placeholder<'_>, item_type: ItemType) -> Result<Value, String> {
        if p.name == "NOW" {
            return time_value(self.now, p, item_type);
        }
        if let Some(bound) = self.run.bindings.get(p.name) {
            return Ok(bound.clone());
        }
        self.run.returned_value(p.name, item_type).ok_or_else(|| {
            format!(
                "{} at {} is not bound by an earlier response",
                p.token, p.path
            )
        })
    }
}

/// Expected-response placeholders: recorded by path for the comparison, which binds or checks
/// them; the tree gets a stand-in value of the right type.
struct Record<'a> {
    placeholders: &'a mut HashMap<String, String>,
    now: i64,
}

impl Resolver for Record<'_> {
    fn resolve(&mut self, p: &Placeholder<'_>, item_type: ItemType) -> Result<Value, String> {
        self.placeholders
            .insert(p.path.to_owned(), p.token.to_owned());
        if p.name == "NOW" {
            return time_value(self.now, p, item_type);
        }
        Ok(match item_type {
            ItemType::Integer => Value::Integer(0),
            ItemType::LongInteger => Value::LongInteger(0),
            ItemType::BigInteger => Value::BigInteger(Zeroizing::new(vec![0; 8])),
            ItemType::Enumeration => Value::Enumeration(0),
            ItemType::Boolean => Value::Boolean(false),
            ItemType::TextString => Value::TextString(p.token.to_owned()),
            ItemType::ByteString => Value::ByteString(Zeroizing::new(Vec::new())),
            ItemType::DateTime => Value::DateTime(0),
            ItemType::Interval => Value::Interval(0),
            ItemType::DateTimeExtended => Value::DateTimeExtended(0),
            ItemType::Structure => return Err(format!("{} cannot stand for a Structure", p.token)),
        })
    }
}

fn time_value(now: i64, p: &Placeholder<'_>, item_type: ItemType) -> Result<Value, String> {
    let t = now
        .checked_add(p.offset)
        .ok_or_else(|| format!("{} is out of range", p.token))?;
    match item_type {
        ItemType::DateTime => Ok(Value::DateTime(t)),
        ItemType::DateTimeExtended => Ok(Value::DateTimeExtended(t.saturating_mul(1_000_000))),
        other => Err(format!("{} in a {other:?}", p.token)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(b: &[u8]) -> Value {
        Value::ByteString(Zeroizing::new(b.to_vec()))
    }

    #[test]
    fn unbound_request_placeholders_stand_for_earlier_response_elements() {
        let response = Ttlv::structure(
            Tag::RESPONSE_MESSAGE,
            vec![Ttlv::structure(
                Tag::BATCH_ITEM,
                vec![Ttlv::structure(
                    Tag::RESPONSE_PAYLOAD,
                    vec![
                        Ttlv::bytes(Tag::DATA, vec![1]),
                        Ttlv::bytes(Tag::IV_COUNTER_NONCE, vec![2]),
                        Ttlv::bytes(Tag::MAC_DATA, vec![3]),
                    ],
                )],
            )],
        );
        let later = Ttlv::structure(
            Tag::RESPONSE_MESSAGE,
            vec![Ttlv::structure(
                Tag::BATCH_ITEM,
                vec![Ttlv::structure(
                    Tag::RESPONSE_PAYLOAD,
                    vec![
                        Ttlv::bytes(Tag::DATA, vec![4]),
                        Ttlv::bytes(Tag::MAC_DATA, vec![5]),
                    ],
                )],
            )],
        );
        let mut run = Run::default();
        collect_returned(&response, &mut run.returned);
        collect_returned(&later, &mut run.returned);
        let b = ItemType::ByteString;
        assert_eq!(run.returned_value("DATA_0", b), Some(bytes(&[1])));
        assert_eq!(run.returned_value("DATA_1", b), Some(bytes(&[4])));
        assert_eq!(run.returned_value("DATA_2", b), None);
        assert_eq!(run.returned_value("MAC_DATA", b), Some(bytes(&[5])));
        assert_eq!(run.returned_value("IV_COUNTER_NONCE", b), Some(bytes(&[2])));
        assert_eq!(run.returned_value("MAC_DATA", ItemType::TextString), None);
        assert_eq!(run.returned_value("SIGNATURE_DATA", b), None);
    }
}
