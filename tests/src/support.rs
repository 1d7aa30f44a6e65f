//! What the end-to-end tests share: one mailer (the real component in the
//! real host), server settings for a loopback port, and an independent
//! parser for what a server stored.

use std::path::PathBuf;
use std::sync::OnceLock;

use mail_parser::{Message as Parsed, MessageParser};
use smtp_mailer_host::{Mailbox, Mailer, Message, Server};

/// The mailer, loaded once per test process.
pub fn mailer() -> &'static Mailer {
    static MAILER: OnceLock<Mailer> = OnceLock::new();
    MAILER.get_or_init(|| Mailer::new().expect("the built-in component loads"))
}

/// Plaintext settings for a test server on 127.0.0.1.
pub fn loopback(port: u16) -> Server {
    let mut server = Server::new("127.0.0.1", port).plaintext_insecure();
    server.client_name = Some("tests.example".into());
    server
}

/// A small message from sender@example.test to the given addresses.
pub fn message(to: &[&str]) -> Message {
    Message {
        from: Mailbox::named("Sender", "sender@example.test"),
        to: to.iter().map(|a| Mailbox::new(*a)).collect(),
        subject: "Test message".into(),
        text: Some("Hello from the tests.\n".into()),
        ..Message::default()
    }
}

/// Parses stored bytes with mail-parser, decoding every header as text.
pub fn parse(data: &[u8]) -> Parsed<'_> {
    MessageParser::default()
        .default_header_text()
        .parse(data)
        .expect("the stored message parses")
}

/// The `smtp-mailer` binary built beside this test.
pub fn cli_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let binary = profile_dir.join("smtp-mailer");
    assert!(
        binary.exists(),
        "{} is missing: build it first (`cargo build --release --bin smtp-mailer`), as scripts/test does",
        binary.display()
    );
    binary
}

/// Asserts that no header of `data` names a Bcc, and no Bcc address is in it.
pub fn assert_no_bcc(data: &[u8], bcc: &[&str]) {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "a Bcc header was sent:\n{head}"
    );
    for address in bcc {
        assert!(!text.contains(address), "{address} appears in the data");
    }
}
