//! DMARC (RFC 7489, with the DNS tree walk of DMARCbis): the policy record
//! of the From domain (or of its organizational domain), its policy and
//! `rua`; and whether From aligns with the DKIM `d=` and the SPF
//! (return-path) domain under the record's alignment modes. mail-auth
//! evaluates both, as a receiver does.

use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::{Alignment, Dmarc, Policy};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, DkimOutput, DmarcOutput, DmarcResult, SpfOutput, SpfResult};

use crate::dns::{Dns, LookupError};
use crate::finding::{Check, DnsRecord, Finding, Status};

/// What the DMARC checks need.
pub struct DmarcInput<'a> {
    /// The From domain (the author domain).
    pub from_domain: &'a str,
    /// The DKIM signing domain (`d=`).
    pub dkim_domain: &'a str,
    /// The return-path (MAIL FROM) domain, which SPF authenticates.
    pub return_path_domain: &'a str,
    /// A message From the From domain, built by the component (signed with
    /// DKIM when a key was given).
    pub message: &'a [u8],
    /// Whether the message carries a signature to verify.
    pub signed: bool,
    /// The sending IP, when known: SPF's real result for the return-path
    /// domain then takes part in the receiver's view.
    pub ip: Option<std::net::IpAddr>,
}

/// The DMARC record finding and the alignment finding.
pub async fn check(dns: &Dns, input: &DmarcInput<'_>) -> (Finding, Finding) {
    let from = input.from_domain;
    let record_subject = format!("_dmarc.{from}");
    let Some(message) = AuthenticatedMessage::parse(input.message) else {
        let why = "the probe message built by the component does not parse";
        return (
            Finding::new(Check::Dmarc, &record_subject, Status::Fail, why),
            Finding::new(Check::Alignment, from, Status::Fail, why),
        );
    };
    // Alignment of each identifier alone: SPF is taken to pass for it,
    // so only alignment decides.
    let spf_alone = |domain: &str| SpfOutput::new(domain.to_string()).with_result(SpfResult::Pass);
    let spf_identifier = spf_alone(input.return_path_domain);
    let spf_view = evaluate(
        dns,
        &message,
        &[],
        input.return_path_domain,
        &spf_identifier,
    )
    .await;

    if let DmarcResult::TempError(e) = spf_view.spf_result() {
        let why = format!("the DMARC record could not be fetched: {e}");
        return (
            Finding::unchecked(Check::Dmarc, &record_subject, &why),
            Finding::unchecked(Check::Alignment, from, &why),
        );
    }
    let Some(record) = spf_view.dmarc_record() else {
        return no_record(dns, input, record_subject).await;
    };
    let location = locate(dns, from).await;
    let record_finding = record_finding(input, record, &spf_view, location);

    let dkim_identifier = spf_alone(input.dkim_domain);
    let dkim_view = if record.adkim == record.aspf {
        evaluate(dns, &message, &[], input.dkim_domain, &dkim_identifier).await
    } else {
        // Another alignment mode: evaluated under adkim below.
        DmarcOutput::default()
    };
    let spf_aligned = matches!(spf_view.spf_result(), DmarcResult::Pass);
    let dkim_aligned = if record.adkim == record.aspf {
        matches!(dkim_view.spf_result(), DmarcResult::Pass)
    } else {
        aligned_without_evaluation(input.dkim_domain, from, record.adkim)
    };

    let mode = |a: &Alignment| match a {
        Alignment::Relaxed => "relaxed",
        Alignment::Strict => "strict",
    };
    let mut alignment = Finding::new(Check::Alignment, from, Status::Ok, "");
    alignment = alignment.detail(format!(
        "DKIM: d={} {} From {from} under adkim={}",
        input.dkim_domain,
        if dkim_aligned {
            "aligns with"
        } else {
            "does not align with"
        },
        mode(&record.adkim)
    ));
    alignment = alignment.detail(format!(
        "SPF: the return-path domain {} {} From {from} under aspf={}",
        input.return_path_domain,
        if spf_aligned {
            "aligns with"
        } else {
            "does not align with"
        },
        mode(&record.aspf)
    ));
    if let Some(result) = receiver_result(dns, input, &message).await {
        alignment = alignment.detail(format!(
            "a receiver's DMARC result for the probe message: {result}"
        ));
    }
    match (dkim_aligned, spf_aligned) {
        (true, true) => {
            alignment.reason = format!(
                "From {from} aligns with both the DKIM d={} and the return-path {}",
                input.dkim_domain, input.return_path_domain
            );
        }
        (true, false) => {
            alignment.reason = format!(
                "From {from} aligns with the DKIM d={}: DMARC can pass on DKIM",
                input.dkim_domain
            );
        }
        (false, true) => {
            alignment.reason = format!(
                "From {from} aligns with the return-path {}: DMARC can pass on SPF",
                input.return_path_domain
            );
            alignment = alignment.detail(format!(
                "only SPF aligns: forwarded mail (which breaks SPF) fails DMARC; sign with \
                 d={from} to align DKIM too"
            ));
        }
        (false, false) => {
            alignment.status = Status::Fail;
            alignment.reason = format!(
                "From {from} aligns with neither the DKIM d={} ({}) nor the return-path {} ({}): \
                 DMARC fails for every message",
                input.dkim_domain,
                mode(&record.adkim),
                input.return_path_domain,
                mode(&record.aspf)
            );
            alignment = alignment.fix(
                format!(
                    "send From an address at {dkim}, or sign with d={from} (publish a key at \
                     SELECTOR._domainkey.{from} and give --domain {from}) and use a return-path \
                     under {from} (--bounce-domain)",
                    dkim = input.dkim_domain
                ),
                Vec::new(),
            );
        }
    }
    (record_finding, alignment)
}

