//! TLS and AUTH through the real component: STARTTLS and implicit TLS
//! against aiosmtpd and Exim with a test CA the tests generate, AUTH, and
//! the failures users meet (bad certificates, wrong password, confused TLS
//! styles, STARTTLS injection and stripping).

use std::time::{Duration, Instant};

use smtp_mailer_host::{Credentials, ErrorKind, Secret, Security, Server, Stage};
use smtp_mailer_tests::scripted::Scripted;
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions, Exim, EximOptions};
use smtp_mailer_tests::support::{mailer, message};
use smtp_mailer_tests::tls::TestPki;

const WAIT: Duration = Duration::from_secs(10);
const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

/// Settings for a TLS server on loopback whose certificate says `localhost`.
fn tls_server(port: u16, security: Security, pki: &TestPki) -> Server {
    let mut server = Server::new("localhost", port);
    server.connect_address = Some("127.0.0.1".into());
    server.security = security;
    server.ca_pem = Some(pki.ca_pem.clone());
    server.client_name = Some("tests.example".into());
    server
}

fn with_password(mut server: Server, password: &str, mechanism: Option<&str>) -> Server {
    server.credentials = Some(Credentials {
        user: USER.into(),
        secret: Secret::Password(password.into()),
        mechanism: mechanism.map(str::to_string),
    });
    server
}

fn auth() -> Option<(String, String)> {
    Some((USER.into(), PASSWORD.into()))
}

#[test]
fn starttls_then_auth_plain_and_login_against_aiosmtpd() {
    let pki = TestPki::generate();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        auth: auth(),
        ..Default::default()
    });
    for (i, mechanism) in [Some("PLAIN"), Some("LOGIN"), None].into_iter().enumerate() {
        let settings = with_password(
            tls_server(server.port(), Security::StarttlsRequired, &pki),
            PASSWORD,
            mechanism,
        );
        let report = mailer()
            .send(&settings, &message(&["bob@example.test"]))
            .unwrap();
        assert!(report.all_accepted());
        let got = &server.wait_for(i + 1, WAIT)[i];
        assert!(got.tls, "the message crossed TLS");
        assert_eq!(got.auth_user.as_deref(), Some(USER));
    }
}

#[test]
fn implicit_tls_against_aiosmtpd() {
    let pki = TestPki::generate();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        implicit_tls: Some(pki.good.clone()),
        auth: auth(),
        ..Default::default()
    });
    let settings = with_password(
        tls_server(server.port(), Security::ImplicitTls, &pki),
        PASSWORD,
        None,
    );
    let mut session = mailer().open_session(&settings).unwrap();
    for _ in 0..3 {
        session.send(&message(&["bob@example.test"])).unwrap();
    }
    session.close().unwrap();
    let got = server.wait_for(3, WAIT);
    assert!(got
        .iter()
        .all(|m| m.tls && m.auth_user.as_deref() == Some(USER)));
}

#[test]
fn a_wrong_password_is_an_authentication_error_without_the_secret() {
    let pki = TestPki::generate();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        auth: auth(),
        ..Default::default()
    });
    let secret = "hunter2-wrong";
    let settings = with_password(
        tls_server(server.port(), Security::StarttlsRequired, &pki),
        secret,
        None,
    );
    let err = mailer()
        .send(&settings, &message(&["bob@example.test"]))
        .unwrap_err();
    let ErrorKind::Authentication(rejection) = &err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(rejection.reply.code, 535);
    assert!(err.is_permanent());
    assert!(
        err.message.contains("check the user name"),
        "{}",
        err.message
    );
    let shown = format!("{err} {err:?} {settings:?}");
    assert!(!shown.contains(secret), "the secret leaked: {shown}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.messages().is_empty());
}

