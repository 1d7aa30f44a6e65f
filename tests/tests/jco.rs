//! The component in a second, independent WASI 0.2 host: transpiled by jco
//! and run by Node with preview2-shim. The same exports, the same sandboxed
//! sends, against real servers: "runs in any WASI 0.2 host", checked.

use std::time::Duration;

use base64::Engine as _;
use mail_parser::MimeHeaders;
use serde_json::{json, Value};
use smtp_mailer_tests::jco::Jco;
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions};
use smtp_mailer_tests::support::parse;
use smtp_mailer_tests::tls::TestPki;
use smtp_mailer_tests::unanswered::closed_port;

const WAIT: Duration = Duration::from_secs(10);
const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

fn plaintext(port: u16) -> Value {
    json!({"host": "127.0.0.1", "port": port, "security": "plaintext-insecure", "trace": false})
}

fn message(to: &str, subject: &str) -> Value {
    json!({
        "from": {"name": "Node host", "address": "node@example.org"},
        "to": [{"address": to}],
        "subject": subject,
        "text": "Sent by the component under jco.",
    })
}

fn results(answer: &Value) -> &Vec<Value> {
    assert_eq!(answer["ok"], true, "the driver failed: {answer}");
    answer["results"].as_array().expect("results")
}

#[test]
fn build_gives_the_message_with_its_attachment() {
    let mut m = message("ada@example.org", "Grüße from Node ✉");
    m["html"] = json!("<p>Hello</p>");
    m["attachments"] = json!([{
        "filename": "notes.txt",
        "contentType": "text/plain",
        "content": base64::engine::general_purpose::STANDARD.encode("a line\r\n.\r\n"),
    }]);
    let answer = Jco::get().run(&json!({"op": "build", "messages": [m]}));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(results(&answer)[0].as_str().expect("base64 bytes"))
        .expect("base64");
    let parsed = parse(&bytes);
    assert_eq!(parsed.subject(), Some("Grüße from Node ✉"));
    assert_eq!(parsed.body_html(0).as_deref(), Some("<p>Hello</p>"));
    let attachment = parsed.attachment(0).expect("the attachment");
    assert_eq!(attachment.attachment_name(), Some("notes.txt"));
    assert_eq!(attachment.contents(), b"a line\r\n.\r\n");
}

#[test]
fn a_send_then_a_session_of_three_over_one_connection() {
    let server = Aiosmtpd::start();
    let jco = Jco::get();
    let answer = jco.run(&json!({
        "op": "send",
        "server": plaintext(server.port()),
        "messages": [message("ada@example.org", "one")],
    }));
    assert_eq!(results(&answer)[0]["recipients"][0]["accepted"], true);

    let answer = jco.run(&json!({
        "op": "session",
        "server": plaintext(server.port()),
        "messages": [
            message("alan@example.org", "two"),
            message("grace@example.org", "three"),
            message("barbara@example.org", "four"),
        ],
    }));
    let reports = results(&answer);
    assert_eq!(reports.len(), 3);
    let received = server.wait_for(4, WAIT);
    let subjects: Vec<_> = received
        .iter()
        .map(|r| parse(&r.data).subject().unwrap_or_default().to_string())
        .collect();
    assert_eq!(subjects, ["one", "two", "three", "four"]);
    // The session: one connection for the last three, another than the send's.
    assert_ne!(received[0].connection, received[1].connection);
    assert!(received[1..]
        .iter()
        .all(|r| r.connection == received[1].connection));
    for (report, r) in reports.iter().zip(&received[1..]) {
        let id = report["messageId"].as_str().expect("a Message-ID");
        assert_eq!(parse(&r.data).message_id(), Some(id));
    }
}

#[test]
fn starttls_and_auth_with_a_private_ca() {
    let pki = TestPki::generate();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        require_starttls: true,
        auth: Some((USER.into(), PASSWORD.into())),
        auth_required: true,
        ..AiosmtpdOptions::default()
    });
    let settings = |password: &str, ca: Option<&str>| {
        json!({
            "host": "localhost",
            "connectAddress": "127.0.0.1",
            "port": server.port(),
            "security": "starttls-required",
            "credentials": {"user": USER, "secret": {"tag": "password", "val": password}},
            "caPem": ca,
            "trace": false,
        })
    };
    let jco = Jco::get();
    let answer = jco.run(&json!({
        "op": "send",
        "server": settings(PASSWORD, Some(&pki.ca_pem)),
        "messages": [message("ada@example.org", "over TLS")],
    }));
    assert_eq!(results(&answer)[0]["recipients"][0]["accepted"], true);
    let received = server.wait_for(1, WAIT);
    assert!(received[0].tls, "the message came without TLS");
    assert_eq!(received[0].auth_user.as_deref(), Some(USER));

    // Without the private CA the certificate is refused, naming the cause.
    let answer = jco.run(&json!({
        "op": "send",
        "server": settings(PASSWORD, None),
        "messages": [message("ada@example.org", "unverified")],
    }));
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["error"]["code"], "tls", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown issuer")),
        "{answer}"
    );

    // A wrong password: an authentication error, the password not echoed.
    let answer = jco.run(&json!({
        "op": "send",
        "server": settings("wrong horse", Some(&pki.ca_pem)),
        "messages": [message("ada@example.org", "refused")],
    }));
    assert_eq!(answer["error"]["code"], "authentication", "{answer}");
    assert!(!answer.to_string().contains("wrong horse"), "{answer}");
    assert_eq!(server.message_count(), 1);
}

#[test]
fn a_refused_connection_is_reported_as_one_every_time() {
    let jco = Jco::get();
    for _ in 0..10 {
        let answer = jco.run(&json!({
            "op": "send",
            "server": plaintext(closed_port()),
            "messages": [message("ada@example.org", "nobody listens")],
        }));
        let error = &answer["error"];
        assert_eq!(error["code"], "connection", "{answer}");
        assert_eq!(error["stage"], "connect", "{answer}");
        assert_eq!(error["retry"], "transient", "{answer}");
        let text = error["message"].as_str().unwrap_or_default();
        assert!(text.contains("connection refused"), "{answer}");
        assert!(!text.contains("os error"), "{answer}");
    }
}
