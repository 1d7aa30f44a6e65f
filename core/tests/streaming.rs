//! CHUNKING (BDAT) and streamed contents: what the client writes and how
//! it ends, against server transcripts.

mod common;

use common::feed;
use smtp_mailer_core::message::{base64_lines, BuildContext, Content, Mailbox, Message};
use smtp_mailer_core::smtp::{Client, ClientConfig, ContentInfo, Envelope, Event, TlsPolicy};
use smtp_mailer_core::{Error, Stage};

const GREETING: &str = "220 mx.example.org ESMTP\r\n";

fn opened(extensions: &[&str]) -> Client {
    let config = ClientConfig::new("client.example")
        .unwrap()
        .with_tls(TlsPolicy::PlaintextInsecure);
    let mut client = Client::new(config);
    let mut ehlo = String::from(GREETING);
    ehlo.push_str(if extensions.is_empty() {
        "250 mx.example.org\r\n"
    } else {
        "250-mx.example.org\r\n"
    });
    for (i, ext) in extensions.iter().enumerate() {
        let sep = if i + 1 == extensions.len() { ' ' } else { '-' };
        ehlo.push_str(&format!("250{sep}{ext}\r\n"));
    }
    let (_, err) = feed(&mut client, &ehlo);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(client.poll_event(), Some(Event::Ready));
    client
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope::new(
        "a@x.example",
        &to.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    )
    .unwrap()
}

fn output(client: &mut Client) -> String {
    String::from_utf8(client.take_output()).unwrap()
}

