//! The messages every sender in the table sends or builds, each spelt in
//! the API of that sender, so that all of them put the same bytes on the
//! wire (or build the same MIME tree).

use std::time::{SystemTime, UNIX_EPOCH};

use smtp_mailer_core::message as core;
use smtp_mailer_host as host;

pub const FROM_NAME: &str = "Sender";
pub const FROM: &str = "sender@example.test";
pub const TO: &str = "bob@example.test";
pub const SUBJECT: &str = "Test message";
pub const TEXT: &str = "Hello from the benchmark.\n";

/// The small message of the send rows, for the host library.
pub fn host_message() -> host::Message {
    host::Message {
        from: host::Mailbox::named(FROM_NAME, FROM),
        to: vec![host::Mailbox::new(TO)],
        subject: SUBJECT.into(),
        text: Some(TEXT.into()),
        ..host::Message::default()
    }
}

/// The same message for the core compiled natively.
pub fn core_message() -> core::Message {
    core::Message {
        from: core::Mailbox::named(FROM_NAME, FROM),
        to: vec![core::Mailbox::new(TO)],
        subject: SUBJECT.into(),
        text: Some(TEXT.into()),
        ..core::Message::default()
    }
}

/// What the core's build needs from outside, as the component makes it:
/// the time and a unique token for the Message-ID.
pub fn build_context(serial: u64) -> core::BuildContext {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    core::BuildContext {
        now: now.as_secs() as i64,
        unique: format!("{:x}{serial:x}", now.as_nanos()),
    }
}

/// The same message for lettre, built anew as lettre users do per send.
pub fn lettre_message() -> lettre::Message {
    lettre::Message::builder()
        .from(
            format!("{FROM_NAME} <{FROM}>")
                .parse()
                .expect("a valid From"),
        )
        .to(TO.parse().expect("a valid To"))
        .subject(SUBJECT)
        .body(TEXT.to_string())
        .expect("lettre builds the message")
}

/// The MIME row's message: text, HTML and a 100 KB attachment.
pub struct RichParts {
    pub text: String,
    pub html: String,
    pub attachment: Vec<u8>,
}

pub const ATTACHMENT_NAME: &str = "report.pdf";
pub const ATTACHMENT_TYPE: &str = "application/pdf";
pub const ATTACHMENT_BYTES: usize = 100 * 1024;

impl RichParts {
    pub fn new() -> RichParts {
        let text = "Dear customer,\n\nYour monthly report is attached. \
                    It covers every order of the month.\n\nThe shop\n"
            .repeat(4);
        let html = format!(
            "<html><body><p>Dear customer,</p><p>Your <b>monthly report</b> is attached.</p>{}\
             <p>The shop</p></body></html>",
            "<p>It covers every order of the month.</p>".repeat(8)
        );
        // Incompressible bytes from a fixed xorshift, like a real PDF.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let attachment = (0..ATTACHMENT_BYTES)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        RichParts {
            text,
            html,
            attachment,
        }
    }

    pub fn host_message(&self) -> host::Message {
        host::Message {
            text: Some(self.text.clone()),
            html: Some(self.html.clone()),
            attachments: vec![host::Attachment {
                filename: ATTACHMENT_NAME.into(),
                content_type: ATTACHMENT_TYPE.into(),
                content: self.attachment.clone().into(),
                content_id: None,
            }],
            ..host_message()
        }
    }

    pub fn core_message(&self) -> core::Message {
        core::Message {
            text: Some(self.text.clone()),
            html: Some(self.html.clone()),
            attachments: vec![core::Attachment {
                filename: ATTACHMENT_NAME.into(),
                content_type: ATTACHMENT_TYPE.into(),
                content: self.attachment.clone().into(),
                content_id: None,
            }],
            ..core_message()
        }
    }
}
