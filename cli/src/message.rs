//! The message of `send` and `build`, from JSON and flags.

use std::io::Read;
use std::path::Path;

use smtp_mailer_host::{Attachment, Dkim, Header, Message};

use crate::args::{DkimArgs, MessageArgs};
use smtp_mailer_json::{guess_content_type, parse_list, parse_mailbox};

use smtp_mailer_delivery::json::{mailbox, parse_message, streamed_file};

/// The message the options describe. Flags add to (or, for single
/// fields, replace) what the JSON gives.
pub fn message_from_args(args: &MessageArgs) -> Result<Message, String> {
    let mut message = match &args.json {
        Some(source) => {
            let (json, base) = read_source(source)?;
            parse_message(&json, &base)?
        }
        None => Message::default(),
    };
    if let Some(from) = &args.from {
        message.from = mailbox(parse_mailbox(from).map_err(|e| format!("--from: {e}"))?);
    }
    for (flag, values, list) in [
        ("--to", &args.to, &mut message.to),
        ("--cc", &args.cc, &mut message.cc),
        ("--bcc", &args.bcc, &mut message.bcc),
        ("--reply-to", &args.reply_to, &mut message.reply_to),
    ] {
        for value in values {
            let parsed = parse_list(value).map_err(|e| format!("{flag}: {e}"))?;
            list.extend(parsed.into_iter().map(mailbox));
        }
    }
    if let Some(subject) = &args.subject {
        message.subject = subject.clone();
    }
    if let Some(text) = &args.text {
        message.text = Some(text.clone());
    }
    if let Some(path) = &args.text_file {
        message.text = Some(read_text(path, "--text-file")?);
    }
    if let Some(html) = &args.html {
        message.html = Some(html.clone());
    }
    if let Some(path) = &args.html_file {
        message.html = Some(read_text(path, "--html-file")?);
    }
    for spec in &args.attach {
        message.attachments.push(attachment(spec)?);
    }
    for header in &args.header {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("--header {header:?}: expected 'Name: value'"))?;
        message.headers.push(Header {
            name: name.trim().to_string(),
            value: value.trim().to_string(),
        });
    }
    if let Some(id) = &args.message_id {
        message.message_id = Some(id.clone());
    }
    if let Some(dkim) = dkim_from_args(&args.dkim)? {
        message.dkim = Some(dkim);
    }
    if message.from.address.is_empty() {
        return Err("no sender: give --from (or \"from\" in --json)".into());
    }
    Ok(message)
}

fn read_source(source: &str) -> Result<(String, std::path::PathBuf), String> {
    if source == "-" {
        let mut json = String::new();
        std::io::stdin()
            .read_to_string(&mut json)
            .map_err(|e| format!("--json -: cannot read standard input: {e}"))?;
        return Ok((json, std::env::current_dir().unwrap_or_default()));
    }
    let json = std::fs::read_to_string(source).map_err(|e| format!("--json {source}: {e}"))?;
    let base = Path::new(source)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Ok((json, base))
}

fn read_text(path: &Path, flag: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

fn attachment(spec: &str) -> Result<Attachment, String> {
    let (path, cid) = match spec.rsplit_once('=') {
        Some((p, c)) if !Path::new(spec).exists() => (p, Some(c.to_string())),
        _ => (spec, None),
    };
    let content = streamed_file(Path::new(path)).map_err(|e| format!("--attach {path}: {e}"))?;
    let filename = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("--attach {path}: not a file"))?;
    Ok(Attachment {
        content_type: guess_content_type(&filename).to_string(),
        filename,
        content,
        content_id: cid,
    })
}

/// The DKIM settings the flags give, reading the key file.
pub fn dkim_from_args(args: &DkimArgs) -> Result<Option<Dkim>, String> {
    let Some(path) = &args.dkim_key else {
        return Ok(None);
    };
    let pem =
        std::fs::read_to_string(path).map_err(|e| format!("--dkim-key {}: {e}", path.display()))?;
    Ok(Some(Dkim {
        domain: args.dkim_domain.clone().unwrap_or_default(),
        selector: args.dkim_selector.clone().unwrap_or_default(),
        private_key_pem: pem,
        identity: args.dkim_identity.clone(),
        simple_canonicalization: args.dkim_simple,
    }))
}
