//! The reply parser fed arbitrary server bytes in arbitrary chunk sizes.
//!
//! Input: the first two bytes choose the chunk sizes, the rest is what the
//! server sent. Invariants:
//! - `feed` never panics;
//! - it never reports more bytes consumed than it was given, and it always
//!   makes progress: an `Ok` without a reply consumed everything (a partial
//!   line is buffered), so a driver that loops on `feed` cannot spin;
//! - a reply has a code in 200..=599, 1 to `MAX_LINES` lines, each line at
//!   most `MAX_LINE_LEN` characters, an enhanced code (if any) of the same
//!   class, and took at most `MAX_REPLY_LEN` bytes of input;
//! - the same bytes in one chunk and in many chunks give the same replies,
//!   then the same kind of error (or none) and the same partial state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_mailer_core::smtp::reply::{
    Reply, ReplyError, ReplyParser, MAX_LINES, MAX_LINE_LEN, MAX_REPLY_LEN,
};

/// What parsing a byte stream gave: the replies, then how it ended.
#[derive(Debug)]
struct Outcome {
    replies: Vec<Reply>,
    error: Option<ReplyError>,
    partial: bool,
}

fn check_reply(reply: &Reply, bytes: usize) {
    assert!(
        (200..=599).contains(&reply.code),
        "code {} out of range",
        reply.code
    );
    assert!(!reply.lines.is_empty(), "a reply without a line");
    assert!(
        reply.lines.len() <= MAX_LINES,
        "{} lines",
        reply.lines.len()
    );
    for line in &reply.lines {
        // Text is decoded lossily, so count characters, not bytes: one
        // input byte becomes at most one character.
        assert!(line.chars().count() <= MAX_LINE_LEN, "line too long");
        assert!(!line.contains('\n'), "a line holds LF: {line:?}");
    }
    if let Some(enhanced) = &reply.enhanced {
        let class = (reply.code / 100).to_string();
        assert!(
            enhanced.split('.').next() == Some(class.as_str()),
            "enhanced code {enhanced} of another class than {}",
            reply.code
        );
    }
    assert!(bytes <= MAX_REPLY_LEN, "a reply of {bytes} bytes");
}

/// Parses `input` delivered in pieces of the sizes `sizes` yields, as a
/// driver does: feed what is pending until no reply is complete, then
/// wait for more.
fn parse(input: &[u8], mut sizes: impl FnMut() -> usize) -> Outcome {
    let mut parser = ReplyParser::new();
    let mut replies = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut rest = input;
    // Bytes consumed since the last complete reply.
    let mut reply_bytes = 0usize;
    while !rest.is_empty() {
        let n = sizes().clamp(1, rest.len());
        pending.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let given = pending.len();
            match parser.feed(&pending) {
                Err(error) => {
                    return Outcome {
                        replies,
                        error: Some(error),
                        partial: parser.is_partial(),
                    }
                }
                Ok((used, reply)) => {
                    assert!(used <= given, "consumed {used} of {given} bytes");
                    pending.drain(..used);
                    reply_bytes += used;
                    match reply {
                        Some(reply) => {
                            assert!(used > 0, "a reply out of no bytes");
                            assert!(!parser.is_partial(), "partial right after a reply");
                            check_reply(&reply, reply_bytes);
                            reply_bytes = 0;
                            replies.push(reply);
                        }
                        None => {
                            assert_eq!(used, given, "an incomplete reply left bytes unconsumed");
                            break;
                        }
                    }
                }
            }
        }
    }
    assert!(pending.is_empty());
    Outcome {
        replies,
        error: None,
        partial: parser.is_partial(),
    }
}

fn same_kind(a: &Option<ReplyError>, b: &Option<ReplyError>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(ReplyError::Malformed(x)), Some(ReplyError::Malformed(y))) => x == y,
        // The text may differ: with a line both too long and past the
        // reply's bound, which bound trips first depends on where the
        // chunks end.
        (Some(ReplyError::TooLong(_)), Some(ReplyError::TooLong(_))) => true,
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (seed, input) = data.split_at(2);
    let whole = parse(input, || usize::MAX);

    // Chunk sizes from a small generator: mostly short, sometimes long
    // (up to a bit more than a line's bound).
    let mut state = u32::from(u16::from_le_bytes([seed[0], seed[1]])) | 1;
    let max = if seed[0] & 0x80 != 0 {
        MAX_LINE_LEN + 64
    } else {
        usize::from(seed[1] % 16) + 1
    };
    let chunked = parse(input, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state as usize) % max + 1
    });

    assert_eq!(whole.replies, chunked.replies, "replies differ by chunking");
    assert!(
        same_kind(&whole.error, &chunked.error),
        "errors differ by chunking: {:?} vs {:?}",
        whole.error,
        chunked.error
    );
    if whole.error.is_none() {
        assert_eq!(whole.partial, chunked.partial);
    }
});
