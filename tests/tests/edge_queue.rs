//! No mail lost at the edge: the Spin app (run by `smtp-mailer serve --app`)
//! hands messages to the durable queue on a real redis-server, and
//! `smtp-mailer worker` processes deliver them to aiosmtpd.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use smtp_mailer_tests::serve::{repository_file, request, Answer, ServeProcess, API_KEY};
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions, Redis};
use smtp_mailer_tests::support::parse;
use smtp_mailer_tests::unanswered::closed_port;
use smtp_mailer_tests::worker::{smtp_url, Worker};

const STREAM: &str = "smtp-mailer:queue";
const WAIT: Duration = Duration::from_secs(60);

/// The HTTP app on `relay_port`, with its queue on `redis`.
fn edge(relay_port: u16, redis_port: u16) -> ServeProcess {
    let relay = relay_port.to_string();
    let redis = format!("redis://127.0.0.1:{redis_port}");
    ServeProcess::start_app(
        &repository_file("spin.toml"),
        &[
            ("smtp_host", "mail.example.test"),
            ("smtp_connect_address", "127.0.0.1"),
            ("smtp_port", &relay),
            ("smtp_security", "plaintext-insecure"),
            ("api_key", API_KEY),
            ("redis_address", &redis),
        ],
        &[],
    )
}

fn message(subject: &str, to: &str) -> Value {
    json!({"from": "app@example.test", "to": to, "subject": subject, "text": "Queued at the edge."})
}

fn post(serve: &ServeProcess, path: &str, key: Option<&str>, body: &Value) -> Answer {
    let auth = format!("Bearer {API_KEY}");
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    if let Some(key) = key {
        headers.push(("Idempotency-Key", key));
    }
    request(
        serve.address(),
        "POST",
        path,
        &headers,
        body.to_string().as_bytes(),
    )
}

fn get_status(serve: &ServeProcess, id: &str) -> Answer {
    let auth = format!("Bearer {API_KEY}");
    let path = format!("/messages/{}", id.replace('@', "%40"));
    request(
        serve.address(),
        "GET",
        &path,
        &[("Authorization", auth.as_str())],
        b"",
    )
}

/// The queue ids and Message-IDs of a 202.
fn accepted(answer: &Answer) -> Vec<(String, String)> {
    assert_eq!(
        answer.status,
        202,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["id"].as_str().expect("an id").to_string(),
                m["message_id"].as_str().expect("a Message-ID").to_string(),
            )
        })
        .collect()
}

fn drain(redis: &Redis, relay_port: u16, extra: &[&str]) {
    let mut args = vec!["--exit-when-empty", "--sessions", "4"];
    args.extend_from_slice(extra);
    Worker::spawn(&redis.address(), &[smtp_url(relay_port)], &args)
        .wait(WAIT)
        .assert_success();
}

