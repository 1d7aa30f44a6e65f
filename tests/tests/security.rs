//! The security suite of issue 6, each case through the real component in
//! the real host:
//!
//! - S1 smuggling: no bare CR or LF, and no early `CRLF.CRLF`, on the wire.
//! - S2 CR, LF, NUL or DEL in a command argument: a typed error naming the
//!   field, and nothing written.
//! - S3 address confusion: the header and the envelope name one mailbox.
//! - S4 header injection: refused, or encoded so that no header is added.
//! - S10 secrets never in output (the CLI's trace, receipts and errors).
//! - S11 Bcc never in the data.
//!
//! S8 (reply bounds: endless continuations, a 1 MB line, a late reply, a
//! pipelined first RCPT refused) lives in `faults.rs`; the STARTTLS cases
//! (response injection, stripping, 454, dropped handshake, certificates) in
//! `tls.rs`. All run under `scripts/test`.
//!
//! A scripted server ([`Sink`]) accepts everything and records each
//! command line and the content bytes exactly as they crossed the wire; a
//! [`Watch`] listener tells whether a connection arrived at all.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use mail_parser::{HeaderName, MessageParser, MimeHeaders};
use smtp_mailer_host::{
    Attachment, Credentials, Envelope, Error, ErrorKind, Header, Mailbox, Message, Secret, Server,
    Timeouts,
};
use smtp_mailer_tests::scripted::{Conversation, Scripted};
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions};
use smtp_mailer_tests::support::{assert_no_bcc, loopback, mailer, message, parse, run_cli};
use smtp_mailer_tests::tls::TestPki;

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Recording servers
// ---------------------------------------------------------------------------

/// One mail transaction as a [`Sink`] heard it.
#[derive(Debug, Clone, Default)]
struct Transaction {
    /// The path of MAIL FROM, angle brackets removed.
    mail_from: String,
    /// The path of each RCPT TO, angle brackets removed.
    rcpt_to: Vec<String>,
    /// The bytes after the 354, dot-stuffing and the end mark included.
    wire: Vec<u8>,
}

/// Everything a [`Sink`] heard on its one connection.
#[derive(Debug, Clone, Default)]
struct Transcript {
    /// Every command line, CRLF included, in order (content excluded).
    commands: Vec<String>,
    transactions: Vec<Transaction>,
}

impl Transcript {
    /// The command verbs, upper-cased: `["EHLO", "MAIL", "RCPT", ...]`.
    fn verbs(&self) -> Vec<String> {
        self.commands
            .iter()
            .map(|c| {
                c.split([' ', '\r', '\n'])
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase()
            })
            .collect()
    }

    fn only(&self) -> &Transaction {
        assert_eq!(self.transactions.len(), 1, "{self:#?}");
        &self.transactions[0]
    }
}

/// A scripted server that accepts every command and message on one
/// connection (PIPELINING and 8BITMIME offered) and records them.
struct Sink {
    scripted: Scripted,
    log: Arc<Mutex<Transcript>>,
}

impl Sink {
    fn start() -> Sink {
        let log = Arc::new(Mutex::new(Transcript::default()));
        let shared = log.clone();
        let scripted = Scripted::start(move |c| accept_everything(c, &shared));
        Sink { scripted, log }
    }

    fn port(&self) -> u16 {
        self.scripted.port()
    }

    /// Waits for the client to close; returns the transcript.
    fn finish(self) -> Transcript {
        self.scripted.finish();
        let log = self.log.lock().unwrap();
        log.clone()
    }
}

fn accept_everything(c: &mut Conversation, log: &Mutex<Transcript>) {
    let record = |line: &str| log.lock().unwrap().commands.push(line.to_string());
    c.say("220 sink.test ESMTP\r\n");
    let mut current = Transaction::default();
    loop {
        let line = c.hear_line();
        if line.is_empty() {
            break;
        }
        record(&line);
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            c.say("250-sink.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
        } else if upper.starts_with("MAIL FROM:") {
            current = Transaction {
                mail_from: path_of(&line),
                ..Transaction::default()
            };
            c.say("250 2.1.0 ok\r\n");
        } else if upper.starts_with("RCPT TO:") {
            current.rcpt_to.push(path_of(&line));
            c.say("250 2.1.5 ok\r\n");
        } else if upper == "DATA\r\n" {
            c.say("354 go ahead\r\n");
            current.wire = c.hear_raw_data();
            log.lock()
                .unwrap()
                .transactions
                .push(std::mem::take(&mut current));
            c.say("250 2.0.0 queued\r\n");
        } else if upper == "QUIT\r\n" {
            c.say("221 2.0.0 bye\r\n");
            break;
        } else if upper == "RSET\r\n" || upper == "NOOP\r\n" {
            c.say("250 2.0.0 ok\r\n");
        } else {
            c.say("500 5.5.2 unknown command\r\n");
        }
    }
    c.drain();
}

/// The path of a MAIL or RCPT line: from `<` to the first `>` outside a
/// quoted string, brackets removed.
fn path_of(line: &str) -> String {
    let Some(start) = line.find('<') else {
        return String::new();
    };
    let mut path = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for ch in line[start + 1..].chars() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return path,
            _ => {}
        }
        path.push(ch);
    }
    path
}

/// A listener that records whether anyone connected and, if so, greets them,
/// answers every line with 250 (354 to DATA) and records what they wrote.
struct Watch {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Option<Vec<u8>>>,
}

impl Watch {
    fn start() -> Watch {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || loop {
            match listener.accept() {
                Ok((stream, _)) => return Some(answer_anything(stream)),
                Err(_) if stopped.load(Ordering::SeqCst) => return None,
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        });
        Watch { port, stop, thread }
    }

