//! DKIM signing of a built message, with the core's signer and wasi:random
//! for RSA blinding.

use smtp_mailer_core::dkim::{Canonicalization, DkimKey, DkimSettings, DkimSigner};
use smtp_mailer_core::message::Built;

use crate::convert;
use crate::smtp_mailer_mailer_types as wit;

/// Signs `built` (a message whose content is all in memory) and puts the
/// `DKIM-Signature` field first. `now` is the `t=` tag.
pub fn sign(built: &mut Built, dkim: wit::Dkim, now: i64) -> Result<(), wit::Error> {
    if !built.streams.is_empty() {
        return Err(convert::unsupported(
            wit::Stage::DataEnd,
            "DKIM signing of a message with streamed content is not available in this \
             version; pass the attachments as bytes",
        ));
    }
    let key = DkimKey::from_pkcs8_pem(&dkim.private_key_pem).map_err(convert::core_error)?;
    let mut settings = DkimSettings::new(dkim.domain, dkim.selector);
    settings.identity = dkim.identity;
    if let Some(c) = dkim.header_canonicalization {
        settings.header_canonicalization = canonicalization(c);
    }
    if let Some(c) = dkim.body_canonicalization {
        settings.body_canonicalization = canonicalization(c);
    }
    let signer = DkimSigner::new(settings, key).map_err(convert::core_error)?;
    let mut signed = signer.sign(&built.bytes, now, &mut WasiRng);
    signed.extend_from_slice(&built.bytes);
    built.bytes = signed;
    Ok(())
}

fn canonicalization(c: wit::Canonicalization) -> Canonicalization {
    match c {
        wit::Canonicalization::Relaxed => Canonicalization::Relaxed,
        wit::Canonicalization::Simple => Canonicalization::Simple,
    }
}

/// wasi:random as a cryptographic random source.
struct WasiRng;

impl rand_core::RngCore for WasiRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // wasi:random does not fail; should it, blinding uses zeros and
        // the signature stays valid.
        let _ = getrandom::fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for WasiRng {}
