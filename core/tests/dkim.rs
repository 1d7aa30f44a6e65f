//! DKIM signatures checked by a verifier nobody here wrote: dkimpy (PyPI),
//! with its DNS lookup answered from the key's own record.

use std::io::Write as _;
use std::process::Command;

use rand_core::OsRng;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use smtp_mailer_core::dkim::{Canonicalization, DkimKey, DkimSettings, DkimSigner};
use smtp_mailer_core::message::{Attachment, BuildContext, Mailbox, Message};

const VERIFY: &str = r#"
import sys, dkim, nacl
record = sys.argv[2].encode()
message = open(sys.argv[1], "rb").read()
ok = dkim.verify(message, dnsfunc=lambda name, timeout=5: record)
print("pass" if ok else "fail")
"#;

/// dkimpy's verdict on `message` with the public key `record`.
fn dkimpy(message: &[u8], record: &str) -> bool {
    let mut file = tempfile_path();
    file.1.write_all(message).unwrap();
    let out = Command::new("python3")
        .args(["-c", VERIFY])
        .arg(&file.0)
        .arg(record)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}; install Python 3 and `pip install dkimpy`"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "dkimpy or PyNaCl (its Ed25519) is missing: run scripts/install-test-tools.sh \
         (or `pip install dkimpy pynacl`): {stderr}"
    );
    assert!(out.status.success(), "dkimpy failed: {stderr}");
    let _ = std::fs::remove_file(&file.0);
    stdout.trim() == "pass"
}

fn tempfile_path() -> (std::path::PathBuf, std::fs::File) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "dkim-test-{}-{}.eml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}

fn rsa_key(bits: usize) -> DkimKey {
    let key = rsa::RsaPrivateKey::new(&mut OsRng, bits).unwrap();
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    DkimKey::from_pkcs8_pem(&pem).unwrap()
}

fn ed25519_key() -> DkimKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
    let pem = key
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap();
    DkimKey::from_pkcs8_pem(&pem).unwrap()
}

fn message() -> Vec<u8> {
    let mut long_line = "x".repeat(3000);
    long_line.push('\n');
    Message {
        from: Mailbox::named("Zoë Exemple", "zoe@example.org"),
        to: vec![Mailbox::new("bob@example.net")],
        subject: "Réunion: ordre du jour".into(),
        text: Some(format!("Bonjour,\n\n  spaced   words \t\n{long_line}\n\n")),
        html: Some("<p>Bonjour</p>".into()),
        attachments: vec![Attachment {
            filename: "données.bin".into(),
            content_type: "application/octet-stream".into(),
            content: (0..=255u8).cycle().take(5000).collect::<Vec<u8>>().into(),
            content_id: None,
        }],
        ..Message::default()
    }
    .build(&BuildContext {
        now: 1_700_000_000,
        unique: "dkim1".into(),
    })
    .unwrap()
    .bytes
}

fn signed(signer: &DkimSigner, message: &[u8]) -> Vec<u8> {
    let mut out = signer.sign(message, 1_700_000_000, &mut OsRng);
    out.extend_from_slice(message);
    out
}

#[test]
fn rsa_and_ed25519_signatures_verify_with_dkimpy() {
    let message = message();
    for (name, key) in [
        ("rsa-1024", rsa_key(1024)),
        ("rsa-2048", rsa_key(2048)),
        ("ed25519", ed25519_key()),
    ] {
        for canon in [Canonicalization::Relaxed, Canonicalization::Simple] {
            let record = key.dns_record();
            let mut settings = DkimSettings::new("example.org", "sel2026");
            settings.header_canonicalization = canon;
            settings.body_canonicalization = canon;
            settings.identity = Some("zoe@mail.example.org".into());
            let key = DkimKey::from_pkcs8_pem(&pem_of(&key)).unwrap_or_else(|_| panic!("{name}"));
            let signer = DkimSigner::new(settings, key).unwrap();
            let mail = signed(&signer, &message);
            assert!(dkimpy(&mail, &record), "{name} {canon:?} verifies");

            // A changed body or a changed header fails.
            let text = String::from_utf8_lossy(&mail).into_owned();
            let body_changed = text.replacen("Bonjour,", "Bonjour!", 1);
            assert!(
                !dkimpy(body_changed.as_bytes(), &record),
                "{name}: body change"
            );
            let header_changed = text.replacen("bob@example.net", "eve@example.net", 1);
            assert!(
                !dkimpy(header_changed.as_bytes(), &record),
                "{name}: header change"
            );
            let mut second_from = b"From: mallory@evil.test\r\n".to_vec();
            second_from.extend_from_slice(&mail);
            assert!(!dkimpy(&second_from, &record), "{name}: an added From");
        }
    }
}

/// The keys are made once per test above; this re-encodes them so each
/// signer owns one.
fn pem_of(key: &DkimKey) -> String {
    match key {
        DkimKey::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        DkimKey::Ed25519(k) => {
            use ed25519_dalek::pkcs8::EncodePrivateKey as _;
            k.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .unwrap()
                .to_string()
        }
    }
}

#[test]
fn bad_keys_and_settings_are_clear_errors() {
    let short = rsa::RsaPrivateKey::new(&mut OsRng, 512).unwrap();
    let err = DkimKey::from_pkcs8_pem(&short.to_pkcs8_pem(LineEnding::LF).unwrap()).unwrap_err();
    assert!(err.to_string().contains("512-bit"), "{err}");
    let err = DkimKey::from_pkcs8_pem(
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("PKCS#8"), "{err}");
    let err = DkimKey::from_pkcs8_pem("not a key").unwrap_err();
    assert!(err.to_string().contains("dkim.private-key"), "{err}");
    assert!(format!("{:?}", ed25519_key()).contains("redacted"));

    let mut settings = DkimSettings::new("example.org", "sel;x");
    assert!(DkimSigner::new(settings.clone(), ed25519_key()).is_err());
    settings.selector = "sel".into();
    settings.identity = Some("zoe@other.example".into());
    assert!(DkimSigner::new(settings, ed25519_key()).is_err());
}
