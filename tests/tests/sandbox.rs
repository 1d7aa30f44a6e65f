//! The sandbox around the component: it reaches the configured server and
//! nothing else, and a silent server ends a send with a timeout.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use smtp_mailer_host::bindings::exports::smtp_mailer::mailer::types as wit;
use smtp_mailer_host::{bindings, ErrorKind, MailerCtxBuilder, Server, Stage};
use smtp_mailer_tests::scripted::Scripted;
use smtp_mailer_tests::servers::Aiosmtpd;
use smtp_mailer_tests::support::{loopback, mailer, message};

#[test]
fn the_component_cannot_connect_anywhere_but_the_allowed_server() {
    let allowed = Aiosmtpd::start();
    let other = Aiosmtpd::start();
    let mut ctx = MailerCtxBuilder::new();
    ctx.allow_connect(format!("127.0.0.1:{}", allowed.port()).parse().unwrap());
    let (mut store, instance) = mailer().instantiate(ctx).unwrap();

    // Asked to send to the other server, the component is refused by the host.
    let settings = bindings::server(&loopback(other.port()), Some("127.0.0.1".into()));
    let msg: wit::Message =
        bindings::message(&message(&["bob@example.test"]), store.data_mut().table()).unwrap();
    let result = instance
        .smtp_mailer_mailer_sender()
        .call_send(&mut store, &settings, &msg)
        .expect("no trap");
    let err = result.expect_err("the connection must be denied");
    assert!(matches!(err.code, wit::ErrorCode::NotAllowed(_)), "{err:?}");
    assert_eq!(err.retry, wit::Retry::Permanent, "{err:?}");

    // Name lookups are denied too: the host resolves names itself.
    let mut by_name = bindings::server(&loopback(other.port()), None);
    by_name.host = "localhost".into();
    let err = instance
        .smtp_mailer_mailer_sender()
        .call_send(&mut store, &by_name, &msg)
        .expect("no trap")
        .expect_err("name lookup must be denied");
    assert!(matches!(err.code, wit::ErrorCode::Dns(_)), "{err:?}");

    // The allowed server is reachable from the same instance.
    let settings = bindings::server(&loopback(allowed.port()), Some("127.0.0.1".into()));
    instance
        .smtp_mailer_mailer_sender()
        .call_send(&mut store, &settings, &msg)
        .expect("no trap")
        .expect("the allowed server takes the message");

    std::thread::sleep(Duration::from_millis(300));
    assert!(
        other.messages().is_empty(),
        "nothing reached the other server"
    );
    assert_eq!(allowed.wait_for(1, Duration::from_secs(5)).len(), 1);
}

#[test]
fn a_silent_server_ends_the_send_with_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        // Accept and say nothing until the client gives up.
        let (stream, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(4));
        drop(stream);
    });
    let mut server: Server = loopback(port);
    server.timeouts.command = Duration::from_millis(800);
    let _ = mailer(); // loaded before the clock starts
    let started = Instant::now();
    let err = mailer()
        .send(&server, &message(&["bob@example.test"]))
        .unwrap_err();
    let elapsed = started.elapsed();
    let ErrorKind::Timeout(failure) = &err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(failure.stage, Stage::Greeting);
    assert!(err.is_transient());
    assert!(
        elapsed >= Duration::from_millis(700),
        "fired early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "fired late: {elapsed:?}");
    holder.join().unwrap();
}

#[test]
fn a_closed_port_is_a_connection_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = mailer()
        .send(&loopback(port), &message(&["bob@example.test"]))
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Connection(_)), "{err:?}");
    assert!(err.is_transient());
}

#[test]
fn starttls_required_against_a_server_without_it_sends_nothing() {
    let server = Aiosmtpd::start();
    let settings = Server::new("127.0.0.1", server.port());
    let err = mailer()
        .send(&settings, &message(&["bob@example.test"]))
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Tls(_)), "{err:?}");
    assert!(
        err.message.contains("does not offer STARTTLS"),
        "{}",
        err.message
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.messages().is_empty());
}

#[test]
fn a_server_silent_after_the_data_ends_the_send_with_a_timeout() {
    let server = Scripted::start(|c| {
        c.open();
        c.hear_lines(3); // MAIL, RCPT, DATA in one flight
        c.say("250 ok\r\n250 ok\r\n354 go ahead\r\n");
        c.hear_data();
        c.hang(Duration::from_secs(3));
    });
    let mut settings = loopback(server.port());
    settings.timeouts.data = Duration::from_millis(800);
    let _ = mailer(); // loaded before the clock starts
    let started = Instant::now();
    let err = mailer()
        .send(&settings, &message(&["bob@example.test"]))
        .unwrap_err();
    let elapsed = started.elapsed();
    let ErrorKind::Timeout(failure) = &err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(failure.stage, Stage::DataEnd);
    assert!(elapsed < Duration::from_secs(3), "fired late: {elapsed:?}");
    let heard = String::from_utf8(server.finish()).unwrap();
    assert!(
        heard.starts_with("EHLO tests.example\r\nMAIL FROM:<sender@example.test>"),
        "{heard}"
    );
}

#[test]
fn a_connection_dropped_before_the_final_reply_is_a_transient_error() {
    let server = Scripted::start(|c| {
        c.open();
        c.hear_lines(3);
        c.say("250 ok\r\n250 ok\r\n354 go ahead\r\n");
        c.hear_data();
    });
    let err = mailer()
        .send(&loopback(server.port()), &message(&["bob@example.test"]))
        .unwrap_err();
    assert!(
        matches!(&err.kind, ErrorKind::Connection(f) if f.stage == Stage::DataEnd),
        "{err:?}"
    );
    assert!(err.is_transient());
    server.finish();
}

#[test]
fn the_memory_limit_stops_the_component_and_the_host_goes_on() {
    let small = smtp_mailer_host::Mailer::builder()
        .memory_limit(4 << 20)
        .build()
        .unwrap();
    let big = smtp_mailer_host::Message {
        attachments: vec![smtp_mailer_host::Attachment {
            filename: "big.bin".into(),
            content_type: "application/octet-stream".into(),
            content: vec![7u8; 8 << 20].into(),
            content_id: None,
        }],
        ..message(&["bob@example.test"])
    };
    let err = small.build_message(&big).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Runtime { .. }), "{err:?}");
    // The same mailer builds a small message right after.
    let bytes = small
        .build_message(&message(&["bob@example.test"]))
        .unwrap();
    assert!(bytes.starts_with(b"From: "));
}
