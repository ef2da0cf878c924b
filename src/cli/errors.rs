//! What a failed command tells its operator: the exit code table ([`Exit`], the one place the
//! codes are defined), server refusals put in plain words with the fix ([`Refusal`]), and the
//! JSON form of an error for `--json` (one object on stdout: message, reason, exit_code).

use super::CliError;
use crate::client::{Client, ClientError};
use crate::kmip::attr;
use crate::kmip::enums::{operation as op, result_reason as rr, state};
use crate::kmip::names;
use crate::ttlv::{Tag, Ttlv};
use serde_json::json;

/// The exit codes of `akm`. Scripts may rely on them; they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    /// The command did what was asked.
    Ok = 0,
    /// Any other failure: local files, certificates, a server that could not start, a
    /// refused restore, failed conformance cases.
    Failure = 1,
    /// The server answered and refused the operation (KMIP Operation Failed): not found,
    /// wrong state, permission denied, dual control...
    Refused = 2,
    /// `akm audit verify` found a modified, missing or reordered record.
    AuditFault = 3,
    /// The command line is wrong (unknown flag, missing or bad value), as `--help` shows.
    Usage = 64,
    /// No server could be reached: the connection or the TLS handshake failed.
    Unreachable = 69,
    /// A local file or directory exists but this user may not read or write it.
    NoPermission = 77,
    /// No configuration file was found, or it is invalid (the message names the key).
    Config = 78,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A KMIP refusal with what the command was doing, for a message in plain words.
#[derive(Debug)]
pub struct Refusal {
    /// The operation that was refused.
    pub operation: u32,
    /// The key it named, if any.
    pub uid: Option<String>,
    /// The Result Reason.
    pub reason: u32,
    /// The server's Result Message.
    pub server_message: String,
    /// The key's state, when a wrong-state refusal made us look it up.
    pub state: Option<u32>,
    /// The client certificate's CN, when known.
    pub identity: Option<String>,
}

impl Refusal {
    /// Whether the server refused because of the object's lifecycle state (KMIP 1.x sends
    /// that as Permission Denied too; akm's message tells the two apart).
    fn wrong_state(&self) -> bool {
        self.reason == rr::WRONG_KEY_LIFECYCLE_STATE || self.server_message.contains("wrong state")
    }

    fn key(&self) -> String {
        match &self.uid {
            Some(u) => format!("key {u}"),
            None => "the key".into(),
        }
    }

    /// What the operation is called in a sentence ("destroy", "get attributes of").
    fn verb(&self) -> String {
        let name = crate::audit::operation_name(self.operation);
        name.trim_start_matches("x-")
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let sep = (i > 0 && c.is_ascii_uppercase()).then_some(' ');
                sep.into_iter().chain(c.to_lowercase())
            })
            .collect()
    }

    fn state_sentence(&self) -> String {
        let uid = self.uid.as_deref().unwrap_or("<uid>");
        let Some(st) = self.state else {
            return format!(
                "{} is in the wrong state to {}; see its state with `akm key get {uid}`",
                self.key(),
                self.verb()
            );
        };
        let name = names::value_name(attr::STATE, st).unwrap_or("in another state");
        let fix = match (self.operation, st) {
            (op::DESTROY, state::ACTIVE) => {
                format!("revoke it first with `akm key revoke {uid}`")
            }
            (op::ACTIVATE, _) => "only a Pre-Active key can be activated".into(),
            (_, state::PRE_ACTIVE) => format!("activate it first with `akm key activate {uid}`"),
            (_, state::DESTROYED | state::DESTROYED_COMPROMISED) => {
                "its material is gone; use another key".into()
            }
            _ => format!("a {name} key does not allow this"),
        };
        format!("{} is {name}: {fix}", self.key())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = self.key();
        let who = self.identity.as_deref().unwrap_or("this client");
        let text = match self.reason {
            rr::ITEM_NOT_FOUND | rr::OBJECT_NOT_FOUND if self.uid.is_some() => format!(
                "{key} not found (or not visible to {who}); list your keys with `akm key list`"
            ),
            rr::OBJECT_DESTROYED => format!("{key} has been destroyed"),
            _ if self.wrong_state() => self.state_sentence(),
            rr::PERMISSION_DENIED | rr::NOT_AUTHORISED => {
                let target = match &self.uid {
                    Some(u) => format!(" key {u}"),
                    None => String::new(),
                };
                let detail = if self.server_message.is_empty()
                    || self.server_message == "permission denied"
                {
                    "ask an administrator for access (akm key policy, akm user set)".to_owned()
                } else {
                    self.server_message.clone()
                };
                format!(
                    "permission denied: {who} may not {}{target}: {detail}",
                    self.verb()
                )
            }
            _ => format!(
                "the server refused to {}{}: {}",
                self.verb(),
                self.uid
                    .as_ref()
                    .map(|u| format!(" key {u}"))
                    .unwrap_or_default(),
                if self.server_message.is_empty() {
                    names::result_reason_name(self.reason)
                } else {
                    self.server_message.clone()
                }
            ),
        };
        f.write_str(&text)
    }
}

/// The Unique Identifier a request payload names, if any.
fn uid_in(payload: &[Ttlv]) -> Option<String> {
    payload
        .iter()
        .find(|t| t.tag == Tag::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .map(str::to_owned)
}

/// The key's State, looked up to explain a wrong-state refusal (None if that fails too).
async fn state_of(client: &mut Client, uid: &str) -> Option<u32> {
    let payload = vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid),
        Ttlv::text(Tag::ATTRIBUTE_NAME, attr::STATE),
    ];
    let got = client.call(op::GET_ATTRIBUTES, payload).await.ok()?;
    let state = got.children_with(Tag::ATTRIBUTE).find_map(|a| {
        let (a, _) = crate::kmip::attributes::from_v1(a).ok()?;
        match a.value {
            crate::ttlv::Value::Enumeration(v) if a.name == attr::STATE => Some(v),
            _ => None,
        }
    });
    state
}

