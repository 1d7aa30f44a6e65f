//! The loopback SMTP servers work: raw SMTP over a TcpStream, then what each
//! server says it received.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions, Exim, EximOptions, Received};

const WAIT: Duration = Duration::from_secs(10);

/// A message as a client sends it, before dot-stuffing.
const MESSAGE: &[u8] = b"From: alice@example.test\r\n\
To: bob@example.test\r\n\
Subject: fixture check\r\n\
Message-ID: <fixture-check@example.test>\r\n\
Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n\
\r\n\
Hello.\r\n\
.A line that starts with a dot.\r\n\
..\r\n\
\r\n";

/// A line-based SMTP client that is just enough for these checks.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut client = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        client.expect(220);
        client
    }

    /// Reads a (possibly multi-line) reply; returns its code and text.
    fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read reply");
            assert!(n > 0, "server closed the connection; so far: {text}");
            text.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return (line[..3].parse().expect("reply code"), text);
            }
        }
    }

    fn expect(&mut self, code: u16) -> String {
        let (got, text) = self.reply();
        assert_eq!(got, code, "unexpected reply: {text}");
        text
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    fn command(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Sends the message after DATA's 354, dot-stuffed, with the final dot.
    fn data(&mut self, message: &[u8]) -> (u16, String) {
        let (code, text) = self.command("DATA");
        assert_eq!(code, 354, "DATA: {text}");
        let mut wire = Vec::new();
        for line in message.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        wire.extend_from_slice(b".\r\n");
        self.send(&wire);
        self.reply()
    }
}

/// EHLO, MAIL, an accepted and a refused RCPT, DATA, QUIT; returns EHLO's reply.
fn send_one(port: u16) -> String {
    let mut client = Client::connect(port);
    let ehlo = client.command("EHLO client.test");
    assert_eq!(ehlo.0, 250, "EHLO: {}", ehlo.1);
    assert_eq!(client.command("MAIL FROM:<alice@example.test>").0, 250);
    assert_eq!(client.command("RCPT TO:<bob@example.test>").0, 250);
    let (code, text) = client.command("RCPT TO:<refuse-carol@example.test>");
    assert_eq!(code, 550, "refused recipient: {text}");
    assert!(
        text.starts_with("550 5.1.1 <refuse-carol@example.test>: mailbox unavailable"),
        "{text}"
    );
    let (code, text) = client.command("RCPT TO:<defer-dave@example.test>");
    assert_eq!(code, 450, "deferred recipient: {text}");
    assert!(
        text.starts_with("450 4.2.0 <defer-dave@example.test>: try later"),
        "{text}"
    );
    let (code, text) = client.data(MESSAGE);
    assert_eq!(code, 250, "end of data: {text}");
    assert_eq!(client.command("QUIT").0, 221);
    ehlo.1
}

fn assert_received(received: &Received) {
    assert_eq!(received.mail_from, "alice@example.test");
    assert_eq!(received.rcpt_to, ["bob@example.test"]);
    assert_eq!(
        String::from_utf8_lossy(&received.data),
        String::from_utf8_lossy(MESSAGE),
        "data differs"
    );
    assert_eq!(received.data, MESSAGE);
}

#[test]
fn aiosmtpd_receives_a_message() {
    let server = Aiosmtpd::start();
    send_one(server.port());
    let received = server.wait_for(1, WAIT);
    assert_eq!(received.len(), 1);
    assert_received(&received[0]);
    assert!(received[0].connection > 0);
}

#[test]
fn aiosmtpd_tells_connections_apart() {
    let server = Aiosmtpd::start();
    let mut client = Client::connect(server.port());
    assert_eq!(client.command("EHLO client.test").0, 250);
    for to in ["one@example.test", "two@example.test"] {
        assert_eq!(client.command("MAIL FROM:<alice@example.test>").0, 250);
        assert_eq!(client.command(&format!("RCPT TO:<{to}>")).0, 250);
        assert_eq!(client.data(MESSAGE).0, 250);
    }
    assert_eq!(client.command("QUIT").0, 221);
    send_one(server.port());

    let received = server.wait_for(3, WAIT);
    assert_eq!(received[0].rcpt_to, ["one@example.test"]);
    assert_eq!(received[1].rcpt_to, ["two@example.test"]);
    assert_eq!(received[0].connection, received[1].connection);
    assert_ne!(received[1].connection, received[2].connection);
}

#[test]
fn aiosmtpd_enforces_its_size_limit() {
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        size_limit: Some(1000),
        smtputf8: true,
    });
    let mut client = Client::connect(server.port());
    let ehlo = client.command("EHLO client.test").1;
    assert!(ehlo.contains("SIZE 1000"), "{ehlo}");
    assert!(ehlo.contains("SMTPUTF8"), "{ehlo}");

    // Declared too big: refused at MAIL.
    let (code, text) = client.command("MAIL FROM:<alice@example.test> SIZE=5000");
    assert_eq!(code, 552, "{text}");

    // Undeclared but too big: refused after the data.
    assert_eq!(client.command("MAIL FROM:<alice@example.test>").0, 250);
    assert_eq!(client.command("RCPT TO:<bob@example.test>").0, 250);
    let big = [MESSAGE, "x".repeat(70).as_bytes(), b"\r\n"]
        .concat()
        .repeat(20);
    let (code, text) = client.data(&big);
    assert_eq!(code, 552, "{text}");

    // Within the limit, with its SIZE declared: accepted.
    let (code, text) = client.command(&format!(
        "MAIL FROM:<alice@example.test> SIZE={}",
        MESSAGE.len()
    ));
    assert_eq!(code, 250, "{text}");
    assert_eq!(client.command("RCPT TO:<bob@example.test>").0, 250);
    assert_eq!(client.data(MESSAGE).0, 250);
    assert_eq!(client.command("QUIT").0, 221);

    let received = server.wait_for(1, WAIT);
    assert_eq!(received.len(), 1);
    assert_received(&received[0]);
    assert_eq!(
        received[0].mail_options,
        [format!("SIZE={}", MESSAGE.len())]
    );
}

