//! What one send did to each recipient: accepted, worth retrying, or
//! refused for good (and whether the address itself is bad).

use smtp_mailer_host::{Error, ErrorKind, Stage};
use smtp_mailer_host::{Reply, SendReport};

/// The fate of one recipient in one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    /// The server took the message for it: the reply to the data (or the
    /// recipient's own when the data was refused for others).
    Accepted(String),
    /// A retry may succeed (4xx, a lost connection, a timeout).
    Transient(String),
    /// Refused for good. `bad_mailbox` when the refusal is about the
    /// address itself (550, 5.1.x...), so that it belongs on the
    /// suppression list.
    Permanent { reason: String, bad_mailbox: bool },
}

/// The fate of each of `sent` after a send that returned `result`.
pub(crate) fn fates(result: &Result<SendReport, Error>, sent: &[String]) -> Vec<(String, Fate)> {
    match result {
        Ok(report) => per_recipient(&report.recipients, sent, Some(&report.final_reply)),
        Err(Error {
            kind: ErrorKind::Rejected(rejection),
            ..
        }) if rejection.stage == Stage::RcptTo && !rejection.recipients.is_empty() => {
            per_recipient(&rejection.recipients, sent, None)
        }
        Err(e) => {
            let fate = if e.is_transient() {
                Fate::Transient(e.message.clone())
            } else {
                Fate::Permanent {
                    reason: e.message.clone(),
                    bad_mailbox: false,
                }
            };
            sent.iter().map(|a| (a.clone(), fate.clone())).collect()
        }
    }
}

fn per_recipient(
    outcomes: &[smtp_mailer_host::RecipientOutcome],
    sent: &[String],
    final_reply: Option<&Reply>,
) -> Vec<(String, Fate)> {
    sent.iter()
        .map(|address| {
            let outcome = outcomes
                .iter()
                .find(|o| o.address.eq_ignore_ascii_case(address));
            let fate = match outcome {
                Some(o) if o.accepted => {
                    Fate::Accepted(final_reply.unwrap_or(&o.reply).to_string())
                }
                Some(o) if (400..500).contains(&o.reply.code) => {
                    Fate::Transient(o.reply.to_string())
                }
                Some(o) => Fate::Permanent {
                    reason: o.reply.to_string(),
                    bad_mailbox: is_bad_mailbox(&o.reply),
                },
                // The component reports every recipient it sent; one
                // missing is a surprise worth retrying rather than losing.
                None => Fate::Transient("no reply for this recipient".into()),
            };
            (address.clone(), fate)
        })
        .collect()
}

/// True for a permanent refusal of the address itself: the mailbox does
/// not exist, has moved, or is disabled (RFC 3463 5.1.x and 5.2.1, or
/// 550/551/553 without an enhanced code). Policy refusals (5.7.x), full
/// mailboxes and size limits are not about the address.
pub(crate) fn is_bad_mailbox(reply: &Reply) -> bool {
    match reply.enhanced_code.as_deref() {
        Some(code) => code.starts_with("5.1.") || code == "5.2.1",
        None => matches!(reply.code, 550 | 551 | 553),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_mailer_host::Failure;
    use smtp_mailer_host::RecipientOutcome;

    fn reply(code: u16, enhanced: Option<&str>) -> Reply {
        Reply {
            code,
            enhanced_code: enhanced.map(Into::into),
            text: "text".into(),
        }
    }

    fn outcome(address: &str, accepted: bool, r: Reply) -> RecipientOutcome {
        RecipientOutcome {
            address: address.into(),
            accepted,
            reply: r,
        }
    }

    #[test]
    fn sorts_recipients_by_their_replies() {
        let sent = vec!["a@x".to_string(), "b@x".into(), "c@x".into(), "d@x".into()];
        let report = SendReport {
            message_id: None,
            recipients: vec![
                outcome("a@x", true, reply(250, None)),
                outcome("b@x", false, reply(450, Some("4.2.1"))),
                outcome("c@x", false, reply(550, Some("5.1.1"))),
                outcome("d@x", false, reply(550, Some("5.7.1"))),
            ],
            final_reply: reply(250, None),
        };
        let f = fates(&Ok(report), &sent);
        assert!(
            matches!(&f[0].1, Fate::Accepted(reply) if reply.starts_with("250")),
            "{f:?}"
        );
        assert!(matches!(f[1].1, Fate::Transient(_)));
        assert!(matches!(
            f[2].1,
            Fate::Permanent {
                bad_mailbox: true,
                ..
            }
        ));
        assert!(matches!(
            f[3].1,
            Fate::Permanent {
                bad_mailbox: false,
                ..
            }
        ));
    }

    #[test]
    fn an_error_applies_to_every_recipient() {
        let e = Error {
            kind: ErrorKind::Connection(Failure {
                stage: Stage::DataEnd,
                detail: "lost".into(),
            }),
            transient: true,
            message: "connection lost".into(),
        };
        let sent = vec!["a@x".to_string(), "b@x".into()];
        let f = fates(&Err(e), &sent);
        assert!(f.iter().all(|(_, f)| matches!(f, Fate::Transient(_))));
    }

    #[test]
    fn bad_mailboxes() {
        assert!(is_bad_mailbox(&reply(550, None)));
        assert!(is_bad_mailbox(&reply(550, Some("5.1.1"))));
        assert!(is_bad_mailbox(&reply(550, Some("5.2.1"))));
        assert!(!is_bad_mailbox(&reply(550, Some("5.7.1"))));
        assert!(!is_bad_mailbox(&reply(552, Some("5.2.2"))));
        assert!(!is_bad_mailbox(&reply(554, None)));
    }
}
