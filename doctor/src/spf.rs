//! SPF (RFC 7208): one record, that parses, needs at most 10 DNS lookups
//! (counted through includes and redirects), does not end in `+all`, and
//! authorizes the sending IP as a receiver evaluates it (mail-auth's
//! `check_host`).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use mail_auth::common::parse::TxtRecordParser as _;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::spf::Spf;
use mail_auth::SpfResult;

use crate::dns::{Dns, LookupError};
use crate::finding::{Check, DnsRecord, Finding, Status};

/// RFC 7208 section 4.6.4: the terms that query the DNS, counted through
/// includes and redirects, are at most 10.
pub const LOOKUP_LIMIT: usize = 10;

/// How deep includes are followed before giving up (a loop).
const MAX_DEPTH: usize = 12;

/// Checks the SPF record of `domain`, which plays `role` ("From domain",
/// "return-path domain" or both) for mail from `ip` (unknown when `None`).
pub async fn check(dns: &Dns, domain: &str, role: &str, ip: Option<IpAddr>) -> Finding {
    let subject = format!("{domain} ({role})");
    let records = match dns.txt(domain).await {
        Ok(all) => spf_records(&all),
        Err(LookupError::NotFound) => Vec::new(),
        Err(e) => return Finding::unchecked(Check::Spf, subject, e),
    };
    let record = match records.as_slice() {
        [] => {
            return Finding::new(
                Check::Spf,
                subject,
                Status::Fail,
                format!("{domain} publishes no SPF record: receivers cannot tell which hosts may send its mail"),
            )
            .fix(
                publish_advice(ip),
                vec![DnsRecord::new(domain, "TXT", suggested(ip))],
            )
        }
        [one] => one.clone(),
        many => {
            let mut finding = Finding::new(
                Check::Spf,
                subject,
                Status::Fail,
                format!(
                    "{domain} publishes {} SPF records; receivers treat more than one as a \
                     permanent error (RFC 7208 section 4.5), so SPF fails for all its mail",
                    many.len()
                ),
            );
            for r in many {
                finding = finding.detail(format!("record: {r}"));
            }
            let merged = merge(many);
            return finding.fix(
                "replace them with one record holding every term (this merge keeps the \
                 first record's `all`)",
                vec![DnsRecord::new(domain, "TXT", merged)],
            );
        }
    };
    let finding = Finding::new(Check::Spf, subject.clone(), Status::Ok, "")
        .detail(format!("record: {record}"));
    if let Err(e) = Spf::parse(record.as_bytes()) {
        let mut failed = finding;
        failed.status = Status::Fail;
        failed.reason =
            format!("the SPF record of {domain} does not parse ({e:?}): receivers give permerror");
        return failed.fix(
            "publish a record in the syntax of RFC 7208 section 12",
            vec![DnsRecord::new(domain, "TXT", suggested(ip))],
        );
    }
    if has_plus_all(&record) {
        let mut failed = finding;
        failed.status = Status::Fail;
        failed.reason = format!(
            "the SPF record of {domain} ends in +all, which authorizes every host on the Internet \
             to send as {domain}"
        );
        return failed.fix(
            "end the record with -all (or ~all while you test)",
            vec![DnsRecord::new(domain, "TXT", strict_all(&record))],
        );
    }
    let mut finding = finding;
    let count = match count_lookups(dns, domain.to_string(), record.clone(), 0).await {
        Ok(count) => count,
        Err(CountError::Dns(e)) => {
            let mut unchecked = Finding::unchecked(Check::Spf, subject, e);
            unchecked.details = finding.details;
            return unchecked;
        }
        Err(CountError::Broken(why)) => {
            finding.status = Status::Fail;
            finding.reason = format!("{why}: receivers give permerror, so SPF fails");
            return finding.fix(
                "publish an SPF record at every name that an include: or redirect= names, \
                 or remove the term",
                Vec::new(),
            );
        }
    };
    for term in &count.terms {
        finding = finding.detail(format!("lookup: {term}"));
    }
    finding = finding.detail(format!(
        "{} DNS lookups of the {LOOKUP_LIMIT} allowed",
        count.total
    ));
    if count.total > LOOKUP_LIMIT {
        finding.status = Status::Fail;
        finding.reason = format!(
            "the SPF record of {domain} needs {} DNS lookups (counted through includes), over \
             the limit of {LOOKUP_LIMIT} (RFC 7208 section 4.6.4): receivers give permerror, so \
             SPF fails",
            count.total
        );
        let advice = "replace include:, a and mx terms by the ip4:/ip6: ranges they stand for \
                      (ask each provider for its ranges), or drop the includes you no longer \
                      send through";
        return match ip {
            Some(ip) => finding.fix(
                advice,
                vec![DnsRecord::new(domain, "TXT", suggested(Some(ip)))],
            ),
            None => finding.fix(advice, Vec::new()),
        };
    }
    let Some(ip) = ip else {
        finding.status = Status::Warn;
        finding.reason = format!(
            "the SPF record of {domain} is valid, but whether it authorizes the sending IP was \
             not checked: give --sending-ip"
        );
        return finding;
    };
    let helo = domain;
    let sender = format!("postmaster@{domain}");
    let output = dns
        .authenticator()
        .verify_spf(SpfParameters::verify_mail_from(ip, helo, helo, &sender))
        .await;
    let result = output.result();
    finding = finding.detail(format!(
        "a receiver's result for mail from {ip}: {}",
        result_name(result)
    ));
    match result {
        SpfResult::Pass => {
            finding.reason = format!("{domain} authorizes {ip} (SPF pass)");
            finding
        }
        SpfResult::TempError => {
            let mut unchecked = Finding::unchecked(
                Check::Spf,
                subject,
                format!("evaluating SPF for {ip} met a DNS error (temperror)"),
            );
            unchecked.details = finding.details;
            unchecked
        }
        other => {
            finding.status = Status::Fail;
            finding.reason = format!(
                "the SPF record of {domain} does not authorize the sending IP {ip} (a receiver's \
                 result: {})",
                result_name(other)
            );
            finding.fix(
                format!("add {} to the record", ip_term(ip)),
                vec![DnsRecord::new(domain, "TXT", with_ip(&record, ip))],
            )
        }
    }
}

