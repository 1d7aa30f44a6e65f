//! `POST /messages` (accept into the durable queue) against `POST /send`
//! (send now) through `smtp-mailer serve --app spin.toml` (the Spin app's
//! HTTP component composed with the mailer), in the same run: requests per
//! second and latency percentiles with 1 and 40 concurrent clients, against
//! aiosmtpd and redis-server on loopback; `GET /health` gives the cost of a
//! request that does nothing. Prints one Markdown table. Run with
//! `cargo bench -p smtp-mailer-tests --bench serve` after
//! `cargo build --release --bin smtp-mailer` and `scripts/install-test-tools.sh`.

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use smtp_mailer_tests::serve::{repository_file, request, ServeProcess, API_KEY};
use smtp_mailer_tests::servers::{Aiosmtpd, Redis};

const BODY: &[u8] = br#"{"from": "app@example.test", "to": "ada@example.test", "subject": "Bench", "text": "One short message."}"#;

/// Requests each run makes in all (a warm-up of 40 first).
const REQUESTS: usize = 800;

struct Run {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

/// `clients` threads share `REQUESTS` requests of `call`; every answer must
/// be `expected`.
fn run(clients: usize, expected: u16, call: Arc<dyn Fn() -> u16 + Send + Sync>) -> Run {
    for _ in 0..40 {
        assert_eq!(call(), expected, "warm-up");
    }
    let start = Arc::new(Barrier::new(clients + 1));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let call = Arc::clone(&call);
            let start = Arc::clone(&start);
            let mine = REQUESTS / clients + usize::from(c < REQUESTS % clients);
            std::thread::spawn(move || {
                start.wait();
                (0..mine)
                    .map(|_| {
                        let began = Instant::now();
                        let status = call();
                        assert_eq!(status, expected);
                        began.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let mut times: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a client"))
        .collect();
    let elapsed = began.elapsed();
    times.sort();
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    Run {
        rate: times.len() as f64 / elapsed.as_secs_f64(),
        p50: at(50),
        p99: at(99),
    }
}

fn post(address: SocketAddr, path: &'static str) -> Arc<dyn Fn() -> u16 + Send + Sync> {
    Arc::new(move || {
        let auth = format!("Bearer {API_KEY}");
        let headers = [
            ("Content-Type", "application/json"),
            ("Authorization", auth.as_str()),
        ];
        request(address, "POST", path, &headers, BODY).status
    })
}

fn main() {
    let smtp = Aiosmtpd::start();
    let redis = Redis::start();
    let port = smtp.port().to_string();
    let redis_address = redis.address();
    let serve = ServeProcess::start_app(
        &repository_file("spin.toml"),
        &[
            ("smtp_host", "mail.example.test"),
            ("smtp_connect_address", "127.0.0.1"),
            ("smtp_port", &port),
            ("smtp_security", "plaintext-insecure"),
            ("api_key", API_KEY),
            ("redis_address", &redis_address),
        ],
        &[],
    );
    let address = serve.address();
    let health: Arc<dyn Fn() -> u16 + Send + Sync> =
        Arc::new(move || request(address, "GET", "/health", &[], b"").status);
    println!(
        "{REQUESTS} requests per row, each on a new HTTP connection, through \
         `smtp-mailer serve --app spin.toml` (aiosmtpd and redis-server on loopback):\n"
    );
    println!("| request | clients | requests/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut rates = Vec::new();
    for clients in [1, 40] {
        for (name, expected, call) in [
            ("GET /health", 200, Arc::clone(&health)),
            ("POST /send", 200, post(address, "/send")),
            ("POST /messages", 202, post(address, "/messages")),
        ] {
            let r = run(clients, expected, call);
            println!(
                "| {name} | {clients} | {:.0} | {:.2} | {:.2} |",
                r.rate,
                ms(r.p50),
                ms(r.p99)
            );
            rates.push((name, clients, r.rate, r.p99));
        }
    }
    let rate = |name: &str, clients: usize| {
        rates
            .iter()
            .find(|(n, c, _, _)| *n == name && *c == clients)
            .map(|r| (r.2, r.3))
            .expect("a measured row")
    };
    for clients in [1, 40] {
        let (messages, p99) = rate("POST /messages", clients);
        let (send, _) = rate("POST /send", clients);
        println!(
            "\n{clients} client(s): POST /messages at {:.2}x the rate of POST /send \
             (aim: at least 3x at 40); its p99 {:.2} ms (aim: under 20 ms at 40).",
            messages / send,
            ms(p99)
        );
    }
    let delivered = smtp.wait_for(2 * (REQUESTS + 40), Duration::from_secs(120)).len();
    println!("\n{delivered} messages arrived at aiosmtpd from POST /send.");
}
