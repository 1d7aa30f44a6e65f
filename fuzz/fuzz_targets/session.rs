//! A whole client session against a server that sends arbitrary bytes.
//!
//! Input layout: the first byte chooses the configuration (TLS policy,
//! credentials, message, recipients); the driver's decisions (what to do
//! when the client is idle) are taken from the end of the input, one byte
//! each; everything in between is the server's byte stream, cut into
//! replies by a `ReplyParser` and passed to `Client::handle_reply` as a
//! driver does.
//!
//! Invariants:
//! - nothing panics;
//! - the output is always whole lines: no bare CR or LF anywhere (content
//!   included: it is encoded), every flight ends with CRLF;
//! - a flight is either command lines (known verbs, or AUTH responses, no
//!   control characters) or, only in answer to a 3xx (the client takes any
//!   intermediate reply to DATA as its 354), the encoded content
//!   or the `.` that aborts it; a line that is a lone `.` appears exactly
//!   once per content written, as its terminator;
//! - with CHUNKING, `BDAT n [LAST]` is followed by exactly n bytes, and the
//!   chunks up to LAST are the content with CRLF line endings, unstuffed;
//! - synchronization (RFC 2920): without PIPELINING a flight holds one
//!   command (a BDAT chunk counts with its command); with it, only RSET,
//!   MAIL and RCPT are followed by more commands in the same flight; each
//!   `write_content` writes at most one BDAT chunk;
//! - a send starts with RSET only after a failure (a completed transaction
//!   needs none);
//! - a streamed send (`send_streamed`, content written in two pieces after
//!   `ContentWanted`) puts the same bytes on the wire as `send`;
//! - the password and the token never appear in the output nor in any
//!   error or event (unless the server itself sent them);
//! - after a fatal error (`handle_reply` returns `Err`), the client is
//!   closed, expects nothing, and `send`, `reset` and `quit` fail;
//! - after an operation's outcome (Ready, Delivered, Failed, ResetDone) the
//!   client expects no reply and accepts the next operation; a delivery has
//!   at least one accepted recipient and a positive final reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_mailer_core::smtp::auth::{Credentials, Secret};
use smtp_mailer_core::smtp::data::{encode_data, DataEncoder};
use smtp_mailer_core::smtp::reply::ReplyParser;
use smtp_mailer_core::smtp::{
    AuthSettings, Client, ClientConfig, ContentInfo, Envelope, Event, TlsPolicy,
};
use smtp_mailer_core::Error;

const PASSWORD: &str = "pw-Sup3rS3cret-9f2c";
const TOKEN: &str = "tok-ya29.Fuzz0Token-77d1";

const MESSAGES: [&[u8]; 4] = [
    b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nHello.\r\n",
    // Smuggling attempts: bare LF and CR, dot lines, no final CRLF.
    b"Subject: dots\n\n.\n..\r\n.\r\nMAIL FROM:<evil@x>\r\n\r.\rend",
    // 8-bit body: needs 8BITMIME.
    b"Subject: caf\xc3\xa9 body\r\n\r\nbody: caf\xc3\xa9\r\n",
    // Non-ASCII header: needs SMTPUTF8.
    b"Subject: caf\xc3\xa9\r\n\r\nbody\r\n",
];

const RECIPIENTS: [&str; 4] = [
    "rcpt1@example.net",
    "\"odd user\"@example.org",
    "rcpt3@[192.0.2.1]",
    "jos\u{e9}@ex\u{e4}mple.org",
];

fn config(choice: u8) -> ClientConfig {
    let tls = match choice & 3 {
        0 => TlsPolicy::PlaintextInsecure,
        1 => TlsPolicy::Implicit,
        2 => TlsPolicy::StartTlsRequired,
        _ => TlsPolicy::StartTlsOpportunistic,
    };
    let config = ClientConfig::new("client.example").unwrap().with_tls(tls);
    let credentials = match (choice >> 2) & 3 {
        0 => return config,
        1 => Credentials::with_password("alice", Secret::new(PASSWORD)),
        2 => Credentials::with_token("alice@example.org", Secret::new(TOKEN)),
        _ => {
            Credentials::with_password("alice", Secret::new(PASSWORD)).and_token(Secret::new(TOKEN))
        }
    };
    config.with_auth(AuthSettings {
        credentials,
        mechanism: None,
        client_nonce: "fyko+d2lbbFgONRv9qkxdawL".into(),
        host: "mx.example.org".into(),
        port: 587,
    })
}

