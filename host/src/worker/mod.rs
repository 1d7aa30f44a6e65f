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
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use smtp_mailer_queue::{Job, Queue, QueueError};

use crate::delivery::{Deliverer, RecipientCount};
use crate::json::parse_message;

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
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            consumer: "smtp-mailer".into(),
            threads: 4,
            exit_when_empty: false,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(200),
        }
    }
}

/// Why a worker stopped early.
#[derive(Debug)]
pub enum WorkerError {
    /// The queue failed.
    Queue(QueueError),
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Queue(e) => write!(f, "the queue failed: {e}"),
        }
    }
}

impl std::error::Error for WorkerError {}

impl From<QueueError> for WorkerError {
    fn from(e: QueueError) -> Self {
        WorkerError::Queue(e)
    }
}

type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// Takes messages from a queue and delivers them.
pub struct Worker {
    deliverer: Arc<Deliverer>,
    queue: Arc<dyn Queue>,
    options: WorkerOptions,
    observer: Option<Observer>,
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
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Calls `observer` with every event, from the worker's threads.
    pub fn on_event(mut self, observer: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Runs until `stop` is set (or, with `exit_when_empty`, the queue is
    /// empty), finishing the messages in hand. Returns early when the
    /// queue fails; the messages in hand are then claimed again later.
    pub fn run(&self, stop: &AtomicBool) -> Result<(), WorkerError> {
        let failure: Mutex<Option<QueueError>> = Mutex::new(None);
        let fail = |e: QueueError| {
            failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
            stop.store(true, Ordering::SeqCst);
        };
        std::thread::scope(|scope| {
            for _ in 0..self.options.threads.max(1) {
                scope.spawn(|| {
                    if let Err(e) = self.claim_loop(stop) {
                        fail(e);
                    }
                });
            }
            scope.spawn(|| {
                if let Err(e) = self.housekeeping(stop) {
                    fail(e);
                }
            });
        });
        self.deliverer.close_all();
        if let Ok(counts) = self.queue.counts() {
            self.deliverer
                .metrics()
                .set_queue(counts.ready, counts.delayed, counts.in_flight);
        }
        match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn claim_loop(&self, stop: &AtomicBool) -> Result<(), QueueError> {
        while !stop.load(Ordering::SeqCst) {
            let jobs = self
                .queue
                .claim(&self.options.consumer, 1, self.options.poll)?;
            if jobs.is_empty() {
                if self.options.exit_when_empty && self.queue.is_empty()? {
                    stop.store(true, Ordering::SeqCst);
                }
                continue;
            }
            for job in jobs {
                self.lock_in_flight().insert(job.id.clone(), job.clone());
                let result = self.process(&job);
                self.lock_in_flight().remove(&job.id);
                result?;
            }
        }
        Ok(())
    }

    /// Heartbeats for the jobs in hand, idle connections closed, and the
    /// queue's gauges, until stopped.
    fn housekeeping(&self, stop: &AtomicBool) -> Result<(), QueueError> {
        let every = (self.options.lease / 3).min(Duration::from_secs(1));
        let mut last_heartbeat = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100).min(every));
            if last_heartbeat.elapsed() < every {
                continue;
            }
            last_heartbeat = Instant::now();
            let jobs: Vec<Job> = self.lock_in_flight().values().cloned().collect();
            if !jobs.is_empty() {
                let refs: Vec<&Job> = jobs.iter().collect();
                self.queue.heartbeat(&self.options.consumer, &refs)?;
            }
            self.deliverer.close_idle();
            let counts = self.queue.counts()?;
            self.deliverer
                .metrics()
                .set_queue(counts.ready, counts.delayed, counts.in_flight);
        }
        Ok(())
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
        let text = String::from_utf8_lossy(&job.payload);
        let mut message = match parse_message(&text, Path::new("/")) {
            Ok(message) => message,
            Err(reason) => {
                metrics.count(RecipientCount::Failed, 1);
                self.emit(Event {
                    reply: Some(format!("the queued message cannot be read: {reason}")),
                    ..event(EventKind::Failed, Vec::new())
                });
                return self.queue.complete(job);
            }
        };
        if message.message_id.is_none() {
            message.message_id = Some(job.message_id.clone());
        }
        let attempt = self.deliverer.attempt(&message, &job.done);

        let mut by_relay: Vec<(String, Vec<String>)> = Vec::new();
        for (address, relay) in &attempt.delivered {
            match by_relay.iter_mut().find(|(r, _)| r == relay) {
                Some((_, list)) => list.push(address.clone()),
                None => by_relay.push((relay.clone(), vec![address.clone()])),
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
        let retry = &self.deliverer.options().retry;
        if retry.gives_up(number) {
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

    fn emit(&self, event: Event) {
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }
}
