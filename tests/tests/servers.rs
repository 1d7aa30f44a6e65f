//! The loopback SMTP servers work: raw SMTP over a TcpStream, then what each
//! server says it received. Their TLS and AUTH are checked with a client
//! that is not the project's: Python's smtplib and ssl
//! (`tests/servers/smtp_client.py`), verifying against the test CA.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions, Exim, EximOptions, Received};
use smtp_mailer_tests::tls::TestPki;

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
    /// Asserts that the server closed the connection after its 421.
    #[track_caller]
    fn assert_closed_after_421(&mut self) {
        let mut rest = String::new();
        let n = self.reader.read_line(&mut rest).unwrap_or(0);
        assert_eq!(
            n, 0,
            "the server should close after its 421, it sent {rest:?}"
        );
    }

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
    assert!(!received[0].tls);
    assert_eq!(received[0].tls_version, None);
    assert_eq!(received[0].auth_user, None);
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
fn aiosmtpd_once_recipients_fail_only_the_first_time() {
    let server = Aiosmtpd::start();
    let mut client = Client::connect(server.port());
    assert_eq!(client.command("EHLO client.test").0, 250);
    assert_eq!(client.command("MAIL FROM:<alice@example.test>").0, 250);
    let (code, text) = client.command("RCPT TO:<once450.c@example.test>");
    assert_eq!(code, 450, "{text}");
    assert!(
        text.starts_with("450 4.2.1 Mailbox busy, try later"),
        "{text}"
    );
    // The same address, other case: seen already.
    assert_eq!(client.command("RCPT TO:<Once450.C@example.test>").0, 250);
    assert_eq!(client.command("RCPT TO:<bob@example.test>").0, 250);
    let (code, text) = client.command("RCPT TO:<once421.a@example.test>");
    assert_eq!(code, 421, "{text}");
    assert!(
        text.starts_with("421 4.3.2 Service shutting down, try later"),
        "{text}"
    );
    client.assert_closed_after_421();

    let mut client = Client::connect(server.port());
    assert_eq!(client.command("EHLO client.test").0, 250);
    assert_eq!(client.command("MAIL FROM:<alice@example.test>").0, 250);
    assert_eq!(client.command("RCPT TO:<once421.a@example.test>").0, 250);
    assert_eq!(client.data(MESSAGE).0, 250);
    assert_eq!(client.command("QUIT").0, 221);

    let received = server.wait_for(1, WAIT);
    assert_eq!(received.len(), 1, "the first transaction was cut short");
    assert_eq!(received[0].rcpt_to, ["once421.a@example.test"]);
    assert_eq!(received[0].connection, 2);
    assert_eq!(server.connections(), 2);
    let records = server.rcpt_log();
    let log: Vec<(u64, &str, u16)> = records
        .iter()
        .map(|r| (r.session, r.address.as_str(), r.code))
        .collect();
    assert_eq!(
        log,
        [
            (1, "once450.c@example.test", 450),
            (1, "Once450.C@example.test", 250),
            (1, "bob@example.test", 250),
            (1, "once421.a@example.test", 421),
            (2, "once421.a@example.test", 250),
        ]
    );
}

#[test]
fn aiosmtpd_says_421_to_an_idle_connection_and_closes_it() {
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        idle_timeout: Some(Duration::from_secs(1)),
        ..Default::default()
    });
    let mut client = Client::connect(server.port());
    assert_eq!(client.command("EHLO client.test").0, 250);
    let started = std::time::Instant::now();
    let (code, text) = client.reply();
    let idle = started.elapsed();
    assert_eq!(code, 421, "{text}");
    assert!(
        text.starts_with("421 4.4.2 Idle timeout, closing connection"),
        "{text}"
    );
    assert!(
        idle >= Duration::from_millis(800) && idle < Duration::from_secs(5),
        "the 421 came after {idle:?}, 1 s expected"
    );
    client.assert_closed_after_421();

    // A connection that keeps talking is not idle.
    let mut client = Client::connect(server.port());
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(client.command("NOOP").0, 250);
    }
    assert_eq!(client.command("QUIT").0, 221);
}

#[test]
fn aiosmtpd_stamps_the_arrival_time() {
    let server = Aiosmtpd::start();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let before = now();
    send_one(server.port());
    let received = server.wait_for(1, WAIT);
    let after = now();
    let at = received[0].received_at;
    assert!(
        before - 0.5 <= at && at <= after + 0.5,
        "received_at {at} not within [{before}, {after}]"
    );
}

