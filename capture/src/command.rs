//! Parsing one SMTP command line (RFC 5321 section 4.1) into a [`Command`].
//!
//! Syntax errors come back as the [`Reply`] the client should get.

use crate::reply::Reply;

/// A parsed command. Paths are without angle brackets and source routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command<'a> {
    /// `EHLO domain`.
    Ehlo(&'a str),
    /// `HELO domain`.
    Helo(&'a str),
    /// `MAIL FROM:<path> [params]`.
    Mail {
        /// The reverse path; empty for `<>`.
        path: &'a str,
        /// The `SIZE=` parameter, if given.
        size: Option<u64>,
        /// Whether `SMTPUTF8` was given.
        smtputf8: bool,
    },
    /// `RCPT TO:<path>`.
    Rcpt(&'a str),
    /// `DATA`.
    Data,
    /// `RSET`.
    Rset,
    /// `NOOP [string]`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy,
    /// A known command this server does not offer (`EXPN`, `STARTTLS`, …).
    NotImplemented,
    /// An HTTP request line sent to the SMTP port: the connection is closed.
    Http,
    /// Anything else.
    Unknown,
}

/// Parses one command line, without its line ending.
pub(crate) fn parse(line: &str) -> Result<Command<'_>, Reply> {
    let line = line.trim_end_matches([' ', '\t']);
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let verb = verb.to_ascii_uppercase();
    match verb.as_str() {
        "EHLO" | "HELO" => {
            let domain = rest.trim();
            if domain.is_empty() || domain.contains(char::is_whitespace) {
                return Err(syntax(&format!("{verb} hostname")));
            }
            Ok(if verb == "EHLO" {
                Command::Ehlo(domain)
            } else {
                Command::Helo(domain)
            })
        }
        "MAIL" => parse_mail(rest),
        "RCPT" => parse_rcpt(rest),
        "DATA" | "RSET" | "QUIT" if !rest.is_empty() => Err(syntax(&verb)),
        "DATA" => Ok(Command::Data),
        "RSET" => Ok(Command::Rset),
        "QUIT" => Ok(Command::Quit),
        "NOOP" => Ok(Command::Noop),
        "VRFY" if rest.trim().is_empty() => Err(syntax("VRFY address")),
        "VRFY" => Ok(Command::Vrfy),
        "EXPN" | "HELP" | "STARTTLS" | "AUTH" | "BDAT" | "ETRN" | "TURN" | "ATRN" => {
            Ok(Command::NotImplemented)
        }
        "GET" | "POST" | "PUT" | "HEAD" | "CONNECT" | "OPTIONS" | "HOST:" => Ok(Command::Http),
        _ => Ok(Command::Unknown),
    }
}

fn parse_mail(rest: &str) -> Result<Command<'_>, Reply> {
    let usage = || syntax("MAIL FROM:<address>");
    let rest = strip_prefix_ignore_case(rest, "FROM:").ok_or_else(usage)?;
    let (path, params) = split_path(rest).ok_or_else(usage)?;
    if !path.is_empty() && !is_mailbox(path) {
        return Err(Reply::new(501, "5.1.7", "Bad sender address syntax"));
    }
    let (mut size, mut smtputf8) = (None, false);
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match param.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (param, None),
        };
        match (key.to_ascii_uppercase().as_str(), value) {
            ("SIZE", Some(n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                // Saturate: a number too large for u64 is over any limit.
                size = Some(n.parse().unwrap_or(u64::MAX));
            }
            ("BODY", Some(body))
                if body.eq_ignore_ascii_case("7BIT") || body.eq_ignore_ascii_case("8BITMIME") => {}
            ("SMTPUTF8", None) => smtputf8 = true,
            ("SIZE" | "BODY" | "SMTPUTF8", _) => {
                return Err(Reply::new(501, "5.5.4", format!("Bad {key} parameter")))
            }
            _ => return Err(unsupported(key)),
        }
    }
    Ok(Command::Mail {
        path,
        size,
        smtputf8,
    })
}

fn parse_rcpt(rest: &str) -> Result<Command<'_>, Reply> {
    let usage = || syntax("RCPT TO:<address>");
    let rest = strip_prefix_ignore_case(rest, "TO:").ok_or_else(usage)?;
    let (path, params) = split_path(rest).ok_or_else(usage)?;
    if let Some(key) = params.split([' ', '=']).find(|p| !p.is_empty()) {
        return Err(unsupported(key));
    }
    if !is_mailbox(path) && !path.eq_ignore_ascii_case("postmaster") {
        return Err(Reply::new(501, "5.1.3", "Bad recipient address syntax"));
    }
    Ok(Command::Rcpt(path))
}