    /// What the one client wrote, or `None` when nobody connected.
    fn finish(self) -> Option<Vec<u8>> {
        // A connect that the call made is in the backlog by now.
        std::thread::sleep(Duration::from_millis(20));
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

fn answer_anything(stream: TcpStream) -> Vec<u8> {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut heard = Vec::new();
    let _ = writer.write_all(b"220 watch.test ESMTP\r\n");
    let mut in_data = false;
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        heard.extend_from_slice(&line);
        let reply: &[u8] = if in_data {
            if line != b".\r\n" {
                continue;
            }
            in_data = false;
            b"250 ok\r\n"
        } else if line.eq_ignore_ascii_case(b"DATA\r\n") {
            in_data = true;
            b"354 go\r\n"
        } else if line.to_ascii_uppercase().starts_with(b"EHLO") {
            b"250-watch.test\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n"
        } else {
            b"250 ok\r\n"
        };
        let _ = writer.write_all(reply);
    }
    heard
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// Short limits, so that a bug shows as a quick failure, not a hang.
fn quick(port: u16) -> Server {
    let mut server = loopback(port);
    server.timeouts = Timeouts {
        connect: Duration::from_secs(2),
        command: Duration::from_secs(2),
        data: Duration::from_secs(2),
    };
    server
}

fn assert_invalid(result: Result<impl std::fmt::Debug, Error>, field: &str, case: &str) {
    match result {
        Err(Error {
            kind: ErrorKind::InvalidInput { field: got, .. },
            ..
        }) if got == field => {}
        other => panic!("{case}: expected InvalidInput naming {field:?}, got {other:?}"),
    }
}

/// Every bare CR or LF is CRLF; a last line without one gets one.
fn normalised(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < content.len() {
        match content[i] {
            b'\r' if content.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Checks the bytes after a 354: CRLF only, one end mark and at the end;
/// returns the content a server recovers (un-stuffed, end mark removed).
fn unstuff_checked(wire: &[u8], case: &str) -> Vec<u8> {
    let shown = || String::from_utf8_lossy(wire).into_owned();
    for (i, &b) in wire.iter().enumerate() {
        if b == b'\n' {
            assert!(
                i > 0 && wire[i - 1] == b'\r',
                "{case}: bare LF at {i}: {:?}",
                shown()
            );
        }
        if b == b'\r' {
            assert_eq!(
                wire.get(i + 1),
                Some(&b'\n'),
                "{case}: bare CR at {i}: {:?}",
                shown()
            );
        }
    }
    assert!(
        wire == b".\r\n" || wire.ends_with(b"\r\n.\r\n"),
        "{case}: the content does not end with the end mark: {:?}",
        shown()
    );
    let mut content = Vec::new();
    let lines: Vec<&[u8]> = wire.split_inclusive(|&b| b == b'\n').collect();
    let (last, body) = lines.split_last().unwrap();
    assert_eq!(*last, b".\r\n", "{case}");
    for line in body {
        assert_ne!(*line, b".\r\n", "{case}: an early end mark: {:?}", shown());
        content.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    content
}

/// The commands a one-message send must show, and no more: nothing after
/// the content but QUIT, so no smuggled command reached the server.
fn assert_one_transaction(transcript: &Transcript, recipients: usize, case: &str) {
    let mut expected = vec!["EHLO", "MAIL"];
    expected.extend(std::iter::repeat_n("RCPT", recipients));
    expected.extend(["DATA", "QUIT"]);
    assert_eq!(transcript.verbs(), expected, "{case}: {transcript:#?}");
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `check` on every case, then fails listing each case that failed
/// (each failure's own message is printed as it happens).
fn check_each<T: std::panic::RefUnwindSafe>(
    cases: &[T],
    name: impl Fn(&T) -> String,
    check: impl Fn(&T) + std::panic::RefUnwindSafe,
) {
    let failed: Vec<String> = cases
        .iter()
        .filter(|case| std::panic::catch_unwind(|| check(case)).is_err())
        .map(&name)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed: {failed:#?}",
        failed.len(),
        cases.len()
    );
}

fn short(value: &str) -> String {
    format!("{:?}", value.chars().take(60).collect::<String>())
}

// ---------------------------------------------------------------------------
// S1 smuggling
// ---------------------------------------------------------------------------

/// Contents that try to end the data early or carry bare line breaks.
const SMUGGLING: &[&[u8]] = &[
    b"line one\n.\nMAIL FROM:<evil@attacker.test>\n",
    b"line one\n.\r\nRCPT TO:<evil@attacker.test>\r\n",
    b"line one\r.\r\nDATA\r\n",
    b"line one\r\n.\nQUIT\r\n",
    b"line one\r\n.\rRSET\r\n",
    b"lone\rcarriage\rreturns\r",
    b"lone\nline\nfeeds\n",
    b"mixed\r\n\r\r\n\n\r.\n\r..\r\n",
    b".leading dot\r\n..two dots\r\n.\r\n",
    b".",
    b".\r\n",
    b"\r\n.\r\n",
    b"\n.\n",
    b"a proper end mark\r\n.\r\nMAIL FROM:<evil@attacker.test>\r\nRCPT TO:<x@attacker.test>\r\nDATA\r\nevil\r\n.\r\n",
    b"last line without a line break",
    b"last line is a lone dot\r\n.",
    b"ends with a bare CR\r",
];

fn envelope() -> Envelope {
    Envelope {
        reverse_path: "sender@example.test".into(),
        forward_paths: vec!["bob@example.test".into()],
    }
}

#[test]
fn s1_raw_bodies_cannot_smuggle_through_a_one_shot_send() {
    let mut long = vec![b'x'; 65_530];
    long.extend_from_slice(b"\n.\nMAIL FROM:<evil@attacker.test>\n.\r\n");
    let mut cases: Vec<&[u8]> = SMUGGLING.to_vec();
    cases.push(&long);
    for content in cases {
        let case = format!("{:?}", text(&content[..content.len().min(80)]));
        let sink = Sink::start();
        mailer()
            .send_raw(&quick(sink.port()), &envelope(), &content.into())
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        let transcript = sink.finish();
        assert_one_transaction(&transcript, 1, &case);
        let recovered = unstuff_checked(&transcript.only().wire, &case);
        assert_eq!(
            text(&recovered),
            text(&normalised(content)),
            "{case}: the content a server recovers"
        );
    }
}

#[test]
fn s1_raw_bodies_arrive_normalised_at_aiosmtpd_over_one_session() {
    let server = Aiosmtpd::start();
    let mut session = mailer().open_session(&loopback(server.port())).unwrap();
    for content in SMUGGLING {
        session.send_raw(&envelope(), &(*content).into()).unwrap();
    }
    session.close().unwrap();
    let received = server.wait_for(SMUGGLING.len(), WAIT);
    assert_eq!(received.len(), SMUGGLING.len(), "no smuggled message");
    for (got, content) in received.iter().zip(SMUGGLING) {
        assert_eq!(got.mail_from, "sender@example.test");
        assert_eq!(got.rcpt_to, ["bob@example.test"]);
        assert_eq!(text(&got.data), text(&normalised(content)));
    }
}

/// Bodies of built messages: the same attempts in text and in HTML.
fn smuggling_message(body: &str) -> Message {
    Message {
        text: Some(body.to_string()),
        html: Some(format!("<p>{body}</p>")),
        ..message(&["bob@example.test"])
    }
}

/// The decoded body as a reader sees it: CRLF line breaks, the last line
/// break not significant.
fn lines_of(body: &str) -> String {
    String::from_utf8(normalised(body.as_bytes()))
        .unwrap()
        .trim_end_matches("\r\n")
        .to_string()
}

#[test]
fn s1_message_bodies_cannot_smuggle_and_read_back_normalised() {
    let server = Aiosmtpd::start();
    for content in SMUGGLING {
        let body = std::str::from_utf8(content).unwrap();
        let case = format!("{body:?}");
        let msg = smuggling_message(body);

        let sink = Sink::start();
        mailer()
            .send(&quick(sink.port()), &msg)
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        let transcript = sink.finish();
        assert_one_transaction(&transcript, 1, &case);
        let recovered = unstuff_checked(&transcript.only().wire, &case);
        let parsed = parse(&recovered);
        assert_eq!(
            parsed.body_text(0).map(|t| lines_of(&t)),
            Some(lines_of(body)),
            "{case}: text"
        );
        assert_eq!(
            parsed.body_html(0).map(|t| lines_of(&t)),
            Some(lines_of(&format!("<p>{body}</p>"))),
            "{case}: html"
        );

        mailer().send(&loopback(server.port()), &msg).unwrap();
    }
    let received = server.wait_for(SMUGGLING.len(), WAIT);
    assert_eq!(received.len(), SMUGGLING.len(), "no smuggled message");
    for (got, content) in received.iter().zip(SMUGGLING) {
        let body = std::str::from_utf8(content).unwrap();
        assert_eq!(got.rcpt_to, ["bob@example.test"]);
        let parsed = parse(&got.data);
        assert_eq!(
            parsed.body_text(0).map(|t| lines_of(&t)),
            Some(lines_of(body)),
            "{body:?}: text at aiosmtpd"
        );
    }
}

// ---------------------------------------------------------------------------
// S2 control characters in command arguments
// ---------------------------------------------------------------------------

/// CR, LF, NUL and DEL, each as the start of an injected command.
const CONTROLS: [char; 4] = ['\r', '\n', '\0', '\x7f'];

fn injected(c: char) -> String {
    format!("{c}RSET{c}MAIL FROM:<evil@attacker.test>")
}

fn with_credentials(mut server: Server, user: &str, password: &str) -> Server {
    server.credentials = Some(Credentials {
        user: user.into(),
        secret: Secret::Password(password.into()),
        mechanism: None,
    });
    server
}

/// The mutations of a good one-shot send, each with the field it breaks.
fn s2_cases(c: char) -> Vec<(String, Server, Message)> {
    let port = 0; // replaced by the caller
    let good = || message(&["bob@example.test", "carol@example.test"]);
    let bad_address = format!("eve@example.test{}", injected(c));
    let mut cases = Vec::new();
    let mut server = quick(port);
    server.client_name = Some(format!("tests.example{}", injected(c)));
    cases.push(("server.client-name".to_string(), server, good()));
    let mut server = quick(port);
    server.client_name = Some(format!("{c}tests.example"));
    cases.push(("server.client-name".to_string(), server, good()));
    cases.push((
        "server.credentials.user".to_string(),
        with_credentials(quick(port), &format!("alice{}", injected(c)), "pw"),
        good(),
    ));
    cases.push((
        "server.credentials.secret".to_string(),
        with_credentials(quick(port), "alice", &format!("pw{}", injected(c))),
        good(),
    ));
    let mut server = quick(port);
    server.credentials = Some(Credentials {
        user: "alice".into(),
        secret: Secret::OAuth2Token(format!("tok{}", injected(c))),
        mechanism: Some("XOAUTH2".into()),
    });
    cases.push(("server.credentials.secret".to_string(), server, good()));
    let msg = Message {
        from: Mailbox::new(bad_address.clone()),
        ..good()
    };
    cases.push(("from.address".to_string(), quick(port), msg));
    let mut msg = good();
    msg.to[1] = Mailbox::new(bad_address.clone());
    cases.push(("to[1].address".to_string(), quick(port), msg));
    let msg = Message {
        cc: vec![Mailbox::new(format!("{c}cc@example.test"))],
        ..good()
    };
    cases.push(("cc[0].address".to_string(), quick(port), msg));
    let msg = Message {
        bcc: vec![
            Mailbox::new("ok@example.test"),
            Mailbox::new(bad_address.clone()),
        ],
        ..good()
    };
    cases.push(("bcc[1].address".to_string(), quick(port), msg));
    let msg = Message {
        reply_to: vec![Mailbox::new(bad_address)],
        ..good()
    };
    cases.push(("reply-to[0].address".to_string(), quick(port), msg));
    cases
}

#[test]
fn s2_control_characters_in_a_send_are_refused_before_connecting() {
    // The watch sees a good send, so that "no connection" means something.
    let watch = Watch::start();
    mailer()
        .send(&quick(watch.port), &message(&["bob@example.test"]))
        .unwrap();
    let heard = watch.finish().expect("a good send connects");
    assert!(text(&heard).starts_with("EHLO tests.example\r\n"));

    for c in CONTROLS {
        for (field, mut server, msg) in s2_cases(c) {
            let case = format!("{field} with {c:?}");
            let watch = Watch::start();
            server.port = watch.port;
            assert_invalid(mailer().send(&server, &msg), &field, &case);
            if let Some(heard) = watch.finish() {
                panic!("{case}: the client connected and wrote {:?}", text(&heard));
            }
        }
    }
}

#[test]
fn s2_control_characters_in_a_raw_envelope_are_refused_before_connecting() {
    for c in CONTROLS {
        let bad = format!("eve@example.test{}", injected(c));
        let cases = [
            (
                "envelope.reverse-path",
                Envelope {
                    reverse_path: bad.clone(),
                    forward_paths: vec!["bob@example.test".into()],
                },
            ),
            (
                "envelope.forward-paths[1]",
                Envelope {
                    reverse_path: "sender@example.test".into(),
                    forward_paths: vec!["bob@example.test".into(), bad.clone()],
                },
            ),
            (
                "envelope.forward-paths[0]",
                Envelope {
                    reverse_path: "sender@example.test".into(),
                    forward_paths: vec![format!("{c}bob@example.test")],
                },
            ),
        ];
        for (field, envelope) in cases {
            let case = format!("{field} with {c:?}");
            let watch = Watch::start();
            assert_invalid(
                mailer().send_raw(
                    &quick(watch.port),
                    &envelope,
                    &b"Subject: x\r\n\r\nx\r\n"[..].into(),
                ),
                field,
                &case,
            );
            if let Some(heard) = watch.finish() {
                panic!("{case}: the client connected and wrote {:?}", text(&heard));
            }
        }
    }
}

#[test]
fn s2_control_characters_in_session_settings_are_refused_before_connecting() {
    for c in CONTROLS {
        for (field, mut server, _) in s2_cases(c)
            .into_iter()
            .filter(|(field, ..)| field.starts_with("server."))
        {
            let case = format!("open_session: {field} with {c:?}");
            let watch = Watch::start();
            server.port = watch.port;
            assert_invalid(mailer().open_session(&server).map(|_| ()), &field, &case);
            if let Some(heard) = watch.finish() {
                panic!("{case}: the client connected and wrote {:?}", text(&heard));
            }
        }
    }
}

#[test]
fn s2_control_characters_in_a_session_send_write_nothing_and_keep_the_session() {
    let sink = Sink::start();
    let mut session = mailer().open_session(&quick(sink.port())).unwrap();
    let mut refused = 0;
    for c in CONTROLS {
        for (field, _, msg) in s2_cases(c)
            .into_iter()
            .filter(|(field, ..)| !field.starts_with("server."))
        {
            assert_invalid(session.send(&msg), &field, &format!("{field} with {c:?}"));
            refused += 1;
        }
        let bad = format!("eve@example.test{}", injected(c));
        let raw = [
            (
                "envelope.reverse-path",
                Envelope {
                    reverse_path: bad.clone(),
                    forward_paths: vec!["bob@example.test".into()],
                },
            ),
            (
                "envelope.forward-paths[0]",
                Envelope {
                    reverse_path: "sender@example.test".into(),
                    forward_paths: vec![bad],
                },
            ),
        ];
        for (field, envelope) in raw {
            assert_invalid(
                session.send_raw(&envelope, &b"x\r\n"[..].into()),
                field,
                &format!("session {field} with {c:?}"),
            );
            refused += 1;
        }
    }
    assert!(refused > 20);
    // The session is still good, and carries a message.
    session.send(&message(&["bob@example.test"])).unwrap();
    session.close().unwrap();
    let transcript = sink.finish();
    assert_one_transaction(&transcript, 1, "after the refused sends");
    let mail = &transcript.commands[1];
    assert!(
        mail.starts_with("MAIL FROM:<sender@example.test>"),
        "{mail:?}"
    );
}

#[test]
fn s2_an_auth_mechanism_with_control_characters_is_refused_before_connecting() {
    // The mechanism is a command argument too (`AUTH <mechanism>`).
    for c in CONTROLS {
        let case = format!("server.credentials.mechanism with {c:?}");
        let watch = Watch::start();
        let mut server = quick(watch.port);
        server.credentials = Some(Credentials {
            user: "alice".into(),
            secret: Secret::Password("pw".into()),
            mechanism: Some(format!("PLAIN{}", injected(c))),
        });
        let result = mailer().send(&server, &message(&["bob@example.test"]));
        let heard = watch.finish().map(|h| text(&h));
        // Never an injected command, whatever else happens.
        let shown = heard.clone().unwrap_or_default();
        assert!(
            !shown.contains("AUTH") && !shown.contains("MAIL") && !shown.contains("RSET"),
            "{case}: {shown:?} ({result:?})"
        );
        assert_invalid(result, "server.credentials.mechanism", &case);
        assert_eq!(heard, None, "{case}: the client connected");
    }
}

// ---------------------------------------------------------------------------
// S3 address confusion
// ---------------------------------------------------------------------------

/// Splits what a [`Watch`] heard into command lines and the content of
/// the first message (un-stuffed, end mark removed).
fn split_heard(heard: &[u8]) -> (Vec<String>, Vec<u8>) {
    let mut commands = Vec::new();
    let mut content = Vec::new();
    let mut in_data = false;
    for line in heard.split_inclusive(|&b| b == b'\n') {
        if in_data {
            if line == b".\r\n" {
                in_data = false;
            } else {
                content.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            }
            continue;
        }
        let line = text(line);
        in_data = line.eq_ignore_ascii_case("DATA\r\n");
        commands.push(line);
    }
    (commands, content)
}

/// A mailbox compared by meaning: the local part without its quoting, and
/// the domain in lower case.
fn mailbox_key(address: &str) -> (String, String) {
    let (local, domain) = address
        .rsplit_once('@')
        .unwrap_or_else(|| panic!("{address:?} has no @"));
    let local = match local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or('\\')
                } else {
                    c
                });
            }
            out
        }
        None => local.to_string(),
    };
    (local, domain.to_ascii_lowercase())
}

/// The unfolded value of the first header named `name` in `data`.
fn raw_header(data: &[u8], name: &str) -> Option<String> {
    let data = text(data);
    let head = data.split("\r\n\r\n").next().unwrap_or("");
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", "\t");
    unfolded.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// Quoted local parts that hold what a naive parser splits on.
const QUOTED: &[&str] = &[
    r#""a@b"@example.test"#,
    r#""a>b"@example.test"#,
    r#""john doe"@example.test"#,
    r#""a\"b"@example.test"#,
    r#""<evil@attacker.test>"@example.test"#,
    r#""a,b"@example.test"#,
    r#""(x)"@example.test"#,
    r#""a>RCPT TO:<evil@attacker.test"@example.test"#,
];

/// Addresses with comments, brackets or unquoted specials.
const CONFUSING: &[&str] = &[
    "john(comment)@example.test",
    "(x)john@example.test",
    "john@example.test (x)",
    "john@example.test(x)",
    "john@(x)example.test",
    "John <john@example.test>",
    "<john@example.test>",
    "a@b@example.test",
    "a>b@example.test",
    "john doe@example.test",
    "\"unterminated@example.test",
    "john@example.test>",
    "john@example.test, eve@attacker.test",
    "john@example.test;eve@attacker.test",
];

/// Sends with `address` as To (and, when `as_from`, as From too); either a
/// refusal naming the field and no connection, or one mailbox in the
/// envelope and the header.
fn assert_one_mailbox(address: &str, as_from: bool) -> bool {
    let watch = Watch::start();
    let msg = Message {
        from: if as_from {
            Mailbox::named("Sender", address)
        } else {
            Mailbox::new("sender@example.test")
        },
        to: vec![Mailbox::named("Reader", address)],
        ..message(&[])
    };
    let result = mailer().send(&quick(watch.port), &msg);
    let heard = watch.finish();
    let field = if as_from {
        "from.address"
    } else {
        "to[0].address"
    };
    if let Err(e) = &result {
        assert_invalid(result.clone(), field, address);
        assert!(
            heard.is_none(),
            "{address}: refused, but the client connected"
        );
        eprintln!("refused {address:?}: {}", e.message);
        return false;
    }
    let heard = heard.expect("an accepted send connects");
    let (commands, content) = split_heard(&heard);
    let rcpt: Vec<String> = commands
        .iter()
        .filter(|c| c.starts_with("RCPT TO:"))
        .map(|c| path_of(c))
        .collect();
    assert_eq!(rcpt, [address], "{address}: the envelope: {commands:?}");
    let parsed = parse(&content);
    let to: Vec<_> = parsed.to().map(|a| a.iter().collect()).unwrap_or_default();
    assert_eq!(to.len(), 1, "{address}: To names one mailbox: {to:?}");
    assert_eq!(to[0].name(), Some("Reader"), "{address}");
    let header_address = to[0].address().unwrap_or_default();
    assert_eq!(
        mailbox_key(header_address),
        mailbox_key(address),
        "{address}: To says {header_address:?}; raw {:?}",
        raw_header(&content, "To")
    );
    assert!(
        raw_header(&content, "To").is_some_and(|v| v.contains(address)),
        "{address}: the raw To header: {:?}",
        raw_header(&content, "To")
    );
    if as_from {
        let mail: Vec<String> = commands
            .iter()
            .filter(|c| c.starts_with("MAIL FROM:"))
            .map(|c| path_of(c))
            .collect();
        assert_eq!(mail, [address], "{address}: MAIL FROM");
        let from: Vec<_> = parsed
            .from()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        assert_eq!(from.len(), 1, "{address}: From names one mailbox: {from:?}");
        assert_eq!(
            mailbox_key(from[0].address().unwrap_or_default()),
            mailbox_key(address),
            "{address}: From"
        );
    }
    true
}

#[test]
fn s3_quoted_local_parts_name_one_mailbox_in_header_and_envelope() {
    // Each address in To, then in From and To; every failure is listed.
    let mut failures = Vec::new();
    for address in QUOTED {
        for as_from in [false, true] {
            let outcome = std::panic::catch_unwind(|| assert_one_mailbox(address, as_from));
            match outcome {
                Ok(accepted) => eprintln!(
                    "{address} (as_from: {as_from}): {}",
                    if accepted {
                        "accepted, one mailbox"
                    } else {
                        "refused"
                    }
                ),
                Err(_) => failures.push(format!("{address} (as_from: {as_from})")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "header and envelope disagree (see the panics above) for: {failures:#?}"
    );
}

#[test]
fn s3_comments_and_unquoted_specials_are_refused() {
    for address in CONFUSING {
        let watch = Watch::start();
        let result = mailer().send(&quick(watch.port), &message(&[address]));
        assert_invalid(result, "to[0].address", address);
        assert!(watch.finish().is_none(), "{address}: the client connected");
        let envelope = Envelope {
            reverse_path: "sender@example.test".into(),
            forward_paths: vec![address.to_string()],
        };
        let watch = Watch::start();
        let result = mailer().send_raw(&quick(watch.port), &envelope, &b"x\r\n"[..].into());
        assert_invalid(result, "envelope.forward-paths[0]", address);
        assert!(watch.finish().is_none(), "{address}: the client connected");
    }
}

// ---------------------------------------------------------------------------
// S4 header injection
// ---------------------------------------------------------------------------

/// Payloads that start a new header line.
fn header_breaks() -> Vec<String> {
    ["\r\n", "\n", "\r", "\0", "\x7f", "\r\n\t"]
        .iter()
        .map(|b| format!("x{b}Bcc: victim@attacker.test{b}X-Injected: yes"))
        .collect()
}

fn with_attachment(filename: &str, content_id: Option<&str>) -> Message {
    Message {
        html: Some("<p>hi</p>".into()),
        attachments: vec![Attachment {
            filename: filename.into(),
            content_type: "text/plain".into(),
            content: b"attached".to_vec().into(),
            content_id: content_id.map(str::to_string),
        }],
        ..message(&["bob@example.test"])
    }
}

fn with_header(name: &str, value: &str) -> Message {
    Message {
        headers: vec![Header {
            name: name.into(),
            value: value.into(),
        }],
        ..message(&["bob@example.test"])
    }
}

#[test]
fn s4_line_breaks_and_nul_in_header_fields_are_refused_before_connecting() {
    for bad in header_breaks() {
        let named = |name: &str| Mailbox::named(bad.clone(), name);
        let cases: Vec<(&str, Message)> = vec![
            (
                "subject",
                Message {
                    subject: bad.clone(),
                    ..message(&["bob@example.test"])
                },
            ),
            (
                "from.name",
                Message {
                    from: named("sender@example.test"),
                    ..message(&["bob@example.test"])
                },
            ),
            (
                "to[0].name",
                Message {
                    to: vec![named("bob@example.test")],
                    ..message(&[])
                },
            ),
            (
                "cc[0].name",
                Message {
                    cc: vec![named("carol@example.test")],
                    ..message(&["bob@example.test"])
                },
            ),
            (
                "bcc[0].name",
                Message {
                    bcc: vec![named("dave@example.test")],
                    ..message(&["bob@example.test"])
                },
            ),
            (
                "reply-to[0].name",
                Message {
                    reply_to: vec![named("replies@example.test")],
                    ..message(&["bob@example.test"])
                },
            ),
            ("attachments[0].filename", with_attachment(&bad, None)),
            (
                "attachments[0].content-id",
                with_attachment("a.png", Some(&format!("id@example.test{bad}"))),
            ),
            (
                "headers[0].name",
                with_header(&format!("X-Custom{bad}"), "v"),
            ),
            ("headers[0].value", with_header("X-Custom", &bad)),
            (
                "message-id",
                Message {
                    message_id: Some(format!("id@example.test{bad}")),
                    ..message(&["bob@example.test"])
                },
            ),
        ];
        for (field, msg) in cases {
            let case = format!("{field} = {bad:?}");
            let watch = Watch::start();
            assert_invalid(mailer().send(&quick(watch.port), &msg), field, &case);
            assert!(watch.finish().is_none(), "{case}: the client connected");
            assert_invalid(mailer().build_message(&msg), field, &case);
        }
    }
}

#[test]
fn s4_malformed_ids_and_header_names_are_refused() {
    let ids = [
        "<id@example.test>",
        "id@example.test>",
        "a b@example.test",
        "id",
        "",
    ];
    for id in ids {
        let msg = Message {
            message_id: Some(id.into()),
            ..message(&["bob@example.test"])
        };
        assert_invalid(mailer().build_message(&msg), "message-id", id);
        if !id.is_empty() && id.contains('@') {
            let msg = with_attachment("a.png", Some(id));
            assert_invalid(
                mailer().build_message(&msg),
                "attachments[0].content-id",
                id,
            );
        }
    }
    for name in [
        "X Custom",
        "X:Custom",
        "Bcc",
        "bcc",
        "Subject",
        "To",
        "From",
        "Message-ID",
        "Content-Type",
        "X-Ü",
        "",
    ] {
        assert_invalid(
            mailer().build_message(&with_header(name, "v")),
            "headers[0].name",
            name,
        );
    }
}

/// The header names of every part, lower-cased.
fn header_names(data: &[u8]) -> Vec<Vec<String>> {
    parse(data)
        .parts
        .iter()
        .map(|part| {
            part.headers
                .iter()
                .map(|h| h.name().to_ascii_lowercase())
                .collect()
        })
        .collect()
}

/// Sends `msg` to a [`Watch`]; returns the content it recovered.
fn sent_content(msg: &Message) -> Vec<u8> {
    let watch = Watch::start();
    mailer()
        .send(&quick(watch.port), msg)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let heard = watch.finish().expect("the send connects");
    let (_, content) = split_heard(&heard);
    content
}

/// No part holds a header the message did not ask for, every header line
/// is short and ASCII, and no line of the head starts with an injected name.
fn assert_no_injected_header(data: &[u8], custom: &[&str], case: &str) {
    let allowed = [
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
    for (i, names) in header_names(data).iter().enumerate() {
        for name in names {
            assert!(
                allowed.contains(&name.as_str())
                    || custom.iter().any(|c| c.eq_ignore_ascii_case(name)),
                "{case}: part {i} has a header {name:?}: {names:?}\n{}",
                text(data)
            );
        }
    }
    let shown = text(data);
    let head = shown.split("\r\n\r\n").next().unwrap_or("");
    for line in head.split("\r\n") {
        assert!(line.is_ascii(), "{case}: a non-ASCII header line {line:?}");
        assert!(
            line.len() <= 998,
            "{case}: a header line of {} octets",
            line.len()
        );
    }
    for line in shown.split("\r\n") {
        let lower = line.to_ascii_lowercase();
        assert!(
            !lower.starts_with("bcc:") && !lower.starts_with("x-injected:"),
            "{case}: an injected header line {line:?}"
        );
    }
}

/// Like [`parse`], but decodes RFC 2047 in `custom` too: with no header
/// configured, mail-parser leaves unknown headers raw whatever
/// `default_header_text` says.
fn parse_decoding<'a>(data: &'a [u8], custom: &str) -> mail_parser::Message<'a> {
    MessageParser::new()
        .with_minimal_headers()
        .with_mime_headers()
        .with_address_headers()
        .with_date_headers()
        .with_message_ids()
        .header_text(HeaderName::Other(custom.to_string().into()))
        .default_header_text()
        .parse(data)
        .expect("the message parses")
}

/// Values that must travel as text, never as headers: long, non-ASCII,
/// holding colons, header names, quotes. (Encoded-word look-alikes are
/// refused: see `s4_encoded_word_look_alikes_are_refused`.)
fn tricky_values() -> Vec<String> {
    vec![
        "Bcc: victim@attacker.test".into(),
        "plain X-Injected: yes\tBcc: victim@attacker.test".into(),
        format!("{} Bcc: victim@attacker.test", "long ".repeat(300)),
        format!("{}Bcc:victim@attacker.test", "x".repeat(1200)),
        "Grüße — Bcc: victim@attacker.test 你好 🎉".into(),
        format!("{} X-Injected: yes", "Ünïcödé ".repeat(80)),
        "\"quoted\" <evil@attacker.test>, Bcc: victim@attacker.test".into(),
        "a\\\"b; filename=\"evil.exe\"".into(),
    ]
}

#[test]
fn s4_long_and_non_ascii_subjects_and_custom_headers_add_no_header() {
    check_each(
        &tricky_values(),
        |v| short(v),
        |value| {
            let case = short(value);
            let msg = Message {
                subject: value.clone(),
                headers: vec![Header {
                    name: "X-Custom".into(),
                    value: value.clone(),
                }],
                ..message(&["bob@example.test"])
            };
            let data = sent_content(&msg);
            assert_no_injected_header(&data, &["X-Custom"], &case);
            let parsed = parse_decoding(&data, "X-Custom");
            assert_eq!(parsed.to().map(|a| a.iter().count()), Some(1), "{case}");
            assert_eq!(
                parsed.subject(),
                Some(value.as_str()),
                "{case}: subject; raw {:?}",
                raw_header(&data, "Subject")
            );
            assert_eq!(
                parsed.header("X-Custom").and_then(|h| h.as_text()),
                Some(value.as_str()),
                "{case}: X-Custom; raw {:?}",
                raw_header(&data, "X-Custom")
            );
        },
    );
}

#[test]
fn s4_display_names_stay_display_names() {
    check_each(
        &tricky_values(),
        |v| short(v),
        |value| {
            let case = short(value);
            let msg = Message {
                from: Mailbox::named(value.clone(), "sender@example.test"),
                to: vec![Mailbox::named(value.clone(), "bob@example.test")],
                cc: vec![Mailbox::named(value.clone(), "carol@example.test")],
                reply_to: vec![Mailbox::named(value.clone(), "replies@example.test")],
                ..message(&[])
            };
            let data = sent_content(&msg);
            assert_no_injected_header(&data, &[], &case);
            let parsed = parse(&data);
            for (header, list, address) in [
                ("From", parsed.from(), "sender@example.test"),
                ("To", parsed.to(), "bob@example.test"),
                ("Cc", parsed.cc(), "carol@example.test"),
                ("Reply-To", parsed.reply_to(), "replies@example.test"),
            ] {
                let mailboxes: Vec<_> = list.map(|a| a.iter().collect()).unwrap_or_default();
                assert_eq!(
                    mailboxes.len(),
                    1,
                    "{case}: {header} names one mailbox: {mailboxes:?}; raw {:?}",
                    raw_header(&data, header)
                );
                assert_eq!(mailboxes[0].address(), Some(address), "{case}: {header}");
                assert_eq!(
                    mailboxes[0].name(),
                    Some(value.as_str()),
                    "{case}: {header} name; raw {:?}",
                    raw_header(&data, header)
                );
            }
        },
    );
}

#[test]
fn s4_attachment_filenames_stay_one_parameter() {
    let mut names = tricky_values();
    names.extend([
        "a.txt\"; filename=\"evil.exe".to_string(),
        "a.txt; name=evil.exe".to_string(),
        "a.txt\\".to_string(),
        format!("{}.pdf", "Übersicht März ".repeat(30)),
    ]);
    check_each(
        &names,
        |v| short(v),
        |filename| {
            let case = short(filename);
            let msg = with_attachment(filename, None);
            let data = sent_content(&msg);
            assert_no_injected_header(&data, &[], &case);
            let parsed = parse(&data);
            let attachments: Vec<_> = parsed.attachments().collect();
            assert_eq!(attachments.len(), 1, "{case}");
            assert_eq!(attachments[0].contents(), b"attached", "{case}");
            assert_eq!(
                attachments[0].attachment_name(),
                Some(filename.as_str()),
                "{case}: the filename; the part's head:\n{}",
                text(&data)
                    .split("\r\n\r\n")
                    .find(|h| h.contains("attachment"))
                    .unwrap_or("")
            );
        },
    );
}

#[test]
fn s4_message_and_content_ids_arrive_as_given() {
    let msg = Message {
        message_id: Some("unique.1+x=y@example.test".into()),
        ..with_attachment("logo.png", Some("logo.2$&@example.test"))
    };
    let data = sent_content(&msg);
    assert_no_injected_header(&data, &[], "ids");
    let parsed = parse(&data);
    assert_eq!(parsed.message_id(), Some("unique.1+x=y@example.test"));
    let part = parsed.attachments().next().unwrap();
    assert_eq!(part.content_id(), Some("logo.2$&@example.test"));
}

// ---------------------------------------------------------------------------
// S10 secrets never in output
// ---------------------------------------------------------------------------

const USER: &str = "alice";
const PASSWORD: &str = "Tr0ub4dor-x9Q-secret";

/// Every form of `password` that AUTH PLAIN or LOGIN puts on the wire.
fn secret_forms(password: &str) -> Vec<String> {
    vec![
        password.to_string(),
        b64(password.as_bytes()),
        b64(format!("\0{USER}\0{password}").as_bytes()),
        b64(format!("{USER}\0{USER}\0{password}").as_bytes()),
    ]
}

fn assert_no_secret(out: &Output, password: &str, case: &str) -> String {
    let all = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for secret in secret_forms(password) {
        assert!(
            !all.contains(&secret),
            "{case}: {secret:?} appears in\n{all}"
        );
    }
    all
}

#[test]
fn s10_the_cli_never_prints_the_password_or_its_encodings() {
    let pki = TestPki::generate();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        auth: Some((USER.into(), PASSWORD.into())),
        ..Default::default()
    });
    let ca = pki.ca.to_str().unwrap().to_string();
    let port = server.port();
    let plain_url = format!("smtp://{USER}@localhost:{port}");
    let secret_url = |password: &str| format!("smtp://{USER}:{password}@localhost:{port}");
    let send = |url: &str, mechanism: &str, output: &str, env: &[(&str, &str)]| {
        run_cli(
            &[
                "send",
                "-v",
                "--server",
                url,
                "--connect-address",
                "127.0.0.1",
                "--ca-file",
                &ca,
                "--auth",
                mechanism,
                "--from",
                "a@example.test",
                "--to",
                "b@example.test",
                "--text",
                "over TLS",
                "--output",
                output,
            ],
            None,
            env,
        )
    };
    let mut delivered = 0;
    for mechanism in ["PLAIN", "LOGIN"] {
        for output in ["human", "json"] {
            // The password from the environment, then from the URL.
            for (url, env) in [
                (plain_url.clone(), vec![("SMTP_PASSWORD", PASSWORD)]),
                (secret_url(PASSWORD), vec![]),
            ] {
                let case = format!(
                    "{mechanism}, {output}, password in {}",
                    if env.is_empty() { "URL" } else { "env" }
                );
                let out = send(&url, mechanism, output, &env);
                let all = assert_no_secret(&out, PASSWORD, &case);
                assert_eq!(out.status.code(), Some(0), "{case}: {all}");
                assert!(
                    all.contains("C: STARTTLS"),
                    "{case}: the trace is on: {all}"
                );
                assert!(all.contains("AUTH"), "{case}: {all}");
                delivered += 1;
            }
        }
    }
    // A wrong password: the 535 is shown, neither password is.
    let wrong = "Wr0ng-x9Q-secret";
    for output in ["human", "json"] {
        for (url, env) in [
            (plain_url.clone(), vec![("SMTP_PASSWORD", wrong)]),
            (secret_url(wrong), vec![]),
        ] {
            let case = format!("wrong password, {output}, {url}");
            let out = send(&url, "PLAIN", output, &env);
            let all = assert_no_secret(&out, wrong, &case);
            assert_no_secret(&out, PASSWORD, &case);
            assert_eq!(out.status.code(), Some(69), "{case}: {all}");
            assert!(all.contains("535"), "{case}: {all}");
        }
    }
    // A refused connection and a refused input still hold a URL with the
    // password: neither error shows it.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    for output in ["human", "json"] {
        let url = format!("smtp://{USER}:{PASSWORD}@localhost:{closed}");
        let out = run_cli(
            &[
                "send",
                "-v",
                "--server",
                &url,
                "--connect-address",
                "127.0.0.1",
                "--from",
                "a@example.test",
                "--to",
                "b@example.test",
                "--text",
                "x",
                "--output",
                output,
            ],
            None,
            &[],
        );
        let all = assert_no_secret(&out, PASSWORD, &format!("refused connection, {output}"));
        assert_ne!(out.status.code(), Some(0), "{all}");
        let out = run_cli(
            &[
                "send",
                "-v",
                "--server",
                &secret_url(PASSWORD),
                "--connect-address",
                "127.0.0.1",
                "--from",
                "a@example.test",
                "--to",
                "not an address",
                "--text",
                "x",
                "--output",
                output,
            ],
            None,
            &[],
        );
        let all = assert_no_secret(&out, PASSWORD, &format!("invalid input, {output}"));
        assert_eq!(out.status.code(), Some(65), "{all}");
    }
    assert_eq!(server.wait_for(delivered, WAIT).len(), delivered);
}

#[test]
fn s10_debug_and_errors_of_the_library_hide_the_secret() {
    let token = "ya29.tok3n-x9Q-secret";
    let mut server = loopback(25);
    server.credentials = Some(Credentials {
        user: USER.into(),
        secret: Secret::Password(PASSWORD.into()),
        mechanism: Some("PLAIN".into()),
    });
    let shown = format!("{server:?} {server:#?} {:?}", server.credentials);
    for secret in secret_forms(PASSWORD) {
        assert!(!shown.contains(&secret), "{shown}");
    }
    assert!(shown.contains("<redacted>"), "{shown}");
    let oauth = Secret::OAuth2Token(token.into());
    assert!(!format!("{oauth:?} {oauth:#?}").contains(token));

    // A wrong password against aiosmtpd: the error in every form holds no
    // secret.
    let pki = TestPki::generate();
    let aiosmtpd = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        auth: Some((USER.into(), "the-right-one".into())),
        ..Default::default()
    });
    let mut settings = Server::new("localhost", aiosmtpd.port());
    settings.connect_address = Some("127.0.0.1".into());
    settings.ca_pem = Some(pki.ca_pem.clone());
    settings.client_name = Some("tests.example".into());
    settings.credentials = server.credentials.clone();
    // The trace itself (on this process's standard error, which a test
    // cannot read) is checked through the CLI's -v above.
    let err = mailer()
        .send(&settings, &message(&["bob@example.test"]))
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Authentication(_)), "{err:?}");
    let shown = format!(
        "{err} {err:?} {} {settings:?}",
        serde_json::to_string(&err).unwrap()
    );
    for secret in secret_forms(PASSWORD) {
        assert!(!shown.contains(&secret), "{secret:?} in {shown}");
    }
}

