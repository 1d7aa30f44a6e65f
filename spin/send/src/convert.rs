//! A parsed JSON message, made into the mailer's message.

use smtp_mailer_json::{AttachmentSource, JsonMessage, Mailbox};

use crate::bindings::types;
use crate::SendError;

fn mailbox(m: Mailbox) -> types::Mailbox {
    types::Mailbox {
        name: m.name,
        address: m.address,
    }
}

fn mailboxes(list: Vec<Mailbox>) -> Vec<types::Mailbox> {
    list.into_iter().map(mailbox).collect()
}

/// The mailer's message for `m`. A component sees no files, so an
/// attachment given by `path` is refused (`attachments[i].path`).
pub fn message(m: JsonMessage) -> Result<types::Message, SendError> {
    let mut attachments = Vec::with_capacity(m.attachments.len());
    for (i, a) in m.attachments.into_iter().enumerate() {
        let bytes = match a.source {
            AttachmentSource::Bytes(bytes) => bytes,
            AttachmentSource::Path(_) => {
                return Err(SendError::input(
                    Some(format!("attachments[{i}].path")),
                    "this service reads no files: give the bytes as \"content\" (base64)",
                ))
            }
        };
        attachments.push(types::Attachment {
            filename: a.filename,
            content_type: a.content_type,
            content: types::Content::Bytes(bytes),
            content_id: a.content_id,
        });
    }
    Ok(types::Message {
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
            .map(|h| types::Header {
                name: h.name,
                value: h.value,
            })
            .collect(),
        message_id: m.message_id,
        date: m.date,
        dkim: None,
        envelope: None,
    })
}
