//! The Redis backend against a real `redis-server`, one per test.
//!
//! The server binary is `$SMTP_MAILER_REDIS_SERVER`, else Debian's, unpacked
//! by `scripts/install-test-tools.sh` under the target directory.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use smtp_mailer_queue::{open, NewMessage, QueueCounts, QueueError, Store};

const NO_WAIT: Duration = Duration::ZERO;
const LEASE: Duration = Duration::from_secs(60);

/// A private `redis-server` on 127.0.0.1 without persistence, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

fn redis_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SMTP_MAILER_REDIS_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => workspace.join(dir), // an absolute dir replaces the base
        None => workspace.join("target"),
    };
    let binary = target.join("test-tools/redis/usr/bin/redis-server");
    assert!(
        binary.is_file(),
        "{} is missing: run scripts/install-test-tools.sh (as root) with the same \
         CARGO_TARGET_DIR, or set SMTP_MAILER_REDIS_SERVER to a redis-server binary",
        binary.display()
    );
    binary
}

impl Redis {
    fn start() -> Self {
        let binary = redis_binary();
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(&binary);
        command
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let redis = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let mut line = String::new();
                if s.write_all(b"PING\r\n").is_ok()
                    && BufReader::new(&s).read_line(&mut line).is_ok()
                    && line.starts_with("+PONG")
                {
                    return redis;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {port} did not answer PING within 10 s");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn store(&self, lease: Duration) -> Store {
        open(&self.url(), lease).unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn message(n: usize) -> NewMessage {
    NewMessage {
        message_id: format!("<{n}@example.com>"),
        payload: format!("{{\"n\":{n}}}").into_bytes(),
    }
}

#[test]
fn enqueue_claim_complete() {
    let redis = Redis::start();
    let store = redis.store(LEASE);
    let q = &store.queue;
    assert!(q.is_empty().unwrap());
    let ids = q.enqueue(&[message(1), message(2), message(3)]).unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        q.counts().unwrap(),
        QueueCounts {
            ready: 3,
            delayed: 0,
            in_flight: 0
        }
    );
    let jobs = q.claim("a", 2, NO_WAIT).unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].id, ids[0]);
    assert_eq!(jobs[0].message_id, "<1@example.com>");
    assert_eq!(jobs[0].payload, b"{\"n\":1}");
    assert_eq!(jobs[0].attempts, 0);
    assert!(jobs[0].done.is_empty());
    assert_eq!(jobs[1].id, ids[1]);
    assert_eq!(
        q.counts().unwrap(),
        QueueCounts {
            ready: 1,
            delayed: 0,
            in_flight: 2
        }
    );
    // A second store on the same server (another worker process).
    let other = redis.store(LEASE);
    let rest = other.queue.claim("b", 10, NO_WAIT).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, ids[2]);
    // Another consumer's jobs in flight: not empty.
    for job in &jobs {
        q.complete(job).unwrap();
    }
    assert!(!q.is_empty().unwrap());
    other.queue.complete(&rest[0]).unwrap();
    assert!(q.is_empty().unwrap());
    assert!(q.claim("a", 10, NO_WAIT).unwrap().is_empty());
}

#[test]
fn binary_payloads_survive_a_defer() {
    let redis = Redis::start();
    let store = redis.store(LEASE);
    let q = &store.queue;
    let payload: Vec<u8> = (0..=255).collect();
    q.enqueue(&[NewMessage {
        message_id: "<a:b:1@x>".into(),
        payload: payload.clone(),
    }])
    .unwrap();
    let job = q.claim("a", 1, NO_WAIT).unwrap().remove(0);
    assert_eq!(job.payload, payload);
    q.defer(&job, &[], SystemTime::now()).unwrap();
    let job = q.claim("a", 1, Duration::from_secs(5)).unwrap().remove(0);
    assert_eq!(job.message_id, "<a:b:1@x>");
    assert_eq!(job.payload, payload);
    assert_eq!(job.attempts, 1);
}

#[test]
fn claim_waits_for_an_enqueue() {
    let redis = Redis::start();
    let store = redis.store(LEASE);
    let start = Instant::now();
    assert!(store
        .queue
        .claim("a", 1, Duration::from_millis(200))
        .unwrap()
        .is_empty());
    assert!(start.elapsed() >= Duration::from_millis(200));

    let q = store.queue.clone();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        q.enqueue(&[message(1)]).unwrap();
    });
    let jobs = store.queue.claim("a", 1, Duration::from_secs(10)).unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(start.elapsed() < Duration::from_secs(5));
    producer.join().unwrap();
}

