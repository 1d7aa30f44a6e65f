//! A message as the capture server received it.

use std::time::SystemTime;

/// One message accepted by the capture server: the SMTP envelope and the
/// content exactly as transferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMessage {
    /// Server-wide number, starting at 1 (or after the highest `<id>.eml`
    /// already in [`CaptureOptions::dir`](crate::CaptureOptions::dir)); also
    /// the `queued as` number in the `250` reply.
    pub id: u64,
    /// The `MAIL FROM` reverse path without angle brackets; empty for `<>`.
    pub mail_from: String,
    /// The accepted `RCPT TO` forward paths without angle brackets, in order.
    pub rcpt_to: Vec<String>,
    /// The content after `DATA`: dot-stuffing undone, line endings exactly as
    /// received (CRLF from a conforming client), without the final `.CRLF`.
    pub data: Vec<u8>,
    /// When the final `.CRLF` arrived.
    pub received_at: SystemTime,
    /// Server-wide number of the connection that delivered the message,
    /// starting at 1; messages sent over one connection share it.
    pub connection: u64,
}

impl CapturedMessage {
    /// The content as text, with any invalid UTF-8 replaced by `U+FFFD`.
    pub fn data_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_text_replaces_invalid_bytes() {
        let message = CapturedMessage {
            id: 1,
            mail_from: String::new(),
            rcpt_to: vec!["a@example.com".into()],
            data: b"Subject: x\r\n\xff".to_vec(),
            received_at: SystemTime::UNIX_EPOCH,
            connection: 1,
        };
        assert_eq!(message.data_lossy(), "Subject: x\r\n\u{fffd}");
    }
}
