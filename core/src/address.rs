//! Mailbox addresses as SMTP and RFC 5322 headers carry them.
//!
//! An address is accepted only when the envelope and the header can name
//! it identically: a dot-atom or quoted-string local part, `@`, and a domain
//! or address literal. Comments, angle brackets, and control characters are
//! refused, so that no input can make the header and the envelope disagree
//! or inject a command.

use std::fmt;

/// The longest local part (RFC 5321 4.5.3.1.1).
pub const MAX_LOCAL_PART: usize = 64;
/// The longest domain (RFC 5321 4.5.3.1.2).
pub const MAX_DOMAIN: usize = 255;
/// The longest path, angle brackets excluded (RFC 5321 4.5.3.1.3).
pub const MAX_ADDRESS: usize = 254;

/// A checked address, `local-part@domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address(String);

impl Address {
    /// Parses and checks an address; `field` names it in the error.
    pub fn parse(address: &str) -> Result<Address, String> {
        check_address(address)?;
        Ok(Address(address.to_string()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain part, after the last `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// True when the address holds non-ASCII characters, which only a server
    /// offering SMTPUTF8 accepts.
    pub fn needs_smtputf8(&self) -> bool {
        !self.0.is_ascii()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_address(address: &str) -> Result<(), String> {
    if address.is_empty() {
        return Err("the address is empty".into());
    }
    if let Some(c) = address.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the address holds a control character ({})",
            c.escape_default()
        ));
    }
    if address.len() > MAX_ADDRESS {
        return Err(format!("the address is longer than {MAX_ADDRESS} octets"));
    }
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| format!("{address:?} has no @"))?;
    check_local_part(local)?;
    check_domain(domain)
}

/// RFC 5322 atext, extended with every non-ASCII character (RFC 6532).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn check_local_part(local: &str) -> Result<(), String> {
    if local.is_empty() {
        return Err("the local part (before @) is empty".into());
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(format!(
            "the local part is longer than {MAX_LOCAL_PART} octets"
        ));
    }
    if let Some(inner) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(q) if q == ' ' || q.is_ascii_graphic() => {}
                    _ => return Err("a backslash in the quoted local part escapes nothing".into()),
                },
                '"' => return Err("a quote inside the quoted local part is not escaped".into()),
                // Legal in a quoted string, but mail readers misparse them
                // in headers, so the header would name another mailbox.
                '<' | '>' | '(' | ')' => {
                    return Err(format!(
                        "the quoted local part holds {c:?}, which mail readers misread in headers"
                    ))
                }
                c if c == ' ' || c.is_ascii_graphic() || !c.is_ascii() => {}
                c => return Err(format!("the local part holds {:?}", c)),
            }
        }
        return Ok(());
    }
    for atom in local.split('.') {
        if atom.is_empty() {
            return Err("the local part has an empty dot-separated part; quote it".into());
        }
        if let Some(c) = atom.chars().find(|&c| !is_atext(c)) {
            return Err(format!(
                "the local part holds {c:?}, which needs the local part to be quoted"
            ));
        }
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("the domain (after @) is empty".into());
    }
    if domain.len() > MAX_DOMAIN {
        return Err(format!("the domain is longer than {MAX_DOMAIN} octets"));
    }
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ok = literal.parse::<std::net::Ipv4Addr>().is_ok()
            || literal
                .strip_prefix("IPv6:")
                .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok());
        return if ok {
            Ok(())
        } else {
            Err(format!("{domain} is not an IPv4 or IPv6 address literal"))
        };
    }
    for label in domain.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{domain:?} is not a valid domain"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "a label of {domain:?} starts or ends with a hyphen"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii()))
        {
            return Err(format!("the domain holds {c:?}"));
        }
    }
    Ok(())
}

/// Checks a host name or address literal given as the client's EHLO name.
pub fn check_client_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the client name is empty".into());
    }
    if !name.is_ascii() {
        return Err("the client name must be ASCII (use the A-label of a Unicode name)".into());
    }
    check_domain(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_and_unusual_valid_addresses() {
        for ok in [
            "user@example.org",
            "first.last+tag@sub.example.co.uk",
            "\"john doe\"@example.org",
            "\"a@b\"@example.org",
            "\"quote\\\"inside\"@example.org",
            "user@[127.0.0.1]",
            "user@[IPv6:::1]",
            "josé@exämple.org",
            "o'brien@example.org",
        ] {
            assert!(Address::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_what_could_confuse_header_or_envelope() {
        for bad in [
            "",
            "plain",
            "@example.org",
            "user@",
            "a b@example.org",
            "user@example.org>",
            "<user@example.org>",
            "user(comment)@example.org",
            "user@example.org\r\nRCPT TO:<x@y>",
            "user\0@example.org",
            "user\x7f@example.org",
            "a..b@example.org",
            ".a@example.org",
            "user@-bad.org",
            "user@exa mple.org",
            "user@[999.1.1.1]",
            "\"unterminated@example.org",
            "\"a\"b\"@example.org",
            "\"a>b\"@example.org",
            "\"<evil@attacker.example>\"@example.org",
            "\"(x)\"@example.org",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?}");
        }
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert!(Address::parse(&long_local).is_err());
    }

    #[test]
    fn knows_when_smtputf8_is_needed() {
        assert!(Address::parse("josé@example.org").unwrap().needs_smtputf8());
        assert!(!Address::parse("jose@example.org").unwrap().needs_smtputf8());
        assert_eq!(Address::parse("a@b.example").unwrap().domain(), "b.example");
        assert_eq!(
            Address::parse("\"x@y\"@z.example").unwrap().domain(),
            "z.example"
        );
    }

    #[test]
    fn client_names() {
        assert!(check_client_name("mail.example.org").is_ok());
        assert!(check_client_name("[127.0.0.1]").is_ok());
        assert!(check_client_name("bad name").is_err());
        assert!(check_client_name("x\r\nMAIL").is_err());
    }
}
