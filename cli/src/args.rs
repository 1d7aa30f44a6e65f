//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Send email through the SmtpMailer WebAssembly component, sandboxed.
///
/// With no --server and no SMTP_URL, messages go to an embedded capture
/// server on loopback, which shows what arrived.
#[derive(Debug, Parser)]
#[command(name = "smtp-mailer", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a message and send it.
    Send(SendArgs),
    /// Build a message and print it without sending.
    Build(BuildArgs),
    /// Run the capture server alone, storing each message it receives.
    Capture(CaptureArgs),
    /// Run a Spin manifest's HTTP and Redis triggers (by default the
    /// repository's spin.toml: POST /send, GET /health) with the mailer
    /// composed in, as `spin up` would, without Spin.
    Serve(ServeArgs),
    /// Generate a DKIM key pair: the private key as PKCS#8 PEM, and the
    /// DNS TXT record that publishes the public key.
    DkimKeygen(DkimKeygenArgs),
    /// Put JSON messages on the durable queue (all or nothing); prints each
    /// one's queue id and Message-ID.
    Enqueue(EnqueueArgs),
    /// Deliver the queued messages: a pool of connections per relay,
    /// failover, retries with backoff, rate limits, the suppression list.
    Worker(WorkerArgs),
    /// List, add or remove suppressed addresses.
    Suppression(SuppressionArgs),
    /// Print what became of a queued message: its state and each
    /// recipient's last reply and attempts.
    Status(StatusArgs),
    /// Check that receivers will accept mail from a domain before the first
    /// send: SPF, DKIM, DMARC and alignment, MX, reverse DNS, the relay
    /// (through the component), one-click unsubscribe. Exit code 1 when a
    /// check fails or the DNS did not answer.
    Doctor(DoctorArgs),
}

/// Where the queue and the suppression list are.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// A SQLite file (PATH or sqlite:PATH, created when missing), or a
    /// Redis server: redis://[user:pass@]host:port[/db][?stream=S&group=G].
    #[arg(
        long,
        env = "SMTP_MAILER_QUEUE",
        hide_env_values = true,
        global = true,
        default_value = "smtp-mailer-queue.sqlite"
    )]
    pub queue: String,
}

/// Options of `enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The queue.
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Files of JSON messages (nodemailer's field names): one object, an
    /// array, or one object per line; - or none for standard input.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Check the messages with another build of the component.
    #[arg(long, value_name = "WASM")]
    pub component: Option<PathBuf>,
}

/// Options of `worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The queue.
    #[command(flatten)]
    pub queue: QueueArgs,
    /// A relay's URL, as for `send` (repeatable: tried in order, a
    /// transient failure moves the recipients to the next).
    #[arg(long = "server", value_name = "URL", required = true)]
    pub servers: Vec<String>,
    /// How to reach the relays.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Messages sent at once: the threads, and the connections per relay.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub sessions: u32,
    /// Messages per connection before it is closed and a new one opened.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub messages_per_connection: u32,
    /// Seconds a connection may stay idle before it is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub idle_timeout: u64,
    /// Attempts per recipient in total before it is given up.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// The delay after the first failed attempt, doubled after each one
    /// (with jitter).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub retry_base_ms: u64,
    /// The longest delay between attempts.
    #[arg(long, value_name = "MS", default_value_t = 600_000)]
    pub retry_max_ms: u64,
    /// The most messages per relay: N/s, N/m or N/h.
    #[arg(long, value_name = "N/UNIT")]
    pub rate: Option<String>,
    /// The most recipients per domain: DOMAIN=N/UNIT (repeatable).
    #[arg(long, value_name = "DOMAIN=N/UNIT")]
    pub domain_rate: Vec<String>,
    /// Seconds a claimed message stays this worker's without a heartbeat;
    /// a dead worker's messages go to another after it.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lease: u64,
    /// This worker's name in the queue (default: host name and process id).
    #[arg(long)]
    pub consumer: Option<String>,
    /// Seconds each message's status (`smtp-mailer status`, the Spin app's
    /// GET /messages/ID) is kept after its last attempt (7 days by default).
    #[arg(long, value_name = "SECONDS", default_value_t = smtp_mailer_queue::DEFAULT_STATUS_TTL_SECONDS)]
    pub status_ttl: u64,
    /// Exit once nothing is ready, delayed or in flight.
    #[arg(long)]
    pub exit_when_empty: bool,
    /// Write the metrics in Prometheus text to this file every second.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Serve the metrics in Prometheus text over HTTP on this address.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// A progress line on a terminal (auto), or always, or never; without
    /// it, one JSON line per event on standard error.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
    /// The component's memory limit in MiB per connection (default 64).
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub memory_limit: Option<u32>,
    /// Print the SMTP conversations on standard error.
    #[arg(short, long)]
    pub verbose: bool,
    /// Sign every message with DKIM.
    #[command(flatten)]
    pub dkim: DkimArgs,
    /// Run another build of the component.
    #[arg(long, value_name = "WASM")]
    pub component: Option<PathBuf>,
}

