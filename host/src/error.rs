//! The host's error: the component's typed error, or a failure of the
//! sandbox around it.

use std::fmt;

use serde::Serialize;

use crate::types::{RecipientOutcome, Reply};

/// The step of the SMTP conversation a failure happened at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Resolving or connecting.
    Connect,
    /// The greeting.
    Greeting,
    /// EHLO or HELO.
    Hello,
    /// TLS.
    Tls,
    /// AUTH.
    Auth,
    /// MAIL FROM.
    MailFrom,
    /// RCPT TO.
    RcptTo,
    /// DATA.
    Data,
    /// The content and its final reply.
    DataEnd,
    /// RSET.
    Reset,
    /// QUIT.
    Quit,
}

/// A failure at a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Where.
    pub stage: Stage,
    /// What happened, in one line.
    pub detail: String,
}

/// A refusal by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The refused command.
    pub stage: Stage,
    /// The server's reply.
    pub reply: Reply,
    /// When every recipient was refused: each one.
    pub recipients: Vec<RecipientOutcome>,
}

/// What kind of failure happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input is malformed; nothing was sent.
    InvalidInput {
        /// The field, such as `to[1].address`.
        field: String,
        /// Why.
        reason: String,
    },
    /// The host name did not resolve.
    Dns(Failure),
    /// The connection failed or was lost.
    Connection(Failure),
    /// A time limit passed.
    Timeout(Failure),
    /// The server broke the protocol.
    Protocol(Failure),
    /// The server refused.
    Rejected(Rejection),
    /// TLS failed.
    Tls(Failure),
    /// AUTH failed.
    Authentication(Rejection),
    /// A capability or feature is missing.
    Unsupported(Failure),
    /// The sandbox does not allow connecting to the server's address (the
    /// host's allow-list): permanent until the host allows it.
    NotAllowed(Failure),
    /// The sandbox stopped the component: a trap, the memory limit, the
    /// call deadline, or a component that failed to load.
    Runtime {
        /// What happened.
        detail: String,
    },
}

/// Why a call failed. [`Error::is_transient`] tells whether a retry can
/// help. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Error {
    /// What kind of failure.
    #[serde(flatten)]
    pub kind: ErrorKind,
    /// True when the same call may succeed later.
    pub transient: bool,
    /// A one-line explanation.
    pub message: String,
}

impl Error {
    /// True when a retry may help (4xx, timeouts, lost connections).
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// True when retrying the same call cannot help.
    pub fn is_permanent(&self) -> bool {
        !self.transient
    }

    /// The server's reply, when the server refused.
    pub fn reply(&self) -> Option<&Reply> {
        match &self.kind {
            ErrorKind::Rejected(r) | ErrorKind::Authentication(r) => Some(&r.reply),
            _ => None,
        }
    }

    pub(crate) fn runtime(detail: impl fmt::Display) -> Error {
        let detail = detail.to_string();
        Error {
            message: format!("the mailer component failed: {detail}"),
            kind: ErrorKind::Runtime { detail },
            transient: false,
        }
    }

    /// An [`ErrorKind::InvalidInput`] error naming `field`: for layers over
    /// this library that check their own input the same way.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Error {
        let reason = reason.into();
        Error {
            message: format!("invalid {field}: {reason}"),
            kind: ErrorKind::InvalidInput {
                field: field.to_string(),
                reason,
            },
            transient: false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
