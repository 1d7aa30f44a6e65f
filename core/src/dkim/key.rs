//! DKIM private keys: RSA (1024 to 4096 bits, RSA-SHA256) and Ed25519
//! (Ed25519-SHA256, RFC 8463), read from PKCS#8 PEM. `Debug` shows the
//! kind and size, never the key.

use std::fmt;

use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::rand_core::CryptoRngCore;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;

use crate::error::Error;

/// The field named in key errors.
const FIELD: &str = "dkim.private-key";

/// A signing key.
pub enum DkimKey {
    /// An RSA key of 1024 to 4096 bits.
    Rsa(Box<rsa::RsaPrivateKey>),
    /// An Ed25519 key.
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DkimKey::Rsa(key) => write!(f, "DkimKey::Rsa({} bits, redacted)", key.size() * 8),
            DkimKey::Ed25519(_) => f.write_str("DkimKey::Ed25519(redacted)"),
        }
    }
}

impl DkimKey {
    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    /// Fails with `invalid-input` for anything else, an RSA key shorter
    /// than 1024 or longer than 4096 bits, or PKCS#1 RSA PEM (with a hint
    /// to convert it).
    pub fn from_pkcs8_pem(pem: &str) -> Result<DkimKey, Error> {
        if pem.contains("BEGIN RSA PRIVATE KEY") {
            return Err(Error::invalid(
                FIELD,
                "is a PKCS#1 RSA key; convert it to PKCS#8 with \
                 `openssl pkcs8 -topk8 -nocrypt -in key.pem`",
            ));
        }
        if pem.contains("BEGIN ENCRYPTED PRIVATE KEY") {
            return Err(Error::invalid(
                FIELD,
                "is encrypted; give the key unencrypted",
            ));
        }
        if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
            let bits = key.size() * 8;
            if !(1024..=4096).contains(&bits) {
                return Err(Error::invalid(
                    FIELD,
                    format!("is a {bits}-bit RSA key; DKIM needs 1024 to 4096 bits"),
                ));
            }
            return Ok(DkimKey::Rsa(Box::new(key)));
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(DkimKey::Ed25519(Box::new(key)));
        }
        Err(Error::invalid(
            FIELD,
            "is not a PKCS#8 PEM RSA or Ed25519 private key",
        ))
    }

    /// The `a=` tag's value.
    pub fn algorithm(&self) -> &'static str {
        match self {
            DkimKey::Rsa(_) => "rsa-sha256",
            DkimKey::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// The DNS TXT record that publishes the public key, at
    /// `<selector>._domainkey.<domain>`.
    pub fn dns_record(&self) -> String {
        let engine = base64::engine::general_purpose::STANDARD;
        match self {
            DkimKey::Rsa(key) => {
                let der = key
                    .to_public_key()
                    .to_public_key_der()
                    .map(|d| d.as_bytes().to_vec())
                    .unwrap_or_default();
                format!("v=DKIM1; k=rsa; p={}", engine.encode(der))
            }
            DkimKey::Ed25519(key) => format!(
                "v=DKIM1; k=ed25519; p={}",
                engine.encode(key.verifying_key().as_bytes())
            ),
        }
    }

    /// Signs `data` (SHA-256 inside). RSA is blinded with `rng`.
    pub(crate) fn sign(&self, data: &[u8], rng: &mut impl CryptoRngCore) -> Vec<u8> {
        match self {
            DkimKey::Rsa(key) => {
                let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**key).clone());
                signer.sign_with_rng(rng, data).to_vec()
            }
            DkimKey::Ed25519(key) => {
                // RFC 8463: Ed25519 signs the SHA-256 of the data.
                use sha2::Digest as _;
                let hash = sha2::Sha256::digest(data);
                key.sign(&hash).to_bytes().to_vec()
            }
        }
    }
}