#[test]
fn aiosmtpd_enforces_its_size_limit() {
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        size_limit: Some(1000),
        smtputf8: true,
        ..Default::default()
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
    assert!(!received[0].tls);
    assert_eq!(received[0].auth_user, None);
    assert!(
        !ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
}

#[test]
fn exim_delivers_one_message_to_several_recipients_and_by_bdat() {
    let server = Exim::start_with(EximOptions {
        size_limit: Some(1000),
        ..Default::default()
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

// --- TLS and AUTH, checked with Python's smtplib and ssl -------------------

const USER: &str = "bob";
/// Not plain ASCII, and with characters that Exim would otherwise expand.
const PASSWORD: &str = "s3cret-€-${x}";

/// What `tests/servers/smtp_client.py` reports.
#[derive(Debug)]
struct ClientResult {
    ok: bool,
    stage: String,
    code: Option<u64>,
    error: String,
    verify_message: String,
    /// EHLO keywords before and after STARTTLS.
    ehlo: Vec<String>,
    ehlo_tls: Vec<String>,
    tls_version: Option<String>,
}

/// Runs Python's smtplib against 127.0.0.1:`port` with the script's
/// arguments (`--tls`, `--cafile`, `--user`, ...).
fn reference_client(port: u16, args: &[&str]) -> ClientResult {
    let python = std::env::var("SMTP_MAILER_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/servers/smtp_client.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(port.to_string())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "smtp_client.py failed: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("smtp_client.py printed no JSON ({e}): {stderr}"));
    let strings = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    ClientResult {
        ok: v["ok"].as_bool().unwrap_or_default(),
        stage: v["stage"].as_str().unwrap_or_default().to_owned(),
        code: v["code"].as_u64(),
        error: v["error"].as_str().unwrap_or_default().to_owned(),
        verify_message: v["verify_message"].as_str().unwrap_or_default().to_owned(),
        ehlo: strings("ehlo"),
        ehlo_tls: strings("ehlo_tls"),
        tls_version: v["tls_version"].as_str().map(str::to_owned),
    }
}

/// Arguments for TLS `mode` verified against the test CA, AUTH with
/// `password` and `mechanism`, and one message to bob@example.test.
fn tls_auth_send<'a>(
    pki: &'a TestPki,
    mode: &'a str,
    password: &'a str,
    mechanism: &'a str,
) -> Vec<&'a str> {
    let mut args = vec![
        "--tls",
        mode,
        "--user",
        USER,
        "--password",
        password,
        "--mechanism",
        mechanism,
        "--mail-from",
        "alice@example.test",
        "--rcpt-to",
        "bob@example.test",
    ];
    if mode != "none" {
        args.extend(["--cafile", pki.ca.to_str().expect("UTF-8 temporary path")]);
    }
    args
}

fn credentials() -> Option<(String, String)> {
    Some((USER.to_owned(), PASSWORD.to_owned()))
}

#[test]
fn test_pki_writes_pem_files() {
    let pki = TestPki::generate();
    assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(std::fs::read_to_string(&pki.ca).unwrap(), pki.ca_pem);
    for paths in [
        &pki.good,
        &pki.expired,
        &pki.wrong_name,
        &pki.unknown_issuer,
    ] {
        let cert = std::fs::read_to_string(&paths.cert).unwrap();
        let key = std::fs::read_to_string(&paths.key).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        assert!(
            key.starts_with("-----BEGIN PRIVATE KEY-----"),
            "PKCS#8: {key}"
        );
    }
    let dir = pki.dir.clone();
    drop(pki);
    assert!(!dir.exists(), "the PKI's directory outlives it");
}

#[test]
fn aiosmtpd_starttls_then_auth_plain_and_login() {
    let pki = TestPki::generate();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        auth: credentials(),
        ..Default::default()
    });

    let result = reference_client(
        server.port(),
        &tls_auth_send(&pki, "starttls", PASSWORD, "PLAIN"),
    );
    assert!(result.ok, "{result:?}");
    assert!(result.ehlo.contains(&"STARTTLS".into()), "{result:?}");
    assert!(
        !result.ehlo.contains(&"AUTH".into()),
        "AUTH before TLS: {result:?}"
    );
    assert!(result.ehlo_tls.contains(&"AUTH".into()), "{result:?}");
    assert!(!result.ehlo_tls.contains(&"STARTTLS".into()), "{result:?}");

    let result = reference_client(
        server.port(),
        &tls_auth_send(&pki, "starttls", PASSWORD, "LOGIN"),
    );
    assert!(result.ok, "{result:?}");

    let received = server.wait_for(2, WAIT);
    for message in &received {
        assert!(message.tls);
        assert_eq!(message.tls_version, result.tls_version);
        assert_eq!(message.auth_user.as_deref(), Some(USER));
    }
    assert_ne!(received[0].connection, received[1].connection);
}

