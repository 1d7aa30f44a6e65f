//! The SMTP client against server transcripts (RFC 5321 appendix D and the
//! cases real servers produce), fed in chunks of every size.

use smtp_mailer_core::smtp::reply::ReplyParser;
use smtp_mailer_core::smtp::{Client, ClientConfig, Envelope, Event, TlsPolicy};
use smtp_mailer_core::{Error, Stage};

/// A configuration without TLS, for the transcripts of plain SMTP.
fn plain(name: &str) -> ClientConfig {
    ClientConfig::new(name)
        .unwrap()
        .with_tls(TlsPolicy::PlaintextInsecure)
}

/// Feeds `server` bytes to the client in chunks of `chunk` bytes; returns
/// what the client wrote in response and the fatal error, if any.
fn feed(client: &mut Client, server: &str, chunk: usize) -> (String, Option<Error>) {
    let mut parser = ReplyParser::new();
    let mut pending = Vec::new();
    let mut written = Vec::new();
    for piece in server.as_bytes().chunks(chunk.max(1)) {
        pending.extend_from_slice(piece);
        loop {
            let (used, reply) = parser.feed(&pending).expect("well-formed replies");
            pending.drain(..used);
            let Some(reply) = reply else { break };
            if let Err(e) = client.handle_reply(reply) {
                return (String::from_utf8(written).unwrap(), Some(e));
            }
            written.extend(client.take_output());
        }
    }
    (String::from_utf8(written).unwrap(), None)
}