fn envelope(choice: u8) -> Envelope {
    let count = usize::from(choice >> 6) + 1;
    let forward: Vec<String> = RECIPIENTS[..count].iter().map(|s| s.to_string()).collect();
    Envelope::new("sender@example.org", &forward).unwrap()
}

/// The checks of every flight of output, and what they count.
struct Wire {
    encoded: Vec<u8>,
    /// The content as BDAT chunks carry it.
    chunked: Vec<u8>,
    /// The BDAT chunks of the content under way.
    chunks: Vec<u8>,
    /// How many times content (or an aborting `.`) was written.
    contents: usize,
    /// How many lone `.` lines were written.
    dot_lines: usize,
    /// The server sent the secrets itself: echoing them is not a leak.
    server_has_secret: bool,
}

impl Wire {
    fn check_no_secret(&self, text: &str) {
        if !self.server_has_secret {
            assert!(!text.contains(PASSWORD), "password leaked: {text}");
            assert!(!text.contains(TOKEN), "token leaked: {text}");
        }
    }

    /// Checks one flight of output. `after_3xx`: it answers a 3xx reply;
    /// `pipelining`: the server offered PIPELINING.
    fn check(&mut self, out: &[u8], after_3xx: bool, pipelining: bool) {
        if out.is_empty() {
            return;
        }
        for (i, &b) in out.iter().enumerate() {
            if b == b'\n' {
                assert!(
                    i > 0 && out[i - 1] == b'\r',
                    "bare LF at {i}: {:?}",
                    show(out)
                );
            }
            if b == b'\r' {
                assert_eq!(
                    out.get(i + 1),
                    Some(&b'\n'),
                    "bare CR at {i}: {:?}",
                    show(out)
                );
            }
        }
        if after_3xx && (out == self.encoded.as_slice() || out == b".\r\n") {
            self.dot_lines += out.split(|&b| b == b'\n').filter(|l| *l == b".\r").count();
            self.contents += 1;
            return;
        }
        let mut rest = out;
        // The verb of the command before, which the next one follows in
        // the same flight.
        let mut before: Option<String> = None;
        while !rest.is_empty() {
            let Some(end) = rest.iter().position(|&b| b == b'\n').filter(|&e| e > 0) else {
                panic!("a command without CRLF: {:?}", show(out));
            };
            let line = &rest[..end - 1];
            rest = &rest[end + 1..];
            if let Some(verb) = before.take() {
                assert!(
                    pipelining,
                    "{verb} and more in one flight, without PIPELINING: {:?}",
                    show(out)
                );
                assert!(
                    ["RSET", "MAIL", "RCPT"].contains(&verb.as_str()),
                    "{verb} followed by more in one flight (RFC 2920 3.1): {:?}",
                    show(out)
                );
            }
            let verb = String::from_utf8_lossy(line)
                .split([' ', ':'])
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            before = Some(verb);
            if let Some(chunk) = line.strip_prefix(b"BDAT ") {
                let chunk = String::from_utf8_lossy(chunk).into_owned();
                let mut words = chunk.split(' ');
                let size: usize = words.next().and_then(|n| n.parse().ok()).expect("a BDAT size");
                let last = match words.next() {
                    None => false,
                    Some("LAST") => true,
                    Some(other) => panic!("BDAT {size} {other}"),
                };
                assert!(rest.len() >= size, "BDAT {size} with {} bytes", rest.len());
                self.chunks.extend_from_slice(&rest[..size]);
                rest = &rest[size..];
                if last {
                    assert_eq!(
                        show(&std::mem::take(&mut self.chunks)),
                        show(&self.chunked),
                        "the chunks are the content"
                    );
                }
                continue;
            }
            if line == b"." {
                self.dot_lines += 1;
            }
            let text = std::str::from_utf8(line)
                .unwrap_or_else(|_| panic!("a command line is not UTF-8: {:?}", show(out)));
            assert!(
                !text.chars().any(char::is_control),
                "a control character in a command line: {text:?}"
            );
            let known = ["EHLO ", "HELO ", "MAIL FROM:<", "RCPT TO:<", "AUTH "]
                .iter()
                .any(|verb| text.starts_with(verb))
                || ["DATA", "RSET", "QUIT", "STARTTLS", "*", ""].contains(&text)
                || text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
            assert!(known, "not a command line: {text:?}");
            self.check_no_secret(text);
        }
    }
}

