//! The cost of DKIM signing in the component: `build` of the same message
//! with and without a signature, RSA-2048 and Ed25519, through the real
//! component and host. Prints one table; run with
//! `cargo bench -p smtp-mailer-tests --bench dkim` after
//! `scripts/install-test-tools.sh`.

use std::process::Command;
use std::time::{Duration, Instant};

use smtp_mailer_host::Dkim;
use smtp_mailer_tests::support::{cli_binary, mailer, message};

const RUNS: usize = 200;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// The median time of `build_message` for `msg`.
fn build_time(msg: &smtp_mailer_host::Message) -> Duration {
    mailer().build_message(msg).expect("warm-up build");
    median(
        (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                mailer().build_message(msg).expect("build");
                started.elapsed()
            })
            .collect(),
    )
}

fn key(dir: &std::path::Path, algorithm: &str) -> String {
    let path = dir.join(format!("{algorithm}.pem"));
    let status = Command::new(cli_binary())
        .args([
            "dkim-keygen",
            "--algorithm",
            algorithm,
            "--selector",
            "s",
            "--domain",
            "example.org",
            "--out",
        ])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("dkim-keygen runs");
    assert!(status.success());
    std::fs::read_to_string(&path).expect("the key")
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plain = message(&["bob@example.test"]);
    let unsigned = build_time(&plain);
    let mut rows = vec![("build, unsigned: median".to_string(), ms(unsigned))];
    for algorithm in ["rsa", "ed25519"] {
        let mut signed = plain.clone();
        signed.dkim = Some(Dkim {
            domain: "example.org".into(),
            selector: "s".into(),
            private_key_pem: key(dir.path(), algorithm),
            identity: None,
            simple_canonicalization: false,
        });
        let time = build_time(&signed);
        let name = if algorithm == "rsa" {
            "RSA-2048"
        } else {
            "Ed25519"
        };
        rows.push((format!("build, signed {name}: median"), ms(time)));
        rows.push((
            format!("signing cost {name} (signed - unsigned)"),
            ms(time.saturating_sub(unsigned)),
        ));
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("| {:width$} | result |", "measure");
    println!("|{}|---|", "-".repeat(width + 2));
    for (measure, result) in rows {
        println!("| {measure:width$} | {result} |");
    }
}
