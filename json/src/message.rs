//! The message object: its fields, read one by one so that every error
//! names the field at fault.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::date::parse_date;
use crate::mailbox::{parse_list, parse_mailbox, Mailbox};
use crate::{guess_content_type, JsonError};

/// A message as the JSON describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonMessage {
    /// The author (`from`).
    pub from: Mailbox,
    /// `to`.
    pub to: Vec<Mailbox>,
    /// `cc`.
    pub cc: Vec<Mailbox>,
    /// `bcc`.
    pub bcc: Vec<Mailbox>,
    /// `replyTo`.
    pub reply_to: Vec<Mailbox>,
    /// `subject`; empty when absent.
    pub subject: String,
    /// `text`.
    pub text: Option<String>,
    /// `html`.
    pub html: Option<String>,
    /// `headers`, in order.
    pub headers: Vec<Header>,
    /// `attachments`.
    pub attachments: Vec<Attachment>,
    /// `messageId`, without angle brackets.
    pub message_id: Option<String>,
    /// `date`: seconds since the Unix epoch (given as a number or an RFC
    /// 3339 string); the send time when absent.
    pub date: Option<i64>,
}

/// An extra header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// An attachment: its bytes, or the path of a file to read them from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// `filename`, or the last part of `path`.
    pub filename: String,
    /// `contentType`, or a guess from the file name.
    pub content_type: String,
    /// Where the bytes come from.
    pub source: AttachmentSource,
    /// `cid`: the Content-ID of an inline part.
    pub content_id: Option<String>,
}

/// Where an attachment's bytes come from.
#[derive(Clone, PartialEq, Eq)]
pub enum AttachmentSource {
    /// `content`, decoded (base64 unless `encoding` says `utf8`).
    Bytes(Vec<u8>),
    /// `path`, as written: relative paths are the caller's to resolve.
    Path(String),
}

impl std::fmt::Debug for AttachmentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttachmentSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            AttachmentSource::Path(p) => f.debug_tuple("Path").field(p).finish(),
        }
    }
}

const FIELDS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "replyTo",
    "subject",
    "text",
    "html",
    "headers",
    "attachments",
    "messageId",
    "date",
];
const ATTACHMENT_FIELDS: &[&str] = &[
    "filename",
    "content",
    "encoding",
    "path",
    "contentType",
    "cid",
];

/// Parses a JSON message. Unknown fields are refused, so a typo never
/// silently drops part of a message.
///
/// Errors: [`JsonError`] naming the field (`from`, `to[1]`,
/// `attachments[0].content`, ...), or without a field when the text is not a
/// JSON object.
pub fn parse_message(json: &str) -> Result<JsonMessage, JsonError> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| JsonError::whole(format!("invalid JSON message: {e}")))?;
    let Value::Object(object) = value else {
        return Err(JsonError::whole("invalid JSON message: expected an object"));
    };
    refuse_unknown(&object, FIELDS, "")?;
    let from = match object.get("from") {
        Some(v) if !v.is_null() => one_mailbox(v).map_err(|e| e.within("from"))?,
        _ => return Err(JsonError::field("from", "the message has no sender")),
    };
    let attachments = match object.get("attachments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, a)| attachment(a).map_err(|e| e.within(&format!("attachments[{i}]"))))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(JsonError::field("attachments", "expected a list")),
    };
    Ok(JsonMessage {
        from,
        to: mailboxes(&object, "to")?,
        cc: mailboxes(&object, "cc")?,
        bcc: mailboxes(&object, "bcc")?,
        reply_to: mailboxes(&object, "replyTo")?,
        subject: string(&object, "subject")?.unwrap_or_default(),
        text: string(&object, "text")?,
        html: string(&object, "html")?,
        headers: headers(object.get("headers"))?,
        attachments,
        message_id: string(&object, "messageId")?
            .map(|id| id.trim_start_matches('<').trim_end_matches('>').to_string()),
        date: match object.get("date") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_date(v)?),
        },
    })
}

fn refuse_unknown(
    object: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
) -> Result<(), JsonError> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(JsonError::field(
            format!("{prefix}{unknown}"),
            format!("unknown field (expected one of {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn string(object: &Map<String, Value>, field: &str) -> Result<Option<String>, JsonError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JsonError::field(field, "expected a string")),
    }
}

fn one_mailbox(v: &Value) -> Result<Mailbox, JsonError> {
    match v {
        Value::String(s) => parse_mailbox(s),
        Value::Object(o) => {
            let address = o
                .get("address")
                .and_then(Value::as_str)
                .ok_or_else(|| JsonError::whole("an address object needs \"address\""))?;
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty());
            Ok(Mailbox {
                name: name.map(str::to_string),
                address: address.to_string(),
            })
        }
        _ => Err(JsonError::whole(
            "expected \"Name <address>\" or {name, address}",
        )),
    }
}

fn mailboxes(object: &Map<String, Value>, field: &str) -> Result<Vec<Mailbox>, JsonError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => parse_list(s).map_err(|e| e.within(field)),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let at = || format!("{field}[{i}]");
                match item {
                    Value::String(s) => out.extend(parse_list(s).map_err(|e| e.within(&at()))?),
                    other => out.push(one_mailbox(other).map_err(|e| e.within(&at()))?),
                }
            }
            Ok(out)
        }
        Some(other) => Ok(vec![one_mailbox(other).map_err(|e| e.within(field))?]),
    }
}

