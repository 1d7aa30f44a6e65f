//! The durable queue end to end: `smtp-mailer enqueue`, `smtp-mailer worker`
//! and `smtp-mailer suppression` as processes, on a SQLite queue, against
//! aiosmtpd on loopback. Each test has its own server and queue, and asserts
//! what the server received (by Message-ID), what it was offered (its RCPT
//! log), and over how many connections.

use std::collections::BTreeSet;
use std::fs;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions};
use smtp_mailer_tests::worker::{
    arrivals_by_id, assert_each_once, check_enqueued, closed_port, enqueue, message_ids,
    message_json, prometheus_samples, received_id, run_cli_for, smtp_url, suppression,
    suppression_list, Finished, SqliteQueue, Worker,
};

/// How long a worker with `--exit-when-empty` may take; the machine is slow
/// and shared.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// How long one message may take to arrive through a running worker.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// Enqueues `messages`, runs a worker with `--exit-when-empty` and `args`
/// against `server` until it exits, and asserts that it succeeded.
fn drain(queue: &SqliteQueue, server: &Aiosmtpd, messages: &[Value], args: &[&str]) -> Finished {
    enqueue(&queue.spec(), messages);
    run_until_empty(queue, &[smtp_url(server.port())], args)
}

/// Runs a worker with `--exit-when-empty` and `args` on `queue` against
/// `servers` until it exits, and asserts that it succeeded.
fn run_until_empty(queue: &SqliteQueue, servers: &[String], args: &[&str]) -> Finished {
    let mut all = vec!["--exit-when-empty"];
    all.extend_from_slice(args);
    let finished = Worker::spawn(&queue.spec(), servers, &all).wait(RUN_TIMEOUT);
    finished.assert_success();
    finished
}

/// Messages with the ids `ids`, message `n` to the one recipient `to(n)`.
fn messages_to(ids: &[String], to: impl Fn(usize) -> String) -> Vec<Value> {
    ids.iter()
        .enumerate()
        .map(|(n, id)| message_json(id, &[&to(n)]))
        .collect()
}

/// Starts a worker with one session and `--idle-timeout idle_timeout`, then
/// sends it two messages tagged `tag`, to `to[0]` and `to[1]`, 2.5 s apart,
/// each awaited at the server; returns the worker, still running, and the ids.
fn two_messages_apart(
    queue: &SqliteQueue,
    server: &Aiosmtpd,
    tag: &str,
    idle_timeout: &str,
    to: [&str; 2],
) -> (Worker, Vec<String>) {
    let mut worker = Worker::spawn(
        &queue.spec(),
        &[smtp_url(server.port())],
        &["--sessions", "1", "--idle-timeout", idle_timeout],
    );
    let ids = message_ids(tag, 2);
    enqueue(&queue.spec(), &[message_json(&ids[0], &[to[0]])]);
    server.wait_for(1, ARRIVAL_TIMEOUT);
    thread::sleep(Duration::from_millis(2500));
    worker.assert_running();
    enqueue(&queue.spec(), &[message_json(&ids[1], &[to[1]])]);
    server.wait_for(2, ARRIVAL_TIMEOUT);
    (worker, ids)
}

/// How many times the server was offered `address` in RCPT, and the codes.
fn offers(server: &Aiosmtpd, address: &str) -> Vec<u16> {
    server
        .rcpt_log()
        .into_iter()
        .filter(|r| r.address.eq_ignore_ascii_case(address))
        .map(|r| r.code)
        .collect()
}

#[test]
fn pool_reuses_a_few_connections_for_many_messages() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let ids = message_ids("pool", 200);
    let messages = messages_to(&ids, |n| format!("r{n}@example.org"));
    // One JSON array on stdin this time (the other tests send JSON lines).
    let out = run_cli_for(
        &["enqueue", "--queue", &queue.spec()],
        Value::Array(messages.clone()).to_string().as_bytes(),
        Duration::from_secs(120),
    );
    check_enqueued(&out, &messages);

    let finished = run_until_empty(
        &queue,
        &[smtp_url(server.port())],
        &["--sessions", "4", "--messages-per-connection", "100"],
    );
    assert_eq!(finished.count("delivered"), 200, "{}", finished.output());

    let received = server.messages();
    assert_each_once(&received, &ids);
    let connections = server.connections();
    let used: BTreeSet<u64> = received.iter().map(|m| m.connection).collect();
    assert!(
        connections <= 8,
        "4 sessions of up to 100 messages each should need at most 8 connections, \
         the server accepted {connections}"
    );
    assert!(
        received.len() as f64 / used.len() as f64 > 1.0,
        "the pool should carry more than one message per connection: {} messages over {} \
         connections",
        received.len(),
        used.len()
    );
}