/// The SPF name of a result.
fn result_name(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

/// The records among `txt` that are SPF (`v=spf1` then a space or the end).
pub fn spf_records(txt: &[String]) -> Vec<String> {
    txt.iter()
        .filter(|r| {
            let lower = r.trim().to_ascii_lowercase();
            lower == "v=spf1" || lower.starts_with("v=spf1 ")
        })
        .map(|r| r.trim().to_string())
        .collect()
}

fn publish_advice(ip: Option<IpAddr>) -> String {
    match ip {
        Some(_) => "publish this TXT record (add the ip4:/include: terms of any other host that \
                    sends as this domain)"
            .into(),
        None => "publish a TXT record like this one, with your sending IP in place of \
                 SENDING-IP (run again with --sending-ip for the exact record)"
            .into(),
    }
}

/// The `ip4:` or `ip6:` term of `ip`.
fn ip_term(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip4:{v4}"),
        IpAddr::V6(v6) => format!("ip6:{v6}"),
    }
}

/// The record to publish when there is none.
pub fn suggested(ip: Option<IpAddr>) -> String {
    match ip {
        Some(ip) => format!("v=spf1 {} -all", ip_term(ip)),
        None => "v=spf1 ip4:SENDING-IP -all".into(),
    }
}

/// `record` with the term of `ip` first.
pub fn with_ip(record: &str, ip: IpAddr) -> String {
    let mut terms = record.split_ascii_whitespace();
    let version = terms.next().unwrap_or("v=spf1");
    let rest: Vec<&str> = terms.collect();
    let mut out = format!("{version} {}", ip_term(ip));
    for t in rest {
        out.push(' ');
        out.push_str(t);
    }
    out
}

/// True when an `all` term passes (`all` or `+all`).
fn has_plus_all(record: &str) -> bool {
    record
        .split_ascii_whitespace()
        .any(|t| t.eq_ignore_ascii_case("all") || t.eq_ignore_ascii_case("+all"))
}