// ---------------------------------------------------------------------------
// S11 Bcc never in the data
// ---------------------------------------------------------------------------

const BCC: [&str; 3] = [
    "hidden-one@example.test",
    "hidden-two@example.test",
    "hidden-three@example.test",
];

fn bcc_message(to: &[&str], cc: &[&str]) -> Message {
    Message {
        cc: cc.iter().map(|a| Mailbox::new(*a)).collect(),
        bcc: BCC
            .iter()
            .enumerate()
            .map(|(i, a)| Mailbox::named(format!("Secret Name {i}"), *a))
            .collect(),
        ..message(to)
    }
}

fn assert_bcc_hidden(data: &[u8], rcpt_to: &[String], to: &[&str], cc: &[&str], case: &str) {
    assert_no_bcc(data, &BCC);
    let shown = text(data);
    assert!(
        !shown.contains("Secret Name"),
        "{case}: a Bcc name is in\n{shown}"
    );
    assert!(parse(data).bcc().is_none(), "{case}");
    let mut expected: Vec<String> = to.iter().chain(cc).map(|a| a.to_string()).collect();
    expected.extend(BCC.iter().map(|a| a.to_string()));
    assert_eq!(rcpt_to, expected, "{case}: the envelope");
}

#[test]
fn s11_bcc_is_in_the_envelope_only() {
    let shapes: [(&[&str], &[&str]); 4] = [
        (&["bob@example.test"], &["carol@example.test"]),
        (&["bob@example.test"], &[]),
        (&[], &["carol@example.test"]),
        (&[], &[]),
    ];
    let server = Aiosmtpd::start();
    // One-shot sends, then the same messages over one session.
    for (to, cc) in shapes {
        mailer()
            .send(&loopback(server.port()), &bcc_message(to, cc))
            .unwrap();
    }
    let mut session = mailer().open_session(&loopback(server.port())).unwrap();
    for (to, cc) in shapes {
        let report = session.send(&bcc_message(to, cc)).unwrap();
        assert_eq!(report.recipients.len(), to.len() + cc.len() + BCC.len());
    }
    session.close().unwrap();
    let received = server.wait_for(2 * shapes.len(), WAIT);
    for (i, got) in received.iter().enumerate() {
        let (to, cc) = shapes[i % shapes.len()];
        let case = format!("message {i}: to {to:?}, cc {cc:?}");
        assert_bcc_hidden(&got.data, &got.rcpt_to, to, cc, &case);
    }

    // On the wire, before any server could drop a header.
    for (to, cc) in shapes {
        let sink = Sink::start();
        mailer()
            .send(&quick(sink.port()), &bcc_message(to, cc))
            .unwrap();
        let transcript = sink.finish();
        let t = transcript.only();
        let data = unstuff_checked(&t.wire, "bcc");
        assert_bcc_hidden(&data, &t.rcpt_to, to, cc, &format!("wire: {to:?} {cc:?}"));
        assert_eq!(t.mail_from, "sender@example.test");
    }
}