#[test]
fn connection_closed_by_the_server_while_idle_is_replaced() {
    let server = Aiosmtpd::start_with(AiosmtpdOptions {
        idle_timeout: Some(Duration::from_secs(1)),
        ..Default::default()
    });
    let queue = SqliteQueue::new();
    // Between the two, the server says 421 and closes the pooled connection
    // after 1 s; the worker still holds it for up to 30 s.
    let (worker, ids) = two_messages_apart(
        &queue,
        &server,
        "idle",
        "30",
        ["idle1@example.org", "idle2@example.org"],
    );
    // Room for a duplicate to show up.
    thread::sleep(Duration::from_secs(1));
    let connections = server.connections();
    let finished = worker.terminate(Duration::from_secs(20));

    let received = server.messages();
    assert_each_once(&received, &ids);
    assert_eq!(
        connections,
        2,
        "one connection per message expected (the first closed by the server while idle); {}",
        finished.output()
    );
    assert_ne!(received[0].connection, received[1].connection);
    // Replaced at once, not deferred: nothing had been sent.
    assert!(
        finished.events_named("deferred").is_empty(),
        "the closed connection was not replaced transparently; {}",
        finished.output()
    );
    let delivered = finished.events_named("delivered");
    assert_eq!(delivered.len(), 2, "{}", finished.output());
    assert!(
        delivered.iter().all(|e| e["attempt"] == 1),
        "{}",
        finished.output()
    );
}

#[test]
fn a_421_mid_batch_defers_only_that_message_and_it_is_retried() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let ids = message_ids("421", 20);
    let flaky = "once421.a@example.org";
    let messages = messages_to(&ids, |n| {
        if n == 9 {
            flaky.to_owned()
        } else {
            format!("n{n}@example.org")
        }
    });
    // One session, so the 421 closes the connection that the rest of the
    // batch was going over.
    let finished = drain(
        &queue,
        &server,
        &messages,
        &["--sessions", "1", "--retry-base-ms", "100"],
    );

    assert_each_once(&server.messages(), &ids);
    assert_eq!(
        offers(&server, flaky),
        [421, 250],
        "the once421 recipient should be offered twice: 421, then 250 on a new connection"
    );
    assert!(
        finished.has_event_for("deferred", flaky),
        "no \"deferred\" event for {flaky}; {}",
        finished.output()
    );
    assert_eq!(finished.count("delivered"), 20, "{}", finished.output());
    assert!(finished.count("deferred") >= 1, "{}", finished.output());
}

#[test]
fn a_550_bounces_once_and_suppresses_the_address() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let refused = "refuse.b@example.org";
    let ids = message_ids("550", 2);

    let first = drain(
        &queue,
        &server,
        &[message_json(&ids[0], &["ok1@example.org", refused])],
        &["--retry-base-ms", "100"],
    );
    let received = server.messages();
    assert_each_once(&received, &ids[..1]);
    assert_eq!(received[0].rcpt_to, ["ok1@example.org"]);
    assert_eq!(
        offers(&server, refused),
        [550],
        "a permanently refused recipient must not be retried"
    );
    assert!(
        first.has_event_for("bounced", refused),
        "no \"bounced\" event for {refused}; {}",
        first.output()
    );
    assert!(
        first
            .events_named("bounced")
            .iter()
            .any(|e| e["reply"].as_str().unwrap_or_default().contains("550")),
        "the \"bounced\" event should carry the 550 reply; {}",
        first.output()
    );
    assert_eq!(
        (first.count("delivered"), first.count("bounced")),
        (1, 1),
        "{}",
        first.output()
    );

    let list = suppression_list(&queue.spec());
    let entry = list.iter().find(|(address, _)| address == refused);
    let Some((_, reason)) = entry else {
        panic!("{refused} should be suppressed after its 550; the list: {list:?}");
    };
    assert!(
        reason.contains("550") || reason.contains("5.1.1"),
        "the reason should be the server's reply, got {reason:?}"
    );

    let second = drain(
        &queue,
        &server,
        &[message_json(&ids[1], &[refused, "ok2@example.org"])],
        &["--retry-base-ms", "100"],
    );
    let received = server.messages();
    assert_each_once(&received, &ids);
    assert_eq!(received[1].rcpt_to, ["ok2@example.org"]);
    assert_eq!(
        offers(&server, refused).len(),
        1,
        "a suppressed address must never be offered to the server again"
    );
    assert!(
        second.has_event_for("suppressed", refused),
        "no \"suppressed\" event for {refused}; {}",
        second.output()
    );
    assert_eq!(
        (second.count("delivered"), second.count("suppressed")),
        (1, 1),
        "{}",
        second.output()
    );

    suppression(&queue.spec(), &["remove", refused]);
    let list = suppression_list(&queue.spec());
    assert!(
        list.iter().all(|(address, _)| address != refused),
        "{refused} is still listed after remove: {list:?}"
    );
    suppression(
        &queue.spec(),
        &["add", "x@y.example", "--reason", "unsubscribed"],
    );
    suppression(&queue.spec(), &["add", "z@y.example"]);
    let list = suppression_list(&queue.spec());
    for address in ["x@y.example", "z@y.example"] {
        assert!(
            list.contains(&(address.to_owned(), "unsubscribed".to_owned())),
            "{address} should be listed with the reason \"unsubscribed\": {list:?}"
        );
    }
    // Not an address: refused, and the list is unchanged.
    let out = run_cli_for(
        &[
            "suppression",
            "add",
            "not an address",
            "--queue",
            &queue.spec(),
        ],
        b"",
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an address"));
    assert_eq!(suppression_list(&queue.spec()), list);
}