/// mail-auth's DMARC evaluation of `message`.
async fn evaluate(
    dns: &Dns,
    message: &AuthenticatedMessage<'_>,
    dkim: &[DkimOutput<'_>],
    spf_domain: &str,
    spf: &SpfOutput,
) -> DmarcOutput {
    dns.authenticator()
        .verify_dmarc(DmarcParameters::new(message, dkim, spf_domain, spf))
        .await
}

/// The DMARC result a receiver would reach for the probe message, with
/// the real DKIM verification and, when known, the real SPF result.
async fn receiver_result(
    dns: &Dns,
    input: &DmarcInput<'_>,
    message: &AuthenticatedMessage<'_>,
) -> Option<String> {
    let ip = input.ip?;
    let sender = format!("postmaster@{}", input.return_path_domain);
    let spf = dns
        .authenticator()
        .verify_spf(SpfParameters::verify_mail_from(
            ip,
            input.return_path_domain,
            input.return_path_domain,
            &sender,
        ))
        .await
        .result();
    let dkim = if input.signed {
        dns.authenticator().verify_dkim(message).await
    } else {
        Vec::new()
    };
    let spf_output = SpfOutput::new(input.return_path_domain.to_string()).with_result(spf);
    let output = evaluate(dns, message, &dkim, input.return_path_domain, &spf_output).await;
    Some(match output.result() {
        DmarcResult::Pass => "pass".into(),
        DmarcResult::Fail(_) => "fail".into(),
        DmarcResult::TempError(e) => format!("temperror ({e})"),
        DmarcResult::PermError(e) => format!("permerror ({e})"),
        DmarcResult::None => "none".into(),
    })
}

/// Where the applicable record was found: `_dmarc.<from>` or the first
/// parent that has one (the organizational domain's).
async fn locate(dns: &Dns, from: &str) -> Option<(String, usize)> {
    let mut domain = from;
    loop {
        let name = format!("_dmarc.{domain}");
        if let Ok(txt) = dns.txt(&name).await {
            let count = txt.iter().filter(|r| is_dmarc(r)).count();
            if count > 0 {
                return Some((name, count));
            }
        }
        let (_, parent) = domain.split_once('.')?;
        if !parent.contains('.') {
            return None;
        }
        domain = parent;
    }
}

fn is_dmarc(record: &str) -> bool {
    let lower = record.trim().to_ascii_lowercase();
    match lower.strip_prefix("v=dmarc1") {
        Some(rest) => rest.trim_start().is_empty() || rest.trim_start().starts_with(';'),
        None => false,
    }
}

/// The finding about the record that applies.
fn record_finding(
    input: &DmarcInput<'_>,
    record: &Dmarc,
    output: &DmarcOutput,
    location: Option<(String, usize)>,
) -> Finding {
    let from = input.from_domain;
    let (name, count) = location.unwrap_or_else(|| (format!("_dmarc.{from}"), 1));
    let policy = policy_name(output.policy());
    let mut finding = Finding::new(Check::Dmarc, &name, Status::Ok, "");
    finding = finding.detail(format!(
        "p={} sp={} adkim={} aspf={}{}",
        policy_name(record.p),
        policy_name(record.sp),
        if record.adkim == Alignment::Strict {
            "s"
        } else {
            "r"
        },
        if record.aspf == Alignment::Strict {
            "s"
        } else {
            "r"
        },
        if record.t { " t=y" } else { "" }
    ));
    if name != format!("_dmarc.{from}") {
        finding = finding.detail(format!(
            "found at the organizational domain's {name}: its policy (sp=) covers {from}"
        ));
    }
    if count > 1 {
        finding.status = Status::Fail;
        finding.reason = format!(
            "{name} holds {count} DMARC records: receivers apply none of them (RFC 7489 \
             section 6.6.3)"
        );
        return finding.fix(
            "keep one record",
            vec![DnsRecord::new(&name, "TXT", suggested(from))],
        );
    }
    let rua: Vec<String> = record.rua.iter().map(|u| u.uri.clone()).collect();
    if rua.is_empty() {
        finding.status = Status::Warn;
        finding.reason = format!(
            "{name} applies p={policy} to {from} but has no rua=: you get no aggregate reports, \
             so you cannot see who sends as {from} or whether it aligns"
        );
        return finding.fix(
            format!(
                "add rua= with a mailbox that receives the reports (dmarc-reports@{from} here)"
            ),
            vec![DnsRecord::new(&name, "TXT", with_rua(record, from))],
        );
    }
    finding = finding.detail(format!("aggregate reports (rua) go to {}", rua.join(", ")));
    finding.reason = format!("{name} applies p={policy} to {from}");
    if matches!(output.policy(), Policy::None) {
        finding = finding.detail(
            "p=none monitors only: once the reports show all your mail aligned, move to \
             p=quarantine, then p=reject",
        );
    }
    finding
}

/// The findings when no record applies.
async fn no_record(dns: &Dns, input: &DmarcInput<'_>, subject: String) -> (Finding, Finding) {
    let from = input.from_domain;
    // A record that exists but does not parse, or lacks p= and rua=.
    let published = match dns.txt(&subject).await {
        Ok(txt) => txt
            .into_iter()
            .find(|r| r.to_ascii_lowercase().starts_with("v=dmarc1")),
        Err(LookupError::Failed(e)) => {
            return (
                Finding::unchecked(Check::Dmarc, &subject, &e),
                Finding::unchecked(Check::Alignment, from, &e),
            )
        }
        Err(LookupError::NotFound) => None,
    };
    let reason = match &published {
        Some(r) => format!(
            "the record at {subject} ({r}) does not apply: it lacks a valid p= (and rua=), so \
             receivers ignore it"
        ),
        None => format!(
            "no DMARC record at {subject} nor at its organizational domain: bulk mail without \
             DMARC is rejected by the large mailbox providers"
        ),
    };
    let record = Finding::new(Check::Dmarc, &subject, Status::Fail, reason).fix(
        format!(
            "publish a DMARC record (p=none to start; the reports go to dmarc-reports@{from}, a \
             mailbox you read)"
        ),
        vec![DnsRecord::new(&subject, "TXT", suggested(from))],
    );
    let strict = input.dkim_domain.eq_ignore_ascii_case(from);
    let alignment = Finding::new(
        Check::Alignment,
        from,
        Status::Warn,
        format!("without a DMARC record, alignment is not evaluated for {from}"),
    )
    .detail(format!(
        "DKIM d={} {} the From domain",
        input.dkim_domain,
        if strict { "equals" } else { "differs from" }
    ));
    (record, alignment)
}

/// Alignment of `identifier` with `from` when mail-auth cannot be asked
/// (the record's two modes differ): strict is equality, relaxed accepts a
/// parent or child domain.
fn aligned_without_evaluation(identifier: &str, from: &str, mode: Alignment) -> bool {
    let identifier = identifier.to_ascii_lowercase();
    let from = from.to_ascii_lowercase();
    match mode {
        Alignment::Strict => identifier == from,
        Alignment::Relaxed => {
            identifier == from
                || identifier.ends_with(&format!(".{from}"))
                || from.ends_with(&format!(".{identifier}"))
        }
    }
}

fn policy_name(policy: Policy) -> &'static str {
    match policy {
        Policy::None | Policy::Unspecified => "none",
        Policy::Quarantine => "quarantine",
        Policy::Reject => "reject",
    }
}

