//! DKIM signing (RFC 6376), RSA-SHA256 and Ed25519-SHA256 (RFC 8463).
//!
//! [`DkimSigner::sign`] takes a message in its wire form (CRLF line
//! endings) and returns the `DKIM-Signature` field to put before it.
//! Relaxed/relaxed canonicalization by default; the usual headers signed,
//! and From signed once more than it appears, so that a second From cannot
//! be added. The body hash can also be computed as a body streams by
//! ([`BodyCanonicalizer`]) and given to [`DkimSigner::sign_with_body_hash`].
//!
//! The crypto is RustCrypto's (`rsa`, `ed25519-dalek`, `sha2`): pure Rust,
//! so it runs in the component.

mod canonical;
mod key;

pub use canonical::{BodyCanonicalizer, Canonicalization};
pub use key::DkimKey;

use base64::Engine as _;
use rsa::rand_core::CryptoRngCore;

use crate::error::Error;
use crate::smtp::content::header_section_len;

/// The headers signed by default, when the message has them. The
/// List-Unsubscribe pair is signed because one-click unsubscribe (RFC 8058
/// section 4) counts only when a valid DKIM signature covers both.
pub const DEFAULT_HEADERS: [&str; 11] = [
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "mime-version",
    "content-type",
    "list-unsubscribe",
    "list-unsubscribe-post",
];

/// What a signature says besides the key.
#[derive(Debug, Clone)]
pub struct DkimSettings {
    /// The signing domain (`d=`).
    pub domain: String,
    /// The selector (`s=`): the key is published at
    /// `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// The agent or user identity (`i=`), `[local]@domain-or-subdomain`.
    pub identity: Option<String>,
    /// Header canonicalization.
    pub header_canonicalization: Canonicalization,
    /// Body canonicalization.
    pub body_canonicalization: Canonicalization,
    /// The headers to sign (case-insensitive); those the message lacks are
    /// left out, From is always signed and over-signed.
    pub headers: Vec<String>,
}

impl DkimSettings {
    /// Relaxed/relaxed, the default headers, no identity.
    pub fn new(domain: impl Into<String>, selector: impl Into<String>) -> Self {
        DkimSettings {
            domain: domain.into(),
            selector: selector.into(),
            identity: None,
            header_canonicalization: Canonicalization::Relaxed,
            body_canonicalization: Canonicalization::Relaxed,
            headers: DEFAULT_HEADERS.iter().map(|h| h.to_string()).collect(),
        }
    }
}

/// A key and its settings, checked.
#[derive(Debug)]
pub struct DkimSigner {
    settings: DkimSettings,
    key: DkimKey,
}

impl DkimSigner {
    /// Checks the settings: the domain and selector are dot-separated
    /// letters, digits and hyphens; the identity's domain is the signing
    /// domain or one of its subdomains; header names are printable ASCII
    /// without a colon.
    pub fn new(settings: DkimSettings, key: DkimKey) -> Result<DkimSigner, Error> {
        check_name("dkim.domain", &settings.domain)?;
        check_name("dkim.selector", &settings.selector)?;
        if let Some(identity) = &settings.identity {
            let domain = identity
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
                .ok_or_else(|| {
                    Error::invalid("dkim.identity", "must have the form [local]@domain")
                })?;
            let signing = settings.domain.to_ascii_lowercase();
            let within = domain == signing || domain.ends_with(&format!(".{signing}"));
            if !within
                || identity
                    .bytes()
                    .any(|b| b <= b' ' || b == b';' || b >= 0x7f)
            {
                return Err(Error::invalid(
                    "dkim.identity",
                    "must be [local]@ the signing domain or a subdomain, printable ASCII \
                     without ';'",
                ));
            }
        }
        for name in &settings.headers {
            let printable =
                !name.is_empty() && name.bytes().all(|b| (33..127).contains(&b) && b != b':');
            if !printable {
                return Err(Error::invalid(
                    "dkim.headers",
                    format!("{name:?} is not a header field name"),
                ));
            }
        }
        Ok(DkimSigner { settings, key })
    }

