//! Message building from arbitrary structured input.
//!
//! The input is decoded with `arbitrary` into every field of a `Message`
//! (addresses either free text or assembled from parts, so that the fuzzer
//! reaches the builder and not only the checks). Invariants when
//! `Message::build` succeeds:
//! - nothing panics (build errors are fine: they are typed);
//! - CRLF line endings only: no bare CR or LF; no NUL anywhere;
//! - a header section, ended by an empty line, where every line is a field
//!   (`Name:` with a printable-ASCII name) or a folded continuation: no
//!   input can start a header of its own;
//! - the header names are those the builder writes plus the custom ones
//!   given, never `Bcc`; From, Subject, Date, Message-ID and MIME-Version
//!   appear once;
//! - the header section is ASCII unless an address in a header (From, To,
//!   Cc, Reply-To) is not: display names, subject, custom values and
//!   filenames are encoded;
//! - the envelope is From's address to To, Cc and Bcc, each once, in
//!   order; the Message-ID is the one given or `<unique>@<From's domain>`.
//!
//! This target found that a `text/*` attachment holding NUL was written
//! raw as `7bit`; the core now writes every attachment in base64.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smtp_mailer_core::message::{Attachment, BuildContext, Header, Mailbox, Message};

/// Addresses that parse, of every shape.
const KNOWN: [&str; 8] = [
    "user@example.org",
    "first.last+tag@sub.example.co.uk",
    "\"john doe\"@example.org",
    "\"a@b\\\"c\"@example.org",
    "user@[127.0.0.1]",
    "user@[IPv6:2001:db8::1]",
    "jos\u{e9}@ex\u{e4}mple.org",
    "o'brien@example.org",
];

#[derive(Debug, Arbitrary)]
enum FuzzAddress {
    Known(u8),
    Parts { local: String, domain: String },
    Raw(String),
}

impl FuzzAddress {
    fn render(self) -> String {
        match self {
            FuzzAddress::Known(i) => KNOWN[usize::from(i) % KNOWN.len()].to_string(),
            FuzzAddress::Parts { local, domain } => format!("{local}@{domain}"),
            FuzzAddress::Raw(s) => s,
        }
    }
}

#[derive(Debug, Arbitrary)]
struct FuzzMailbox {
    name: Option<String>,
    address: FuzzAddress,
}

