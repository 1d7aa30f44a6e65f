//! STARTTLS (RFC 3207) in the client: required, opportunistic, stripped,
//! refused, and what is forgotten after the upgrade.

mod common;

use common::feed;
use smtp_mailer_core::smtp::{Client, ClientConfig, Envelope, Event, TlsPolicy};
use smtp_mailer_core::Error;

fn client(policy: TlsPolicy) -> Client {
    Client::new(
        ClientConfig::new("client.example")
            .unwrap()
            .with_tls(policy),
    )
}

const GREETING: &str = "220 mx.example ESMTP\r\n";
const EHLO_TLS: &str = "250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 SIZE 10\r\n";

#[test]
fn required_upgrades_then_forgets_the_plaintext_capabilities() {
    let mut c = client(TlsPolicy::StartTlsRequired);
    let (wrote, err) = feed(&mut c, &format!("{GREETING}{EHLO_TLS}"));
    assert!(err.is_none());
    assert_eq!(wrote, "EHLO client.example\r\nSTARTTLS\r\n");
    let (wrote, _) = feed(&mut c, "220 2.0.0 Ready to start TLS\r\n");
    assert_eq!(wrote, "");
    assert_eq!(c.poll_event(), Some(Event::StartTls));
    assert!(!c.is_tls_active());
    c.tls_established();
    assert!(c.is_tls_active());
    assert_eq!(c.take_output(), b"EHLO client.example\r\n");
    assert_eq!(c.extensions().size, None, "pre-TLS capabilities are gone");
    // Only the post-TLS capabilities count: no SIZE limit now.
    feed(&mut c, "250-mx.example\r\n250 8BITMIME\r\n");
    assert_eq!(c.poll_event(), Some(Event::Ready));
    assert!(!c.extensions().pipelining && c.extensions().eight_bit_mime);
    let env = Envelope::new("a@x.example", &["b@y.example".into()]).unwrap();
    c.send(env, &[b'a'; 100]).unwrap();
    assert_eq!(c.take_output(), b"MAIL FROM:<a@x.example>\r\n");
}

#[test]
fn required_without_starttls_ends_before_mail() {
    let mut c = client(TlsPolicy::StartTlsRequired);
    let (wrote, err) = feed(
        &mut c,
        &format!("{GREETING}250-mx.example\r\n250 PIPELINING\r\n"),
    );
    assert_eq!(wrote, "EHLO client.example\r\n");
    let err = err.expect("a stripped STARTTLS is fatal");
    assert!(matches!(err, Error::Tls { .. }));
    assert!(err.to_string().contains("does not offer STARTTLS"));
    assert!(c.is_closed());
    let env = Envelope::new("a@x.example", &["b@y.example".into()]).unwrap();
    assert_eq!(c.send(env, b"x"), Err(Error::Closed));
    assert!(c.take_output().is_empty());
}

#[test]
fn required_and_refused_454_is_fatal_and_transient() {
    let mut c = client(TlsPolicy::StartTlsRequired);
    feed(&mut c, &format!("{GREETING}{EHLO_TLS}"));
    let (_, err) = feed(
        &mut c,
        "454 4.7.0 TLS not available due to temporary reason\r\n",
    );
    let err = err.unwrap();
    assert!(matches!(&err, Error::Tls { reply: Some(r), .. } if r.code == 454));
    assert!(err.is_transient() && err.is_fatal());
    assert!(c.take_output().is_empty());
}

#[test]
fn opportunistic_goes_on_in_plaintext_when_not_offered_or_refused() {
    let mut c = client(TlsPolicy::StartTlsOpportunistic);
    feed(
        &mut c,
        &format!("{GREETING}250-mx.example\r\n250 PIPELINING\r\n"),
    );
    assert_eq!(c.poll_event(), Some(Event::Ready));
    assert!(!c.is_tls_active());

    let mut c = client(TlsPolicy::StartTlsOpportunistic);
    feed(&mut c, &format!("{GREETING}{EHLO_TLS}"));
    feed(&mut c, "454 4.7.0 not now\r\n");
    assert_eq!(c.poll_event(), Some(Event::Ready));
}

#[test]
fn implicit_and_plaintext_never_say_starttls() {
    for policy in [TlsPolicy::Implicit, TlsPolicy::PlaintextInsecure] {
        let mut c = client(policy);
        let (wrote, _) = feed(&mut c, &format!("{GREETING}{EHLO_TLS}"));
        assert_eq!(wrote, "EHLO client.example\r\n");
        assert_eq!(c.poll_event(), Some(Event::Ready));
        assert_eq!(c.is_tls_active(), policy == TlsPolicy::Implicit);
    }
}