#[test]
fn a_450_retries_only_the_deferred_recipient() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let busy = "once450.c@example.org";
    let ok = "ok3@example.org";
    let ids = message_ids("450", 1);
    let finished = drain(
        &queue,
        &server,
        &[message_json(&ids[0], &[busy, ok])],
        &["--retry-base-ms", "100"],
    );

    let received = server.messages();
    assert_eq!(
        received.len(),
        2,
        "two deliveries expected (ok3 at once, once450.c on retry): {received:#?}"
    );
    let to: Vec<&[String]> = received.iter().map(|m| m.rcpt_to.as_slice()).collect();
    assert_eq!(to, [&[ok.to_owned()][..], &[busy.to_owned()][..]]);
    assert_eq!(received_id(&received[0]), ids[0]);
    assert_eq!(
        received_id(&received[1]),
        ids[0],
        "the retry must keep the Message-ID"
    );
    assert_eq!(
        received[0].data, received[1].data,
        "the retry must send the same content"
    );
    assert_eq!(
        offers(&server, ok),
        [250],
        "only the recipient that failed may be retried"
    );
    assert_eq!(offers(&server, busy), [450, 250]);
    assert!(
        finished.has_event_for("deferred", busy),
        "no \"deferred\" event for {busy}; {}",
        finished.output()
    );
    assert_eq!(finished.count("delivered"), 2, "{}", finished.output());
}

/// (first, last) arrival time of the messages that went to `domain`.
fn span(received: &[smtp_mailer_tests::servers::Received], domain: &str) -> (f64, f64) {
    let times: Vec<f64> = received
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r.ends_with(domain)))
        .map(|m| m.received_at)
        .collect();
    assert!(!times.is_empty(), "nothing arrived for {domain}");
    let first = times.iter().copied().fold(f64::INFINITY, f64::min);
    let last = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (first, last)
}

#[test]
fn relay_rate_spaces_messages() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let ids = message_ids("rate", 10);
    let messages = messages_to(&ids, |n| format!("r{n}@example.org"));
    let finished = drain(
        &queue,
        &server,
        &messages,
        &["--sessions", "4", "--rate", "5/s"],
    );
    let received = server.messages();
    assert_each_once(&received, &ids);
    let (first, last) = span(&received, "@example.org");
    // Burst 1 at 5/s: the 10th message starts 9 × 200 ms after the first.
    assert!(
        last - first >= 1.5,
        "10 messages at 5/s should span at least 1.5 s, they took {:.3} s; {}",
        last - first,
        finished.output()
    );
}

