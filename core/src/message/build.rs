//! Writing a checked message with `mail-builder`.

use mail_builder::headers::address::Address as MbAddress;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

use super::base64_lines::{self, encoded_len};
use super::check::{check_content, check_mailbox, check_mailboxes};
use super::{BuildContext, Content, Mailbox, Message};
use crate::address::Address;
use crate::error::Error;
use crate::smtp::data::normalize_line_endings;
use crate::smtp::{ContentInfo, Envelope};

/// A built message: its bytes and what sending it needs.
#[derive(Debug, Clone)]
pub struct Built {
    /// The RFC 5322 bytes with CRLF line endings, as they are sent (before
    /// the transport's dot-stuffing); with a gap at each of `streams`.
    pub bytes: Vec<u8>,
    /// Where streamed attachments go, in the order of their offsets: at
    /// each, the stream's content in [`base64_lines`], then `bytes`
    /// carries on. Empty when no content is streamed.
    pub streams: Vec<StreamSlot>,
    /// The Message-ID, without angle brackets.
    pub message_id: String,
    /// From's address to every To, Cc and Bcc address, each once.
    pub envelope: Envelope,
}

/// A gap in [`Built::bytes`] for a streamed attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSlot {
    /// The offset in `bytes` where the encoded stream goes.
    pub offset: usize,
    /// The attachment's index in [`Message::attachments`].
    pub attachment: usize,
    /// The stream's length in bytes, when known.
    pub size: Option<u64>,
}

impl Built {
    /// The message's size on the wire (before dot-stuffing), when every
    /// stream's length is known.
    pub fn size(&self) -> Option<u64> {
        self.streams
            .iter()
            .try_fold(self.bytes.len() as u64, |total, slot| {
                Some(total + encoded_len(slot.size?))
            })
    }

    /// What the SMTP client must know before the content: the size, and
    /// whether the headers or the content need SMTPUTF8 or 8BITMIME.
    /// Streamed parts are base64, so the bytes around them tell.
    pub fn content_info(&self) -> ContentInfo {
        ContentInfo {
            size: self.size(),
            ..ContentInfo::of(&self.bytes)
        }
    }

    /// The whole message, with each stream's content (in the order of
    /// `streams`) read by `read`: for building without sending.
    pub fn assemble<E>(
        self,
        mut read: impl FnMut(&StreamSlot) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<u8>, E> {
        let mut out = Vec::with_capacity(self.bytes.len());
        let mut at = 0;
        for slot in &self.streams {
            out.extend_from_slice(&self.bytes[at..slot.offset]);
            out.extend_from_slice(&base64_lines::encode(&read(slot)?));
            at = slot.offset;
        }
        out.extend_from_slice(&self.bytes[at..]);
        Ok(out)
    }
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
        let marker = |index: usize| format!("\0smtp-mailer-stream-{index}-{}\0", context.unique);
        let streamed: Vec<(usize, Option<u64>)> = self
            .attachments
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a.content {
                Content::Streamed { size } => Some((i, size)),
                Content::Bytes(_) => None,
            })
            .collect();
        let attachments = self.attachments.into_iter().enumerate();
        let text = self.text.map(crlf);
        let html = self.html.map(crlf);
        builder = builder.body(body(text, html, attachments, &marker));

        let mut bytes = Vec::new();
        builder.serialize(&mut bytes);
        // mail-builder writes CRLF; the bodies were normalised before, and
        // every header field holds no CR or LF (checked).
        let streams = cut_markers(&mut bytes, &streamed, &marker)?;
        Ok(Built {
            bytes,
            streams,
            message_id,
            envelope,
        })
    }
}

/// Removes each streamed attachment's marker from `bytes`, and notes
/// where it was.
fn cut_markers(
    bytes: &mut Vec<u8>,
    streamed: &[(usize, Option<u64>)],
    marker: &dyn Fn(usize) -> String,
) -> Result<Vec<StreamSlot>, Error> {
    let mut found = Vec::with_capacity(streamed.len());
    for &(attachment, size) in streamed {
        let marker = marker(attachment);
        let mut at = find(bytes, marker.as_bytes(), 0);
        let offset = at.ok_or_else(|| internal("a streamed attachment's place was lost"))?;
        at = find(bytes, marker.as_bytes(), offset + 1);
        if at.is_some() {
            return Err(Error::invalid(
                "text",
                "holds the marker of a streamed attachment; remove NUL characters",
            ));
        }
        found.push((offset, marker.len(), attachment, size));
    }
    found.sort_by_key(|f| f.0);
    let mut streams = Vec::with_capacity(found.len());
    let mut removed = 0;
    for (offset, len, attachment, size) in found {
        let offset = offset - removed;
        bytes.drain(offset..offset + len);
        removed += len;
        streams.push(StreamSlot {
            offset,
            attachment,
            size,
        });
    }
    Ok(streams)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn internal(detail: &str) -> Error {
    Error::Protocol {
        stage: crate::error::Stage::DataEnd,
        detail: format!("building the message failed: {detail}"),
    }
}

/// A body with CRLF line endings, every bare CR and LF converted.
fn crlf(text: String) -> String {
    let bytes = text.as_bytes();
    let bare = bytes.iter().enumerate().any(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || bytes[i - 1] != b'\r',
        _ => false,
    });
    if !bare {
        return text;
    }
    // Only ASCII CR and LF change, so the text stays UTF-8.
    String::from_utf8(normalize_line_endings(text.as_bytes())).unwrap_or(text)
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
    attachments: impl Iterator<Item = (usize, super::Attachment)>,
    marker: &dyn Fn(usize) -> String,
) -> MimePart<'static> {
    let (inline, regular): (Vec<_>, Vec<_>) =
        attachments.partition(|(_, a)| a.content_id.is_some() && html.is_some());
    let attachment_part = |(i, a): (usize, super::Attachment)| attachment_part(i, a, marker);

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
/// A streamed attachment's body is its marker, cut out after the build.
fn attachment_part(
    index: usize,
    a: super::Attachment,
    marker: &dyn Fn(usize) -> String,
) -> MimePart<'static> {
    let body = match &a.content {
        Content::Bytes(bytes) => base64_lines::encode(bytes),
        Content::Streamed { .. } => marker(index).into_bytes(),
    };
    let part = MimePart::new(
        ContentType::new(a.content_type),
        BodyPart::Binary(body.into()),
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