/// The record to publish when there is none.
pub fn suggested(from: &str) -> String {
    format!("v=DMARC1; p=none; rua=mailto:dmarc-reports@{from}")
}

/// `record` written back with a `rua=`.
fn with_rua(record: &Dmarc, from: &str) -> String {
    let mut out = format!("v=DMARC1; p={}", policy_name(record.p));
    if record.sp != record.p {
        out.push_str(&format!("; sp={}", policy_name(record.sp)));
    }
    if record.adkim == Alignment::Strict {
        out.push_str("; adkim=s");
    }
    if record.aspf == Alignment::Strict {
        out.push_str("; aspf=s");
    }
    out.push_str(&format!("; rua=mailto:dmarc-reports@{from}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_records_and_alignment() {
        assert!(is_dmarc("v=DMARC1; p=none"));
        assert!(is_dmarc("v=DMARC1"));
        assert!(!is_dmarc("v=DMARC10; p=none"));
        assert!(aligned_without_evaluation(
            "mail.example.org",
            "example.org",
            Alignment::Relaxed
        ));
        assert!(!aligned_without_evaluation(
            "mail.example.org",
            "example.org",
            Alignment::Strict
        ));
        assert!(!aligned_without_evaluation(
            "example.net",
            "example.org",
            Alignment::Relaxed
        ));
    }
}