/// When the worker shows a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// When standard error is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never: JSON lines instead.
    Never,
}

/// Options of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The queue.
    #[command(flatten)]
    pub queue: QueueArgs,
    /// The message: its Message-ID (with or without <>), or the queue id
    /// that `enqueue` or the Spin app's POST /messages answered.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Human-readable lines, or one JSON object.
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

/// Options of `suppression`.
#[derive(Debug, Args)]
pub struct SuppressionArgs {
    /// The queue whose suppression list this is.
    #[command(flatten)]
    pub queue: QueueArgs,
    /// What to do.
    #[command(subcommand)]
    pub action: SuppressionAction,
}

/// What `suppression` does.
#[derive(Debug, Subcommand)]
pub enum SuppressionAction {
    /// Print each suppressed address and why, tab-separated.
    List,
    /// Suppress addresses (an unsubscribe, a complaint...).
    Add {
        /// The addresses.
        #[arg(required = true)]
        addresses: Vec<String>,
        /// Why.
        #[arg(long, default_value = "unsubscribed")]
        reason: String,
    },
    /// Let addresses receive mail again.
    Remove {
        /// The addresses.
        #[arg(required = true)]
        addresses: Vec<String>,
    },
}

/// Options of `dkim-keygen`.
#[derive(Debug, Args)]
pub struct DkimKeygenArgs {
    /// `ed25519` (RFC 8463; short records, but not every receiver checks
    /// it yet) or `rsa` (universal).
    #[arg(long, value_parser = ["ed25519", "rsa"], default_value = "rsa")]
    pub algorithm: String,
    /// The RSA key size: 1024 to 4096 bits.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1024..=4096))]
    pub bits: u32,
    /// The selector the record is published under.
    #[arg(long)]
    pub selector: String,
    /// The signing domain.
    #[arg(long)]
    pub domain: String,
    /// Where to write the private key (created with mode 0600; never
    /// overwritten).
    #[arg(long, value_name = "PEM")]
    pub out: PathBuf,
}

/// Options of `send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The server: smtp://[user[:pass]@]host[:port][?security=MODE], or
    /// smtps:// for implicit TLS. Without it (and without SMTP_URL), the
    /// embedded capture server receives the message.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub server: Option<String>,
    /// How to reach and authenticate to the server.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The component's memory limit in MiB (default 64). Attachments are
    /// streamed from disk, so a large file needs no more.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub memory_limit: Option<u32>,
    /// The receipt's format.
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// Print the SMTP conversation on standard error (AUTH payloads
    /// redacted, the content as a byte count).
    #[arg(short, long)]
    pub verbose: bool,
    /// The message.
    #[command(flatten)]
    pub message: MessageArgs,
    /// Run another build of the component.
    #[arg(long, value_name = "WASM")]
    pub component: Option<PathBuf>,
}

