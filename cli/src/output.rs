//! Receipts and exit codes.

use serde_json::json;
use smtp_mailer_host::{Error, ErrorKind, SendReport};

/// Every recipient accepted.
pub const EXIT_OK: u8 = 0;
/// Bad input: the message or the options (sysexits EX_DATAERR).
pub const EXIT_INVALID: u8 = 65;
/// A permanent failure, or a refused recipient (sysexits EX_UNAVAILABLE).
pub const EXIT_PERMANENT: u8 = 69;
/// A retry may help (sysexits EX_TEMPFAIL).
pub const EXIT_TEMPFAIL: u8 = 75;

/// The exit code of a send's outcome.
pub fn exit_code(result: &Result<SendReport, Error>) -> u8 {
    match result {
        Ok(report) if report.all_accepted() => EXIT_OK,
        Ok(report) => {
            let transient = report
                .recipients
                .iter()
                .any(|r| !r.accepted && (400..500).contains(&r.reply.code));
            if transient {
                EXIT_TEMPFAIL
            } else {
                EXIT_PERMANENT
            }
        }
        Err(e) => error_code(e),
    }
}

/// The exit code of an error.
pub fn error_code(e: &Error) -> u8 {
    match e.kind {
        ErrorKind::InvalidInput { .. } => EXIT_INVALID,
        _ if e.is_transient() => EXIT_TEMPFAIL,
        _ => EXIT_PERMANENT,
    }
}

/// Prints the receipt of a send.
pub fn print_receipt(result: &Result<SendReport, Error>, server: &str, json_output: bool) {
    if json_output {
        let value = match result {
            Ok(report) => json!({
                "status": if report.all_accepted() { "sent" } else { "partial" },
                "server": server,
                "message_id": report.message_id,
                "recipients": report.recipients,
                "final_reply": report.final_reply,
            }),
            Err(e) => json!({ "status": "failed", "server": server, "error": e }),
        };
        println!("{value}");
        return;
    }
    match result {
        Ok(report) => {
            let status = if report.all_accepted() {
                "Sent"
            } else {
                "Partly sent"
            };
            println!(
                "{status} {} via {server}: {}",
                report
                    .message_id
                    .as_deref()
                    .map(|id| format!("<{id}>"))
                    .unwrap_or_default(),
                report.final_reply
            );
            let width = report
                .recipients
                .iter()
                .map(|r| r.address.len())
                .max()
                .unwrap_or(0);
            for r in &report.recipients {
                let verdict = if r.accepted { "accepted" } else { "refused " };
                println!("  {verdict}  {:width$}  {}", r.address, r.reply);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(recipients) = match &e.kind {
                ErrorKind::Rejected(r) => Some(&r.recipients),
                _ => None,
            } {
                for r in recipients {
                    eprintln!("  refused  {}  {}", r.address, r.reply);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_mailer_host::{RecipientOutcome, Reply};

    fn report(codes: &[u16]) -> SendReport {
        SendReport {
            message_id: None,
            recipients: codes
                .iter()
                .map(|&code| RecipientOutcome {
                    address: "a@x".into(),
                    accepted: code < 300,
                    reply: Reply {
                        code,
                        enhanced_code: None,
                        text: String::new(),
                    },
                })
                .collect(),
            final_reply: Reply {
                code: 250,
                enhanced_code: None,
                text: String::new(),
            },
        }
    }

    #[test]
    fn codes() {
        assert_eq!(exit_code(&Ok(report(&[250, 250]))), EXIT_OK);
        assert_eq!(exit_code(&Ok(report(&[250, 550]))), EXIT_PERMANENT);
        assert_eq!(exit_code(&Ok(report(&[250, 450, 550]))), EXIT_TEMPFAIL);
    }
}
