//! `smtp-mailer doctor` against a real authoritative DNS server on loopback
//! (hickory-server, serving the zones below) and aiosmtpd as the relay,
//! probed through the component: a correct domain passes; each fault fails
//! with its reason and the record to publish; a DNS server that does not
//! answer leaves every DNS check unchecked, within a bounded time.
//!
//! Build the CLI first: `cargo build --release --bin smtp-mailer`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use smtp_mailer_host::{Security, Server};
use smtp_mailer_tests::dns::{txt_strings, zone, SilentDns, TestDns, Zone};
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions};
use smtp_mailer_tests::support::{loopback, mailer, run_cli};
use smtp_mailer_tests::tls::TestPki;

/// The relay's address, as the tests' SPF records and PTR know it.
const SENDING_IP: &str = "192.0.2.10";

/// A DKIM key made by `smtp-mailer dkim-keygen`, and its TXT record.
struct Key {
    path: PathBuf,
    record: String,
}

/// A new key in `dir`: RSA of `bits`, for `selector` at `domain`.
fn keygen(dir: &Path, name: &str, bits: u32) -> Key {
    let path = dir.join(name);
    let out = run_cli(
        &[
            "dkim-keygen",
            "--algorithm",
            "rsa",
            "--bits",
            &bits.to_string(),
            "--selector",
            "s1",
            "--domain",
            "good.test",
            "--out",
            path.to_str().expect("UTF-8 path"),
        ],
        None,
        &[],
    );
    assert!(
        out.status.success(),
        "dkim-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `s1._domainkey.good.test. IN TXT ( "..." "..." )`: the strings joined.
    let line = String::from_utf8_lossy(&out.stdout);
    let record: String = line.split('"').skip(1).step_by(2).collect();
    assert!(record.starts_with("v=DKIM1; k=rsa; p="), "{record}");
    Key { path, record }
}

/// A domain's zone: SPF, MX, the relay's host, DKIM at s1, DMARC, each
/// replaceable.
struct Domain<'a> {
    name: &'a str,
    spf: Vec<String>,
    dkim: Option<String>,
    dmarc: Option<String>,
    extra: String,
}

impl<'a> Domain<'a> {
    /// Everything right, signed with `key`.
    fn healthy(name: &'a str, key: &Key) -> Self {
        Domain {
            name,
            spf: vec![format!("v=spf1 ip4:{SENDING_IP} -all")],
            dkim: Some(key.record.clone()),
            dmarc: Some(format!("v=DMARC1; p=quarantine; rua=mailto:dmarc@{name}")),
            extra: String::new(),
        }
    }

    fn zone(&self) -> Zone {
        let mut records = format!(
            "@ IN MX 10 mx.{n}.\nmx IN A 192.0.2.25\nmail IN A {SENDING_IP}\n",
            n = self.name
        );
        for spf in &self.spf {
            records.push_str(&format!("@ IN TXT {}\n", txt_strings(spf)));
        }
        if let Some(dkim) = &self.dkim {
            records.push_str(&format!("s1._domainkey IN TXT {}\n", txt_strings(dkim)));
        }
        if let Some(dmarc) = &self.dmarc {
            records.push_str(&format!("_dmarc IN TXT {}\n", txt_strings(dmarc)));
        }
        records.push_str(&self.extra);
        zone(self.name, &records)
    }
}

