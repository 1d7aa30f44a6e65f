//! WIT values to core values, and every error to the WIT error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smtp_mailer_core::message::{self as core, BuildContext, Built};
use smtp_mailer_core::smtp::reply::Reply as CoreReply;
use smtp_mailer_core::smtp::{Delivery, RecipientOutcome as CoreOutcome};
use smtp_mailer_core::{Error as CoreError, Stage as CoreStage};

use crate::content::Input;
use crate::smtp_mailer_mailer_types as wit;

/// Checks and builds a WIT message. Streamed attachments are left as gaps
/// in the bytes; their streams come back by attachment index.
/// A message with DKIM settings comes out signed.
pub fn build(mut message: wit::Message) -> Result<(Built, Vec<Option<Input>>), wit::Error> {
    let dkim = message.dkim.take();
    let (message, mut inputs) = message_to_core(message)?;
    let context = build_context();
    let mut built = message.build(&context).map_err(core_error)?;
    if let Some(dkim) = dkim {
        crate::dkim::sign(&mut built, &mut inputs, dkim, context.now)?;
    }
    Ok((built, inputs))
}

fn build_context() -> BuildContext {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let unique = format!("{:x}.{}", now.as_nanos(), random_hex(12));
    BuildContext {
        now: now.as_secs() as i64,
        unique,
    }
}

/// `bytes` random bytes from wasi:random, in hex. Should the source fail,
/// the bytes stay zero: ids then rely on the time they also carry, and a
/// SCRAM nonce on the server's half.
pub fn random_hex(bytes: usize) -> String {
    let mut random = vec![0u8; bytes];
    let _ = getrandom::fill(&mut random);
    random.iter().map(|b| format!("{b:02x}")).collect()
}

fn mailbox(m: wit::Mailbox) -> core::Mailbox {
    core::Mailbox {
        name: m.name,
        address: m.address,
    }
}

fn mailboxes(list: Vec<wit::Mailbox>) -> Vec<core::Mailbox> {
    list.into_iter().map(mailbox).collect()
}

fn message_to_core(m: wit::Message) -> Result<(core::Message, Vec<Option<Input>>), wit::Error> {
    let mut attachments = Vec::with_capacity(m.attachments.len());
    let mut inputs = Vec::with_capacity(m.attachments.len());
    for (i, a) in m.attachments.into_iter().enumerate() {
        let (content, input) = content(a.content, format!("attachments[{i}].content"));
        inputs.push(input);
        attachments.push(core::Attachment {
            filename: a.filename,
            content_type: a.content_type,
            content,
            content_id: a.content_id,
        });
    }
    let message = core::Message {
        from: mailbox(m.from),
        reply_to: mailboxes(m.reply_to),
        to: mailboxes(m.to),
        cc: mailboxes(m.cc),
        bcc: mailboxes(m.bcc),
        subject: m.subject,
        text: m.text,
        html: m.html,
        attachments,
        headers: m
            .headers
            .into_iter()
            .map(|h| core::Header {
                name: h.name,
                value: h.value,
            })
            .collect(),
        message_id: m.message_id,
        date: m.date,
    };
    Ok((message, inputs))
}

/// The core content of a WIT content, and its stream when streamed.
/// `field` names it in errors.
pub fn content(content: wit::Content, field: String) -> (core::Content, Option<Input>) {
    match content {
        wit::Content::Bytes(bytes) => (core::Content::Bytes(bytes), None),
        wit::Content::Stream(stream) => (
            core::Content::Streamed { size: stream.size },
            Some(Input {
                body: stream.body,
                size: stream.size,
                field,
                first_pass: stream.first_pass,
            }),
        ),
    }
}

/// The WIT reply of a core reply.
pub fn reply(r: CoreReply) -> wit::Reply {
    let text = r.text();
    wit::Reply {
        code: r.code,
        enhanced_code: r.enhanced,
        text,
    }
}

fn outcome(o: CoreOutcome) -> wit::RecipientOutcome {
    wit::RecipientOutcome {
        address: o.address,
        accepted: o.accepted,
        reply: reply(o.reply),
    }
}

/// The WIT report of a delivery.
pub fn report(delivery: Delivery, message_id: Option<String>) -> wit::SendReport {
    wit::SendReport {
        message_id,
        recipients: delivery.recipients.into_iter().map(outcome).collect(),
        final_reply: reply(delivery.final_reply),
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
