//! What the checks answer: one [`Finding`] per check and subject, with a
//! status, the reason, and where something is missing or wrong, the fix.

use std::fmt;

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// As a receiver wants it.
    Ok,
    /// Works, but a receiver may hold it against the mail, or the check
    /// lacked an input to be complete. Does not fail the run.
    Warn,
    /// The DNS did not answer (a time-out, SERVFAIL): nothing is known
    /// either way. Fails the run, since nothing was confirmed.
    Unchecked,
    /// Receivers will reject, quarantine or fail the mail for this.
    Fail,
}

impl Status {
    /// The word shown in reports.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Unchecked => "unchecked",
            Status::Fail => "fail",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Which check a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// SPF of the From domain or of the return-path domain (RFC 7208).
    Spf,
    /// The DKIM key record, and a signature verified against it (RFC 6376).
    Dkim,
    /// The DMARC record of the From domain (RFC 9989).
    Dmarc,
    /// Whether the From domain aligns with the DKIM `d=` and the SPF domain.
    Alignment,
    /// MX of the bounce (return-path) domain.
    Mx,
    /// Reverse DNS of the sending IP, forward-confirmed.
    ReverseDns,
    /// The relay, probed through the component.
    Relay,
    /// One-click unsubscribe (RFC 8058) and a consistent From in the message.
    Unsubscribe,
    /// The bulk-sender requirements of the large mailbox providers.
    BulkSender,
}

impl Check {
    /// The check's name in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Check::Spf => "spf",
            Check::Dkim => "dkim",
            Check::Dmarc => "dmarc",
            Check::Alignment => "alignment",
            Check::Mx => "mx",
            Check::ReverseDns => "reverse-dns",
            Check::Relay => "relay",
            Check::Unsubscribe => "unsubscribe",
            Check::BulkSender => "bulk-sender",
        }
    }
}

/// A DNS record to publish, in zone-file terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    /// The owner name, fully qualified, with its final dot.
    pub name: String,
    /// The record type: `TXT`, `MX`, `A`, `PTR`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The record's data as it is written in a zone file, without the
    /// quotes of a TXT string.
    pub value: String,
}

impl DnsRecord {
    /// A record of `kind` at `name` (a final dot is added).
    pub fn new(name: &str, kind: &str, value: impl Into<String>) -> DnsRecord {
        let name = name.trim_end_matches('.');
        DnsRecord {
            name: format!("{name}."),
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// The zone-file line: TXT data quoted, in strings of at most 255
    /// bytes.
    pub fn zone_line(&self) -> String {
        let value = if self.kind == "TXT" {
            self.value
                .as_bytes()
                .chunks(255)
                .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            self.value.clone()
        };
        format!("{} IN {} {}", self.name, self.kind, value)
    }
}

/// What to do about a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    /// What to do, in one or two sentences.
    pub advice: String,
    /// The records to publish (replacing any of the same name and kind that
    /// the advice names), when the fix is DNS.
    pub records: Vec<DnsRecord>,
}

/// The answer of one check for one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check.
    pub check: Check,
    /// What was checked: a domain, a DNS name, an IP address, a relay.
    pub subject: String,
    /// How it came out.
    pub status: Status,
    /// Why, in one sentence: the first problem found, or what is right.
    pub reason: String,
    /// What else was seen: the record, the counts, further problems.
    pub details: Vec<String>,
    /// How to fix it, when it is not ok.
    pub fix: Option<Fix>,
}

impl Finding {
    /// A finding with no details and no fix.
    pub fn new(
        check: Check,
        subject: impl Into<String>,
        status: Status,
        reason: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            subject: subject.into(),
            status,
            reason: reason.into(),
            details: Vec::new(),
            fix: None,
        }
    }

    /// A finding that could not be made because the DNS did not answer.
    pub fn unchecked(check: Check, subject: impl Into<String>, why: impl fmt::Display) -> Finding {
        Finding::new(
            check,
            subject,
            Status::Unchecked,
            format!("could not be checked: {why}"),
        )
    }

    /// The same finding with one more detail line.
    pub fn detail(mut self, line: impl Into<String>) -> Finding {
        self.details.push(line.into());
        self
    }

    /// The same finding with a fix.
    pub fn fix(mut self, advice: impl Into<String>, records: Vec<DnsRecord>) -> Finding {
        self.fix = Some(Fix {
            advice: advice.into(),
            records,
        });
        self
    }
}

/// Every finding of a run, in the order of the checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The findings.
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when a finding failed or could not be checked: the run fails.
    pub fn failed(&self) -> bool {
        self.findings
            .iter()
            .any(|f| matches!(f.status, Status::Fail | Status::Unchecked))
    }

    /// The findings of one check.
    pub fn of(&self, check: Check) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.check == check)
    }
}
