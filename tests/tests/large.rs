//! Large messages: attachments streamed from disk through the real
//! component, in BDAT chunks (Exim offers CHUNKING) or after DATA
//! (aiosmtpd), with flat memory; SIZE declared ahead; refusals after the
//! content; streamed raw messages.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use mail_parser::MimeHeaders;
use smtp_mailer_host::{Attachment, Content, Envelope, ErrorKind, Mailer, Message, Stage};
use smtp_mailer_tests::large::{random_file, run_measured, sha256};
use smtp_mailer_tests::scripted::Scripted;
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions, Exim, EximOptions};
use smtp_mailer_tests::support::{cli_binary, loopback, mailer, message, parse};

/// The size of the large attachment: 100 MiB.
const LARGE: usize = 100 << 20;
/// The guest memory the large sends must stay under.
const GUEST_LIMIT: usize = 16 << 20;
/// The host process's RSS the large CLI send must stay under.
const HOST_RSS_LIMIT: u64 = 64 << 20;
const WAIT: Duration = Duration::from_secs(120);

/// The 100 MiB file, written once per test process.
fn large_file() -> &'static (PathBuf, [u8; 32]) {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf, [u8; 32])> = OnceLock::new();
    let (_, path, hash) = FILE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (path, hash) = random_file(dir.path(), "report.bin", LARGE);
        (dir, path, hash)
    });
    // The tuple's last two fields, borrowed for the process's life.
    let pair: &'static (PathBuf, [u8; 32]) = Box::leak(Box::new((path.clone(), *hash)));
    pair
}

/// The one attachment of a stored message, decoded, with its file name.
fn only_attachment(data: &[u8]) -> (String, Vec<u8>) {
    let parsed = parse(data);
    assert_eq!(parsed.attachment_count(), 1, "one attachment");
    let part = parsed.attachment(0).expect("the attachment");
    (
        part.attachment_name().unwrap_or_default().to_string(),
        part.contents().to_vec(),
    )
}

/// A message to bob@example.test with one attachment, `filename` of
/// `content_type`, streamed from the file at `path`.
fn with_attachment(path: PathBuf, filename: &str, content_type: &str) -> Message {
    let mut msg = message(&["bob@example.test"]);
    msg.attachments.push(Attachment {
        filename: filename.into(),
        content_type: content_type.into(),
        content: Content::File(path),
        content_id: None,
    });
    msg
}

/// The envelope of the raw messages: from a@example.test to bob@example.test.
fn envelope() -> Envelope {
    Envelope {
        reverse_path: "a@example.test".into(),
        forward_paths: vec!["bob@example.test".into()],
    }
}

#[test]
fn a_100_mib_attachment_streams_from_the_cli_through_exim_in_bdat_chunks() {
    let (path, hash) = large_file();
    let exim = Exim::start_with(EximOptions {
        size_limit: Some(300 << 20),
        ..Default::default()
    });
    let url = format!(
        "smtp://127.0.0.1:{}?security=plaintext-insecure",
        exim.port()
    );
    let mut command = Command::new(cli_binary());
    command
        .args(["send", "--server", &url, "--from", "reports@example.test"])
        .args(["--to", "bob@example.test", "--subject", "Monthly report"])
        .args(["--text", "The report is attached.", "--attach"])
        .arg(path)
        .args(["--memory-limit", "16", "-v"])
        .env_remove("SMTP_URL")
        .env_remove("SMTP_PASSWORD");
    let run = run_measured(command);
    assert_eq!(run.code, Some(0), "the send succeeds:\n{}", run.stderr);
    let stderr = run.stderr;
    let bdat = stderr.lines().filter(|l| l.starts_with("C: BDAT ")).count();
    assert!(bdat > 100, "the content went in BDAT chunks ({bdat})");
    assert!(stderr.contains(" LAST"), "the last chunk is marked LAST");
    assert!(!stderr.contains("C: DATA"), "no DATA with CHUNKING");
    eprintln!(
        "CLI send of 100 MiB through Exim: peak RSS {:.1} MiB",
        run.max_rss as f64 / (1 << 20) as f64
    );
    assert!(
        run.max_rss < HOST_RSS_LIMIT,
        "the host's RSS stays under 64 MiB: {} bytes",
        run.max_rss
    );

    let got = exim.wait_for(1, WAIT);
    assert_eq!(got[0].rcpt_to, ["bob@example.test"]);
    let declared: usize = stderr
        .lines()
        .find_map(|l| l.strip_prefix("C: MAIL FROM:<reports@example.test> SIZE="))
        .and_then(|n| n.split(' ').next()?.parse().ok())
        .expect("SIZE declared ahead in MAIL FROM");
    assert!(
        declared.abs_diff(got[0].data.len()) < 4096,
        "SIZE={declared} is the message's size ({} as stored, with Exim's headers)",
        got[0].data.len()
    );
    let (name, contents) = only_attachment(&got[0].data);
    assert_eq!(name, "report.bin");
    assert_eq!(contents.len(), LARGE);
    assert_eq!(
        &sha256(&contents),
        hash,
        "the decoded attachment is the file"
    );
}

