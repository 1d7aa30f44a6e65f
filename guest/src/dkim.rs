//! DKIM signing of a built message, with the core's signer and wasi:random
//! for RSA blinding.

use smtp_mailer_core::dkim::{
    BodyCanonicalizer, Canonicalization, DkimKey, DkimSettings, DkimSigner,
};
use smtp_mailer_core::message::Built;
use smtp_mailer_core::smtp::content::header_section_len;

use crate::content::{ContentSource as _, Input, StreamedMessage};
use crate::error;
use crate::smtp_mailer_mailer_types as wit;

/// Signs `built` and puts the `DKIM-Signature` field first. `now` is the
/// `t=` tag. Streamed contents are read once through their first-pass
/// streams (taken from `inputs`) for the body hash, in pieces, so memory
/// stays flat; their send streams are left for the send.
pub fn sign(
    built: &mut Built,
    inputs: &mut [Option<Input>],
    dkim: wit::Dkim,
    now: i64,
) -> Result<(), wit::Error> {
    let key = DkimKey::from_pkcs8_pem(&dkim.private_key_pem).map_err(error::core_error)?;
    let mut settings = DkimSettings::new(dkim.domain, dkim.selector);
    settings.identity = dkim.identity;
    if let Some(c) = dkim.header_canonicalization {
        settings.header_canonicalization = canonicalization(c);
    }
    if let Some(c) = dkim.body_canonicalization {
        settings.body_canonicalization = canonicalization(c);
    }
    let body_canonicalization = settings.body_canonicalization;
    let signer = DkimSigner::new(settings, key).map_err(error::core_error)?;
    let header_end = header_section_len(&built.bytes).unwrap_or(built.bytes.len());
    let mut body = BodyCanonicalizer::new(body_canonicalization);
    let mut first = first_pass(built, inputs)?;
    let mut at = 0;
    // The body starts after the header section and its empty line.
    let body_start = header_end + 2;
    while let Some(piece) = first.next_piece()? {
        let skip = body_start.saturating_sub(at).min(piece.len());
        body.update(&piece[skip..]);
        at += piece.len();
    }
    let signature =
        signer.sign_with_body_hash(&built.bytes[..header_end], body.finish(), now, &mut WasiRng);
    for slot in &mut built.streams {
        slot.offset += signature.len();
    }
    let mut signed = signature;
    signed.extend_from_slice(&built.bytes);
    built.bytes = signed;
    Ok(())
}

/// The message as its first pass reads it: the same bytes, with each
/// streamed content read from its first-pass stream.
fn first_pass(built: &Built, inputs: &mut [Option<Input>]) -> Result<StreamedMessage, wit::Error> {
    let mut first: Vec<Option<Input>> = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter_mut().enumerate() {
        let Some(input) = input.as_mut() else {
            first.push(None);
            continue;
        };
        let Some(stream) = input.first_pass.take() else {
            return Err(error::unsupported(
                wit::Stage::DataEnd,
                &format!(
                    "attachments[{i}].content: a streamed content of a DKIM-signed message \
                     needs its first-pass stream (the same bytes once more, for the body hash)"
                ),
            ));
        };
        first.push(Some(Input {
            body: stream,
            size: input.size,
            field: input.field.clone(),
            first_pass: None,
        }));
    }
    StreamedMessage::new(built.clone(), &mut first)
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
