//! What the end-to-end tests share: one mailer (the real component in the
//! real host), server settings for a loopback port, and an independent
//! parser for what a server stored.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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

/// Runs the `smtp-mailer` CLI with `args`, `stdin` as its standard input,
/// `env` set and SMTP_URL / SMTP_PASSWORD cleared. A run that outlives a
/// minute is killed, so a hang fails the test instead of stalling it.
pub fn run_cli(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(cli_binary())
        .args(args)
        .env_remove("SMTP_URL")
        .env_remove("SMTP_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the CLI starts");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.unwrap_or("").as_bytes());
    }
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        let pid = child.id().to_string();
        std::thread::spawn(move || {
            for _ in 0..600 {
                std::thread::sleep(Duration::from_millis(100));
                if done.load(Ordering::Relaxed) {
                    return;
                }
            }
            let _ = Command::new("kill").args(["-9", &pid]).status();
        })
    };
    let output = child.wait_with_output().expect("the CLI's output");
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    output
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