/// How to reach a server given by URL: shared by `send` and `worker`.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// The security mode: implicit-tls, starttls-required (the default for
    /// smtp://), starttls-opportunistic or plaintext-insecure.
    #[arg(long)]
    pub security: Option<String>,
    /// The password, when the URL names a user without one.
    #[arg(
        long = "password-env-only",
        env = "SMTP_PASSWORD",
        hide = true,
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Trust the CA certificates in this PEM file, besides the built-in
    /// Mozilla roots (for a private CA).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// The AUTH mechanism: PLAIN, LOGIN, SCRAM-SHA-256, XOAUTH2 or
    /// OAUTHBEARER (the strongest both sides offer when absent). With
    /// XOAUTH2 or OAUTHBEARER the URL's password is the OAuth2 token.
    #[arg(long, value_name = "MECH")]
    pub auth: Option<String>,
    /// Connect to this IP address instead of resolving the host.
    #[arg(long)]
    pub connect_address: Option<String>,
    /// The name to give in EHLO (default: localhost).
    #[arg(long)]
    pub client_name: Option<String>,
    /// Seconds to wait for each reply (and 2x for the data).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
}

/// Options of `build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The message.
    #[command(flatten)]
    pub message: MessageArgs,
    /// Run another build of the component.
    #[arg(long, value_name = "WASM")]
    pub component: Option<PathBuf>,
}

/// The message, from flags or from JSON.
#[derive(Debug, Args)]
pub struct MessageArgs {
    /// A message in JSON with nodemailer's field names, from a file or - for
    /// standard input. Flags given as well add to it.
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<String>,
    /// The author: "Name <address>" or an address.
    #[arg(long)]
    pub from: Option<String>,
    /// A recipient (repeatable; commas separate too).
    #[arg(long)]
    pub to: Vec<String>,
    /// A copied recipient (repeatable).
    #[arg(long)]
    pub cc: Vec<String>,
    /// A blind-copied recipient (repeatable): envelope only.
    #[arg(long)]
    pub bcc: Vec<String>,
    /// Where replies go (repeatable).
    #[arg(long)]
    pub reply_to: Vec<String>,
    /// The subject.
    #[arg(long)]
    pub subject: Option<String>,
    /// The plain-text body.
    #[arg(long, conflicts_with = "text_file")]
    pub text: Option<String>,
    /// The plain-text body, from a file.
    #[arg(long, value_name = "PATH")]
    pub text_file: Option<PathBuf>,
    /// The HTML body.
    #[arg(long, conflicts_with = "html_file")]
    pub html: Option<String>,
    /// The HTML body, from a file.
    #[arg(long, value_name = "PATH")]
    pub html_file: Option<PathBuf>,
    /// A file to attach (repeatable). PATH=CID attaches it inline, for
    /// <img src="cid:CID"> in the HTML body.
    #[arg(long, value_name = "PATH[=CID]")]
    pub attach: Vec<String>,
    /// An extra header, 'Name: value' (repeatable).
    #[arg(long, value_name = "NAME: VALUE")]
    pub header: Vec<String>,
    /// The Message-ID, without angle brackets (generated when absent).
    #[arg(long)]
    pub message_id: Option<String>,
    /// DKIM signing.
    #[command(flatten)]
    pub dkim: DkimArgs,
}

/// DKIM signing: shared by the message options and `worker`.
#[derive(Debug, Args)]
pub struct DkimArgs {
    /// Sign with DKIM using this PKCS#8 PEM private key (RSA or Ed25519);
    /// needs --dkim-selector and --dkim-domain.
    #[arg(long, value_name = "PEM", requires_all = ["dkim_selector", "dkim_domain"])]
    pub dkim_key: Option<PathBuf>,
    /// The DKIM selector (`s=`).
    #[arg(long, requires = "dkim_key")]
    pub dkim_selector: Option<String>,
    /// The DKIM signing domain (`d=`).
    #[arg(long, requires = "dkim_key")]
    pub dkim_domain: Option<String>,
    /// The DKIM identity (`i=`), `[local]@domain`.
    #[arg(long, requires = "dkim_key")]
    pub dkim_identity: Option<String>,
    /// Simple DKIM canonicalization instead of relaxed.
    #[arg(long, requires = "dkim_key")]
    pub dkim_simple: bool,
}

