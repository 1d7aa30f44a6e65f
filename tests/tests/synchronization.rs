//! Command synchronization end to end (issue 23): the real component, in
//! the real host, against servers that drop early talkers, as Exim does.
//!
//! Each server gets one session: several messages, a message refused once
//! and sent again on the same session, a raw send (in memory and from a
//! file), a message with a streamed attachment, then `close`. The server
//! must count one connection and no synchronization error, and have
//! received every message. The servers:
//! - the strict scripted server (`tests/src/strict.rs`) without PIPELINING,
//!   with and without CHUNKING, and with PIPELINING (where it checks the
//!   RFC 2920 groups, and counts the flights each message cost);
//! - Exim with `pipelining_advertise_hosts =` empty, and Exim as usual.
//!
//! The issue's own case, a queue worker's session of 5 messages, runs
//! against the strict server too; and the pool must still tell a
//! connection the server closed while it sat idle, now that the first
//! command on a reused connection is MAIL rather than RSET.

use std::io::Write as _;
use std::time::Duration;

use smtp_mailer_host::bindings::exports::smtp_mailer::mailer::types as wit;
use smtp_mailer_host::{
    bindings, Attachment, Content, Envelope, ErrorKind, MailerCtxBuilder, Message, Session, Stage,
};
use smtp_mailer_tests::servers::{Exim, EximOptions};
use smtp_mailer_tests::strict::{Seen, Strict, StrictOptions};
use smtp_mailer_tests::support::{loopback, mailer, message, parse};
use smtp_mailer_tests::worker::{
    enqueue, message_ids, message_json, smtp_url, wait_until, SqliteQueue, Worker,
};

const WAIT: Duration = Duration::from_secs(20);

/// How a server refuses a recipient once, so that the message can be sent
/// again on the same session.
struct Refusal<'a> {
    /// The recipient refused the first time.
    recipient: &'a str,
    /// Lifts the refusal after the first attempt.
    lift: &'a dyn Fn(),
}

/// What [`run_session`] sent, to check against what the server received.
struct Sent {
    /// The subject of every message, raw ones included.
    subjects: Vec<String>,
    /// The raw messages' subjects and bodies.
    raw: Vec<(&'static str, &'static [u8])>,
    /// The streamed attachment's bytes.
    attachment: Vec<u8>,
}

impl Sent {
    /// How many messages went.
    fn messages(&self) -> usize {
        self.subjects.len()
    }
}

/// The session every server gets. `refusal` is the recipient refused once;
/// `refused_sender`, when the server has one, a sender refused once.
fn run_session(session: &mut Session, refusal: Refusal, refused_sender: Option<&str>) -> Sent {
    let mut sent = Sent {
        subjects: Vec::new(),
        raw: Vec::new(),
        attachment: (0..600_000u32).map(|i| (i % 251) as u8).collect(),
    };
    let mut subjects = Vec::new();
    let mut send = |session: &mut Session, msg: Message| {
        let subject = msg.subject.clone();
        let report = session
            .send(&msg)
            .unwrap_or_else(|e| panic!("{subject}: {e:?}"));
        assert!(report.all_accepted(), "{subject}: {report:?}");
        subjects.push(subject);
    };

    // Several messages, one to two recipients.
    for i in 0..3 {
        let to: &[&str] = if i == 0 {
            &["bob@example.test", "carol@example.test"]
        } else {
            &["bob@example.test"]
        };
        send(
            session,
            Message {
                subject: format!("plain {i}"),
                ..message(to)
            },
        );
    }

    // A recipient refused once (450): the transaction stays open, so the
    // second attempt starts with RSET, and waits for its reply.
    let retried = Message {
        subject: "retried recipient".into(),
        ..message(&[refusal.recipient])
    };
    let err = session
        .send(&retried)
        .expect_err("the recipient is refused the first time");
    let ErrorKind::Rejected(rejection) = &err.kind else {
        panic!("want a refusal of the recipient, got {err:?}")
    };
    assert_eq!(rejection.stage, Stage::RcptTo, "{err:?}");
    assert_eq!(rejection.reply.code, 450, "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    (refusal.lift)();
    send(session, retried);

    // A sender refused once (451): no transaction was opened, so the
    // second attempt starts with MAIL.
    if let Some(sender) = refused_sender {
        let retried = Message {
            subject: "retried sender".into(),
            envelope: Some(Envelope {
                reverse_path: sender.into(),
                forward_paths: vec!["bob@example.test".into()],
            }),
            ..message(&["bob@example.test"])
        };
        let err = session.send(&retried).expect_err("refused the first time");
        let ErrorKind::Rejected(rejection) = &err.kind else {
            panic!("want a refusal of the sender, got {err:?}")
        };
        assert_eq!(
            (rejection.stage, rejection.reply.code),
            (Stage::MailFrom, 451)
        );
        send(session, retried);
    }

    // Raw sends: from memory, and from a file (streamed).
    let envelope = Envelope {
        reverse_path: "raw@example.test".into(),
        forward_paths: vec!["bob@example.test".into()],
    };
    const RAW_BODY: &[u8] = b".a line with a dot\r\nthe end\r\n";
    let raw = [
        b"From: raw@example.test\r\nTo: bob@example.test\r\nSubject: raw\r\n\r\n".as_slice(),
        RAW_BODY,
    ]
    .concat();
    let report = session
        .send_raw(&envelope, &Content::Bytes(raw))
        .expect("the raw message goes");
    assert!(report.all_accepted(), "{report:?}");
    sent.raw.push(("raw", RAW_BODY));
    const FILE_BODY: &[u8] = b"streamed\r\n";
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"From: raw@example.test\r\nTo: bob@example.test\r\nSubject: raw file\r\n\r\n")
        .unwrap();
    file.write_all(FILE_BODY).unwrap();
    let report = session
        .send_raw(&envelope, &Content::File(file.path().to_path_buf()))
        .expect("the raw file goes");
    assert!(report.all_accepted(), "{report:?}");
    sent.raw.push(("raw file", FILE_BODY));

    // A streamed attachment: several pieces (BDAT chunks with CHUNKING).
    let mut attachment = tempfile::NamedTempFile::new().unwrap();
    attachment.write_all(&sent.attachment).unwrap();
    send(
        session,
        Message {
            subject: "streamed attachment".into(),
            attachments: vec![Attachment {
                filename: "data.bin".into(),
                content_type: "application/octet-stream".into(),
                content: Content::File(attachment.path().to_path_buf()),
                content_id: None,
            }],
            ..message(&["bob@example.test"])
        },
    );
    sent.subjects = subjects;
    sent.subjects
        .extend(sent.raw.iter().map(|(s, _)| s.to_string()));
    sent
}

