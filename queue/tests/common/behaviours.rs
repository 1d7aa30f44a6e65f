//! The behaviours that every queue backend must show, each a function that a
//! backend's test file calls from a `#[test]` with stores of its own.
//!
//! Stores passed together (`store` and `other`, `dead` and `live`) must share
//! one queue: the same SQLite file or the same Redis server and stream.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use smtp_mailer_queue::{
    open, MessageStatus, NewMessage, QueueCounts, RecipientState, State, Store,
};

use super::{message, NO_WAIT};

/// Enqueued messages are claimed in order, by one consumer or another, and
/// the queue is empty once every claim is complete.
pub fn enqueue_claim_complete(store: &Store, other: &Store) {
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

/// A claim with a wait returns empty-handed after it, or as soon as a
/// message is enqueued.
pub fn claim_waits_for_an_enqueue(store: &Store) {
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

/// A job whose lease (`lease`, that of both stores) runs out without a
/// heartbeat goes to another consumer with its progress, and the first
/// consumer's late heartbeat and defer do not take it back. `dead` and `live`
/// may be the same store.
pub fn an_expired_lease_lets_another_consumer_reclaim(dead: &Store, live: &Store, lease: Duration) {
    dead.queue.enqueue(&[message(1), message(2)]).unwrap();
    let first = dead.queue.claim("dead", 2, NO_WAIT).unwrap();
    assert_eq!(first.len(), 2);
    dead.queue
        .progress(&first[0], &["x@example.com".into()])
        .unwrap();
    assert!(live.queue.claim("live", 10, NO_WAIT).unwrap().is_empty());
    assert!(!live.queue.is_empty().unwrap());

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

/// A deferred job waits until its time, then comes back with one more
/// attempt and the recipients done so far; a new message with the same id
/// starts afresh. `keeps_id`: the job comes back under the same queue id.
pub fn defer_delays_and_counts_attempts(store: &Store, keeps_id: bool) {
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
    if keeps_id {
        assert_eq!(again.id, job.id);
    }
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

/// Four threads claim 200 messages, two through `store` and two through
/// `second`, as two processes would: no message is claimed twice or missed.
pub fn concurrent_claimers_never_share_a_job(store: &Store, second: &Store) {
    let n = 200;
    let batch: Vec<NewMessage> = (0..n).map(message).collect();
    store.queue.enqueue(&batch).unwrap();
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

/// The lease of the jobs that the child of [`a_killed_process_loses_nothing`] claims.
const CHILD_LEASE: Duration = Duration::from_secs(2);

/// The variable that gives the child its queue spec.
const CHILD_SPEC: &str = "SMTP_MAILER_QUEUE_TEST_CHILD";

/// The child of [`a_killed_process_loses_nothing`], to be called from a test
/// named `child_enqueues_until_killed`: without its variable it does nothing;
/// with it, it enqueues batches and says after each which ones `enqueue`
/// returned for, claims some, until killed.
pub fn child_enqueues_until_killed() {
    let Ok(spec) = std::env::var(CHILD_SPEC) else {
        return;
    };
    let store = open(&spec, CHILD_LEASE).unwrap();
    for batch in 0.. {
        let messages: Vec<NewMessage> = (0..5).map(|i| message(batch * 5 + i)).collect();
        store.queue.enqueue(&messages).unwrap();
        println!("enqueued {}", batch * 5 + 4);
        store.queue.claim("child", 2, NO_WAIT).unwrap();
    }
}

/// Runs this test binary's `child_enqueues_until_killed` on the queue `spec`,
/// kills it (SIGKILL) after 60 messages, then finds every message that
/// `enqueue` had returned for, once the child's leases are over.
pub fn a_killed_process_loses_nothing(spec: &str) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_enqueues_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_SPEC, spec)
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

    let store = open(spec, CHILD_LEASE).unwrap();
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

/// Suppressed addresses are stored in lower case, found whatever their case,
/// re-adding one replaces its reason, and removing one reports whether it was there.
pub fn suppressions_are_case_insensitive(store: &Store) {
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

/// An enqueued message is `queued`, found by its Message-ID (with or
/// without angle brackets) and by its queue id; a recorded status replaces
/// it, and expires.
pub fn statuses_are_kept_and_found_by_either_id(store: &Store) {
    let q = &store.queue;
    let ids = q.enqueue(&[message(41)]).unwrap();
    for id in ["<41@example.com>", "41@example.com", ids[0].as_str()] {
        let status = q
            .status(id)
            .unwrap()
            .unwrap_or_else(|| panic!("no status for {id}"));
        assert_eq!(status.state, State::Queued, "{id}");
        assert_eq!(status.message_id, "<41@example.com>");
    }
    assert_eq!(q.status("<nothing@example.com>").unwrap(), None);

    let mut status = MessageStatus::queued("<41@example.com>", 1);
    status.record(
        1,
        2,
        [(
            "ada@example.com".into(),
            RecipientState::Delivered,
            Some("250 ok".into()),
        )],
    );
    q.record_status(&status, Duration::from_secs(60)).unwrap();
    assert_eq!(q.status(&ids[0]).unwrap(), Some(status.clone()));

    let mut short = MessageStatus::queued("<42@example.com>", 1);
    short.record(
        1,
        2,
        [("b@example.com".into(), RecipientState::Bounced, None)],
    );
    q.record_status(&short, Duration::from_secs(1)).unwrap();
    assert_eq!(
        q.status("<42@example.com>").unwrap().map(|s| s.state),
        Some(State::Bounced)
    );
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(q.status("<42@example.com>").unwrap(), None, "expired");
}
