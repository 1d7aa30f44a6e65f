//! Building messages, checked with an independent parser (mail-parser).

use mail_parser::{MessageParser, MimeHeaders};
use smtp_mailer_core::message::{Attachment, BuildContext, Header, Mailbox, Message};
use smtp_mailer_core::Error;

fn context() -> BuildContext {
    BuildContext {
        now: 1_700_000_000,
        unique: "abc123".into(),
    }
}

fn base() -> Message {
    Message {
        from: Mailbox::named("Sender", "sender@example.org"),
        to: vec![Mailbox::new("to@example.net")],
        subject: "Hello".into(),
        text: Some("Plain text\n.with a dot line\n".into()),
        ..Message::default()
    }
}

fn field_of(err: Error) -> String {
    match err {
        Error::InvalidInput { field, .. } => field,
        other => panic!("not invalid input: {other:?}"),
    }
}

#[test]
fn text_html_attachments_and_inline_image() {
    let png = vec![0x89, b'P', b'N', b'G', 0, 1, 2, 255];
    let message = Message {
        html: Some("<p>Hi <img src=\"cid:logo@x\"></p>".into()),
        cc: vec![Mailbox::named("Zoë Ünïcode", "cc@example.net")],
        bcc: vec![Mailbox::new("hidden@example.net")],
        reply_to: vec![Mailbox::new("reply@example.org")],
        subject: "Grüße aus Köln – ünïcødé subject".into(),
        attachments: vec![
            Attachment {
                filename: "Jahresübersicht 2024.pdf".into(),
                content_type: "application/pdf".into(),
                content: b"%PDF-1.4 binary \x00\x01\xff".to_vec().into(),
                content_id: None,
            },
            Attachment {
                filename: "logo.png".into(),
                content_type: "image/png".into(),
                content: png.clone().into(),
                content_id: Some("logo@x".into()),
            },
        ],
        headers: vec![Header {
            name: "X-Campaign".into(),
            value: "Spring – sale".into(),
        }],
        ..base()
    };
    let built = message.build(&context()).unwrap();
    assert_eq!(built.message_id, "abc123@example.org");
    let forward: Vec<_> = built
        .envelope
        .forward_paths()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(
        forward,
        ["to@example.net", "cc@example.net", "hidden@example.net"]
    );
    let raw = String::from_utf8_lossy(&built.bytes);
    assert!(
        !raw.to_ascii_lowercase().contains("bcc"),
        "no Bcc header: {raw}"
    );
    assert!(!raw.contains("hidden@example.net"));
    assert!(built.bytes.is_ascii(), "headers are encoded");

    let parsed = MessageParser::default()
        .default_header_text()
        .parse(&built.bytes)
        .unwrap();
    assert_eq!(parsed.subject(), Some("Grüße aus Köln – ünïcødé subject"));
    assert_eq!(parsed.message_id(), Some("abc123@example.org"));
    assert_eq!(
        parsed.cc().unwrap().first().unwrap().name(),
        Some("Zoë Ünïcode")
    );
    assert_eq!(
        parsed.reply_to().unwrap().first().unwrap().address(),
        Some("reply@example.org")
    );
    // RFC 2047, "Spring – sale" in UTF-8.
    assert!(
        raw.contains("X-Campaign: =?utf-8?B?U3ByaW5nIOKAkyBzYWxl?="),
        "{raw}"
    );
    assert_eq!(parsed.date().unwrap().to_timestamp(), 1_700_000_000);
    assert_eq!(
        parsed.body_text(0).unwrap().replace("\r\n", "\n"),
        "Plain text\n.with a dot line\n"
    );
    assert!(parsed.body_html(0).unwrap().contains("cid:logo@x"));

    // mixed(alternative(text, related(html, png)), pdf)
    assert_eq!(parsed.content_type().unwrap().subtype(), Some("mixed"));
    let pdf = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some("Jahresübersicht 2024.pdf"))
        .unwrap();
    assert_eq!(pdf.contents(), b"%PDF-1.4 binary \x00\x01\xff");
    assert_eq!(pdf.content_type().unwrap().ctype(), "application");
    let logo = parsed
        .attachments()
        .find(|a| a.content_id() == Some("logo@x"))
        .unwrap();
    assert_eq!(logo.contents(), png.as_slice());
    let raw_lower = raw.to_ascii_lowercase();
    assert!(raw_lower.contains("multipart/related"), "{raw}");
    assert!(raw_lower.contains("multipart/alternative"));
    let related = raw_lower.find("multipart/related").unwrap();
    let alternative = raw_lower.find("multipart/alternative").unwrap();
    assert!(alternative < related, "related sits inside alternative");
}

#[test]
fn crlf_everywhere_and_given_ids_kept() {
    let message = Message {
        message_id: Some("given.1@example.org".into()),
        date: Some(86_400),
        text: Some("a\nb\rc\r\n".into()),
        ..base()
    };
    let built = message.build(&context()).unwrap();
    assert_eq!(built.message_id, "given.1@example.org");
    for (i, &b) in built.bytes.iter().enumerate() {
        if b == b'\n' {
            assert_eq!(built.bytes[i - 1], b'\r');
        }
        if b == b'\r' {
            assert_eq!(built.bytes[i + 1], b'\n');
        }
    }
    let parsed = MessageParser::default().parse(&built.bytes).unwrap();
    assert_eq!(parsed.date().unwrap().to_timestamp(), 86_400);
}

