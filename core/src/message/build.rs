//! Writing a checked message with `mail-builder`.

use mail_builder::headers::address::Address as MbAddress;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

use super::check::{check_content, check_mailbox, check_mailboxes};
use super::{BuildContext, Mailbox, Message};
use crate::address::Address;
use crate::error::Error;
use crate::smtp::data::normalize_line_endings;
use crate::smtp::Envelope;

/// A built message: its bytes and what sending it needs.
#[derive(Debug, Clone)]
pub struct Built {
    /// The RFC 5322 bytes with CRLF line endings, as they are sent (before
    /// the transport's dot-stuffing).
    pub bytes: Vec<u8>,
    /// The Message-ID, without angle brackets.
    pub message_id: String,
    /// From's address to every To, Cc and Bcc address, each once.
    pub envelope: Envelope,
}

impl Message {
    /// Checks every field, then builds the message.
    pub fn build(self, context: &BuildContext) -> Result<Built, Error> {
        let from = check_mailbox("from", &self.from)?;
        check_mailboxes("reply-to", &self.reply_to)?;
        let to = check_mailboxes("to", &self.to)?;
        let cc = check_mailboxes("cc", &self.cc)?;
        let bcc = check_mailboxes("bcc", &self.bcc)?;
        check_content(&self)?;

        let mut forward: Vec<Address> = Vec::with_capacity(to.len() + cc.len() + bcc.len());
        for address in to.into_iter().chain(cc).chain(bcc) {
            if !forward.contains(&address) {
                forward.push(address);
            }
        }
        let message_id = self
            .message_id
            .clone()
            .unwrap_or_else(|| generate_message_id(&context.unique, &from));
        let envelope = Envelope::from_addresses(Some(from), forward)
            .map_err(|_| Error::invalid("to", "there is no recipient (to, cc or bcc)"))?;

        let mut builder = MessageBuilder::new()
            .from(mailbox(&self.from))
            .subject(Text::new(self.subject))
            .message_id(MessageId::new(message_id.clone()))
            .date(Date::new(self.date.unwrap_or(context.now)));
        if !self.to.is_empty() {
            builder = builder.to(mailbox_list(&self.to));
        }
        if !self.cc.is_empty() {
            builder = builder.cc(mailbox_list(&self.cc));
        }
        if !self.reply_to.is_empty() {
            builder = builder.reply_to(mailbox_list(&self.reply_to));
        }
        for header in self.headers {
            builder = builder.header(header.name, Text::new(header.value));
        }
        builder = builder.body(body(self.text, self.html, self.attachments));

        let mut bytes = Vec::new();
        builder.serialize(&mut bytes);
        Ok(Built {
            bytes: normalize_line_endings(&bytes),
            message_id,
            envelope,
        })
    }
}

fn mailbox(m: &Mailbox) -> MbAddress<'static> {
    MbAddress::new_address(m.name.clone(), m.address.clone())
}

fn mailbox_list(list: &[Mailbox]) -> MbAddress<'static> {
    MbAddress::new_list(list.iter().map(mailbox).collect())
}

/// `<unique>@<from's domain>`; `localhost` stands in for an address
/// literal, which cannot be a message-id's right side.
fn generate_message_id(unique: &str, from: &Address) -> String {
    let domain = match from.domain() {
        d if d.starts_with('[') => "localhost",
        d => d,
    };
    format!("{unique}@{domain}")
}

/// The MIME tree: alternative(text, related(html, inline...)) inside
/// mixed(..., attachments...), each level only when it has two parts.
fn body(
    text: Option<String>,
    html: Option<String>,
    attachments: Vec<super::Attachment>,
) -> MimePart<'static> {
    let (inline, regular): (Vec<_>, Vec<_>) = attachments
        .into_iter()
        .partition(|a| a.content_id.is_some() && html.is_some());

    let html_part = html.map(|html| {
        let html = MimePart::new("text/html", BodyPart::Text(html.into()));
        if inline.is_empty() {
            return html;
        }
        let mut parts = vec![html];
        parts.extend(inline.into_iter().map(attachment_part));
        MimePart::new("multipart/related", parts)
    });
    let text_part = text.map(|text| MimePart::new("text/plain", BodyPart::Text(text.into())));
    let main = match (text_part, html_part) {
        (Some(text), Some(html)) => Some(MimePart::new("multipart/alternative", vec![text, html])),
        (text, html) => text.or(html),
    };
    if regular.is_empty() {
        return main.unwrap_or_else(|| MimePart::new("text/plain", BodyPart::Text("".into())));
    }
    let mut parts: Vec<MimePart<'static>> = main.into_iter().collect();
    parts.extend(regular.into_iter().map(attachment_part));
    MimePart::new("multipart/mixed", parts)
}

/// An attachment, always in base64: its bytes arrive exactly, whatever they
/// hold (mail-builder would send a `text/*` file's NUL or bare CR as 7bit).
fn attachment_part(a: super::Attachment) -> MimePart<'static> {
    let part = MimePart::new(
        ContentType::new(a.content_type),
        BodyPart::Binary(base64_lines(&a.content).into()),
    )
    .transfer_encoding("base64");
    match a.content_id {
        Some(cid) => part
            .header(
                "Content-Disposition",
                ContentType::new("inline").attribute("filename", a.filename),
            )
            .cid(cid),
        None => part.attachment(a.filename),
    }
}

/// Base64 in lines of 76 characters, each ending in CRLF (RFC 2045 6.8).
fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}
