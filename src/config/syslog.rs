//! The syslog vocabulary `[[audit.sinks]]`, `[[log.remote]]` and `[log]` share: facilities,
//! framings, transports and record formats, as serde enums, so a value outside the set is
//! refused when the file is parsed (the message lists the accepted names) and the modules
//! that open the receivers match them exhaustively.

use serde::{Deserialize, Serialize};

/// A syslog facility (RFC 5424 §6.2.1), by its conventional name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    /// The facility number that goes into the PRI of each line.
    pub fn code(self) -> u8 {
        match self {
            Facility::Kern => 0,
            Facility::User => 1,
            Facility::Mail => 2,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Syslog => 5,
            Facility::Lpr => 6,
            Facility::News => 7,
            Facility::Uucp => 8,
            Facility::Cron => 9,
            Facility::Authpriv => 10,
            Facility::Ftp => 11,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// How a syslog line is framed: `rfc5424` or the older BSD `rfc3164`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// RFC 5424 (the default).
    #[default]
    Rfc5424,
    /// RFC 3164.
    Rfc3164,
}

/// How an audit sink reaches its receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkTransport {
    /// UDP datagrams to host:port.
    Udp,
    /// TCP (octet-counted frames) to host:port.
    Tcp,
    /// TCP under TLS to host:port.
    Tls,
    /// A local datagram socket at a path.
    Unix,
}

/// How a remote log receiver is reached (a sink's transports but a local socket, which
/// `log.syslog` covers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteTransport {
    /// UDP datagrams.
    Udp,
    /// TCP.
    Tcp,
    /// TCP under TLS.
    Tls,
}

impl From<RemoteTransport> for SinkTransport {
    fn from(t: RemoteTransport) -> SinkTransport {
        match t {
            RemoteTransport::Udp => SinkTransport::Udp,
            RemoteTransport::Tcp => SinkTransport::Tcp,
            RemoteTransport::Tls => SinkTransport::Tls,
        }
    }
}

/// The body of an audit record sent to a sink.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    /// key=value pairs (the default).
    #[default]
    Kv,
    /// ArcSight Common Event Format.
    Cef,
    /// IBM QRadar Log Event Extended Format.
    Leef,
}
