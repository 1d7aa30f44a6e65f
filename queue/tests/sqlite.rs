//! The SQLite backend, on files in a fresh temporary directory per test.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use common::{behaviours, message, LEASE, NO_WAIT};
use smtp_mailer_queue::{open, Store};

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

fn store(dir: &TempDir, lease: Duration) -> Store {
    open(&format!("sqlite:{}", dir.db().display()), lease).unwrap()
}

#[test]
fn enqueue_claim_complete() {
    let dir = TempDir::new();
    // The plain-path spec opens the same file.
    let other = open(dir.db().to_str().unwrap(), LEASE).unwrap();
    behaviours::enqueue_claim_complete(&store(&dir, LEASE), &other);
}

#[test]
fn claim_waits_for_an_enqueue() {
    let dir = TempDir::new();
    behaviours::claim_waits_for_an_enqueue(&store(&dir, LEASE));
}

#[test]
fn an_expired_lease_lets_another_consumer_reclaim() {
    let dir = TempDir::new();
    let lease = Duration::from_millis(300);
    let store = store(&dir, lease);
    behaviours::an_expired_lease_lets_another_consumer_reclaim(&store, &store, lease);
}

#[test]
fn defer_delays_and_counts_attempts() {
    let dir = TempDir::new();
    behaviours::defer_delays_and_counts_attempts(&store(&dir, LEASE), true);
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
    // Two stores on the same file, as two processes would have.
    let second = open(dir.db().to_str().unwrap(), LEASE).unwrap();
    behaviours::concurrent_claimers_never_share_a_job(&store(&dir, LEASE), &second);
}

/// The child of `a_killed_process_loses_nothing` (see there).
#[test]
fn child_enqueues_until_killed() {
    behaviours::child_enqueues_until_killed();
}

#[test]
fn a_killed_process_loses_nothing() {
    let dir = TempDir::new();
    behaviours::a_killed_process_loses_nothing(dir.db().to_str().unwrap());
}

#[test]
fn suppressions_are_case_insensitive() {
    let dir = TempDir::new();
    behaviours::suppressions_are_case_insensitive(&store(&dir, LEASE));
}

#[test]
fn bad_specs_are_refused() {
    let err = open("http://example.com/queue", LEASE).unwrap_err();
    assert!(err.to_string().starts_with("invalid queue spec"), "{err}");
}

#[test]
fn statuses_are_kept_and_found_by_either_id() {
    let dir = TempDir::new();
    behaviours::statuses_are_kept_and_found_by_either_id(&store(&dir, LEASE));
}
