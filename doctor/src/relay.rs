//! The relay, probed through the real component: it connects, reads the
//! greeting, says EHLO, upgrades to TLS (verifying the certificate for the
//! relay's name), says EHLO again, authenticates when credentials are
//! given, and reports what the relay offers, without sending mail.

use smtp_mailer_host::{Capabilities, Mailer, Security, Server};

use crate::finding::{Check, Finding, Status};

/// Probes `server`, which connects to an address the doctor resolved.
pub fn check(mailer: &Mailer, server: &Server) -> Finding {
    let subject = format!("{}:{}", server.host, server.port);
    let opened = mailer.open_session(server).and_then(|mut session| {
        let offered = session.capabilities();
        let _ = session.close();
        offered
    });
    let offered = match opened {
        Ok(offered) => offered,
        Err(e) => {
            return Finding::new(
                Check::Relay,
                subject,
                Status::Fail,
                format!("the relay cannot be used: {}", e.message),
            )
            .fix(advice_for(&e.message), Vec::new())
        }
    };
    describe(subject, server, &offered)
}

/// The finding for a relay that answered.
fn describe(subject: String, server: &Server, offered: &Capabilities) -> Finding {
    let mut finding = Finding::new(Check::Relay, subject.clone(), Status::Ok, "");
    let protection = match &offered.tls {
        Some(tls) => {
            let how = if tls.implicit {
                "implicit TLS"
            } else {
                "STARTTLS"
            };
            finding = finding.detail(format!(
                "TLS: {how}, {} {}, a chain of {} certificate(s) verified for {}",
                tls.version,
                tls.cipher_suite,
                tls.peer_certificates.len(),
                server.host
            ));
            format!(
                "{how} ({}) with a valid certificate for {}",
                tls.version, server.host
            )
        }
        None => {
            finding.status = if server.security == Security::PlaintextInsecure {
                Status::Warn
            } else {
                Status::Fail
            };
            finding = finding.detail("TLS: none: mail and credentials cross the network in clear");
            "no TLS".to_string()
        }
    };
    let auth = if offered.auth_mechanisms.is_empty() {
        "no AUTH offered".to_string()
    } else {
        format!("AUTH {}", offered.auth_mechanisms.join(" "))
    };
    let authenticated = match (&server.credentials, offered.authenticated) {
        (Some(c), true) => format!("; authenticated as {}", c.user),
        _ => String::new(),
    };
    finding = finding.detail(format!("{auth}{authenticated}"));
    finding = finding.detail(match offered.size {
        None => "SIZE: not announced (the relay's limit is unknown)".to_string(),
        Some(0) => "SIZE: announced without a limit".to_string(),
        Some(n) => format!("SIZE: {n} octets ({:.1} MiB) at most", n as f64 / 1048576.0),
    });
    for (keyword, meaning) in [
        ("DSN", "delivery status notifications, RFC 3461"),
        ("CHUNKING", "BDAT, RFC 3030"),
        ("SMTPUTF8", "internationalized addresses, RFC 6531"),
        ("PIPELINING", "commands in groups, RFC 2920"),
        ("8BITMIME", "8-bit content, RFC 6152"),
    ] {
        let offers = if offered.offers(keyword) {
            "offered"
        } else {
            "not offered"
        };
        finding = finding.detail(format!("{keyword} ({meaning}): {offers}"));
    }
    finding = finding.detail(format!("EHLO: {}", offered.extensions.join(", ")));
    finding.reason = match finding.status {
        Status::Ok => format!("{subject} answers through the component: {protection}"),
        Status::Warn => format!(
            "{subject} answers through the component, in plaintext as asked \
             (plaintext-insecure): acceptable on loopback only"
        ),
        _ => format!(
            "{subject} answers but offers no TLS (starttls-opportunistic fell back to \
             plaintext): mail and credentials cross the network in clear"
        ),
    };
    if finding.status == Status::Fail {
        finding = finding.fix(
            "use a relay that offers STARTTLS (port 587) or implicit TLS (port 465), with \
             security starttls-required or implicit-tls",
            Vec::new(),
        );
    }
    finding
}

/// What to do about a relay that failed, from the component's message.
fn advice_for(message: &str) -> String {
    let m = message.to_ascii_lowercase();
    if m.contains("expired") {
        "the relay's certificate has expired: have its operator renew it".into()
    } else if m.contains("unknown issuer") {
        "the certificate is not from a CA the component trusts: give the private CA with \
         --ca-file, or have the relay use a public CA"
            .into()
    } else if m.contains("not valid for the name") {
        "the certificate is for another name: connect with the name on the certificate".into()
    } else if m.contains("authentication") || m.contains("credentials") {
        "check the user and password (SMTP_PASSWORD) and the AUTH mechanism".into()
    } else {
        "check the relay's host, port and security mode, and that it answers from here".into()
    }
}
