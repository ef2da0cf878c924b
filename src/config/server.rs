//! `[server]`: the KMIP listener, its connection budgets and the per-request limits.

use super::{limits, Config, ConfigError};
use serde::{Deserialize, Serialize};

/// `[server]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Most concurrent authenticated client connections; a client that authenticates while
    /// they are all taken is closed.
    pub max_connections: usize,
    /// Most authenticated connections of one identity (certificate CN), so one client cannot
    /// take every slot of `max_connections`.
    pub max_connections_per_identity: usize,
    /// Most connections still in their TLS handshake; a new connection beyond it closes the
    /// oldest of them (so idle sockets cannot lock clients out).
    pub max_handshaking: usize,
    /// Most connections in their TLS handshake from one source address; a new one beyond it
    /// closes the oldest from that address.
    pub max_handshaking_per_source: usize,
    /// Seconds a client has to complete the TLS handshake.
    pub handshake_timeout_secs: u64,
    /// Seconds a connection may sit idle between requests.
    pub idle_timeout_secs: u64,
    /// Seconds a client has to send the rest of a request once its first byte has arrived, and
    /// to take a response (a client that stops reading is disconnected).
    pub frame_timeout_secs: u64,
    /// Largest request message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Deepest structure nesting accepted in a request (the message itself is depth 1).
    pub max_depth: usize,
    /// Most batch items in one request message.
    pub max_batch_items: usize,
    /// Most attributes in one request message.
    pub max_attributes: usize,
    /// Most requests run at once over all connections; more wait for a slot.
    pub max_requests_in_flight: usize,
    /// Most Unique Identifiers one Locate returns, whatever Maximum Items asks for.
    pub max_locate_items: usize,
    /// Most cost units one request message may be estimated at (about a millisecond of one
    /// core each; README "Security model"); a dearer message is refused before it runs.
    pub max_request_cost: usize,
    /// Most PBKDF2 iterations one Derive Key item may ask for.
    pub max_pbkdf2_iterations: usize,
    /// Most bytes of response payloads one request message may make.
    pub max_response_bytes: usize,
    /// Largest stored encoding of one attribute a client may set, in bytes.
    pub max_attribute_bytes: usize,
    /// Largest stored record (all of an object's attributes) that client-supplied attributes
    /// may make, in bytes.
    pub max_object_attribute_bytes: usize,
    /// Seconds to let in-flight requests finish on SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// Initialize (KEK, development PKI) on `akm serve` when the data directory is empty.
    pub auto_init: bool,
    /// Offer the Interop operation, which the OASIS test cases use to mark their start and
    /// end; KMIP 2.1 §6.1.26 forbids it on a production server.
    pub interop_operations: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "0.0.0.0:5696".into(),
            max_connections: 1024,
            max_connections_per_identity: 256,
            max_handshaking: 256,
            max_handshaking_per_source: 64,
            handshake_timeout_secs: 10,
            idle_timeout_secs: 300,
            frame_timeout_secs: 10,
            max_message_bytes: 1024 * 1024,
            max_depth: 64,
            max_batch_items: 1024,
            max_attributes: 1024,
            max_requests_in_flight: 256,
            max_locate_items: limits::DEFAULT_MAX_LOCATE_ITEMS,
            max_request_cost: limits::DEFAULT_MAX_REQUEST_COST as usize,
            max_pbkdf2_iterations: limits::DEFAULT_MAX_PBKDF2_ITERATIONS as usize,
            max_response_bytes: limits::DEFAULT_MAX_RESPONSE_BYTES,
            max_attribute_bytes: limits::DEFAULT_MAX_ATTRIBUTE_BYTES,
            max_object_attribute_bytes: limits::DEFAULT_MAX_OBJECT_ATTRIBUTE_BYTES,
            shutdown_grace_secs: 30,
            auto_init: false,
            interop_operations: false,
        }
    }
}

impl Config {
    /// The budget of connections still in their TLS handshake, and its share per address.
    pub(super) fn validate_handshake_budget(&self) -> Result<(), ConfigError> {
        let (s, d) = (&self.server, ServerConfig::default());
        self.check_range(
            "server.max_handshaking",
            s.max_handshaking,
            1..=65_536,
            d.max_handshaking,
        )?;
        // Above server.max_connections it simply does not bind, so it is not refused there
        // (an operator lowering max_connections need not touch it).
        self.check_range(
            "server.max_connections_per_identity",
            s.max_connections_per_identity,
            1..=65_536,
            d.max_connections_per_identity,
        )?;
        if !(1..=s.max_handshaking).contains(&s.max_handshaking_per_source) {
            return Err(self.invalid(
                "server.max_handshaking_per_source",
                format!(
                    "must be 1 to server.max_handshaking ({}); the default is {}",
                    s.max_handshaking, d.max_handshaking_per_source
                ),
            ));
        }
        Ok(())
    }

