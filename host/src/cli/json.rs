//! Messages in JSON with the field names of nodemailer's message object:
//! from, to, cc, bcc, replyTo, subject, text, html, headers, attachments
//! (filename, content in base64 or path, contentType, cid), messageId.

use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use smtp_mailer_host::{Attachment, Content, Dkim, Header, Mailbox, Message};

use super::mailbox::{parse_list, parse_mailbox};

/// A nodemailer-style message as it arrives in JSON.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsonMessage {
    from: Option<Value>,
    to: Option<Value>,
    cc: Option<Value>,
    bcc: Option<Value>,
    reply_to: Option<Value>,
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
    headers: Option<Value>,
    #[serde(default)]
    attachments: Vec<JsonAttachment>,
    message_id: Option<String>,
    dkim: Option<JsonDkim>,
}

/// nodemailer's `dkim` option. `Debug` shows no key.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsonDkim {
    domain_name: String,
    key_selector: String,
    private_key: String,
}

impl std::fmt::Debug for JsonDkim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonDkim")
            .field("domain_name", &self.domain_name)
            .field("key_selector", &self.key_selector)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsonAttachment {
    filename: Option<String>,
    content: Option<String>,
    encoding: Option<String>,
    path: Option<String>,
    content_type: Option<String>,
    cid: Option<String>,
}

/// Parses a JSON message; `base_dir` resolves relative attachment paths.
pub fn parse_message(json: &str, base_dir: &Path) -> Result<Message, String> {
    let m: JsonMessage =
        serde_json::from_str(json).map_err(|e| format!("invalid JSON message: {e}"))?;
    let from = match m.from {
        Some(v) => one_mailbox("from", &v)?,
        None => return Err("the JSON message has no \"from\"".into()),
    };
    let mut attachments = Vec::with_capacity(m.attachments.len());
    for (i, a) in m.attachments.into_iter().enumerate() {
        attachments.push(attachment(i, a, base_dir)?);
    }
    Ok(Message {
        from,
        to: mailboxes("to", m.to.as_ref())?,
        cc: mailboxes("cc", m.cc.as_ref())?,
        bcc: mailboxes("bcc", m.bcc.as_ref())?,
        reply_to: mailboxes("replyTo", m.reply_to.as_ref())?,
        subject: m.subject.unwrap_or_default(),
        text: m.text,
        html: m.html,
        attachments,
        headers: headers(m.headers.as_ref())?,
        message_id: m
            .message_id
            .map(|id| id.trim_start_matches('<').trim_end_matches('>').to_string()),
        date: None,
        dkim: m.dkim.map(|d| Dkim {
            domain: d.domain_name,
            selector: d.key_selector,
            private_key_pem: d.private_key,
            identity: None,
            simple_canonicalization: false,
        }),
    })
}

fn one_mailbox(field: &str, v: &Value) -> Result<Mailbox, String> {
    match v {
        Value::String(s) => parse_mailbox(s).map_err(|e| format!("{field}: {e}")),
        Value::Object(o) => {
            let address = o
                .get("address")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{field}: an address object needs \"address\""))?;
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty());
            Ok(Mailbox {
                name: name.map(str::to_string),
                address: address.to_string(),
            })
        }
        _ => Err(format!(
            "{field}: expected \"Name <address>\" or {{name, address}}"
        )),
    }
}

fn mailboxes(field: &str, v: Option<&Value>) -> Result<Vec<Mailbox>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => parse_list(s).map_err(|e| format!("{field}: {e}")),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => {
                        out.extend(parse_list(s).map_err(|e| format!("{field}[{i}]: {e}"))?)
                    }
                    other => out.push(one_mailbox(&format!("{field}[{i}]"), other)?),
                }
            }
            Ok(out)
        }
        Some(other) => Ok(vec![one_mailbox(field, other)?]),
    }
}

fn headers(v: Option<&Value>) -> Result<Vec<Header>, String> {
    let text = |v: &Value, field: &str| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(format!("{field}: a header value must be a string")),
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => {
            let mut out = Vec::new();
            for (name, value) in map {
                let values = match value {
                    Value::Array(list) => list
                        .iter()
                        .map(|v| text(v, name))
                        .collect::<Result<Vec<_>, _>>()?,
                    v => vec![text(v, name)?],
                };
                out.extend(values.into_iter().map(|value| Header {
                    name: name.clone(),
                    value,
                }));
            }
            Ok(out)
        }
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let key = item.get("key").and_then(Value::as_str);
                let value = item.get("value");
                match (key, value) {
                    (Some(k), Some(v)) => Ok(Header {
                        name: k.to_string(),
                        value: text(v, k)?,
                    }),
                    _ => Err(format!("headers[{i}]: expected {{key, value}}")),
                }
            })
            .collect(),
        Some(_) => Err("headers: expected an object or a list of {key, value}".into()),
    }
}