/// Splits `<path> params` (a space after the colon is tolerated) into the
/// path without brackets or source route, and the parameter text.
fn split_path(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start_matches(' ').strip_prefix('<')?;
    let mut quoted = false;
    let mut escaped = false;
    let mut end = None;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let end = end?;
    let (path, params) = (&text[..end], &text[end + 1..]);
    if !(params.is_empty() || params.starts_with(' ')) {
        return None;
    }
    // RFC 5321 section 4.1.1.3: accept and ignore a source route `@a,@b:`.
    let path = match path.strip_prefix('@') {
        Some(route) => route.split_once(':')?.1,
        None => path,
    };
    Some((path, params))
}

/// Whether `path` looks like `local@domain`: both parts present, no control
/// characters, and whitespace only inside a quoted local part.
fn is_mailbox(path: &str) -> bool {
    let Some((local, domain)) = path.rsplit_once('@') else {
        return false;
    };
    let quoted = local.len() >= 2 && local.starts_with('"') && local.ends_with('"');
    !local.is_empty()
        && !domain.is_empty()
        && !path.chars().any(char::is_control)
        && !domain.contains(char::is_whitespace)
        && (quoted || !local.contains(char::is_whitespace))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn syntax(usage: &str) -> Reply {
    Reply::new(501, "5.5.4", format!("Syntax: {usage}"))
}

fn unsupported(key: &str) -> Reply {
    Reply::new(555, "5.5.4", format!("Unsupported option: {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> u16 {
        parse(line).expect_err("should be refused").code()
    }

    #[test]
    fn mail_with_parameters() {
        assert_eq!(
            parse("mail from:<a@example.com> SIZE=120 BODY=8BITMIME SMTPUTF8"),
            Ok(Command::Mail {
                path: "a@example.com",
                size: Some(120),
                smtputf8: true
            })
        );
        assert_eq!(
            parse("MAIL FROM: <>"),
            Ok(Command::Mail {
                path: "",
                size: None,
                smtputf8: false
            })
        );
    }

    #[test]
    fn huge_size_saturates() {
        let parsed = parse("MAIL FROM:<a@b> SIZE=99999999999999999999999");
        assert!(matches!(
            parsed,
            Ok(Command::Mail {
                size: Some(u64::MAX),
                ..
            })
        ));
    }

    #[test]
    fn bad_mail_syntax() {
        assert_eq!(code("MAIL FROM:a@b"), 501);
        assert_eq!(code("MAIL TO:<a@b>"), 501);
        assert_eq!(code("MAIL FROM:<a@b"), 501);
        assert_eq!(code("MAIL FROM:<a@b>x"), 501);
        assert_eq!(code("MAIL FROM:<nobody>"), 501);
        assert_eq!(code("MAIL FROM:<a@b> SIZE=x"), 501);
        assert_eq!(code("MAIL FROM:<a@b> BODY=BINARYMIME"), 501);
        assert_eq!(code("MAIL FROM:<a@b> AUTH=<>"), 555);
        assert_eq!(code("MAIL"), 501);
    }

    #[test]
    fn rcpt_paths() {
        assert_eq!(
            parse("RCPT TO:<b@example.com>"),
            Ok(Command::Rcpt("b@example.com"))
        );
        assert_eq!(
            parse("RCPT TO:<Postmaster>"),
            Ok(Command::Rcpt("Postmaster"))
        );
        assert_eq!(
            parse("RCPT TO:<@relay.example:b@x.example>"),
            Ok(Command::Rcpt("b@x.example"))
        );
        assert_eq!(
            parse("RCPT TO:<\"a >b\"@x.example>"),
            Ok(Command::Rcpt("\"a >b\"@x.example"))
        );
        assert_eq!(code("RCPT TO:<>"), 501);
        assert_eq!(code("RCPT TO:<a b@x>"), 501);
        assert_eq!(code("RCPT TO:<b@x> NOTIFY=NEVER"), 555);
    }

    #[test]
    fn other_commands() {
        assert_eq!(
            parse("ehlo client.example"),
            Ok(Command::Ehlo("client.example"))
        );
        assert_eq!(parse("HELO x "), Ok(Command::Helo("x")));
        assert_eq!(code("EHLO"), 501);
        assert_eq!(parse("NOOP anything"), Ok(Command::Noop));
        assert_eq!(code("DATA now"), 501);
        assert_eq!(parse("STARTTLS"), Ok(Command::NotImplemented));
        assert_eq!(parse("GET / HTTP/1.1"), Ok(Command::Http));
        assert_eq!(parse("\u{0}\u{1}"), Ok(Command::Unknown));
        assert_eq!(parse(""), Ok(Command::Unknown));
    }

    #[test]
    fn prefix_on_a_char_boundary_never_panics() {
        assert_eq!(parse("MAIL é"), Err(syntax("MAIL FROM:<address>")));
        assert_eq!(parse("RCPT ééé"), Err(syntax("RCPT TO:<address>")));
    }
}
