//! Address lists as people type them: `Ada <ada@example.org>, bob@example.org`.

use crate::JsonError;

/// An email address with an optional display name, as written: nothing
/// checks the address here (the mailer does, before anything is sent).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    /// The display name, or none.
    pub name: Option<String>,
    /// The address, `local-part@domain`, without angle brackets.
    pub address: String,
}

impl Mailbox {
    /// A mailbox without a display name.
    pub fn new(address: impl Into<String>) -> Self {
        Mailbox {
            name: None,
            address: address.into(),
        }
    }

    /// A mailbox with a display name.
    pub fn named(name: impl Into<String>, address: impl Into<String>) -> Self {
        Mailbox {
            name: Some(name.into()),
            address: address.into(),
        }
    }
}

/// Parses one mailbox: `addr`, `<addr>`, `Name <addr>` or `"Name" <addr>`.
pub fn parse_mailbox(input: &str) -> Result<Mailbox, JsonError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(JsonError::whole("an address is empty"));
    }
    let Some(open) = find_unquoted(input, '<') else {
        return Ok(Mailbox::new(input));
    };
    let rest = &input[open + 1..];
    let close = rest
        .rfind('>')
        .ok_or_else(|| JsonError::whole(format!("{input:?} has '<' without '>'")))?;
    if !rest[close + 1..].trim().is_empty() {
        return Err(JsonError::whole(format!("{input:?} has text after '>'")));
    }
    let address = rest[..close].trim().to_string();
    let name = input[..open].trim();
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .map(|n| n.replace("\\\"", "\"").replace("\\\\", "\\"))
        .unwrap_or_else(|| name.to_string());
    Ok(Mailbox {
        name: (!name.is_empty()).then_some(name),
        address,
    })
}

/// Parses a comma-separated list; commas inside quotes or angle brackets
/// do not separate.
pub fn parse_list(input: &str) -> Result<Vec<Mailbox>, JsonError> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut angle = false;
    let mut escaped = false;
    for (i, c) in input.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                items.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&input[start..]);
    items
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .map(parse_mailbox)
        .collect()
}

fn find_unquoted(s: &str, target: char) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == target && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_mailbox("a@x.org").unwrap(), Mailbox::new("a@x.org"));
        assert_eq!(
            parse_mailbox(" <a@x.org> ").unwrap(),
            Mailbox::new("a@x.org")
        );
        assert_eq!(
            parse_mailbox("Ada L <a@x.org>").unwrap(),
            Mailbox::named("Ada L", "a@x.org")
        );
        assert_eq!(
            parse_mailbox("\"Lovelace, Ada\" <a@x.org>").unwrap(),
            Mailbox::named("Lovelace, Ada", "a@x.org")
        );
        let list = parse_list("\"B, C\" <b@x.org>, d@x.org,, Zoë <z@x.org>").unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].name.as_deref(), Some("B, C"));
        assert_eq!(list[2].name.as_deref(), Some("Zoë"));
        assert!(parse_mailbox("Ada <a@x.org").is_err());
        assert!(parse_mailbox("Ada <a@x.org> junk").is_err());
    }
}
