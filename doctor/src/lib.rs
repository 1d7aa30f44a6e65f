//! The deliverability doctor: before the first send, whether receivers
//! will accept mail from a domain, and exactly which record to publish when
//! they will not.
//!
//! [`diagnose`] runs every check and returns a [`Report`] of typed
//! [`Finding`]s, one per check and subject, each `ok`, `warn`, `fail` or
//! `unchecked` (the DNS did not answer) with its reason and, when something
//! is missing or wrong, a [`Fix`] with the records to publish:
//!
//! - SPF of the From domain and of the return-path domain ([`spf`]): one
//!   record, that parses, at most 10 lookups through includes, no `+all`,
//!   and the sending IP authorized as a receiver evaluates it (RFC 7208).
//! - DKIM ([`dkim`]): the key record parses, matches the private key, is
//!   2048-bit RSA or more, not in testing mode; a message the component
//!   signed verifies against it.
//! - DMARC and alignment ([`dmarc`]): the record of the From domain or its
//!   organizational domain, its policy and `rua`, and From aligned with the
//!   DKIM `d=` and the return-path domain under the record's modes.
//! - MX of the bounce domain ([`mx`]); reverse DNS of the sending IP,
//!   forward-confirmed ([`reverse`]).
//! - The relay, probed through the real component ([`relay`]).
//! - One-click unsubscribe in a sample message ([`unsubscribe`]), and the
//!   bulk-sender requirements over all of it ([`summary`]).
//!
//! SPF, DKIM and DMARC are evaluated by mail-auth over hickory-resolver,
//! asking the name server given (or the system's), each query bounded in
//! time: a server that does not answer makes the DNS checks `unchecked`,
//! never `ok`.
//!
//! ```no_run
//! use smtp_mailer_doctor::{diagnose, Settings, Status};
//! use smtp_mailer_host::Mailer;
//!
//! let mailer = Mailer::new()?;
//! let mut settings = Settings::new("example.org");
//! settings.sending_ip = Some("192.0.2.10".parse()?);
//! settings.dkim_selector = Some("s2026".into());
//! let report = diagnose(&mailer, &settings)?;
//! for finding in &report.findings {
//!     println!("{} {}: {}", finding.status, finding.check.name(), finding.reason);
//! }
//! assert!(report.findings.iter().all(|f| f.status != Status::Fail));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// `smtp_mailer_host::Error` is a plain value, kept unboxed.
#![allow(clippy::result_large_err)]

pub mod dkim;
pub mod dmarc;
pub mod dns;
mod finding;
pub mod mx;
pub mod relay;
pub mod reverse;
pub mod spf;
pub mod summary;
pub mod unsubscribe;

pub use finding::{Check, DnsRecord, Finding, Fix, Report, Status};

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use smtp_mailer_core::dkim::DkimKey;
use smtp_mailer_host::{Dkim, Mailbox, Mailer, Message, Server};

use dns::{Dns, LookupError};

/// The default time one DNS query may take.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(3);

/// What to check.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The sending domain: the DKIM signing domain (`d=`), and the From
    /// and return-path domain unless others are given.
    pub domain: String,
    /// The From address; `postmaster@<domain>` when none.
    pub from: Option<String>,
    /// The DKIM selector; DKIM is not checked without it.
    pub dkim_selector: Option<String>,
    /// The DKIM private key (PKCS#8 PEM) and what to call it in messages
    /// (its file name). A secret: never shown.
    pub dkim_key: Option<(String, String)>,
    /// The DKIM record may say `t=y` (testing on purpose).
    pub dkim_testing_expected: bool,
    /// The IP address the relay sends from.
    pub sending_ip: Option<IpAddr>,
    /// The return-path (bounce) domain; `domain` when none.
    pub bounce_domain: Option<String>,
    /// The host that receives bounces: the bounce domain's MX must name it.
    pub inbound_host: Option<String>,
    /// The name server to ask; the system's when none.
    pub dns_server: Option<SocketAddr>,
    /// How long one DNS query may take.
    pub dns_timeout: Duration,
    /// The relay to probe.
    pub relay: Option<Server>,
    /// A message as it will be sent: checked for one-click unsubscribe and
    /// a consistent From.
    pub message: Option<Message>,
}

impl Settings {
    /// Settings for `domain` with nothing else given.
    pub fn new(domain: impl Into<String>) -> Settings {
        Settings {
            domain: domain.into(),
            from: None,
            dkim_selector: None,
            dkim_key: None,
            dkim_testing_expected: false,
            sending_ip: None,
            bounce_domain: None,
            inbound_host: None,
            dns_server: None,
            dns_timeout: DEFAULT_DNS_TIMEOUT,
            relay: None,
            message: None,
        }
    }
}

