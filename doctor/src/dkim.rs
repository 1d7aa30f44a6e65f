//! DKIM (RFC 6376): the key record at `<selector>._domainkey.<domain>`
//! parses, publishes the private key's public half, is large enough and not
//! in testing mode; and a message the component signed with the key
//! verifies against it as a receiver verifies it (mail-auth).

use base64::Engine as _;
use mail_auth::common::parse::TxtRecordParser as _;
use mail_auth::common::verify::DomainKey;
use mail_auth::{AuthenticatedMessage, DkimResult};
use smtp_mailer_core::dkim::DkimKey;

use crate::dns::{Dns, LookupError};
use crate::finding::{Check, DnsRecord, Finding, Status};

/// What the DKIM check needs.
pub struct DkimInput<'a> {
    /// The signing domain (`d=`).
    pub domain: &'a str,
    /// The selector (`s=`).
    pub selector: &'a str,
    /// The private key, when given, and where it came from (for messages).
    pub key: Option<(&'a DkimKey, &'a str)>,
    /// A message the component signed with the key (wire form).
    pub signed: Option<&'a [u8]>,
    /// `t=y` is expected (the domain is testing DKIM on purpose).
    pub testing_expected: bool,
}

/// The tags of a key record that the checks read.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tags {
    k: Option<String>,
    p: Option<String>,
    t: Option<String>,
}

fn read_tags(record: &str) -> Tags {
    let mut tags = Tags::default();
    for part in record.split(';') {
        let Some((name, value)) = part.split_once('=') else {
            continue;
        };
        let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        match name.trim().to_ascii_lowercase().as_str() {
            "k" => tags.k = Some(value.to_ascii_lowercase()),
            "p" => tags.p = Some(value),
            "t" => tags.t = Some(value.to_ascii_lowercase()),
            _ => {}
        }
    }
    tags
}

/// Checks the key record and, with a key, a signature made with it.
pub async fn check(dns: &Dns, input: &DkimInput<'_>) -> Finding {
    let name = format!("{}._domainkey.{}", input.selector, input.domain);
    let wanted = input.key.map(|(key, _)| key.dns_record());
    let publish = |finding: Finding, advice: &str| match &wanted {
        Some(record) => finding.fix(advice, vec![DnsRecord::new(&name, "TXT", record.clone())]),
        None => finding.fix(
            format!(
                "{advice}: the record `smtp-mailer dkim-keygen` printed for the key (give \
                 --dkim-key to have it here)"
            ),
            Vec::new(),
        ),
    };
    let records = match dns.txt(&name).await {
        Ok(records) => records,
        Err(LookupError::NotFound) => {
            let finding = Finding::new(
                Check::Dkim,
                &name,
                Status::Fail,
                format!(
                    "no DKIM key record at {name}: receivers cannot verify signatures with s={}",
                    input.selector
                ),
            );
            return publish(finding, "publish the key's record");
        }
        Err(e) => return Finding::unchecked(Check::Dkim, &name, e),
    };
    let mut finding = Finding::new(Check::Dkim, &name, Status::Ok, "");
    let record = records[0].clone();
    finding = finding.detail(format!("record: {}", shorten(&record)));
    if records.len() > 1 {
        finding.status = Status::Warn;
        finding = finding.detail(format!(
            "{} TXT records at {name}: receivers use the first that parses; publish one",
            records.len()
        ));
    }
    if let Err(e) = DomainKey::parse(record.as_bytes()) {
        finding.status = Status::Fail;
        finding.reason =
            format!("the DKIM record at {name} does not parse ({e}): receivers give permerror");
        return publish(finding, "replace it with the key's record");
    }
    let tags = read_tags(&record);
    let p = tags.p.clone().unwrap_or_default();
    if p.is_empty() {
        finding.status = Status::Fail;
        finding.reason = format!("the DKIM record at {name} is revoked (empty p=): every signature with this selector fails");
        return publish(
            finding,
            "publish the key's record, or sign with another selector",
        );
    }
    if let Some((key, path)) = input.key {
        let expected = read_tags(&key.dns_record()).p.unwrap_or_default();
        if expected != p {
            finding.status = Status::Fail;
            finding.reason = format!(
                "the DKIM record at {name} publishes another public key than the private key \
                 {path}: every signature made with it fails"
            );
            return publish(finding, "replace the record with the key's record");
        }
    }
    let algorithm = tags.k.clone().unwrap_or_else(|| "rsa".into());
    let mut summary = match algorithm.as_str() {
        "ed25519" => "an Ed25519 key".to_string(),
        _ => match rsa_bits(&p) {
            Some(bits) if bits < 1024 => {
                finding.status = Status::Fail;
                finding.reason = format!(
                    "the DKIM key at {name} is {bits}-bit RSA: receivers ignore keys under \
                     1024 bits (RFC 8301)"
                );
                return finding.fix(key_advice(input), Vec::new());
            }
            Some(bits) if bits < 2048 => {
                finding.status = Status::Warn;
                finding.fix = Some(crate::finding::Fix {
                    advice: key_advice(input),
                    records: Vec::new(),
                });
                finding =
                    finding.detail(format!("{bits}-bit RSA: large receivers ask for 2048 bits"));
                format!("a {bits}-bit RSA key")
            }
            Some(bits) => format!("a {bits}-bit RSA key"),
            None => {
                finding.status = Status::Fail;
                finding.reason =
                    format!("the p= of the DKIM record at {name} is not an RSA public key");
                return publish(finding, "replace the record with the key's record");
            }
        },
    };
    let testing = tags
        .t
        .as_deref()
        .is_some_and(|t| t.split(':').any(|flag| flag == "y"));
    if testing {
        if input.testing_expected {
            finding = finding.detail("t=y: testing mode, as expected (--dkim-testing-expected)");
        } else {
            finding.status = finding.status.max(Status::Warn);
            finding = finding.detail(
                "t=y: testing mode; receivers may treat signatures as if the mail were unsigned",
            );
            if finding.fix.is_none() {
                let without: String = record
                    .split(';')
                    .map(str::trim)
                    .filter(|part| !part.to_ascii_lowercase().starts_with("t="))
                    .collect::<Vec<_>>()
                    .join("; ");
                finding = finding.fix(
                    "drop t=y once signing works (or pass --dkim-testing-expected while you test)",
                    vec![DnsRecord::new(&name, "TXT", without)],
                );
            }
        }
    }
    match (input.key, input.signed) {
        (Some((_, path)), Some(signed)) => {
            let verdict = verify(dns, signed).await;
            match verdict {
                Verdict::Pass => {
                    summary.push_str(&format!(
                        "; a message signed with {path} verifies (DKIM pass)"
                    ));
                }
                Verdict::Unchecked(why) => {
                    let mut unchecked = Finding::unchecked(Check::Dkim, &name, why);
                    unchecked.details = finding.details;
                    return unchecked;
                }
                Verdict::Fail(why) => {
                    finding.status = Status::Fail;
                    finding.reason = format!(
                        "a message signed with {path} does not verify against {name}: {why}"
                    );
                    return publish(finding, "publish the key's record");
                }
            }
        }
        _ => {
            finding.status = finding.status.max(Status::Warn);
            finding = finding.detail(
                "no --dkim-key: whether the record matches the private key was not checked",
            );
        }
    }
    if finding.reason.is_empty() {
        finding.reason = format!("{name} publishes {summary}");
    }
    finding
}

