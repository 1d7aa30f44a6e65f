//! A connection the server's kernel refuses is reported as a refusal at the
//! connect stage, every time, through every way in: the host library, the
//! CLI, a worker with failover, and `serve`. A connect that is never
//! answered ends in a timeout at the connect stage.
//!
//! Each path runs 50 times in a row: the refusal used to be reported right
//! only now and then (std's `connect_timeout` over wasi-libc took a failed
//! connect for an established one, and the first read then failed with
//! "Socket not connected (os error 53)", as a lost greeting).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use smtp_mailer_host::{ErrorKind, Security, Server, Stage};
use smtp_mailer_tests::serve::{post_send, ServeProcess, API_KEY};
use smtp_mailer_tests::support::{loopback, mailer, message, run_cli};
use smtp_mailer_tests::unanswered::{closed_port, SynDroppingPort};
use smtp_mailer_tests::worker::{
    enqueue, message_ids, message_json, smtp_url, SqliteQueue, Worker,
};

/// Sends in a row per path.
const RUNS: usize = 50;

/// What every report of a refused connect to `port` says.
fn refusal(port: u16) -> String {
    format!("cannot connect to 127.0.0.1:{port}: connection refused")
}

/// Asserts that `text` names the refusal of `port` and carries no error
/// number (WASI's codes are not the operating system's).
#[track_caller]
fn assert_names_the_refusal(text: &str, port: u16, context: &str) {
    assert!(
        text.contains(&refusal(port)),
        "{context}: the refusal of port {port} is not named: {text}"
    );
    assert!(
        !text.contains("os error") && !text.contains("(error "),
        "{context}: an error number is shown: {text}"
    );
}

/// Two distinct closed ports, for two relays.
fn two_closed_ports() -> (u16, u16) {
    let first = closed_port();
    loop {
        let second = closed_port();
        if second != first {
            return (first, second);
        }
    }
}

#[test]
fn the_library_reports_a_refusal_at_connect_every_time() {
    let port = closed_port();
    let msg = message(&["bob@example.test"]);
    for security in [
        Security::PlaintextInsecure,
        Security::StarttlsRequired,
        Security::ImplicitTls,
    ] {
        let mut server: Server = loopback(port);
        server.security = security;
        let started = Instant::now();
        for run in 1..=RUNS {
            let context = format!("{security:?}, send {run} of {RUNS}");
            let err = mailer()
                .send(&server, &msg)
                .expect_err("nothing listens on the port");
            match &err.kind {
                ErrorKind::Connection(failure) if failure.stage == Stage::Connect => {
                    assert_names_the_refusal(&failure.detail, port, &context)
                }
                _ => panic!("{context}: expected a connection error at connect, got {err:?}"),
            }
            assert!(err.is_transient(), "{context}: {err:?}");
            assert_names_the_refusal(&err.message, port, &context);
        }
        eprintln!("{security:?}: {RUNS} refusals in {:?}", started.elapsed());
    }
}

#[test]
fn a_connect_that_is_never_answered_times_out_at_connect() {
    let silent = SynDroppingPort::start();
    let mut server: Server = loopback(silent.port());
    server.timeouts.connect = Duration::from_millis(600);
    let _ = mailer(); // loaded before the clock starts
    for run in 1..=3 {
        let started = Instant::now();
        let err = mailer()
            .send(&server, &message(&["bob@example.test"]))
            .expect_err("the port drops SYNs");
        let elapsed = started.elapsed();
        let ErrorKind::Timeout(failure) = &err.kind else {
            panic!("run {run}: expected a timeout, got {err:?}")
        };
        assert_eq!(failure.stage, Stage::Connect, "run {run}: {err:?}");
        assert!(err.is_transient(), "run {run}: {err:?}");
        assert!(
            failure.detail.contains(&format!(
                "connecting to {} took longer than 600 ms",
                silent.address()
            )),
            "run {run}: {}",
            failure.detail
        );
        assert!(
            elapsed >= Duration::from_millis(600),
            "run {run}: fired early: {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_secs(3),
            "run {run}: fired late: {elapsed:?}"
        );
    }
}