#[test]
fn a_100_mib_attachment_streams_through_aiosmtpd_after_data_in_16_mib() {
    let (path, hash) = large_file();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        size_limit: Some(300 << 20),
        ..Default::default()
    });
    let small = Mailer::builder()
        .memory_limit(GUEST_LIMIT)
        .build()
        .expect("the mailer loads");
    let msg = with_attachment(path.clone(), "report.bin", "application/octet-stream");
    let mut session = small.open_session(&loopback(server.port())).unwrap();
    let report = session.send(&msg).expect("the send succeeds");
    let peak = session.peak_memory();
    session.close().unwrap();
    eprintln!(
        "100 MiB after DATA: peak guest memory {:.2} MiB",
        peak as f64 / (1 << 20) as f64
    );
    assert!(peak > 0 && peak < GUEST_LIMIT, "guest memory {peak}");

    let got = server.wait_for(1, WAIT);
    assert_eq!(
        got[0].mail_options,
        [format!("SIZE={}", got[0].data.len())],
        "SIZE is the exact size, declared ahead"
    );
    assert_eq!(
        report.message_id.as_deref(),
        parse(&got[0].data).message_id()
    );
    let (_, contents) = only_attachment(&got[0].data);
    assert_eq!(
        &sha256(&contents),
        hash,
        "the decoded attachment is the file"
    );
}

#[test]
fn a_streamed_attachment_over_the_servers_size_is_refused_before_any_content() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = random_file(dir.path(), "big.bin", 2 << 20);
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        size_limit: Some(1 << 20),
        ..Default::default()
    });
    let msg = with_attachment(path, "big.bin", "application/octet-stream");
    let err = mailer()
        .send(&loopback(server.port()), &msg)
        .expect_err("over the limit");
    let ErrorKind::Unsupported(failure) = &err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(failure.stage, Stage::MailFrom);
    assert!(err.message.contains("SIZE limit"), "{}", err.message);
    assert!(!err.transient);
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.messages().is_empty());
}

/// A server without CHUNKING that refuses the message after its content.
#[test]
fn a_552_after_streamed_data_is_a_permanent_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = random_file(dir.path(), "a.bin", 600 << 10);
    let server = Scripted::start(|c| {
        c.open();
        c.hear_lines(3); // MAIL, RCPT, DATA
        c.say("250 ok\r\n250 ok\r\n354 go ahead\r\n");
        let content = c.hear_data();
        assert!(content.len() > 800 << 10, "the whole content arrived");
        c.say("552 5.3.4 message size exceeds fixed maximum\r\n");
        c.hear_line(); // QUIT
        c.say("221 bye\r\n");
    });
    let msg = with_attachment(path, "a.bin", "application/octet-stream");
    let err = mailer()
        .send(&loopback(server.port()), &msg)
        .expect_err("refused");
    let ErrorKind::Rejected(rejection) = &err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(rejection.stage, Stage::DataEnd);
    assert_eq!(rejection.reply.code, 552);
    assert!(!err.transient, "552 is permanent");
    server.finish();
}

/// With CHUNKING, a refused chunk stops the content: no further chunk and
/// no LAST, and the session carries on.
#[test]
fn a_refused_bdat_chunk_stops_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = random_file(dir.path(), "a.bin", 1 << 20);
    let server = Scripted::start(|c| {
        c.say("220 scripted.test ESMTP\r\n");
        c.hear_line();
        c.say("250-scripted.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n");
        c.hear_lines(2); // MAIL, RCPT
        c.say("250 ok\r\n250 ok\r\n");
        let command = c.hear_line();
        let size: usize = command
            .strip_prefix("BDAT ")
            .and_then(|r| r.trim_end().parse().ok())
            .unwrap_or_else(|| panic!("a BDAT chunk, not {command:?}"));
        let mut got = 0;
        while got < size {
            let piece = c.hear_some();
            assert!(!piece.is_empty(), "the chunk is complete");
            got += piece.len();
        }
        assert_eq!(got, size, "nothing after the chunk before its reply");
        c.say("552 5.3.4 too big\r\n");
        let next = c.hear_line();
        assert!(
            next.starts_with("QUIT"),
            "no chunk after a refusal: {next:?}"
        );
        c.say("221 bye\r\n");
    });
    let msg = with_attachment(path, "a.bin", "application/octet-stream");
    let err = mailer()
        .send(&loopback(server.port()), &msg)
        .expect_err("refused");
    assert!(
        matches!(&err.kind, ErrorKind::Rejected(r) if r.reply.code == 552 && r.stage == Stage::DataEnd),
        "{err:?}"
    );
    let wire = String::from_utf8_lossy(&server.finish()).into_owned();
    assert_eq!(wire.matches("BDAT").count(), 1);
}

