//! Timing a loop, and printing the table.

use std::time::{Duration, Instant};

/// The time of each iteration of a loop, and the loop's wall time.
pub struct Timings {
    each: Vec<Duration>,
    pub total: Duration,
}

impl Timings {
    /// Runs `op` `count` times, timing each call and the whole.
    pub fn measure<E>(count: usize, mut op: impl FnMut() -> Result<(), E>) -> Result<Timings, E> {
        let mut each = Vec::with_capacity(count);
        let started = Instant::now();
        for _ in 0..count {
            let t = Instant::now();
            op()?;
            each.push(t.elapsed());
        }
        let total = started.elapsed();
        each.sort();
        Ok(Timings { each, total })
    }

    /// Several rounds of the same loop: every iteration, and the rate of
    /// the best round (the one the machine's noise disturbed least).
    pub fn rounds(rounds: Vec<Timings>) -> Rounds {
        let best = rounds.iter().map(Timings::per_second).fold(0.0, f64::max);
        let mut each: Vec<Duration> = rounds.into_iter().flat_map(|r| r.each).collect();
        each.sort();
        let total = each.iter().sum();
        Rounds {
            all: Timings { each, total },
            best,
        }
    }

    pub fn per_second(&self) -> f64 {
        self.each.len() as f64 / self.total.as_secs_f64()
    }

    pub fn quantile(&self, q: f64) -> Duration {
        let last = self.each.len().saturating_sub(1);
        self.each[((last as f64) * q).round() as usize]
    }

    pub fn max(&self) -> Duration {
        self.each.last().copied().unwrap_or_default()
    }

    /// How many iterations took 40 ms or more: a Nagle and delayed-ACK
    /// stall, or the machine's noise.
    pub fn stalls(&self) -> usize {
        self.each
            .iter()
            .filter(|d| **d >= Duration::from_millis(40))
            .count()
    }

    /// "p50 0.41 ms, p99 0.90 ms, max 3.2 ms, 0 >= 40 ms"
    pub fn latencies(&self) -> String {
        format!(
            "p50 {}, p99 {}, max {}; {} >= 40 ms",
            ms(self.quantile(0.5)),
            ms(self.quantile(0.99)),
            ms(self.max()),
            self.stalls()
        )
    }
}

/// The rounds of one loop.
pub struct Rounds {
    /// Every iteration of every round.
    pub all: Timings,
    /// The best round's iterations per second.
    pub best: f64,
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

pub fn rate(per_second: f64) -> String {
    format!("{}/s", thousands(per_second.round() as u64))
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn bytes(n: usize) -> String {
    if n >= 10 << 20 {
        format!("{:.0} MiB", n as f64 / (1 << 20) as f64)
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else {
        format!("{} KiB", thousands((n as u64).div_ceil(1024)))
    }
}

/// One row: what, SmtpMailer's figure, the reference's figure, the ratio,
/// and the target with whether it holds.
pub struct Row {
    pub what: String,
    pub ours: String,
    pub reference: String,
    pub ratio: String,
    pub target: String,
}

impl Row {
    pub fn new(what: impl Into<String>, ours: impl Into<String>) -> Row {
        Row {
            what: what.into(),
            ours: ours.into(),
            reference: String::new(),
            ratio: String::new(),
            target: String::new(),
        }
    }

    pub fn against(mut self, reference: impl Into<String>, ratio: f64) -> Row {
        self.reference = reference.into();
        self.ratio = format!("{ratio:.2}x");
        self
    }

    pub fn reference(mut self, reference: impl Into<String>) -> Row {
        self.reference = reference.into();
        self
    }

    /// `holds` decides the verdict printed after `target`.
    pub fn target(mut self, target: &str, holds: bool) -> Row {
        self.target = format!("{target}: {}", if holds { "holds" } else { "MISSED" });
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.target = note.into();
        self
    }
}

/// A Markdown table, so that BENCHMARKS.md can take it as printed.
pub fn print_table(title: &str, rows: &[Row]) {
    println!("\n### {title}\n");
    println!("| measure | SmtpMailer | reference | ratio | target |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.what, r.ours, r.reference, r.ratio, r.target
        );
    }
}