#[test]
fn a_dead_consumers_jobs_go_to_another_after_the_lease() {
    let redis = Redis::start();
    let lease = Duration::from_millis(300);
    let dead = redis.store(lease);
    let live = redis.store(lease);
    dead.queue.enqueue(&[message(1), message(2)]).unwrap();
    let first = dead.queue.claim("dead", 2, NO_WAIT).unwrap();
    assert_eq!(first.len(), 2);
    dead.queue
        .progress(&first[0], &["x@example.com".into()])
        .unwrap();
    assert!(live.queue.claim("live", 10, NO_WAIT).unwrap().is_empty());

    // Heartbeats keep the second job; the first one's lease runs out.
    for _ in 0..4 {
        std::thread::sleep(lease / 3);
        dead.queue.heartbeat("dead", &[&first[1]]).unwrap();
    }
    let again = live
        .queue
        .claim("live", 10, Duration::from_secs(5))
        .unwrap();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].id, first[0].id);
    assert_eq!(again[0].message_id, first[0].message_id);
    assert_eq!(again[0].payload, first[0].payload);
    assert_eq!(again[0].attempts, 0, "a reclaim is not a new attempt");
    assert_eq!(again[0].done, vec!["x@example.com".to_string()]);

    // The dead consumer's late heartbeat and defer do not take it back.
    dead.queue.heartbeat("dead", &[&first[0]]).unwrap();
    dead.queue.defer(&first[0], &[], SystemTime::now()).unwrap();
    assert_eq!(
        live.queue.counts().unwrap(),
        QueueCounts {
            ready: 0,
            delayed: 0,
            in_flight: 2
        }
    );
    live.queue.complete(&again[0]).unwrap();
    dead.queue.complete(&first[1]).unwrap();
    assert!(live.queue.is_empty().unwrap());
}

#[test]
fn defer_delays_and_counts_attempts() {
    let redis = Redis::start();
    let store = redis.store(LEASE);
    let q = &store.queue;
    q.enqueue(&[message(1)]).unwrap();
    let job = q.claim("a", 1, NO_WAIT).unwrap().remove(0);
    let until = SystemTime::now() + Duration::from_millis(400);
    q.defer(
        &job,
        &["a@example.com".into(), "b@example.com".into()],
        until,
    )
    .unwrap();
    assert_eq!(
        q.counts().unwrap(),
        QueueCounts {
            ready: 0,
            delayed: 1,
            in_flight: 0
        }
    );
    assert!(!q.is_empty().unwrap());
    assert!(q.claim("a", 1, NO_WAIT).unwrap().is_empty());

    // The claim's wait ends when the deferred job is due.
    let again = q.claim("b", 1, Duration::from_secs(5)).unwrap().remove(0);
    assert!(SystemTime::now() >= until);
    assert_eq!(again.message_id, job.message_id);
    assert_eq!(again.payload, job.payload);
    assert_eq!(again.attempts, 1);
    assert_eq!(again.done, vec!["a@example.com", "b@example.com"]);

    q.defer(&again, &["c@example.com".into()], SystemTime::now())
        .unwrap();
    let third = q.claim("b", 1, Duration::from_secs(5)).unwrap().remove(0);
    assert_eq!(third.attempts, 2);
    assert_eq!(
        third.done,
        vec!["a@example.com", "b@example.com", "c@example.com"]
    );
    q.complete(&third).unwrap();
    assert!(q.is_empty().unwrap());

    // A new message with the same id starts with nothing done.
    q.enqueue(&[message(1)]).unwrap();
    assert!(q.claim("b", 1, NO_WAIT).unwrap()[0].done.is_empty());
}

#[test]
fn concurrent_claimers_never_share_a_job() {
    let redis = Redis::start();
    let store = redis.store(LEASE);
    let n = 200;
    let batch: Vec<NewMessage> = (0..n).map(message).collect();
    store.queue.enqueue(&batch).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let q = if t % 2 == 0 {
                store.queue.clone()
            } else {
                redis.store(LEASE).queue
            };
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let jobs = q.claim(&format!("c{t}"), 3, NO_WAIT).unwrap();
                    if jobs.is_empty() {
                        break;
                    }
                    mine.extend(jobs.into_iter().map(|j| j.message_id));
                }
                mine
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for t in threads {
        for id in t.join().unwrap() {
            assert!(seen.insert(id.clone()), "{id} claimed twice");
        }
    }
    assert_eq!(seen.len(), n);
}

/// The lease of the jobs that the child of `a_killed_process_loses_nothing` claims.
const CHILD_LEASE: Duration = Duration::from_secs(2);

