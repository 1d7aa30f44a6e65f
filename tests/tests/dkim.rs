//! DKIM through the real component: keys from `smtp-mailer dkim-keygen`,
//! messages sent by the CLI to aiosmtpd, every stored message verified by
//! dkimpy (PyPI) with its DNS lookup answered from the printed record.

use std::time::Duration;

use smtp_mailer_tests::dkim::{dkimpy, keygen};
use smtp_mailer_tests::servers::Aiosmtpd;
use smtp_mailer_tests::support::run_cli;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn signed_sends_verify_with_dkimpy_for_both_algorithms() {
    let dir = tempfile::tempdir().unwrap();
    let attachment = dir.path().join("données.csv");
    std::fs::write(&attachment, "a,b\n1,2\n".repeat(2000)).unwrap();
    let body = dir.path().join("body.txt");
    std::fs::write(
        &body,
        format!(
            "Bonjour,\n\n{}\n\n  espaces   et\ttabs  \n",
            "é".repeat(2000)
        ),
    )
    .unwrap();
    let server = Aiosmtpd::start();
    let url = format!(
        "smtp://127.0.0.1:{}?security=plaintext-insecure",
        server.port()
    );
    let mut sent = 0;
    for (algorithm, selector) in [("ed25519", "ed"), ("rsa", "rsa")] {
        let (key, record) = keygen(dir.path(), algorithm, selector, "example.org");
        for simple in [false, true] {
            let mut args = vec![
                "send",
                "--server",
                &url,
                "--from",
                "Zoë Exemple <zoe@example.org>",
                "--to",
                "bob@example.net",
                "--subject",
                "Réunion: l'ordre du jour",
                "--text-file",
                body.to_str().unwrap(),
                "--html",
                "<p>Bonjour</p>",
                "--attach",
                attachment.to_str().unwrap(),
                "--dkim-key",
                &key,
                "--dkim-selector",
                selector,
                "--dkim-domain",
                "example.org",
            ];
            if simple {
                args.push("--dkim-simple");
            }
            let out = run_cli(&args, None, &[]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            sent += 1;
            let got = server.wait_for(sent, WAIT);
            let data = &got[sent - 1].data;
            assert!(data.starts_with(b"DKIM-Signature: v=1; a="), "signed first");
            assert!(
                dkimpy(data, &record),
                "{algorithm} simple={simple} verifies"
            );
            let mut changed = data.clone();
            let at = changed.len() - 40;
            changed[at] ^= 1;
            assert!(
                !dkimpy(&changed, &record),
                "{algorithm}: a changed byte fails"
            );
        }
    }
}

#[test]
fn a_bad_key_is_a_clear_error_and_nothing_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("bad.pem");
    let secret = "-----BEGIN PRIVATE KEY-----\nTUlJQ2RRSUJBREFOQmdrcWhraUc5dzBC\n-----END PRIVATE KEY-----\n";
    std::fs::write(&key, secret).unwrap();
    let server = Aiosmtpd::start();
    let url = format!(
        "smtp://127.0.0.1:{}?security=plaintext-insecure",
        server.port()
    );
    let out = run_cli(
        &[
            "send",
            "--server",
            &url,
            "--from",
            "zoe@example.org",
            "--to",
            "bob@example.net",
            "--subject",
            "x",
            "--text",
            "y",
            "--dkim-key",
            key.to_str().unwrap(),
            "--dkim-selector",
            "s1",
            "--dkim-domain",
            "example.org",
        ],
        None,
        &[],
    );
    assert_eq!(out.status.code(), Some(65), "bad input");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dkim.private-key"), "{stderr}");
    assert!(
        !stderr.contains("TUlJQ2RRSUJBREFO"),
        "the key is never echoed"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.messages().is_empty());
}
