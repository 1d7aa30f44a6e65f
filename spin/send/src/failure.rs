//! The one error of the Spin components: bad input, bad settings, or a
//! failed send, each with what a caller needs to answer it.

use std::fmt;

use serde_json::{json, Value};

use crate::bindings::types;

/// Whether trying again later can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A temporary condition (a 4xx reply, a timeout, a lost connection).
    Transient,
    /// The same send fails the same way until something changes.
    Permanent,
}

/// Why a send did not happen. Never holds a secret: the mailer's messages
/// hold none, and settings errors name the variable, not its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The message is malformed; nothing was sent.
    Input {
        /// The field at fault (`to[1]`, `attachments[0].content`), when
        /// there is one.
        field: Option<String>,
        /// Why it was refused.
        reason: String,
    },
    /// A Spin variable is missing or malformed: the app is misconfigured.
    Settings {
        /// The variable's name.
        variable: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The queue (Redis) cannot be reached or failed: nothing was
    /// enqueued; a retry may help.
    QueueUnavailable {
        /// What failed, without the address's credentials.
        reason: String,
    },
    /// The `Idempotency-Key` was used before with another body.
    KeyReused {
        /// Why.
        reason: String,
    },
    /// A request with the same `Idempotency-Key` is still being answered.
    KeyInProgress,
    /// The mailer could not send the message.
    Mail {
        /// The kind of failure: `connection`, `timeout`, `rejected`, `tls`, ...
        kind: &'static str,
        /// Whether a retry can help.
        retry: Retry,
        /// The mailer's one-line explanation.
        message: String,
        /// The server's reply, when it refused.
        reply: Option<Value>,
        /// For a refusal of every recipient: each one with its reply.
        recipients: Vec<Value>,
    },
}

impl SendError {
    /// Bad input about `field`.
    pub fn input(field: Option<String>, reason: impl Into<String>) -> Self {
        SendError::Input {
            field,
            reason: reason.into(),
        }
    }

    /// A misconfigured variable.
    pub fn settings(variable: &str, reason: impl Into<String>) -> Self {
        SendError::Settings {
            variable: variable.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn from_mailer(e: types::Error) -> Self {
        let retry = match e.retry {
            types::Retry::Transient => Retry::Transient,
            types::Retry::Permanent => Retry::Permanent,
        };
        let (kind, rejection) = match e.code {
            types::ErrorCode::InvalidInput(f) => {
                return SendError::input(Some(f.field), f.reason);
            }
            types::ErrorCode::Dns(_) => ("dns", None),
            types::ErrorCode::Connection(_) => ("connection", None),
            types::ErrorCode::Timeout(_) => ("timeout", None),
            types::ErrorCode::Protocol(_) => ("protocol", None),
            types::ErrorCode::Rejected(r) => ("rejected", Some(r)),
            types::ErrorCode::Tls(_) => ("tls", None),
            types::ErrorCode::Authentication(r) => ("authentication", Some(r)),
            types::ErrorCode::Unsupported(_) => ("unsupported", None),
            types::ErrorCode::NotAllowed(_) => ("not-allowed", None),
        };
        let (reply, recipients) = match rejection {
            Some(r) => (
                Some(crate::receipt::reply_json(&r.reply)),
                r.recipients
                    .iter()
                    .map(crate::receipt::recipient_json)
                    .collect(),
            ),
            None => (None, Vec::new()),
        };
        let message = match kind {
            "not-allowed" => format!(
                "{}: allowed_outbound_hosts must list the relay (spin.toml derives it, \
                 tcp://{{{{ smtp_connect_address }}}}:{{{{ smtp_port }}}}, from those two variables), \
                 and the mailer dependency must inherit it (dependencies_inherit_configuration)",
                e.message
            ),
            _ => e.message,
        };
        SendError::Mail {
            kind,
            retry,
            message,
            reply,
            recipients,
        }
    }

    /// Whether a retry can help: for a failed send that says so, an
    /// unreachable queue, or a key still in progress.
    pub fn retry(&self) -> Retry {
        match self {
            SendError::Mail { retry, .. } => *retry,
            SendError::QueueUnavailable { .. } | SendError::KeyInProgress => Retry::Transient,
            _ => Retry::Permanent,
        }
    }

    /// The HTTP status that answers it: 400 for bad input, 409 for a key in
    /// progress, 422 for a key reused with another body, 500 for bad
    /// settings or a destination the app may not reach, 503 when a retry
    /// can help (a transient send failure, the queue down), 502 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            SendError::Input { .. } => 400,
            SendError::KeyInProgress => 409,
            SendError::KeyReused { .. } => 422,
            SendError::Settings { .. } => 500,
            SendError::Mail {
                kind: "not-allowed",
                ..
            } => 500,
            _ if self.retry() == Retry::Transient => 503,
            _ => 502,
        }
    }

    /// The error as the JSON body of an answer.
    pub fn to_json(&self) -> Value {
        let error = match self {
            SendError::Input { field, reason } => {
                json!({ "kind": "invalid-input", "field": field, "reason": reason, "message": self.to_string() })
            }
            SendError::Settings { variable, reason } => {
                json!({ "kind": "settings", "variable": variable, "reason": reason, "message": self.to_string() })
            }
            SendError::QueueUnavailable { .. } => {
                json!({ "kind": "queue-unavailable", "retry": "transient", "message": self.to_string() })
            }
            SendError::KeyReused { .. } => {
                json!({ "kind": "idempotency-key-reused", "message": self.to_string() })
            }
            SendError::KeyInProgress => {
                json!({ "kind": "idempotency-key-in-progress", "retry": "transient", "message": self.to_string() })
            }
            SendError::Mail {
                kind,
                retry,
                message,
                reply,
                recipients,
            } => json!({
                "kind": kind,
                "retry": if *retry == Retry::Transient { "transient" } else { "permanent" },
                "message": message,
                "reply": reply,
                "recipients": recipients,
            }),
        };
        json!({ "status": "failed", "error": error })
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Input {
                field: Some(field),
                reason,
            } => write!(f, "{field}: {reason}"),
            SendError::Input {
                field: None,
                reason,
            } => f.write_str(reason),
            SendError::Settings { variable, reason } => {
                write!(f, "the Spin variable {variable}: {reason}")
            }
            SendError::Mail { message, .. } => f.write_str(message),
            SendError::QueueUnavailable { reason } => {
                write!(f, "the queue is unavailable: {reason}; nothing was enqueued")
            }
            SendError::KeyReused { reason } => f.write_str(reason),
            SendError::KeyInProgress => f.write_str(
                "a request with this Idempotency-Key is still being answered; retry shortly",
            ),
        }
    }
}

impl std::error::Error for SendError {}
