//! Nodemailer-style JSON messages (parsed by `smtp-mailer-json`), made into
//! the host's [`Message`]: the CLI's `--json`, and the payload of queued
//! messages. Attachments given by path are streamed from disk.

use std::path::Path;

use smtp_mailer_host::{Attachment, Content, Header, Mailbox, Message};
use smtp_mailer_json::{AttachmentSource, JsonMessage};

/// Parses a JSON message; `base_dir` resolves relative attachment paths.
pub fn parse_message(json: &str, base_dir: &Path) -> Result<Message, String> {
    let m = smtp_mailer_json::parse_message(json).map_err(|e| e.to_string())?;
    from_json(m, base_dir)
}

/// The host's mailbox for a parsed one.
pub fn mailbox(m: smtp_mailer_json::Mailbox) -> Mailbox {
    Mailbox {
        name: m.name,
        address: m.address,
    }
}

fn mailboxes(list: Vec<smtp_mailer_json::Mailbox>) -> Vec<Mailbox> {
    list.into_iter().map(mailbox).collect()
}

/// An attachment file, checked to be a regular file that can be opened; it
/// is streamed at each send.
pub fn streamed_file(path: &Path) -> Result<Content, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    Ok(Content::File(path.to_path_buf()))
}

fn from_json(m: JsonMessage, base_dir: &Path) -> Result<Message, String> {
    let mut attachments = Vec::with_capacity(m.attachments.len());
    for (i, a) in m.attachments.into_iter().enumerate() {
        let content = match a.source {
            AttachmentSource::Bytes(bytes) => Content::Bytes(bytes),
            AttachmentSource::Path(path) => {
                let full = base_dir.join(&path);
                streamed_file(&full)
                    .map_err(|e| format!("attachments[{i}].path {}: {e}", full.display()))?
            }
        };
        attachments.push(Attachment {
            filename: a.filename,
            content_type: a.content_type,
            content,
            content_id: a.content_id,
        });
    }
    Ok(Message {
        from: mailbox(m.from),
        to: mailboxes(m.to),
        cc: mailboxes(m.cc),
        bcc: mailboxes(m.bcc),
        reply_to: mailboxes(m.reply_to),
        subject: m.subject,
        text: m.text,
        html: m.html,
        attachments,
        headers: m
            .headers
            .into_iter()
            .map(|h| Header {
                name: h.name,
                value: h.value,
            })
            .collect(),
        message_id: m.message_id,
        date: m.date,
        dkim: None,
        envelope: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_resolved_and_streamed() {
        let dir = std::env::temp_dir().join(format!("smtp-mailer-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "hello").unwrap();
        let m = parse_message(
            r#"{"from":"a@x.org","attachments":[{"path":"a.txt"},{"filename":"b","content":"aGk="}]}"#,
            &dir,
        )
        .unwrap();
        assert_eq!(m.attachments[0].content, Content::File(dir.join("a.txt")));
        assert_eq!(m.attachments[0].filename, "a.txt");
        assert_eq!(m.attachments[1].content, Content::Bytes(b"hi".to_vec()));
        let e = parse_message(
            r#"{"from":"a@x.org","attachments":[{"path":"nope.txt"}]}"#,
            &dir,
        )
        .unwrap_err();
        assert!(e.contains("attachments[0].path"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_json_names_the_problem() {
        let e = parse_message(r#"{"from":"a@x.org","bogus":1}"#, Path::new(".")).unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }
}
