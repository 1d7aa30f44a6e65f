//! Runs each example program against a capture server and checks what the
//! server received: the examples are compiled and proven by CI.

use std::process::Command;
use std::time::Duration;

use smtp_mailer_capture::{CaptureOptions, CaptureServer};

fn run(program: &str, server: &CaptureServer) -> String {
    let output = Command::new(program)
        .arg(server.local_addr().to_string())
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn embed_sends_one_message_then_a_session_of_two() {
    let server = CaptureServer::start(CaptureOptions::default()).unwrap();
    let stdout = run(env!("CARGO_BIN_EXE_embed"), &server);
    let got = server.wait_for(3, Duration::from_secs(10));
    assert_eq!(got.len(), 3, "{stdout}");
    let recipients: Vec<&str> = got.iter().map(|m| m.rcpt_to[0].as_str()).collect();
    assert_eq!(
        recipients,
        ["ada@example.org", "alan@example.org", "grace@example.org"]
    );
    // The session carried the last two over one connection.
    assert_ne!(got[0].connection, got[1].connection);
    assert_eq!(got[1].connection, got[2].connection);
    assert!(got[2].data_lossy().contains("Subject: Welcome"));
    assert!(stdout.contains("grace@example.org: 250"), "{stdout}");
}

#[test]
fn own_wasi_ctx_calls_the_wit_export() {
    let server = CaptureServer::start(CaptureOptions::default()).unwrap();
    let stdout = run(env!("CARGO_BIN_EXE_own-wasi-ctx"), &server);
    let got = server.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{stdout}");
    assert_eq!(got[0].mail_from, "host@example.org");
    assert_eq!(got[0].rcpt_to, ["ada@example.org"]);
    assert!(got[0]
        .data_lossy()
        .contains("This host called smtp-mailer:mailer/sender.send itself."));
    assert!(stdout.starts_with("ada@example.org: 250"), "{stdout}");
}
