//! End to end: the real component, run by the real host, against aiosmtpd.

use std::time::{Duration, Instant};

use mail_parser::{MimeHeaders, PartType};
use smtp_mailer_host::{Attachment, Envelope, ErrorKind, Header, Mailbox, Message, Stage};
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions};
use smtp_mailer_tests::support::{assert_no_bcc, loopback, mailer, message, parse};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn plain_text_with_cc_and_bcc() {
    let server = Aiosmtpd::start();
    let msg = Message {
        cc: vec![Mailbox::named("Carol", "carol@example.test")],
        bcc: vec![Mailbox::new("hidden@example.test")],
        reply_to: vec![Mailbox::new("replies@example.test")],
        headers: vec![Header {
            name: "X-Campaign".into(),
            value: "spring".into(),
        }],
        ..message(&["bob@example.test"])
    };
    let report = mailer().send(&loopback(server.port()), &msg).unwrap();
    assert!(report.all_accepted());
    assert_eq!(report.recipients.len(), 3);
    assert_eq!(report.final_reply.code, 250);

    let received = server.wait_for(1, WAIT);
    let got = &received[0];
    assert_eq!(got.mail_from, "sender@example.test");
    assert_eq!(
        got.rcpt_to,
        [
            "bob@example.test",
            "carol@example.test",
            "hidden@example.test"
        ]
    );
    assert_no_bcc(&got.data, &["hidden@example.test"]);
    let parsed = parse(&got.data);
    assert_eq!(parsed.subject(), Some("Test message"));
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some("sender@example.test")
    );
    assert_eq!(
        parsed.from().unwrap().first().unwrap().name(),
        Some("Sender")
    );
    assert_eq!(
        parsed.to().unwrap().first().unwrap().address(),
        Some("bob@example.test")
    );
    assert_eq!(parsed.cc().unwrap().first().unwrap().name(), Some("Carol"));
    assert_eq!(
        parsed.reply_to().unwrap().first().unwrap().address(),
        Some("replies@example.test")
    );
    assert_eq!(
        parsed.header("X-Campaign").and_then(|h| h.as_text()),
        Some("spring")
    );
    assert_eq!(parsed.message_id(), report.message_id.as_deref());
    assert!(parsed.date().is_some());
    assert_eq!(
        parsed.body_text(0).unwrap().trim_end(),
        "Hello from the tests."
    );
}

#[test]
fn html_with_text_alternative() {
    let server = Aiosmtpd::start();
    let msg = Message {
        html: Some("<p>Hello <b>HTML</b></p>".into()),
        ..message(&["bob@example.test"])
    };
    mailer().send(&loopback(server.port()), &msg).unwrap();
    let got = &server.wait_for(1, WAIT)[0];
    let parsed = parse(&got.data);
    let ct = parsed.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("alternative"))
    );
    assert_eq!(
        parsed.body_text(0).unwrap().trim_end(),
        "Hello from the tests."
    );
    assert_eq!(
        parsed.body_html(0).unwrap().trim_end(),
        "<p>Hello <b>HTML</b></p>"
    );
}

#[test]
fn attachments_arrive_byte_for_byte() {
    let server = Aiosmtpd::start();
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let msg = Message {
        attachments: vec![
            Attachment {
                filename: "data.bin".into(),
                content_type: "application/octet-stream".into(),
                content: binary.clone().into(),
                content_id: None,
            },
            Attachment {
                filename: "Übersicht März.csv".into(),
                content_type: "text/csv".into(),
                content: b"a,b\r\n1,2\r\n.\r\n".to_vec().into(),
                content_id: None,
            },
        ],
        ..message(&["bob@example.test"])
    };
    mailer().send(&loopback(server.port()), &msg).unwrap();
    let got = &server.wait_for(1, WAIT)[0];
    let parsed = parse(&got.data);
    assert_eq!(parsed.content_type().unwrap().subtype(), Some("mixed"));
    let names: Vec<_> = parsed
        .attachments()
        .map(|a| a.attachment_name().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["data.bin", "Übersicht März.csv"]);
    let bin = parsed.attachments().next().unwrap();
    assert_eq!(bin.contents(), binary.as_slice());
    let csv = parsed.attachments().nth(1).unwrap();
    assert_eq!(csv.contents(), b"a,b\r\n1,2\r\n.\r\n");
    assert_eq!(csv.content_type().unwrap().subtype(), Some("csv"));
}