fn failed(client: &mut Client) -> Error {
    match client.poll_event() {
        Some(Event::Failed(e)) => e,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn a_small_message_is_one_flight_with_bdat_last() {
    let mut client = opened(&["PIPELINING", "CHUNKING", "SIZE 1000"]);
    client
        .send(envelope(&["b@y.example"]), b"Subject: hi\n\n.body\n")
        .unwrap();
    assert_eq!(
        output(&mut client),
        "MAIL FROM:<a@x.example> SIZE=19\r\nRCPT TO:<b@y.example>\r\n\
         BDAT 22 LAST\r\nSubject: hi\r\n\r\n.body\r\n",
        "line endings normalised, the dot left alone"
    );
    let (wrote, err) = feed(&mut client, "250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n");
    assert_eq!((wrote.as_str(), err), ("", None));
    let Some(Event::Delivered(delivery)) = client.poll_event() else {
        panic!()
    };
    assert_eq!(delivery.final_reply.code, 250);
    assert!(delivery.recipients[0].accepted);

    // The transaction is complete: the next message needs no RSET.
    client.send(envelope(&["b@y.example"]), b"x").unwrap();
    assert!(output(&mut client).starts_with("MAIL FROM:"));
}

#[test]
fn every_recipient_refused_with_pipelined_bdat_lists_them() {
    let mut client = opened(&["PIPELINING", "CHUNKING"]);
    client.send(envelope(&["b@y.example"]), b"x").unwrap();
    client.take_output();
    feed(
        &mut client,
        "250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n",
    );
    let Error::Rejected {
        stage: Stage::RcptTo,
        recipients,
        ..
    } = failed(&mut client)
    else {
        panic!()
    };
    assert_eq!(recipients.len(), 1);
    assert!(!recipients[0].accepted);
}

#[test]
fn a_large_message_waits_for_a_recipient_before_its_content() {
    let mut client = opened(&["PIPELINING", "CHUNKING"]);
    let message = vec![b'a'; 300 * 1024];
    client.send(envelope(&["b@y.example"]), &message).unwrap();
    assert_eq!(
        output(&mut client),
        "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
    );
    let (wrote, _) = feed(&mut client, "250 ok\r\n250 ok\r\n");
    assert!(wrote.starts_with(&format!("BDAT {} LAST\r\n", message.len() + 2)));
    feed(&mut client, "250 ok\r\n");
    assert!(matches!(client.poll_event(), Some(Event::Delivered(_))));

    // Every recipient refused: no content at all.
    client.send(envelope(&["b@y.example"]), &message).unwrap();
    assert_eq!(
        output(&mut client),
        "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n",
        "a delivered message leaves nothing to reset"
    );
    let (wrote, _) = feed(&mut client, "250 ok\r\n550 no\r\n");
    assert_eq!(wrote, "");
    assert!(matches!(
        failed(&mut client),
        Error::Rejected {
            stage: Stage::RcptTo,
            ..
        }
    ));
}

#[test]
fn without_pipelining_bdat_follows_the_last_recipient() {
    let mut client = opened(&["CHUNKING"]);
    client
        .send(envelope(&["b@y.example", "c@y.example"]), b"x\r\n")
        .unwrap();
    assert_eq!(output(&mut client), "MAIL FROM:<a@x.example>\r\n");
    let (wrote, _) = feed(&mut client, "250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n");
    assert_eq!(
        wrote,
        "RCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nBDAT 3 LAST\r\nx\r\n"
    );
    let Some(Event::Delivered(delivery)) = client.poll_event() else {
        panic!()
    };
    assert_eq!(
        delivery
            .recipients
            .iter()
            .map(|r| r.accepted)
            .collect::<Vec<_>>(),
        [true, false]
    );
}

#[test]
fn a_streamed_content_after_data_is_stuffed_and_ended() {
    let mut client = opened(&["PIPELINING", "SIZE 0", "8BITMIME"]);
    let info = ContentInfo {
        size: Some(12),
        utf8_headers: false,
        eight_bit: Some(false),
    };
    client
        .send_streamed(envelope(&["b@y.example"]), info)
        .unwrap();
    assert_eq!(
        output(&mut client),
        "MAIL FROM:<a@x.example> SIZE=12\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"
    );
    assert_eq!(
        client.write_content(b"x").unwrap_err().to_string(),
        "protocol error at end of data: no streamed content is wanted now"
    );
    feed(&mut client, "250 ok\r\n250 ok\r\n354 go\r\n");
    assert_eq!(client.poll_event(), Some(Event::ContentWanted));
    assert_eq!(
        client.wait(),
        None,
        "no reply is due while the content goes"
    );
    client.write_content(b"line\n.").unwrap();
    client.write_content(b"dot\r").unwrap();
    client.write_content(b"\nend").unwrap();
    client.end_content().unwrap();
    assert_eq!(output(&mut client), "line\r\n..dot\r\nend\r\n.\r\n");
    feed(&mut client, "250 queued\r\n");
    assert!(matches!(client.poll_event(), Some(Event::Delivered(_))));
}

#[test]
fn a_streamed_content_in_chunks_gets_a_reply_per_chunk() {
    let mut client = opened(&["PIPELINING", "CHUNKING", "8BITMIME"]);
    let info = ContentInfo {
        size: None,
        utf8_headers: false,
        eight_bit: None,
    };
    client
        .send_streamed(envelope(&["b@y.example"]), info)
        .unwrap();
    assert_eq!(
        output(&mut client),
        "MAIL FROM:<a@x.example> BODY=8BITMIME\r\nRCPT TO:<b@y.example>\r\n",
        "unknown content is declared 8-bit when the server allows it"
    );
    feed(&mut client, "250 ok\r\n250 ok\r\n");
    assert_eq!(client.poll_event(), Some(Event::ContentWanted));
    client.write_content(b"a\n.b\r").unwrap();
    assert_eq!(output(&mut client), "BDAT 7\r\na\r\n.b\r\n");
    assert!(client.wait().is_some(), "the chunk's reply is due");
    feed(&mut client, "250 2.0.0 6 octets received\r\n");
    assert_eq!(client.poll_event(), None);
    client.write_content(b"\n\xffc").unwrap();
    assert_eq!(client.take_output(), b"BDAT 2\r\n\xffc");
    client.end_content().unwrap();
    assert_eq!(output(&mut client), "BDAT 2 LAST\r\n\r\n");
    feed(&mut client, "250 ok\r\n250 queued\r\n");
    assert!(matches!(client.poll_event(), Some(Event::Delivered(_))));
}

#[test]
fn a_refused_chunk_ends_the_send() {
    let mut client = opened(&["CHUNKING", "PIPELINING"]);
    client
        .send_streamed(envelope(&["b@y.example"]), ContentInfo::default())
        .unwrap();
    client.take_output();
    feed(&mut client, "250 ok\r\n250 ok\r\n");
    assert_eq!(client.poll_event(), Some(Event::ContentWanted));
    client.write_content(b"data").unwrap();
    client.take_output();
    feed(&mut client, "552 5.3.4 message too big\r\n");
    let err = failed(&mut client);
    assert!(matches!(
        err,
        Error::Rejected {
            stage: Stage::DataEnd,
            ..
        }
    ));
    assert!(!err.is_transient());
    assert!(client.write_content(b"more").is_err());
    assert!(client.end_content().is_err());
    assert!(
        !client.is_closed(),
        "the connection carries the next message"
    );
}

#[test]
fn an_eight_bit_byte_in_unknown_content_aborts_without_8bitmime() {
    let mut client = opened(&["PIPELINING"]);
    client
        .send_streamed(envelope(&["b@y.example"]), ContentInfo::default())
        .unwrap();
    assert_eq!(
        output(&mut client),
        "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"
    );
    feed(&mut client, "250 ok\r\n250 ok\r\n354 go\r\n");
    assert_eq!(client.poll_event(), Some(Event::ContentWanted));
    client.write_content(b"ascii\r\n").unwrap();
    let err = client.write_content("é".as_bytes()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(client.is_closed(), "the content must not be ended");
    assert!(!output(&mut client).contains("\r\n.\r\n"));
}

#[test]
fn a_known_8bit_content_is_refused_before_mail_without_8bitmime() {
    let mut client = opened(&["CHUNKING"]);
    let info = ContentInfo {
        eight_bit: Some(true),
        ..ContentInfo::default()
    };
    let err = client
        .send_streamed(envelope(&["b@y.example"]), info)
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }));
    assert_eq!(client.take_output(), b"");
}

