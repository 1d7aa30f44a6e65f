//! Round trips as the wire sees them: a relay between one client and the
//! sink that counts the client's turns, the times the client spoke after
//! the server had (each one a round trip the client waited for).
//!
//! Both of its sockets set TCP_NODELAY and every read is forwarded at
//! once, so the relay adds latency but no Nagle stall and never merges two
//! of the client's flights; its rates are not measured, only its counts.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A relay for one connection to `upstream`.
pub struct Relay {
    /// Where the client connects.
    pub address: SocketAddr,
    turns: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Listens on a free loopback port; the first connection is relayed to
    /// `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<Relay> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let address = listener.local_addr()?;
        let turns = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&turns);
        let thread = thread::spawn(move || {
            if let Err(e) = relay(&listener, upstream, &counted) {
                eprintln!("bench: the counting relay failed: {e}");
            }
        });
        Ok(Relay {
            address,
            turns,
            thread: Some(thread),
        })
    }

    /// The client's turns so far: its first flight, and each flight it
    /// wrote after the server had written.
    pub fn turns(&self) -> usize {
        self.turns.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn relay(listener: &TcpListener, upstream: SocketAddr, turns: &AtomicUsize) -> io::Result<()> {
    let (client, _) = listener.accept()?;
    let server = TcpStream::connect(upstream)?;
    for socket in [&client, &server] {
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(Duration::from_secs(60)))?;
    }
    // Set by the server's side before it forwards anything: the client
    // cannot answer before that.
    let server_spoke = Arc::new(AtomicBool::new(true));
    let back = {
        let (mut from, mut to) = (server.try_clone()?, client.try_clone()?);
        let server_spoke = Arc::clone(&server_spoke);
        thread::spawn(move || {
            let mut buffer = vec![0; 64 * 1024];
            while let Ok(n) = from.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                server_spoke.store(true, Ordering::SeqCst);
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        })
    };
    let (mut from, mut to) = (client, server);
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            // smtp-source resets the connection after QUIT: an end too.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => 0,
            other => other?,
        };
        if n == 0 {
            break;
        }
        if server_spoke.swap(false, Ordering::SeqCst) {
            turns.fetch_add(1, Ordering::SeqCst);
        }
        to.write_all(&buffer[..n])?;
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = back.join();
    Ok(())
}