    /// The handshake, idle and frame timeouts and the largest message.
    pub(super) fn validate_timeouts(&self) -> Result<(), ConfigError> {
        let (s, d) = (&self.server, ServerConfig::default());
        self.check_range(
            "server.handshake_timeout_secs",
            s.handshake_timeout_secs,
            1..=3600,
            d.handshake_timeout_secs,
        )?;
        self.check_range(
            "server.idle_timeout_secs",
            s.idle_timeout_secs,
            1..=86_400,
            d.idle_timeout_secs,
        )?;
        self.check_range(
            "server.frame_timeout_secs",
            s.frame_timeout_secs,
            1..=3600,
            d.frame_timeout_secs,
        )?;
        self.check_range(
            "server.max_message_bytes",
            s.max_message_bytes,
            1024..=64 << 20,
            d.max_message_bytes,
        )
    }

    /// The per-request and in-flight limits: each must be at least 1 and at most a cap that
    /// keeps one request's cost bounded.
    pub(super) fn validate_request_limits(&self) -> Result<(), ConfigError> {
        let (s, d) = (&self.server, ServerConfig::default());
        let checks: [(&'static str, usize, usize, usize); 8] = [
            ("server.max_depth", s.max_depth, 256, d.max_depth),
            (
                "server.max_batch_items",
                s.max_batch_items,
                limits::MAX_BATCH_ITEMS_CAP,
                d.max_batch_items,
            ),
            (
                "server.max_attributes",
                s.max_attributes,
                100_000,
                d.max_attributes,
            ),
            (
                "server.max_requests_in_flight",
                s.max_requests_in_flight,
                65_536,
                d.max_requests_in_flight,
            ),
            (
                "server.max_locate_items",
                s.max_locate_items,
                limits::MAX_LOCATE_ITEMS_CAP,
                d.max_locate_items,
            ),
            (
                "server.max_request_cost",
                s.max_request_cost,
                1_000_000,
                d.max_request_cost,
            ),
            (
                "server.max_pbkdf2_iterations",
                s.max_pbkdf2_iterations,
                limits::MAX_PBKDF2_ITERATIONS_CAP as usize,
                d.max_pbkdf2_iterations,
            ),
            (
                "server.max_response_bytes",
                s.max_response_bytes,
                64 << 20,
                d.max_response_bytes,
            ),
        ];
        for (key, value, max, default) in checks {
            self.check_range(key, value, 1..=max, default)?;
        }
        self.validate_attribute_limits()
    }

    /// The limits on stored attribute bytes: each within bounds that keep every record akm
    /// writes well below what its stored-record decoder reads (see `ops::stored_size`), and the
    /// per-attribute limit no larger than the per-object one.
    pub(super) fn validate_attribute_limits(&self) -> Result<(), ConfigError> {
        use limits::{MAX_ATTRIBUTE_BYTES_CAP as MAX, MIN_ATTRIBUTE_BYTES as MIN};
        let (s, d) = (&self.server, ServerConfig::default());
        for (key, value, default) in [
            (
                "server.max_attribute_bytes",
                s.max_attribute_bytes,
                d.max_attribute_bytes,
            ),
            (
                "server.max_object_attribute_bytes",
                s.max_object_attribute_bytes,
                d.max_object_attribute_bytes,
            ),
        ] {
            self.check_range(key, value, MIN..=MAX, default)?;
        }
        if s.max_attribute_bytes > s.max_object_attribute_bytes {
            return Err(self.invalid(
                "server.max_attribute_bytes",
                format!(
                    "is {} but server.max_object_attribute_bytes is {}: one attribute cannot \
                     be larger than the object's whole record; lower it or raise the other",
                    s.max_attribute_bytes, s.max_object_attribute_bytes
                ),
            ));
        }
        Ok(())
    }

    /// The limits on stored attribute bytes, for the operations.
    pub fn attribute_limits(&self) -> limits::AttributeLimits {
        limits::AttributeLimits {
            per_attribute: self.server.max_attribute_bytes,
            per_object: self.server.max_object_attribute_bytes,
        }
    }
}