/// Every zone the tests use: good.test and one domain per fault.
fn zones(key: &Key, other: &Key) -> Vec<Zone> {
    let good = Domain::healthy("good.test", key);
    let missing_ip = Domain {
        spf: vec!["v=spf1 ip4:192.0.2.99 -all".into()],
        ..Domain::healthy("missing-ip.test", key)
    };
    let two_spf = Domain {
        spf: vec![
            format!("v=spf1 ip4:{SENDING_IP} -all"),
            "v=spf1 include:_spf.provider.test ~all".into(),
        ],
        ..Domain::healthy("two-spf.test", key)
    };
    // 2 includes + 4 inside the first + 5 inside the second = 11.
    let lookups = Domain {
        spf: vec![format!(
            "v=spf1 ip4:{SENDING_IP} include:_a.lookups.test include:_b.lookups.test -all"
        )],
        extra: "_a IN TXT \"v=spf1 a mx ptr exists:x.lookups.test -all\"\n\
                _b IN TXT \"v=spf1 a:h1.lookups.test a:h2.lookups.test a:h3.lookups.test \
                a:h4.lookups.test a:h5.lookups.test -all\"\n"
            .into(),
        ..Domain::healthy("lookups.test", key)
    };
    let mismatch = Domain {
        dkim: Some(other.record.clone()),
        ..Domain::healthy("mismatch.test", key)
    };
    let no_dmarc = Domain {
        dmarc: None,
        ..Domain::healthy("no-dmarc.test", key)
    };
    let brand = Domain {
        dkim: None,
        dmarc: Some("v=DMARC1; p=reject; rua=mailto:dmarc@brand.test".into()),
        ..Domain::healthy("brand.test", key)
    };
    vec![
        // The parent of every test domain: names under it that no other
        // zone holds are NXDOMAIN (the DMARC tree walk asks _dmarc.test).
        zone("test", ""),
        good.zone(),
        missing_ip.zone(),
        two_spf.zone(),
        lookups.zone(),
        mismatch.zone(),
        no_dmarc.zone(),
        brand.zone(),
        zone("elsewhere.test", "mail IN A 192.0.2.200"),
        // .10 forward-confirms; .78 names a host with another address;
        // .77 has no PTR.
        zone(
            "2.0.192.in-addr.arpa",
            "10 IN PTR mail.good.test.\n78 IN PTR mail.elsewhere.test.",
        ),
    ]
}

/// Keys, zones and the DNS server of a test.
struct World {
    dir: tempfile::TempDir,
    key: Key,
    dns: TestDns,
}

impl World {
    fn start() -> World {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let key = keygen(dir.path(), "key.pem", 2048);
        let other = keygen(dir.path(), "other.pem", 2048);
        let dns = TestDns::start(&zones(&key, &other));
        World { dir, key, dns }
    }

    /// `doctor --output json` for `domain` with the key, this DNS server and
    /// `more`, and the sending IP when `more` names none.
    fn doctor(&self, domain: &str, more: &[&str]) -> (Output, Value) {
        let dns = self.dns.address().to_string();
        let key = self.key.path.to_str().expect("UTF-8 path");
        let mut args = vec![
            "doctor",
            "--domain",
            domain,
            "--dkim-selector",
            "s1",
            "--dkim-key",
            key,
            "--dns-server",
            &dns,
            "--output",
            "json",
        ];
        args.extend_from_slice(more);
        if !more.contains(&"--sending-ip") {
            args.extend(["--sending-ip", SENDING_IP]);
        }
        let out = run_cli(&args, None, &[]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "doctor printed no JSON ({e}): stdout {} stderr {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out, report)
    }
}

/// The findings of `check` in a JSON report.
fn findings<'a>(report: &'a Value, check: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .expect("checks is an array")
        .iter()
        .filter(|f| f["check"] == check)
        .collect()
}

/// The one finding of `check`.
fn finding<'a>(report: &'a Value, check: &str) -> &'a Value {
    let found = findings(report, check);
    assert_eq!(found.len(), 1, "one {check} finding in {report:#}");
    found[0]
}

fn reason(finding: &Value) -> &str {
    finding["reason"].as_str().expect("reason is a string")
}

