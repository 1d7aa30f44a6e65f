//! Counters and latencies of a worker or a bulk send, as Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the send-latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// What became of a recipient, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientCount {
    /// Accepted by a relay.
    Delivered,
    /// Failed transiently; will be retried.
    Deferred,
    /// Refused for good.
    Bounced,
    /// Skipped: on the suppression list.
    Suppressed,
    /// Given up after the last attempt.
    Failed,
}

impl RecipientCount {
    const ALL: [RecipientCount; 5] = [
        RecipientCount::Delivered,
        RecipientCount::Deferred,
        RecipientCount::Bounced,
        RecipientCount::Suppressed,
        RecipientCount::Failed,
    ];

    /// The label value: `delivered`, `deferred`...
    pub fn name(self) -> &'static str {
        match self {
            RecipientCount::Delivered => "delivered",
            RecipientCount::Deferred => "deferred",
            RecipientCount::Bounced => "bounced",
            RecipientCount::Suppressed => "suppressed",
            RecipientCount::Failed => "failed",
        }
    }
}

/// The counters, shared by every thread of a worker. All methods are
/// lock-free.
#[derive(Debug, Default)]
pub struct Metrics {
    recipients: [AtomicU64; 5],
    connections_opened: AtomicU64,
    sends: AtomicU64,
    send_micros: AtomicU64,
    send_buckets: [AtomicU64; BUCKETS.len()],
    queue: [AtomicU64; 3],
}

impl Metrics {
    /// Adds `n` recipients with `outcome`.
    pub fn count(&self, outcome: RecipientCount, n: usize) {
        self.recipients[outcome as usize].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The recipients counted with `outcome` so far.
    pub fn recipients(&self, outcome: RecipientCount) -> u64 {
        self.recipients[outcome as usize].load(Ordering::Relaxed)
    }

    /// Counts a new SMTP connection.
    pub fn connection_opened(&self) {
        self.connections_opened.fetch_add(1, Ordering::Relaxed);
    }

    /// The connections opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.connections_opened.load(Ordering::Relaxed)
    }

    /// Records one send (one SMTP transaction) that took `elapsed`.
    pub fn send_took(&self, elapsed: Duration) {
        self.sends.fetch_add(1, Ordering::Relaxed);
        self.send_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            self.send_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records what the queue holds (ready, delayed, in flight).
    pub fn set_queue(&self, ready: u64, delayed: u64, in_flight: u64) {
        for (gauge, value) in self.queue.iter().zip([ready, delayed, in_flight]) {
            gauge.store(value, Ordering::Relaxed);
        }
    }

    /// The queue's (ready, delayed, in flight) as last recorded.
    pub fn queue(&self) -> (u64, u64, u64) {
        let [r, d, f] = &self.queue;
        (
            r.load(Ordering::Relaxed),
            d.load(Ordering::Relaxed),
            f.load(Ordering::Relaxed),
        )
    }

    /// Everything, in the Prometheus text exposition format (0.0.4).
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP smtp_mailer_recipients_total Recipients by outcome.\n");
        out.push_str("# TYPE smtp_mailer_recipients_total counter\n");
        for outcome in RecipientCount::ALL {
            let _ = writeln!(
                out,
                "smtp_mailer_recipients_total{{outcome=\"{}\"}} {}",
                outcome.name(),
                self.recipients(outcome)
            );
        }
        out.push_str("# HELP smtp_mailer_connections_opened_total SMTP connections opened.\n");
        out.push_str("# TYPE smtp_mailer_connections_opened_total counter\n");
        let _ = writeln!(
            out,
            "smtp_mailer_connections_opened_total {}",
            self.connections_opened()
        );
        out.push_str(
            "# HELP smtp_mailer_send_duration_seconds Time of one SMTP transaction, \
             from MAIL to the reply to the data.\n",
        );
        out.push_str("# TYPE smtp_mailer_send_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.send_buckets) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "smtp_mailer_send_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let sends = self.sends.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "smtp_mailer_send_duration_seconds_bucket{{le=\"+Inf\"}} {sends}"
        );
        let _ = writeln!(
            out,
            "smtp_mailer_send_duration_seconds_sum {}",
            self.send_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "smtp_mailer_send_duration_seconds_count {sends}");
        out.push_str("# HELP smtp_mailer_queue_messages Messages in the queue by state.\n");
        out.push_str("# TYPE smtp_mailer_queue_messages gauge\n");
        let (ready, delayed, in_flight) = self.queue();
        for (state, value) in [
            ("ready", ready),
            ("delayed", delayed),
            ("in_flight", in_flight),
        ] {
            let _ = writeln!(
                out,
                "smtp_mailer_queue_messages{{state=\"{state}\"}} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.count(RecipientCount::Delivered, 3);
        m.count(RecipientCount::Bounced, 1);
        m.connection_opened();
        m.send_took(Duration::from_millis(3));
        m.send_took(Duration::from_millis(70));
        m.send_took(Duration::from_secs(60));
        m.set_queue(5, 1, 2);
        let text = m.render_prometheus();
        for line in [
            "smtp_mailer_recipients_total{outcome=\"delivered\"} 3",
            "smtp_mailer_recipients_total{outcome=\"bounced\"} 1",
            "smtp_mailer_recipients_total{outcome=\"failed\"} 0",
            "smtp_mailer_connections_opened_total 1",
            "smtp_mailer_send_duration_seconds_bucket{le=\"0.005\"} 1",
            "smtp_mailer_send_duration_seconds_bucket{le=\"0.1\"} 2",
            "smtp_mailer_send_duration_seconds_bucket{le=\"30\"} 2",
            "smtp_mailer_send_duration_seconds_bucket{le=\"+Inf\"} 3",
            "smtp_mailer_send_duration_seconds_count 3",
            "smtp_mailer_queue_messages{state=\"delayed\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