#[test]
fn inline_image_in_multipart_related() {
    let server = Aiosmtpd::start();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake image".to_vec();
    let msg = Message {
        html: Some("<p><img src=\"cid:logo@example.test\"></p>".into()),
        attachments: vec![Attachment {
            filename: "logo.png".into(),
            content_type: "image/png".into(),
            content: png.clone().into(),
            content_id: Some("logo@example.test".into()),
        }],
        ..message(&["bob@example.test"])
    };
    mailer().send(&loopback(server.port()), &msg).unwrap();
    let got = &server.wait_for(1, WAIT)[0];
    let parsed = parse(&got.data);
    let related = parsed
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|c| c.subtype() == Some("related"))
        })
        .expect("a multipart/related part");
    let PartType::Multipart(children) = &related.body else {
        panic!("related is multipart")
    };
    let image = &parsed.parts[children[1] as usize];
    assert_eq!(image.content_id(), Some("logo@example.test"));
    assert_eq!(image.contents(), png.as_slice());
    let html = &parsed.parts[children[0] as usize];
    assert_eq!(html.content_type().unwrap().subtype(), Some("html"));
}

#[test]
fn non_ascii_subject_and_names() {
    let server = Aiosmtpd::start();
    let msg = Message {
        from: Mailbox::named("Zoë Ørsted-Łukasz", "sender@example.test"),
        to: vec![Mailbox::named("山田 太郎", "taro@example.test")],
        subject:
            "Grüße, 你好 and 🎉 — a long subject that has to be folded over more than one line"
                .into(),
        text: Some("Ünïcödé body ✓\n".into()),
        ..Message::default()
    };
    mailer().send(&loopback(server.port()), &msg).unwrap();
    let got = &server.wait_for(1, WAIT)[0];
    let parsed = parse(&got.data);
    assert_eq!(parsed.subject(), Some(msg.subject.as_str()));
    assert_eq!(
        parsed.from().unwrap().first().unwrap().name(),
        Some("Zoë Ørsted-Łukasz")
    );
    assert_eq!(
        parsed.to().unwrap().first().unwrap().name(),
        Some("山田 太郎")
    );
    assert_eq!(parsed.body_text(0).unwrap().trim_end(), "Ünïcödé body ✓");
    let head_end = got.data.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(
        got.data[..head_end].is_ascii(),
        "headers are RFC 2047-encoded"
    );
}

#[test]
fn one_refused_recipient_does_not_stop_the_others() {
    let server = Aiosmtpd::start();
    let msg = message(&[
        "alice@example.test",
        "refuse-me@example.test",
        "bob@example.test",
    ]);
    let report = mailer().send(&loopback(server.port()), &msg).unwrap();
    assert!(!report.all_accepted());
    let refused: Vec<_> = report.recipients.iter().filter(|r| !r.accepted).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].address, "refuse-me@example.test");
    assert_eq!(refused[0].reply.code, 550);
    assert_eq!(refused[0].reply.enhanced_code.as_deref(), Some("5.1.1"));
    let got = &server.wait_for(1, WAIT)[0];
    assert_eq!(got.rcpt_to, ["alice@example.test", "bob@example.test"]);
}

