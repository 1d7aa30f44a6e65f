//! The Redis backend against a real `redis-server`, one per test.
//!
//! The server binary is `$SMTP_MAILER_REDIS_SERVER`, else Debian's, unpacked
//! by `scripts/install-test-tools.sh` under the target directory.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{behaviours, message, LEASE, NO_WAIT};
use smtp_mailer_queue::{open, NewMessage, QueueError, Store};

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

#[test]
fn enqueue_claim_complete() {
    let redis = Redis::start();
    // A second store on the same server (another worker process).
    behaviours::enqueue_claim_complete(&redis.store(LEASE), &redis.store(LEASE));
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
    behaviours::claim_waits_for_an_enqueue(&redis.store(LEASE));
}

#[test]
fn a_dead_consumers_jobs_go_to_another_after_the_lease() {
    let redis = Redis::start();
    let lease = Duration::from_millis(300);
    behaviours::an_expired_lease_lets_another_consumer_reclaim(
        &redis.store(lease),
        &redis.store(lease),
        lease,
    );
}

#[test]
fn defer_delays_and_counts_attempts() {
    let redis = Redis::start();
    // A deferred job is added to the stream again, under a new entry id.
    behaviours::defer_delays_and_counts_attempts(&redis.store(LEASE), false);
}

#[test]
fn concurrent_claimers_never_share_a_job() {
    let redis = Redis::start();
    behaviours::concurrent_claimers_never_share_a_job(&redis.store(LEASE), &redis.store(LEASE));
}

/// The child of `a_killed_process_loses_nothing` (see there).
#[test]
fn child_enqueues_until_killed() {
    behaviours::child_enqueues_until_killed();
}

#[test]
fn a_killed_process_loses_nothing() {
    let redis = Redis::start();
    behaviours::a_killed_process_loses_nothing(&redis.url());
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
    behaviours::suppressions_are_case_insensitive(&redis.store(LEASE));
}

#[test]
fn statuses_are_kept_and_found_by_either_id() {
    let redis = Redis::start();
    behaviours::statuses_are_kept_and_found_by_either_id(&redis.store(LEASE));
}