fn attachment(i: usize, a: JsonAttachment, base_dir: &Path) -> Result<Attachment, String> {
    let field = format!("attachments[{i}]");
    let (content, default_name) = match (a.content, a.path) {
        (Some(_), Some(_)) => return Err(format!("{field}: give content or path, not both")),
        (None, None) => return Err(format!("{field}: needs content (base64) or path")),
        (Some(content), None) => {
            let bytes = match a.encoding.as_deref().unwrap_or("base64") {
                "base64" => base64::engine::general_purpose::STANDARD
                    .decode(content.trim())
                    .map_err(|e| format!("{field}.content is not valid base64: {e}"))?,
                "utf8" | "utf-8" | "text" => content.into_bytes(),
                other => {
                    return Err(format!(
                        "{field}.encoding {other:?} is unknown (base64 or utf8)"
                    ))
                }
            };
            (Content::Bytes(bytes), None)
        }
        (None, Some(path)) => {
            let full = base_dir.join(&path);
            let content = super::message::streamed_file(&full)
                .map_err(|e| format!("{field}.path {}: {e}", full.display()))?;
            let name = Path::new(&path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            (content, name)
        }
    };
    let filename = a
        .filename
        .or(default_name)
        .ok_or_else(|| format!("{field}: needs a filename"))?;
    let content_type = a
        .content_type
        .unwrap_or_else(|| guess_content_type(&filename).to_string());
    Ok(Attachment {
        filename,
        content_type,
        content,
        content_id: a.cid,
    })
}

/// The MIME type for a file name's extension; `application/octet-stream`
/// when unknown.
pub fn guess_content_type(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "ics" => "text/calendar",
        "xml" => "application/xml",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodemailer_shapes() {
        let json = r#"{
            "from": "\"App\" <app@x.org>",
            "to": ["a@x.org", {"name": "B", "address": "b@x.org"}],
            "cc": "c@x.org, D <d@x.org>",
            "bcc": {"address": "e@x.org"},
            "replyTo": "r@x.org",
            "subject": "S",
            "text": "T",
            "html": "<b>H</b>",
            "headers": {"X-One": "1", "X-Many": ["a", "b"]},
            "attachments": [
                {"filename": "a.txt", "content": "aGVsbG8="},
                {"filename": "b.txt", "content": "plain", "encoding": "utf8", "cid": "b@x"}
            ],
            "messageId": "<id@x.org>"
        }"#;
        let m = parse_message(json, Path::new(".")).unwrap();
        assert_eq!(m.from, Mailbox::named("App", "app@x.org"));
        assert_eq!(m.to.len(), 2);
        assert_eq!(m.cc[1], Mailbox::named("D", "d@x.org"));
        assert_eq!(m.bcc[0].address, "e@x.org");
        assert_eq!(m.headers.len(), 3);
        assert_eq!(m.attachments[0].content, Content::Bytes(b"hello".to_vec()));
        assert_eq!(m.attachments[0].content_type, "text/plain");
        assert_eq!(m.attachments[1].content_id.as_deref(), Some("b@x"));
        assert_eq!(m.message_id.as_deref(), Some("id@x.org"));
    }

    #[test]
    fn bad_json_names_the_problem() {
        assert!(parse_message("{", Path::new("."))
            .unwrap_err()
            .contains("invalid JSON"));
        assert!(parse_message(r#"{"to":"a@x.org"}"#, Path::new("."))
            .unwrap_err()
            .contains("from"));
        let e = parse_message(
            r#"{"from":"a@x.org","attachments":[{"filename":"a","content":"!!"}]}"#,
            Path::new("."),
        )
        .unwrap_err();
        assert!(e.contains("attachments[0].content"), "{e}");
        assert!(
            parse_message(r#"{"from":"a@x.org","bogus":1}"#, Path::new("."))
                .unwrap_err()
                .contains("bogus")
        );
    }
}
