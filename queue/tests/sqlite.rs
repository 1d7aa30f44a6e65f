//! The SQLite backend, on files in a fresh temporary directory per test.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use smtp_mailer_queue::{open, NewMessage, QueueCounts, Store};

const NO_WAIT: Duration = Duration::ZERO;
const LEASE: Duration = Duration::from_secs(60);

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "smtp-mailer-queue-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// A path for the queue file, in a subdirectory that does not exist yet.
    fn db(&self) -> PathBuf {
        self.0.join("sub/dir/queue.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn message(n: usize) -> NewMessage {
    NewMessage {
        message_id: format!("<{n}@example.com>"),
        payload: format!("{{\"n\":{n}}}").into_bytes(),
    }
}

fn store(dir: &TempDir, lease: Duration) -> Store {
    open(&format!("sqlite:{}", dir.db().display()), lease).unwrap()
}

#[test]
fn enqueue_claim_complete() {
    let dir = TempDir::new();
    let store = store(&dir, LEASE);
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

    // The plain-path spec opens the same file.
    let other = open(dir.db().to_str().unwrap(), LEASE).unwrap();
    let rest = other.queue.claim("b", 10, NO_WAIT).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, ids[2]);

    for job in jobs.iter().chain(&rest) {
        q.complete(job).unwrap();
    }
    assert!(q.is_empty().unwrap());
    assert!(q.claim("a", 10, NO_WAIT).unwrap().is_empty());
}

#[test]
fn claim_waits_for_an_enqueue() {
    let dir = TempDir::new();
    let store = store(&dir, LEASE);
    let q = store.queue.clone();
    let start = std::time::Instant::now();
    assert!(q
        .claim("a", 1, Duration::from_millis(200))
        .unwrap()
        .is_empty());
    assert!(start.elapsed() >= Duration::from_millis(200));

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
fn an_expired_lease_lets_another_consumer_reclaim() {
    let dir = TempDir::new();
    let lease = Duration::from_millis(300);
    let store = store(&dir, lease);
    let q = &store.queue;
    q.enqueue(&[message(1), message(2)]).unwrap();
    let first = q.claim("dead", 2, NO_WAIT).unwrap();
    assert_eq!(first.len(), 2);
    q.progress(&first[0], &["x@example.com".into()]).unwrap();
    assert!(q.claim("live", 10, NO_WAIT).unwrap().is_empty());
    assert!(!q.is_empty().unwrap());

    // Heartbeats keep the second job; the first one's lease runs out.
    for _ in 0..4 {
        std::thread::sleep(lease / 3);
        q.heartbeat("dead", &[&first[1]]).unwrap();
    }
    let again = q.claim("live", 10, Duration::from_secs(5)).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, first[0].id);
    assert_eq!(again[0].message_id, first[0].message_id);
    assert_eq!(again[0].attempts, 0, "a reclaim is not a new attempt");
    assert_eq!(again[0].done, vec!["x@example.com".to_string()]);

    // The dead consumer's late defer does not disturb the new owner's claim.
    q.defer(&first[0], &[], SystemTime::now()).unwrap();
    assert_eq!(q.counts().unwrap().in_flight, 2);
    q.complete(&again[0]).unwrap();
    q.complete(&first[1]).unwrap();
    assert!(q.is_empty().unwrap());
}

#[test]
fn defer_delays_and_counts_attempts() {
    let dir = TempDir::new();
    let store = store(&dir, LEASE);
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

    let again = q.claim("b", 1, Duration::from_secs(5)).unwrap().remove(0);
    assert!(SystemTime::now() >= until);
    assert_eq!(again.id, job.id);
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
}

#[test]
fn progress_survives_a_reclaim_and_a_reopen() {
    let dir = TempDir::new();
    let lease = Duration::from_millis(100);
    {
        let store = store(&dir, lease);
        store.queue.enqueue(&[message(1)]).unwrap();
        let job = store.queue.claim("a", 1, NO_WAIT).unwrap().remove(0);
        store
            .queue
            .progress(&job, &["one@example.com".into()])
            .unwrap();
        store
            .queue
            .progress(&job, &["one@example.com".into(), "two@example.com".into()])
            .unwrap();
    }
    let store = store(&dir, lease);
    let job = store
        .queue
        .claim("b", 1, Duration::from_secs(5))
        .unwrap()
        .remove(0);
    assert_eq!(job.done, vec!["one@example.com", "two@example.com"]);
    assert_eq!(job.attempts, 0);
}

#[test]
fn concurrent_claimers_never_share_a_job() {
    let dir = TempDir::new();
    let store = store(&dir, LEASE);
    let n = 200;
    let batch: Vec<NewMessage> = (0..n).map(message).collect();
    store.queue.enqueue(&batch).unwrap();
    // Two stores on the same file, as two processes would have.
    let second = open(dir.db().to_str().unwrap(), LEASE).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let q = if t % 2 == 0 {
                store.queue.clone()
            } else {
                second.queue.clone()
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
    let Ok(path) = std::env::var("SMTP_MAILER_QUEUE_TEST_CHILD") else {
        return;
    };
    let store = open(&path, CHILD_LEASE).unwrap();
    for batch in 0.. {
        let messages: Vec<NewMessage> = (0..5).map(|i| message(batch * 5 + i)).collect();
        store.queue.enqueue(&messages).unwrap();
        println!("enqueued {}", batch * 5 + 4);
        store.queue.claim("child", 2, NO_WAIT).unwrap();
    }
}

#[test]
fn a_killed_process_loses_nothing() {
    let dir = TempDir::new();
    let db = dir.db();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_enqueues_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SMTP_MAILER_QUEUE_TEST_CHILD", &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = None;
    for line in lines.by_ref() {
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

    let store = open(db.to_str().unwrap(), LEASE).unwrap();
    let c = store.queue.counts().unwrap();
    assert!(c.ready + c.in_flight > acked as u64, "{c:?}, {acked} acked");
    assert!(
        c.in_flight > 0,
        "the child's claims are held until their lease ends"
    );
    // Once the child's leases are over, every acknowledged message is there.
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
fn suppressions_are_case_insensitive() {
    let dir = TempDir::new();
    let store = store(&dir, LEASE);
    let s = Arc::clone(&store.suppressions);
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

#[test]
fn bad_specs_are_refused() {
    let err = open("http://example.com/queue", LEASE).unwrap_err();
    assert!(err.to_string().starts_with("invalid queue spec"), "{err}");
}