/// Checks the received messages against what was sent, in any order
/// (Exim delivers each message in its own process): the subjects, the raw
/// messages' bodies, the attachment's bytes.
fn check_received(sent: &Sent, received: &[Vec<u8>]) {
    let mut subjects = Vec::new();
    for data in received {
        let parsed = parse(data);
        let subject = parsed.subject().unwrap_or_default().to_string();
        if subject == "streamed attachment" {
            let part = parsed.attachments().next().expect("the attachment");
            assert!(
                part.contents() == sent.attachment.as_slice(),
                "the attachment arrived changed"
            );
        }
        if let Some((_, body)) = sent.raw.iter().find(|(s, _)| *s == subject) {
            assert!(
                data.ends_with(body),
                "{subject}: {:?}",
                String::from_utf8_lossy(data)
            );
        }
        subjects.push(subject);
    }
    let mut expected = sent.subjects.clone();
    expected.sort();
    subjects.sort();
    assert_eq!(subjects, expected, "the messages received");
}

/// One session against a strict server; returns what it saw.
fn strict_session(options: StrictOptions) -> Seen {
    let server = Strict::start(options);
    let mut session = mailer().open_session(&loopback(server.port())).unwrap();
    let sent = run_session(
        &mut session,
        Refusal {
            recipient: "once-rcpt@example.test",
            lift: &|| {},
        },
        Some("once-sender@example.test"),
    );
    session.close().unwrap();
    let seen = server.seen();
    assert!(
        seen.sync_errors.is_empty(),
        "{options:?}: synchronization errors: {:#?}",
        seen.sync_errors
    );
    assert_eq!(seen.connections, 1, "{options:?}: {:#?}", seen.commands);
    assert_eq!(
        seen.nested_mail, 0,
        "{options:?}: a needed RSET was missing"
    );
    assert_eq!(
        seen.count("RSET"),
        1,
        "{options:?}: RSET only before the retry of the refused recipient: {:#?}",
        seen.commands
    );
    assert_eq!(seen.commands[0].last().map(String::as_str), Some("QUIT"));
    let received: Vec<Vec<u8>> = seen.messages.iter().map(|m| m.data.clone()).collect();
    check_received(&sent, &received);
    let retried = seen
        .messages
        .iter()
        .find(|m| m.rcpt_to == ["once-rcpt@example.test"])
        .expect("the retried message");
    assert_eq!(retried.mail_from, "sender@example.test");
    seen
}

