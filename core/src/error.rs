//! The one error type of this crate.

use std::fmt;

use crate::smtp::reply::Reply;
use crate::smtp::RecipientOutcome;

/// The step of the SMTP conversation an error happened at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Resolving the host name or establishing the connection.
    Connect,
    /// The server's greeting.
    Greeting,
    /// EHLO or HELO.
    Hello,
    /// TLS negotiation.
    Tls,
    /// Authentication.
    Auth,
    /// MAIL FROM.
    MailFrom,
    /// RCPT TO.
    RcptTo,
    /// The DATA command.
    Data,
    /// The message content and the reply to its end.
    DataEnd,
    /// RSET.
    Reset,
    /// QUIT.
    Quit,
}

impl Stage {
    /// The stage's name as people read it in an error message.
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Hello => "EHLO/HELO",
            Stage::Tls => "TLS",
            Stage::Auth => "AUTH",
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::DataEnd => "end of data",
            Stage::Reset => "RSET",
            Stage::Quit => "QUIT",
        }
    }
}

/// Why building or sending a message failed.
///
/// Whether a retry can help is [`Error::is_transient`]. Messages never hold
/// a secret: credentials are not part of any variant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A field of the input is malformed; nothing was sent.
    InvalidInput {
        /// The field's name, such as `to[1]` or `headers[0].value`.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// The server broke the protocol (malformed or oversized reply,
    /// unexpected code). The connection must not be reused.
    Protocol {
        /// Where it happened.
        stage: Stage,
        /// What was wrong.
        detail: String,
    },
    /// The server refused a command.
    Rejected {
        /// The refused command.
        stage: Stage,
        /// The server's reply.
        reply: Reply,
        /// When every recipient was refused: each one with its reply.
        recipients: Vec<RecipientOutcome>,
    },
    /// The message needs something the server does not offer (a size over
    /// its SIZE limit, 8BITMIME, SMTPUTF8), or a feature this version lacks.
    Unsupported {
        /// Where it was found out.
        stage: Stage,
        /// What is missing.
        detail: String,
    },
    /// TLS could not be had or kept: STARTTLS missing or refused where it
    /// is required, or a handshake or certificate failure. The connection
    /// must not be reused.
    Tls {
        /// What failed, naming the cause (unknown issuer, wrong name,
        /// expired, protocol version) and, where there is one, what to do.
        detail: String,
        /// The server's reply, when it refused STARTTLS.
        reply: Option<Reply>,
    },
    /// Authentication failed or cannot be done safely. Never holds a
    /// secret.
    Auth {
        /// What failed, with a hint.
        detail: String,
        /// The server's reply, when it refused.
        reply: Option<Reply>,
    },
    /// The session was closed after an earlier failure.
    Closed,
    /// The session was closed by its caller (QUIT, or the session's
    /// `close`); nothing failed.
    ClosedByCaller,
}

impl Error {
    /// An [`Error::InvalidInput`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// True when the same send may succeed later: a 4xx refusal, or any
    /// refused recipient that was refused with 4xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Rejected {
                reply, recipients, ..
            } => {
                reply.is_transient_negative()
                    || recipients.iter().any(|r| r.reply.is_transient_negative())
            }
            Error::Closed => true,
            Error::Tls { reply, .. } | Error::Auth { reply, .. } => {
                reply.as_ref().is_some_and(Reply::is_transient_negative)
            }
            // A caller's mistake, not the server's state: the same call on
            // the same session never succeeds.
            Error::ClosedByCaller => false,
            Error::InvalidInput { .. } | Error::Protocol { .. } | Error::Unsupported { .. } => {
                false
            }
        }
    }

    /// True when the connection is in an unknown state and must be closed.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Protocol { .. }
            | Error::Closed
            | Error::ClosedByCaller
            | Error::Tls { .. }
            | Error::Auth { .. } => true,
            Error::Rejected { reply, .. } => reply.code == 421,
            Error::InvalidInput { .. } | Error::Unsupported { .. } => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput { field, reason } => write!(f, "invalid {field}: {reason}"),
            Error::Protocol { stage, detail } => {
                write!(f, "protocol error at {}: {detail}", stage.describe())
            }
            Error::Rejected {
                stage: Stage::RcptTo,
                recipients,
                ..
            } if !recipients.is_empty() => {
                write!(f, "every recipient was refused:")?;
                for (i, r) in recipients.iter().enumerate() {
                    let sep = if i == 0 { " " } else { "; " };
                    write!(f, "{sep}{} ({})", r.address, r.reply.one_line())?;
                }
                Ok(())
            }
            Error::Rejected { stage, reply, .. } => {
                write!(
                    f,
                    "server refused {}: {}",
                    stage.describe(),
                    reply.one_line()
                )
            }
            Error::Unsupported { detail, .. } => write!(f, "{detail}"),
            Error::Tls { detail, .. } | Error::Auth { detail, .. } => f.write_str(detail),
            Error::Closed => write!(
                f,
                "the session is closed after an earlier failure; open a new session"
            ),
            Error::ClosedByCaller => write!(
                f,
                "the session was closed by the caller (close or QUIT); open a new session"
            ),
        }
    }
}

impl std::error::Error for Error {}
