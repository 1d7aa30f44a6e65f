//! The queue worker: claims queued messages, makes one delivery attempt of
//! each through a [`Deliverer`], then completes them or puts them back for
//! a later attempt with the recipients still to do.
//!
//! Delivery is at least once: a message is removed from the queue only
//! after its attempt, so a worker killed in the middle of a send leaves the
//! message to be claimed again once its lease expires, and the copy it
//! sends has the same Message-ID. At most the messages in flight (one per
//! thread) can be sent twice.

mod enqueue;
mod event;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use smtp_mailer_queue::{Job, MessageStatus, Queue, QueueError, RecipientState, State};

use crate::json::parse_message;
use crate::{Deliverer, RecipientCount};
use smtp_mailer_host::Dkim;

pub use enqueue::{prepare, EnqueueError};
pub use event::{Event, EventKind};

/// How a [`Worker`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOptions {
    /// Its name in the queue; unique among the workers sharing a queue.
    pub consumer: String,
    /// Messages handled at once (threads); give the pools as many sessions.
    pub threads: usize,
    /// Stop once the queue holds nothing ready, delayed or in flight.
    pub exit_when_empty: bool,
    /// How long a claimed message stays this worker's without a heartbeat:
    /// the queue's lease. Heartbeats go every third of it.
    pub lease: Duration,
    /// How long one claim waits for a message.
    pub poll: Duration,
    /// Sign every message with these DKIM settings.
    pub dkim: Option<Dkim>,
    /// How long each message's status (`smtp-mailer status`, the Spin app's
    /// `GET /messages/{id}`) is kept after its last attempt.
    pub status_ttl: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            consumer: "smtp-mailer".into(),
            threads: 4,
            exit_when_empty: false,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(200),
            dkim: None,
            status_ttl: Duration::from_secs(smtp_mailer_queue::DEFAULT_STATUS_TTL_SECONDS),
        }
    }
}

type Observer = Arc<dyn Fn(&Event) + Send + Sync>;
type QueueObserver = Arc<dyn Fn(&QueueError, Duration) + Send + Sync>;

/// The longest pause between two tries of an unavailable queue.
const MAX_QUEUE_BACKOFF: Duration = Duration::from_secs(30);

/// Takes messages from a queue and delivers them.
pub struct Worker {
    deliverer: Arc<Deliverer>,
    queue: Arc<dyn Queue>,
    options: WorkerOptions,
    observer: Option<Observer>,
    queue_observer: Option<QueueObserver>,
    /// The jobs being worked on, by queue id, for heartbeats.
    in_flight: Mutex<HashMap<String, Job>>,
}