/// `record` with its passing `all` made `-all`.
fn strict_all(record: &str) -> String {
    record
        .split_ascii_whitespace()
        .map(|t| {
            if t.eq_ignore_ascii_case("all") || t.eq_ignore_ascii_case("+all") {
                "-all"
            } else {
                t
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One record with every term of `records`, each once, and the first
/// record's `all` (or `~all`) last.
pub fn merge(records: &[String]) -> String {
    let mut terms: Vec<String> = Vec::new();
    let mut all: Option<String> = None;
    for record in records {
        for term in record.split_ascii_whitespace().skip(1) {
            let bare = term.trim_start_matches(['+', '-', '~', '?']);
            if bare.eq_ignore_ascii_case("all") {
                all.get_or_insert_with(|| term.to_string());
            } else if !terms.iter().any(|t| t.eq_ignore_ascii_case(term)) {
                terms.push(term.to_string());
            }
        }
    }
    terms.push(all.unwrap_or_else(|| "~all".into()));
    format!("v=spf1 {}", terms.join(" "))
}

/// The DNS lookups a record costs.
#[derive(Debug, Default)]
struct Count {
    total: usize,
    /// Each querying term with what it cost, as `include:x (4: 1 + 3 inside)`.
    terms: Vec<String>,
}

enum CountError {
    /// A lookup got no answer.
    Dns(LookupError),
    /// An include or redirect leads nowhere: a permerror.
    Broken(String),
}

type CountFuture<'a> = Pin<Box<dyn Future<Output = Result<Count, CountError>> + 'a>>;

/// Counts the lookups of `record` (published at `domain`), following
/// include: and redirect= targets without macros.
fn count_lookups(dns: &Dns, domain: String, record: String, depth: usize) -> CountFuture<'_> {
    Box::pin(async move {
        if depth > MAX_DEPTH {
            return Err(CountError::Broken(format!(
                "includes nest more than {MAX_DEPTH} deep at {domain} (a loop?)"
            )));
        }
        let mut count = Count::default();
        for term in record.split_ascii_whitespace().skip(1) {
            let bare = term.trim_start_matches(['+', '-', '~', '?']);
            let lower = bare.to_ascii_lowercase();
            let (name, target) = match lower.split_once([':', '=']) {
                Some((n, _)) => (n.to_string(), bare.get(n.len() + 1..).map(str::to_string)),
                None => (
                    lower.split('/').next().unwrap_or_default().to_string(),
                    None,
                ),
            };
            match name.as_str() {
                "include" | "redirect" => {
                    let Some(target) = target.filter(|t| !t.is_empty()) else {
                        continue;
                    };
                    if target.contains('%') {
                        count.total += 1;
                        count
                            .terms
                            .push(format!("{term} (1; holds a macro, not followed)"));
                        continue;
                    }
                    let inner = follow(dns, &target, depth, term).await?;
                    count.total += 1 + inner.total;
                    count.terms.push(format!(
                        "{term} ({}: 1 + {} inside)",
                        1 + inner.total,
                        inner.total
                    ));
                    for t in inner.terms {
                        count.terms.push(format!("  {t}"));
                    }
                }
                "a" | "mx" | "ptr" | "exists" => {
                    count.total += 1;
                    count.terms.push(format!("{term} (1)"));
                }
                _ => {}
            }
        }
        Ok(count)
    })
}

/// The count of the record an include or redirect names.
async fn follow(dns: &Dns, target: &str, depth: usize, term: &str) -> Result<Count, CountError> {
    let records = match dns.txt(target).await {
        Ok(all) => spf_records(&all),
        Err(LookupError::NotFound) => Vec::new(),
        Err(e) => return Err(CountError::Dns(e)),
    };
    match records.as_slice() {
        [one] => count_lookups(dns, target.to_string(), one.clone(), depth + 1).await,
        [] => Err(CountError::Broken(format!(
            "{term} names {target}, which publishes no SPF record"
        ))),
        many => Err(CountError::Broken(format!(
            "{term} names {target}, which publishes {} SPF records",
            many.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_rewrites_records() {
        let merged = merge(&[
            "v=spf1 ip4:192.0.2.1 -all".into(),
            "v=spf1 include:_spf.example.net ip4:192.0.2.1 ~all".into(),
        ]);
        assert_eq!(merged, "v=spf1 ip4:192.0.2.1 include:_spf.example.net -all");
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(
            with_ip("v=spf1 mx -all", ip),
            "v=spf1 ip4:192.0.2.9 mx -all"
        );
        assert!(has_plus_all("v=spf1 mx +all") && has_plus_all("v=spf1 ALL"));
        assert!(!has_plus_all("v=spf1 mx -all"));
        assert_eq!(strict_all("v=spf1 mx +all"), "v=spf1 mx -all");
        assert_eq!(
            spf_records(&["v=spf10 x".into(), "V=SPF1 -all".into(), "other".into()]),
            vec!["V=SPF1 -all"]
        );
    }
}
