//! Command synchronization (RFC 5321 4.3, RFC 2920, RFC 3030), against
//! both kinds of server: the client writes a flight only once every reply
//! to its previous flight arrived; without PIPELINING a flight is one
//! command (or the content after 354); with PIPELINING only RSET, MAIL and
//! RCPT are followed by more in the same flight. RSET is sent only when a
//! failure left a transaction open, never after a completed one.
//!
//! Each conversation is played step by step: the flight the client must
//! write, then the server's replies to it, fed one at a time; nothing may
//! be written before the last of them.

mod common;

use smtp_mailer_core::smtp::auth::{Credentials, Secret};
use smtp_mailer_core::smtp::reply::ReplyParser;
use smtp_mailer_core::smtp::{
    AuthSettings, Client, ClientConfig, ContentInfo, Envelope, Event, TlsPolicy,
};
use smtp_mailer_core::{Error, Stage};

/// A server that offers no PIPELINING, as Exim does for hosts outside
/// `pipelining_advertise_hosts`.
const STRICT: &str = "220 strict.example ESMTP\r\n250-strict.example\r\n250 8BITMIME\r\n";
/// A server that offers PIPELINING.
const PIPELINING: &str =
    "220 mx.example ESMTP\r\n250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n";

/// A message of 10 bytes, and what goes on the wire after 354.
const BODY: &[u8] = b"Subject: x";
const BODY_ON_WIRE: &str = "Subject: x\r\n.\r\n";

fn opened(ehlo: &str) -> Client {
    let config = ClientConfig::new("client.example")
        .unwrap()
        .with_tls(TlsPolicy::PlaintextInsecure);
    let mut client = Client::new(config);
    let (greeting, rest) = ehlo.split_at(ehlo.find("\r\n").unwrap() + 2);
    let event = converse(
        &mut client,
        "",
        &[("", greeting), ("EHLO client.example\r\n", rest)],
    );
    assert_eq!(event, Some(Event::Ready));
    client
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope::new(
        "a@x.example",
        &to.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    )
    .unwrap()
}

/// Plays a conversation. `first` is the flight the operation just started
/// must have written (checked against `take_output`); then for each step,
/// `(flight, replies)`: the client's flight so far must be `flight`, and
/// the server's `replies` are fed one by one; the client may write nothing
/// before the last of them is read. Returns the operation's outcome, once
/// the last step's replies are read and the client writes nothing more.
fn converse(client: &mut Client, first: &str, steps: &[(&str, &str)]) -> Option<Event> {
    let mut flight = String::from_utf8(client.take_output()).unwrap();
    assert_eq!(flight, first, "the operation's first flight");
    for (i, (expected, replies)) in steps.iter().enumerate() {
        if i > 0 {
            assert_eq!(&flight, expected, "the flight of step {i}");
        }
        assert!(
            client.poll_event().is_none(),
            "an outcome before the replies of step {i}"
        );
        let mut parser = ReplyParser::new();
        let mut pending = replies.as_bytes();
        let mut count = 0;
        while !pending.is_empty() {
            if count > 0 {
                assert_eq!(
                    String::from_utf8(client.take_output()).unwrap(),
                    "",
                    "step {i}: written before reply {} of {replies:?}",
                    count + 1
                );
            }
            let (used, reply) = parser.feed(pending).unwrap();
            pending = &pending[used..];
            let reply = reply.expect("whole replies");
            assert!(client.wait().is_some(), "step {i}: an unasked reply");
            client.handle_reply(reply).unwrap();
            count += 1;
        }
        flight = String::from_utf8(client.take_output()).unwrap();
    }
    assert_eq!(flight, "", "written after the last step");
    client.poll_event()
}

fn delivered(event: Option<Event>) {
    assert!(matches!(event, Some(Event::Delivered(_))), "{event:?}");
}

fn failed(event: Option<Event>, stage: Stage, code: u16) {
    let Some(Event::Failed(Error::Rejected {
        stage: s, reply, ..
    })) = &event
    else {
        panic!("want a refusal at {stage:?}, got {event:?}")
    };
    assert_eq!((*s, reply.code), (stage, code), "{event:?}");
}