/// Why the doctor could not run at all (the checks' own problems are
/// findings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoctorError {
    /// A setting is malformed: the field and why.
    Input {
        /// The setting, named as the command line names it.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// The resolver or the runtime could not be set up.
    Setup(String),
}

impl fmt::Display for DoctorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DoctorError::Input { field, reason } => write!(f, "{field}: {reason}"),
            DoctorError::Setup(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for DoctorError {}

fn input(field: &str, reason: impl Into<String>) -> DoctorError {
    DoctorError::Input {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The domains the checks are about.
struct Domains {
    from_address: String,
    from: String,
    dkim: String,
    return_path: String,
}

fn domains(settings: &Settings) -> Result<Domains, DoctorError> {
    let dkim = normalize(&settings.domain);
    if dkim.is_empty() || !dkim.contains('.') {
        return Err(input(
            "--domain",
            "must be a domain name such as example.org",
        ));
    }
    let from_address = match &settings.from {
        Some(address) => address.trim().to_string(),
        None => format!("postmaster@{dkim}"),
    };
    let Some((_, from)) = from_address.rsplit_once('@') else {
        return Err(input("--from", "must be an address, local@domain"));
    };
    let from = normalize(from);
    if from.is_empty() {
        return Err(input("--from", "has no domain"));
    }
    let return_path = settings
        .bounce_domain
        .as_deref()
        .map(normalize)
        .unwrap_or_else(|| dkim.clone());
    Ok(Domains {
        from_address,
        from,
        dkim,
        return_path,
    })
}

fn normalize(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Runs every check. The relay is probed (and the messages built and
/// signed) by `mailer`'s component; everything else asks the DNS.
///
/// Fails only when a setting is malformed or the resolver cannot be set
/// up; every problem of the domain is a finding.
pub fn diagnose(mailer: &Mailer, settings: &Settings) -> Result<Report, DoctorError> {
    let domains = domains(settings)?;
    let key = match &settings.dkim_key {
        Some((pem, shown)) => Some((
            DkimKey::from_pkcs8_pem(pem).map_err(|e| input("--dkim-key", e.to_string()))?,
            shown.clone(),
        )),
        None => None,
    };
    let signing = match (&settings.dkim_selector, &settings.dkim_key) {
        (Some(selector), Some((pem, _))) => Some(Dkim {
            domain: domains.dkim.clone(),
            selector: selector.clone(),
            private_key_pem: pem.clone(),
            ..Dkim::default()
        }),
        _ => None,
    };
    let probe = mailer
        .build_message(&probe_message(&domains.from_address, signing.clone()))
        .map_err(|e| input("--from", e.message))?;
    let sample = match &settings.message {
        Some(message) => {
            let mut message = message.clone();
            message.dkim = signing.clone();
            Some(
                mailer
                    .build_message(&message)
                    .map_err(|e| input("--message", e.message))?,
            )
        }
        None => None,
    };
    let dns = Dns::new(settings.dns_server, settings.dns_timeout).map_err(DoctorError::Setup)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DoctorError::Setup(format!("cannot start the async runtime: {e}")))?;
    // Each check has a bound of its own, whatever the DNS does.
    let limit = settings.dns_timeout * 8;

    let relay = settings.relay.as_ref().map(|server| {
        runtime.block_on(async {
            match tokio::time::timeout(limit, relay_address(&dns, server)).await {
                Ok(resolved) => resolved,
                Err(_) => Err(Finding::unchecked(
                    Check::Relay,
                    format!("{}:{}", server.host, server.port),
                    too_slow(limit),
                )),
            }
        })
    });

    let signed = signing.is_some();
    let (mut findings, relay_finding) = std::thread::scope(|scope| {
        let probing = relay.map(|resolved| {
            scope.spawn(move || match resolved {
                Ok(server) => relay::check(mailer, &server),
                Err(finding) => finding,
            })
        });
        let findings = runtime.block_on(dns_checks(
            &dns,
            settings,
            &domains,
            key.as_ref().map(|(k, shown)| (k, shown.as_str())),
            &probe,
            signed,
            limit,
        ));
        let relay_finding = probing.map(|p| {
            p.join().unwrap_or_else(|_| {
                Finding::new(
                    Check::Relay,
                    "the relay",
                    Status::Fail,
                    "the relay check panicked",
                )
            })
        });
        (findings, relay_finding)
    });
    findings.push(relay_finding.unwrap_or_else(|| {
        Finding::new(
            Check::Relay,
            "the relay",
            Status::Warn,
            "not checked: give --server smtp://relay:587",
        )
    }));
    findings.push(unsubscribe::check(sample.as_deref(), &domains.from, signed));
    let summary = summary::bulk_sender(&findings, &domains.return_path);
    findings.push(summary);
    Ok(Report { findings })
}

/// The message whose DKIM signature and DMARC result are checked: From the
/// From address, built (and signed) by the component.
fn probe_message(from: &str, dkim: Option<Dkim>) -> Message {
    Message {
        from: Mailbox::new(from),
        to: vec![Mailbox::new("postmaster@example.invalid")],
        subject: "smtp-mailer doctor probe".into(),
        text: Some("A message the doctor builds and verifies; it is never sent.\n".into()),
        dkim,
        ..Message::default()
    }
}

/// The DNS checks, run together.
async fn dns_checks(
    dns: &Dns,
    settings: &Settings,
    domains: &Domains,
    key: Option<(&DkimKey, &str)>,
    probe: &[u8],
    signed: bool,
    limit: Duration,
) -> Vec<Finding> {
    let ip = settings.sending_ip;
    let same = domains.from == domains.return_path;
    let from_role = if same {
        "From and return-path domain"
    } else {
        "From domain"
    };
    let spf_from = bounded(
        limit,
        Check::Spf,
        domains.from.clone(),
        spf::check(dns, &domains.from, from_role, ip),
    );
    let spf_return_path = async {
        if same {
            None
        } else {
            Some(
                bounded(
                    limit,
                    Check::Spf,
                    domains.return_path.clone(),
                    spf::check(dns, &domains.return_path, "return-path domain", ip),
                )
                .await,
            )
        }
    };
    let dkim = async {
        let Some(selector) = &settings.dkim_selector else {
            return Finding::new(
                Check::Dkim,
                &domains.dkim,
                Status::Warn,
                "not checked: give --dkim-selector (and --dkim-key to check the key matches)",
            );
        };
        let input = dkim::DkimInput {
            domain: &domains.dkim,
            selector,
            key,
            signed: signed.then_some(probe),
            testing_expected: settings.dkim_testing_expected,
        };
        bounded(
            limit,
            Check::Dkim,
            format!("{selector}._domainkey.{}", domains.dkim),
            dkim::check(dns, &input),
        )
        .await
    };
    let dmarc = async {
        let input = dmarc::DmarcInput {
            from_domain: &domains.from,
            dkim_domain: &domains.dkim,
            return_path_domain: &domains.return_path,
            message: probe,
            signed,
            ip,
        };
        let subject = format!("_dmarc.{}", domains.from);
        match tokio::time::timeout(limit, dmarc::check(dns, &input)).await {
            Ok(pair) => pair,
            Err(_) => (
                Finding::unchecked(Check::Dmarc, &subject, too_slow(limit)),
                Finding::unchecked(Check::Alignment, &domains.from, too_slow(limit)),
            ),
        }
    };
    let mx = bounded(
        limit,
        Check::Mx,
        domains.return_path.clone(),
        mx::check(dns, &domains.return_path, settings.inbound_host.as_deref()),
    );
    let reverse = bounded(
        limit,
        Check::ReverseDns,
        ip.map(|i| i.to_string()).unwrap_or_default(),
        reverse::check(dns, ip, &domains.dkim),
    );
    let (spf_from, spf_return_path, dkim, (dmarc, alignment), mx, reverse) =
        tokio::join!(spf_from, spf_return_path, dkim, dmarc, mx, reverse);
    let mut findings = vec![spf_from];
    findings.extend(spf_return_path);
    findings.extend([dkim, dmarc, alignment, mx, reverse]);
    findings
}

fn too_slow(limit: Duration) -> String {
    format!("the DNS checks did not finish within {} s", limit.as_secs())
}

/// Runs `check` within `limit`: past it, the check is unchecked.
async fn bounded(
    limit: Duration,
    kind: Check,
    subject: String,
    check: impl Future<Output = Finding>,
) -> Finding {
    match tokio::time::timeout(limit, check).await {
        Ok(finding) => finding,
        Err(_) => Finding::unchecked(kind, subject, too_slow(limit)),
    }
}

/// The relay's settings with the address the doctor's resolver gives (the
/// component itself gets no DNS).
async fn relay_address(dns: &Dns, server: &Server) -> Result<Server, Finding> {
    let mut server = server.clone();
    if server.connect_address.is_some() || server.host.parse::<IpAddr>().is_ok() {
        return Ok(server);
    }
    let subject = format!("{}:{}", server.host, server.port);
    match dns.addresses(&server.host).await {
        Ok(addresses) => {
            let chosen = addresses
                .iter()
                .find(|a| a.is_ipv4())
                .or(addresses.first())
                .copied();
            server.connect_address = chosen.map(|a| a.to_string());
            Ok(server)
        }
        Err(LookupError::NotFound) => Err(Finding::new(
            Check::Relay,
            subject,
            Status::Fail,
            format!("the relay's name {} has no address", server.host),
        )),
        Err(e) => Err(Finding::unchecked(Check::Relay, subject, e)),
    }
}
