//! The bulk-sender requirements of the large mailbox providers (Gmail and
//! Yahoo since February 2024, Microsoft since May 2025), each answered from
//! the findings of the other checks.

use crate::finding::{Check, Finding, Status};

/// One requirement: its words and the finding that answers it.
struct Requirement {
    words: &'static str,
    check: Check,
    /// Only findings whose subject contains this (the return-path SPF).
    subject_contains: Option<String>,
    /// A warning still meets it (a DMARC record without `rua=` applies).
    warn_meets: bool,
}

/// The summary finding over `findings`.
pub fn bulk_sender(findings: &[Finding], return_path_domain: &str) -> Finding {
    let requirements = [
        Requirement {
            words: "SPF passes for the return-path domain",
            check: Check::Spf,
            subject_contains: Some(format!("{return_path_domain} (")),
            warn_meets: false,
        },
        Requirement {
            words: "DKIM passes",
            check: Check::Dkim,
            subject_contains: None,
            warn_meets: false,
        },
        Requirement {
            words: "a DMARC record applies (p=none at least)",
            check: Check::Dmarc,
            subject_contains: None,
            warn_meets: true,
        },
        Requirement {
            words: "From aligns with DKIM or SPF",
            check: Check::Alignment,
            subject_contains: None,
            warn_meets: false,
        },
        Requirement {
            words: "the sending IP has forward-confirmed reverse DNS",
            check: Check::ReverseDns,
            subject_contains: None,
            warn_meets: false,
        },
        Requirement {
            words: "one-click unsubscribe (RFC 8058), DKIM-signed",
            check: Check::Unsubscribe,
            subject_contains: None,
            warn_meets: false,
        },
        Requirement {
            words: "TLS to the relay",
            check: Check::Relay,
            subject_contains: None,
            warn_meets: false,
        },
    ];
    let mut met = 0;
    let mut failed = Vec::new();
    let mut unknown = Vec::new();
    let mut details = Vec::new();
    for requirement in &requirements {
        let status = findings
            .iter()
            .filter(|f| f.check == requirement.check)
            .filter(|f| match &requirement.subject_contains {
                Some(part) => f.subject.contains(part.as_str()),
                None => true,
            })
            .map(|f| f.status)
            .max();
        let mark = match status {
            Some(Status::Warn) if requirement.warn_meets => {
                met += 1;
                "yes"
            }
            Some(Status::Ok) => {
                met += 1;
                "yes"
            }
            Some(Status::Fail) => {
                failed.push(requirement.words);
                "NO"
            }
            _ => {
                unknown.push(requirement.words);
                "not confirmed"
            }
        };
        details.push(format!("{mark}: {}", requirement.words));
    }
    let total = requirements.len();
    let (status, reason) = if !failed.is_empty() {
        (
            Status::Fail,
            format!(
                "{met} of {total} bulk-sender requirements met; not met: {}",
                failed.join("; ")
            ),
        )
    } else if !unknown.is_empty() {
        (
            Status::Warn,
            format!(
                "{met} of {total} bulk-sender requirements met; not confirmed: {}",
                unknown.join("; ")
            ),
        )
    } else {
        (
            Status::Ok,
            format!("all {total} bulk-sender requirements met"),
        )
    };
    let mut finding = Finding::new(
        Check::BulkSender,
        "bulk-sender requirements",
        status,
        reason,
    );
    finding.details = details;
    finding
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(check: Check, subject: &str, status: Status) -> Finding {
        Finding::new(check, subject, status, "")
    }

    #[test]
    fn requirements_from_findings() {
        let mut findings = vec![
            found(Check::Spf, "example.org (From domain)", Status::Fail),
            found(
                Check::Spf,
                "bounce.example.org (return-path domain)",
                Status::Ok,
            ),
            found(Check::Dkim, "s._domainkey.example.org", Status::Ok),
            found(Check::Dmarc, "_dmarc.example.org", Status::Warn),
            found(Check::Alignment, "example.org", Status::Ok),
            found(Check::ReverseDns, "192.0.2.1", Status::Ok),
            found(Check::Unsubscribe, "the message", Status::Ok),
            found(Check::Relay, "relay:587", Status::Ok),
        ];
        let summary = bulk_sender(&findings, "bounce.example.org");
        assert_eq!(summary.status, Status::Ok, "{summary:?}");
        findings[5].status = Status::Unchecked;
        let summary = bulk_sender(&findings, "bounce.example.org");
        assert_eq!(summary.status, Status::Warn);
        assert!(
            summary.reason.contains("not confirmed: the sending IP"),
            "{}",
            summary.reason
        );
        findings[2].status = Status::Fail;
        let summary = bulk_sender(&findings, "bounce.example.org");
        assert_eq!(summary.status, Status::Fail);
        assert!(summary.reason.starts_with("5 of 7"), "{}", summary.reason);
    }
}
