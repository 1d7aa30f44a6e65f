//! End to end: the real component, run by the real host, against Exim.

use std::time::Duration;

use mail_parser::MimeHeaders;
use smtp_mailer_host::ErrorKind;
use smtp_mailer_host::{Attachment, Mailbox, Message};
use smtp_mailer_tests::servers::{Exim, EximOptions};
use smtp_mailer_tests::support::{assert_no_bcc, loopback, mailer, message, parse};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn exim_plain_text_with_bcc() {
    let server = Exim::start();
    let msg = Message {
        bcc: vec![Mailbox::new("hidden@example.test")],
        ..message(&["bob@example.test"])
    };
    let report = mailer().send(&loopback(server.port()), &msg).unwrap();
    assert!(report.all_accepted());
    let got = &server.wait_for(1, WAIT)[0];
    assert_eq!(got.mail_from, "sender@example.test");
    let mut rcpts = got.rcpt_to.clone();
    rcpts.sort();
    assert_eq!(rcpts, ["bob@example.test", "hidden@example.test"]);
    assert_no_bcc(&got.data, &["hidden@example.test"]);
    let parsed = parse(&got.data);
    assert_eq!(parsed.subject(), Some("Test message"));
    assert_eq!(parsed.message_id(), report.message_id.as_deref());
}

#[test]
fn exim_html_attachment_and_non_ascii() {
    let server = Exim::start();
    let content: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let msg = Message {
        from: Mailbox::named("Zoë", "sender@example.test"),
        subject: "Grüße — ünïcode".into(),
        html: Some("<p>hi</p>".into()),
        attachments: vec![Attachment {
            filename: "bericht-ä.bin".into(),
            content_type: "application/octet-stream".into(),
            content: content.clone().into(),
            content_id: None,
        }],
        ..message(&["bob@example.test"])
    };
    mailer().send(&loopback(server.port()), &msg).unwrap();
    let got = &server.wait_for(1, WAIT)[0];
    let parsed = parse(&got.data);
    assert_eq!(parsed.subject(), Some("Grüße — ünïcode"));
    assert_eq!(parsed.from().unwrap().first().unwrap().name(), Some("Zoë"));
    assert_eq!(parsed.body_html(0).unwrap().trim_end(), "<p>hi</p>");
    let attachment = parsed.attachments().next().unwrap();
    assert_eq!(attachment.attachment_name(), Some("bericht-ä.bin"));
    assert_eq!(attachment.contents(), content.as_slice());
}

#[test]
fn exim_refused_recipient_and_size_limit() {
    let server = Exim::start_with(EximOptions {
        size_limit: Some(4_000),
        ..EximOptions::default()
    });
    let report = mailer()
        .send(
            &loopback(server.port()),
            &message(&["refuse-x@example.test", "bob@example.test"]),
        )
        .unwrap();
    let refused: Vec<_> = report
        .recipients
        .iter()
        .filter(|r| !r.accepted)
        .map(|r| r.reply.code)
        .collect();
    assert_eq!(refused, [550]);
    let got = &server.wait_for(1, WAIT)[0];
    assert_eq!(got.rcpt_to, ["bob@example.test"]);

    let big = Message {
        text: Some("y".repeat(10_000)),
        ..message(&["bob@example.test"])
    };
    let err = mailer().send(&loopback(server.port()), &big).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unsupported(_)), "{err:?}");
}

#[test]
fn exim_session_of_twenty() {
    let server = Exim::start();
    let mut session = mailer().open_session(&loopback(server.port())).unwrap();
    for i in 0..20 {
        let msg = Message {
            subject: format!("n{i}"),
            ..message(&["bob@example.test"])
        };
        session.send(&msg).unwrap();
    }
    session.close().unwrap();
    assert_eq!(server.wait_for(20, WAIT).len(), 20);
}
