//! SMTP URLs: `smtp://[user[:pass]@]host[:port][?security=MODE]` and
//! `smtps://` for implicit TLS.

use std::time::Duration;

use smtp_mailer_host::{Credentials, Secret, Security, Server};

use crate::args::ConnectionArgs;

/// Parses an SMTP URL into server settings. Credentials in the URL are
/// percent-decoded; the password never appears in an error.
pub fn parse_server_url(url: &str) -> Result<Server, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "the server URL must start with smtp:// or smtps://".to_string())?;
    let (default_port, default_security) = match scheme.to_ascii_lowercase().as_str() {
        "smtp" => (587, Security::StarttlsRequired),
        "smtps" => (465, Security::ImplicitTls),
        other => return Err(format!("unknown scheme {other:?}: use smtp:// or smtps://")),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let rest = rest.trim_end_matches('/');
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (host, port) = split_host_port(hostport)?;
    let port = port.unwrap_or(default_port);
    if host.is_empty() {
        return Err("the server URL has no host".into());
    }
    let mut server = Server::new(host, port);
    server.security = default_security;
    if let Some(userinfo) = userinfo {
        let (user, pass) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        let user = percent_decode(user).map_err(|e| format!("the user name {e}"))?;
        let secret = match pass {
            Some(p) => Some(percent_decode(p).map_err(|_| {
                "the password in the URL is not valid percent-encoding".to_string()
            })?),
            None => None,
        };
        server.credentials = Some(Credentials {
            user,
            secret: Secret::Password(secret.unwrap_or_default()),
            mechanism: None,
        });
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "security" => server.security = parse_security(value)?,
            other => return Err(format!("unknown URL parameter {other:?} (known: security)")),
        }
    }
    Ok(server)
}

/// Parses a security mode name.
pub fn parse_security(value: &str) -> Result<Security, String> {
    match value {
        "implicit-tls" => Ok(Security::ImplicitTls),
        "starttls-required" | "starttls" => Ok(Security::StarttlsRequired),
        "starttls-opportunistic" => Ok(Security::StarttlsOpportunistic),
        "plaintext-insecure" => Ok(Security::PlaintextInsecure),
        other => Err(format!(
            "unknown security mode {other:?}: use implicit-tls, starttls-required, \
             starttls-opportunistic or plaintext-insecure"
        )),
    }
}

fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, rest) = v6
            .split_once(']')
            .ok_or_else(|| "an IPv6 host lacks its ']'".to_string())?;
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(parse_port(p)?),
            None if rest.is_empty() => None,
            None => return Err(format!("unexpected {rest:?} after the IPv6 host")),
        };
        return Ok((host.to_string(), port));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_string(), Some(parse_port(p)?))),
        None => Ok((hostport.to_string(), None)),
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{p:?} is not a port number"))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "is not valid percent-encoding".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8".to_string())
}

/// The server a URL names, with the connection options applied.
pub fn server_from_args(url: &str, args: &ConnectionArgs, verbose: bool) -> Result<Server, String> {
    let mut server = parse_server_url(url).map_err(|e| format!("--server: {e}"))?;
    if let Some(mode) = &args.security {
        server.security = parse_security(mode).map_err(|e| format!("--security: {e}"))?;
    }
    if let Some(password) = &args.password {
        if let Some(Credentials {
            secret: Secret::Password(p),
            ..
        }) = &mut server.credentials
        {
            if p.is_empty() {
                *p = password.clone();
            }
        }
    }
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        server.ca_pem = Some(pem);
    }
    if let Some(mechanism) = &args.auth {
        let credentials = server.credentials.as_mut().ok_or_else(|| {
            "--auth needs credentials: put the user in the URL (smtp://user@host) and the \
             password or token in SMTP_PASSWORD"
                .to_string()
        })?;
        let mechanism = mechanism.to_ascii_uppercase();
        if matches!(mechanism.as_str(), "XOAUTH2" | "OAUTHBEARER") {
            if let Secret::Password(token) = &credentials.secret {
                credentials.secret = Secret::OAuth2Token(token.clone());
            }
        }
        credentials.mechanism = Some(mechanism);
    }
    server.connect_address = args.connect_address.clone();
    server.trace = verbose;
    server.client_name = args.client_name.clone();
    if let Some(seconds) = args.timeout {
        let each = Duration::from_secs(seconds.max(1));
        server.timeouts.command = each;
        server.timeouts.data = each * 2;
    }
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = parse_server_url("smtp://mx.example.org").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("mx.example.org", 587, Security::StarttlsRequired)
        );
        let s = parse_server_url("smtps://u%40x:p%3Ass@mx.example.org").unwrap();
        assert_eq!((s.port, s.security), (465, Security::ImplicitTls));
        let c = s.credentials.unwrap();
        assert_eq!(c.user, "u@x");
        assert_eq!(c.secret, Secret::Password("p:ss".into()));
        let s = parse_server_url("smtp://127.0.0.1:2525?security=plaintext-insecure").unwrap();
        assert_eq!((s.port, s.security), (2525, Security::PlaintextInsecure));
        let s = parse_server_url("smtp://[::1]:25").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", 25));
        assert!(parse_server_url("http://x").is_err());
        assert!(parse_server_url("smtp://x:0").is_err());
        assert!(parse_server_url("smtp://x?security=nope").is_err());
        let err = parse_server_url("smtp://u:secret%zz@x").unwrap_err();
        assert!(!err.contains("secret"));
    }
}