#[test]
fn certificate_failures_name_their_cause() {
    let pki = TestPki::generate();
    let cases = [
        (pki.unknown_issuer.clone(), "unknown issuer"),
        (pki.wrong_name.clone(), "not valid for the name localhost"),
        (pki.expired.clone(), "expired"),
    ];
    for (cert, cause) in cases {
        let server = Aiosmtpd::start_with(AiosmtpdOptions {
            starttls: Some(cert),
            ..Default::default()
        });
        let settings = tls_server(server.port(), Security::StarttlsRequired, &pki);
        let err = mailer()
            .send(&settings, &message(&["bob@example.test"]))
            .unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Tls(_)), "{err:?}");
        assert!(err.message.contains(cause), "{cause}: {}", err.message);
        assert!(server.messages().is_empty());
    }
    // Without the test CA, even the good certificate is refused.
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        ..Default::default()
    });
    let mut settings = tls_server(server.port(), Security::StarttlsRequired, &pki);
    settings.ca_pem = None;
    let err = mailer()
        .send(&settings, &message(&["bob@example.test"]))
        .unwrap_err();
    assert!(err.message.contains("unknown issuer"), "{}", err.message);
}

#[test]
fn confused_tls_styles_fail_fast_with_the_mode_to_use() {
    let pki = TestPki::generate();
    // Implicit TLS against a server that greets in plaintext (a STARTTLS port).
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        ..Default::default()
    });
    let _ = mailer(); // loaded before the clock starts
    let started = Instant::now();
    let err = mailer()
        .send(
            &tls_server(server.port(), Security::ImplicitTls, &pki),
            &message(&["bob@example.test"]),
        )
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "not a timeout");
    assert!(
        err.message.contains("use starttls-required"),
        "{}",
        err.message
    );

    // STARTTLS against an implicit-TLS server: the server waits for a
    // handshake; port 465 is recognised before connecting.
    let _ = mailer(); // loaded before the clock starts
    let started = Instant::now();
    let err = mailer()
        .send(
            &tls_server(465, Security::StarttlsRequired, &pki),
            &message(&["bob@example.test"]),
        )
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        err.message.contains("use the implicit-tls security mode"),
        "{}",
        err.message
    );
}

#[test]
fn starttls_response_injection_aborts_the_session() {
    let server = Scripted::start(|c| {
        c.say("220 scripted.test ESMTP\r\n");
        c.hear_line();
        c.say("250-scripted.test\r\n250 STARTTLS\r\n");
        c.hear_line();
        // The 220 and an injected reply in one segment.
        c.say("220 2.0.0 Ready\r\n250-injected\r\n250 AUTH PLAIN\r\n");
        c.drain();
    });
    let pki = TestPki::generate();
    let settings = with_password(
        tls_server(server.port(), Security::StarttlsRequired, &pki),
        PASSWORD,
        None,
    );
    let err = mailer()
        .send(&settings, &message(&["bob@example.test"]))
        .unwrap_err();
    assert!(
        matches!(&err.kind, ErrorKind::Protocol(f) if f.stage == Stage::Tls),
        "{err:?}"
    );
    assert!(err.message.contains("injection"), "{}", err.message);
    let heard = String::from_utf8(server.finish()).unwrap();
    assert_eq!(
        heard, "EHLO tests.example\r\nSTARTTLS\r\n",
        "nothing after STARTTLS"
    );
}

#[test]
fn credentials_are_never_sent_in_clear_when_starttls_is_missing() {
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        auth: auth(),
        auth_plaintext: true,
        ..Default::default()
    });
    let pki = TestPki::generate();
    let settings = with_password(
        tls_server(server.port(), Security::StarttlsOpportunistic, &pki),
        PASSWORD,
        None,
    );
    let err = mailer()
        .send(&settings, &message(&["bob@example.test"]))
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Authentication(_)), "{err:?}");
    assert!(err.message.contains("not protected by TLS"));
    // Stripped STARTTLS in required mode: a TLS error, no AUTH, no MAIL.
    let settings = with_password(
        tls_server(server.port(), Security::StarttlsRequired, &pki),
        PASSWORD,
        None,
    );
    let err = mailer()
        .send(&settings, &message(&["bob@example.test"]))
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Tls(_)), "{err:?}");
    assert!(server.messages().is_empty());
}

