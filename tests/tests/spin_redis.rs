//! The Spin app's Redis-triggered component, composed with the real mailer
//! and driven by `smtp-mailer serve --redis-address` from a real
//! redis-server, against aiosmtpd.

use std::time::{Duration, Instant};

use smtp_mailer_tests::serve::ServeProcess;
use smtp_mailer_tests::servers::{Aiosmtpd, Redis};
use smtp_mailer_tests::support::parse;

const CHANNEL: &str = "smtp-mailer.send";

#[test]
fn a_redis_publish_leads_to_a_delivered_message() {
    let smtp = Aiosmtpd::start();
    let redis = Redis::start();
    let port = smtp.port().to_string();
    let address = redis.address();
    let _serve = ServeProcess::start_with(
        &[format!("tcp://127.0.0.1:{port}")],
        &[
            ("smtp_host", "mail.example.test"),
            ("smtp_connect_address", "127.0.0.1"),
            ("smtp_port", &port),
            ("smtp_security", "plaintext-insecure"),
        ],
        &["--redis-address", &address, "--redis-channel", CHANNEL],
    );
    // A malformed message is logged and dropped; the next one is sent.
    let messages: [&[u8]; 2] = [
        b"{not json",
        br#"{"from": "jobs@example.test", "to": "ada@example.test", "subject": "From Redis", "text": "Queued."}"#,
    ];
    // The subscription is made once serve runs: publish until it hears.
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis.publish(CHANNEL, messages[0]) == 0 {
        assert!(
            Instant::now() < deadline,
            "serve never subscribed to {CHANNEL}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(redis.publish(CHANNEL, messages[1]), 1);
    let got = smtp.wait_for(1, Duration::from_secs(30));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, "jobs@example.test");
    assert_eq!(got[0].rcpt_to, ["ada@example.test"]);
    let parsed = parse(&got[0].data);
    assert_eq!(parsed.subject(), Some("From Redis"));
    assert!(parsed.body_text(0).unwrap().starts_with("Queued."));
}