#[test]
fn a_streamed_attachment_leaves_a_gap_filled_with_its_base64() {
    let file: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let message = |content: Content| Message {
        from: Mailbox::new("a@x.example"),
        to: vec![Mailbox::new("b@y.example")],
        subject: "report".into(),
        text: Some("attached".into()),
        attachments: vec![
            smtp_mailer_core::message::Attachment {
                filename: "small.txt".into(),
                content_type: "text/plain".into(),
                content: b"small".to_vec().into(),
                content_id: None,
            },
            smtp_mailer_core::message::Attachment {
                filename: "big.bin".into(),
                content_type: "application/octet-stream".into(),
                content,
                content_id: None,
            },
        ],
        ..Message::default()
    };
    let context = BuildContext {
        now: 1_700_000_000,
        unique: "u1".into(),
    };
    let streamed = message(Content::Streamed {
        size: Some(file.len() as u64),
    })
    .build(&context)
    .unwrap();
    assert_eq!(streamed.streams.len(), 1);
    let slot = streamed.streams[0];
    assert_eq!(slot.attachment, 1);
    assert!(!streamed.bytes.contains(&0), "no marker is left");

    let info = streamed.content_info();
    let whole = streamed
        .clone()
        .assemble(|_| Ok::<_, ()>(file.clone()))
        .unwrap();
    assert_eq!(info.size, Some(whole.len() as u64), "SIZE is exact");
    assert_eq!(info.eight_bit, Some(false));

    // The same attachment as the message built in memory (the MIME
    // boundaries are random, so the bytes around it differ).
    let in_memory = message(Content::Bytes(file.clone()))
        .build(&context)
        .unwrap();
    let parsed_in_memory = mail_parser::MessageParser::default()
        .parse(&in_memory.bytes)
        .unwrap();
    assert_eq!(
        parsed_in_memory.attachment(1).unwrap().contents(),
        &file[..]
    );
    let encoded = base64_lines::encode(&file);
    assert_eq!(
        &whole[slot.offset..slot.offset + encoded.len()],
        &encoded[..]
    );
    let parsed = mail_parser::MessageParser::default().parse(&whole).unwrap();
    assert_eq!(parsed.attachment(1).unwrap().contents(), &file[..]);

    // Unknown size: no SIZE.
    let unknown = message(Content::Streamed { size: None })
        .build(&context)
        .unwrap();
    assert_eq!(unknown.content_info().size, None);
}