#[test]
fn domain_rate_slows_only_that_domain() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let ids = message_ids("domain-rate", 12);
    // Alternating, so that a limit applied to everything would delay the
    // fast domain too.
    let messages = messages_to(&ids, |n| {
        let domain = if n % 2 == 0 {
            "slow.example"
        } else {
            "fast.example"
        };
        format!("r{n}@{domain}")
    });
    let finished = drain(
        &queue,
        &server,
        &messages,
        &["--sessions", "4", "--domain-rate", "slow.example=2/s"],
    );
    let received = server.messages();
    assert_each_once(&received, &ids);
    let (slow_first, slow_last) = span(&received, "@slow.example");
    let (_, fast_last) = span(&received, "@fast.example");
    // Burst 1 at 2/s: the 6th starts 5 × 500 ms after the first.
    assert!(
        slow_last - slow_first >= 2.0,
        "6 messages at 2/s should span at least 2 s, they took {:.3} s; {}",
        slow_last - slow_first,
        finished.output()
    );
    assert!(
        fast_last < slow_last,
        "the fast domain should be done before the slow one: fast last at +{:.3} s, \
         slow last at +{:.3} s",
        fast_last - slow_first,
        slow_last - slow_first
    );
}

#[test]
fn failover_skips_a_relay_that_refuses_connections() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let ids = message_ids("failover", 5);
    let messages = messages_to(&ids, |n| format!("f{n}@example.org"));
    enqueue(&queue.spec(), &messages);
    let dead = closed_port();
    let finished = run_until_empty(
        &queue,
        &[smtp_url(dead), smtp_url(server.port())],
        &["--retry-base-ms", "100"],
    );

    assert_each_once(&server.messages(), &ids);
    assert_eq!(finished.count("delivered"), 5, "{}", finished.output());
    let live = format!("127.0.0.1:{}", server.port());
    let delivered = finished.events_named("delivered");
    assert!(
        !delivered.is_empty() && delivered.iter().all(|e| e["relay"] == live.as_str()),
        "every \"delivered\" event should name the relay {live}; {}",
        finished.output()
    );
}

