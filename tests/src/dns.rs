//! DNS servers on loopback for the doctor's tests.
//!
//! * [`TestDns`]: a real authoritative server (hickory-server, in this
//!   process) answering UDP and TCP on one free port of 127.0.0.1, serving
//!   zones written as zone-file text ([`zone`] adds the SOA and NS).
//! * [`SilentDns`]: a UDP socket (and a TCP listener) on a free port that
//!   never answers, for the checks' time limits.
//!
//! Both stop when dropped.
//!
//! ```no_run
//! use smtp_mailer_tests::dns::{zone, TestDns};
//!
//! let dns = TestDns::start(&[zone("example.test", "@ IN TXT \"v=spf1 -all\"")]);
//! // smtp-mailer doctor --dns-server {dns.address()} ...
//! ```

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::str::FromStr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::{LowerName, Name};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use hickory_server::Server;
use tokio::sync::oneshot;

/// A zone: its origin and its records in zone-file syntax.
#[derive(Debug, Clone)]
pub struct Zone {
    /// The origin, such as `example.test` (no final dot needed).
    pub origin: String,
    /// The zone file's text, `$ORIGIN` and SOA included.
    pub text: String,
}

/// A zone for `origin` holding `records` (zone-file lines, relative names
/// under the origin), with an SOA and an NS record added, TTL 60.
pub fn zone(origin: &str, records: &str) -> Zone {
    let origin = origin.trim_end_matches('.');
    Zone {
        origin: origin.to_string(),
        text: format!(
            "$ORIGIN {origin}.\n$TTL 60\n\
             @ IN SOA ns.{origin}. hostmaster.{origin}. 1 60 60 600 60\n\
             @ IN NS ns.{origin}.\n\
             {records}\n"
        ),
    }
}

/// TXT data as zone-file strings of at most 255 bytes each, for long
/// records such as DKIM keys.
pub fn txt_strings(value: &str) -> String {
    value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An authoritative DNS server on 127.0.0.1, stopped when dropped.
pub struct TestDns {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestDns {
    /// Serves `zones` over UDP and TCP on a free port. Panics when a zone
    /// does not parse (naming it) or no port can be bound.
    pub fn start(zones: &[Zone]) -> TestDns {
        let mut catalog = Catalog::new();
        for zone in zones {
            let origin = Name::from_str(&format!("{}.", zone.origin))
                .unwrap_or_else(|e| panic!("zone {}: bad origin: {e}", zone.origin));
            let (origin, records) = Parser::new(zone.text.as_str(), None, Some(origin))
                .parse()
                .unwrap_or_else(|e| {
                    panic!("zone {} does not parse: {e}\n{}", zone.origin, zone.text)
                });
            let handler = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
                origin.clone(),
                records,
                ZoneType::Primary,
                AxfrPolicy::Deny,
            )
            .unwrap_or_else(|e| panic!("zone {}: {e}", zone.origin));
            let handler: Arc<dyn ZoneHandler> = Arc::new(handler);
            catalog.upsert(LowerName::new(&origin), vec![handler]);
        }
        let (udp, tcp) = bind_pair();
        let address = udp.local_addr().expect("bound UDP address");
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the DNS server");
                runtime.block_on(async move {
                    udp.set_nonblocking(true).expect("non-blocking UDP");
                    tcp.set_nonblocking(true).expect("non-blocking TCP");
                    let mut server = Server::new(catalog);
                    server.register_socket(
                        tokio::net::UdpSocket::from_std(udp).expect("tokio UDP socket"),
                    );
                    server.register_listener(
                        tokio::net::TcpListener::from_std(tcp).expect("tokio TCP listener"),
                        Duration::from_secs(5),
                        64 * 1024,
                    );
                    let _ = ready_tx.send(());
                    let _ = stopped.await;
                    let _ = server.shutdown_gracefully().await;
                });
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the DNS server started");
        TestDns {
            address,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Where it answers, for `--dns-server`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A UDP socket and a TCP port on one free port of 127.0.0.1.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind UDP on 127.0.0.1: {e}"));
        let port = udp.local_addr().expect("bound UDP address").port();
        if let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            return (udp, tcp);
        }
    }
    panic!("no port of 127.0.0.1 was free for both UDP and TCP");
}

/// A name server that never answers: queries land in its socket's buffer
/// and stay there. Stopped (the port freed) when dropped.
pub struct SilentDns {
    udp: UdpSocket,
    _tcp: TcpListener,
}

impl SilentDns {
    /// Binds a free port of 127.0.0.1 (UDP and TCP) and never answers.
    pub fn start() -> SilentDns {
        let (udp, tcp) = bind_pair();
        SilentDns { udp, _tcp: tcp }
    }

    /// Where it (does not) answer.
    pub fn address(&self) -> SocketAddr {
        self.udp.local_addr().expect("bound UDP address")
    }
}
