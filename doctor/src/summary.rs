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
}

/// The summary finding over `findings`.
pub fn bulk_sender(findings: &[Finding], return_path_domain: &str) -> Finding {
    let requirements = [
        Requirement {
            words: "SPF passes for the return-path domain",
            check: Check::Spf,
            subject_contains: Some(format!("{return_path_domain} (")),
        },
        Requirement {
            words: "DKIM passes",
            check: Check::Dkim,
            subject_contains: None,
        },
        Requirement {
            words: "a DMARC record applies (p=none at least)",
            check: Check::Dmarc,
            subject_contains: None,
        },
        Requirement {
            words: "From aligns with DKIM or SPF",
            check: Check::Alignment,
            subject_contains: None,
        },
        Requirement {
            words: "the sending IP has forward-confirmed reverse DNS",
            check: Check::ReverseDns,
            subject_contains: None,
        },
        Requirement {
            words: "one-click unsubscribe (RFC 8058), DKIM-signed",
            check: Check::Unsubscribe,
            subject_contains: None,
        },
        Requirement {
            words: "TLS to the relay",
            check: Check::Relay,
            subject_contains: None,
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
