//! One delivery attempt of one message: the suppression list, the rate
//! limits, then the relays in order, each taking the recipients the
//! previous one deferred.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use smtp_mailer_queue::{SharedRate, Suppressions};

use smtp_mailer_host::Error;
use smtp_mailer_host::Mailer;
use smtp_mailer_host::{Envelope, Message, Server};

use super::metrics::{Metrics, RecipientCount};
use super::outcome::{fates, Fate};
use super::pool::{Outgoing, PoolOptions, SessionPool};
use super::rate::{Rate, TokenBucket};
use super::retry::RetryPolicy;

/// How a [`Deliverer`] sends.
#[derive(Debug, Clone, Default)]
pub struct DeliveryOptions {
    /// The connections to each relay.
    pub pool: PoolOptions,
    /// When and how often transient failures are retried (used by the
    /// worker, which schedules the next attempt).
    pub retry: RetryPolicy,
    /// The most messages per relay.
    pub relay_rate: Option<Rate>,
    /// The most recipients per recipient domain (lower-case domain).
    pub domain_rates: Vec<(String, Rate)>,
}

/// A recipient that was not delivered, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The address.
    pub address: String,
    /// The server's reply or the failure, in one line.
    pub reason: String,
}

/// A recipient that a relay accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The address.
    pub address: String,
    /// The relay that took it (`host:port`).
    pub relay: String,
    /// The relay's reply to the message, in one line.
    pub reply: String,
}

/// What one attempt did to the recipients it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attempt {
    /// Accepted, with the relay that took each and its reply.
    pub delivered: Vec<Delivered>,
    /// Failed transiently on every relay: to retry later.
    pub deferred: Vec<Refusal>,
    /// Refused for good.
    pub bounced: Vec<Refusal>,
    /// On the suppression list: not sent.
    pub suppressed: Vec<Refusal>,
}

impl Attempt {
    /// The recipients finished by this attempt: delivered, bounced or
    /// suppressed.
    pub fn finished(&self) -> impl Iterator<Item = &str> {
        self.delivered
            .iter()
            .map(|d| d.address.as_str())
            .chain(self.bounced.iter().map(|r| r.address.as_str()))
            .chain(self.suppressed.iter().map(|r| r.address.as_str()))
    }
}

/// Sends messages through a pool per relay, with failover, rate limits and
/// the suppression list. Shared by the threads of a worker.
pub struct Deliverer {
    relays: Vec<(SessionPool, Option<Limit>)>,
    domains: HashMap<String, Limit>,
    suppressions: Option<Arc<dyn Suppressions>>,
    shared_rates: Option<Arc<dyn SharedRate>>,
    metrics: Arc<Metrics>,
    options: DeliveryOptions,
}

