//! State shared by the server handle, the accept loop and the connections.

use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use crate::session::Transaction;
use crate::{store, CaptureOptions, CapturedMessage};

/// Messages kept in memory, and how many arrived in total.
#[derive(Debug, Default)]
struct Inbox {
    messages: Vec<CapturedMessage>,
    total: usize,
}

/// Everything the server's threads share.
pub(crate) struct Shared {
    pub(crate) options: CaptureOptions,
    inbox: Mutex<Inbox>,
    arrived: Condvar,
    next_id: AtomicU64,
    next_connection: AtomicU64,
    stopping: AtomicBool,
    /// Clones of the open connections' sockets, to unblock them on stop.
    open: Mutex<HashMap<u64, TcpStream>>,
}

impl Shared {
    /// New state; message ids start at `first_id`.
    pub(crate) fn new(options: CaptureOptions, first_id: u64) -> Self {
        Self {
            options,
            inbox: Mutex::default(),
            arrived: Condvar::new(),
            next_id: AtomicU64::new(first_id),
            next_connection: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            open: Mutex::default(),
        }
    }

    /// Stores a finished transaction; returns its id, or `None` if the
    /// message directory could not be written.
    pub(crate) fn deliver(&self, transaction: Transaction, connection: u64) -> Option<u64> {
        let message = CapturedMessage {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            mail_from: transaction.mail_from,
            rcpt_to: transaction.rcpt_to,
            data: transaction.data,
            received_at: SystemTime::now(),
            connection,
        };
        if let Some(dir) = &self.options.dir {
            store::write(dir, &message).ok()?;
        }
        if let Some(callback) = &self.options.on_message {
            // A panicking callback must not cost the client its reply.
            let _ = catch_unwind(AssertUnwindSafe(|| callback(&message)));
        }
        let id = message.id;
        let mut inbox = lock(&self.inbox);
        inbox.messages.push(message);
        inbox.total += 1;
        if let Some(keep) = self.options.retain_in_memory {
            let excess = inbox.messages.len().saturating_sub(keep);
            inbox.messages.drain(..excess);
        }
        drop(inbox);
        self.arrived.notify_all();
        Some(id)
    }

    /// The messages in memory.
    pub(crate) fn messages(&self) -> Vec<CapturedMessage> {
        lock(&self.inbox).messages.clone()
    }

    /// Waits until `n` messages arrived in total or `deadline` passes
    /// (`None`: no deadline), then returns the messages in memory.
    pub(crate) fn wait_for(&self, n: usize, deadline: Option<Instant>) -> Vec<CapturedMessage> {
        let mut inbox = lock(&self.inbox);
        while inbox.total < n {
            inbox = match deadline {
                None => self
                    .arrived
                    .wait(inbox)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    let waited = self.arrived.wait_timeout(inbox, left);
                    waited.unwrap_or_else(PoisonError::into_inner).0
                }
            };
        }
        inbox.messages.clone()
    }

    /// A fresh connection number.
    pub(crate) fn next_connection(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the server is stopping.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Marks the server as stopping.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Remembers an open connection's socket.
    pub(crate) fn register(&self, connection: u64, stream: TcpStream) {
        lock(&self.open).insert(connection, stream);
    }

    /// Forgets a closed connection.
    pub(crate) fn deregister(&self, connection: u64) {
        lock(&self.open).remove(&connection);
    }

    /// Shuts down the open connections' sockets in direction `how`: `Read`
    /// wakes a thread blocked reading and still lets it send its last reply;
    /// `Both` also unblocks a thread stuck writing to a client that does not
    /// read.
    pub(crate) fn close_all(&self, how: Shutdown) {
        for stream in lock(&self.open).values() {
            let _ = stream.shutdown(how);
        }
    }
}

/// Locks `mutex`, ignoring poisoning: the data stays consistent because no
/// code panics while holding these locks.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn transaction() -> Transaction {
        Transaction {
            mail_from: "a@x".into(),
            rcpt_to: vec!["b@y".into()],
            data: b"hi\r\n".to_vec(),
        }
    }

    #[test]
    fn retains_the_newest_and_counts_all() {
        let options = CaptureOptions {
            retain_in_memory: Some(2),
            ..CaptureOptions::default()
        };
        let shared = Shared::new(options, 5);
        for _ in 0..3 {
            shared.deliver(transaction(), 1);
        }
        let soon = Some(Instant::now() + Duration::from_millis(10));
        let ids: Vec<u64> = shared.wait_for(3, soon).iter().map(|m| m.id).collect();
        assert_eq!(ids, [6, 7]);
    }

    #[test]
    fn a_panicking_callback_does_not_lose_the_message() {
        let options = CaptureOptions::default().on_message(|_| panic!("callback bug"));
        let shared = Shared::new(options, 1);
        assert_eq!(shared.deliver(transaction(), 1), Some(1));
        assert_eq!(shared.messages().len(), 1);
    }
}