#[test]
fn a_raw_message_streamed_from_a_file_arrives_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.eml");
    let mut raw = b"From: a@example.test\nTo: bob@example.test\nSubject: raw\n\n".to_vec();
    for i in 0..40_000 {
        raw.extend_from_slice(format!("line {i}\n").as_bytes());
        if i % 1000 == 0 {
            raw.extend_from_slice(b".\n..dots\n");
        }
    }
    std::fs::write(&path, &raw).unwrap();
    let server = Aiosmtpd::start();
    mailer()
        .send_raw(&loopback(server.port()), &envelope(), &Content::File(path))
        .expect("sent");
    let got = server.wait_for(1, WAIT);
    let expected = String::from_utf8(raw).unwrap().replace('\n', "\r\n");
    assert_eq!(String::from_utf8_lossy(&got[0].data), expected);
}

/// 8-bit content found in a streamed raw message when the server lacks
/// 8BITMIME: the send stops before the end of the data, so the server
/// never gets a complete message.
#[test]
fn eight_bit_bytes_in_a_streamed_raw_message_abort_without_8bitmime() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.eml");
    let mut raw = b"Subject: raw\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 300 << 10));
    raw.extend_from_slice("\r\nd\u{e9}j\u{e0} vu\r\n".as_bytes());
    std::fs::write(&path, &raw).unwrap();
    let server = Scripted::start(|c| {
        c.say("220 scripted.test ESMTP\r\n");
        c.hear_line();
        c.say("250-scripted.test\r\n250 PIPELINING\r\n");
        c.hear_lines(3);
        c.say("250 ok\r\n250 ok\r\n354 go ahead\r\n");
        c.drain();
    });
    let err = mailer()
        .send_raw(&loopback(server.port()), &envelope(), &Content::File(path))
        .expect_err("aborted");
    assert!(matches!(err.kind, ErrorKind::Unsupported(_)), "{err:?}");
    assert!(err.message.contains("8BITMIME"), "{}", err.message);
    let wire = server.finish();
    assert!(
        !wire.windows(5).any(|w| w == b"\r\n.\r\n"),
        "the data was never ended"
    );
    assert!(!wire.contains(&0xC3), "no 8-bit byte was sent");
}

#[test]
fn a_streamed_attachment_goes_through_starttls() {
    let pki = smtp_mailer_tests::tls::TestPki::generate();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (path, hash) = random_file(dir.path(), "scan.pdf", (3 << 20) + 17);
    let mut settings = smtp_mailer_host::Server::new("localhost", server.port());
    settings.connect_address = Some("127.0.0.1".into());
    settings.ca_pem = Some(pki.ca_pem.clone());
    let msg = with_attachment(path, "scan.pdf", "application/pdf");
    mailer().send(&settings, &msg).expect("sent over TLS");
    let got = server.wait_for(1, WAIT);
    assert!(got[0].tls, "the message came over TLS");
    let (_, contents) = only_attachment(&got[0].data);
    assert_eq!(&sha256(&contents), &hash);
}

/// A file that grows after the send started (its size was declared when it
/// was opened): the send stops before the end of the data, so the server
/// never gets a message whose content differs from what was declared.
#[test]
fn a_file_that_changes_length_during_the_send_aborts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = random_file(dir.path(), "log.txt", 100 << 10);
    let growing = path.clone();
    let server = Scripted::start(move |c| {
        c.open();
        c.hear_lines(3); // MAIL, RCPT, DATA
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&growing)
            .unwrap();
        std::io::Write::write_all(&mut file, b"one more line\n").unwrap();
        c.say("250 ok\r\n250 ok\r\n354 go ahead\r\n");
        c.drain();
    });
    let msg = with_attachment(path, "log.txt", "text/plain");
    let err = mailer()
        .send(&loopback(server.port()), &msg)
        .expect_err("aborted");
    let ErrorKind::InvalidInput { field, reason } = &err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(field, "attachments[0].content");
    assert!(reason.contains("declared"), "{reason}");
    let wire = server.finish();
    assert!(
        !wire.windows(5).any(|w| w == b"\r\n.\r\n"),
        "the data was never ended"
    );
}
