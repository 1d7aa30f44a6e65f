//! What the client must know about a message before sending its content:
//! the size for SIZE, and whether it needs SMTPUTF8 or 8BITMIME.

/// What MAIL FROM declares about the content, known before the content is
/// sent (a streamed content is read only after the server said yes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContentInfo {
    /// The size on the wire before dot-stuffing, when known: declared as
    /// SIZE, and checked against the server's limit before MAIL.
    pub size: Option<u64>,
    /// True when the header section holds non-ASCII bytes (SMTPUTF8).
    pub utf8_headers: bool,
    /// Whether the content holds 8-bit bytes: `Some` when known, `None`
    /// when the content is read later. Unknown content is declared
    /// `BODY=8BITMIME` when the server offers it; otherwise any 8-bit byte
    /// met while sending aborts the send before the message is complete.
    pub eight_bit: Option<bool>,
}

impl ContentInfo {
    /// What a whole message in memory needs.
    pub fn of(message: &[u8]) -> ContentInfo {
        let header_end = header_section_len(message).unwrap_or(message.len());
        ContentInfo {
            size: Some(message.len() as u64),
            utf8_headers: !message[..header_end].is_ascii(),
            eight_bit: Some(!message.is_ascii()),
        }
    }

    /// What a message read from a stream needs, from its first bytes
    /// `head` (at least its header section, when it has one) and its
    /// length when known.
    pub fn of_head(head: &[u8], size: Option<u64>) -> ContentInfo {
        let header_end = header_section_len(head).unwrap_or(head.len());
        ContentInfo {
            size,
            utf8_headers: !head[..header_end].is_ascii(),
            eight_bit: if head.is_ascii() { None } else { Some(true) },
        }
    }
}

/// The length of the header section up to the empty line that ends it, or
/// `None` when `message` holds no empty line.
pub fn header_section_len(message: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &b) in message.iter().enumerate() {
        if b == b'\n' {
            let line = &message[line_start..i];
            if line.is_empty() || line == b"\r" {
                return Some(line_start);
            }
            line_start = i + 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_section_and_eight_bit() {
        let message = "Subject: é\r\n\r\nbody".as_bytes();
        assert_eq!(header_section_len(message), Some(13));
        let info = ContentInfo::of(message);
        assert_eq!(info.size, Some(message.len() as u64));
        assert!(info.utf8_headers);
        assert_eq!(info.eight_bit, Some(true));
        let info = ContentInfo::of(b"Subject: a\n\nbody \xff");
        assert!(!info.utf8_headers);
        assert_eq!(info.eight_bit, Some(true));
        assert_eq!(header_section_len(b"no end"), None);
        let head = ContentInfo::of_head(b"Subject: a\r\n\r\nascii so far", None);
        assert_eq!(head.eight_bit, None);
        assert!(!head.utf8_headers);
    }
}