/// MAIL, each RCPT, DATA and the content, each waiting for its reply.
fn one_by_one(client: &mut Client, to: &[&str]) -> Option<Event> {
    client.send(envelope(to), BODY).unwrap();
    let mut steps = Vec::new();
    let rcpts: Vec<String> = to.iter().map(|a| format!("RCPT TO:<{a}>\r\n")).collect();
    for rcpt in &rcpts {
        steps.push((rcpt.as_str(), "250 2.1.5 ok\r\n"));
    }
    steps.push(("DATA\r\n", "354 go on\r\n"));
    steps.push((BODY_ON_WIRE, "250 2.0.0 queued\r\n"));
    let mut all = vec![("", "250 2.1.0 ok\r\n")];
    all.extend(steps);
    converse(client, "MAIL FROM:<a@x.example>\r\n", &all)
}

#[test]
fn without_pipelining_a_session_writes_one_command_per_reply_and_no_rset() {
    let mut client = opened(STRICT);
    assert!(!client.extensions().pipelining);
    delivered(one_by_one(&mut client, &["b@y.example", "c@y.example"]));
    for _ in 0..3 {
        // Nothing was left open: each later message starts with MAIL.
        delivered(one_by_one(&mut client, &["b@y.example"]));
    }
    // QUIT only after the last reply, alone.
    client.quit().unwrap();
    assert_eq!(
        converse(&mut client, "QUIT\r\n", &[("", "221 bye\r\n")]),
        Some(Event::Closed)
    );
}

#[test]
fn with_pipelining_a_session_is_one_group_per_message_and_no_rset() {
    let mut client = opened(PIPELINING);
    for _ in 0..3 {
        client.send(envelope(&["b@y.example"]), BODY).unwrap();
        delivered(converse(
            &mut client,
            "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n",
            &[
                ("", "250 ok\r\n250 ok\r\n354 go on\r\n"),
                (BODY_ON_WIRE, "250 queued\r\n"),
            ],
        ));
    }
}

#[test]
fn without_pipelining_a_refused_recipient_then_retried_waits_for_rset() {
    let mut client = opened(STRICT);
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    failed(
        converse(
            &mut client,
            "MAIL FROM:<a@x.example>\r\n",
            &[
                ("", "250 ok\r\n"),
                ("RCPT TO:<b@y.example>\r\n", "450 4.2.1 busy\r\n"),
            ],
        ),
        Stage::RcptTo,
        450,
    );
    // MAIL was accepted: the transaction is open. RSET, alone, then MAIL
    // once RSET was answered.
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    delivered(converse(
        &mut client,
        "RSET\r\n",
        &[
            ("", "250 2.0.0 ok\r\n"),
            ("MAIL FROM:<a@x.example>\r\n", "250 ok\r\n"),
            ("RCPT TO:<b@y.example>\r\n", "250 ok\r\n"),
            ("DATA\r\n", "354 go on\r\n"),
            (BODY_ON_WIRE, "250 queued\r\n"),
        ],
    ));
    // Delivered: no RSET before the next one.
    delivered(one_by_one(&mut client, &["b@y.example"]));
}

#[test]
fn with_pipelining_a_refused_recipient_then_retried_puts_rset_in_the_group() {
    let mut client = opened(PIPELINING);
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    failed(
        converse(
            &mut client,
            "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n",
            &[(
                "",
                "250 ok\r\n450 4.2.1 busy\r\n554 5.5.1 no valid recipients\r\n",
            )],
        ),
        Stage::RcptTo,
        450,
    );
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    delivered(converse(
        &mut client,
        "RSET\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n",
        &[
            ("", "250 ok\r\n250 ok\r\n250 ok\r\n354 go on\r\n"),
            (BODY_ON_WIRE, "250 queued\r\n"),
        ],
    ));
}

#[test]
fn a_refused_mail_opens_nothing_so_the_retry_needs_no_rset() {
    let mut client = opened(STRICT);
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    failed(
        converse(
            &mut client,
            "MAIL FROM:<a@x.example>\r\n",
            &[("", "451 4.3.0 later\r\n")],
        ),
        Stage::MailFrom,
        451,
    );
    delivered(one_by_one(&mut client, &["b@y.example"]));

    let mut client = opened(PIPELINING);
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    failed(
        converse(
            &mut client,
            "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n",
            &[(
                "",
                "451 4.3.0 later\r\n503 5.5.1 MAIL first\r\n503 5.5.1 MAIL first\r\n",
            )],
        ),
        Stage::MailFrom,
        451,
    );
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    assert!(String::from_utf8(client.take_output())
        .unwrap()
        .starts_with("MAIL FROM:"));
}

