//! One-click unsubscribe (RFC 8058) and a consistent From, in a message as
//! it will be sent: `List-Unsubscribe` with an https URI,
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, both covered by the
//! DKIM signature, and a From in the domain the other checks were run for.

use mail_auth::AuthenticatedMessage;

use crate::finding::{Check, Finding, Status};

/// The advice for a message without one-click unsubscribe.
const ADD_HEADERS: &str = "add both headers to the message (in the JSON's \"headers\"): \
    `List-Unsubscribe: <https://YOUR-SITE/unsubscribe?id=RECIPIENT-TOKEN>` and \
    `List-Unsubscribe-Post: List-Unsubscribe=One-Click`; the URL must unsubscribe on a POST \
    without asking anything more";

/// Checks `built`, the message as the component built (and signed) it.
/// `from_domain` is the From domain of the other checks.
pub fn check(built: Option<&[u8]>, from_domain: &str, signed: bool) -> Finding {
    let Some(built) = built else {
        return Finding::new(
            Check::Unsubscribe,
            "the message",
            Status::Warn,
            "not checked: give --message FILE (a message as you will send it, in the JSON of \
             send --json)",
        );
    };
    let subject = "the message (--message)";
    let Some(message) = AuthenticatedMessage::parse(built) else {
        return Finding::new(
            Check::Unsubscribe,
            subject,
            Status::Fail,
            "the message built from --message does not parse",
        );
    };
    let header = |name: &str| {
        message
            .headers
            .iter()
            .find(|(n, _)| {
                std::str::from_utf8(n).is_ok_and(|n| n.trim().eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_string())
    };
    let mut finding = Finding::new(Check::Unsubscribe, subject, Status::Ok, "");
    let author = message.from.first().cloned().unwrap_or_default();
    let author_domain = author
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    if author_domain != from_domain.to_ascii_lowercase() {
        finding.status = Status::Fail;
        finding.reason = format!(
            "the message is From {author}, not from {from_domain}, the domain checked: its SPF, \
             DKIM and DMARC results do not apply to this message"
        );
        return finding.fix(
            format!(
                "send From an address at {from_domain}, or run the doctor with --from {author}"
            ),
            Vec::new(),
        );
    }
    let Some(list_unsubscribe) = header("List-Unsubscribe") else {
        finding.status = Status::Fail;
        finding.reason = "the message has no List-Unsubscribe header: bulk senders must offer \
                          one-click unsubscribe (RFC 8058)"
            .into();
        return finding.fix(ADD_HEADERS, Vec::new());
    };
    finding = finding.detail(format!("List-Unsubscribe: {list_unsubscribe}"));
    let https = list_unsubscribe
        .split(',')
        .map(|u| u.trim().trim_start_matches('<').trim_end_matches('>'))
        .find(|u| u.to_ascii_lowercase().starts_with("https://"));
    if https.is_none() {
        finding.status = Status::Fail;
        finding.reason = "List-Unsubscribe holds no https URI: one-click unsubscribe posts to an \
                          https URI (RFC 8058 section 3.1)"
            .into();
        return finding.fix(ADD_HEADERS, Vec::new());
    }
    let post = header("List-Unsubscribe-Post");
    if post.as_deref().map(str::to_ascii_lowercase).as_deref() != Some("list-unsubscribe=one-click")
    {
        finding.status = Status::Fail;
        finding.reason = match post {
            Some(p) => {
                format!("List-Unsubscribe-Post is {p:?}, not \"List-Unsubscribe=One-Click\"")
            }
            None => "the message has List-Unsubscribe but no List-Unsubscribe-Post: without it \
                     the link is not one-click (RFC 8058)"
                .into(),
        };
        return finding.fix(ADD_HEADERS, Vec::new());
    }
    if !signed {
        finding.status = Status::Warn;
        finding.reason = "one-click unsubscribe is configured, but the message is not \
                          DKIM-signed, and RFC 8058 counts it only under a valid DKIM signature: \
                          give --dkim-selector and --dkim-key"
            .into();
        return finding;
    }
    let covered = message.dkim_headers.iter().any(|h| {
        let signed: Vec<String> = h.header.h.iter().map(|n| n.to_ascii_lowercase()).collect();
        signed.iter().any(|n| n == "list-unsubscribe")
            && signed.iter().any(|n| n == "list-unsubscribe-post")
    });
    if !covered {
        finding.status = Status::Fail;
        finding.reason = "the DKIM signature does not cover List-Unsubscribe and \
                          List-Unsubscribe-Post, as RFC 8058 section 4 requires"
            .into();
        return finding.fix("sign both headers (h=)", Vec::new());
    }
    finding.reason = format!(
        "one-click unsubscribe to {} (List-Unsubscribe-Post), both headers DKIM-signed; From \
         {author}",
        https.unwrap_or_default()
    );
    finding
}