impl FuzzMailbox {
    fn into_mailbox(self) -> Mailbox {
        Mailbox {
            name: self.name,
            address: self.address.render(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum ContentType {
    Known(u8),
    Raw(String),
}

#[derive(Debug, Arbitrary)]
struct FuzzAttachment {
    filename: String,
    content_type: ContentType,
    content: Vec<u8>,
    content_id: Option<String>,
}

#[derive(Debug, Arbitrary)]
enum HeaderName {
    Known(u8),
    Raw(String),
}

#[derive(Debug, Arbitrary)]
struct FuzzHeader {
    name: HeaderName,
    value: String,
}

#[derive(Debug, Arbitrary)]
struct FuzzMessage {
    from: FuzzMailbox,
    reply_to: Vec<FuzzMailbox>,
    to: Vec<FuzzMailbox>,
    cc: Vec<FuzzMailbox>,
    bcc: Vec<FuzzMailbox>,
    subject: String,
    text: Option<String>,
    html: Option<String>,
    attachments: Vec<FuzzAttachment>,
    headers: Vec<FuzzHeader>,
    message_id: Option<String>,
    date: Option<i64>,
    now: i64,
}

const TYPES: [&str; 4] = [
    "application/pdf",
    "image/png",
    "text/plain",
    "message/rfc822",
];
const HEADER_NAMES: [&str; 5] = [
    "X-Campaign",
    "List-Unsubscribe",
    "Bcc",
    "X-Mailer",
    "Subject",
];

/// The header names the builder writes itself (lower case).
const BUILDER_HEADERS: [&str; 12] = [
    "from",
    "to",
    "cc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
];

fn header_section(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no empty line ends the header section");
    &bytes[..end + 2]
}

/// `FUZZ_TRACE=1` prints a summary of each input's build (for choosing
/// seeds and reading crashes).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

fuzz_target!(|input: FuzzMessage| {
    let message = Message {
        from: input.from.into_mailbox(),
        reply_to: input
            .reply_to
            .into_iter()
            .map(FuzzMailbox::into_mailbox)
            .collect(),
        to: input
            .to
            .into_iter()
            .map(FuzzMailbox::into_mailbox)
            .collect(),
        cc: input
            .cc
            .into_iter()
            .map(FuzzMailbox::into_mailbox)
            .collect(),
        bcc: input
            .bcc
            .into_iter()
            .map(FuzzMailbox::into_mailbox)
            .collect(),
        subject: input.subject,
        text: input.text,
        html: input.html,
        attachments: input
            .attachments
            .into_iter()
            .map(|a| Attachment {
                filename: a.filename,
                content_type: match a.content_type {
                    ContentType::Known(i) => TYPES[usize::from(i) % TYPES.len()].to_string(),
                    ContentType::Raw(s) => s,
                },
                content: a.content.into(),
                content_id: a.content_id,
            })
            .collect(),
        headers: input
            .headers
            .into_iter()
            .map(|h| Header {
                name: match h.name {
                    HeaderName::Known(i) => {
                        HEADER_NAMES[usize::from(i) % HEADER_NAMES.len()].to_string()
                    }
                    HeaderName::Raw(s) => s,
                },
                value: h.value,
            })
            .collect(),
        message_id: input.message_id,
        date: input.date,
    };
    let context = BuildContext {
        now: input.now,
        unique: "fuzz0unique1".into(),
    };
    let result = message.clone().build(&context);
    if trace() {
        eprintln!(
            "build: {} | to {} cc {} bcc {} reply-to {} | text {} html {} | attachments {} (inline {}) | headers {} | id {} date {}",
            match &result {
                Ok(b) => format!("ok, {} bytes", b.bytes.len()),
                Err(e) => format!("error: {e}"),
            },
            message.to.len(),
            message.cc.len(),
            message.bcc.len(),
            message.reply_to.len(),
            message.text.is_some(),
            message.html.is_some(),
            message.attachments.len(),
            message.attachments.iter().filter(|a| a.content_id.is_some()).count(),
            message.headers.len(),
            message.message_id.is_some(),
            message.date.is_some(),
        );
    }
    let Ok(built) = result else {
        return;
    };
    let bytes = &built.bytes;

    // Line endings and NUL.
    for (i, &b) in bytes.iter().enumerate() {
        assert_ne!(b, 0, "NUL at {i}");
        if b == b'\n' {
            assert!(i > 0 && bytes[i - 1] == b'\r', "bare LF at {i}");
        }
        if b == b'\r' {
            assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
    }

    // The header section: fields and continuations only.
    let head = header_section(bytes);
    let custom: Vec<String> = message
        .headers
        .iter()
        .map(|h| h.name.to_ascii_lowercase())
        .collect();
    let mut names: Vec<String> = Vec::new();
    for (n, line) in head.split(|&b| b == b'\n').enumerate() {
        let Some(line) = line.strip_suffix(b"\r") else {
            assert!(line.is_empty(), "a header line without CRLF");
            continue;
        };
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            assert!(n > 0, "the header section starts with a continuation");
            continue;
        }
        let colon = line.iter().position(|&b| b == b':').unwrap_or_else(|| {
            panic!(
                "a header line without a name: {:?}",
                String::from_utf8_lossy(line)
            )
        });
        let name = &line[..colon];
        assert!(
            !name.is_empty() && name.iter().all(|b| b.is_ascii_graphic()),
            "a bad header name: {:?}",
            String::from_utf8_lossy(line)
        );
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        assert_ne!(name, "bcc", "a Bcc header");
        assert!(
            BUILDER_HEADERS.contains(&name.as_str()) || custom.contains(&name),
            "a header nobody asked for: {name}"
        );
        names.push(name);
    }
    for once in ["from", "subject", "date", "message-id", "mime-version"] {
        assert_eq!(
            names.iter().filter(|n| n.as_str() == once).count(),
            1,
            "{once} not exactly once in {names:?}"
        );
    }

    // ASCII headers unless an address in them is not ASCII.
    let header_addresses_ascii = std::iter::once(&message.from)
        .chain(&message.to)
        .chain(&message.cc)
        .chain(&message.reply_to)
        .all(|m| m.address.is_ascii());
    if header_addresses_ascii {
        assert!(
            head.is_ascii(),
            "a non-ASCII header: {}",
            String::from_utf8_lossy(head)
        );
    }

    // The envelope and the Message-ID.
    assert_eq!(
        built.envelope.reverse_path().map(|a| a.as_str()),
        Some(message.from.address.as_str())
    );
    let mut forward: Vec<&str> = Vec::new();
    for m in message.to.iter().chain(&message.cc).chain(&message.bcc) {
        if !forward.contains(&m.address.as_str()) {
            forward.push(&m.address);
        }
    }
    let got: Vec<&str> = built
        .envelope
        .forward_paths()
        .iter()
        .map(|a| a.as_str())
        .collect();
    assert_eq!(got, forward);
    match &message.message_id {
        Some(id) => assert_eq!(&built.message_id, id),
        None => assert!(built.message_id.starts_with("fuzz0unique1@")),
    }
});
