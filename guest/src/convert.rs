//! WIT values to core values (a message to build, a content), and a
//! delivery back to the WIT report.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smtp_mailer_core::message::{self as core, BuildContext, Built};
use smtp_mailer_core::smtp::Delivery;

use crate::content::Input;
use crate::error::{core_error, outcome, reply};
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

/// The WIT report of a delivery.
pub fn report(delivery: Delivery, message_id: Option<String>) -> wit::SendReport {
    wit::SendReport {
        message_id,
        recipients: delivery.recipients.into_iter().map(outcome).collect(),
        final_reply: reply(delivery.final_reply),
    }
}