/// A receiver's DKIM verdict on a signed message.
pub enum Verdict {
    /// The signature verifies.
    Pass,
    /// It does not, and why.
    Fail(String),
    /// The key record could not be fetched.
    Unchecked(String),
}

/// Verifies the message's DKIM signature as a receiver does.
pub async fn verify(dns: &Dns, signed: &[u8]) -> Verdict {
    let Some(message) = AuthenticatedMessage::parse(signed) else {
        return Verdict::Fail("the signed message does not parse".into());
    };
    let outputs = dns.authenticator().verify_dkim(&message).await;
    let Some(output) = outputs.first() else {
        return Verdict::Fail("the message carries no DKIM signature".into());
    };
    match output.result() {
        DkimResult::Pass => Verdict::Pass,
        DkimResult::TempError(e) => {
            Verdict::Unchecked(format!("fetching the key met a DNS error: {e}"))
        }
        DkimResult::Neutral(e) | DkimResult::Fail(e) | DkimResult::PermError(e) => {
            Verdict::Fail(e.to_string())
        }
        DkimResult::None => Verdict::Fail("no signature was evaluated".into()),
    }
}

/// What to do about a weak key.
fn key_advice(input: &DkimInput<'_>) -> String {
    format!(
        "make a 2048-bit key under a new selector (`smtp-mailer dkim-keygen --algorithm rsa \
         --bits 2048 --selector {}-2048 --domain {} --out new.pem`), publish the record it \
         prints, then sign with it",
        input.selector, input.domain
    )
}

/// The size in bits of an RSA public key given as base64 SubjectPublicKeyInfo
/// (or PKCS#1 RSAPublicKey).
fn rsa_bits(p: &str) -> Option<usize> {
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    use rsa::pkcs8::DecodePublicKey as _;
    use rsa::traits::PublicKeyParts as _;
    let der = base64::engine::general_purpose::STANDARD.decode(p).ok()?;
    let key = rsa::RsaPublicKey::from_public_key_der(&der)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(&der))
        .ok()?;
    Some(key.size() * 8)
}

/// A long record cut for display.
fn shorten(record: &str) -> String {
    if record.len() <= 80 {
        return record.to_string();
    }
    let cut = (0..=72)
        .rev()
        .find(|&i| record.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}... ({} characters)", &record[..cut], record.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tags() {
        let t = read_tags("v=DKIM1; k=rsa; t=y:s; p=MIIB IjAN\n Bg");
        assert_eq!(t.k.as_deref(), Some("rsa"));
        assert_eq!(t.t.as_deref(), Some("y:s"));
        assert_eq!(t.p.as_deref(), Some("MIIBIjANBg"));
        assert_eq!(read_tags("v=DKIM1; p=").p.as_deref(), Some(""));
    }
}
