//! The durable queue survives a worker killed mid-run (SIGKILL, as a crash):
//! 2,000 messages, a worker killed once 400 arrived, and another worker that
//! drains the rest, including what the dead one had leased. Every message
//! must arrive; a message in flight at the kill may arrive twice (at least
//! once delivery), so duplicates are at most the sessions of the dead worker.
//!
//! Each test prints `crash <queue>: sent N, delivered D, distinct X,
//! duplicated Y` (see it with `--nocapture`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use smtp_mailer_tests::servers::{Aiosmtpd, Redis};
use smtp_mailer_tests::worker::{
    arrivals_by_id, enqueue, message_ids, message_json, smtp_url, wait_until, SqliteQueue, Worker,
};

/// Messages per test.
const TOTAL: usize = 2000;
/// The first worker is killed once this many arrived.
const KILL_AFTER: usize = 400;
/// `--sessions` of each worker: at most this many messages in flight at the
/// kill, so at most this many may arrive twice.
const SESSIONS: usize = 4;
/// How long the first worker may take to send `KILL_AFTER` messages.
const FIRST_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the last worker may take to drain the queue.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

fn batch(tag: &str) -> (Vec<String>, Vec<Value>) {
    let ids = message_ids(tag, TOTAL);
    let messages = ids
        .iter()
        .enumerate()
        .map(|(n, id)| message_json(id, &[&format!("c{n}@example.org")]))
        .collect();
    (ids, messages)
}

/// Waits until `n` messages arrived at `server`, failing early if `worker`
/// exits.
fn wait_for_arrivals(server: &Aiosmtpd, worker: &mut Worker, n: usize) {
    wait_until(
        &format!("{n} messages arrived (the first worker is running)"),
        FIRST_TIMEOUT,
        || {
            worker.assert_running();
            server.message_count() >= n
        },
    );
}

/// Prints the counts line and asserts that every message arrived, nothing
/// else did, and at most `SESSIONS` arrived twice.
fn check_recovery(queue: &str, server: &Aiosmtpd, ids: &[String], at_kill: usize) {
    let received = server.messages();
    let counts: BTreeMap<String, usize> = arrivals_by_id(&received);
    let delivered = received.len();
    let distinct = counts.len();
    let duplicated = delivered - distinct;
    eprintln!(
        "crash {queue}: sent {TOTAL}, delivered {delivered}, distinct {distinct}, \
         duplicated {duplicated} ({at_kill} had arrived at the kill)"
    );
    let missing: Vec<&String> = ids.iter().filter(|id| !counts.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {TOTAL} messages never arrived, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let unexpected: Vec<&String> = counts.keys().filter(|id| !ids.contains(id)).collect();
    assert!(unexpected.is_empty(), "unexpected messages: {unexpected:?}");
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated <= SESSIONS,
        "at most {SESSIONS} messages (those in flight at the kill) may arrive twice; \
         {duplicated} extra arrivals: {twice:?}"
    );
}

#[test]
fn sqlite_queue_survives_a_killed_worker() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let (ids, messages) = batch("crash-sqlite");
    enqueue(&queue.spec(), &messages);
    let relay = [smtp_url(server.port())];
    let sessions = SESSIONS.to_string();

    let mut first = Worker::spawn(
        &queue.spec(),
        &relay,
        &["--sessions", &sessions, "--lease", "3"],
    );
    wait_for_arrivals(&server, &mut first, KILL_AFTER);
    first.kill();
    let at_kill = server.message_count();

    let last = Worker::spawn(
        &queue.spec(),
        &relay,
        &["--sessions", &sessions, "--lease", "3", "--exit-when-empty"],
    )
    .wait(DRAIN_TIMEOUT);
    last.assert_success();
    check_recovery("sqlite", &server, &ids, at_kill);
}

#[test]
fn redis_stream_survives_a_killed_consumer() {
    let server = Aiosmtpd::start();
    let redis = Redis::start();
    let queue = redis.address();
    let (ids, messages) = batch("crash-redis");
    enqueue(&queue, &messages);
    let relay = [smtp_url(server.port())];
    let sessions = SESSIONS.to_string();

    let mut w1 = Worker::spawn(
        &queue,
        &relay,
        &["--consumer", "w1", "--sessions", &sessions, "--lease", "3"],
    );
    let w2 = Worker::spawn(
        &queue,
        &relay,
        &[
            "--consumer",
            "w2",
            "--sessions",
            &sessions,
            "--lease",
            "3",
            "--exit-when-empty",
        ],
    );
    wait_for_arrivals(&server, &mut w1, KILL_AFTER);
    w1.kill();
    let at_kill = server.message_count();

    // w2 exits only once nothing is in flight for any consumer: it must have
    // claimed what w1 held when it died.
    let finished = w2.wait(DRAIN_TIMEOUT);
    finished.assert_success();
    check_recovery("redis", &server, &ids, at_kill);
}

#[test]
fn a_worker_rides_out_a_redis_crash() {
    let server = Aiosmtpd::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let redis = Redis::start_durable(dir.path(), None);
    let port = redis.port();
    let queue = redis.address();
    let (ids, messages) = batch("redis-restart");
    enqueue(&queue, &messages);
    let mut worker = Worker::spawn(
        &queue,
        &[smtp_url(server.port())],
        &["--sessions", &SESSIONS.to_string(), "--lease", "3"],
    );
    wait_for_arrivals(&server, &mut worker, KILL_AFTER);
    redis.kill();
    let at_kill = server.message_count();
    std::thread::sleep(Duration::from_secs(2));
    worker.assert_running();
    // Back on the same port and files: everything it acknowledged is there.
    let _redis = Redis::start_durable(dir.path(), Some(port));
    wait_until(
        &format!("all {TOTAL} messages arrived after Redis came back"),
        DRAIN_TIMEOUT,
        || {
            worker.assert_running();
            arrivals_by_id(&server.messages()).len() >= TOTAL
        },
    );
    let finished = worker.terminate(Duration::from_secs(20));
    assert!(
        finished.events_named("queue-error").len() > 0,
        "the worker should have reported the lost queue: {}",
        finished.output()
    );
    check_recovery("redis restart", &server, &ids, at_kill);
}