/// Whether the server offered PIPELINING (in its latest EHLO reply).
fn pipelining(client: &Client) -> bool {
    client.extensions().pipelining
}

/// `FUZZ_TRACE=1` prints the session (for reading a crash or a seed).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fatal error leaves the client closed and refusing every operation.
fn check_closed(client: &mut Client, env: &Envelope, message: &[u8]) {
    assert!(client.is_closed(), "not closed after a fatal error");
    assert_eq!(client.wait(), None, "waits for a reply after a fatal error");
    assert!(
        client.send(env.clone(), message).is_err(),
        "send after a fatal error"
    );
    assert!(client.reset().is_err(), "reset after a fatal error");
    assert!(client.quit().is_err(), "quit after a fatal error");
    assert!(
        client.take_output().is_empty(),
        "output after a fatal error"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let mut server: &[u8] = rest;
    let mut decide = || -> u8 {
        match server.split_last() {
            Some((&d, front)) => {
                server = front;
                d
            }
            None => 0,
        }
    };
    // Up to four decisions, taken up front from the end of the input.
    let decisions: [u8; 4] = [decide(), decide(), decide(), decide()];
    let mut decisions = decisions.into_iter();

    let message = MESSAGES[usize::from((choice >> 4) & 3)];
    let env = envelope(choice);
    let mut chunked = Vec::new();
    let mut encoder = DataEncoder::for_bdat();
    encoder.encode(message, &mut chunked);
    encoder.finish_line(&mut chunked);
    let mut wire = Wire {
        encoded: encode_data(message),
        chunked,
        chunks: Vec::new(),
        contents: 0,
        dot_lines: 0,
        server_has_secret: server
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes())
            || server.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
    };

    let mut client = Client::new(config(choice));
    assert!(
        client.take_output().is_empty(),
        "output before the greeting"
    );
    let mut parser = ReplyParser::new();

    'session: while !server.is_empty() {
        let (used, reply) = match parser.feed(server) {
            Ok(r) => r,
            // A driver drops the connection on a malformed reply.
            Err(_) => {
                client.connection_lost();
                check_closed(&mut client, &env, message);
                break;
            }
        };
        server = &server[used..];
        let Some(reply) = reply else { break };
        let is_3xx = reply.is_intermediate();
        if trace() {
            eprintln!("S: {}", reply.one_line());
        }
        let result = client.handle_reply(reply);
        let out = client.take_output();
        if trace() {
            eprintln!("C: {:?} -> {result:?}", show(&out));
        }
        match result {
            Err(e) => {
                assert!(
                    out.is_empty(),
                    "output with a fatal error: {:?}",
                    show(&out)
                );
                wire.check_no_secret(&format!("{e} {e:?}"));
                check_closed(&mut client, &env, message);
                break;
            }
            Ok(()) => wire.check(&out, is_3xx, pipelining(&client)),
        }
        while let Some(event) = client.poll_event() {
            if trace() {
                eprintln!("event: {event:?}");
            }
            wire.check_no_secret(&format!("{event:?}"));
            if let Event::Failed(e) = &event {
                wire.check_no_secret(&e.to_string());
            }
            match event {
                Event::ContentWanted => {
                    // The driver streams the content in two pieces; with
                    // CHUNKING each piece is a flight of its own (the
                    // driver reads the chunk's reply before the next).
                    let chunking = client.extensions().chunking;
                    let cut = usize::from(choice) % (message.len() + 1);
                    let mut flights = Vec::new();
                    for piece in [&message[..cut], &message[cut..]] {
                        if let Err(e) = client.write_content(piece) {
                            assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
                            assert!(!message.is_ascii());
                            check_closed(&mut client, &env, message);
                            break 'session;
                        }
                        if chunking {
                            flights.push(client.take_output());
                        }
                    }
                    client.end_content().expect("the end of a wanted content");
                    flights.push(client.take_output());
                    for out in flights {
                        if trace() {
                            eprintln!("content: C: {:?}", show(&out));
                        }
                        wire.check(&out, true, pipelining(&client));
                    }
                }
                Event::StartTls => {
                    // The driver ran the handshake.
                    client.tls_established();
                    let out = client.take_output();
                    assert_eq!(out, b"EHLO client.example\r\n");
                    wire.check(&out, false, pipelining(&client));
                }
                Event::Closed => {
                    assert!(client.is_closed());
                    break 'session;
                }
                Event::Ready | Event::Delivered(_) | Event::Failed(_) | Event::ResetDone => {
                    if let Event::Delivered(d) = &event {
                        assert!(d.final_reply.is_positive());
                        assert!(d.recipients.iter().any(|r| r.accepted));
                        assert!(d
                            .recipients
                            .iter()
                            .all(|r| !r.accepted || r.reply.is_positive()));
                    }
                    if let Event::Failed(e) = &event {
                        assert!(
                            !matches!(
                                e,
                                Error::Closed | Error::ClosedByCaller | Error::Protocol { .. }
                            ),
                            "a non-fatal failure that is fatal: {e:?}"
                        );
                    }
                    // Only a failure may leave a transaction open.
                    let rset_allowed = matches!(event, Event::Failed(_));
                    assert_eq!(client.wait(), None, "an outcome with replies still due");
                    assert!(!client.is_closed());
                    // The client is idle: the driver starts the next operation.
                    let op = decisions.next().unwrap_or(0);
                    let streamed = ContentInfo {
                        eight_bit: (op & 4 == 0).then(|| !message.is_ascii()),
                        ..ContentInfo::of(message)
                    };
                    let started = match op % 4 {
                        0 => match client.send(env.clone(), message) {
                            Ok(()) => true,
                            Err(Error::Unsupported { .. }) => false,
                            Err(e) => panic!("send refused on an idle client: {e:?}"),
                        },
                        1 => match client.send_streamed(env.clone(), streamed) {
                            Ok(()) => true,
                            Err(Error::Unsupported { .. }) => false,
                            Err(e) => panic!("send refused on an idle client: {e:?}"),
                        },
                        2 => {
                            client.reset().expect("reset on an idle client");
                            true
                        }
                        _ => {
                            client.quit().expect("quit on an idle client");
                            true
                        }
                    };
                    let out = client.take_output();
                    if trace() {
                        eprintln!("op {}: C: {:?}", op % 4, show(&out));
                    }
                    assert_eq!(started, !out.is_empty(), "an operation without a command");
                    if op % 4 < 2 && out.starts_with(b"RSET") {
                        assert!(
                            rset_allowed,
                            "a send starts with RSET after a success: {:?}",
                            show(&out)
                        );
                    }
                    wire.check(&out, false, pipelining(&client));
                    if !started {
                        // Nothing to do: the driver quits.
                        client.quit().expect("quit on an idle client");
                        let out = client.take_output();
                        assert_eq!(out, b"QUIT\r\n");
                        wire.check(&out, false, pipelining(&client));
                    }
                }
            }
        }
    }
    assert_eq!(
        wire.dot_lines, wire.contents,
        "a lone dot line outside a content's end"
    );
});