/// The child of `a_killed_process_loses_nothing`: enqueues batches and says
/// after each which ones `enqueue` returned for, claims some, until killed.
#[test]
fn child_enqueues_until_killed() {
    let Ok(url) = std::env::var("SMTP_MAILER_QUEUE_TEST_CHILD") else {
        return;
    };
    let store = open(&url, CHILD_LEASE).unwrap();
    for batch in 0.. {
        let messages: Vec<NewMessage> = (0..5).map(|i| message(batch * 5 + i)).collect();
        store.queue.enqueue(&messages).unwrap();
        println!("enqueued {}", batch * 5 + 4);
        store.queue.claim("child", 2, NO_WAIT).unwrap();
    }
}

#[test]
fn a_killed_process_loses_nothing() {
    let redis = Redis::start();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_enqueues_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SMTP_MAILER_QUEUE_TEST_CHILD", redis.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut acked = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(n) = line.unwrap().strip_prefix("enqueued ") {
            let n: usize = n.parse().unwrap();
            acked = Some(n);
            if n >= 60 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let acked = acked.expect("the child enqueued nothing");

    let store = redis.store(CHILD_LEASE);
    let c = store.queue.counts().unwrap();
    assert!(c.ready + c.in_flight > acked as u64, "{c:?}, {acked} acked");
    assert!(
        c.in_flight > 0,
        "the child's claims are held until their lease ends"
    );
    std::thread::sleep(CHILD_LEASE + Duration::from_millis(200));
    let mut ids = HashSet::new();
    loop {
        let jobs = store.queue.claim("parent", 50, NO_WAIT).unwrap();
        if jobs.is_empty() {
            break;
        }
        ids.extend(jobs.into_iter().map(|j| j.message_id));
    }
    for n in 0..=acked {
        assert!(ids.contains(&message(n).message_id), "message {n} was lost");
    }
}

#[test]
fn stream_and_group_come_from_the_url() {
    let redis = Redis::start();
    let a = open(&format!("{}/0?stream=a&group=g", redis.url()), LEASE).unwrap();
    let b = open(&format!("{}?stream=b", redis.url()), LEASE).unwrap();
    a.queue.enqueue(&[message(1)]).unwrap();
    assert!(b.queue.is_empty().unwrap());
    assert_eq!(a.queue.claim("x", 5, NO_WAIT).unwrap().len(), 1);
    a.suppressions.add("x@example.com", "r").unwrap();
    assert!(b.suppressions.list().unwrap().is_empty());
}

#[test]
fn errors_never_show_the_password() {
    let redis = Redis::start();
    // The server has no password: AUTH fails, and says so without the URL's secret.
    let err = open(
        &format!("redis://user:hunter2@127.0.0.1:{}", redis.port),
        LEASE,
    )
    .unwrap_err();
    assert!(matches!(err, QueueError::RedisCommand { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");

    // Nothing listens on the port of a server that is gone.
    let port = redis.port;
    drop(redis);
    let err = open(&format!("redis://:hunter2@127.0.0.1:{port}"), LEASE).unwrap_err();
    assert!(matches!(err, QueueError::RedisConnection { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn suppressions_are_case_insensitive() {
    let redis = Redis::start();
    let store = redis.store(LEASE);
    let s = &store.suppressions;
    assert!(s.list().unwrap().is_empty());
    let before = SystemTime::now() - Duration::from_secs(1);
    s.add("Bob@Example.COM", "550 no such user").unwrap();
    s.add("alice@example.com", "unsubscribed").unwrap();
    s.add("BOB@example.com", "550 5.1.1 unknown").unwrap();

    let list = s.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].address, "alice@example.com");
    assert_eq!(list[1].address, "bob@example.com");
    assert_eq!(list[1].reason, "550 5.1.1 unknown");
    assert!(list[1].since >= before && list[1].since <= SystemTime::now());

    let checked = s
        .check(&[
            "carol@example.com".into(),
            "bob@EXAMPLE.com".into(),
            "ALICE@example.com".into(),
        ])
        .unwrap();
    assert!(checked[0].is_none());
    assert_eq!(checked[1].as_ref().unwrap().address, "bob@example.com");
    assert_eq!(checked[2].as_ref().unwrap().reason, "unsubscribed");
    assert!(s.check(&[]).unwrap().is_empty());

    assert!(s.remove("BOB@EXAMPLE.COM").unwrap());
    assert!(!s.remove("bob@example.com").unwrap());
    assert!(s.check(&["bob@example.com".into()]).unwrap()[0].is_none());
    assert_eq!(s.list().unwrap().len(), 1);
}
