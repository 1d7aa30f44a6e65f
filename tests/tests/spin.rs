//! The Spin app's HTTP component, composed with the real mailer and served
//! by `smtp-mailer serve`, against aiosmtpd.

use std::time::Duration;

use base64::Engine as _;
use mail_parser::MimeHeaders;
use smtp_mailer_serve::{compose, imports_and_exports, HTTP_COMPONENT, REDIS_COMPONENT};
use smtp_mailer_tests::dkim::{dkimpy, keygen};
use smtp_mailer_tests::serve::{post_send, raw_request, request, ServeProcess, API_KEY};
use smtp_mailer_tests::servers::Aiosmtpd;
use smtp_mailer_tests::support::{assert_no_bcc, parse};

fn relay_variables(port: &str) -> Vec<(&'static str, String)> {
    vec![
        ("smtp_host", "mail.example.test".to_string()),
        ("smtp_connect_address", "127.0.0.1".to_string()),
        ("smtp_port", port.to_string()),
        ("smtp_security", "plaintext-insecure".to_string()),
    ]
}

fn serve_for(port: u16, allow_port: u16, extra: &[(&'static str, &str)]) -> ServeProcess {
    let mut variables = relay_variables(&port.to_string());
    variables.extend(extra.iter().map(|(n, v)| (*n, v.to_string())));
    let variables: Vec<(&str, &str)> = variables.iter().map(|(n, v)| (*n, v.as_str())).collect();
    ServeProcess::start(&[format!("tcp://127.0.0.1:{allow_port}")], &variables)
}

const MESSAGE: &str = r#"{
    "from": "\"Shop\" <shop@example.test>",
    "to": ["ada@example.test", {"name": "Bob", "address": "bob@example.test"}],
    "bcc": "audit@example.test",
    "subject": "Your receipt ✓",
    "text": "Thanks!\n.\nA dot line.",
    "attachments": [{"filename": "r.bin", "content": "AAECAwQF/w==", "contentType": "application/octet-stream"}],
    "headers": {"X-Order": "42"}
}"#;

#[test]
fn an_http_send_arrives_intact() {
    let smtp = Aiosmtpd::start();
    let serve = serve_for(smtp.port(), smtp.port(), &[]);
    let answer = post_send(serve.address(), Some(API_KEY), MESSAGE.as_bytes());
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let receipt = answer.json();
    assert_eq!(receipt["status"], "sent");
    let recipients = receipt["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 3);
    assert!(recipients
        .iter()
        .all(|r| r["accepted"] == true && r["reply"]["code"] == 250));
    assert_eq!(receipt["final_reply"]["code"], 250);

    let got = smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, "shop@example.test");
    assert_eq!(
        got[0].rcpt_to,
        ["ada@example.test", "bob@example.test", "audit@example.test"]
    );
    assert_no_bcc(&got[0].data, &["audit@example.test"]);
    let parsed = parse(&got[0].data);
    assert_eq!(parsed.subject(), Some("Your receipt ✓"));
    assert!(parsed
        .body_text(0)
        .unwrap()
        .replace("\r\n", "\n")
        .starts_with("Thanks!\n.\nA dot line."));
    let attachment = parsed.attachment(0).expect("the attachment");
    assert_eq!(attachment.attachment_name(), Some("r.bin"));
    assert_eq!(
        attachment.contents(),
        base64::engine::general_purpose::STANDARD
            .decode("AAECAwQF/w==")
            .unwrap()
    );
    assert_eq!(
        parsed.header("X-Order").and_then(|h| h.as_text()),
        Some("42")
    );
    assert_eq!(
        receipt["message_id"].as_str(),
        parsed.message_id(),
        "the receipt names the Message-ID that arrived"
    );
}

#[test]
fn a_missing_or_wrong_key_is_refused_with_401() {
    let smtp = Aiosmtpd::start();
    let serve = serve_for(smtp.port(), smtp.port(), &[]);
    for key in [None, Some("wrong-key"), Some("")] {
        let answer = post_send(serve.address(), key, MESSAGE.as_bytes());
        assert_eq!(answer.status, 401, "key {key:?}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        smtp.messages().is_empty(),
        "nothing is sent without the key"
    );
}

#[test]
fn malformed_json_is_refused_with_400_naming_the_field() {
    let smtp = Aiosmtpd::start();
    let serve = serve_for(smtp.port(), smtp.port(), &[]);
    let cases: [(&str, Option<&str>); 5] = [
        ("{not json", None),
        (r#"{"to": "ada@example.test"}"#, Some("from")),
        (
            r#"{"from": "a@example.test", "to": ["b@example.test", 7]}"#,
            Some("to[1]"),
        ),
        (
            r#"{"from": "a@example.test", "to": "b@example.test", "subject": 5}"#,
            Some("subject"),
        ),
        (
            r#"{"from": "a@example.test", "to": "b@example.test", "attachments": [{"filename": "a", "content": "!!"}]}"#,
            Some("attachments[0].content"),
        ),
    ];
    for (body, field) in cases {
        let answer = post_send(serve.address(), Some(API_KEY), body.as_bytes());
        assert_eq!(
            answer.status,
            400,
            "{body}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let error = &answer.json()["error"];
        assert_eq!(error["kind"], "invalid-input");
        assert_eq!(error["field"].as_str(), field, "{body}");
    }
    // The mailer's own checks name their field too.
    let answer = post_send(
        serve.address(),
        Some(API_KEY),
        br#"{"from": "a@example.test", "to": "b@example.test", "headers": {"X-Bad": "a\r\nBcc: evil@example.test"}}"#,
    );
    assert_eq!(
        answer.status,
        400,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(answer.json()["error"]["field"]
        .as_str()
        .unwrap_or("")
        .starts_with("headers"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(smtp.messages().is_empty());
}

#[test]
fn an_oversized_body_is_refused_with_413() {
    let smtp = Aiosmtpd::start();
    let serve = serve_for(smtp.port(), smtp.port(), &[("max_body_bytes", "2000")]);
    let text = "x".repeat(5000);
    let body = format!(r#"{{"from": "a@example.test", "to": "b@example.test", "text": "{text}"}}"#);
    let answer = post_send(serve.address(), Some(API_KEY), body.as_bytes());
    assert_eq!(answer.status, 413);
    // Without a Content-Length, the cap is found while reading.
    let mut chunked = format!(
        "POST /send HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {API_KEY}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in body.as_bytes().chunks(1000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_request(serve.address(), &chunked);
    assert_eq!(
        answer.status,
        413,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    // Under the cap, the same service sends.
    let answer = post_send(
        serve.address(),
        Some(API_KEY),
        br#"{"from": "a@example.test", "to": "b@example.test", "text": "short"}"#,
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn a_relay_that_is_down_answers_503_with_retry_after() {
    let port = closed_port();
    let serve = serve_for(port, port, &[]);
    let answer = post_send(serve.address(), Some(API_KEY), MESSAGE.as_bytes());
    assert_eq!(
        answer.status,
        503,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.header("retry-after"), Some("60"));
    let error = &answer.json()["error"];
    assert_eq!(error["retry"], "transient");
    assert_eq!(error["kind"], "connection");
}

#[test]
fn a_relay_that_defers_every_recipient_answers_503() {
    let smtp = Aiosmtpd::start();
    let serve = serve_for(smtp.port(), smtp.port(), &[]);
    let answer = post_send(
        serve.address(),
        Some(API_KEY),
        br#"{"from": "a@example.test", "to": "defer-me@example.test", "text": "hi"}"#,
    );
    assert_eq!(
        answer.status,
        503,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.header("retry-after"), Some("60"));
    let error = &answer.json()["error"];
    assert_eq!(error["retry"], "transient");
    assert_eq!(error["recipients"][0]["reply"]["code"], 450);
}

#[test]
fn a_relay_not_on_the_allow_list_is_refused() {
    let smtp = Aiosmtpd::start();
    // The allow-list names another port of the same address.
    let serve = serve_for(smtp.port(), closed_port(), &[]);
    let answer = post_send(serve.address(), Some(API_KEY), MESSAGE.as_bytes());
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    // A misconfiguration, not a passing failure: no retry.
    assert_eq!(answer.status, 500, "{body}");
    assert_eq!(answer.header("retry-after"), None);
    let error = &answer.json()["error"];
    assert_eq!(error["kind"], "not-allowed");
    assert_eq!(error["retry"], "permanent");
    // The sandbox refused the connect (WASI's access-denied, named without
    // a number); the network was never asked.
    let message = error["message"].as_str().unwrap_or("");
    assert!(message.contains("access denied"), "{body}");
    assert!(!message.contains("os error"), "{body}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(smtp.messages().is_empty(), "the relay saw nothing");

    // Host names are refused when read: a component has no DNS.
    let out = smtp_mailer_tests::support::run_cli(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-outbound",
            "tcp://localhost:25",
        ],
        None,
        &[],
    );
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("host name never matches"));
}

#[test]
fn health_answers_200() {
    let serve = serve_for(closed_port(), closed_port(), &[]);
    let answer = request(serve.address(), "GET", "/health", &[], b"");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["status"], "ok");
    assert_eq!(
        request(serve.address(), "GET", "/nope", &[], b"").status,
        404
    );
    assert_eq!(
        request(serve.address(), "GET", "/send", &[], b"").status,
        405
    );
}

#[test]
fn the_mailer_imports_nothing_spin_specific() {
    let (imports, exports) = imports_and_exports(smtp_mailer_host::COMPONENT).unwrap();
    assert!(!imports.is_empty());
    for import in &imports {
        assert!(import.starts_with("wasi:"), "the mailer imports {import}");
    }
    assert!(
        exports
            .iter()
            .any(|e| e.starts_with("smtp-mailer:mailer/sender@")),
        "{exports:?}"
    );

    let (app_imports, app_exports) = imports_and_exports(HTTP_COMPONENT).unwrap();
    assert!(
        app_imports
            .iter()
            .any(|i| i.starts_with("smtp-mailer:mailer/sender@")),
        "{app_imports:?}"
    );
    assert!(
        app_imports
            .iter()
            .any(|i| i.starts_with("fermyon:spin/variables@")),
        "{app_imports:?}"
    );
    assert!(
        app_exports
            .iter()
            .any(|e| e.starts_with("wasi:http/incoming-handler@")),
        "{app_exports:?}"
    );

    let (redis_imports, redis_exports) = imports_and_exports(REDIS_COMPONENT).unwrap();
    assert!(
        redis_imports
            .iter()
            .any(|i| i.starts_with("smtp-mailer:mailer/sender@")),
        "{redis_imports:?}"
    );
    assert_eq!(redis_exports, ["fermyon:spin/inbound-redis"]);

    // Composed, the mailer satisfies the app's mailer imports: what is left
    // for the host is WASI, Spin's variables and Spin's outbound Redis (the
    // durable queue).
    let composed = compose(HTTP_COMPONENT, smtp_mailer_host::COMPONENT).unwrap();
    let (imports, exports) = imports_and_exports(&composed).unwrap();
    for import in &imports {
        assert!(
            import.starts_with("wasi:")
                || import.starts_with("fermyon:spin/variables@")
                || import.starts_with("fermyon:spin/redis@"),
            "the composition imports {import}"
        );
    }
    assert_eq!(exports, app_exports);
    // For the record (`--nocapture`): what each piece imports and exports.
    let (mailer_imports, mailer_exports) =
        imports_and_exports(smtp_mailer_host::COMPONENT).unwrap();
    for (name, imports, exports) in [
        ("mailer", &mailer_imports, &mailer_exports),
        ("send-http", &app_imports, &app_exports),
        ("send-redis", &redis_imports, &redis_exports),
        ("send-http composed with the mailer", &imports, &exports),
    ] {
        println!(
            "{name}:\n  imports: {}\n  exports: {}",
            imports.join(", "),
            exports.join(", ")
        );
    }
}

#[test]
fn partial_delivery_is_reported_per_recipient() {
    let smtp = Aiosmtpd::start();
    let serve = serve_for(smtp.port(), smtp.port(), &[]);
    let answer = post_send(
        serve.address(),
        Some(API_KEY),
        br#"{"from": "a@example.test", "to": ["ada@example.test", "refuse-me@example.test"], "text": "hi"}"#,
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let receipt = answer.json();
    assert_eq!(receipt["status"], "partial");
    let recipients = receipt["recipients"].as_array().unwrap();
    assert_eq!(recipients[0]["address"], "ada@example.test");
    assert_eq!(recipients[0]["accepted"], true);
    assert_eq!(recipients[1]["address"], "refuse-me@example.test");
    assert_eq!(recipients[1]["accepted"], false);
    assert_eq!(recipients[1]["reply"]["code"], 550);
    assert_eq!(
        smtp.wait_for(1, Duration::from_secs(10))[0].rcpt_to,
        ["ada@example.test"]
    );

    // Every recipient refused: nothing was sent, and the answer says why
    // for each one; a permanent refusal is 502.
    let answer = post_send(
        serve.address(),
        Some(API_KEY),
        br#"{"from": "a@example.test", "to": ["refuse-1@example.test", "refuse-2@example.test"], "text": "hi"}"#,
    );
    assert_eq!(
        answer.status,
        502,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let error = &answer.json()["error"];
    assert_eq!(error["kind"], "rejected");
    assert_eq!(error["retry"], "permanent");
    assert_eq!(error["recipients"].as_array().map(Vec::len), Some(2));
}

/// The DKIM key comes from a secret Spin variable; dkimpy verifies what
/// arrives, with its DNS lookup answered from the key's record.
#[test]
fn the_spin_app_signs_with_the_dkim_key_from_a_secret_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (key, record) = keygen(dir.path(), "ed25519", "spin", "example.test");
    let pem = std::fs::read_to_string(&key).unwrap();

    let smtp = Aiosmtpd::start();
    let serve = serve_for(
        smtp.port(),
        smtp.port(),
        &[
            ("dkim_private_key", &pem),
            ("dkim_selector", "spin"),
            ("dkim_domain", "example.test"),
        ],
    );
    let answer = post_send(serve.address(), Some(API_KEY), MESSAGE.as_bytes());
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let got = smtp.wait_for(1, Duration::from_secs(10));
    assert!(got[0]
        .data
        .starts_with(b"DKIM-Signature: v=1; a=ed25519-sha256;"));

    assert!(
        dkimpy(&got[0].data, &record),
        "the Spin app's signature verifies"
    );
}
