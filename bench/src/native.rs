//! The core compiled natively, driven over `std::net::TcpStream` the way
//! the component's driver drives it over wasi:sockets: each flight the
//! client hands out leaves in one write, replies are parsed with the same
//! `ReplyParser`. STARTTLS runs rustls (ring) natively.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig as TlsConfig, ClientConnection, RootCertStore, StreamOwned};
use smtp_mailer_core::smtp::reply::ReplyParser;
use smtp_mailer_core::smtp::{Client, ClientConfig, Event, TlsPolicy};

use crate::workload;

/// The stream under the client: plain TCP, then TLS after STARTTLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    Closed,
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Closed => Ok(()),
        }
    }
}

/// STARTTLS settings: the rustls configuration and the certificate's name.
pub struct Tls {
    pub config: Arc<TlsConfig>,
    pub host: String,
}

/// Mozilla's roots plus `ca_pem`, with ring: what the component builds for
/// every send.
pub fn tls_config(ca_pem: &str) -> Arc<TlsConfig> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.expect("the test CA is valid PEM"))
            .expect("the test CA is a usable certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = TlsConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// One SMTP connection driven by the native core.
pub struct Session {
    conn: Conn,
    tls: Option<Tls>,
    client: Client,
    parser: ReplyParser,
    input: Vec<u8>,
    serial: u64,
}

impl Session {
    /// Connects, reads the greeting, says EHLO (and STARTTLS when `tls` is
    /// given). TCP_NODELAY is set, as any native client can; with one
    /// write per flight it changes nothing on a plaintext session.
    pub fn open(address: SocketAddr, tls: Option<Tls>) -> io::Result<Session> {
        let tcp = TcpStream::connect(address)?;
        tcp.set_nodelay(true)?;
        let policy = match tls {
            Some(_) => TlsPolicy::StartTlsRequired,
            None => TlsPolicy::PlaintextInsecure,
        };
        let config = ClientConfig::new("bench.example")
            .map_err(|e| io::Error::other(e.to_string()))?
            .with_tls(policy);
        let mut session = Session {
            conn: Conn::Plain(tcp),
            tls,
            client: Client::new(config),
            parser: ReplyParser::new(),
            input: Vec::with_capacity(8 * 1024),
            serial: 0,
        };
        match session.run()? {
            Event::Ready => Ok(session),
            other => Err(io::Error::other(format!("not ready: {other:?}"))),
        }
    }

    /// Builds the benchmark's message with the core, as the component does
    /// for every send, and sends it.
    pub fn send_message(&mut self) -> io::Result<()> {
        self.serial += 1;
        let built = workload::core_message()
            .build(&workload::build_context(self.serial))
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.client
            .send(built.envelope, &built.bytes)
            .map_err(|e| io::Error::other(e.to_string()))?;
        match self.run()? {
            Event::Delivered(_) => Ok(()),
            other => Err(io::Error::other(format!("not delivered: {other:?}"))),
        }
    }

    /// QUIT and wait for the goodbye.
    pub fn quit(mut self) -> io::Result<()> {
        self.client
            .quit()
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.run().map(drop)
    }

    fn run(&mut self) -> io::Result<Event> {
        loop {
            let output = self.client.take_output();
            if !output.is_empty() {
                self.conn.write_all(&output)?;
                self.conn.flush()?;
            }
            if let Some(event) = self.client.poll_event() {
                if event == Event::StartTls {
                    self.upgrade()?;
                    continue;
                }
                return Ok(event);
            }
            if self.client.wait().is_none() {
                return Err(io::Error::other("the client closed"));
            }
            let reply = self.read_reply()?;
            self.client
                .handle_reply(reply)
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
    }

    fn read_reply(&mut self) -> io::Result<smtp_mailer_core::smtp::reply::Reply> {
        loop {
            if !self.input.is_empty() {
                let (used, reply) = self
                    .parser
                    .feed(&self.input)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                self.input.drain(..used);
                if let Some(reply) = reply {
                    return Ok(reply);
                }
            }
            let start = self.input.len();
            self.input.resize(start + 8 * 1024, 0);
            let read = self.conn.read(&mut self.input[start..]);
            let read = read.inspect_err(|_| self.input.truncate(start))?;
            self.input.truncate(start + read);
            if read == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    fn upgrade(&mut self) -> io::Result<()> {
        let tls = self
            .tls
            .as_ref()
            .ok_or_else(|| io::Error::other("STARTTLS without TLS settings"))?;
        if !self.input.is_empty() {
            return Err(io::Error::other("bytes after the 220 to STARTTLS"));
        }
        let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Closed) else {
            return Err(io::Error::other("STARTTLS twice"));
        };
        let name = ServerName::try_from(tls.host.clone()).map_err(io::Error::other)?;
        let connection =
            ClientConnection::new(tls.config.clone(), name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        self.conn = Conn::Tls(Box::new(stream));
        self.client.tls_established();
        Ok(())
    }
}
