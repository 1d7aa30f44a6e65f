//! `smtp-mailer worker`: the queue worker, with a progress line on a
//! terminal or one JSON line per event otherwise, and the metrics as
//! Prometheus text in a file or over HTTP.

use std::io::{IsTerminal, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use smtp_mailer_delivery::worker::{Event, Worker, WorkerOptions};
use smtp_mailer_delivery::{
    Deliverer, DeliveryOptions, Metrics, PoolOptions, Rate, RecipientCount, RetryPolicy,
};
use smtp_mailer_host::{Mailbox, Message};

use crate::args::{Progress, WorkerArgs};
use crate::message::dkim_from_args;
use crate::output::{EXIT_INVALID, EXIT_OK, EXIT_TEMPFAIL};
use crate::queue::open_store;
use crate::url::server_from_args;

/// `smtp-mailer worker`.
pub fn worker(args: WorkerArgs) -> u8 {
    let options = match delivery_options(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let mut servers = Vec::new();
    for url in &args.servers {
        match server_from_args(url, &args.connection, args.verbose) {
            Ok(server) => servers.push(server),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_INVALID;
            }
        }
    }
    let dkim = match dkim_from_args(&args.dkim) {
        Ok(dkim) => dkim,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let lease = Duration::from_secs(args.lease.max(1));
    let store = match open_store(&args.queue.queue, lease) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let mailer = match crate::mailer(args.component.as_deref(), args.memory_limit) {
        Ok(m) => Arc::new(m),
        Err(code) => return code,
    };
    if let Some(dkim) = &dkim {
        // A bad key fails now, not once per message.
        let probe = Message {
            from: Mailbox::new(format!("dkim-check@{}", dkim.domain)),
            to: vec![Mailbox::new(format!("dkim-check@{}", dkim.domain))],
            text: Some("check".into()),
            dkim: Some(dkim.clone()),
            ..Message::default()
        };
        if let Err(e) = mailer.build_message(&probe) {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    }
    let metrics = Arc::new(Metrics::default());
    let deliverer = match Deliverer::new(
        mailer,
        servers,
        options,
        Some(store.suppressions.clone()),
        metrics.clone(),
    ) {
        Ok(d) => Arc::new(d.share_rates(store.rates.clone())),
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let progress = match args.progress {
        Progress::Always => true,
        Progress::Never => false,
        Progress::Auto => std::io::stderr().is_terminal(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("error: cannot handle signal {signal}: {e}");
            return EXIT_TEMPFAIL;
        }
    }
    if let Some(address) = args.metrics_listen {
        match TcpListener::bind(address) {
            Ok(listener) => {
                let metrics = metrics.clone();
                std::thread::spawn(move || serve_metrics(listener, &metrics));
            }
            Err(e) => {
                eprintln!("error: --metrics-listen {address}: {e}");
                return EXIT_INVALID;
            }
        }
    }
    let consumer = args.consumer.clone().unwrap_or_else(default_consumer);
    let worker = Worker::new(
        deliverer,
        store.queue.clone(),
        WorkerOptions {
            consumer,
            threads: args.sessions as usize,
            exit_when_empty: args.exit_when_empty,
            lease,
            poll: Duration::from_millis(200),
            dkim,
            status_ttl: Duration::from_secs(args.status_ttl),
        },
    );
    let stderr = Arc::new(Mutex::new(()));
    let lock = stderr.clone();
    let worker = worker.on_queue_error(move |e, pause| {
        let line = json!({
            "event": "queue-error",
            "error": e.to_string(),
            "retry_in_ms": pause.as_millis() as u64,
        });
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(std::io::stderr(), "{line}");
    });
    let worker = if progress {
        worker
    } else {
        worker.on_event(move |event: &Event| log_event(&stderr, event))
    };

    let finished = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut shown = false;
            while !finished.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(250));
                if let Some(path) = &args.metrics_file {
                    write_metrics(path, &metrics);
                }
                if progress {
                    show_progress(&metrics, started.elapsed());
                    shown = true;
                }
            }
            if shown {
                show_progress(&metrics, started.elapsed());
                eprintln!();
            }
        });
        worker.run(&stop);
        finished.store(true, Ordering::SeqCst);
    });
    if let Some(path) = &args.metrics_file {
        write_metrics(path, &metrics);
    }
    let summary = json!({
        "delivered": metrics.recipients(RecipientCount::Delivered),
        "deferred": metrics.recipients(RecipientCount::Deferred),
        "bounced": metrics.recipients(RecipientCount::Bounced),
        "suppressed": metrics.recipients(RecipientCount::Suppressed),
        "failed": metrics.recipients(RecipientCount::Failed),
    });
    println!("{summary}");
    EXIT_OK
}

fn delivery_options(args: &WorkerArgs) -> Result<DeliveryOptions, String> {
    let relay_rate = match &args.rate {
        Some(rate) => Some(rate.parse::<Rate>().map_err(|e| format!("--rate: {e}"))?),
        None => None,
    };
    let mut domain_rates = Vec::new();
    for entry in &args.domain_rate {
        let (domain, rate) = entry
            .split_once('=')
            .ok_or_else(|| format!("--domain-rate {entry}: use DOMAIN=N/UNIT"))?;
        let rate = rate
            .parse::<Rate>()
            .map_err(|e| format!("--domain-rate {entry}: {e}"))?;
        domain_rates.push((domain.trim().to_ascii_lowercase(), rate));
    }
    Ok(DeliveryOptions {
        pool: PoolOptions {
            max_sessions: args.sessions as usize,
            messages_per_connection: args.messages_per_connection,
            idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
        },
        retry: RetryPolicy {
            max_attempts: args.max_attempts,
            base: Duration::from_millis(args.retry_base_ms),
            max: Duration::from_millis(args.retry_max_ms.max(args.retry_base_ms)),
        },
        relay_rate,
        domain_rates,
    })
}

/// `host-pid`: unique among the workers of a queue on many machines.
fn default_consumer() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}

fn log_event(lock: &Mutex<()>, event: &Event) {
    if let Ok(line) = serde_json::to_string(event) {
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

fn show_progress(metrics: &Metrics, elapsed: Duration) {
    let delivered = metrics.recipients(RecipientCount::Delivered);
    let (ready, delayed, in_flight) = metrics.queue();
    let rate = delivered as f64 / elapsed.as_secs_f64().max(0.001);
    let _ = write!(
        std::io::stderr(),
        "\rdelivered {delivered}  deferred {}  bounced {}  suppressed {}  failed {}  \
         {rate:.1}/s  queue {ready} ready, {delayed} delayed, {in_flight} in flight  ",
        metrics.recipients(RecipientCount::Deferred),
        metrics.recipients(RecipientCount::Bounced),
        metrics.recipients(RecipientCount::Suppressed),
        metrics.recipients(RecipientCount::Failed),
    );
}

/// Replaces the file at once (written aside, then renamed), so a scraper
/// never reads half of it.
fn write_metrics(path: &Path, metrics: &Metrics) {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".tmp");
    let aside = std::path::PathBuf::from(aside);
    if std::fs::write(&aside, metrics.render_prometheus()).is_ok() {
        let _ = std::fs::rename(&aside, path);
    }
}

/// Answers every HTTP request with the metrics.
fn serve_metrics(listener: TcpListener, metrics: &Metrics) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        // Read the request head (up to 8 KiB); its content does not matter.
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let body = metrics.render_prometheus();
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