/// Text shaped like an RFC 2047 encoded word would be decoded by readers into
/// something other than what the caller gave (a spoofed subject, name or file
/// name): it is refused, naming the field, before anything is sent.
#[test]
fn s4_encoded_word_look_alikes_are_refused() {
    let look_alike = "=?utf-8?q?evil.exe?=";
    let cases: Vec<(&str, Message)> = vec![
        (
            "subject",
            Message {
                subject: look_alike.into(),
                ..message(&["bob@example.test"])
            },
        ),
        (
            "headers[0].value",
            Message {
                headers: vec![Header {
                    name: "X-Custom".into(),
                    value: format!("see {look_alike}"),
                }],
                ..message(&["bob@example.test"])
            },
        ),
        (
            "to[0].name",
            Message {
                to: vec![Mailbox::named(look_alike, "bob@example.test")],
                ..message(&[])
            },
        ),
        ("attachments[0].filename", with_attachment(look_alike, None)),
    ];
    for (field, msg) in cases {
        let watch = Watch::start();
        let err = mailer().send(&quick(watch.port), &msg).unwrap_err();
        assert!(
            matches!(&err.kind, ErrorKind::InvalidInput { field: f, .. } if f == field),
            "{field}: {err:?}"
        );
        assert!(
            err.message.contains("encoded word"),
            "{field}: {}",
            err.message
        );
        assert!(watch.finish().is_none(), "{field}: nothing may be sent");
    }
}