#[test]
fn exim_starttls_with_auth() {
    let pki = TestPki::generate();
    let server = Exim::start_with(EximOptions {
        starttls: Some(pki.good.clone()),
        auth: auth(),
        ..Default::default()
    });
    let settings = with_password(
        tls_server(server.port(), Security::StarttlsRequired, &pki),
        PASSWORD,
        None,
    );
    let report = mailer()
        .send(&settings, &message(&["bob@example.test"]))
        .unwrap();
    assert!(report.all_accepted());
    assert_eq!(server.wait_for(1, Duration::from_secs(15)).len(), 1);
    let wrong = with_password(
        tls_server(server.port(), Security::StarttlsRequired, &pki),
        "nope",
        None,
    );
    let err = mailer()
        .send(&wrong, &message(&["bob@example.test"]))
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Authentication(_)), "{err:?}");
}

#[test]
fn a_starttls_send_on_a_new_connection_has_no_nagle_stall() {
    let pki = TestPki::generate();
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        ..Default::default()
    });
    let settings = tls_server(server.port(), Security::StarttlsRequired, &pki);
    mailer()
        .send(&settings, &message(&["bob@example.test"]))
        .unwrap();
    // A stall adds 40 ms to every send; the fastest of several shows it
    // whatever else the machine is doing.
    let fastest = (0..7)
        .map(|_| {
            let _ = mailer(); // loaded before the clock starts
            let started = Instant::now();
            mailer()
                .send(&settings, &message(&["bob@example.test"]))
                .unwrap();
            started.elapsed()
        })
        .min()
        .unwrap();
    eprintln!("fastest STARTTLS send on a new connection: {fastest:?}");
    assert!(
        fastest < Duration::from_millis(40),
        "a send took {fastest:?}: a Nagle stall"
    );
}

/// A scripted server that offers STARTTLS and answers it with `answer`,
/// then records what else the client writes.
fn starttls_answered_with(answer: &'static str) -> Scripted {
    Scripted::start(move |c| {
        c.say("220 scripted.test ESMTP\r\n");
        c.hear_line();
        c.say("250-scripted.test\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n");
        c.hear_line();
        c.say(answer);
        c.drain();
    })
}

#[test]
fn required_mode_refused_or_dropped_leaves_nothing_after_starttls() {
    let pki = TestPki::generate();
    for (answer, kind) in [
        (
            "454 4.7.0 TLS not available due to temporary reason\r\n",
            "refused",
        ),
        ("220 2.0.0 Ready to start TLS\r\n", "dropped"),
    ] {
        let server = starttls_answered_with(answer);
        let port = server.port();
        // For "dropped", the script closes the connection once the client
        // starts its handshake: drain() returns at the first bytes' end.
        let settings = with_password(
            tls_server(port, Security::StarttlsRequired, &pki),
            PASSWORD,
            None,
        );
        let err = mailer()
            .send(&settings, &message(&["bob@example.test"]))
            .unwrap_err();
        let heard = server.finish();
        let text = String::from_utf8_lossy(&heard);
        assert!(
            text.starts_with("EHLO tests.example\r\nSTARTTLS\r\n"),
            "{kind}: {text}"
        );
        assert!(
            !text.contains("AUTH") && !text.contains("MAIL"),
            "{kind}: {text}"
        );
        match kind {
            "refused" => {
                assert!(matches!(err.kind, ErrorKind::Tls(_)), "{err:?}");
                assert!(err.is_transient(), "454 is temporary");
                assert_eq!(text, "EHLO tests.example\r\nSTARTTLS\r\n");
            }
            _ => assert!(
                matches!(err.kind, ErrorKind::Tls(_) | ErrorKind::Connection(_)),
                "{err:?}"
            ),
        }
    }
}

/// A plaintext server offering the OAuth mechanisms; it answers the AUTH
/// line with `answer` and records everything.
fn oauth_server(answer: &'static str) -> Scripted {
    Scripted::start(move |c| {
        c.say("220 scripted.test ESMTP\r\n");
        c.hear_line();
        c.say("250-scripted.test\r\n250-PIPELINING\r\n250 AUTH XOAUTH2 OAUTHBEARER PLAIN\r\n");
        c.hear_line();
        c.say(answer);
        if answer.starts_with("334") {
            c.hear_line();
            c.say("535 5.7.8 Username and Password not accepted\r\n");
        } else {
            c.hear_lines(3);
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.hear_data();
            c.say("250 queued\r\n");
            c.hear_line();
            c.say("221 bye\r\n");
        }
        c.drain();
    })
}

