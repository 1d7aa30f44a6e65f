//! Streamed contents: the pieces of a message read from wasi:io input
//! streams while it is sent, so that a large file is never held whole.
//!
//! [`StreamedMessage`] fills the gaps a build left for streamed attachments
//! with their base64; [`RawStream`] passes a raw message through. Both hand
//! out pieces of about [`PIECE`] bytes, and check each stream's length
//! against the size it was declared with.

use smtp_mailer_core::message::base64_lines::Base64Lines;
use smtp_mailer_core::message::{Built, StreamSlot};
use smtp_mailer_core::smtp::content::header_section_len;
use smtp_mailer_core::smtp::ContentInfo;

use crate::error;
use crate::smtp_mailer_mailer_types as wit;
use crate::wasi::io::streams::{InputStream, StreamError};

/// The size of the pieces handed to the driver: large enough that writes
/// are few, small enough that memory stays flat.
pub const PIECE: usize = 256 * 1024;

/// The most of a raw message read before sending, to find the end of its
/// header section.
const HEAD_LIMIT: usize = 1024 * 1024;

/// A source of content pieces for the driver.
pub trait ContentSource {
    /// The next piece, or `None` at the end.
    fn next_piece(&mut self) -> Result<Option<&[u8]>, wit::Error>;
}

/// A stream and what is known of it.
pub struct Input {
    /// The stream.
    pub body: InputStream,
    /// Its declared length.
    pub size: Option<u64>,
    /// The field to name in errors, such as `attachments[2].content`.
    pub field: String,
    /// The same bytes once more, for the DKIM body hash.
    pub first_pass: Option<InputStream>,
}

impl Input {
    /// Reads up to `want` bytes into `out`; fewer only at the end of the
    /// stream. Returns the number of bytes read.
    fn read(&self, want: usize, out: &mut Vec<u8>) -> Result<usize, wit::Error> {
        let start = out.len();
        while out.len() - start < want {
            let left = (want - (out.len() - start)) as u64;
            match self.body.blocking_read(left) {
                Ok(bytes) => out.extend_from_slice(&bytes),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(error::invalid(
                        &self.field,
                        &format!("reading the stream failed: {}", e.to_debug_string()),
                    ))
                }
            }
        }
        Ok(out.len() - start)
    }

    /// Fails when `read` bytes break the declared size: more than it, or
    /// fewer once the stream ended.
    fn check_size(&self, read: u64, ended: bool) -> Result<(), wit::Error> {
        match self.size {
            Some(size) if read > size || (ended && read != size) => Err(error::invalid(
                &self.field,
                &format!(
                    "the stream gave {}{read} bytes, but its size was declared as {size}; \
                     the send was aborted before the end of the message",
                    if ended { "" } else { "at least " }
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Reads the whole stream: for building without sending.
    pub fn read_all(&self) -> Result<Vec<u8>, wit::Error> {
        let mut out = Vec::new();
        while self.read(PIECE, &mut out)? == PIECE {}
        self.check_size(out.len() as u64, true)?;
        Ok(out)
    }
}

/// A built message whose streamed attachments are read while it is sent.
pub struct StreamedMessage {
    bytes: Vec<u8>,
    slots: Vec<(StreamSlot, Input)>,
    /// How far `bytes` was handed out.
    at: usize,
    /// The slot being read, and its encoder.
    current: usize,
    encoder: Base64Lines,
    piece: Vec<u8>,
}

impl StreamedMessage {
    /// The message `built`, with `inputs` holding the stream of each slot's
    /// attachment (by attachment index).
    pub fn new(built: Built, inputs: &mut [Option<Input>]) -> Result<Self, wit::Error> {
        let mut slots = Vec::with_capacity(built.streams.len());
        for slot in &built.streams {
            let input = inputs
                .get_mut(slot.attachment)
                .and_then(Option::take)
                .ok_or_else(|| {
                    error::invalid("attachments", "a streamed attachment has no stream")
                })?;
            slots.push((*slot, input));
        }
        Ok(StreamedMessage {
            bytes: built.bytes,
            slots,
            at: 0,
            current: 0,
            encoder: Base64Lines::new(),
            piece: Vec::with_capacity(PIECE + PIECE / 8),
        })
    }

    /// Appends base64 of the current slot's stream, up to about `room`
    /// bytes; moves to the next slot at the end of the stream.
    fn read_slot(&mut self, room: usize) -> Result<(), wit::Error> {
        let (_, input) = &self.slots[self.current];
        // 3 input bytes make 4 characters, plus CRLF every 76.
        let want = (room / 4 * 3).max(57);
        let mut data = Vec::with_capacity(want);
        let read = input.read(want, &mut data)?;
        self.encoder.push(&data, &mut self.piece);
        let ended = read < want;
        input.check_size(self.encoder.consumed(), ended)?;
        if ended {
            std::mem::take(&mut self.encoder).finish(&mut self.piece);
            self.current += 1;
        }
        Ok(())
    }
}

impl ContentSource for StreamedMessage {
    fn next_piece(&mut self) -> Result<Option<&[u8]>, wit::Error> {
        self.piece.clear();
        while self.piece.len() < PIECE {
            let next_gap = self.slots.get(self.current).map(|(slot, _)| slot.offset);
            let until = next_gap.unwrap_or(self.bytes.len());
            if self.at < until {
                self.piece.extend_from_slice(&self.bytes[self.at..until]);
                self.at = until;
            } else if next_gap.is_some() {
                let room = PIECE - self.piece.len();
                self.read_slot(room)?;
            } else {
                break;
            }
        }
        Ok((!self.piece.is_empty()).then_some(&self.piece[..]))
    }
}

/// A raw message read from a stream.
pub struct RawStream {
    input: Input,
    /// The first bytes, read ahead to find the header section.
    head: Option<Vec<u8>>,
    read: u64,
    ended: bool,
    piece: Vec<u8>,
}

impl RawStream {
    /// Reads the header section (up to 1 MiB) ahead, and tells what MAIL
    /// FROM must declare.
    pub fn open(input: Input) -> Result<(RawStream, ContentInfo), wit::Error> {
        let mut head = Vec::new();
        let mut ended = false;
        while header_section_len(&head).is_none() && head.len() < HEAD_LIMIT {
            if input.read(64 * 1024, &mut head)? < 64 * 1024 {
                ended = true;
                break;
            }
        }
        let read = head.len() as u64;
        input.check_size(read, ended)?;
        let info = ContentInfo::of_head(&head, input.size);
        Ok((
            RawStream {
                input,
                head: Some(head),
                read,
                ended,
                piece: Vec::with_capacity(PIECE),
            },
            info,
        ))
    }
}

impl ContentSource for RawStream {
    fn next_piece(&mut self) -> Result<Option<&[u8]>, wit::Error> {
        if let Some(head) = self.head.take() {
            self.piece = head;
            if !self.piece.is_empty() {
                return Ok(Some(&self.piece[..]));
            }
        }
        if self.ended {
            return Ok(None);
        }
        self.piece.clear();
        let read = self.input.read(PIECE, &mut self.piece)?;
        self.read += read as u64;
        self.ended = read < PIECE;
        self.input.check_size(self.read, self.ended)?;
        Ok((!self.piece.is_empty()).then_some(&self.piece[..]))
    }
}
