//! The latency of `POST /send` through `smtp-mailer serve` (the Spin app's
//! HTTP component composed with the mailer), against aiosmtpd on loopback,
//! next to `GET /health` (the cost of a request without a send). Prints one
//! table; run with `cargo bench -p smtp-mailer-tests --bench serve` after
//! `cargo build --release --bin smtp-mailer` and
//! `scripts/install-test-tools.sh`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use smtp_mailer_tests::serve::{post_send, request, ServeProcess, API_KEY};
use smtp_mailer_tests::servers::Aiosmtpd;

const RUNS: usize = 100;
const BODY: &[u8] = br#"{"from": "app@example.test", "to": "ada@example.test", "subject": "Latency", "text": "One short message."}"#;

fn percentiles(mut times: Vec<Duration>) -> [Duration; 4] {
    times.sort();
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    [times[0], at(50), at(90), times[times.len() - 1]]
}

fn measure(mut call: impl FnMut() -> u16) -> [Duration; 4] {
    assert_eq!(call(), 200, "warm-up");
    percentiles(
        (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                let status = call();
                let elapsed = started.elapsed();
                assert_eq!(status, 200);
                elapsed
            })
            .collect(),
    )
}

fn row(name: &str, t: [Duration; 4]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
        ms(t[0]),
        ms(t[1]),
        ms(t[2]),
        ms(t[3])
    );
}

fn main() {
    let smtp = Aiosmtpd::start();
    let port = smtp.port().to_string();
    let serve = ServeProcess::start(
        &[format!("tcp://127.0.0.1:{port}")],
        &[
            ("smtp_host", "mail.example.test"),
            ("smtp_connect_address", "127.0.0.1"),
            ("smtp_port", &port),
            ("smtp_security", "plaintext-insecure"),
        ],
    );
    let address: SocketAddr = serve.address();
    println!("{RUNS} sequential requests, each on a new HTTP connection, milliseconds:\n");
    println!("| request | min | p50 | p90 | max |");
    println!("|---|---|---|---|---|");
    row(
        "GET /health",
        measure(|| request(address, "GET", "/health", &[], b"").status),
    );
    row(
        "POST /send (plaintext relay on loopback)",
        measure(|| post_send(address, Some(API_KEY), BODY).status),
    );
    let delivered = smtp.wait_for(RUNS + 1, Duration::from_secs(30)).len();
    println!("\n{delivered} messages arrived at aiosmtpd.");
}