fn with_token(port: u16, mechanism: &str) -> Server {
    let mut server = Server::new("mail.example", port).plaintext_insecure();
    server.connect_address = Some("127.0.0.1".into());
    server.client_name = Some("tests.example".into());
    server.credentials = Some(Credentials {
        user: "alice@example.test".into(),
        secret: Secret::OAuth2Token("ya29.token-value".into()),
        mechanism: Some(mechanism.into()),
    });
    server
}

fn decode(b64: &str) -> String {
    use base64::Engine as _;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn xoauth2_and_oauthbearer_exchanges() {
    for (mechanism, expected) in [
        ("XOAUTH2", "user=alice@example.test\x01auth=Bearer ya29.token-value\x01\x01"),
        (
            "OAUTHBEARER",
            "n,a=alice@example.test,\x01host=mail.example\x01port=25\x01auth=Bearer ya29.token-value\x01\x01",
        ),
    ] {
        // Success.
        let server = oauth_server("235 2.7.0 Accepted\r\n");
        let mut settings = with_token(server.port(), mechanism);
        settings.port = server.port();
        let port = server.port();
        mailer().send(&settings, &message(&["bob@example.test"])).unwrap();
        let heard = String::from_utf8(server.finish()).unwrap();
        let auth_line = heard.lines().nth(1).unwrap();
        let (command, payload) = auth_line.rsplit_once(' ').unwrap();
        assert_eq!(command, format!("AUTH {mechanism}"));
        assert_eq!(decode(payload), expected.replace("port=25", &format!("port={port}")));

        // Failure: a 334 with the JSON error, answered as the mechanism says.
        let server = oauth_server("334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n");
        let settings = with_token(server.port(), mechanism);
        let err = mailer().send(&settings, &message(&["bob@example.test"])).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Authentication(_)), "{err:?}");
        assert!(!format!("{err:?}").contains("ya29.token-value"));
        let heard = String::from_utf8(server.finish()).unwrap();
        let answer = heard.lines().nth(2).unwrap();
        let expected_answer = if mechanism == "XOAUTH2" { "" } else { "AQ==" };
        assert_eq!(answer, expected_answer, "{mechanism}: {heard:?}");
        assert!(!heard.contains("MAIL FROM"));
    }
}

#[test]
fn a_protocol_version_refusal_is_named() {
    // An implicit-TLS server that answers the ClientHello with a fatal
    // protocol_version alert, as a TLS 1.0-only server does.
    let server = Scripted::start(|c| {
        c.hear_some();
        c.say_bytes(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46]);
        c.drain();
    });
    let pki = TestPki::generate();
    let err = mailer()
        .send(
            &tls_server(server.port(), Security::ImplicitTls, &pki),
            &message(&["bob@example.test"]),
        )
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Tls(_)), "{err:?}");
    assert!(
        err.message.contains("TLS protocol version"),
        "{}",
        err.message
    );
    server.finish();
}

#[test]
fn control_characters_in_credentials_are_refused_before_connecting() {
    let pki = TestPki::generate();
    // Nothing listens here: an error other than invalid input would mean
    // the component tried to connect.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (user, password, field) in [
        (
            "alice\r\nMAIL FROM:<x@y>",
            PASSWORD,
            "server.credentials.user",
        ),
        ("alice", "pass\0word", "server.credentials.secret"),
        ("alice\x7f", PASSWORD, "server.credentials.user"),
    ] {
        let mut settings = with_password(
            tls_server(port, Security::StarttlsRequired, &pki),
            password,
            None,
        );
        if let Some(c) = settings.credentials.as_mut() {
            c.user = user.into();
        }
        let err = mailer()
            .send(&settings, &message(&["bob@example.test"]))
            .unwrap_err();
        assert!(
            matches!(&err.kind, ErrorKind::InvalidInput { field: f, .. } if f == field),
            "{err:?}"
        );
        assert!(!err.message.contains("pass\0word"));
    }
}