fn events(client: &mut Client) -> Vec<Event> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope::new(from, &to.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

const EHLO_PIPELINING: &str = "220 mx.example.org ESMTP\r\n\
250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";

/// Runs `body` once per chunk size, from 1 byte to whole replies.
fn for_each_chunk(max: usize, mut body: impl FnMut(usize)) {
    for chunk in 1..=max {
        body(chunk);
    }
}

fn opened(server: &str, chunk: usize) -> Client {
    let mut client = Client::new(plain("client.example"));
    let (wrote, err) = feed(&mut client, server, chunk);
    assert!(err.is_none(), "{err:?}");
    assert!(wrote.starts_with("EHLO client.example\r\n"), "{wrote}");
    assert_eq!(events(&mut client), vec![Event::Ready]);
    client
}

#[test]
fn pipelined_send_is_one_flight_and_every_reply_is_read() {
    for_each_chunk(EHLO_PIPELINING.len(), |chunk| {
        let mut client = opened(EHLO_PIPELINING, chunk);
        assert!(client.extensions().pipelining);
        client
            .send(
                envelope("a@x.example", &["b@y.example", "c@y.example"]),
                b"Subject: hi\r\n\r\nbody\r\n",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(client.take_output()).unwrap(),
            "MAIL FROM:<a@x.example> SIZE=21\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n"
        );
        let (wrote, err) = feed(
            &mut client,
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <c@y.example>: no such user\r\n354 go on\r\n",
            chunk,
        );
        assert!(err.is_none());
        assert_eq!(wrote, "Subject: hi\r\n\r\nbody\r\n.\r\n");
        assert!(
            events(&mut client).is_empty(),
            "the final reply is still due"
        );
        let (wrote, _) = feed(&mut client, "250 2.0.0 Ok: queued as 12345\r\n", chunk);
        assert_eq!(wrote, "");
        let Event::Delivered(delivery) = &events(&mut client)[0] else {
            panic!()
        };
        assert_eq!(delivery.final_reply.code, 250);
        assert_eq!(delivery.recipients.len(), 2);
        assert!(delivery.recipients[0].accepted);
        assert!(!delivery.recipients[1].accepted);
        assert_eq!(
            delivery.recipients[1].reply.enhanced.as_deref(),
            Some("5.1.1")
        );

        // The transaction is complete: the next message starts with MAIL,
        // no RSET (RFC 5321 4.1.1.4).
        client
            .send(envelope("a@x.example", &["b@y.example"]), b"x")
            .unwrap();
        assert_eq!(
            String::from_utf8(client.take_output()).unwrap(),
            "MAIL FROM:<a@x.example> SIZE=1\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"
        );
        let (wrote, _) = feed(
            &mut client,
            "250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n",
            chunk,
        );
        assert_eq!(wrote, "x\r\n.\r\n");
        assert!(matches!(events(&mut client)[0], Event::Delivered(_)));
    });
}

#[test]
fn without_pipelining_commands_wait_for_replies() {
    let server = "220 old.example\r\n250 old.example\r\n";
    let mut client = opened(server, 5);
    client
        .send(
            envelope("a@x.example", &["b@y.example", "c@y.example"]),
            b".dot\n",
        )
        .unwrap();
    assert_eq!(client.take_output(), b"MAIL FROM:<a@x.example>\r\n");
    assert_eq!(
        feed(&mut client, "250 ok\r\n", 3).0,
        "RCPT TO:<b@y.example>\r\n"
    );
    assert_eq!(
        feed(&mut client, "451 4.3.0 later\r\n", 3).0,
        "RCPT TO:<c@y.example>\r\n"
    );
    assert_eq!(feed(&mut client, "250 ok\r\n", 3).0, "DATA\r\n");
    assert_eq!(feed(&mut client, "354 go\r\n", 3).0, "..dot\r\n.\r\n");
    feed(&mut client, "250 ok\r\n", 3);
    let Event::Delivered(d) = &events(&mut client)[0] else {
        panic!()
    };
    assert!(!d.recipients[0].accepted || d.recipients[0].address == "b@y.example");
    assert_eq!(d.recipients.iter().filter(|r| r.accepted).count(), 1);
}

#[test]
fn ehlo_refused_falls_back_to_helo_without_extensions() {
    let mut client = Client::new(plain("client.example"));
    let (wrote, _) = feed(
        &mut client,
        "220 x\r\n502 5.5.1 EHLO not implemented\r\n",
        4,
    );
    assert_eq!(wrote, "EHLO client.example\r\nHELO client.example\r\n");
    feed(&mut client, "250 x\r\n", 4);
    assert_eq!(events(&mut client), vec![Event::Ready]);
    // Non-ASCII headers need SMTPUTF8, which a HELO server lacks: refused
    // before anything is written.
    let err = client
        .send(
            envelope("a@x.example", &["b@y.example"]),
            "Subject: héllo\r\n\r\n".as_bytes(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("SMTPUTF8"));
    // 8-bit body needs 8BITMIME.
    let err = client
        .send(
            envelope("a@x.example", &["b@y.example"]),
            "Subject: x\r\n\r\nhé\r\n".as_bytes(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("8BITMIME"), "{err}");
    assert!(client.take_output().is_empty());
}

#[test]
fn utf8_and_8bit_parameters_when_offered() {
    let mut client = opened(EHLO_PIPELINING, 64);
    client
        .send(
            envelope("josé@x.example", &["b@y.example"]),
            "Subject: é\r\n\r\né".as_bytes(),
        )
        .unwrap();
    let out = String::from_utf8(client.take_output()).unwrap();
    assert!(
        out.starts_with("MAIL FROM:<josé@x.example> SIZE=17 BODY=8BITMIME SMTPUTF8\r\n"),
        "{out}"
    );
}

#[test]
fn size_over_the_limit_is_refused_before_mail() {
    let mut client = opened(EHLO_PIPELINING, 64);
    let err = client
        .send(envelope("a@x.example", &["b@y.example"]), &vec![b'a'; 1001])
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Unsupported {
            stage: Stage::MailFrom,
            ..
        }
    ));
    assert!(!err.is_transient());
    assert!(err
        .to_string()
        .contains("1001 bytes, over the server's SIZE limit of 1000"));
    assert!(client.take_output().is_empty());
}

#[test]
fn every_recipient_refused_lists_each_and_sends_no_data() {
    for_each_chunk(40, |chunk| {
        let mut client = opened(EHLO_PIPELINING, chunk);
        client
            .send(
                envelope("a@x.example", &["b@y.example", "c@y.example"]),
                b"x",
            )
            .unwrap();
        client.take_output();
        let (wrote, err) = feed(
            &mut client,
            "250 ok\r\n550 5.1.1 no b\r\n450 4.2.1 busy c\r\n554 5.5.1 no valid recipients\r\n",
            chunk,
        );
        assert!(err.is_none());
        assert_eq!(wrote, "", "no content after a refused DATA");
        let Event::Failed(err) = &events(&mut client)[0] else {
            panic!()
        };
        let Error::Rejected {
            stage, recipients, ..
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*stage, Stage::RcptTo);
        assert_eq!(recipients.len(), 2);
        assert_eq!(recipients[1].reply.code, 450);
        assert!(err.is_transient(), "one refusal was 4xx: a retry may help");
        assert!(
            err.to_string().contains("b@y.example (550 5.1.1 no b)"),
            "{err}"
        );
        assert!(!client.is_closed(), "a refusal keeps the connection");
    });
}

#[test]
fn a_354_after_every_recipient_refused_gets_an_empty_content() {
    let mut client = opened(EHLO_PIPELINING, 64);
    client
        .send(envelope("a@x.example", &["b@y.example"]), b"secret body")
        .unwrap();
    client.take_output();
    let (wrote, _) = feed(
        &mut client,
        "250 ok\r\n550 no\r\n354 go ahead anyway\r\n",
        64,
    );
    assert_eq!(wrote, ".\r\n", "the content is never sent");
    feed(&mut client, "554 no valid recipients\r\n", 64);
    let Event::Failed(Error::Rejected {
        stage: Stage::RcptTo,
        ..
    }) = &events(&mut client)[0]
    else {
        panic!()
    };
}

#[test]
fn mail_refused_without_pipelining_stops_there() {
    let mut client = opened("220 x\r\n250 x\r\n", 64);
    client
        .send(envelope("a@x.example", &["b@y.example"]), b"x")
        .unwrap();
    client.take_output();
    let (wrote, _) = feed(&mut client, "553 5.7.1 sender refused\r\n", 64);
    assert_eq!(wrote, "");
    let Event::Failed(err) = &events(&mut client)[0] else {
        panic!()
    };
    assert!(matches!(
        err,
        Error::Rejected {
            stage: Stage::MailFrom,
            ..
        }
    ));
    assert!(!err.is_transient());
}

#[test]
fn refusal_after_the_data_quotes_the_reply() {
    let mut client = opened(EHLO_PIPELINING, 64);
    client
        .send(envelope("a@x.example", &["b@y.example"]), b"x")
        .unwrap();
    client.take_output();
    feed(
        &mut client,
        "250 ok\r\n250 ok\r\n354 go\r\n452 4.3.1 out of storage\r\n",
        64,
    );
    let Event::Failed(err) = &events(&mut client)[0] else {
        panic!()
    };
    let Error::Rejected {
        stage: Stage::DataEnd,
        recipients,
        reply,
    } = err
    else {
        panic!()
    };
    assert_eq!(reply.code, 452);
    assert!(
        recipients.is_empty(),
        "only an all-recipients refusal lists them"
    );
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        "server refused end of data: 452 4.3.1 out of storage"
    );
}

