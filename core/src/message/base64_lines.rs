//! Base64 in lines of 76 characters, each ending in CRLF (RFC 2045 6.8),
//! written as the input arrives: a streamed attachment is encoded without
//! ever being held whole.

use base64::Engine as _;

/// The input bytes of one full line: 57 bytes make 76 characters.
const LINE_INPUT: usize = 57;

/// The lines encoded in one call.
const BLOCK_LINES: usize = 64;

/// A streaming base64 encoder. Feed it with [`push`](Base64Lines::push) in
/// pieces of any size, then [`finish`](Base64Lines::finish); the output is
/// the same as encoding the whole input at once.
#[derive(Debug, Clone, Default)]
pub struct Base64Lines {
    /// Input of a line not complete yet (fewer than 57 bytes).
    pending: Vec<u8>,
    /// The number of input bytes seen.
    consumed: u64,
}

impl Base64Lines {
    /// An encoder at the start of its input.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many input bytes were pushed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Appends the lines that `input` completes to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        self.consumed += input.len() as u64;
        if !self.pending.is_empty() {
            let take = (LINE_INPUT - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() < LINE_INPUT {
                return;
            }
            let line = std::mem::take(&mut self.pending);
            write_line(&line, out);
        }
        let whole = input.len() - input.len() % LINE_INPUT;
        out.reserve(whole / LINE_INPUT * 78);
        // Blocks of many lines are encoded in one call, then cut into
        // lines: one call per line costs more than the encoding itself.
        let mut encoded = [0u8; BLOCK_LINES * 76];
        for block in input[..whole].chunks(BLOCK_LINES * LINE_INPUT) {
            let len = block.len() / LINE_INPUT * 76;
            // `encoded` holds a whole block's encoding, so this cannot fail.
            let _ =
                base64::engine::general_purpose::STANDARD.encode_slice(block, &mut encoded[..len]);
            for line in encoded[..len].chunks(76) {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.pending.extend_from_slice(&input[whole..]);
    }

    /// Appends the last, shorter line, if any.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            write_line(&self.pending, out);
        }
    }
}

fn write_line(input: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + input.len().div_ceil(3) * 4, 0);
    // The slice is exactly the encoded length, so encoding cannot fail.
    let _ = base64::engine::general_purpose::STANDARD.encode_slice(input, &mut out[start..]);
    out.extend_from_slice(b"\r\n");
}

/// The encoded length of `n` input bytes, line endings included.
pub fn encoded_len(n: u64) -> u64 {
    let chars = n.div_ceil(3) * 4;
    chars + chars.div_ceil(76) * 2
}

/// Encodes a whole input.
pub fn encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(input.len() as u64) as usize);
    let mut encoder = Base64Lines::new();
    encoder.push(input, &mut out);
    encoder.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(input: &[u8]) -> Vec<u8> {
        let text = base64::engine::general_purpose::STANDARD.encode(input);
        let mut out = Vec::new();
        for line in text.as_bytes().chunks(76) {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn inputs_of_several_blocks() {
        let input: Vec<u8> = (0..57 * 64 * 3 + 11).map(|i: u32| (i * 13) as u8).collect();
        for piece in [1, 56, 57, 1000, 57 * 64, 57 * 64 + 1, input.len()] {
            let mut encoder = Base64Lines::new();
            let mut out = Vec::new();
            for chunk in input.chunks(piece) {
                encoder.push(chunk, &mut out);
            }
            encoder.finish(&mut out);
            assert_eq!(out, reference(&input), "pieces of {piece}");
        }
    }

    #[test]
    fn pieces_of_every_size_give_the_whole_encoding() {
        let input: Vec<u8> = (0..400u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for len in [0, 1, 2, 3, 56, 57, 58, 113, 114, 115, 400] {
            let whole = reference(&input[..len]);
            assert_eq!(encode(&input[..len]), whole, "length {len}");
            assert_eq!(encoded_len(len as u64), whole.len() as u64, "length {len}");
            for piece in 1..=60 {
                let mut encoder = Base64Lines::new();
                let mut out = Vec::new();
                for chunk in input[..len].chunks(piece) {
                    encoder.push(chunk, &mut out);
                }
                assert_eq!(encoder.consumed(), len as u64);
                encoder.finish(&mut out);
                assert_eq!(out, whole, "length {len}, pieces of {piece}");
            }
        }
    }
}