    /// The `DKIM-Signature` field (CRLF included) for `message`, in wire
    /// form, at `now` (seconds since the epoch, the `t=` tag).
    pub fn sign(&self, message: &[u8], now: i64, rng: &mut impl CryptoRngCore) -> Vec<u8> {
        let header_end = header_section_len(message).unwrap_or(message.len());
        let body = message
            .get(header_end..)
            .map(|rest| rest.strip_prefix(b"\r\n").unwrap_or(rest))
            .unwrap_or_default();
        let mut body_hash = BodyCanonicalizer::new(self.settings.body_canonicalization);
        body_hash.update(body);
        self.sign_with_body_hash(&message[..header_end], body_hash.finish(), now, rng)
    }

    /// The same, from the header section and the hash of the body
    /// canonicalized by a [`BodyCanonicalizer`] with this signer's body
    /// canonicalization.
    pub fn sign_with_body_hash(
        &self,
        header_section: &[u8],
        body_hash: [u8; 32],
        now: i64,
        rng: &mut impl CryptoRngCore,
    ) -> Vec<u8> {
        let engine = base64::engine::general_purpose::STANDARD;
        let fields = split_fields(header_section);
        let header_canon = self.settings.header_canonicalization;

        // Bottom-up instances of each listed name (RFC 6376 5.4.2); From
        // once more than it appears (over-signing).
        let mut names: Vec<String> = Vec::new();
        let mut hashed: Vec<u8> = Vec::new();
        let mut listed: Vec<String> = self
            .settings
            .headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        if !listed.iter().any(|h| h == "from") {
            listed.insert(0, "from".into());
        }
        listed.dedup();
        for name in &listed {
            let instances: Vec<&[u8]> = fields
                .iter()
                .rev()
                .filter(|f| field_name(f).eq_ignore_ascii_case(name.as_bytes()))
                .copied()
                .collect();
            for field in &instances {
                hashed.extend_from_slice(&canonical::header(header_canon, field));
                names.push(name.clone());
            }
            if name == "from" {
                names.push(name.clone());
            }
        }

        let mut signature = format!(
            "DKIM-Signature: v=1; a={}; c={}/{}; d={}; s={};\r\n\tt={now}; h={};\r\n\tbh={};",
            self.key.algorithm(),
            header_canon.name(),
            self.settings.body_canonicalization.name(),
            self.settings.domain,
            self.settings.selector,
            names.join(":"),
            engine.encode(body_hash),
        );
        if let Some(identity) = &self.settings.identity {
            signature.push_str(&format!(" i={identity};"));
        }
        signature.push_str("\r\n\tb=");
        let canonical = canonical::header(header_canon, signature.as_bytes());
        hashed.extend_from_slice(canonical.strip_suffix(b"\r\n").unwrap_or(&canonical));

        let b = engine.encode(self.key.sign(&hashed, rng));
        let mut field = signature.into_bytes();
        for (i, piece) in b.as_bytes().chunks(72).enumerate() {
            if i > 0 {
                field.extend_from_slice(b"\r\n\t ");
            }
            field.extend_from_slice(piece);
        }
        field.extend_from_slice(b"\r\n");
        field
    }
}

/// Splits a header section into its fields, each with its folding and
/// final CRLF.
fn split_fields(section: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < section.len() {
        let end = section[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(section.len(), |p| i + p + 1);
        let continues = matches!(section.get(end), Some(b' ' | b'\t'));
        if !continues {
            if end > start {
                fields.push(&section[start..end]);
            }
            start = end;
        }
        i = end;
    }
    fields
}

fn field_name(field: &[u8]) -> &[u8] {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    let name = &field[..colon];
    let end = name
        .iter()
        .rposition(|b| !b" \t".contains(b))
        .map_or(0, |e| e + 1);
    &name[..end]
}

fn check_name(field: &str, name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "must be dot-separated labels of letters, digits, '-' and '_'",
        ))
    }
}
