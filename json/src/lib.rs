//! Messages in JSON with the field names of nodemailer's message object:
//! `from, to, cc, bcc, replyTo, subject, text, html, headers,
//! attachments[{filename, content (base64) or path, encoding, contentType,
//! cid}], messageId`.
//!
//! The parser does no I/O: an attachment given by `path` stays a path, for
//! the caller to open (the CLI streams it; a component without files refuses
//! it). It compiles natively and to wasm32-wasip2, so the CLI and the Spin
//! components read the same JSON the same way.
//!
//! ```
//! let m = smtp_mailer_json::parse_message(
//!     r#"{"from": "App <app@example.org>", "to": "ada@example.org", "subject": "Hi"}"#,
//! )?;
//! assert_eq!(m.to[0].address, "ada@example.org");
//! # Ok::<(), smtp_mailer_json::JsonError>(())
//! ```

mod content_type;
mod date;
mod error;
mod mailbox;
mod message;

pub use content_type::guess_content_type;
pub use date::parse_date;
pub use error::JsonError;
pub use mailbox::{parse_list, parse_mailbox, Mailbox};
pub use message::{parse_message, Attachment, AttachmentSource, Header, JsonMessage};
