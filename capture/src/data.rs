//! Reading the content after `DATA` (RFC 5321 section 4.5.2): undo
//! dot-stuffing, find the terminating `CRLF.CRLF`, enforce the size limit.
//!
//! Lines are CRLF-delimited, strictly: a bare LF does not start a line, so
//! `\n.\r\n` neither ends the data nor loses its dot. The capture therefore
//! shows exactly what a client put on the wire. Line length is not limited;
//! the total size is.

/// Where the decoder is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// At the start of a line (the start of the data or after CRLF).
    LineStart,
    /// Inside a line.
    Middle,
    /// Just after a CR inside a line.
    Cr,
    /// After a `.` at the start of a line (held back).
    Dot,
    /// After `.` CR at the start of a line (both held back).
    DotCr,
}

/// Incremental decoder for one message's content.
#[derive(Debug)]
pub(crate) struct DataReader {
    at: At,
    content: Vec<u8>,
    size: usize,
    limit: usize,
}

/// What [`DataReader::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DataEnd {
    /// The input ended inside the content; feed more.
    NeedMore,
    /// The terminator was found after this many input bytes; the content is
    /// complete.
    Complete(usize),
}

impl DataReader {
    /// A reader that keeps at most `limit` bytes of content.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            at: At::LineStart,
            content: Vec::new(),
            size: 0,
            limit,
        }
    }

    /// Decodes `input` up to and including the terminator, if present.
    pub(crate) fn feed(&mut self, input: &[u8]) -> DataEnd {
        for (i, &b) in input.iter().enumerate() {
            self.at = match (self.at, b) {
                (At::LineStart, b'.') => At::Dot,
                (At::Dot, b'\r') => At::DotCr,
                (At::DotCr, b'\n') => return DataEnd::Complete(i + 1),
                (At::DotCr, _) => {
                    // `.` CR then more: the dot was stuffing; the CR is data.
                    self.push(b'\r');
                    self.step_after_cr(b)
                }
                // A stuffed dot is dropped; the byte after it is data.
                (At::Dot, _) | (At::LineStart | At::Middle, _) => self.step_in_line(b),
                (At::Cr, _) => self.step_after_cr(b),
            };
        }
        DataEnd::NeedMore
    }

    /// Whether the content grew past the limit (and was discarded).
    pub(crate) fn too_large(&self) -> bool {
        self.size > self.limit
    }

    /// The decoded content (empty if [`too_large`](Self::too_large)).
    pub(crate) fn into_content(self) -> Vec<u8> {
        self.content
    }

    fn step_in_line(&mut self, b: u8) -> At {
        self.push(b);
        if b == b'\r' {
            At::Cr
        } else {
            At::Middle
        }
    }

    fn step_after_cr(&mut self, b: u8) -> At {
        if b == b'\n' {
            self.push(b);
            At::LineStart
        } else {
            self.step_in_line(b)
        }
    }

    fn push(&mut self, b: u8) {
        self.size = self.size.saturating_add(1);
        if self.size <= self.limit {
            self.content.push(b);
        } else if !self.content.is_empty() {
            self.content = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in chunks of every size; all must agree.
    fn decode(wire: &[u8], limit: usize) -> (Option<Vec<u8>>, usize) {
        let mut results = Vec::new();
        for chunk in 1..=wire.len().max(1) {
            let mut reader = DataReader::new(limit);
            let mut used = 0;
            let mut done = false;
            for piece in wire.chunks(chunk) {
                if let DataEnd::Complete(n) = reader.feed(piece) {
                    used += n;
                    done = true;
                    break;
                }
                used += piece.len();
            }
            let content = (!reader.too_large()).then(|| reader.into_content());
            results.push((done.then_some(content).flatten(), used));
        }
        assert!(
            results.windows(2).all(|w| w[0] == w[1]),
            "chunking changed the result"
        );
        results.remove(0)
    }

    #[test]
    fn ends_at_crlf_dot_crlf_and_keeps_the_last_crlf() {
        let wire = b"Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n";
        let (content, used) = decode(wire, 1000);
        assert_eq!(
            content.as_deref(),
            Some(&b"Subject: hi\r\n\r\nbody\r\n"[..])
        );
        assert_eq!(&wire[used..], b"QUIT\r\n");
    }

    #[test]
    fn empty_content() {
        assert_eq!(decode(b".\r\n", 10), (Some(Vec::new()), 3));
    }

    #[test]
    fn undoes_dot_stuffing_only_at_line_start() {
        let wire = b"..leading\r\n...\r\na.b\r\n.x\r\n.\rz\r\n.\r\n";
        let (content, _) = decode(wire, 1000);
        assert_eq!(
            content.as_deref(),
            Some(&b".leading\r\n..\r\na.b\r\nx\r\n\rz\r\n"[..])
        );
    }

    #[test]
    fn bare_lf_is_not_a_line_end() {
        let wire = b"a\n.\r\nb\n..\r\n.\r\n";
        let (content, _) = decode(wire, 1000);
        assert_eq!(content.as_deref(), Some(&b"a\n.\r\nb\n..\r\n"[..]));
    }

    #[test]
    fn over_the_limit_reads_to_the_end_and_reports_it() {
        let wire = b"0123456789\r\nmore\r\n.\r\nNOOP\r\n";
        let (content, used) = decode(wire, 5);
        assert_eq!(content, None);
        assert_eq!(&wire[used..], b"NOOP\r\n");
        let (content, _) = decode(b"12345\r\n.\r\n", 7);
        assert_eq!(content.as_deref(), Some(&b"12345\r\n"[..]));
    }

    #[test]
    fn unterminated_needs_more() {
        let mut reader = DataReader::new(100);
        assert_eq!(reader.feed(b"abc\r\n.\r"), DataEnd::NeedMore);
        assert_eq!(reader.feed(b"\n"), DataEnd::Complete(1));
        assert_eq!(reader.into_content(), b"abc\r\n");
    }
}
