//! What a successful send answers: the Message-ID, one outcome per
//! recipient, and the server's final reply.

use serde_json::{json, Value};

use crate::bindings::types;

/// The outcome of a send that the server accepted for at least one
/// recipient.
#[derive(Debug, Clone)]
pub struct Receipt {
    report: types::SendReport,
}

pub(crate) fn reply_json(r: &types::Reply) -> Value {
    json!({ "code": r.code, "enhanced_code": r.enhanced_code, "text": r.text })
}

pub(crate) fn recipient_json(r: &types::RecipientOutcome) -> Value {
    json!({ "address": r.address, "accepted": r.accepted, "reply": reply_json(&r.reply) })
}

impl Receipt {
    pub(crate) fn from_report(report: types::SendReport) -> Self {
        Receipt { report }
    }

    /// True when the server accepted every recipient.
    pub fn all_accepted(&self) -> bool {
        self.report.recipients.iter().all(|r| r.accepted)
    }

    /// The Message-ID, without angle brackets.
    pub fn message_id(&self) -> Option<&str> {
        self.report.message_id.as_deref()
    }

    /// How many recipients the server accepted, and how many there were.
    pub fn accepted_count(&self) -> (usize, usize) {
        let accepted = self.report.recipients.iter().filter(|r| r.accepted).count();
        (accepted, self.report.recipients.len())
    }

    /// The receipt as JSON, in the shape of the CLI's `--output json`:
    /// `status` (`sent`, or `partial` when a recipient was refused),
    /// `message_id`, `recipients` (address, accepted, reply) and
    /// `final_reply`.
    pub fn to_json(&self) -> Value {
        json!({
            "status": if self.all_accepted() { "sent" } else { "partial" },
            "message_id": self.report.message_id,
            "recipients": self.report.recipients.iter().map(recipient_json).collect::<Vec<_>>(),
            "final_reply": reply_json(&self.report.final_reply),
        })
    }
}
