//! SMTP replies as written to the wire.

/// One reply: a code, an RFC 3463 enhanced status code (or none) and text
/// lines; more than one line makes a multi-line reply (`250-…` then `250 …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    code: u16,
    status: &'static str,
    lines: Vec<String>,
}

impl Reply {
    /// A one-line reply; `status` is the enhanced code, or `""` for none.
    pub(crate) fn new(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        Self {
            code,
            status,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply without enhanced codes (the `EHLO` answer).
    pub(crate) fn lines(code: u16, lines: Vec<String>) -> Self {
        Self {
            code,
            status: "",
            lines,
        }
    }

    /// The three-digit code.
    #[cfg(test)]
    pub(crate) fn code(&self) -> u16 {
        self.code
    }

    /// Appends the reply, CRLF-terminated, to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let line = if self.status.is_empty() {
                format!("{}{sep}{line}\r\n", self.code)
            } else {
                format!("{}{sep}{} {line}\r\n", self.code, self.status)
            };
            out.extend_from_slice(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: &Reply) -> String {
        let mut out = Vec::new();
        reply.write_to(&mut out);
        String::from_utf8(out).expect("replies are ASCII")
    }

    #[test]
    fn one_line_with_enhanced_code() {
        assert_eq!(wire(&Reply::new(250, "2.1.0", "Ok")), "250 2.1.0 Ok\r\n");
        assert_eq!(wire(&Reply::new(354, "", "Go")), "354 Go\r\n");
    }

    #[test]
    fn multi_line_uses_dashes_until_the_last() {
        let reply = Reply::lines(
            250,
            vec!["host".into(), "PIPELINING".into(), "8BITMIME".into()],
        );
        assert_eq!(
            wire(&reply),
            "250-host\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        );
    }
}
