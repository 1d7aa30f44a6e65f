//! Rate limits hold for all the workers of a queue together, not per
//! process: two workers with `--rate 5/s` on one SQLite file, and on one
//! Redis server, deliver no faster than one worker would.

use std::time::Duration;

use serde_json::Value;
use smtp_mailer_tests::servers::{Aiosmtpd, Redis};
use smtp_mailer_tests::worker::{
    assert_each_once, enqueue, message_ids, message_json, smtp_url, SqliteQueue, Worker,
};

/// Messages per test: 11 intervals of 200 ms at 5/s.
const MESSAGES: usize = 12;

/// Runs two draining workers with `--rate 5/s` on `queue` and returns the
/// span of the arrival times, in seconds.
fn two_workers_span(queue: &str, server: &Aiosmtpd, tag: &str) -> f64 {
    let ids = message_ids(tag, MESSAGES);
    let messages: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| message_json(id, &[&format!("s{n}@example.org")]))
        .collect();
    enqueue(queue, &messages);
    let relay = [smtp_url(server.port())];
    let workers: Vec<Worker> = ["a", "b"]
        .iter()
        .map(|name| {
            Worker::spawn(
                queue,
                &relay,
                &[
                    "--consumer",
                    name,
                    "--sessions",
                    "2",
                    "--rate",
                    "5/s",
                    "--exit-when-empty",
                ],
            )
        })
        .collect();
    let mut delivered = 0;
    for worker in workers {
        let finished = worker.wait(Duration::from_secs(180));
        finished.assert_success();
        delivered += finished.count("delivered");
    }
    assert_eq!(delivered, MESSAGES as u64);
    let received = server.messages();
    assert_each_once(&received, &ids);
    let times: Vec<f64> = received.iter().map(|m| m.received_at).collect();
    let first = times.iter().copied().fold(f64::INFINITY, f64::min);
    let last = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    last - first
}

/// Two workers each limited to 5/s on their own would finish in about
/// 1.1 s; sharing the limit, the 12th message starts 2.2 s after the first.
fn assert_shared(span: f64, queue: &str) {
    assert!(
        span >= 1.9,
        "two workers on {queue} at --rate 5/s sent {MESSAGES} messages in {span:.3} s: \
         the limit was not shared (expected at least 1.9 s)"
    );
}

#[test]
fn a_rate_limit_holds_across_workers_on_one_sqlite_file() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let span = two_workers_span(&queue.spec(), &server, "shared-sqlite");
    assert_shared(span, "SQLite");
}

#[test]
fn a_rate_limit_holds_across_workers_on_one_redis() {
    let server = Aiosmtpd::start();
    let redis = Redis::start();
    let span = two_workers_span(&redis.address(), &server, "shared-redis");
    assert_shared(span, "Redis");
}
