//! MX of the bounce (return-path) domain: bounces and DSNs are mailed to
//! the return path, so its domain must accept mail, at the host that
//! processes bounces when one is named.

use crate::dns::{Dns, LookupError};
use crate::finding::{Check, DnsRecord, Finding, Status};

/// Checks that `domain` has MX hosts that resolve, one of them
/// `inbound_host` when given.
pub async fn check(dns: &Dns, domain: &str, inbound_host: Option<&str>) -> Finding {
    let subject = format!("{domain} (bounce domain)");
    let target = inbound_host.unwrap_or("BOUNCE-HOST");
    let publish = |finding: Finding, advice: &str| {
        finding.fix(
            match inbound_host {
                Some(_) => advice.to_string(),
                None => format!(
                    "{advice}; BOUNCE-HOST is the host that receives your bounces (give \
                     --inbound-host for the exact record)"
                ),
            },
            vec![DnsRecord::new(domain, "MX", format!("10 {target}."))],
        )
    };
    let records = match dns.mx(domain).await {
        Ok(records) => records,
        Err(LookupError::NotFound) => {
            let finding = Finding::new(
                Check::Mx,
                subject,
                Status::Fail,
                format!(
                    "{domain} has no MX record: bounces to the return path @{domain} cannot be \
                     delivered (and some receivers refuse a MAIL FROM whose domain takes no mail)"
                ),
            );
            return publish(finding, "publish an MX record");
        }
        Err(e) => return Finding::unchecked(Check::Mx, subject, e),
    };
    let mut finding = Finding::new(Check::Mx, subject.clone(), Status::Ok, "");
    for (preference, exchange) in &records {
        finding = finding.detail(format!("MX {preference} {exchange}"));
    }
    if records.len() == 1 && (records[0].1.is_empty() || records[0].1 == ".") {
        finding.status = Status::Fail;
        finding.reason = format!(
            "{domain} publishes a null MX (RFC 7505): it accepts no mail, so bounces are lost and \
             receivers refuse it as a return path"
        );
        return publish(finding, "replace the null MX");
    }
    let mut resolving = Vec::new();
    for (_, exchange) in &records {
        match dns.addresses(exchange).await {
            Ok(addresses) => {
                let shown: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
                finding = finding.detail(format!("{exchange} has {}", shown.join(", ")));
                resolving.push(exchange.clone());
            }
            Err(LookupError::NotFound) => {
                finding = finding.detail(format!("{exchange} has no A or AAAA record"));
            }
            Err(e) => return Finding::unchecked(Check::Mx, subject, e),
        }
    }
    if resolving.is_empty() {
        finding.status = Status::Fail;
        finding.reason =
            format!("no MX host of {domain} has an address: bounces cannot be delivered");
        return finding.fix("publish A (or AAAA) records for the MX hosts", Vec::new());
    }
    if let Some(inbound) = inbound_host {
        let inbound = inbound.trim_end_matches('.').to_ascii_lowercase();
        if !records.iter().any(|(_, exchange)| *exchange == inbound) {
            finding.status = Status::Fail;
            finding.reason = format!(
                "the MX of {domain} does not point to {inbound}, where bounces are processed: \
                 they go to {} instead",
                records
                    .iter()
                    .map(|(_, e)| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return publish(finding, "point the MX at the bounce host");
        }
    }
    finding.reason = format!("{domain} accepts mail at {}", resolving.join(", "));
    finding
}