/// The records of a finding's fix, as `name type value`.
fn fix_records(finding: &Value) -> Vec<String> {
    finding["fix"]["records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {}",
                        r["name"].as_str().unwrap_or_default(),
                        r["type"].as_str().unwrap_or_default(),
                        r["value"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that `finding` failed with a reason holding `words`.
fn assert_fails(finding: &Value, words: &str) {
    assert_eq!(finding["status"], "fail", "{finding:#}");
    assert!(
        reason(finding).contains(words),
        "expected {words:?} in {finding:#}"
    );
}

#[test]
fn a_correct_domain_passes_every_check_and_the_relay_through_the_component() {
    let world = World::start();
    let pki = TestPki::generate();
    let relay = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        require_starttls: true,
        auth: Some(("app".into(), "s3cret".into())),
        ..Default::default()
    });
    let message = world.dir.path().join("message.json");
    std::fs::write(
        &message,
        r#"{"from": "News <news@good.test>", "to": "ada@example.test", "subject": "Hi",
            "text": "Hello", "headers": {
              "List-Unsubscribe": "<https://good.test/unsubscribe?id=42>",
              "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}}"#,
    )
    .expect("message written");
    let url = format!("smtp://app:s3cret@localhost:{}", relay.port());
    let (out, report) = world.doctor(
        "good.test",
        &[
            "--from",
            "news@good.test",
            "--server",
            &url,
            "--connect-address",
            "127.0.0.1",
            "--ca-file",
            pki.ca.to_str().expect("UTF-8 path"),
            "--message",
            message.to_str().expect("UTF-8 path"),
            "--inbound-host",
            "mx.good.test",
        ],
    );
    for f in report["checks"].as_array().expect("checks") {
        assert_eq!(f["status"], "ok", "every check passes: {f:#}");
    }
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|f| f["check"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        checks,
        [
            "spf",
            "dkim",
            "dmarc",
            "alignment",
            "mx",
            "reverse-dns",
            "relay",
            "unsubscribe",
            "bulk-sender"
        ]
    );
    assert!(reason(finding(&report, "spf")).contains("authorizes 192.0.2.10 (SPF pass)"));
    let dkim = reason(finding(&report, "dkim"));
    assert!(
        dkim.contains("2048-bit RSA key") && dkim.contains("(DKIM pass)"),
        "{dkim}"
    );
    assert!(reason(finding(&report, "dmarc")).contains("p=quarantine"));
    assert!(reason(finding(&report, "reverse-dns")).contains("PTR mail.good.test"));
    let relay_finding = finding(&report, "relay");
    let details = relay_finding["details"].to_string();
    assert!(
        reason(relay_finding).contains("STARTTLS"),
        "{relay_finding:#}"
    );
    assert!(
        details.contains("PLAIN") && details.contains("; authenticated as app"),
        "{details}"
    );
    assert!(details.contains("SIZE: 33554432 octets"), "{details}");
    assert!(
        details.contains("DSN (delivery status notifications, RFC 3461): not offered"),
        "{details}"
    );
    assert!(
        details.contains("8BITMIME (8-bit content, RFC 6152): offered"),
        "{details}"
    );
    assert!(reason(finding(&report, "unsubscribe")).contains("both headers DKIM-signed"));
    assert!(reason(finding(&report, "bulk-sender")).contains("all 7"));
    assert!(relay.messages().is_empty(), "the doctor sends no mail");
}

#[test]
fn spf_without_the_sending_ip_fails_with_the_record_that_adds_it() {
    let world = World::start();
    let (out, report) = world.doctor("missing-ip.test", &[]);
    assert_eq!(out.status.code(), Some(1));
    let spf = finding(&report, "spf");
    assert_fails(
        spf,
        "does not authorize the sending IP 192.0.2.10 (a receiver's result: fail)",
    );
    assert_eq!(
        fix_records(spf),
        ["missing-ip.test. TXT v=spf1 ip4:192.0.2.10 ip4:192.0.2.99 -all"]
    );
}

#[test]
fn two_spf_records_fail_with_the_merged_record() {
    let world = World::start();
    let (_, report) = world.doctor("two-spf.test", &[]);
    let spf = finding(&report, "spf");
    assert_fails(spf, "publishes 2 SPF records");
    assert_eq!(
        fix_records(spf),
        ["two-spf.test. TXT v=spf1 ip4:192.0.2.10 include:_spf.provider.test -all"]
    );
}

#[test]
fn eleven_lookups_through_includes_fail() {
    let world = World::start();
    let (_, report) = world.doctor("lookups.test", &[]);
    let spf = finding(&report, "spf");
    assert_fails(
        spf,
        "needs 11 DNS lookups (counted through includes), over the limit of 10",
    );
    let details = spf["details"].to_string();
    assert!(
        details.contains("include:_a.lookups.test (5: 1 + 4 inside)"),
        "{details}"
    );
    assert!(
        details.contains("include:_b.lookups.test (6: 1 + 5 inside)"),
        "{details}"
    );
    assert_eq!(
        fix_records(spf),
        ["lookups.test. TXT v=spf1 ip4:192.0.2.10 -all"]
    );
}

#[test]
fn a_dkim_record_of_another_key_fails_with_the_keys_record() {
    let world = World::start();
    let (_, report) = world.doctor("mismatch.test", &[]);
    let dkim = finding(&report, "dkim");
    assert_fails(dkim, "publishes another public key than the private key");
    assert_eq!(
        fix_records(dkim),
        [format!(
            "s1._domainkey.mismatch.test. TXT {}",
            world.key.record
        )]
    );
}

#[test]
fn a_missing_dmarc_record_fails_with_the_record_to_publish() {
    let world = World::start();
    let (out, report) = world.doctor("no-dmarc.test", &[]);
    assert_eq!(out.status.code(), Some(1));
    let dmarc = finding(&report, "dmarc");
    assert_fails(dmarc, "no DMARC record at _dmarc.no-dmarc.test");
    assert_eq!(
        fix_records(dmarc),
        ["_dmarc.no-dmarc.test. TXT v=DMARC1; p=none; rua=mailto:dmarc-reports@no-dmarc.test"]
    );
    assert_eq!(finding(&report, "bulk-sender")["status"], "fail");
}

#[test]
fn a_from_in_another_domain_fails_alignment() {
    let world = World::start();
    let (_, report) = world.doctor("good.test", &["--from", "news@brand.test"]);
    let alignment = finding(&report, "alignment");
    assert_fails(
        alignment,
        "From brand.test aligns with neither the DKIM d=good.test (relaxed) nor the return-path \
         good.test (relaxed)",
    );
    assert!(alignment["fix"]["advice"]
        .as_str()
        .unwrap_or_default()
        .contains("good.test"));
    // The SPF of both domains is checked: From and return path.
    let subjects: Vec<String> = findings(&report, "spf")
        .iter()
        .map(|f| f["subject"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        subjects,
        ["brand.test (From domain)", "good.test (return-path domain)"]
    );
    assert!(reason(finding(&report, "dmarc")).contains("p=reject"));
}

#[test]
fn a_sending_ip_without_ptr_fails_with_the_ptr_to_publish() {
    let world = World::start();
    let (_, report) = world.doctor("good.test", &["--sending-ip", "192.0.2.77"]);
    let reverse = finding(&report, "reverse-dns");
    assert_fails(
        reverse,
        "192.0.2.77 has no PTR record (77.2.0.192.in-addr.arpa)",
    );
    assert_eq!(
        fix_records(reverse),
        [
            "77.2.0.192.in-addr.arpa. PTR mail.good.test.",
            "mail.good.test. A 192.0.2.77"
        ]
    );
}

#[test]
fn a_ptr_that_does_not_resolve_back_fails() {
    let world = World::start();
    let (_, report) = world.doctor("good.test", &["--sending-ip", "192.0.2.78"]);
    let reverse = finding(&report, "reverse-dns");
    assert_fails(
        reverse,
        "192.0.2.78 has PTR mail.elsewhere.test, but mail.elsewhere.test does not resolve back",
    );
    assert_eq!(fix_records(reverse), ["mail.elsewhere.test. A 192.0.2.78"]);
    assert!(reverse["details"]
        .to_string()
        .contains("resolves to 192.0.2.200"));
}

#[test]
fn a_relay_with_an_expired_certificate_fails() {
    let world = World::start();
    let pki = TestPki::generate();
    let relay = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.expired.clone()),
        ..Default::default()
    });
    let url = format!("smtp://localhost:{}", relay.port());
    let (out, report) = world.doctor(
        "good.test",
        &[
            "--server",
            &url,
            "--connect-address",
            "127.0.0.1",
            "--ca-file",
            pki.ca.to_str().expect("UTF-8 path"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let relay_finding = finding(&report, "relay");
    assert_fails(relay_finding, "has expired");
    assert!(relay_finding["fix"]["advice"].to_string().contains("renew"));
}

#[test]
fn the_human_report_shows_each_fix_as_a_zone_line() {
    let world = World::start();
    let dns = world.dns.address().to_string();
    let out = run_cli(
        &[
            "doctor",
            "--domain",
            "no-dmarc.test",
            "--sending-ip",
            SENDING_IP,
            "--dns-server",
            &dns,
        ],
        None,
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL      dmarc       _dmarc.no-dmarc.test"),
        "{text}"
    );
    assert!(
        text.contains(
            "_dmarc.no-dmarc.test. IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@no-dmarc.test\""
        ),
        "{text}"
    );
    assert!(
        text.contains("warn      dkim"),
        "no selector: DKIM warns: {text}"
    );
}

#[test]
fn a_dns_server_that_does_not_answer_leaves_every_dns_check_unchecked_in_bounded_time() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let key = keygen(dir.path(), "key.pem", 2048);
    let silent = SilentDns::start();
    let dns = silent.address().to_string();
    let started = Instant::now();
    let out = run_cli(
        &[
            "doctor",
            "--domain",
            "good.test",
            "--dkim-selector",
            "s1",
            "--dkim-key",
            key.path.to_str().expect("UTF-8 path"),
            "--sending-ip",
            SENDING_IP,
            "--dns-server",
            &dns,
            "--dns-timeout",
            "1",
            "--output",
            "json",
        ],
        None,
        &[],
    );
    let took = started.elapsed();
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(out.status.code(), Some(1), "unchecked fails the run");
    for check in ["spf", "dkim", "dmarc", "alignment", "mx", "reverse-dns"] {
        let f = finding(&report, check);
        assert_eq!(f["status"], "unchecked", "{f:#}");
        assert!(reason(f).starts_with("could not be checked: "), "{f:#}");
    }
    assert!(
        reason(finding(&report, "spf")).contains(&format!("got no answer from {dns}")),
        "{report:#}"
    );
    assert_eq!(finding(&report, "bulk-sender")["status"], "warn");
    assert!(
        took < Duration::from_secs(15),
        "a silent DNS server held the doctor for {took:?}"
    );
}

#[test]
fn session_capabilities_tell_implicit_tls_and_plaintext_apart() {
    let pki = TestPki::generate();
    let implicit = Aiosmtpd::start_with(AiosmtpdOptions {
        implicit_tls: Some(pki.good.clone()),
        size_limit: Some(1_000_000),
        ..Default::default()
    });
    let mut server = Server::new("localhost", implicit.port());
    server.connect_address = Some("127.0.0.1".into());
    server.security = Security::ImplicitTls;
    server.ca_pem = Some(pki.ca_pem.clone());
    let mut session = mailer()
        .open_session(&server)
        .expect("implicit TLS session");
    let offered = session.capabilities().expect("capabilities");
    session.close().expect("QUIT");
    let tls = offered.tls.clone().expect("TLS details");
    assert!(tls.implicit, "{tls:?}");
    assert!(tls.version.starts_with("TLSv1_"), "{tls:?}");
    assert_eq!(
        tls.peer_certificates.len(),
        1,
        "the server's own certificate"
    );
    assert_eq!(offered.size, Some(1_000_000));
    assert!(
        offered.extensions.contains(&"SIZE 1000000".to_string()),
        "{offered:?}"
    );
    assert!(!offered.authenticated);

    let plain = Aiosmtpd::start_with(AiosmtpdOptions {
        smtputf8: true,
        ..Default::default()
    });
    let mut session = mailer()
        .open_session(&loopback(plain.port()))
        .expect("plaintext session");
    let offered = session.capabilities().expect("capabilities");
    session.close().expect("QUIT");
    assert_eq!(offered.tls, None);
    assert!(
        offered.offers("SMTPUTF8") && offered.offers("8bitmime"),
        "{offered:?}"
    );
    assert!(!offered.offers("CHUNKING"), "{offered:?}");
    assert!(plain.messages().is_empty(), "nothing was sent");
}