#[test]
fn injection_through_any_field_is_refused() {
    let cases: Vec<(Message, &str)> = vec![
        (
            Message {
                subject: "hi\r\nBcc: x@y.example".into(),
                ..base()
            },
            "subject",
        ),
        (
            Message {
                subject: "nul\0".into(),
                ..base()
            },
            "subject",
        ),
        (
            Message {
                from: Mailbox::named("Eve\nX-Evil: 1", "e@x.example"),
                ..base()
            },
            "from.name",
        ),
        (
            Message {
                to: vec![Mailbox::new("a@x.example>\r\nRCPT TO:<b@y.example")],
                ..base()
            },
            "to[0].address",
        ),
        (
            Message {
                cc: vec![Mailbox::new("ok@x.example"), Mailbox::new("bad")],
                ..base()
            },
            "cc[1].address",
        ),
        (
            Message {
                bcc: vec![Mailbox::new("a(comment)@x.example")],
                ..base()
            },
            "bcc[0].address",
        ),
        (
            Message {
                headers: vec![Header {
                    name: "X-A".into(),
                    value: "v\r\nBcc: x@y".into(),
                }],
                ..base()
            },
            "headers[0].value",
        ),
        (
            Message {
                headers: vec![Header {
                    name: "X A".into(),
                    value: "v".into(),
                }],
                ..base()
            },
            "headers[0].name",
        ),
        (
            Message {
                headers: vec![Header {
                    name: "X-A:".into(),
                    value: "v".into(),
                }],
                ..base()
            },
            "headers[0].name",
        ),
        (
            Message {
                headers: vec![Header {
                    name: "BCC".into(),
                    value: "v@x".into(),
                }],
                ..base()
            },
            "headers[0].name",
        ),
        (
            Message {
                message_id: Some("<x@y>".into()),
                ..base()
            },
            "message-id",
        ),
        (
            Message {
                message_id: Some("x@y\r\nBcc: z".into()),
                ..base()
            },
            "message-id",
        ),
        (
            Message {
                message_id: Some("no-at".into()),
                ..base()
            },
            "message-id",
        ),
        (
            Message {
                attachments: vec![Attachment {
                    filename: "a\r\n.txt".into(),
                    content_type: "text/plain".into(),
                    ..Attachment::default()
                }],
                ..base()
            },
            "attachments[0].filename",
        ),
        (
            Message {
                attachments: vec![Attachment {
                    filename: "a.txt".into(),
                    content_type: "text/plain\r\nX: y".into(),
                    ..Attachment::default()
                }],
                ..base()
            },
            "attachments[0].content-type",
        ),
        (
            Message {
                to: vec![],
                ..base()
            },
            "to",
        ),
        (
            Message {
                subject: "=?utf-8?q?Bcc:_x@y?=".into(),
                ..base()
            },
            "subject",
        ),
        (
            Message {
                from: Mailbox::named("=?utf-8?b?RXZl?=", "e@x.example"),
                ..base()
            },
            "from.name",
        ),
    ];
    for (message, field) in cases {
        assert_eq!(field_of(message.build(&context()).unwrap_err()), field);
    }
}

#[test]
fn bodies_and_parts_alone() {
    let html_only = Message {
        text: None,
        html: Some("<b>x</b>".into()),
        ..base()
    };
    let parsed_bytes = html_only.build(&context()).unwrap().bytes;
    let parsed = MessageParser::default().parse(&parsed_bytes).unwrap();
    assert_eq!(parsed.content_type().unwrap().subtype(), Some("html"));

    let empty = Message {
        text: None,
        ..base()
    }
    .build(&context())
    .unwrap();
    let parsed = MessageParser::default().parse(&empty.bytes).unwrap();
    assert_eq!(parsed.content_type().unwrap().subtype(), Some("plain"));

    // An inline part without an HTML body is an ordinary attachment.
    let inline_no_html = Message {
        attachments: vec![Attachment {
            filename: "i.png".into(),
            content_type: "image/png".into(),
            content: vec![1, 2, 3].into(),
            content_id: Some("i@x".into()),
        }],
        ..base()
    }
    .build(&context())
    .unwrap();
    assert!(!String::from_utf8_lossy(&inline_no_html.bytes).contains("multipart/related"));
}

#[test]
fn non_ascii_addresses_are_kept_for_smtputf8() {
    let built = Message {
        to: vec![Mailbox::new("josé@exämple.org")],
        ..base()
    }
    .build(&context())
    .unwrap();
    assert!(built.envelope.needs_smtputf8());
}

#[test]
fn attachments_keep_every_byte_whatever_their_type() {
    // Found by fuzzing: a text/* attachment with NUL or a bare CR was sent
    // raw as 7bit, losing or altering bytes.
    let content = b"]\0 line\rbare CR\nbare LF\r\n\x01\x7f end".to_vec();
    for content_type in ["text/plain", "text/csv", "application/octet-stream"] {
        let built = Message {
            attachments: vec![Attachment {
                filename: "a.txt".into(),
                content_type: content_type.into(),
                content: content.clone().into(),
                content_id: None,
            }],
            ..base()
        }
        .build(&context())
        .unwrap();
        assert!(!built.bytes.contains(&0), "{content_type}: NUL on the wire");
        let parsed = MessageParser::default().parse(&built.bytes).unwrap();
        let attachment = parsed.attachments().next().unwrap();
        assert_eq!(attachment.contents(), content.as_slice(), "{content_type}");
    }
}
