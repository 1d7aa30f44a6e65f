//! SMTP replies (RFC 5321 section 4.2) and a resumable parser for them.
//!
//! The parser takes bytes as they arrive, in chunks of any size, and bounds
//! both the length of a line and of a whole reply, so that a hostile server
//! cannot make the client buffer without limit.

use std::fmt;

/// The longest reply line accepted, CRLF included. RFC 5321 allows 512
/// octets; real servers send longer text, so the bound is generous.
pub const MAX_LINE_LEN: usize = 4096;
/// The most lines one reply may have.
pub const MAX_LINES: usize = 128;
/// The most bytes one reply may have, all lines together.
pub const MAX_REPLY_LEN: usize = 64 * 1024;

/// A complete reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code, 200 to 599.
    pub code: u16,
    /// The RFC 3463 enhanced status code of the first line, such as
    /// `5.1.1`, when the server gave one whose class matches `code`.
    pub enhanced: Option<String>,
    /// The text of each line, without code, separator, enhanced code or CRLF.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply, for tests and for replies synthesised by a driver.
    pub fn new(code: u16, text: &str) -> Reply {
        let mut reply = Reply {
            code,
            enhanced: None,
            lines: vec![text.to_string()],
        };
        reply.extract_enhanced();
        reply
    }

    /// Parses a whole reply given as lines without CRLF, such as
    /// `["250-mx.example", "250 SIZE 1000"]`.
    pub fn parse_lines(lines: &[&str]) -> Result<Reply, ReplyError> {
        let mut parser = ReplyParser::new();
        let mut joined = String::new();
        for line in lines {
            joined.push_str(line);
            joined.push_str("\r\n");
        }
        match parser.feed(joined.as_bytes())? {
            (used, Some(reply)) if used == joined.len() => Ok(reply),
            _ => Err(ReplyError::Malformed("not one complete reply".into())),
        }
    }

    /// 2xx: the command succeeded.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3xx: the server waits for more (354 after DATA).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4xx: refused for now; the same command may succeed later.
    pub fn is_transient_negative(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: refused for good.
    pub fn is_permanent_negative(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The text of every line joined with a line feed.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The reply in one line, for error messages: `550 5.1.1 No such user`.
    pub fn one_line(&self) -> String {
        let mut out = self.code.to_string();
        if let Some(enhanced) = &self.enhanced {
            out.push(' ');
            out.push_str(enhanced);
        }
        for line in &self.lines {
            if !line.is_empty() {
                out.push(' ');
                out.push_str(line);
            }
        }
        out
    }

    /// Moves a leading enhanced status code out of the text of every line.
    fn extract_enhanced(&mut self) {
        let Some(first) = self.lines.first() else {
            return;
        };
        let Some((code, _)) = split_enhanced(first, self.code) else {
            return;
        };
        let code = code.to_string();
        for line in &mut self.lines {
            if let Some((c, rest)) = split_enhanced(line, self.code) {
                if c == code {
                    *line = rest.to_string();
                }
            }
        }
        self.enhanced = Some(code);
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_line())
    }
}

/// Splits `"5.1.1 text"` into `("5.1.1", "text")` when the class digit
/// matches the reply code's first digit.
fn split_enhanced(text: &str, code: u16) -> Option<(&str, &str)> {
    let end = text.find(' ').unwrap_or(text.len());
    let candidate = &text[..end];
    let mut parts = candidate.split('.');
    let class = parts.next()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    let expected_class = (code / 100).to_string();
    if class != expected_class || !digits(subject, 3) || !digits(detail, 3) {
        return None;
    }
    Some((candidate, text[end..].trim_start_matches(' ')))
}

/// A reply that could not be parsed. Any of these ends the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A line does not start with a three-digit code and a separator, or the
    /// lines of one reply carry different codes.
    Malformed(String),
    /// A line, or the whole reply, is longer than the bounds of this module.
    TooLong(String),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Malformed(s) => write!(f, "malformed reply: {s}"),
            ReplyError::TooLong(s) => write!(f, "reply too long: {s}"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// A resumable reply parser: feed it bytes as they arrive.
///
/// After a reply is complete the parser is ready for the next one; bytes
/// after the reply's end are left unconsumed for the caller to feed again
/// (pipelined replies arrive together).
#[derive(Debug, Default)]
pub struct ReplyParser {
    line: Vec<u8>,
    code: Option<u16>,
    lines: Vec<String>,
    total: usize,
}

impl ReplyParser {
    /// A parser waiting for the first byte of a reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when part of a reply has been fed but it is not complete yet.
    pub fn is_partial(&self) -> bool {
        !self.line.is_empty() || !self.lines.is_empty()
    }

    /// Consumes bytes from `input` up to the end of one reply. Returns how
    /// many bytes were consumed and the reply if it is complete.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, Option<Reply>), ReplyError> {
        let mut used = 0;
        while used < input.len() {
            let rest = &input[used..];
            let (chunk, line_done) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..=i], true),
                None => (rest, false),
            };
            if self.line.len() + chunk.len() > MAX_LINE_LEN {
                return Err(ReplyError::TooLong(format!(
                    "a line exceeds {MAX_LINE_LEN} bytes"
                )));
            }
            self.total += chunk.len();
            if self.total > MAX_REPLY_LEN {
                return Err(ReplyError::TooLong(format!(
                    "the reply exceeds {MAX_REPLY_LEN} bytes"
                )));
            }
            self.line.extend_from_slice(chunk);
            used += chunk.len();
            if !line_done {
                break;
            }
            if let Some(reply) = self.finish_line()? {
                return Ok((used, Some(reply)));
            }
        }
        Ok((used, None))
    }

    /// Parses the complete line in `self.line`; returns the reply if it was
    /// the last line.
    fn finish_line(&mut self) -> Result<Option<Reply>, ReplyError> {
        let mut line = std::mem::take(&mut self.line);
        line.pop(); // LF
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
            return Err(ReplyError::Malformed(format!(
                "line does not start with a code: {:?}",
                printable(&line)
            )));
        }
        let code = line[..3]
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        if !(200..600).contains(&code) {
            return Err(ReplyError::Malformed(format!(
                "code {code} is out of range"
            )));
        }
        if let Some(previous) = self.code {
            if previous != code {
                return Err(ReplyError::Malformed(format!(
                    "code {code} continues a reply with code {previous}"
                )));
            }
        }
        let (last, text) = match line.get(3) {
            None => (true, &line[3..]),
            Some(b' ') => (true, &line[4..]),
            Some(b'-') => (false, &line[4..]),
            Some(_) => {
                return Err(ReplyError::Malformed(format!(
                    "bad separator after the code: {:?}",
                    printable(&line)
                )))
            }
        };
        if self.lines.len() >= MAX_LINES {
            return Err(ReplyError::TooLong(format!("more than {MAX_LINES} lines")));
        }
        self.code = Some(code);
        self.lines.push(String::from_utf8_lossy(text).into_owned());
        if !last {
            return Ok(None);
        }
        let mut reply = Reply {
            code,
            enhanced: None,
            lines: std::mem::take(&mut self.lines),
        };
        reply.extract_enhanced();
        self.code = None;
        self.total = 0;
        Ok(Some(reply))
    }
}

