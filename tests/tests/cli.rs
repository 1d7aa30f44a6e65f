//! The `smtp-mailer` command line, run as a process.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mail_parser::MimeHeaders;
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions};
use smtp_mailer_tests::support::{assert_no_bcc, cli_binary, parse, run_cli};
use smtp_mailer_tests::tls::TestPki;

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    run_cli(args, stdin, &[])
}

fn url(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}?security=plaintext-insecure")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn embedded_default_performs_a_real_send() {
    let out = run(
        &[
            "send",
            "--from",
            "App <app@example.test>",
            "--to",
            "ada@example.test",
            "--subject",
            "Hi",
            "--text",
            "It works",
        ],
        None,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("the embedded capture server received it"),
        "{stdout}"
    );
    assert!(stdout.contains("RCPT TO:<ada@example.test>"));
    assert!(stdout.contains("Subject: Hi"));
    assert!(stdout.contains("It works"));
}

#[test]
fn json_message_with_attachments_and_json_receipt() {
    let server = Aiosmtpd::start();
    let json = r#"{
        "from": "\"Shop\" <shop@example.test>",
        "to": ["ada@example.test", {"name": "Bob", "address": "bob@example.test"}],
        "bcc": "audit@example.test",
        "subject": "Your receipt",
        "text": "Thanks!",
        "html": "<p>Thanks! <img src=\"cid:logo@shop\"></p>",
        "headers": {"X-Order": "42"},
        "attachments": [
            {"filename": "receipt.txt", "content": "UmVjZWlwdCAjNDI="},
            {"filename": "logo.png", "content": "iVBORw0KGgo=", "contentType": "image/png", "cid": "logo@shop"}
        ]
    }"#;
    let out = run(
        &[
            "send",
            "--server",
            &url(server.port()),
            "--json",
            "-",
            "--output",
            "json",
        ],
        Some(json),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let receipt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(receipt["status"], "sent");
    assert_eq!(receipt["recipients"].as_array().unwrap().len(), 3);

    let got = &server.wait_for(1, Duration::from_secs(10))[0];
    assert_eq!(
        got.rcpt_to,
        ["ada@example.test", "bob@example.test", "audit@example.test"]
    );
    assert_no_bcc(&got.data, &["audit@example.test"]);
    let parsed = parse(&got.data);
    assert_eq!(parsed.subject(), Some("Your receipt"));
    assert_eq!(
        parsed.header("X-Order").and_then(|h| h.as_text()),
        Some("42")
    );
    let names: Vec<_> = parsed
        .attachments()
        .map(|a| a.attachment_name().unwrap_or_default().to_string())
        .collect();
    assert!(names.contains(&"receipt.txt".to_string()), "{names:?}");
    let receipt_part = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some("receipt.txt"))
        .unwrap();
    assert_eq!(receipt_part.contents(), b"Receipt #42");
    assert_eq!(receipt["message_id"].as_str(), parsed.message_id());
}

#[test]
fn exit_codes_tell_retry_from_permanent_and_bad_input() {
    let server = Aiosmtpd::start();
    let send = |to: &str| {
        run(
            &[
                "send",
                "--server",
                &url(server.port()),
                "--from",
                "a@example.test",
                "--to",
                to,
                "--subject",
                "s",
                "--text",
                "t",
            ],
            None,
        )
    };
    assert_eq!(send("ok@example.test").status.code(), Some(0));
    let deferred = send("defer-me@example.test");
    assert_eq!(
        deferred.status.code(),
        Some(75),
        "{}",
        text(&deferred.stderr)
    );
    assert!(text(&deferred.stderr).contains("450"));
    let refused = send("refuse-me@example.test");
    assert_eq!(refused.status.code(), Some(69));
    let partial = run(
        &[
            "send",
            "--server",
            &url(server.port()),
            "--from",
            "a@example.test",
            "--to",
            "ok@example.test",
            "--to",
            "refuse-x@example.test",
            "--text",
            "t",
        ],
        None,
    );
    assert_eq!(partial.status.code(), Some(69));
    assert!(
        text(&partial.stdout).contains("refused   refuse-x@example.test"),
        "{}",
        text(&partial.stdout)
    );
    let bad = send("not an address");
    assert_eq!(bad.status.code(), Some(65));
    assert!(
        text(&bad.stderr).contains("to[0].address"),
        "{}",
        text(&bad.stderr)
    );
    let bad_json = run(
        &["send", "--server", &url(server.port()), "--json", "-"],
        Some("{\"from\": 1"),
    );
    assert_eq!(bad_json.status.code(), Some(65));
}

