//! AUTH in the client: only under TLS (or when the caller chose plaintext
//! knowingly), the strongest common mechanism, and refusals that end the
//! session before any MAIL.

mod common;

use common::feed;
use smtp_mailer_core::smtp::auth::{Credentials, Secret};
use smtp_mailer_core::smtp::{AuthSettings, Client, ClientConfig, Event, TlsPolicy};
use smtp_mailer_core::Error;

fn settings(mechanism: Option<&str>) -> AuthSettings {
    AuthSettings {
        credentials: Credentials::with_password("alice", Secret::new("wonderland")),
        mechanism: mechanism.map(str::to_string),
        client_nonce: "0123456789abcdef0123".into(),
        host: "mx.example".into(),
        port: 587,
    }
}

fn client(policy: TlsPolicy, mechanism: Option<&str>) -> Client {
    let config = ClientConfig::new("c.example")
        .unwrap()
        .with_tls(policy)
        .with_auth(settings(mechanism));
    Client::new(config)
}

#[test]
fn auth_runs_only_after_starttls_with_post_tls_mechanisms() {
    let mut c = client(TlsPolicy::StartTlsRequired, None);
    // Before TLS the server offers only LOGIN; that list must not count.
    let (wrote, _) = feed(
        &mut c,
        "220 x\r\n250-x\r\n250-AUTH LOGIN\r\n250 STARTTLS\r\n220 go\r\n",
    );
    assert_eq!(
        wrote, "EHLO c.example\r\nSTARTTLS\r\n",
        "no AUTH before TLS"
    );
    assert_eq!(c.poll_event(), Some(Event::StartTls));
    c.tls_established();
    c.take_output();
    let (wrote, _) = feed(&mut c, "250-x\r\n250 AUTH PLAIN LOGIN\r\n");
    assert_eq!(wrote, "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n");
    feed(&mut c, "235 2.7.0 ok\r\n");
    assert_eq!(c.poll_event(), Some(Event::Ready));
}

#[test]
fn opportunistic_without_tls_never_sends_credentials() {
    let mut c = client(TlsPolicy::StartTlsOpportunistic, None);
    let (wrote, err) = feed(&mut c, "220 x\r\n250-x\r\n250 AUTH PLAIN\r\n");
    assert_eq!(wrote, "EHLO c.example\r\n");
    let err = err.expect("credentials in clear are refused");
    assert!(matches!(err, Error::Auth { .. }));
    assert!(err.to_string().contains("not protected by TLS"));
    assert!(c.is_closed());
}

#[test]
fn plaintext_insecure_allows_auth_in_clear_and_login_prompts() {
    let mut c = client(TlsPolicy::PlaintextInsecure, Some("LOGIN"));
    let (wrote, _) = feed(&mut c, "220 x\r\n250-x\r\n250 AUTH PLAIN LOGIN\r\n");
    assert_eq!(wrote, "EHLO c.example\r\nAUTH LOGIN\r\n");
    let (wrote, _) = feed(&mut c, "334 VXNlcm5hbWU6\r\n");
    assert_eq!(wrote, "YWxpY2U=\r\n");
    let (wrote, _) = feed(&mut c, "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(wrote, "d29uZGVybGFuZA==\r\n");
    feed(&mut c, "235 ok\r\n");
    assert_eq!(c.poll_event(), Some(Event::Ready));
}

#[test]
fn a_refusal_is_fatal_with_a_hint_and_no_secret() {
    let mut c = client(TlsPolicy::PlaintextInsecure, None);
    feed(&mut c, "220 x\r\n250-x\r\n250 AUTH PLAIN\r\n");
    let (wrote, err) = feed(&mut c, "535 5.7.8 Authentication credentials invalid\r\n");
    assert_eq!(wrote, "");
    let err = err.unwrap();
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("535 5.7.8") && text.contains("OAuth2"),
        "{text}"
    );
    assert!(!text.contains("wonderland"));
    assert!(!err.is_transient());
    assert!(c.is_closed());
}

#[test]
fn no_common_mechanism_or_no_auth_offered() {
    let mut c = client(TlsPolicy::PlaintextInsecure, Some("CRAM-MD5"));
    let (_, err) = feed(&mut c, "220 x\r\n250-x\r\n250 AUTH PLAIN\r\n");
    assert!(matches!(err, Some(Error::Auth { .. })));
    let mut c = client(TlsPolicy::PlaintextInsecure, None);
    let (wrote, err) = feed(&mut c, "220 x\r\n250 x\r\n");
    assert_eq!(wrote, "EHLO c.example\r\n");
    assert!(matches!(err, Some(Error::Auth { .. })), "{err:?}");
}
