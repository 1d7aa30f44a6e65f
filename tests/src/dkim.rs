//! DKIM checks for the end-to-end tests: keys made by `smtp-mailer
//! dkim-keygen`, signatures judged by a verifier nobody here wrote, dkimpy
//! (PyPI), with its DNS lookup answered from the key's record.

use std::path::Path;
use std::process::Command;

use crate::support::run_cli;

/// The verifier: `python3 -c VERIFY message-file record` prints `pass` or `fail`.
const VERIFY: &str = r#"
import sys, dkim, nacl
record = sys.argv[2].encode()
message = open(sys.argv[1], "rb").read()
print("pass" if dkim.verify(message, dnsfunc=lambda name, timeout=5: record) else "fail")
"#;

/// dkimpy's verdict on `message` with the public key `record` (the TXT
/// record's text); panics if dkimpy is missing or fails to give one.
pub fn dkimpy(message: &[u8], record: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.eml");
    std::fs::write(&path, message).unwrap();
    let out = Command::new("python3")
        .args(["-c", VERIFY])
        .arg(&path)
        .arg(record)
        .output()
        .expect("python3 runs (install Python 3)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "dkimpy or PyNaCl is missing: run scripts/install-test-tools.sh: {stderr}"
    );
    assert!(out.status.success(), "dkimpy failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).trim() == "pass"
}

/// A new key from `smtp-mailer dkim-keygen` in `dir` (`{selector}.pem`):
/// returns the key file's path and the TXT record's text, as a resolver
/// returns it.
pub fn keygen(dir: &Path, algorithm: &str, selector: &str, domain: &str) -> (String, String) {
    let key = dir.join(format!("{selector}.pem"));
    let out = run_cli(
        &[
            "dkim-keygen",
            "--algorithm",
            algorithm,
            "--selector",
            selector,
            "--domain",
            domain,
            "--out",
            key.to_str().unwrap(),
        ],
        None,
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with(&format!("{selector}._domainkey.{domain}. IN TXT (")),
        "{line}"
    );
    // The record's strings, joined, as a resolver returns them.
    let record: String = line.split('"').skip(1).step_by(2).collect();
    (key.to_str().unwrap().to_string(), record)
}