#[test]
fn build_prints_the_message_without_bcc() {
    let out = run(
        &[
            "build",
            "--from",
            "a@example.test",
            "--to",
            "b@example.test",
            "--bcc",
            "c@example.test",
            "--subject",
            "Built",
            "--header",
            "X-Test: yes",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let parsed = parse(&out.stdout);
    assert_eq!(parsed.subject(), Some("Built"));
    assert_eq!(
        parsed.header("X-Test").and_then(|h| h.as_text()),
        Some("yes")
    );
    assert_no_bcc(&out.stdout, &["c@example.test"]);
}

#[test]
fn capture_command_stores_each_message() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut capture = Command::new(cli_binary())
        .args([
            "capture",
            "--dir",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // "capturing on 127.0.0.1:PORT into DIR"
    let mut first = String::new();
    std::io::BufReader::new(capture.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port: u16 = first
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    let out = run(
        &[
            "send",
            "--server",
            &url(port),
            "--from",
            "a@example.test",
            "--to",
            "b@example.test",
            "--text",
            "captured",
        ],
        None,
    );
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    capture.kill().unwrap();
    capture.wait().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let eml = files
        .iter()
        .find(|f| f.ends_with(".eml"))
        .unwrap_or_else(|| panic!("{files:?}"));
    assert!(files.iter().any(|f| f.ends_with(".json")), "{files:?}");
    let data = std::fs::read(dir.path().join(eml)).unwrap();
    assert_eq!(parse(&data).body_text(0).unwrap().trim_end(), "captured");
}

#[test]
fn tls_and_auth_from_the_url_and_environment_never_print_the_secret() {
    use base64::Engine as _;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let pki = TestPki::generate();
    let password = "s3cret-Pa55word";
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        auth: Some(("alice".into(), password.into())),
        ..Default::default()
    });
    let ca = pki.ca.to_str().unwrap().to_string();
    let url = format!("smtp://alice@localhost:{}", server.port());
    let secrets = [
        password.to_string(),
        b64(password.as_bytes()),
        b64(format!("\0alice\0{password}").as_bytes()),
    ];
    for (mechanism, expected_code) in [("PLAIN", 0), ("LOGIN", 0)] {
        let out = run_cli(
            &[
                "send",
                "-v",
                "--server",
                &url,
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
                "json",
            ],
            None,
            &[("SMTP_PASSWORD", password)],
        );
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(expected_code), "{all}");
        assert!(
            all.contains("C: STARTTLS") && all.contains(&format!("C: AUTH {mechanism} <redacted>")),
            "{all}"
        );
        for secret in &secrets {
            assert!(
                !all.contains(secret.as_str()),
                "{mechanism}: {secret} appears in:\n{all}"
            );
        }
    }
    // A wrong password: a permanent failure, and still no secret.
    let out = run_cli(
        &[
            "send",
            "-v",
            "--server",
            &url,
            "--connect-address",
            "127.0.0.1",
            "--ca-file",
            &ca,
            "--from",
            "a@example.test",
            "--to",
            "b@example.test",
            "--text",
            "x",
        ],
        None,
        &[("SMTP_PASSWORD", "wrong-Pa55word")],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(69), "{all}");
    assert!(all.contains("535"), "{all}");
    assert!(
        !all.contains("wrong-Pa55word") && !all.contains(&b64(b"wrong-Pa55word")),
        "{all}"
    );
    // Without the CA file the certificate is refused, naming the cause.
    let out = run_cli(
        &[
            "send",
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
        ],
        None,
        &[("SMTP_PASSWORD", password)],
    );
    assert_eq!(out.status.code(), Some(69));
    assert!(
        text(&out.stderr).contains("unknown issuer"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(server.wait_for(2, Duration::from_secs(10)).len(), 2);
}