#[test]
fn exim_receives_a_message() {
    let server = Exim::start();
    let ehlo = send_one(server.port());
    for extension in ["PIPELINING", "8BITMIME", "SIZE", "CHUNKING", "SMTPUTF8"] {
        assert!(ehlo.contains(extension), "EHLO lacks {extension}: {ehlo}");
    }
    let received = server.wait_for(1, WAIT);
    assert_eq!(received.len(), 1, "{}", server.log());
    assert_received(&received[0]);
    assert_eq!(received[0].connection, 0);
}

#[test]
fn exim_delivers_one_message_to_several_recipients_and_by_bdat() {
    let server = Exim::start_with(EximOptions {
        size_limit: Some(1000),
    });
    let mut client = Client::connect(server.port());
    let ehlo = client.command("EHLO client.test").1;
    assert!(ehlo.contains("SIZE 1000"), "{ehlo}");
    assert_eq!(
        client.command("MAIL FROM:<alice@example.test> SIZE=5000").0,
        552
    );

    assert_eq!(client.command("MAIL FROM:<alice@example.test>").0, 250);
    assert_eq!(client.command("RCPT TO:<bob@example.test>").0, 250);
    assert_eq!(client.command("RCPT TO:<carol@example.test>").0, 250);
    assert_eq!(client.data(MESSAGE).0, 250);

    assert_eq!(client.command("MAIL FROM:<>").0, 250);
    assert_eq!(client.command("RCPT TO:<dave@example.test>").0, 250);
    client.send(format!("BDAT {} LAST\r\n", MESSAGE.len()).as_bytes());
    client.send(MESSAGE);
    let (code, text) = client.reply();
    assert_eq!(code, 250, "BDAT: {text}");
    assert_eq!(client.command("QUIT").0, 221);

    let received = server.wait_for(2, WAIT);
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].mail_from, "alice@example.test");
    assert_eq!(
        received[0].rcpt_to,
        ["bob@example.test", "carol@example.test"]
    );
    assert_eq!(received[0].data, MESSAGE);
    assert_eq!(received[1].mail_from, "");
    assert_eq!(received[1].rcpt_to, ["dave@example.test"]);
    assert_eq!(received[1].data, MESSAGE);
}