#[test]
fn metrics_file_counts_recipients_and_connections() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let metrics_dir = tempfile::tempdir().expect("a temporary directory");
    let metrics = metrics_dir.path().join("metrics.prom");
    let ids = message_ids("metrics", 3);
    let messages = [
        message_json(&ids[0], &["m1@example.org"]),
        message_json(&ids[1], &["m2@example.org", "m3@example.org"]),
        message_json(
            &ids[2],
            &["m4@example.org", "m5@example.org", "m6@example.org"],
        ),
    ];
    let finished = drain(
        &queue,
        &server,
        &messages,
        &["--metrics-file", &metrics.display().to_string()],
    );
    assert_each_once(&server.messages(), &ids);

    let text = fs::read_to_string(&metrics)
        .unwrap_or_else(|e| panic!("{}: {e}; {}", metrics.display(), finished.output()));
    let samples = prometheus_samples(&text);
    let sample = |series: &str| -> f64 {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("{series} is missing from the metrics file:\n{text}"))
    };
    assert_eq!(
        sample(r#"smtp_mailer_recipients_total{outcome="delivered"}"#),
        6.0,
        "{text}"
    );
    for outcome in ["deferred", "bounced", "suppressed", "failed"] {
        assert_eq!(
            sample(&format!(
                r#"smtp_mailer_recipients_total{{outcome="{outcome}"}}"#
            )),
            0.0,
            "{text}"
        );
    }
    assert!(
        sample("smtp_mailer_connections_opened_total") >= 1.0,
        "{text}"
    );
    let count = sample("smtp_mailer_send_duration_seconds_count");
    assert!(count >= 1.0, "{text}");
    assert!(
        sample("smtp_mailer_send_duration_seconds_sum") >= 0.0,
        "{text}"
    );
    assert_eq!(
        sample(r#"smtp_mailer_send_duration_seconds_bucket{le="+Inf"}"#),
        count,
        "the +Inf bucket holds every observation:\n{text}"
    );
    for state in ["ready", "delayed", "in_flight"] {
        assert_eq!(
            sample(&format!(r#"smtp_mailer_queue_messages{{state="{state}"}}"#)),
            0.0,
            "the queue is empty at exit:\n{text}"
        );
    }
}

#[test]
fn enqueue_rejects_a_batch_with_one_bad_message() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("batch.json");
    let ids = message_ids("bad", 3);
    let mut bad = message_json(&ids[1], &["ok@example.org"]);
    bad["to"] = json!("not an address");
    let batch = json!([
        message_json(&ids[0], &["ok@example.org"]),
        bad,
        message_json(&ids[2], &["ok@example.org"]),
    ]);
    fs::write(&file, batch.to_string()).expect("write the batch");

    let out = run_cli_for(
        &[
            "enqueue",
            "--queue",
            &queue.spec(),
            &file.display().to_string(),
        ],
        b"",
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(65),
        "an invalid message is bad input (65); stderr:\n{stderr}"
    );
    let lower = stderr.to_lowercase();
    assert!(
        ["message 1", "message #1", "[1]", "index 1", "#1"]
            .iter()
            .any(|s| lower.contains(s)),
        "stderr should name message index 1: {stderr}"
    );
    assert!(
        lower.contains("to[")
            || lower.contains("\"to\"")
            || lower.contains("to:")
            || lower.contains("`to`")
            || lower.contains(" to "),
        "stderr should name the field `to`: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing was enqueued, so no id may be printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let finished = run_until_empty(&queue, &[smtp_url(server.port())], &[]);
    for outcome in ["delivered", "deferred", "bounced", "suppressed", "failed"] {
        assert_eq!(finished.count(outcome), 0, "{}", finished.output());
    }
    thread::sleep(Duration::from_millis(200));
    let received = server.messages();
    assert!(
        received.is_empty(),
        "nothing may be sent from a rejected batch: {:?}",
        arrivals_by_id(&received)
    );
}

/// A message without `messageId` gets one at enqueue, and it is the one that
/// arrives and that the events name.
#[test]
fn enqueue_assigns_a_stable_message_id() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let mut message = message_json("unused@volume.test", &["nid@example.org"]);
    message
        .as_object_mut()
        .expect("an object")
        .remove("messageId");
    let lines = enqueue(&queue.spec(), &[message]);
    let (_, assigned) = &lines[0];
    assert!(
        assigned.contains('@') && !assigned.contains('<'),
        "a Message-ID without angle brackets expected, got {assigned:?}"
    );
    let finished = run_until_empty(&queue, &[smtp_url(server.port())], &[]);
    assert_each_once(&server.messages(), std::slice::from_ref(&assigned));
    assert!(
        names_message(&finished.events_named("delivered"), assigned),
        "the \"delivered\" event should carry the assigned Message-ID; {}",
        finished.output()
    );
}

/// Whether one of `events` names the Message-ID `id`.
fn names_message(events: &[&Value], id: &str) -> bool {
    events.iter().any(|e| {
        e["message_id"]
            .as_str()
            .is_some_and(|m| m.trim_start_matches('<').trim_end_matches('>') == id)
    })
}

#[test]
fn messages_per_connection_caps_each_connection() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let ids = message_ids("cap", 50);
    let messages = messages_to(&ids, |n| format!("c{n}@example.org"));
    drain(
        &queue,
        &server,
        &messages,
        &["--sessions", "1", "--messages-per-connection", "10"],
    );
    let received = server.messages();
    assert_each_once(&received, &ids);
    let mut per_connection = std::collections::BTreeMap::<u64, usize>::new();
    for m in &received {
        *per_connection.entry(m.connection).or_default() += 1;
    }
    assert_eq!(
        per_connection.values().copied().collect::<Vec<_>>(),
        vec![10; 5],
        "50 messages over connections of 10 each: {per_connection:?}"
    );
    assert_eq!(server.connections(), 5);
}

#[test]
fn the_worker_closes_idle_connections_itself() {
    // The server never closes an idle connection: a second connection can
    // only come from the worker's own idle timeout.
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let (worker, ids) = two_messages_apart(
        &queue,
        &server,
        "expire",
        "1",
        ["e1@example.org", "e2@example.org"],
    );
    let finished = worker.terminate(Duration::from_secs(20));
    let received = server.messages();
    assert_each_once(&received, &ids);
    assert_eq!(server.connections(), 2, "{}", finished.output());
    assert!(
        finished.events_named("deferred").is_empty(),
        "{}",
        finished.output()
    );
}

#[test]
fn metrics_over_http_progress_on_request_and_a_clean_stop() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut worker = Worker::spawn(
        &queue.spec(),
        &[smtp_url(server.port())],
        &["--metrics-listen", &listen, "--progress", "always"],
    );
    let ids = message_ids("http", 3);
    let messages = messages_to(&ids, |n| format!("h{n}@example.org"));
    enqueue(&queue.spec(), &messages);
    server.wait_for(3, ARRIVAL_TIMEOUT);
    worker.assert_running();

    let scrape = || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&listen).expect("the metrics endpoint");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        response
    };
    // The counters are updated right after the server's reply: give them
    // a moment.
    let mut response = scrape();
    for _ in 0..50 {
        if response.contains("smtp_mailer_recipients_total{outcome=\"delivered\"} 3") {
            break;
        }
        thread::sleep(Duration::from_millis(100));
        response = scrape();
    }
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let (_, body) = response.split_once("\r\n\r\n").expect("a body");
    let samples = prometheus_samples(body);
    assert_eq!(
        samples.get("smtp_mailer_recipients_total{outcome=\"delivered\"}"),
        Some(&3.0),
        "{body}"
    );
    assert!(
        samples["smtp_mailer_connections_opened_total"] >= 1.0,
        "{body}"
    );
    assert_eq!(
        samples.get("smtp_mailer_send_duration_seconds_count"),
        Some(&3.0),
        "{body}"
    );

    // SIGTERM: the worker finishes what it holds and exits 0 with its
    // summary; on request its progress line went to stderr.
    let finished = worker.terminate(Duration::from_secs(20));
    finished.assert_success();
    assert_eq!(finished.count("delivered"), 3, "{}", finished.output());
    assert!(
        finished.stderr.contains("delivered 3"),
        "no progress line: {}",
        finished.output()
    );
}

