//! Every failure as the WIT `error`: core errors, bad input, network
//! failures. The lowest module of the component: the others use it, it uses
//! none of them.

use smtp_mailer_core::smtp::reply::Reply as CoreReply;
use smtp_mailer_core::smtp::RecipientOutcome as CoreOutcome;
use smtp_mailer_core::{Error as CoreError, Stage as CoreStage};

use crate::smtp_mailer_mailer_types as wit;

/// The WIT reply of a core reply.
pub fn reply(r: CoreReply) -> wit::Reply {
    let text = r.text();
    wit::Reply {
        code: r.code,
        enhanced_code: r.enhanced,
        text,
    }
}

/// The WIT outcome of one recipient.
pub fn outcome(o: CoreOutcome) -> wit::RecipientOutcome {
    wit::RecipientOutcome {
        address: o.address,
        accepted: o.accepted,
        reply: reply(o.reply),
    }
}

/// The WIT stage of a core stage.
pub fn stage(s: CoreStage) -> wit::Stage {
    match s {
        CoreStage::Connect => wit::Stage::Connect,
        CoreStage::Greeting => wit::Stage::Greeting,
        CoreStage::Hello => wit::Stage::Hello,
        CoreStage::Tls => wit::Stage::Tls,
        CoreStage::Auth => wit::Stage::Auth,
        CoreStage::MailFrom => wit::Stage::MailFrom,
        CoreStage::RcptTo => wit::Stage::RcptTo,
        CoreStage::Data => wit::Stage::Data,
        CoreStage::DataEnd => wit::Stage::DataEnd,
        CoreStage::Reset => wit::Stage::Reset,
        CoreStage::Quit => wit::Stage::Quit,
    }
}

fn retry(transient: bool) -> wit::Retry {
    if transient {
        wit::Retry::Transient
    } else {
        wit::Retry::Permanent
    }
}

/// The WIT error of a core error.
pub fn core_error(e: CoreError) -> wit::Error {
    let message = e.to_string();
    let transient = e.is_transient();
    let code = match e {
        CoreError::InvalidInput { field, reason } => {
            wit::ErrorCode::InvalidInput(wit::InvalidField { field, reason })
        }
        CoreError::Protocol { stage: s, detail } => wit::ErrorCode::Protocol(wit::Failure {
            stage: stage(s),
            detail,
        }),
        CoreError::Rejected {
            stage: s,
            reply: r,
            recipients,
        } => wit::ErrorCode::Rejected(wit::Rejection {
            stage: stage(s),
            reply: reply(r),
            recipients: recipients.into_iter().map(outcome).collect(),
        }),
        CoreError::Unsupported { stage: s, detail } => wit::ErrorCode::Unsupported(wit::Failure {
            stage: stage(s),
            detail,
        }),
        CoreError::Tls { detail, .. } => wit::ErrorCode::Tls(wit::Failure {
            stage: wit::Stage::Tls,
            detail,
        }),
        CoreError::Auth { reply: r, .. } => wit::ErrorCode::Authentication(wit::Rejection {
            stage: wit::Stage::Auth,
            reply: r.map(reply).unwrap_or(wit::Reply {
                code: 0,
                enhanced_code: None,
                text: String::new(),
            }),
            recipients: Vec::new(),
        }),
        CoreError::Closed | CoreError::ClosedByCaller => wit::ErrorCode::Connection(wit::Failure {
            stage: wit::Stage::Connect,
            detail: message.clone(),
        }),
        _ => wit::ErrorCode::Protocol(wit::Failure {
            stage: wit::Stage::Connect,
            detail: message.clone(),
        }),
    };
    wit::Error {
        code,
        retry: retry(transient),
        message,
    }
}

/// An `unsupported` error: permanent.
pub fn unsupported(stage: wit::Stage, detail: &str) -> wit::Error {
    wit::Error {
        code: wit::ErrorCode::Unsupported(wit::Failure {
            stage,
            detail: detail.to_string(),
        }),
        retry: wit::Retry::Permanent,
        message: detail.to_string(),
    }
}

/// An `invalid-input` error: permanent.
pub fn invalid(field: &str, reason: &str) -> wit::Error {
    wit::Error {
        code: wit::ErrorCode::InvalidInput(wit::InvalidField {
            field: field.to_string(),
            reason: reason.to_string(),
        }),
        retry: wit::Retry::Permanent,
        message: format!("invalid {field}: {reason}"),
    }
}

/// A transient failure of the network: DNS, connection or timeout.
pub fn network(kind: NetworkFailure, stage: wit::Stage, detail: String) -> wit::Error {
    let failure = wit::Failure {
        stage,
        detail: detail.clone(),
    };
    let code = match kind {
        NetworkFailure::Dns => wit::ErrorCode::Dns(failure),
        NetworkFailure::Connection => wit::ErrorCode::Connection(failure),
        NetworkFailure::Timeout => wit::ErrorCode::Timeout(failure),
    };
    wit::Error {
        code,
        retry: wit::Retry::Transient,
        message: detail,
    }
}

/// A `not-allowed` error: the host's sandbox refused the connection to
/// `address`. Permanent: trying again cannot help until the host allows it.
pub fn not_allowed(address: std::net::SocketAddr) -> wit::Error {
    let detail =
        format!("the host does not allow a connection to {address} (access denied by its sandbox)");
    wit::Error {
        code: wit::ErrorCode::NotAllowed(wit::Failure {
            stage: wit::Stage::Connect,
            detail: detail.clone(),
        }),
        retry: wit::Retry::Permanent,
        message: detail,
    }
}

/// Which network failure [`network`] builds.
#[derive(Debug, Clone, Copy)]
pub enum NetworkFailure {
    /// The name did not resolve.
    Dns,
    /// Refused, reset or closed.
    Connection,
    /// A time limit passed.
    Timeout,
}
