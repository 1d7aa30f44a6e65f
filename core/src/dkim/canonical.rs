//! DKIM canonicalization (RFC 6376 3.4): the forms of headers and body that
//! are hashed, in the simple and relaxed algorithms.
//!
//! The body is canonicalized as it arrives ([`BodyCanonicalizer`]), so a
//! body hash can be computed while a message is streamed.

use sha2::{Digest, Sha256};

/// A canonicalization algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canonicalization {
    /// Nothing changes but trailing empty lines of the body: any change in
    /// transit breaks the signature.
    Simple,
    /// Whitespace and header-name case may change in transit: the default.
    Relaxed,
}

impl Canonicalization {
    /// The name in the `c=` tag.
    pub fn name(self) -> &'static str {
        match self {
            Canonicalization::Simple => "simple",
            Canonicalization::Relaxed => "relaxed",
        }
    }
}

/// A header field in canonical form, CRLF included (RFC 6376 3.4.1, 3.4.2).
/// `field` is the whole field as it stands in the message: name, colon,
/// value and its folding, with or without the final CRLF.
pub fn header(canon: Canonicalization, field: &[u8]) -> Vec<u8> {
    let field = field.strip_suffix(b"\r\n").unwrap_or(field);
    match canon {
        Canonicalization::Simple => {
            let mut out = field.to_vec();
            out.extend_from_slice(b"\r\n");
            out
        }
        Canonicalization::Relaxed => {
            let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
            let (name, value) = field.split_at(colon);
            let value = value.get(1..).unwrap_or_default();
            let mut out = Vec::with_capacity(field.len() + 2);
            out.extend(trim_wsp(name).iter().map(u8::to_ascii_lowercase));
            out.push(b':');
            // Unfold, then turn every run of whitespace into one space.
            let mut pending_space = false;
            let mut started = false;
            for &b in value {
                match b {
                    b'\r' | b'\n' => {}
                    b' ' | b'\t' => pending_space = started,
                    _ => {
                        if pending_space {
                            out.push(b' ');
                        }
                        pending_space = false;
                        started = true;
                        out.push(b);
                    }
                }
            }
            out.extend_from_slice(b"\r\n");
            out
        }
    }
}

fn trim_wsp(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b" \t".contains(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b" \t".contains(b))
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// Canonicalizes a body as it arrives and hashes it with SHA-256
/// (RFC 6376 3.4.3, 3.4.4). Lines end in CRLF (the message is already in
/// its wire form); empty lines are held back until a non-empty line
/// follows, so trailing empty lines are dropped.
#[derive(Debug, Clone)]
pub struct BodyCanonicalizer {
    canon: Canonicalization,
    hash: Sha256,
    /// The current line, not ended yet.
    line: Vec<u8>,
    /// Empty lines seen and not yet written.
    empty_lines: usize,
    /// Whether anything but empty lines was written.
    any: bool,
}

impl BodyCanonicalizer {
    /// A canonicalizer at the start of the body.
    pub fn new(canon: Canonicalization) -> Self {
        BodyCanonicalizer {
            canon,
            hash: Sha256::new(),
            line: Vec::new(),
            empty_lines: 0,
            any: false,
        }
    }

    /// Feeds a piece of the body.
    pub fn update(&mut self, mut piece: &[u8]) {
        while let Some(end) = piece.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&piece[..end]);
            piece = &piece[end + 1..];
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            self.end_line();
        }
        self.line.extend_from_slice(piece);
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let line = match self.canon {
            Canonicalization::Simple => line,
            Canonicalization::Relaxed => relax_line(&line),
        };
        if line.is_empty() {
            self.empty_lines += 1;
        } else {
            for _ in 0..self.empty_lines {
                self.hash.update(b"\r\n");
            }
            self.empty_lines = 0;
            self.hash.update(&line);
            self.hash.update(b"\r\n");
            self.any = true;
        }
    }

    /// The hash of the canonical body.
    pub fn finish(mut self) -> [u8; 32] {
        if !self.line.is_empty() {
            self.end_line();
        }
        if !self.any && self.canon == Canonicalization::Simple {
            // An empty body is one CRLF in simple canonicalization.
            self.hash.update(b"\r\n");
        }
        self.hash.finalize().into()
    }
}

/// A line without its CRLF, relaxed: runs of whitespace become one space,
/// whitespace at the end goes.
fn relax_line(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut pending_space = false;
    for &b in line {
        if b == b' ' || b == b'\t' {
            pending_space = true;
        } else {
            if pending_space {
                out.push(b' ');
            }
            pending_space = false;
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_hash(canon: Canonicalization, body: &[u8]) -> [u8; 32] {
        let mut c = BodyCanonicalizer::new(canon);
        c.update(body);
        c.finish()
    }

    #[test]
    fn rfc_6376_example_3_4_5() {
        let header_a = header(Canonicalization::Relaxed, b"A: X\r\n");
        let header_b = header(Canonicalization::Relaxed, b"B : Y\t\r\n\tZ  \r\n");
        assert_eq!(header_a, b"a:X\r\n");
        assert_eq!(header_b, b"b:Y Z\r\n");
        let body = b" C \r\nD \t E\r\n\r\n\r\n";
        assert_eq!(
            body_hash(Canonicalization::Relaxed, body),
            <[u8; 32]>::from(Sha256::digest(b" C\r\nD E\r\n"))
        );
        assert_eq!(
            body_hash(Canonicalization::Simple, body),
            <[u8; 32]>::from(Sha256::digest(b" C \r\nD \t E\r\n"))
        );
        assert_eq!(
            header(Canonicalization::Simple, b"B : Y\t\r\n\tZ  "),
            b"B : Y\t\r\n\tZ  \r\n"
        );
        assert_eq!(
            header(Canonicalization::Relaxed, b"Subject:  a:  b "),
            b"subject:a: b\r\n"
        );
    }

    #[test]
    fn empty_bodies_and_pieces_of_every_size() {
        assert_eq!(
            body_hash(Canonicalization::Simple, b""),
            <[u8; 32]>::from(Sha256::digest(b"\r\n"))
        );
        assert_eq!(
            body_hash(Canonicalization::Relaxed, b"\r\n\r\n"),
            <[u8; 32]>::from(Sha256::digest(b""))
        );
        let body = b"a  b\t\r\n\r\n  c\r\n\r\nlast without end";
        for canon in [Canonicalization::Simple, Canonicalization::Relaxed] {
            let whole = body_hash(canon, body);
            for size in 1..body.len() {
                let mut c = BodyCanonicalizer::new(canon);
                for piece in body.chunks(size) {
                    c.update(piece);
                }
                assert_eq!(c.finish(), whole, "{canon:?}, pieces of {size}");
            }
        }
    }
}