#[test]
fn every_recipient_refused_is_an_error_listing_each() {
    let server = Aiosmtpd::start();
    let msg = message(&["refuse-a@example.test", "defer-b@example.test"]);
    let err = mailer().send(&loopback(server.port()), &msg).unwrap_err();
    let ErrorKind::Rejected(rejection) = &err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(rejection.stage, Stage::RcptTo);
    let codes: Vec<_> = rejection
        .recipients
        .iter()
        .map(|r| (r.address.as_str(), r.reply.code))
        .collect();
    assert_eq!(
        codes,
        [
            ("refuse-a@example.test", 550),
            ("defer-b@example.test", 450)
        ]
    );
    assert!(err.is_transient(), "one refusal was 4xx");
    assert!(err.message.contains("refuse-a@example.test"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.messages().is_empty());
}

#[test]
fn size_limit_is_refused_before_data() {
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        size_limit: Some(2_000),
        ..Default::default()
    });
    let msg = Message {
        text: Some("x".repeat(5_000)),
        ..message(&["bob@example.test"])
    };
    let err = mailer().send(&loopback(server.port()), &msg).unwrap_err();
    let ErrorKind::Unsupported(failure) = &err.kind else {
        panic!("{err:?}")
    };
    assert!(
        failure.detail.contains("SIZE limit of 2000"),
        "{}",
        failure.detail
    );
    assert!(err.is_permanent());
    // A message under the limit goes through, declaring its size.
    mailer()
        .send(&loopback(server.port()), &message(&["bob@example.test"]))
        .unwrap();
    let got = server.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].mail_options.iter().any(|o| o.starts_with("SIZE=")),
        "{:?}",
        got[0].mail_options
    );
}

#[test]
fn hundred_messages_over_one_session() {
    let server = Aiosmtpd::start();
    let mut session = mailer().open_session(&loopback(server.port())).unwrap();
    let started = Instant::now();
    for i in 0..100 {
        let msg = Message {
            subject: format!("Message {i}"),
            ..message(&["bob@example.test"])
        };
        let report = session.send(&msg).unwrap();
        assert!(report.all_accepted());
    }
    let elapsed = started.elapsed();
    session.close().unwrap();
    let received = server.wait_for(100, WAIT);
    assert_eq!(received.len(), 100);
    let first = received[0].connection;
    assert!(
        received.iter().all(|r| r.connection == first),
        "one connection carried all"
    );
    let mut subjects: Vec<String> = received
        .iter()
        .map(|r| parse(&r.data).subject().unwrap().to_string())
        .collect();
    subjects.sort_by_key(|s| s[8..].parse::<u32>().unwrap());
    assert_eq!(subjects[99], "Message 99");
    eprintln!(
        "100 messages over one session in {:.0} ms ({:.0} messages/s)",
        elapsed.as_secs_f64() * 1000.0,
        100.0 / elapsed.as_secs_f64()
    );
}

#[test]
fn session_reset_and_raw_sends_with_smuggling_attempts() {
    let server = Aiosmtpd::start();
    let mut session = mailer().open_session(&loopback(server.port())).unwrap();
    session.reset().unwrap();
    let envelope = Envelope {
        reverse_path: "sender@example.test".into(),
        forward_paths: vec!["bob@example.test".into()],
    };
    let raw = b"Subject: raw\nFrom: sender@example.test\n\nline one\n.\nMAIL FROM:<evil@x>\n.\r\n..two\r.\rlast";
    session.send_raw(&envelope, &raw[..].into()).unwrap();
    session.close().unwrap();
    let got = &server.wait_for(1, WAIT)[0];
    assert_eq!(got.rcpt_to, ["bob@example.test"]);
    assert_eq!(
        got.data,
        b"Subject: raw\r\nFrom: sender@example.test\r\n\r\nline one\r\n.\r\nMAIL FROM:<evil@x>\r\n.\r\n..two\r\n.\r\nlast\r\n"
    );
}

#[test]
fn invalid_input_sends_nothing() {
    let server = Aiosmtpd::start();
    let msg = Message {
        subject: "hi\r\nBcc: victim@example.test".into(),
        ..message(&["bob@example.test"])
    };
    let err = mailer().send(&loopback(server.port()), &msg).unwrap_err();
    assert!(
        matches!(&err.kind, ErrorKind::InvalidInput { field, .. } if field == "subject"),
        "{err:?}"
    );
    let err = mailer()
        .send(
            &loopback(server.port()),
            &message(&["bob@example.test>\r\nRCPT TO:<x@y.test"]),
        )
        .unwrap_err();
    assert!(matches!(&err.kind, ErrorKind::InvalidInput { field, .. } if field == "to[0].address"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.messages().is_empty());
}