#[test]
fn aiosmtpd_refuses_a_wrong_password_and_auth_before_tls() {
    let pki = TestPki::generate();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        auth: credentials(),
        ..Default::default()
    });
    for mechanism in ["PLAIN", "LOGIN"] {
        let result = reference_client(
            server.port(),
            &tls_auth_send(&pki, "starttls", "wrong", mechanism),
        );
        assert_eq!(
            (result.stage.as_str(), result.code),
            ("auth", Some(535)),
            "{result:?}"
        );
        assert_eq!(result.error, "5.7.8 Authentication credentials invalid");
    }

    let result = reference_client(
        server.port(),
        &tls_auth_send(&pki, "none", PASSWORD, "PLAIN"),
    );
    assert_eq!(
        (result.stage.as_str(), result.code),
        ("auth", Some(538)),
        "{result:?}"
    );
    assert!(server.messages().is_empty());
}

#[test]
fn aiosmtpd_auth_in_plaintext_when_asked() {
    let pki = TestPki::generate();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        auth: credentials(),
        auth_plaintext: true,
        auth_required: true,
        ..Default::default()
    });
    let result = reference_client(
        server.port(),
        &tls_auth_send(&pki, "none", PASSWORD, "PLAIN"),
    );
    assert!(result.ok, "{result:?}");
    assert!(result.ehlo.contains(&"AUTH".into()), "{result:?}");

    // auth_required: no MAIL without AUTH.
    let mut client = Client::connect(server.port());
    assert_eq!(client.command("EHLO client.test").0, 250);
    let (code, text) = client.command("MAIL FROM:<alice@example.test>");
    assert_eq!(code, 530, "{text}");

    let received = server.wait_for(1, WAIT);
    assert!(!received[0].tls);
    assert_eq!(received[0].auth_user.as_deref(), Some(USER));
}

#[test]
fn aiosmtpd_without_auth_offers_none() {
    let pki = TestPki::generate();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        require_starttls: true,
        ..Default::default()
    });
    let ca = pki.ca.to_str().unwrap();
    let args = [
        "--tls",
        "starttls",
        "--cafile",
        ca,
        "--user",
        USER,
        "--password",
        PASSWORD,
    ];
    let result = reference_client(server.port(), &args);
    assert!(!result.ehlo_tls.contains(&"AUTH".into()), "{result:?}");
    assert_eq!(
        (result.stage.as_str(), result.code),
        ("auth", Some(502)),
        "{result:?}"
    );

    // require_starttls: nothing but EHLO, NOOP, QUIT and STARTTLS before TLS.
    let mut client = Client::connect(server.port());
    assert_eq!(client.command("EHLO client.test").0, 250);
    let (code, text) = client.command("MAIL FROM:<alice@example.test>");
    assert_eq!(code, 530, "{text}");

    let args = [
        "--tls",
        "starttls",
        "--cafile",
        ca,
        "--mail-from",
        "alice@example.test",
        "--rcpt-to",
        "bob@example.test",
    ];
    assert!(reference_client(server.port(), &args).ok);
    let received = server.wait_for(1, WAIT);
    assert!(received[0].tls);
    assert_eq!(received[0].auth_user, None);
}

#[test]
fn aiosmtpd_implicit_tls_verifies_by_name_and_by_address() {
    let pki = TestPki::generate();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        implicit_tls: Some(pki.good.clone()),
        auth: credentials(),
        ..Default::default()
    });
    let result = reference_client(
        server.port(),
        &tls_auth_send(&pki, "implicit", PASSWORD, "PLAIN"),
    );
    assert!(result.ok, "{result:?}");
    assert!(!result.ehlo.contains(&"STARTTLS".into()), "{result:?}");
    assert!(result.ehlo.contains(&"AUTH".into()), "{result:?}");

    let mut args = tls_auth_send(&pki, "implicit", PASSWORD, "LOGIN");
    args.extend(["--server-name", "127.0.0.1"]);
    let result = reference_client(server.port(), &args);
    assert!(result.ok, "{result:?}");

    let received = server.wait_for(2, WAIT);
    for message in &received {
        assert!(message.tls);
        assert!(message
            .tls_version
            .as_deref()
            .unwrap()
            .starts_with("TLSv1."));
        assert_eq!(message.auth_user.as_deref(), Some(USER));
    }
}