#[test]
fn strict_server_without_pipelining_sees_no_early_command() {
    let _ = mailer();
    for chunking in [false, true] {
        let seen = strict_session(StrictOptions {
            chunking,
            ..StrictOptions::default()
        });
        // Every command waited for its reply: one flight per command, and
        // one per content after 354.
        let contents = if chunking { 0 } else { seen.messages.len() };
        assert_eq!(
            seen.flights[0],
            seen.commands[0].len() + contents,
            "chunking {chunking}: {:#?}",
            seen.commands
        );
    }
}

#[test]
fn strict_server_with_pipelining_gets_one_group_per_message() {
    let _ = mailer();
    let seen = strict_session(StrictOptions {
        pipelining: true,
        ..StrictOptions::default()
    });
    // EHLO, then per message a group (RSET) MAIL RCPT... DATA and its
    // content; a message refused before DATA is one group; QUIT.
    let delivered = seen.messages.len();
    let refused = 2;
    assert_eq!(
        seen.flights[0],
        1 + 2 * delivered + refused + 1,
        "{:#?}",
        seen.commands
    );
}

#[test]
fn a_send_after_close_says_the_caller_closed_the_session() {
    let server = Strict::start(StrictOptions::default());
    let settings = loopback(server.port());
    let mut ctx = MailerCtxBuilder::new();
    ctx.allow_connect(format!("127.0.0.1:{}", server.port()).parse().unwrap());
    let (mut store, instance) = mailer().instantiate(ctx).unwrap();
    let sessions = instance.smtp_mailer_mailer_sessions().session();
    let settings = bindings::server(&settings, Some("127.0.0.1".into()));
    let session = sessions
        .call_open(&mut store, &settings)
        .expect("no trap")
        .expect("the session opens");
    let msg: wit::Message =
        bindings::message(&message(&["bob@example.test"]), store.data_mut().table()).unwrap();
    sessions
        .call_send(&mut store, session, &msg)
        .expect("no trap")
        .expect("sent");
    sessions
        .call_close(&mut store, session)
        .expect("no trap")
        .expect("closed");
    let msg: wit::Message =
        bindings::message(&message(&["bob@example.test"]), store.data_mut().table()).unwrap();
    let err = sessions
        .call_send(&mut store, session, &msg)
        .expect("no trap")
        .expect_err("the session is closed");
    assert!(matches!(err.code, wit::ErrorCode::Connection(_)), "{err:?}");
    assert!(
        err.message.contains("closed by the caller"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("failure"), "{}", err.message);
    assert!(matches!(err.retry, wit::Retry::Permanent), "{err:?}");
    let err = sessions
        .call_reset(&mut store, session)
        .expect("no trap")
        .expect_err("the session is closed");
    assert!(err.message.contains("closed by the caller"), "{err:?}");
    let seen = server.seen();
    assert_eq!(seen.messages.len(), 1);
    assert_eq!(seen.commands[0].last().map(String::as_str), Some("QUIT"));
}

/// One session against Exim; checks its log and what it delivered.
fn exim_session(options: EximOptions) {
    let no_pipelining = options.no_pipelining;
    let server = Exim::start_with(options);
    let mut session = mailer().open_session(&loopback(server.port())).unwrap();
    server.hold(true);
    let sent = run_session(
        &mut session,
        Refusal {
            recipient: "held-rcpt@example.test",
            lift: &|| server.hold(false),
        },
        None,
    );
    session.close().unwrap();
    let received: Vec<Vec<u8>> = server
        .wait_for(sent.messages(), WAIT)
        .into_iter()
        .map(|m| m.data)
        .collect();
    let errors = server.sync_errors();
    assert!(
        errors.is_empty(),
        "no PIPELINING {no_pipelining}: Exim logged synchronization errors:\n{}",
        errors.join("\n")
    );
    assert_eq!(
        server.connections(),
        1,
        "no PIPELINING {no_pipelining}: connections; Exim's log:\n{}",
        server.log()
    );
    check_received(&sent, &received);
}

#[test]
fn exim_without_pipelining_sees_no_early_command() {
    let _ = mailer();
    exim_session(EximOptions {
        no_pipelining: true,
        ..EximOptions::default()
    });
}

#[test]
fn exim_with_pipelining_sees_no_early_command_either() {
    let _ = mailer();
    exim_session(EximOptions::default());
}

/// Talks to `port` as an early talker: EHLO, then RSET and MAIL in one
/// write, as the client did before issue 23. Returns what the server said
/// after the EHLO reply.
fn talk_early(port: u16) -> String {
    use std::io::{BufRead, BufReader, Read};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("220"), "{line}");
    stream.write_all(b"EHLO early.example\r\n").unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("250 ") {
            break;
        }
        assert!(line.starts_with("250-"), "{line}");
    }
    stream
        .write_all(b"RSET\r\nMAIL FROM:<early@example.test>\r\n")
        .unwrap();
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    rest
}