impl Worker {
    /// A worker over `queue` that sends with `deliverer`.
    pub fn new(deliverer: Arc<Deliverer>, queue: Arc<dyn Queue>, options: WorkerOptions) -> Self {
        Worker {
            deliverer,
            queue,
            options,
            observer: None,
            queue_observer: None,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Calls `observer` with every event, from the worker's threads.
    pub fn on_event(mut self, observer: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Calls `observer` with each failure of the queue (a lost connection
    /// to Redis, a locked database...) and the pause before the next try.
    pub fn on_queue_error(
        mut self,
        observer: impl Fn(&QueueError, Duration) + Send + Sync + 'static,
    ) -> Self {
        self.queue_observer = Some(Arc::new(observer));
        self
    }

    /// Runs until `stop` is set (or, with `exit_when_empty`, the queue is
    /// empty), finishing the messages in hand.
    ///
    /// A queue that fails (Redis restarting, say) is tried again after a
    /// pause that doubles up to 30 s; a message whose completion could not
    /// be recorded stays leased and is claimed again after the lease: sent
    /// twice, never lost.
    pub fn run(&self, stop: &AtomicBool) {
        std::thread::scope(|scope| {
            for _ in 0..self.options.threads.max(1) {
                scope.spawn(|| self.claim_loop(stop));
            }
            scope.spawn(|| self.housekeeping(stop));
        });
        self.deliverer.close_all();
        if let Ok(counts) = self.queue.counts() {
            self.deliverer
                .metrics()
                .set_queue(counts.ready, counts.delayed, counts.in_flight);
        }
    }

    fn claim_loop(&self, stop: &AtomicBool) {
        let mut backoff = Backoff::default();
        while !stop.load(Ordering::SeqCst) {
            let jobs = match self
                .queue
                .claim(&self.options.consumer, 1, self.options.poll)
            {
                Ok(jobs) => jobs,
                Err(e) => {
                    self.queue_failed(&e, backoff.next(), stop);
                    continue;
                }
            };
            if jobs.is_empty() {
                if self.options.exit_when_empty {
                    match self.queue.is_empty() {
                        Ok(true) => stop.store(true, Ordering::SeqCst),
                        Ok(false) => {}
                        Err(e) => self.queue_failed(&e, backoff.next(), stop),
                    }
                }
                continue;
            }
            backoff = Backoff::default();
            for job in jobs {
                self.lock_in_flight().insert(job.id.clone(), job.clone());
                let result = self.process(&job);
                self.lock_in_flight().remove(&job.id);
                if let Err(e) = result {
                    self.queue_failed(&e, backoff.next(), stop);
                }
            }
        }
    }

    /// Reports a queue failure and pauses (less if stopped meanwhile).
    fn queue_failed(&self, e: &QueueError, pause: Duration, stop: &AtomicBool) {
        if let Some(observer) = &self.queue_observer {
            observer(e, pause);
        }
        let until = Instant::now() + pause;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Heartbeats for the jobs in hand, idle connections closed, and the
    /// queue's gauges, until stopped.
    fn housekeeping(&self, stop: &AtomicBool) {
        let every = (self.options.lease / 3).min(Duration::from_secs(1));
        let mut last_heartbeat = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100).min(every));
            if last_heartbeat.elapsed() < every {
                continue;
            }
            last_heartbeat = Instant::now();
            self.deliverer.close_idle();
            let jobs: Vec<Job> = self.lock_in_flight().values().cloned().collect();
            let refs: Vec<&Job> = jobs.iter().collect();
            let result = match refs.is_empty() {
                true => Ok(()),
                false => self.queue.heartbeat(&self.options.consumer, &refs),
            };
            // The claim loops report the queue's failures; a missed
            // heartbeat only risks a lease running out (a resend).
            if let Ok(counts) = result.and_then(|()| self.queue.counts()) {
                self.deliverer
                    .metrics()
                    .set_queue(counts.ready, counts.delayed, counts.in_flight);
            }
        }
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One attempt of one job, then complete or defer it.
    fn process(&self, job: &Job) -> Result<(), QueueError> {
        let started = Instant::now();
        let number = job.attempts + 1;
        let event = |kind, recipients: Vec<String>| Event {
            event: kind,
            queue_id: job.id.clone(),
            message_id: job.message_id.clone(),
            recipients,
            relay: None,
            attempt: number,
            reply: None,
            retry_in_ms: None,
            ms: started.elapsed().as_millis() as u64,
        };
        let metrics = self.deliverer.metrics();
        let mut status = self.last_status(job);
        let text = String::from_utf8_lossy(&job.payload);
        let mut message = match parse_message(&text, Path::new("/")) {
            Ok(message) => message,
            Err(reason) => {
                metrics.count(RecipientCount::Failed, 1);
                self.emit(Event {
                    reply: Some(format!("the queued message cannot be read: {reason}")),
                    ..event(EventKind::Failed, Vec::new())
                });
                status.state = State::Failed;
                status.attempts = number;
                self.record(status);
                return self.queue.complete(job);
            }
        };
        if message.message_id.is_none() {
            message.message_id = Some(job.message_id.clone());
        }
        if message.dkim.is_none() {
            message.dkim = self.options.dkim.clone();
        }
        let attempt = self.deliverer.attempt(&message, &job.done);

        let retry = &self.deliverer.options().retry;
        let gives_up = retry.gives_up(number);
        let mut outcomes: Vec<_> = attempt
            .delivered
            .iter()
            .map(|d| {
                (
                    d.address.clone(),
                    RecipientState::Delivered,
                    Some(d.reply.clone()),
                )
            })
            .collect();
        let left = match gives_up {
            true => RecipientState::Failed,
            false => RecipientState::Deferred,
        };
        for (refusals, state) in [
            (&attempt.bounced, RecipientState::Bounced),
            (&attempt.suppressed, RecipientState::Suppressed),
            (&attempt.deferred, left),
        ] {
            outcomes.extend(
                refusals
                    .iter()
                    .map(|r| (r.address.clone(), state, Some(r.reason.clone()))),
            );
        }
        status.record(number, unix_secs(), outcomes);
        self.record(status);

        let mut by_relay: Vec<(String, Vec<String>)> = Vec::new();
        for d in &attempt.delivered {
            match by_relay.iter_mut().find(|(r, _)| *r == d.relay) {
                Some((_, list)) => list.push(d.address.clone()),
                None => by_relay.push((d.relay.clone(), vec![d.address.clone()])),
            }
        }
        for (relay, recipients) in by_relay {
            self.emit(Event {
                relay: Some(relay),
                ..event(EventKind::Delivered, recipients)
            });
        }
        for refusal in &attempt.bounced {
            self.emit(Event {
                reply: Some(refusal.reason.clone()),
                ..event(EventKind::Bounced, vec![refusal.address.clone()])
            });
        }
        for refusal in &attempt.suppressed {
            self.emit(Event {
                reply: Some(refusal.reason.clone()),
                ..event(EventKind::Suppressed, vec![refusal.address.clone()])
            });
        }
        if attempt.deferred.is_empty() {
            return self.queue.complete(job);
        }
        let deferred: Vec<String> = attempt.deferred.iter().map(|r| r.address.clone()).collect();
        let reply = attempt.deferred.first().map(|r| r.reason.clone());
        if gives_up {
            metrics.count(RecipientCount::Failed, deferred.len());
            self.emit(Event {
                reply,
                ..event(EventKind::Failed, deferred)
            });
            return self.queue.complete(job);
        }
        let delay = retry.random_delay(number);
        metrics.count(RecipientCount::Deferred, deferred.len());
        self.emit(Event {
            reply,
            retry_in_ms: Some(delay.as_millis() as u64),
            ..event(EventKind::Deferred, deferred)
        });
        let mut done = job.done.clone();
        done.extend(attempt.finished().map(String::from));
        self.queue.defer(job, &done, SystemTime::now() + delay)
    }

    /// The status recorded so far, or a fresh `queued` one (a message
    /// enqueued before statuses existed, or whose status expired).
    fn last_status(&self, job: &Job) -> MessageStatus {
        match self.queue.status(&job.message_id) {
            Ok(Some(status)) if status.message_id == job.message_id => status,
            _ => MessageStatus::queued(&job.message_id, unix_secs()),
        }
    }

    /// Records `status`. A status is information, not delivery: a queue that
    /// cannot take it now only leaves an older one.
    fn record(&self, status: MessageStatus) {
        let _ = self.queue.record_status(&status, self.options.status_ttl);
    }

    fn emit(&self, event: Event) {
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Pauses between tries of a failing queue: 1 s doubling to 30 s.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let pause = Duration::from_secs(1 << self.failures.min(5)).min(MAX_QUEUE_BACKOFF);
        self.failures += 1;
        pause
    }
}