#[test]
fn the_worker_signs_every_message_with_dkim() {
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (key, record) = smtp_mailer_tests::dkim::keygen(dir.path(), "ed25519", "q1", "example.org");
    let ids = message_ids("dkim", 3);
    let messages: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| message_json(id, &[&format!("d{n}@example.org")]))
        .collect();
    let dkim = [
        "--dkim-key",
        key.as_str(),
        "--dkim-selector",
        "q1",
        "--dkim-domain",
        "example.org",
    ];
    drain(&queue, &server, &messages, &dkim);
    let received = server.messages();
    assert_each_once(&received, &ids);
    for m in &received {
        assert!(
            smtp_mailer_tests::dkim::dkimpy(&m.data, &record),
            "dkimpy does not verify {}:\n{}",
            received_id(m),
            String::from_utf8_lossy(&m.data)
        );
    }

    // A bad key stops the worker at start: nothing is claimed or sent.
    let bad = dir.path().join("bad.pem");
    fs::write(&bad, "not a key").expect("write the bad key");
    enqueue(
        &queue.spec(),
        &[message_json("dkim-bad@volume.test", &["d9@example.org"])],
    );
    let finished = Worker::spawn(
        &queue.spec(),
        &[smtp_url(server.port())],
        &[
            "--exit-when-empty",
            "--dkim-key",
            bad.to_str().expect("UTF-8"),
            "--dkim-selector",
            "q1",
            "--dkim-domain",
            "example.org",
        ],
    )
    .wait(RUN_TIMEOUT);
    assert_eq!(finished.status.code(), Some(65), "{}", finished.output());
    assert!(
        finished.stderr.contains("dkim.private-key"),
        "{}",
        finished.output()
    );
    assert_eq!(server.messages().len(), 3, "nothing more may be sent");
}

#[test]
fn a_partial_retry_streams_a_large_attachment_again() {
    // 20 MiB through a 16 MiB sandbox: the retry to the one recipient that
    // was busy must stream the file again, as the first send did, and
    // carry the same message to that recipient only.
    let server = Aiosmtpd::start();
    let queue = SqliteQueue::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (file, hash) = smtp_mailer_tests::large::random_file(dir.path(), "big.bin", 20 << 20);
    let busy = "once450.big@example.org";
    let ok = "okbig@example.org";
    let id = "big-partial@volume.test";
    let message = json!({
        "from": "Sender <sender@example.test>",
        "to": [busy, ok],
        "subject": "A large attachment",
        "text": "See the file.",
        "attachments": [{"path": file.to_str().expect("UTF-8")}],
        "messageId": id,
    });
    drain(
        &queue,
        &server,
        &[message],
        &["--retry-base-ms", "100", "--memory-limit", "16"],
    );
    let received = server.messages();
    let to: Vec<&[String]> = received.iter().map(|m| m.rcpt_to.as_slice()).collect();
    assert_eq!(to, [&[ok.to_owned()][..], &[busy.to_owned()][..]]);
    for m in &received {
        assert_eq!(received_id(m), id);
        let parsed = smtp_mailer_tests::support::parse(&m.data);
        let part = parsed.attachment(0).expect("the attachment");
        assert_eq!(
            smtp_mailer_tests::large::sha256(part.contents()),
            hash,
            "the attachment arrived changed"
        );
    }
    assert_eq!(
        offers(&server, ok),
        [250],
        "only the busy recipient may be retried"
    );
    assert_eq!(offers(&server, busy), [450, 250]);
}