#[test]
fn a_thousand_messages_from_forty_clients_are_each_delivered() {
    let smtp = Aiosmtpd::start();
    let redis = Redis::start();
    let serve = Arc::new(edge(smtp.port(), redis.port()));
    let clients = 40;
    let per_client = 25;
    let start = Arc::new(Barrier::new(clients));
    let posted: Vec<Vec<(String, String)>> = (0..clients)
        .map(|c| {
            let serve = Arc::clone(&serve);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                (0..per_client)
                    .flat_map(|i| {
                        let to = format!("user{c}-{i}@example.test");
                        accepted(&post(&serve, "/messages", None, &message("load", &to)))
                    })
                    .collect()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("a client"))
        .collect();
    let posted: Vec<(String, String)> = posted.into_iter().flatten().collect();
    assert_eq!(posted.len(), clients * per_client);
    assert_eq!(redis.integer(&["XLEN", STREAM]), 1000);

    // Two workers drain it together.
    let queue = redis.address();
    let args = ["--exit-when-empty", "--sessions", "4"];
    let workers = [
        Worker::spawn(
            &queue,
            &[smtp_url(smtp.port())],
            &[&args[..], &["--consumer", "w1"]].concat(),
        ),
        Worker::spawn(
            &queue,
            &[smtp_url(smtp.port())],
            &[&args[..], &["--consumer", "w2"]].concat(),
        ),
    ];
    for worker in workers {
        worker.wait(Duration::from_secs(300)).assert_success();
    }
    let received = smtp.wait_for(1000, WAIT);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in &received {
        let id = parse(&r.data)
            .message_id()
            .expect("a Message-ID")
            .to_string();
        *seen.entry(id).or_default() += 1;
    }
    for (_, message_id) in &posted {
        assert!(seen.contains_key(message_id), "{message_id} never arrived");
    }
    // Without a crash, nothing is sent twice (the README's bound: at most
    // the messages in flight when a worker dies).
    let duplicated = received.len() - seen.len();
    assert_eq!(duplicated, 0, "{duplicated} duplicates");
    for (id, message_id) in posted.iter().step_by(97) {
        for key in [id.as_str(), message_id.as_str()] {
            let status = get_status(&serve, key);
            assert_eq!(status.status, 200, "{key}");
            let status = status.json();
            assert_eq!(status["state"], "delivered", "{status}");
            assert_eq!(status["recipients"][0]["state"], "delivered", "{status}");
            assert_eq!(status["recipients"][0]["attempts"], 1, "{status}");
        }
    }
}

#[test]
fn one_idempotency_key_enqueues_once_even_when_posted_concurrently() {
    let smtp = Aiosmtpd::start();
    let redis = Redis::start();
    let serve = Arc::new(edge(smtp.port(), redis.port()));
    let body = json!([
        message("once", "ada@example.test"),
        message("once", "alan@example.test")
    ]);
    let first = accepted(&post(&serve, "/messages", Some("order-42"), &body));
    let again = accepted(&post(&serve, "/messages", Some("order-42"), &body));
    assert_eq!(first, again, "the same answer, nothing enqueued again");

    let start = Arc::new(Barrier::new(8));
    let answers: Vec<Vec<(String, String)>> = (0..8)
        .map(|_| {
            let (serve, body, start) = (Arc::clone(&serve), body.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                accepted(&post(&serve, "/messages", Some("order-43"), &body))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("a client"))
        .collect();
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(
        redis.integer(&["XLEN", STREAM]),
        4,
        "two batches of two, once each"
    );

    // The same key with another body: 422, nothing enqueued.
    let other = json!([message("other", "ada@example.test")]);
    let refused = post(&serve, "/messages", Some("order-42"), &other);
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json()["error"]["kind"], "idempotency-key-reused");
    assert_eq!(redis.integer(&["XLEN", STREAM]), 4);

    // POST /send: one send for one key, the same answer twice.
    let send = message("sent once", "grace@example.test");
    let a = post(&serve, "/send", Some("welcome-7"), &send);
    let b = post(&serve, "/send", Some("welcome-7"), &send);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json(), b.json());
    assert_eq!(
        post(
            &serve,
            "/send",
            Some("welcome-7"),
            &message("x", "y@example.test")
        )
        .status,
        422
    );

    drain(&redis, smtp.port(), &[]);
    let received = smtp.wait_for(5, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(smtp.messages().len(), 5, "{:?}", received.len());
    let sent_once = received
        .iter()
        .filter(|r| parse(&r.data).subject() == Some("sent once"))
        .count();
    assert_eq!(sent_once, 1);
}

#[test]
fn a_relay_that_is_down_leaves_the_mail_on_the_queue_until_it_is_back() {
    let relay_port = closed_port();
    let redis = Redis::start();
    let http = edge(relay_port, redis.port());

    // POST /send?fallback=queue: the relay refuses; 202, enqueued.
    let answer = post(
        &http,
        "/send?fallback=queue",
        None,
        &message("fallback", "ada@example.test"),
    );
    let queued = accepted(&answer);
    assert!(answer.json()["reason"]
        .as_str()
        .unwrap_or("")
        .contains("connection refused"));
    // Without the fallback: 503, as before.
    let plain = post(
        &http,
        "/send",
        None,
        &message("no fallback", "ada@example.test"),
    );
    assert_eq!(plain.status, 503);

    // The Redis trigger: the send fails transiently and goes on the queue.
    let relay = relay_port.to_string();
    let redis_address = redis.address();
    let trigger = ServeProcess::start_app(
        &repository_file("spin-redis.toml"),
        &[
            ("smtp_host", "mail.example.test"),
            ("smtp_connect_address", "127.0.0.1"),
            ("smtp_port", &relay),
            ("smtp_security", "plaintext-insecure"),
            ("redis_address", &redis_address),
        ],
        &[],
    );
    let payload = message("from the trigger", "alan@example.test").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis.publish("smtp-mailer.send", payload.as_bytes()) == 0 {
        assert!(Instant::now() < deadline, "the trigger never subscribed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis.integer(&["XLEN", STREAM]) < 2 {
        assert!(
            Instant::now() < deadline,
            "the trigger's message was not enqueued"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(trigger);

    // The relay comes back where it was; the worker delivers both.
    let smtp = Aiosmtpd::start_with(AiosmtpdOptions {
        port: Some(relay_port),
        ..AiosmtpdOptions::default()
    });
    drain(&redis, relay_port, &[]);
    let received = smtp.wait_for(2, WAIT);
    let mut subjects: Vec<String> = received
        .iter()
        .map(|r| parse(&r.data).subject().unwrap_or_default().to_string())
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["fallback", "from the trigger"]);
    let status = get_status(&http, &queued[0].0).json();
    assert_eq!(status["state"], "delivered", "{status}");
}

#[test]
fn redis_stopped_answers_503_enqueues_nothing_and_recovers() {
    let smtp = Aiosmtpd::start();
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start_durable(dir.path(), None);
    let port = redis.port();
    let serve = edge(smtp.port(), port);
    accepted(&post(
        &serve,
        "/messages",
        None,
        &json!([message("before", "ada@example.test")]),
    ));
    redis.kill();

    let batch = json!([
        message("during 1", "ada@example.test"),
        message("during 2", "alan@example.test")
    ]);
    let answer = post(&serve, "/messages", None, &batch);
    assert_eq!(
        answer.status,
        503,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.header("retry-after"), Some("60"));
    assert_eq!(answer.json()["error"]["kind"], "queue-unavailable");
    // POST /send does not need Redis; it says the list went unconsulted.
    let sent = post(
        &serve,
        "/send",
        None,
        &message("direct", "grace@example.test"),
    );
    assert_eq!(sent.status, 200, "{}", String::from_utf8_lossy(&sent.body));
    assert_eq!(sent.json()["suppression"], "unchecked");

    let redis = Redis::start_durable(dir.path(), Some(port));
    assert_eq!(redis.integer(&["XLEN", STREAM]), 1, "nothing half-enqueued");
    let again = accepted(&post(&serve, "/messages", None, &batch));
    assert_eq!(again.len(), 2);
    assert_eq!(redis.integer(&["XLEN", STREAM]), 3);
}

#[test]
fn a_batch_with_one_bad_message_enqueues_nothing_and_names_it() {
    let smtp = Aiosmtpd::start();
    let redis = Redis::start();
    let serve = edge(smtp.port(), redis.port());
    let batch = json!([
        message("fine", "ada@example.test"),
        {"from": "app@example.test", "to": "alan@example.test", "subject": "bad\r\nBcc: x@evil.test"},
        message("fine too", "grace@example.test"),
    ]);
    let answer = post(&serve, "/messages", None, &batch);
    assert_eq!(
        answer.status,
        400,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let error = &answer.json()["error"];
    assert_eq!(error["field"], "[1].subject", "{error}");
    assert_eq!(redis.integer(&["EXISTS", STREAM]), 0, "nothing enqueued");
    let bad_address = json!([
        message("ok", "ada@example.test"),
        message("x", "not an address")
    ]);
    let answer = post(&serve, "/messages", None, &bad_address);
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["field"], "[1].to[0].address");
    assert_eq!(redis.integer(&["EXISTS", STREAM]), 0);
}

#[test]
fn post_send_skips_suppressed_recipients_and_says_so() {
    let smtp = Aiosmtpd::start();
    let redis = Redis::start();
    let serve = edge(smtp.port(), redis.port());
    smtp_mailer_tests::worker::suppression(
        &redis.address(),
        &[
            "add",
            "gone@example.test",
            "--reason",
            "550 5.1.1 no such user",
        ],
    );
    let body = json!({"from": "app@example.test", "to": ["Gone@Example.test", "here@example.test"], "subject": "s", "text": "t"});
    let answer = post(&serve, "/send", None, &body);
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let json = answer.json();
    assert_eq!(json["suppressed"][0]["address"], "Gone@Example.test");
    assert_eq!(json["recipients"].as_array().map(Vec::len), Some(1));
    let received = smtp.wait_for(1, WAIT);
    assert_eq!(received[0].rcpt_to, ["here@example.test"]);
    let all_gone = json!({"from": "app@example.test", "to": "gone@example.test", "subject": "s"});
    let answer = post(&serve, "/send", None, &all_gone);
    assert_eq!(answer.json()["status"], "suppressed");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        smtp.messages().len(),
        1,
        "nothing sent to a suppressed address"
    );
}
