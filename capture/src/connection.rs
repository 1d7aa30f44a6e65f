//! The I/O driver for one accepted connection: socket reads and writes, the
//! idle timeout, and handing finished messages to [`Shared`].

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};

use crate::session::Session;
use crate::shared::Shared;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Deregisters the connection however its thread ends.
struct Registration<'a> {
    shared: &'a Shared,
    connection: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.shared.deregister(self.connection);
    }
}

/// Serves one connection until the client quits, the session closes, the
/// connection is idle too long, or the server stops.
///
/// Replies to everything read in one go are written in one go, so a
/// pipelined command group gets its replies in one segment.
pub(crate) fn serve(shared: &Shared, stream: TcpStream, connection: u64) {
    let _registration = Registration { shared, connection };
    let idle = Some(shared.options.idle_timeout).filter(|t| !t.is_zero());
    // Without timeouts an idle client holds its thread until stop; not fatal.
    let _ = stream.set_read_timeout(idle);
    let _ = stream.set_write_timeout(idle);
    let _ = stream.set_nodelay(true);
    let options = &shared.options;
    let mut session = Session::new(&options.hostname, options.max_message_size);
    let mut deliver = |transaction| shared.deliver(transaction, connection);
    let mut buf = vec![0; READ_CHUNK];
    loop {
        let out = session.take_output();
        if !out.is_empty() && (&stream).write_all(&out).is_err() {
            break;
        }
        if session.is_closed() {
            break;
        }
        if shared.stopping() {
            session.shutting_down();
            continue;
        }
        match (&stream).read(&mut buf) {
            // Woken by the server stopping: the next round sends `421`.
            Ok(0) if shared.stopping() => {}
            Ok(0) => break,
            Ok(n) => session.feed(buf.get(..n).unwrap_or_default(), &mut deliver),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                session.timed_out();
            }
            Err(_) => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}
