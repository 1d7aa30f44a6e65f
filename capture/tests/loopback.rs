//! Transcripts over real loopback TCP connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use smtp_mailer_capture::{CaptureOptions, CaptureServer};

const WAIT: Duration = Duration::from_secs(10);

/// A minimal SMTP client for transcripts.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects and checks the greeting.
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut client = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = client.reply();
        assert_eq!(
            greeting,
            "220 smtp-mailer-capture ESMTP smtp-mailer capture\r\n"
        );
        client
    }

    /// Writes raw bytes.
    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Reads one (possibly multi-line) reply.
    fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read reply");
            assert!(n > 0, "connection closed; got so far: {reply:?}");
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    /// Sends one command line and returns the reply.
    fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Whether the server closed the connection (nothing more to read).
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok() && rest.is_empty()
    }
}

fn start(options: CaptureOptions) -> CaptureServer {
    CaptureServer::start(options).expect("server starts")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smtp-capture-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_normal_send() {
    let server = start(CaptureOptions::default());
    let mut c = Client::connect(server.local_addr());
    let ehlo = c.command("EHLO client.example");
    assert_eq!(
        ehlo,
        "250-smtp-mailer-capture greets client.example\r\n250-PIPELINING\r\n\
         250-SIZE 36700160\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n"
    );
    assert_eq!(
        c.command("MAIL FROM:<a@x.example> BODY=8BITMIME"),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(c.command("RCPT TO:<b@y.example>"), "250 2.1.5 Ok\r\n");
    assert_eq!(c.command("DATA"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    c.send(b"Subject: hi\r\n\r\nHello\r\n.\r\n");
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 1\r\n");
    assert_eq!(c.command("QUIT"), "221 2.0.0 Bye\r\n");
    assert!(c.closed());

    let messages = server.wait_for(1, WAIT);
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!((m.id, m.connection), (1, 1));
    assert_eq!(m.mail_from, "a@x.example");
    assert_eq!(m.rcpt_to, ["b@y.example"]);
    assert_eq!(m.data, b"Subject: hi\r\n\r\nHello\r\n");
    server.shutdown();
}

#[test]
fn pipelined_send_in_one_write() {
    let server = start(CaptureOptions::default());
    let mut c = Client::connect(server.local_addr());
    c.send(b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n");
    assert!(c.reply().ends_with("250 ENHANCEDSTATUSCODES\r\n"));
    assert_eq!(c.reply(), "250 2.1.0 Ok\r\n");
    assert_eq!(c.reply(), "250 2.1.5 Ok\r\n");
    assert_eq!(c.reply(), "250 2.1.5 Ok\r\n");
    assert_eq!(c.reply(), "354 End data with <CR><LF>.<CR><LF>\r\n");
    c.send(b"x\r\n.\r\nQUIT\r\n");
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 1\r\n");
    assert_eq!(c.reply(), "221 2.0.0 Bye\r\n");
    assert_eq!(server.wait_for(1, WAIT)[0].rcpt_to, ["b@y", "c@y"]);
}

#[test]
fn dot_unstuffing() {
    let server = start(CaptureOptions::default());
    let mut c = Client::connect(server.local_addr());
    c.send(b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
    for _ in 0..4 {
        c.reply();
    }
    c.send(b"..one\r\n.\r\n...\r\nmid.dle\r\n..\r\n.\r\n");
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 1\r\n");
    let m = &server.wait_for(1, WAIT)[0];
    assert_eq!(m.mail_from, "");
    assert_eq!(m.data, b".one\r\n");
    // The lone dot ended the data; the rest were commands.
    assert_eq!(c.reply(), "500 5.5.1 Error: command not recognized\r\n");
}

#[test]
fn rset_and_two_messages_over_one_connection() {
    let server = start(CaptureOptions::default());
    let mut c = Client::connect(server.local_addr());
    c.command("EHLO c");
    c.command("MAIL FROM:<dropped@x>");
    c.command("RCPT TO:<dropped@y>");
    assert_eq!(c.command("RSET"), "250 2.0.0 Ok\r\n");
    for n in 1..=2 {
        assert_eq!(
            c.command(&format!("MAIL FROM:<a{n}@x>")),
            "250 2.1.0 Ok\r\n"
        );
        c.command(&format!("RCPT TO:<b{n}@y>"));
        c.command("DATA");
        c.send(format!("message {n}\r\n.\r\n").as_bytes());
        assert_eq!(c.reply(), format!("250 2.0.0 Ok: queued as {n}\r\n"));
    }
    let mut other = Client::connect(server.local_addr());
    other.send(b"HELO o\r\nMAIL FROM:<o@x>\r\nRCPT TO:<o@y>\r\nDATA\r\nthird\r\n.\r\n");
    let messages = server.wait_for(3, WAIT);
    let summary: Vec<_> = messages
        .iter()
        .map(|m| (m.id, m.connection, m.mail_from.as_str(), m.data.as_slice()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, 1, "a1@x", &b"message 1\r\n"[..]),
            (2, 1, "a2@x", &b"message 2\r\n"[..]),
            (3, 2, "o@x", &b"third\r\n"[..]),
        ]
    );
}

#[test]
fn size_is_refused_in_mail_and_in_data() {
    let options = CaptureOptions {
        max_message_size: 100,
        ..CaptureOptions::default()
    };
    let server = start(options);
    let mut c = Client::connect(server.local_addr());
    assert!(c.command("EHLO c").contains("250-SIZE 100\r\n"));
    assert_eq!(
        c.command("MAIL FROM:<a@x> SIZE=101"),
        "552 5.3.4 Error: message size exceeds fixed limit\r\n"
    );
    assert_eq!(c.command("MAIL FROM:<a@x> SIZE=100"), "250 2.1.0 Ok\r\n");
    c.command("RCPT TO:<b@y>");
    c.command("DATA");
    c.send(format!("{}\r\n.\r\n", "z".repeat(5000)).as_bytes());
    assert_eq!(c.reply(), "552 5.3.4 Error: message too big for system\r\n");
    // The session is usable again: a small message goes through.
    c.send(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
    for _ in 0..3 {
        c.reply();
    }
    c.send(b"small\r\n.\r\n");
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as"));
    let messages = server.wait_for(1, WAIT);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].data, b"small\r\n");
}

#[test]
fn data_before_rcpt_is_out_of_order() {
    let server = start(CaptureOptions::default());
    let mut c = Client::connect(server.local_addr());
    c.command("EHLO c");
    assert_eq!(c.command("DATA"), "503 5.5.1 Error: need MAIL command\r\n");
    c.command("MAIL FROM:<a@x>");
    assert_eq!(c.command("DATA"), "503 5.5.1 Error: need RCPT command\r\n");
    assert_eq!(c.command("RCPT TO:<b@y>"), "250 2.1.5 Ok\r\n");
}

#[test]
fn files_are_written_to_dir() {
    let dir = temp_dir("files");
    let server = start(CaptureOptions::default().dir(&dir));
    let mut c = Client::connect(server.local_addr());
    c.send(b"EHLO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n");
    for _ in 0..5 {
        c.reply();
    }
    c.send(b"Subject: files\r\n\r\n..dot\r\n.\r\n");
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 1\r\n");
    server.shutdown();

    let eml = std::fs::read(dir.join("1.eml")).expect("1.eml");
    assert_eq!(eml, b"Subject: files\r\n\r\n.dot\r\n");
    let json = std::fs::read(dir.join("1.json")).expect("1.json");
    let json: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
    assert_eq!(json["id"], 1);
    assert_eq!(json["mail_from"], "a@x.example");
    assert_eq!(
        json["rcpt_to"],
        serde_json::json!(["b@y.example", "c@y.example"])
    );
    assert_eq!(json["connection"], 1);
    assert_eq!(json["size"], eml.len());
    assert_eq!(json["eml"], "1.eml");
    let stamp = json["received_at"].as_str().expect("timestamp");
    assert!(stamp.len() == 24 && stamp.ends_with('Z'), "{stamp}");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    assert_eq!(names.len(), 2, "no temporary files left: {names:?}");

    // A new server on the same directory numbers after the existing files.
    let server = start(CaptureOptions::default().dir(&dir));
    let mut c = Client::connect(server.local_addr());
    c.send(b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n.\r\n");
    for _ in 0..4 {
        c.reply();
    }
    assert_eq!(c.reply(), "250 2.0.0 Ok: queued as 2\r\n");
    assert!(dir.join("2.json").exists());
    drop(server);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn on_message_sees_each_message() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let server = start(CaptureOptions::default().on_message(move |m| {
        assert_eq!(m.rcpt_to, ["b@y"]);
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let mut c = Client::connect(server.local_addr());
    c.send(b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n.\r\n");
    for _ in 0..5 {
        c.reply();
    }
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[test]
fn shutdown_unblocks_idle_connections() {
    let server = start(CaptureOptions::default());
    let mut idle = Client::connect(server.local_addr());
    idle.command("EHLO idle");
    let (done, finished) = mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        server.shutdown();
        let _ = done.send(());
    });
    finished.recv_timeout(WAIT).expect("shutdown returns");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        idle.reply(),
        "421 4.3.2 smtp-mailer-capture Service shutting down\r\n"
    );
    assert!(idle.closed());
}

#[test]
fn garbage_and_a_huge_line_do_not_kill_the_server() {
    let server = start(CaptureOptions::default());
    let mut c = Client::connect(server.local_addr());
    c.send(b"\x00\xff\xfe garbage \x1b[31m\r\n");
    assert_eq!(c.reply(), "500 5.5.2 Error: invalid UTF-8 in command\r\n");
    c.send(&vec![b'A'; 100 * 1024]);
    c.send(b"\r\n");
    assert_eq!(c.reply(), "500 5.5.2 Error: line too long\r\n");
    assert_eq!(c.command("NOOP"), "250 2.0.0 Ok\r\n");
    // Enough errors close the connection with 421.
    for _ in 0..17 {
        c.send(b"\r\n");
        c.reply();
    }
    c.send(b"WHAT\r\n");
    assert_eq!(c.reply(), "500 5.5.1 Error: command not recognized\r\n");
    assert_eq!(
        c.reply(),
        "421 4.7.0 smtp-mailer-capture Error: too many errors\r\n"
    );
    assert!(c.closed());

    let mut fresh = Client::connect(server.local_addr());
    assert_eq!(fresh.command("NOOP"), "250 2.0.0 Ok\r\n");
}

#[test]
fn idle_connections_get_421() {
    let options = CaptureOptions {
        idle_timeout: Duration::from_millis(200),
        ..CaptureOptions::default()
    };
    let server = start(options);
    let mut c = Client::connect(server.local_addr());
    assert_eq!(
        c.reply(),
        "421 4.4.2 smtp-mailer-capture Error: timeout exceeded\r\n"
    );
    assert!(c.closed());
}

#[test]
fn connections_over_the_limit_are_turned_away() {
    let options = CaptureOptions {
        max_connections: 1,
        ..CaptureOptions::default()
    };
    let server = start(options);
    let mut first = Client::connect(server.local_addr());
    let stream = TcpStream::connect(server.local_addr()).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut text = String::new();
    BufReader::new(stream)
        .read_to_string(&mut text)
        .expect("read");
    assert!(text.starts_with("421 4.7.0"), "{text}");
    assert_eq!(first.command("NOOP"), "250 2.0.0 Ok\r\n");
}

#[test]
fn bind_errors_are_typed() {
    let server = start(CaptureOptions::default());
    let taken = CaptureOptions::default().listen(server.local_addr());
    let err = CaptureServer::start(taken).expect_err("port is taken");
    assert!(matches!(
        err,
        smtp_mailer_capture::CaptureError::Bind { .. }
    ));
}
