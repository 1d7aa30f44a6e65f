//! SMTP commands as types whose `Display` is the line on the wire.
//!
//! Arguments are checked before a command is built (addresses by
//! [`crate::address`], the client name by [`ClientConfig`](super::ClientConfig)),
//! so a command line can never hold a CR or LF of the caller's.

use std::fmt;

use crate::address::Address;

/// One command, written with its CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `EHLO <client name>`.
    Ehlo(&'a str),
    /// `HELO <client name>`, when the server does not know EHLO.
    Helo(&'a str),
    /// `MAIL FROM:<path> params`; no path is the null path `<>`.
    Mail {
        /// The reverse path.
        from: Option<&'a Address>,
        /// ESMTP parameters such as `SIZE=1234`.
        params: &'a [String],
    },
    /// `RCPT TO:<path>`.
    Rcpt(&'a Address),
    /// `DATA`.
    Data,
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
}

impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Ehlo(name) => write!(f, "EHLO {name}\r\n"),
            Command::Helo(name) => write!(f, "HELO {name}\r\n"),
            Command::Mail { from, params } => {
                write!(f, "MAIL FROM:<{}>", from.map_or("", |a| a.as_str()))?;
                for param in params.iter() {
                    write!(f, " {param}")?;
                }
                f.write_str("\r\n")
            }
            Command::Rcpt(to) => write!(f, "RCPT TO:<{to}>\r\n"),
            Command::Data => f.write_str("DATA\r\n"),
            Command::Rset => f.write_str("RSET\r\n"),
            Command::Quit => f.write_str("QUIT\r\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_lines() {
        let a = Address::parse("a@x.example").unwrap();
        let params = vec!["SIZE=10".to_string(), "BODY=8BITMIME".to_string()];
        assert_eq!(
            Command::Mail {
                from: Some(&a),
                params: &params
            }
            .to_string(),
            "MAIL FROM:<a@x.example> SIZE=10 BODY=8BITMIME\r\n"
        );
        assert_eq!(
            Command::Mail {
                from: None,
                params: &[]
            }
            .to_string(),
            "MAIL FROM:<>\r\n"
        );
        assert_eq!(Command::Rcpt(&a).to_string(), "RCPT TO:<a@x.example>\r\n");
        assert_eq!(Command::Ehlo("c.example").to_string(), "EHLO c.example\r\n");
    }
}