#[test]
fn service_closing_is_fatal_at_any_stage() {
    let mut client = Client::new(plain("c.example"));
    let (_, err) = feed(&mut client, "421 4.3.2 shutting down\r\n", 3);
    let err = err.unwrap();
    assert!(err.is_transient() && err.is_fatal());
    assert!(client.is_closed());

    let mut client = opened(EHLO_PIPELINING, 64);
    client
        .send(envelope("a@x.example", &["b@y.example"]), b"x")
        .unwrap();
    let (_, err) = feed(&mut client, "250 ok\r\n421 4.4.2 timeout\r\n", 64);
    assert!(matches!(
        err,
        Some(Error::Rejected {
            stage: Stage::RcptTo,
            ..
        })
    ));
    assert!(client.is_closed());
    assert_eq!(
        client.send(envelope("a@x.example", &["b@y.example"]), b"x"),
        Err(Error::Closed)
    );
}

#[test]
fn unexpected_replies_are_protocol_errors() {
    let mut client = opened(EHLO_PIPELINING, 64);
    client
        .send(envelope("a@x.example", &["b@y.example"]), b"x")
        .unwrap();
    let (_, err) = feed(&mut client, "354 what\r\n", 64);
    assert!(matches!(
        err,
        Some(Error::Protocol {
            stage: Stage::MailFrom,
            ..
        })
    ));
    assert!(client.is_closed());

    let mut client = Client::new(plain("c.example"));
    let (_, err) = feed(&mut client, "554 5.3.2 go away\r\n", 64);
    assert!(matches!(
        err,
        Some(Error::Rejected {
            stage: Stage::Greeting,
            ..
        })
    ));
}

#[test]
fn reset_and_quit() {
    let mut client = opened(EHLO_PIPELINING, 64);
    client.reset().unwrap();
    assert_eq!(client.take_output(), b"RSET\r\n");
    feed(&mut client, "250 ok\r\n", 64);
    assert_eq!(events(&mut client), vec![Event::ResetDone]);
    client.quit().unwrap();
    assert_eq!(client.take_output(), b"QUIT\r\n");
    assert_eq!(client.wait(), Some(smtp_mailer_core::smtp::Wait::Command));
    feed(&mut client, "221 bye\r\n", 64);
    assert_eq!(events(&mut client), vec![Event::Closed]);
    assert!(client.is_closed());
}

#[test]
fn client_name_and_operations_out_of_order() {
    assert!(ClientConfig::new("bad name\r\nMAIL").is_err());
    let mut client = Client::new(plain("c.example"));
    assert!(client
        .send(envelope("a@x.example", &["b@y.example"]), b"x")
        .is_err());
    assert!(client.take_output().is_empty());
}