fn headers(v: Option<&Value>) -> Result<Vec<Header>, JsonError> {
    let text = |v: &Value, field: &str| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(JsonError::field(field, "a header value must be a string")),
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => {
            let mut out = Vec::new();
            for (name, value) in map {
                let field = format!("headers.{name}");
                let values = match value {
                    Value::Array(list) => list
                        .iter()
                        .map(|v| text(v, &field))
                        .collect::<Result<Vec<_>, _>>()?,
                    v => vec![text(v, &field)?],
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
                match (key, item.get("value")) {
                    (Some(k), Some(v)) => Ok(Header {
                        name: k.to_string(),
                        value: text(v, &format!("headers[{i}].value"))?,
                    }),
                    _ => Err(JsonError::field(
                        format!("headers[{i}]"),
                        "expected {key, value}",
                    )),
                }
            })
            .collect(),
        Some(_) => Err(JsonError::field(
            "headers",
            "expected an object or a list of {key, value}",
        )),
    }
}

fn attachment(v: &Value) -> Result<Attachment, JsonError> {
    let Value::Object(a) = v else {
        return Err(JsonError::whole("expected an object"));
    };
    refuse_unknown(a, ATTACHMENT_FIELDS, ".")?;
    let (content, path) = (
        string(a, "content").map_err(|e| e.within("."))?,
        string(a, "path").map_err(|e| e.within("."))?,
    );
    let (source, default_name) = match (content, path) {
        (Some(_), Some(_)) => return Err(JsonError::whole("give content or path, not both")),
        (None, None) => return Err(JsonError::whole("needs content (base64) or path")),
        (Some(content), None) => {
            let encoding = string(a, "encoding").map_err(|e| e.within("."))?;
            let bytes = match encoding.as_deref().unwrap_or("base64") {
                "base64" => base64::engine::general_purpose::STANDARD
                    .decode(content.trim())
                    .map_err(|e| JsonError::field(".content", format!("not valid base64: {e}")))?,
                "utf8" | "utf-8" | "text" => content.into_bytes(),
                other => {
                    return Err(JsonError::field(
                        ".encoding",
                        format!("{other:?} is unknown (base64 or utf8)"),
                    ))
                }
            };
            (AttachmentSource::Bytes(bytes), None)
        }
        (None, Some(path)) => {
            let name = path
                .rsplit(['/', '\\'])
                .next()
                .filter(|n| !n.is_empty())
                .map(str::to_string);
            (AttachmentSource::Path(path), name)
        }
    };
    let filename = string(a, "filename")
        .map_err(|e| e.within("."))?
        .or(default_name)
        .ok_or_else(|| JsonError::whole("needs a filename"))?;
    let content_type = string(a, "contentType")
        .map_err(|e| e.within("."))?
        .unwrap_or_else(|| guess_content_type(&filename).to_string());
    Ok(Attachment {
        filename,
        content_type,
        source,
        content_id: string(a, "cid").map_err(|e| e.within("."))?,
    })
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
                {"filename": "b.txt", "content": "plain", "encoding": "utf8", "cid": "b@x"},
                {"path": "dir/c.pdf"}
            ],
            "messageId": "<id@x.org>"
        }"#;
        let m = parse_message(json).unwrap();
        assert_eq!(m.from, Mailbox::named("App", "app@x.org"));
        assert_eq!(m.to.len(), 2);
        assert_eq!(m.cc[1], Mailbox::named("D", "d@x.org"));
        assert_eq!(m.bcc[0].address, "e@x.org");
        assert_eq!(m.headers.len(), 3);
        assert_eq!(
            m.attachments[0].source,
            AttachmentSource::Bytes(b"hello".to_vec())
        );
        assert_eq!(m.attachments[0].content_type, "text/plain");
        assert_eq!(m.attachments[1].content_id.as_deref(), Some("b@x"));
        assert_eq!(m.attachments[2].filename, "c.pdf");
        assert_eq!(m.attachments[2].content_type, "application/pdf");
        assert_eq!(
            m.attachments[2].source,
            AttachmentSource::Path("dir/c.pdf".into())
        );
        assert_eq!(m.message_id.as_deref(), Some("id@x.org"));
    }

    fn field_of(json: &str) -> Option<String> {
        parse_message(json).unwrap_err().field
    }

    #[test]
    fn every_error_names_its_field() {
        assert_eq!(field_of("{"), None);
        assert!(parse_message("{")
            .unwrap_err()
            .to_string()
            .contains("invalid JSON"));
        assert_eq!(field_of("[]"), None);
        assert_eq!(field_of(r#"{"to":"a@x.org"}"#).as_deref(), Some("from"));
        assert_eq!(
            field_of(r#"{"from":"a@x.org","attachments":[{"filename":"a","content":"!!"}]}"#)
                .as_deref(),
            Some("attachments[0].content")
        );
        assert_eq!(
            field_of(r#"{"from":"a@x.org","bogus":1}"#).as_deref(),
            Some("bogus")
        );
        assert_eq!(
            field_of(r#"{"from":"a@x.org","subject":5}"#).as_deref(),
            Some("subject")
        );
        assert_eq!(
            field_of(r#"{"from":"a@x.org","to":["b@x.org","C <c@x.org"]}"#).as_deref(),
            Some("to[1]")
        );
        assert_eq!(
            field_of(r#"{"from":"a@x.org","attachments":[{"content":"aGk="}]}"#).as_deref(),
            Some("attachments[0]")
        );
        assert_eq!(
            field_of(
                r#"{"from":"a@x.org","attachments":[{"filename":"a","content":"aGk=","x":1}]}"#
            )
            .as_deref(),
            Some("attachments[0].x")
        );
        assert_eq!(
            field_of(r#"{"from":"a@x.org","headers":{"X-A":{}}}"#).as_deref(),
            Some("headers.X-A")
        );
    }
}