#[test]
fn a_refused_end_of_data_completes_the_transaction() {
    let mut client = opened(STRICT);
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    failed(
        converse(
            &mut client,
            "MAIL FROM:<a@x.example>\r\n",
            &[
                ("", "250 ok\r\n"),
                ("RCPT TO:<b@y.example>\r\n", "250 ok\r\n"),
                ("DATA\r\n", "354 go on\r\n"),
                (BODY_ON_WIRE, "554 5.6.0 content refused\r\n"),
            ],
        ),
        Stage::DataEnd,
        554,
    );
    delivered(one_by_one(&mut client, &["b@y.example"]));
}

#[test]
fn a_refused_data_without_pipelining_leaves_the_transaction_open() {
    let mut client = opened(STRICT);
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    failed(
        converse(
            &mut client,
            "MAIL FROM:<a@x.example>\r\n",
            &[
                ("", "250 ok\r\n"),
                ("RCPT TO:<b@y.example>\r\n", "250 ok\r\n"),
                ("DATA\r\n", "451 4.3.0 later\r\n"),
            ],
        ),
        Stage::Data,
        451,
    );
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    assert_eq!(client.take_output(), b"RSET\r\n");
}

#[test]
fn a_refused_rset_fails_the_message_before_mail_and_is_tried_again() {
    let mut client = opened(STRICT);
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    failed(
        converse(
            &mut client,
            "MAIL FROM:<a@x.example>\r\n",
            &[
                ("", "250 ok\r\n"),
                ("RCPT TO:<b@y.example>\r\n", "550 5.1.1 no such user\r\n"),
            ],
        ),
        Stage::RcptTo,
        550,
    );
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    failed(
        converse(&mut client, "RSET\r\n", &[("", "454 4.3.0 not now\r\n")]),
        Stage::Reset,
        454,
    );
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    delivered(converse(
        &mut client,
        "RSET\r\n",
        &[
            ("", "250 ok\r\n"),
            ("MAIL FROM:<a@x.example>\r\n", "250 ok\r\n"),
            ("RCPT TO:<b@y.example>\r\n", "250 ok\r\n"),
            ("DATA\r\n", "354 go on\r\n"),
            (BODY_ON_WIRE, "250 queued\r\n"),
        ],
    ));
}

#[test]
fn an_explicit_reset_clears_the_need_for_one() {
    let mut client = opened(STRICT);
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    failed(
        converse(
            &mut client,
            "MAIL FROM:<a@x.example>\r\n",
            &[
                ("", "250 ok\r\n"),
                ("RCPT TO:<b@y.example>\r\n", "450 busy\r\n"),
            ],
        ),
        Stage::RcptTo,
        450,
    );
    client.reset().unwrap();
    assert_eq!(
        converse(&mut client, "RSET\r\n", &[("", "250 ok\r\n")]),
        Some(Event::ResetDone)
    );
    delivered(one_by_one(&mut client, &["b@y.example"]));
}

