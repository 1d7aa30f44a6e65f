//! Reverse DNS of the sending IP: a PTR record exists, and a name it gives
//! resolves back to the IP (forward-confirmed reverse DNS, "FCrDNS"), which
//! the large mailbox providers require of bulk senders.

use std::net::IpAddr;

use crate::dns::{reverse_name, Dns, LookupError};
use crate::finding::{Check, DnsRecord, Finding, Status};

/// Checks the PTR of `ip` and that it forward-confirms. `domain` names the
/// host in the suggested records.
pub async fn check(dns: &Dns, ip: Option<IpAddr>, domain: &str) -> Finding {
    let Some(ip) = ip else {
        return Finding::new(
            Check::ReverseDns,
            "the sending IP",
            Status::Warn,
            "not checked: give --sending-ip (the address your relay sends from)",
        );
    };
    let subject = ip.to_string();
    let reverse = reverse_name(ip);
    let host = format!("mail.{domain}");
    let address_kind = if ip.is_ipv4() { "A" } else { "AAAA" };
    let names = match dns.ptr(ip).await {
        Ok(names) => names,
        Err(LookupError::NotFound) => {
            return Finding::new(
                Check::ReverseDns,
                subject,
                Status::Fail,
                format!(
                    "{ip} has no PTR record ({reverse}): the large mailbox providers refuse bulk \
                     mail from IPs without reverse DNS"
                ),
            )
            .fix(
                format!(
                    "ask whoever owns {ip} (your hosting provider) to publish the PTR, and \
                     publish the name's address ({host} here: use the name your relay says in \
                     EHLO)"
                ),
                vec![
                    DnsRecord::new(&reverse, "PTR", format!("{host}.")),
                    DnsRecord::new(&host, address_kind, ip.to_string()),
                ],
            )
        }
        Err(e) => return Finding::unchecked(Check::ReverseDns, subject, e),
    };
    let mut finding = Finding::new(Check::ReverseDns, subject.clone(), Status::Ok, "");
    for name in &names {
        match dns.addresses(name).await {
            Ok(addresses) if addresses.contains(&ip) => {
                finding.reason = format!("{ip} has PTR {name}, which resolves back to {ip}");
                return finding;
            }
            Ok(addresses) => {
                let shown: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
                finding = finding.detail(format!("PTR {name} resolves to {}", shown.join(", ")));
            }
            Err(LookupError::NotFound) => {
                finding = finding.detail(format!("PTR {name} has no A or AAAA record"));
            }
            Err(e) => return Finding::unchecked(Check::ReverseDns, subject, e),
        }
    }
    let name = &names[0];
    finding.status = Status::Fail;
    finding.reason = format!(
        "{ip} has PTR {name}, but {name} does not resolve back to {ip}: the reverse DNS is not \
         forward-confirmed, which receivers treat like none"
    );
    finding.fix(
        format!("publish the address of {name}"),
        vec![DnsRecord::new(name, address_kind, ip.to_string())],
    )
}