impl Deliverer {
    /// A deliverer to `relays`, tried in order. Errors when there is no
    /// relay.
    pub fn new(
        mailer: Arc<Mailer>,
        relays: Vec<Server>,
        options: DeliveryOptions,
        suppressions: Option<Arc<dyn Suppressions>>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, Error> {
        if relays.is_empty() {
            return Err(Error::invalid("relays", "at least one relay is needed"));
        }
        let relays = relays
            .into_iter()
            .map(|server| {
                let pool = SessionPool::new(mailer.clone(), server, options.pool, metrics.clone());
                let limit = options.relay_rate.map(|rate| Limit {
                    key: format!("relay:{}", pool.relay()),
                    bucket: TokenBucket::new(rate),
                });
                (pool, limit)
            })
            .collect();
        let domains = options
            .domain_rates
            .iter()
            .map(|(domain, rate)| {
                let domain = domain.to_ascii_lowercase();
                let limit = Limit {
                    key: format!("domain:{domain}"),
                    bucket: TokenBucket::new(*rate),
                };
                (domain, limit)
            })
            .collect();
        Ok(Deliverer {
            relays,
            domains,
            suppressions,
            shared_rates: None,
            metrics,
            options,
        })
    }

    /// Keeps the rate limits' turns in `rates`, shared with every other
    /// worker of the same queue, so that the limits hold for all of them
    /// together. When `rates` fails, this process's own turns stand in.
    pub fn share_rates(mut self, rates: Arc<dyn SharedRate>) -> Self {
        self.shared_rates = Some(rates);
        self
    }

    /// Waits for the next turn of `limit`.
    fn take(&self, limit: &Limit) {
        let interval = limit.bucket.interval();
        let wait = match &self.shared_rates {
            Some(rates) => rates
                .reserve(&limit.key, interval)
                .unwrap_or_else(|_| limit.bucket.reserve(Instant::now())),
            None => limit.bucket.reserve(Instant::now()),
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    /// The options it was made with.
    pub fn options(&self) -> &DeliveryOptions {
        &self.options
    }

    /// The counters it updates.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Closes the connections idle longer than the pools' idle timeout.
    pub fn close_idle(&self) {
        for (pool, _) in &self.relays {
            pool.close_idle();
        }
    }

    /// Closes every idle connection (QUIT).
    pub fn close_all(&self) {
        for (pool, _) in &self.relays {
            pool.close_all();
        }
    }

    /// One attempt to deliver `message` to its envelope's recipients except
    /// those in `done` (finished by earlier attempts).
    ///
    /// Suppressed addresses are skipped. The others wait for their
    /// domain's rate limit, then go to the first relay; the ones it refuses
    /// transiently go to the next relay, and so on; what the last relay
    /// defers is returned as deferred. Addresses refused for being bad
    /// mailboxes join the suppression list.
    pub fn attempt(&self, message: &Message, done: &[String]) -> Attempt {
        let mut attempt = Attempt::default();
        let all = envelope_recipients(message);
        let mut remaining: Vec<String> = all
            .iter()
            .filter(|a| !done.iter().any(|d| d.eq_ignore_ascii_case(a)))
            .cloned()
            .collect();
        if let Some(list) = &self.suppressions {
            match list.check(&remaining) {
                Ok(entries) => {
                    let mut kept = Vec::new();
                    for (address, entry) in remaining.into_iter().zip(entries) {
                        match entry {
                            Some(s) => attempt.suppressed.push(Refusal {
                                address,
                                reason: format!("suppressed: {}", s.reason),
                            }),
                            None => kept.push(address),
                        }
                    }
                    remaining = kept;
                }
                Err(e) => {
                    // Sending to a suppressed address is worse than waiting.
                    attempt.deferred = remaining
                        .into_iter()
                        .map(|address| Refusal {
                            address,
                            reason: format!("the suppression list is unavailable: {e}"),
                        })
                        .collect();
                    return self.counted(attempt);
                }
            }
        }
        if remaining.is_empty() {
            return self.counted(attempt);
        }
        for address in &remaining {
            if let Some(limit) = self.domains.get(&domain_of(address)) {
                self.take(limit);
            }
        }
        let mut last_reasons: HashMap<String, String> = HashMap::new();
        for (pool, limit) in &self.relays {
            if remaining.is_empty() {
                break;
            }
            if let Some(limit) = limit {
                self.take(limit);
            }
            // Part of the envelope: the same message (its streamed
            // attachments still streamed) to the remaining paths only.
            let part;
            let outgoing = if remaining.len() == all.len() {
                message
            } else {
                part = Message {
                    envelope: Some(Envelope {
                        reverse_path: match &message.envelope {
                            Some(e) => e.reverse_path.clone(),
                            None => message.from.address.clone(),
                        },
                        forward_paths: remaining.clone(),
                    }),
                    ..message.clone()
                };
                &part
            };
            let result = pool.send(Outgoing::Message(outgoing));
            let mut next = Vec::new();
            for (address, fate) in fates(&result, &remaining) {
                match fate {
                    Fate::Accepted(reply) => attempt.delivered.push(Delivered {
                        address,
                        relay: pool.relay().to_string(),
                        reply,
                    }),
                    Fate::Transient(reason) => {
                        last_reasons.insert(address.clone(), reason);
                        next.push(address);
                    }
                    Fate::Permanent {
                        reason,
                        bad_mailbox,
                    } => {
                        if bad_mailbox {
                            if let Some(list) = &self.suppressions {
                                let _ = list.add(&address, &reason);
                            }
                        }
                        attempt.bounced.push(Refusal { address, reason });
                    }
                }
            }
            remaining = next;
        }
        attempt.deferred = remaining
            .into_iter()
            .map(|address| {
                let reason = last_reasons.remove(&address).unwrap_or_default();
                Refusal { address, reason }
            })
            .collect();
        self.counted(attempt)
    }

    fn counted(&self, attempt: Attempt) -> Attempt {
        let m = &self.metrics;
        m.count(RecipientCount::Delivered, attempt.delivered.len());
        m.count(RecipientCount::Bounced, attempt.bounced.len());
        m.count(RecipientCount::Suppressed, attempt.suppressed.len());
        attempt
    }
}

/// A rate limit: its key among the shared limits, and this process's own
/// turns.
struct Limit {
    key: String,
    bucket: TokenBucket,
}

/// The envelope's recipients: the message's own envelope, else To, Cc and
/// Bcc; each address once.
pub fn envelope_recipients(message: &Message) -> Vec<String> {
    let paths: Vec<&String> = match &message.envelope {
        Some(envelope) => envelope.forward_paths.iter().collect(),
        None => message
            .to
            .iter()
            .chain(&message.cc)
            .chain(&message.bcc)
            .map(|m| &m.address)
            .collect(),
    };
    let mut out: Vec<String> = Vec::new();
    for path in paths {
        if !out.iter().any(|a| a.eq_ignore_ascii_case(path)) {
            out.push(path.clone());
        }
    }
    out
}

/// The lower-case domain of an address.
fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("")
        .to_ascii_lowercase()
}