/// A short, printable rendering of server bytes for error messages.
fn printable(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(80)];
    String::from_utf8_lossy(shown)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8], chunk: usize) -> Result<Vec<Reply>, ReplyError> {
        let mut parser = ReplyParser::new();
        let mut replies = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for piece in input.chunks(chunk) {
            pending.extend_from_slice(piece);
            loop {
                let (used, reply) = parser.feed(&pending)?;
                pending.drain(..used);
                match reply {
                    Some(r) => replies.push(r),
                    None => break,
                }
            }
        }
        assert!(pending.is_empty());
        Ok(replies)
    }

    const EHLO: &[u8] = b"250-mx.example.org Hello client [127.0.0.1]\r\n\
250-SIZE 52428800\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n\
250-SMTPUTF8\r\n250 CHUNKING\r\n550 5.1.1 <nobody@example.org>: Recipient address rejected\r\n\
250 2.1.0 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n";

    #[test]
    fn parses_the_same_in_chunks_of_every_size() {
        let whole = parse_all(EHLO, EHLO.len()).unwrap();
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[0].code, 250);
        assert_eq!(whole[0].lines.len(), 7);
        assert_eq!(whole[0].lines[1], "SIZE 52428800");
        assert_eq!(whole[1].code, 550);
        assert_eq!(whole[1].enhanced.as_deref(), Some("5.1.1"));
        assert_eq!(
            whole[1].lines[0],
            "<nobody@example.org>: Recipient address rejected"
        );
        assert_eq!(whole[2].enhanced.as_deref(), Some("2.1.0"));
        assert_eq!(whole[3].code, 354);
        assert_eq!(whole[3].enhanced, None);
        for chunk in 1..EHLO.len() {
            assert_eq!(parse_all(EHLO, chunk).unwrap(), whole, "chunk size {chunk}");
        }
    }

    #[test]
    fn accepts_bare_lf_and_code_only_lines() {
        let replies = parse_all(b"220\n250 ok\n", 3).unwrap();
        assert_eq!(replies[0].code, 220);
        assert_eq!(replies[0].lines, vec![String::new()]);
        assert_eq!(replies[1].text(), "ok");
    }

    #[test]
    fn enhanced_code_of_another_class_is_text() {
        let r = Reply::new(250, "5.1.1 odd");
        assert_eq!(r.enhanced, None);
        assert_eq!(r.text(), "5.1.1 odd");
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            &b"hello\r\n"[..],
            b"25\r\n",
            b"250x\r\n",
            b"099 low\r\n",
            b"600 high\r\n",
            b"250-a\r\n251 b\r\n",
        ] {
            assert!(
                matches!(parse_all(bad, 1), Err(ReplyError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bounds_line_and_reply_length() {
        let long_line = [b"250 ".as_slice(), &vec![b'a'; MAX_LINE_LEN], b"\r\n"].concat();
        assert!(matches!(
            parse_all(&long_line, 1000),
            Err(ReplyError::TooLong(_))
        ));
        // An endless continuation: many short lines.
        let endless: Vec<u8> = b"250-x\r\n".repeat(MAX_LINES + 1);
        assert!(matches!(
            parse_all(&endless, 7),
            Err(ReplyError::TooLong(_))
        ));
        let big: Vec<u8> = [b"250-".as_slice(), &vec![b'b'; 4000], b"\r\n"]
            .concat()
            .repeat(20);
        assert!(matches!(parse_all(&big, 4096), Err(ReplyError::TooLong(_))));
    }

    #[test]
    fn one_line_rendering() {
        let r = Reply::parse_lines(&["550-5.1.1 No such", "550 5.1.1 user"]).unwrap();
        assert_eq!(r.one_line(), "550 5.1.1 No such user");
        assert_eq!(r.text(), "No such\nuser");
    }
}
