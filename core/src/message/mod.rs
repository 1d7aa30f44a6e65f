//! Messages: the model a caller fills in, its checks, and its RFC 5322
//! bytes.
//!
//! [`Message::build`] checks every field (naming the field at fault), then
//! writes the MIME structure with `mail-builder`:
//!
//! - text and HTML bodies form a multipart/alternative;
//! - inline parts (attachments with a content-id) form a multipart/related
//!   with the HTML body;
//! - other attachments and that body form a multipart/mixed.
//!
//! Bcc recipients go into the envelope only, never into a header.
//!
//! An attachment's content may be [`Content::Streamed`]: the build then
//! leaves a gap in the bytes ([`Built::streams`]) that the sender fills
//! with [`base64_lines`] while it reads the stream, so that a large file is
//! never held whole.

pub mod base64_lines;
mod build;
mod check;

pub use build::{Built, StreamSlot};

/// A mailbox: an optional display name and an address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    /// The display name, any Unicode text without control characters.
    pub name: Option<String>,
    /// The address, `local-part@domain`.
    pub address: String,
}

impl Mailbox {
    /// A mailbox with no display name.
    pub fn new(address: impl Into<String>) -> Mailbox {
        Mailbox {
            name: None,
            address: address.into(),
        }
    }

    /// A mailbox with a display name.
    pub fn named(name: impl Into<String>, address: impl Into<String>) -> Mailbox {
        Mailbox {
            name: Some(name.into()),
            address: address.into(),
        }
    }
}

/// A file carried by the message; inline when it has a content-id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attachment {
    /// The file name shown to the reader.
    pub filename: String,
    /// The MIME type, `type/subtype`.
    pub content_type: String,
    /// The file's content.
    pub content: Content,
    /// The Content-ID the HTML body refers to as `cid:`, without brackets.
    pub content_id: Option<String>,
}

/// Where an attachment's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The whole content, in memory.
    Bytes(Vec<u8>),
    /// Content that the sender reads from a stream while sending, with its
    /// length when known (for SIZE).
    Streamed {
        /// The number of bytes the stream gives, when known.
        size: Option<u64>,
    },
}

impl Default for Content {
    fn default() -> Self {
        Content::Bytes(Vec::new())
    }
}

impl From<Vec<u8>> for Content {
    fn from(bytes: Vec<u8>) -> Self {
        Content::Bytes(bytes)
    }
}

/// A header the model has no field for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// Its name, printable ASCII without a colon.
    pub name: String,
    /// Its unfolded value.
    pub value: String,
}

/// A message to build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The author.
    pub from: Mailbox,
    /// Where replies go.
    pub reply_to: Vec<Mailbox>,
    /// Primary recipients.
    pub to: Vec<Mailbox>,
    /// Copied recipients.
    pub cc: Vec<Mailbox>,
    /// Blind-copied recipients: envelope only.
    pub bcc: Vec<Mailbox>,
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub text: Option<String>,
    /// The HTML body.
    pub html: Option<String>,
    /// Attachments and inline parts.
    pub attachments: Vec<Attachment>,
    /// Extra headers, in order.
    pub headers: Vec<Header>,
    /// The Message-ID without brackets; generated when none.
    pub message_id: Option<String>,
    /// The Date in seconds since the Unix epoch; the build time when none.
    pub date: Option<i64>,
}

/// What the build needs from outside: the time and something unique, so
/// that building reads no clock and no random source of its own.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// Now, in seconds since the Unix epoch: the Date when the message has
    /// none.
    pub now: i64,
    /// A unique token (letters and digits) for a generated Message-ID.
    pub unique: String,
}