/// Runs one operation like [`Client::call`]; a refusal becomes a [`Refusal`] naming the
/// operation and the key, so the operator reads what went wrong and how to fix it.
pub(super) async fn call(
    client: &mut Client,
    operation: u32,
    payload: Vec<Ttlv>,
) -> Result<Ttlv, CliError> {
    let uid = uid_in(&payload);
    match client.call(operation, payload).await {
        Ok(t) => Ok(t),
        Err(ClientError::Failed { reason, message }) => {
            let mut refusal = Refusal {
                operation,
                uid,
                reason,
                server_message: message,
                state: None,
                identity: None,
            };
            if refusal.wrong_state() {
                if let Some(u) = refusal.uid.clone() {
                    refusal.state = state_of(client, &u).await;
                }
            }
            Err(CliError::Refused(Box::new(refusal)))
        }
        Err(e) => Err(e.into()),
    }
}

impl CliError {
    /// The exit code of this failure (see [`Exit`]).
    pub fn exit(&self) -> Exit {
        use crate::app::StartError;
        match self {
            CliError::Config(_) | CliError::Start(StartError::Config(_)) => Exit::Config,
            CliError::NoConfig(_) => Exit::Config,
            CliError::Usage(_) => Exit::Usage,
            CliError::Tampered(_) => Exit::AuditFault,
            CliError::Refused(_) | CliError::Client(ClientError::Failed { .. }) => Exit::Refused,
            CliError::Client(e) if e.is_unreachable() => Exit::Unreachable,
            CliError::NoPermission(_) => Exit::NoPermission,
            CliError::Start(e) if permission_denied(e) => Exit::NoPermission,
            _ => Exit::Failure,
        }
    }

    /// The message for the operator, in plain words.
    pub fn message(&self) -> String {
        match self {
            CliError::Client(ClientError::Failed { reason, message }) => format!(
                "the server refused: {message} (KMIP reason 0x{reason:X} {})",
                names::result_reason_name(*reason)
            ),
            CliError::Client(e) => e.explained(),
            other => other.to_string(),
        }
    }

    /// The KMIP Result Reason's name as the audit records spell it (`PermissionDenied`),
    /// when the server refused.
    pub fn reason_name(&self) -> Option<String> {
        match self {
            CliError::Refused(r) => Some(crate::audit::reason_name(r.reason)),
            CliError::Client(ClientError::Failed { reason, .. }) => {
                Some(crate::audit::reason_name(*reason))
            }
            _ => None,
        }
    }

    /// Names the client identity in a refusal (the caller knows which certificate it used).
    pub(super) fn with_identity(self, identity: Option<String>) -> CliError {
        match self {
            CliError::Refused(mut r) => {
                r.identity = identity;
                CliError::Refused(r)
            }
            other => other,
        }
    }

    /// The error as `--json` prints it: `{"error": {"message", "reason", "exit_code"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({ "error": {
            "message": self.message(),
            "reason": self.reason_name(),
            "exit_code": self.exit().code(),
        }})
    }
}

/// Whether a start failure is a permission problem on a local file or directory.
fn permission_denied(e: &crate::app::StartError) -> bool {
    use crate::app::StartError;
    match e {
        StartError::Dir { source, .. } => source.kind() == std::io::ErrorKind::PermissionDenied,
        StartError::Unreadable { .. } => true,
        _ => false,
    }
}

/// Prints a failure: `akm: <message>` on stderr for people, and with `--json` also the error
/// as JSON on stdout, so a script reads one JSON document there either way.
pub fn report(e: &CliError, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&e.to_json()).unwrap_or_default()
        );
    }
    eprintln!("akm: {}", e.message());
}

/// The client certificate's CN (the identity the server judges), for messages.
pub(super) fn identity_of(cert: &std::path::Path) -> Option<String> {
    let certs = crate::tls::load_certs(cert).ok()?;
    crate::identity::principal_from_der(certs.first()?.as_ref())
        .ok()
        .map(|p| p.cn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(operation: u32, reason: u32, message: &str, st: Option<u32>) -> String {
        Refusal {
            operation,
            uid: Some("u-1".into()),
            reason,
            server_message: message.into(),
            state: st,
            identity: Some("alice".into()),
        }
        .to_string()
    }

    #[test]
    fn refusals_read_as_sentences_with_the_fix() {
        assert_eq!(
            refusal(op::GET, rr::ITEM_NOT_FOUND, "object not found", None),
            "key u-1 not found (or not visible to alice); list your keys with `akm key list`"
        );
        assert_eq!(
            refusal(
                op::DESTROY,
                rr::PERMISSION_DENIED,
                "object is in the wrong state for this operation",
                Some(state::ACTIVE)
            ),
            "key u-1 is Active: revoke it first with `akm key revoke u-1`"
        );
        assert_eq!(
            refusal(
                op::GET_ATTRIBUTES,
                rr::PERMISSION_DENIED,
                "permission denied",
                None
            ),
            "permission denied: alice may not get attributes key u-1: ask an administrator \
             for access (akm key policy, akm user set)"
        );
    }

    #[test]
    fn exit_codes_are_distinct() {
        let all = [
            Exit::Ok,
            Exit::Failure,
            Exit::Refused,
            Exit::AuditFault,
            Exit::Usage,
            Exit::Unreachable,
            Exit::NoPermission,
            Exit::Config,
        ];
        let mut codes: Vec<i32> = all.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        // clap's own usage exit code is never one of ours except Usage's meaning.
        assert_ne!(Exit::Refused.code(), Exit::Usage.code());
    }
}
