//! Mirror events that belong in the audit trail: conflict resolutions, RPO-mode switches and
//! refused peer connections. Each is one function with named fields, emitted as a structured
//! `tracing` event with target `akm::audit` and an `event` field, so an audit sink can take
//! them over without touching the callers. Never carries key material.

/// A conflict between two versions of an object, and how it was resolved.
pub struct Conflict<'a> {
    /// `object`, `user` or `group`.
    pub entity: &'a str,
    /// The object's Unique Identifier, or the user's or group's name.
    pub uid: &'a str,
    /// The peer the incoming version came from.
    pub from: &'a str,
    /// The local version's state (0 for users and groups).
    pub local_state: u32,
    /// The local version's clock.
    pub local_hlc: i64,
    /// The node that made the local version.
    pub local_node: &'a str,
    /// The incoming version's state.
    pub incoming_state: u32,
    /// The incoming version's clock.
    pub incoming_hlc: i64,
    /// The node that made the incoming version.
    pub incoming_node: &'a str,
    /// `local` or `incoming`.
    pub kept: &'static str,
    /// The rule that decided.
    pub rule: &'static str,
}

/// Records a conflict resolution.
pub fn conflict(c: Conflict<'_>) {
    tracing::warn!(
        target: "akm::audit",
        event = "mirror.conflict",
        entity = c.entity,
        id = c.uid,
        peer = c.from,
        local_state = c.local_state,
        local_hlc = c.local_hlc,
        local_node = c.local_node,
        incoming_state = c.incoming_state,
        incoming_hlc = c.incoming_hlc,
        incoming_node = c.incoming_node,
        kept = c.kept,
        rule = c.rule,
        "mirror conflict resolved"
    );
}

/// Records a switch of the effective replication mode (RPO-zero degraded or restored).
pub fn mode_switch(from: &str, to: &str, reason: &str) {
    tracing::warn!(
        target: "akm::audit",
        event = "mirror.mode_switch",
        from,
        to,
        reason,
        "mirror replication mode switched"
    );
}

/// Records a refused mirror connection.
pub fn refused(remote: &str, subject: &str, fingerprint: &str, reason: &str) {
    tracing::warn!(
        target: "akm::audit",
        event = "mirror.refused",
        remote,
        subject,
        fingerprint,
        reason,
        "mirror connection refused"
    );
}
