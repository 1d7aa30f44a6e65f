//! Queue throughput: 2,000 messages enqueued to a SQLite queue, then drained
//! by `smtp-mailer worker --exit-when-empty` with 1 and with 8 sessions,
//! against aiosmtpd on loopback. Prints one table; run with
//! `cargo bench -p smtp-mailer-tests --bench worker` after
//! `scripts/install-test-tools.sh` and a release build of the CLI.
//!
//! The time is the worker's whole run (start, drain, exit), not the enqueue.
//! aiosmtpd is one Python process, so it is likely the bottleneck with many
//! sessions; the rows compare the worker's pool, not absolute speed.

use std::time::{Duration, Instant};

use serde_json::Value;
use smtp_mailer_tests::servers::Aiosmtpd;
use smtp_mailer_tests::worker::{
    arrivals_by_id, enqueue, message_ids, message_json, smtp_url, SqliteQueue, Worker,
};

const MESSAGES: usize = 2000;

struct Row {
    sessions: usize,
    messages: usize,
    seconds: f64,
    connections: u64,
    /// The worker process's CPU time (user and system).
    cpu_seconds: f64,
}

/// CPU time of the children waited for so far (user and system).
fn children_cpu_seconds() -> f64 {
    // SAFETY: `usage` is plain data that getrusage fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn run(sessions: usize) -> Row {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let ids = message_ids(&format!("bench-{sessions}"), MESSAGES);
    let messages: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| message_json(id, &[&format!("b{n}@example.org")]))
        .collect();
    enqueue(&queue.spec(), &messages);

    // Only the worker ends between the two readings: aiosmtpd runs on.
    let cpu_before = children_cpu_seconds();
    let started = Instant::now();
    let finished = Worker::spawn(
        &queue.spec(),
        &[smtp_url(server.port())],
        &["--exit-when-empty", "--sessions", &sessions.to_string()],
    )
    .wait(Duration::from_secs(600));
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = children_cpu_seconds() - cpu_before;
    finished.assert_success();

    let received = server.messages();
    let distinct = arrivals_by_id(&received).len();
    assert_eq!(
        distinct, MESSAGES,
        "{sessions} session(s): {distinct} of {MESSAGES} messages arrived"
    );
    Row {
        sessions,
        messages: received.len(),
        seconds,
        connections: server.connections(),
        cpu_seconds,
    }
}

fn main() {
    let rows: Vec<Row> = [1, 8].into_iter().map(run).collect();
    println!("worker throughput: {MESSAGES} messages from a SQLite queue to aiosmtpd on loopback");
    println!(
        "{:>8}  {:>8}  {:>8}  {:>10}  {:>11}  {:>16}",
        "sessions", "messages", "seconds", "messages/s", "connections", "worker CPU ms/msg"
    );
    println!(
        "{:-<8}  {:-<8}  {:-<8}  {:-<10}  {:-<11}  {:-<16}",
        "", "", "", "", "", ""
    );
    for row in rows {
        println!(
            "{:>8}  {:>8}  {:>8.2}  {:>10.0}  {:>11}  {:>16.2}",
            row.sessions,
            row.messages,
            row.seconds,
            row.messages as f64 / row.seconds,
            row.connections,
            row.cpu_seconds * 1000.0 / row.messages as f64
        );
    }
}
