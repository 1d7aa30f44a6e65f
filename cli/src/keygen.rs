//! `dkim-keygen`: a new DKIM key pair, the private key in a file only its
//! owner can read, and the DNS record to publish.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;

use rand_core::OsRng;
use smtp_mailer_core::dkim::DkimKey;

use crate::args::DkimKeygenArgs;

/// Writes the key and returns the zone-file line of its record.
pub fn keygen(args: &DkimKeygenArgs) -> Result<String, String> {
    let pem = match args.algorithm.as_str() {
        "ed25519" => {
            use ed25519_dalek::pkcs8::EncodePrivateKey as _;
            ed25519_dalek::SigningKey::generate(&mut OsRng)
                .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .map_err(|e| format!("cannot encode the key: {e}"))?
                .to_string()
        }
        _ => {
            use rsa::pkcs8::EncodePrivateKey as _;
            rsa::RsaPrivateKey::new(&mut OsRng, args.bits as usize)
                .map_err(|e| format!("cannot generate the key: {e}"))?
                .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .map_err(|e| format!("cannot encode the key: {e}"))?
                .to_string()
        }
    };
    // Checked as the signer will read it.
    let key = DkimKey::from_pkcs8_pem(&pem).map_err(|e| e.to_string())?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.out)
        .map_err(|e| format!("--out {}: {e}", args.out.display()))?;
    file.write_all(pem.as_bytes())
        .map_err(|e| format!("--out {}: {e}", args.out.display()))?;
    let record = key.dns_record();
    // TXT strings hold at most 255 bytes: longer records are split.
    let strings: Vec<String> = record
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    Ok(format!(
        "{}._domainkey.{}. IN TXT ( {} )",
        args.selector,
        args.domain,
        strings.join(" ")
    ))
}