#[test]
fn chunking_without_pipelining_sends_each_bdat_after_the_reply_before() {
    let mut client = opened("220 x ESMTP\r\n250-x\r\n250 CHUNKING\r\n");
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    delivered(converse(
        &mut client,
        "MAIL FROM:<a@x.example>\r\n",
        &[
            ("", "250 ok\r\n"),
            ("RCPT TO:<b@y.example>\r\n", "250 ok\r\n"),
            ("BDAT 12 LAST\r\nSubject: x\r\n", "250 queued\r\n"),
        ],
    ));
    // A streamed content: each piece is one chunk, whose reply is due
    // before the next piece (the driver reads it).
    client
        .send_streamed(envelope(&["b@y.example"]), ContentInfo::of(BODY))
        .unwrap();
    assert_eq!(
        converse(
            &mut client,
            "MAIL FROM:<a@x.example>\r\n",
            &[
                ("", "250 ok\r\n"),
                ("RCPT TO:<b@y.example>\r\n", "250 ok\r\n"),
            ],
        ),
        Some(Event::ContentWanted)
    );
    client.write_content(b"Subject:").unwrap();
    assert_eq!(client.take_output(), b"BDAT 8\r\nSubject:");
    assert!(client.wait().is_some(), "the chunk's reply is due");
    assert_eq!(converse(&mut client, "", &[("", "250 ok\r\n")]), None);
    client.write_content(b" x").unwrap();
    assert_eq!(client.take_output(), b"BDAT 2\r\n x");
    assert_eq!(converse(&mut client, "", &[("", "250 ok\r\n")]), None);
    client.end_content().unwrap();
    delivered(converse(
        &mut client,
        "BDAT 2 LAST\r\n\r\n",
        &[("", "250 queued\r\n")],
    ));
    // A refused chunk leaves the transaction open: RSET first.
    client
        .send_streamed(envelope(&["b@y.example"]), ContentInfo::of(BODY))
        .unwrap();
    assert_eq!(
        converse(
            &mut client,
            "MAIL FROM:<a@x.example>\r\n",
            &[
                ("", "250 ok\r\n"),
                ("RCPT TO:<b@y.example>\r\n", "250 ok\r\n"),
            ],
        ),
        Some(Event::ContentWanted)
    );
    client.write_content(BODY).unwrap();
    client.take_output();
    failed(
        converse(&mut client, "", &[("", "452 4.3.1 out of storage\r\n")]),
        Stage::DataEnd,
        452,
    );
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    assert_eq!(client.take_output(), b"RSET\r\n");
}

#[test]
fn the_opening_waits_for_each_reply_through_starttls_and_auth() {
    let config = ClientConfig::new("client.example")
        .unwrap()
        .with_tls(TlsPolicy::StartTlsRequired)
        .with_auth(AuthSettings {
            credentials: Credentials::with_password("alice", Secret::new("wonderland")),
            mechanism: None,
            client_nonce: "0123456789abcdef0123".into(),
            host: "mx.example".into(),
            port: 587,
        });
    let mut client = Client::new(config);
    assert_eq!(
        converse(
            &mut client,
            "",
            &[
                ("", "220 strict.example ESMTP\r\n"),
                (
                    "EHLO client.example\r\n",
                    "250-strict.example\r\n250 STARTTLS\r\n",
                ),
                ("STARTTLS\r\n", "220 2.0.0 go ahead\r\n"),
            ],
        ),
        Some(Event::StartTls)
    );
    client.tls_established();
    assert_eq!(
        converse(
            &mut client,
            "EHLO client.example\r\n",
            &[
                ("", "250-strict.example\r\n250 AUTH LOGIN\r\n"),
                ("AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"),
                ("YWxpY2U=\r\n", "334 UGFzc3dvcmQ6\r\n"),
                ("d29uZGVybGFuZA==\r\n", "235 2.7.0 ok\r\n"),
            ],
        ),
        Some(Event::Ready)
    );
    delivered(one_by_one(&mut client, &["b@y.example"]));
}

#[test]
fn a_send_after_quit_says_the_caller_closed_the_session() {
    let mut client = opened(STRICT);
    client.quit().unwrap();
    assert_eq!(
        converse(&mut client, "QUIT\r\n", &[("", "221 bye\r\n")]),
        Some(Event::Closed)
    );
    let err = client
        .send(envelope(&["b@y.example"]), BODY)
        .expect_err("closed");
    assert_eq!(err, Error::ClosedByCaller);
    assert!(err.to_string().contains("closed by the caller"), "{err}");
    assert!(!err.to_string().contains("failure"), "{err}");
    assert!(!err.is_transient());
    assert_eq!(client.reset(), Err(Error::ClosedByCaller));

    // Closed by a failure, it says so.
    let mut client = opened(STRICT);
    client.send(envelope(&["b@y.example"]), BODY).unwrap();
    client.take_output();
    let (_, err) = common::feed(&mut client, "421 4.3.2 closing\r\n");
    assert!(err.is_some());
    assert_eq!(
        client.send(envelope(&["b@y.example"]), BODY),
        Err(Error::Closed)
    );
}