/// Options of `capture`.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Where to store each message (<id>.eml and <id>.json).
    #[arg(long)]
    pub dir: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:2525")]
    pub listen: SocketAddr,
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The Spin manifest to run, as `spin up -f` does: its variables (with
    /// their defaults; required ones must be set), triggers, components,
    /// allowed_outbound_hosts and dependencies. Without it, the repository's
    /// spin.toml (and spin-redis.toml with --redis-address) with the
    /// components built into this binary.
    #[arg(long, value_name = "spin.toml")]
    pub app: Option<PathBuf>,
    /// The address to listen on for the HTTP triggers; port 0 picks a free
    /// port. The first line printed says where it listens.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Replaces the manifest's tcp:// allowed_outbound_hosts:
    /// tcp://IP:port or tcp://CIDR:port (repeatable; a host name never
    /// matches).
    #[arg(long = "allow-outbound", value_name = "tcp://IP:PORT")]
    pub allow_outbound: Vec<String>,
    /// A file of name=value lines giving the application variables, besides
    /// the environment's SPIN_VARIABLE_<NAME> (the file wins).
    #[arg(long, value_name = "FILE")]
    pub variables_file: Option<PathBuf>,
    /// Replaces the HTTP component, such as spin build's
    /// target/spin/wasm32-wasip2/release/smtp_mailer_spin_http.wasm.
    #[arg(long, value_name = "WASM")]
    pub http_component: Option<PathBuf>,
    /// Replaces the mailer component (the dependency).
    #[arg(long, value_name = "WASM")]
    pub component: Option<PathBuf>,
    /// The memory limit of each request, in MiB (64 by default).
    #[arg(long, value_name = "MIB")]
    pub memory_limit: Option<u32>,
    /// Replaces the Redis triggers' server (redis://host[:port]); without
    /// --app, also runs the built-in Redis-triggered app (spin-redis.toml).
    #[arg(long, value_name = "redis://HOST:PORT")]
    pub redis_address: Option<String>,
    /// Replaces the Redis triggers' channel.
    #[arg(long)]
    pub redis_channel: Option<String>,
}

/// Options of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The sending domain: the DKIM signing domain (d=), and the From and
    /// return-path domain unless --from or --bounce-domain say otherwise.
    #[arg(long)]
    pub domain: String,
    /// The From address the mail will carry (postmaster@DOMAIN when
    /// absent).
    #[arg(long)]
    pub from: Option<String>,
    /// The DKIM selector: the key record is at SELECTOR._domainkey.DOMAIN.
    #[arg(long)]
    pub dkim_selector: Option<String>,
    /// The DKIM private key (PKCS#8 PEM): the record must publish its public
    /// half, and a message signed with it must verify.
    #[arg(long, value_name = "PEM", requires = "dkim_selector")]
    pub dkim_key: Option<PathBuf>,
    /// The DKIM record may say t=y: testing on purpose.
    #[arg(long)]
    pub dkim_testing_expected: bool,
    /// The IP address the relay sends from: SPF must authorize it, and its
    /// reverse DNS must forward-confirm.
    #[arg(long, value_name = "IP")]
    pub sending_ip: Option<std::net::IpAddr>,
    /// The return-path (bounce) domain, when not DOMAIN: its SPF is checked
    /// and its MX must take the bounces.
    #[arg(long)]
    pub bounce_domain: Option<String>,
    /// The host that processes bounces: the bounce domain's MX must name
    /// it.
    #[arg(long, value_name = "HOST")]
    pub inbound_host: Option<String>,
    /// The relay to probe through the component:
    /// smtp://[user[:pass]@]host[:port][?security=MODE] or smtps://.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub server: Option<String>,
    /// How to reach and authenticate to the relay.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The name server to ask, IP or IP:PORT (the system's when absent).
    #[arg(long, value_name = "IP:PORT")]
    pub dns_server: Option<String>,
    /// Seconds one DNS query may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub dns_timeout: u64,
    /// A message as it will be sent (JSON, as send --json): checked for
    /// one-click unsubscribe, DKIM-signed, and a From in the domain.
    #[arg(long, value_name = "FILE")]
    pub message: Option<PathBuf>,
    /// The report's format: for people, or one JSON object with one entry
    /// per check.
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

/// Receipt formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Human,
    /// One JSON object.
    Json,
}
