//! Whole-send times through the real component and host, against aiosmtpd
//! on loopback. Prints one table; run with
//! `cargo bench -p smtp-mailer-tests --bench sends` after
//! `scripts/install-test-tools.sh`.
//!
//! Times are medians (and the fastest) of many sends in one run, so that
//! rows compare with each other on a noisy machine.

use std::time::{Duration, Instant};

use smtp_mailer_host::{Security, Server, COMPONENT};
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions};
use smtp_mailer_tests::support::{loopback, mailer, message};
use smtp_mailer_tests::tls::TestPki;

const RUNS: usize = 50;

fn median_and_min(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[0])
}

fn new_connection_sends(server: &Server) -> (Duration, Duration) {
    let msg = message(&["bob@example.test"]);
    mailer().send(server, &msg).expect("warm-up send");
    let times = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            mailer().send(server, &msg).expect("send");
            started.elapsed()
        })
        .collect();
    median_and_min(times)
}

fn tls_settings(port: u16, security: Security, pki: &TestPki) -> Server {
    let mut server = Server::new("localhost", port);
    server.connect_address = Some("127.0.0.1".into());
    server.security = security;
    server.ca_pem = Some(pki.ca_pem.clone());
    server
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let pki = TestPki::generate();
    let plain = Aiosmtpd::start();
    let starttls = Aiosmtpd::start_with(AiosmtpdOptions {
        starttls: Some(pki.good.clone()),
        ..Default::default()
    });
    let implicit = Aiosmtpd::start_with(AiosmtpdOptions {
        implicit_tls: Some(pki.good.clone()),
        ..Default::default()
    });

    let mut rows: Vec<(String, String)> = Vec::new();
    let (median, min) = new_connection_sends(&loopback(plain.port()));
    rows.push((
        "new connection, plaintext: median (fastest)".into(),
        format!("{} ({})", ms(median), ms(min)),
    ));
    let (median, min) = new_connection_sends(&tls_settings(
        starttls.port(),
        Security::StarttlsRequired,
        &pki,
    ));
    rows.push((
        "new connection, STARTTLS: median (fastest)".into(),
        format!("{} ({})", ms(median), ms(min)),
    ));
    let (median, min) =
        new_connection_sends(&tls_settings(implicit.port(), Security::ImplicitTls, &pki));
    rows.push((
        "new connection, implicit TLS: median (fastest)".into(),
        format!("{} ({})", ms(median), ms(min)),
    ));

    let count = 500;
    let mut session = mailer()
        .open_session(&loopback(plain.port()))
        .expect("session");
    let msg = message(&["bob@example.test"]);
    let started = Instant::now();
    for _ in 0..count {
        session.send(&msg).expect("send");
    }
    let elapsed = started.elapsed();
    session.close().expect("close");
    rows.push((
        format!("one session, plaintext, {count} messages"),
        format!("{:.0} messages/s", count as f64 / elapsed.as_secs_f64()),
    ));
    rows.push((
        "component size".into(),
        format!("{} bytes", COMPONENT.len()),
    ));

    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!(
        "{:width$}  result (aiosmtpd on loopback, {RUNS} sends per median)",
        "measure"
    );
    println!("{:-<width$}  {:-<40}", "", "");
    for (k, v) in rows {
        println!("{k:width$}  {v}");
    }
}
