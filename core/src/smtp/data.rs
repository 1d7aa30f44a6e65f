//! The content on the wire: line endings normalised to CRLF and, after
//! DATA, dot-stuffing (RFC 5321 4.5.2), so that the content can never end
//! the data early, whatever bytes it holds. BDAT chunks (RFC 3030) carry
//! their length, so they are normalised but not stuffed.

/// Encodes message bytes for DATA, chunk by chunk.
///
/// Every bare CR and every bare LF becomes CRLF; a dot at the start of any
/// line is doubled; `finish` closes the last line and appends `.CRLF`. A CRLF
/// split across two chunks is recognised.
#[derive(Debug, Clone)]
pub struct DataEncoder {
    at_line_start: bool,
    pending_cr: bool,
    /// False for BDAT: line endings only.
    stuff_dots: bool,
}

impl Default for DataEncoder {
    fn default() -> Self {
        DataEncoder {
            at_line_start: true,
            pending_cr: false,
            stuff_dots: true,
        }
    }
}

impl DataEncoder {
    /// An encoder at the start of the content, for DATA.
    pub fn new() -> Self {
        Self::default()
    }

    /// An encoder for BDAT chunks: line endings are normalised, dots are
    /// left alone.
    pub fn for_bdat() -> Self {
        DataEncoder {
            stuff_dots: false,
            ..Self::default()
        }
    }

    /// Appends the encoding of `chunk` to `out`.
    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len() + chunk.len() / 64 + 8);
        let mut start = 0;
        for (i, &byte) in chunk.iter().enumerate() {
            if self.pending_cr {
                self.pending_cr = false;
                if byte == b'\n' {
                    // The CRLF was already written at the CR.
                    start = i + 1;
                    continue;
                }
            }
            match byte {
                b'\r' | b'\n' => {
                    out.extend_from_slice(&chunk[start..i]);
                    out.extend_from_slice(b"\r\n");
                    self.pending_cr = byte == b'\r';
                    self.at_line_start = true;
                    start = i + 1;
                }
                b'.' if self.at_line_start && self.stuff_dots => {
                    out.extend_from_slice(&chunk[start..i]);
                    out.push(b'.');
                    start = i; // the dot itself is copied with what follows
                    self.at_line_start = false;
                }
                _ => self.at_line_start = false,
            }
        }
        out.extend_from_slice(&chunk[start..]);
    }

    /// Ends the content: a CRLF if the last line has none, then `.CRLF`.
    pub fn finish(self, out: &mut Vec<u8>) {
        self.finish_line(out);
        out.extend_from_slice(b".\r\n");
    }

    /// Ends the last line with a CRLF if it has none: the end of BDAT
    /// content, which has no terminator.
    pub fn finish_line(&self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Encodes a whole message for DATA, terminator included.
pub fn encode_data(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut encoder = DataEncoder::new();
    encoder.encode(message, &mut out);
    encoder.finish(&mut out);
    out
}

/// Normalises every bare CR and bare LF to CRLF, without dot-stuffing: the
/// message as it is meant to be read, before the transport's encoding.
pub fn normalize_line_endings(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' if message.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a server recovers: the content up to the first `CRLF.CRLF`
    /// (the terminator), with the leading dot of each line removed.
    fn server_view(wire: &[u8]) -> Vec<u8> {
        let mut content = Vec::new();
        let mut lines = wire.split_inclusive(|&b| b == b'\n');
        for line in &mut lines {
            assert!(line.ends_with(b"\r\n"), "line without CRLF: {line:?}");
            if line == b".\r\n" {
                return content;
            }
            content.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        panic!("no terminator in {:?}", String::from_utf8_lossy(wire));
    }

    fn assert_clean(wire: &[u8]) {
        for (i, &b) in wire.iter().enumerate() {
            if b == b'\n' {
                assert_eq!(wire.get(i.wrapping_sub(1)), Some(&b'\r'), "bare LF at {i}");
            }
            if b == b'\r' {
                assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR at {i}");
            }
        }
        // The terminator appears exactly once, at the end.
        if wire.starts_with(b".\r\n") {
            assert_eq!(wire.len(), 3);
        } else {
            let first = wire.windows(5).position(|w| w == b"\r\n.\r\n");
            assert_eq!(first, Some(wire.len() - 5), "terminator before the end");
        }
    }

    #[test]
    fn smuggling_attempts_are_stuffed() {
        let cases: &[&[u8]] = &[
            b"a\n.\nMAIL FROM:<x@y>\n",
            b"a\n.\r\nRCPT TO:<x@y>\r\n",
            b"a\r.\r\nb",
            b"a\r\n.\rb",
            b".leading dot\r\n..two\r\n",
            b"lone CR\rhere and lone LF\nthere",
            b"last line without CRLF",
            b"",
            b".",
            b"\r\n.\r\n",
            b"\n.\n",
        ];
        for &case in cases {
            let wire = encode_data(case);
            assert_clean(&wire);
            assert_eq!(server_view(&wire), {
                let mut n = normalize_line_endings(case);
                if !n.is_empty() && !n.ends_with(b"\r\n") {
                    n.extend_from_slice(b"\r\n");
                }
                n
            });
        }
    }

    #[test]
    fn the_same_in_chunks_of_every_size() {
        let input = b"x\r\n.\r\n\r\r\n\n.a\r.b\n..\rend.";
        let whole = encode_data(input);
        for size in 1..=input.len() {
            let mut encoder = DataEncoder::new();
            let mut out = Vec::new();
            for chunk in input.chunks(size) {
                encoder.encode(chunk, &mut out);
            }
            encoder.finish(&mut out);
            assert_eq!(out, whole, "chunk size {size}");
        }
    }

    #[test]
    fn bdat_normalises_without_stuffing() {
        let mut encoder = DataEncoder::for_bdat();
        let mut out = Vec::new();
        encoder.encode(b"a\n.b\r", &mut out);
        encoder.encode(b"\n.\r\nend", &mut out);
        encoder.finish_line(&mut out);
        assert_eq!(out, b"a\r\n.b\r\n.\r\nend\r\n");
    }

    #[test]
    fn exact_encodings() {
        assert_eq!(encode_data(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(encode_data(b"a\n.\n"), b"a\r\n..\r\n.\r\n");
        assert_eq!(encode_data(b"a\r.\r\n"), b"a\r\n..\r\n.\r\n");
        assert_eq!(encode_data(b""), b".\r\n");
        assert_eq!(encode_data(b"x"), b"x\r\n.\r\n");
        assert_eq!(normalize_line_endings(b"a\rb\nc\r\n"), b"a\r\nb\r\nc\r\n");
    }
}