#[test]
fn both_servers_catch_an_early_talker() {
    // The checks above can fail: an early command is seen and counted.
    let strict = Strict::start(StrictOptions::default());
    let said = talk_early(strict.port());
    assert!(
        said.contains("554 5.5.0 SMTP synchronization error"),
        "{said}"
    );
    let seen = strict.seen();
    assert_eq!(seen.sync_errors.len(), 1, "{seen:#?}");
    assert!(
        seen.sync_errors[0].contains("RSET") && seen.sync_errors[0].contains("MAIL FROM"),
        "{seen:#?}"
    );

    let exim = Exim::start_with(EximOptions {
        no_pipelining: true,
        ..EximOptions::default()
    });
    let said = talk_early(exim.port());
    assert!(said.starts_with("554"), "{said}");
    let errors = exim.sync_errors();
    assert_eq!(errors.len(), 1, "{}", exim.log());
    assert_eq!(exim.connections(), 1, "{}", exim.log());
}

/// The Message-IDs of what the strict server stored, without brackets.
fn stored_ids(seen: &Seen) -> Vec<String> {
    let mut ids: Vec<String> = seen
        .messages
        .iter()
        .map(|m| {
            parse(&m.data)
                .message_id()
                .expect("a Message-ID")
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_worker_session_against_the_strict_server_is_one_connection() {
    // The case: a worker with one session sends 5 messages to a
    // server without PIPELINING. One of them is refused once (450) and
    // retried by the worker over the same pooled connection.
    let server = Strict::start(StrictOptions::default());
    let queue = SqliteQueue::new();
    let mut ids = message_ids("strict", 5);
    let messages: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let to = if n == 2 {
                "once-worker@example.test".to_string()
            } else {
                format!("r{n}@example.test")
            };
            message_json(id, &[&to])
        })
        .collect();
    enqueue(&queue.spec(), &messages);
    let finished = Worker::spawn(
        &queue.spec(),
        &[smtp_url(server.port())],
        &[
            "--exit-when-empty",
            "--sessions",
            "1",
            "--retry-base-ms",
            "100",
        ],
    )
    .wait(Duration::from_secs(120));
    finished.assert_success();
    assert_eq!(finished.count("delivered"), 5, "{}", finished.output());
    assert_eq!(
        finished.events_named("deferred").len(),
        1,
        "{}",
        finished.output()
    );
    let seen = server.seen();
    assert!(seen.sync_errors.is_empty(), "{:#?}", seen.sync_errors);
    assert_eq!(seen.connections, 1, "{:#?}", seen.commands);
    assert_eq!(seen.nested_mail, 0, "{:#?}", seen.commands);
    assert_eq!(seen.count("RSET"), 1, "{:#?}", seen.commands);
    ids.sort();
    assert_eq!(stored_ids(&seen), ids);
}

#[test]
fn a_pooled_connection_closed_silently_while_idle_is_replaced_without_resending() {
    // No RSET starts a message after a delivered one: the first command on
    // the reused connection is MAIL, and a socket the server closed while
    // it sat idle (no 421) must still be recognised there, and the message
    // sent over a new connection at once.
    let server = Strict::start(StrictOptions {
        idle_close: Some(Duration::from_secs(1)),
        ..StrictOptions::default()
    });
    let queue = SqliteQueue::new();
    let mut worker = Worker::spawn(
        &queue.spec(),
        &[smtp_url(server.port())],
        &["--sessions", "1", "--idle-timeout", "30"],
    );
    let mut ids = message_ids("idle", 2);
    enqueue(&queue.spec(), &[message_json(&ids[0], &["a@example.test"])]);
    wait_until("the first message arrives", WAIT, || {
        server.seen().messages.len() == 1
    });
    std::thread::sleep(Duration::from_millis(2500));
    worker.assert_running();
    enqueue(&queue.spec(), &[message_json(&ids[1], &["b@example.test"])]);
    wait_until("the second message arrives", WAIT, || {
        server.seen().messages.len() == 2
    });
    let finished = worker.terminate(Duration::from_secs(20));
    let seen = server.seen();
    assert_eq!(seen.connections, 2, "{:#?}", seen.commands);
    assert_eq!(seen.messages[1].connection, 2);
    ids.sort();
    assert_eq!(stored_ids(&seen), ids);
    assert!(
        finished.events_named("deferred").is_empty(),
        "the closed connection was not replaced transparently; {}",
        finished.output()
    );
    let delivered = finished.events_named("delivered");
    assert_eq!(delivered.len(), 2, "{}", finished.output());
    assert!(
        delivered.iter().all(|e| e["attempt"] == 1),
        "{}",
        finished.output()
    );
}