#[test]
fn verifying_clients_refuse_the_bad_certificates() {
    let pki = TestPki::generate();
    let ca = pki.ca.to_str().unwrap();
    for (name, cert, reason) in [
        ("expired", &pki.expired, "certificate has expired"),
        ("wrong name", &pki.wrong_name, "Hostname mismatch"),
        (
            "unknown issuer",
            &pki.unknown_issuer,
            "self-signed certificate",
        ),
    ] {
        // Implicit TLS (aiosmtpd, OpenSSL) ...
        let server = Aiosmtpd::start_with(AiosmtpdOptions {
            implicit_tls: Some(cert.clone()),
            ..Default::default()
        });
        let result = reference_client(server.port(), &["--tls", "implicit", "--cafile", ca]);
        assert!(!result.ok, "{name}: {result:?}");
        assert!(result.verify_message.contains(reason), "{name}: {result:?}");
        // ... and STARTTLS (Exim, GnuTLS).
        let server = Exim::start_with(EximOptions {
            starttls: Some(cert.clone()),
            ..Default::default()
        });
        let result = reference_client(server.port(), &["--tls", "starttls", "--cafile", ca]);
        assert_eq!(result.stage, "starttls", "{name}: {result:?}");
        assert!(result.verify_message.contains(reason), "{name}: {result:?}");
    }
    // The same client accepts the good certificate by either name.
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        implicit_tls: Some(pki.good.clone()),
        ..Default::default()
    });
    for name in ["localhost", "127.0.0.1"] {
        let args = ["--tls", "implicit", "--cafile", ca, "--server-name", name];
        assert!(reference_client(server.port(), &args).ok, "{name}");
    }
}

#[test]
fn exim_starttls_then_auth_plain_and_login() {
    let pki = TestPki::generate();
    let server = Exim::start_with(EximOptions {
        starttls: Some(pki.good.clone()),
        auth: credentials(),
        ..Default::default()
    });

    let result = reference_client(
        server.port(),
        &tls_auth_send(&pki, "starttls", PASSWORD, "PLAIN"),
    );
    assert!(result.ok, "{result:?}\n{}", server.log());
    assert!(result.ehlo.contains(&"STARTTLS".into()), "{result:?}");
    assert!(
        !result.ehlo.contains(&"AUTH".into()),
        "AUTH before TLS: {result:?}"
    );
    assert!(result.ehlo_tls.contains(&"AUTH".into()), "{result:?}");
    let result = reference_client(
        server.port(),
        &tls_auth_send(&pki, "starttls", PASSWORD, "LOGIN"),
    );
    assert!(result.ok, "{result:?}\n{}", server.log());

    let received = server.wait_for(2, WAIT);
    for message in &received {
        assert!(message.tls);
        assert_eq!(message.tls_version, result.tls_version);
        assert_eq!(message.auth_user.as_deref(), Some(USER));
        assert_eq!(message.rcpt_to, ["bob@example.test"]);
    }
}

#[test]
fn exim_refuses_a_wrong_password_and_unauthenticated_relay() {
    let pki = TestPki::generate();
    let server = Exim::start_with(EximOptions {
        starttls: Some(pki.good.clone()),
        auth: credentials(),
        ..Default::default()
    });
    for mechanism in ["PLAIN", "LOGIN"] {
        let result = reference_client(
            server.port(),
            &tls_auth_send(&pki, "starttls", "wrong", mechanism),
        );
        assert_eq!(
            (result.stage.as_str(), result.code),
            ("auth", Some(535)),
            "{result:?}"
        );
        assert_eq!(result.error, "Incorrect authentication data");
    }
    // AUTH where it is not offered.
    let result = reference_client(
        server.port(),
        &tls_auth_send(&pki, "none", PASSWORD, "PLAIN"),
    );
    assert_eq!(
        (result.stage.as_str(), result.code),
        ("auth", Some(503)),
        "{result:?}"
    );
    assert_eq!(result.error, "AUTH command used when not advertised");
    // TLS without AUTH: no relaying.
    let ca = pki.ca.to_str().unwrap();
    let args = [
        "--tls",
        "starttls",
        "--cafile",
        ca,
        "--mail-from",
        "alice@example.test",
        "--rcpt-to",
        "bob@example.test",
    ];
    let result = reference_client(server.port(), &args);
    assert_eq!(
        (result.stage.as_str(), result.code),
        ("mail", Some(550)),
        "{result:?}"
    );
    assert!(
        result.error.contains("5.7.1 relay not permitted"),
        "{result:?}"
    );
    assert!(server.messages().is_empty());
}

#[test]
fn exim_auth_in_plaintext_when_asked() {
    let pki = TestPki::generate();
    let server = Exim::start_with(EximOptions {
        auth: credentials(),
        auth_plaintext: true,
        ..Default::default()
    });
    let result = reference_client(
        server.port(),
        &tls_auth_send(&pki, "none", PASSWORD, "LOGIN"),
    );
    assert!(result.ok, "{result:?}\n{}", server.log());
    assert!(result.ehlo.contains(&"AUTH".into()), "{result:?}");
    let received = server.wait_for(1, WAIT);
    assert!(!received[0].tls);
    assert_eq!(received[0].tls_version, None);
    assert_eq!(received[0].auth_user.as_deref(), Some(USER));
}
