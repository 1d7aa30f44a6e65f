//! Field checks: every field of a [`Message`] is checked before a byte is
//! built, and the error names the field.

use super::{Attachment, Header, Mailbox, Message};
use crate::address::Address;
use crate::error::Error;

/// Headers the builder writes itself; a custom header may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
];

/// The longest header name accepted.
const MAX_HEADER_NAME: usize = 76;

/// Refuses text that holds a control character other than tab; CR, LF and
/// NUL in a header are how header injection starts.
pub(super) fn check_text(field: &str, text: &str) -> Result<(), Error> {
    if let Some(c) = text.chars().find(|&c| c.is_control() && c != '\t') {
        return Err(Error::invalid(
            field,
            format!("holds the control character {}", c.escape_default()),
        ));
    }
    if looks_encoded(text) {
        return Err(Error::invalid(
            field,
            "looks like an RFC 2047 encoded word (=?charset?...?=), which mail readers would \
             decode into other text; give the plain text: non-ASCII is encoded for you",
        ));
    }
    Ok(())
}

/// True when `text` holds the shape of an encoded word, `=?...?=`.
fn looks_encoded(text: &str) -> bool {
    text.find("=?")
        .is_some_and(|start| text[start + 2..].contains("?="))
}

pub(super) fn check_mailbox(field: &str, mailbox: &Mailbox) -> Result<Address, Error> {
    if let Some(name) = &mailbox.name {
        check_text(&format!("{field}.name"), name)?;
    }
    Address::parse(&mailbox.address).map_err(|e| Error::invalid(format!("{field}.address"), e))
}

pub(super) fn check_mailboxes(field: &str, list: &[Mailbox]) -> Result<Vec<Address>, Error> {
    list.iter()
        .enumerate()
        .map(|(i, m)| check_mailbox(&format!("{field}[{i}]"), m))
        .collect()
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c)
}

pub(super) fn check_attachment(i: usize, attachment: &Attachment) -> Result<(), Error> {
    let field = |name: &str| format!("attachments[{i}].{name}");
    if attachment.filename.is_empty() {
        return Err(Error::invalid(field("filename"), "is empty"));
    }
    check_text(&field("filename"), &attachment.filename)?;
    let valid_type = attachment
        .content_type
        .split_once('/')
        .is_some_and(|(t, s)| {
            !t.is_empty()
                && !s.is_empty()
                && t.chars().all(is_token_char)
                && s.chars().all(is_token_char)
        });
    if !valid_type {
        return Err(Error::invalid(
            field("content-type"),
            format!(
                "{:?} is not a MIME type such as application/pdf",
                attachment.content_type
            ),
        ));
    }
    if let Some(cid) = &attachment.content_id {
        check_id(&field("content-id"), cid)?;
    }
    Ok(())
}

/// Checks a Message-ID or Content-ID given without angle brackets.
pub(super) fn check_id(field: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::invalid(field, "is empty"));
    }
    if id.len() > 250 {
        return Err(Error::invalid(field, "is longer than 250 characters"));
    }
    if let Some(c) = id
        .chars()
        .find(|&c| !c.is_ascii_graphic() || "<>\"()[]\\,;:".contains(c))
    {
        return Err(Error::invalid(
            field,
            format!(
                "holds {:?}; give it without angle brackets, as left@right",
                c
            ),
        ));
    }
    Ok(())
}

pub(super) fn check_header(i: usize, header: &Header) -> Result<(), Error> {
    let name_field = format!("headers[{i}].name");
    let name = &header.name;
    if name.is_empty() || name.len() > MAX_HEADER_NAME {
        return Err(Error::invalid(name_field, "must have 1 to 76 characters"));
    }
    if let Some(c) = name.chars().find(|&c| !c.is_ascii_graphic() || c == ':') {
        return Err(Error::invalid(
            name_field,
            format!(
                "holds {:?}; a header name is printable ASCII without a colon",
                c
            ),
        ));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str()) {
        return Err(Error::invalid(
            name_field,
            format!("{name} is written by the builder; use the message's own field"),
        ));
    }
    check_text(&format!("headers[{i}].value"), &header.value)
}

/// Checks the fields that are not addresses.
pub(super) fn check_content(message: &Message) -> Result<(), Error> {
    check_text("subject", &message.subject)?;
    for (i, attachment) in message.attachments.iter().enumerate() {
        check_attachment(i, attachment)?;
    }
    for (i, header) in message.headers.iter().enumerate() {
        check_header(i, header)?;
    }
    if let Some(id) = &message.message_id {
        check_id("message-id", id)?;
        if !id.contains('@') {
            return Err(Error::invalid(
                "message-id",
                "must have the form left@right",
            ));
        }
    }
    if let Some(text) = &message.text {
        check_body("text", text)?;
    }
    if let Some(html) = &message.html {
        check_body("html", html)?;
    }
    Ok(())
}

/// Bodies may hold any text but NUL, which no mail system carries.
fn check_body(field: &str, body: &str) -> Result<(), Error> {
    if body.contains('\0') {
        return Err(Error::invalid(field, "holds a NUL character"));
    }
    Ok(())
}
