//! The ESMTP extensions a server announced in its EHLO reply.

use super::reply::Reply;

/// What the server offers, parsed from the EHLO reply (RFC 5321 4.1.1.1).
/// After HELO the server offers nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// PIPELINING (RFC 2920): commands may be sent in groups.
    pub pipelining: bool,
    /// SIZE (RFC 1870): `Some(0)` when offered without a limit,
    /// `Some(n)` with a limit of n octets.
    pub size: Option<u64>,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtp_utf8: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// CHUNKING (RFC 3030).
    pub chunking: bool,
    /// AUTH (RFC 4954): the mechanisms, upper-cased.
    pub auth: Vec<String>,
    /// Every line of the reply after the first (the server's name), as
    /// the server wrote it: each an extension keyword with its parameters,
    /// such as `SIZE 10240000` or `DSN`, known to this client or not.
    pub keywords: Vec<String>,
}

impl Extensions {
    /// Parses a positive EHLO reply. The first line is the server's name;
    /// each further line is a keyword with optional parameters. Unknown
    /// keywords are kept in `keywords` only; a malformed SIZE value counts
    /// as no limit.
    pub fn from_ehlo(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            ext.keywords.push(line.trim().to_string());
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtp_utf8 = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                "STARTTLS" => ext.starttls = true,
                "CHUNKING" => ext.chunking = true,
                "AUTH" => ext.auth.extend(words.map(|m| m.to_ascii_uppercase())),
                _ => {}
            }
        }
        ext
    }

    /// The SIZE limit in octets, if the server declared one.
    pub fn size_limit(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postfix_ehlo() {
        let reply = Reply::parse_lines(&[
            "250-mx.example.org",
            "250-PIPELINING",
            "250-SIZE 10240000",
            "250-VRFY",
            "250-ETRN",
            "250-STARTTLS",
            "250-AUTH PLAIN login",
            "250-ENHANCEDSTATUSCODES",
            "250-8BITMIME",
            "250-DSN",
            "250-SMTPUTF8",
            "250 CHUNKING",
        ])
        .unwrap();
        let ext = Extensions::from_ehlo(&reply);
        assert!(ext.pipelining && ext.eight_bit_mime && ext.smtp_utf8 && ext.chunking);
        assert!(ext.starttls && ext.enhanced_status_codes);
        assert_eq!(ext.size_limit(), Some(10_240_000));
        assert_eq!(ext.auth, vec!["PLAIN", "LOGIN"]);
        assert_eq!(ext.keywords.len(), 11, "every keyword line, known or not");
        assert_eq!(ext.keywords[1], "SIZE 10240000");
        assert!(ext.keywords.iter().any(|k| k == "DSN"));
    }

    #[test]
    fn size_without_limit_and_server_name_only() {
        let ext = Extensions::from_ehlo(&Reply::parse_lines(&["250-a", "250 size"]).unwrap());
        assert_eq!(ext.size, Some(0));
        assert_eq!(ext.size_limit(), None);
        let bare = Extensions::from_ehlo(&Reply::new(250, "PIPELINING"));
        assert_eq!(
            bare,
            Extensions::default(),
            "the first line is the host name"
        );
    }
}