#[test]
fn the_cli_reports_a_refusal_and_never_says_connected() {
    let port = closed_port();
    // Plaintext, the default (STARTTLS required), and implicit TLS, in turn.
    let urls = [
        format!("smtp://127.0.0.1:{port}?security=plaintext-insecure"),
        format!("smtp://127.0.0.1:{port}"),
        format!("smtps://127.0.0.1:{port}"),
    ];
    for run in 1..=RUNS {
        let url = &urls[run % urls.len()];
        let context = format!("run {run} of {RUNS}, {url}");
        let out = run_cli(
            &[
                "send",
                "--server",
                url,
                "--from",
                "a@example.org",
                "--to",
                "b@example.org",
                "--text",
                "y",
                "--output",
                "json",
                "-v",
            ],
            None,
            &[],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(75),
            "{context}: a refusal is temporary (EX_TEMPFAIL)\nstdout: {stdout}\nstderr: {stderr}"
        );
        assert!(
            !stderr.contains("connected"),
            "{context}: the trace says connected:\n{stderr}"
        );
        let receipt: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{context}: stdout is not JSON ({e}): {stdout}"));
        let error = &receipt["error"];
        assert_eq!(error["kind"], "connection", "{context}: {receipt}");
        assert_eq!(error["stage"], "connect", "{context}: {receipt}");
        assert_eq!(error["transient"], true, "{context}: {receipt}");
        assert_names_the_refusal(error["message"].as_str().unwrap_or(""), port, &context);
    }
}

#[test]
fn a_worker_fails_over_past_a_refusing_relay_and_names_the_refusal() {
    let (first, second) = two_closed_ports();
    let queue = SqliteQueue::new();
    let ids = message_ids("refused", RUNS);
    let messages: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| message_json(id, &[&format!("r{n}@example.org")]))
        .collect();
    enqueue(&queue.spec(), &messages);
    let finished = Worker::spawn(
        &queue.spec(),
        &[smtp_url(first), smtp_url(second)],
        &["--exit-when-empty", "--max-attempts", "1"],
    )
    .wait(Duration::from_secs(180));
    finished.assert_success();
    assert_eq!(
        finished.count("failed"),
        RUNS as u64,
        "{}",
        finished.output()
    );
    let failed = finished.events_named("failed");
    assert_eq!(failed.len(), RUNS, "{}", finished.output());
    for event in failed {
        // The last relay tried names the failure: the second one, so the
        // first one's refusal moved the message on.
        let reply = event["reply"].as_str().unwrap_or("");
        assert_names_the_refusal(reply, second, &format!("event {event}"));
    }
}

#[test]
fn serve_answers_503_naming_the_refusal_every_time() {
    let port = closed_port();
    let port_text = port.to_string();
    let message = json!({"from": "a@example.test", "to": "b@example.test", "text": "hi"});
    let body = message.to_string();
    for security in ["plaintext-insecure", "starttls-required"] {
        let serve = ServeProcess::start(
            &[format!("tcp://127.0.0.1:{port}")],
            &[
                ("smtp_host", "mail.example.test"),
                ("smtp_connect_address", "127.0.0.1"),
                ("smtp_port", &port_text),
                ("smtp_security", security),
            ],
        );
        for run in 1..=RUNS {
            let context = format!("{security}, POST {run} of {RUNS}");
            let answer = post_send(serve.address(), Some(API_KEY), body.as_bytes());
            let text = String::from_utf8_lossy(&answer.body).into_owned();
            assert_eq!(answer.status, 503, "{context}: {text}");
            assert_eq!(answer.header("retry-after"), Some("60"), "{context}");
            let error = &answer.json()["error"];
            assert_eq!(error["kind"], "connection", "{context}: {text}");
            assert_eq!(error["retry"], "transient", "{context}: {text}");
            assert_names_the_refusal(error["message"].as_str().unwrap_or(""), port, &context);
        }
    }
}
