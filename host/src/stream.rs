//! A file as a wasi:io `input-stream`: how the host lends a streamed
//! attachment or raw message to the component, which reads it while it
//! sends, so that neither side holds it whole.

use std::fs::File;
use std::io::Read;

use bytes::{Bytes, BytesMut};
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::{InputStream, Pollable, StreamError, StreamResult};

/// The most one read returns.
const MAX_READ: usize = 1024 * 1024;

/// A file read from its start to its end.
pub(crate) struct FileStream {
    file: File,
}

impl FileStream {
    /// A stream over `file`.
    pub(crate) fn new(file: File) -> Self {
        FileStream { file }
    }
}

#[async_trait]
impl InputStream for FileStream {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let mut buffer = BytesMut::zeroed(size.min(MAX_READ));
        loop {
            match self.file.read(&mut buffer) {
                Ok(0) if size > 0 => return Err(StreamError::Closed),
                Ok(n) => {
                    buffer.truncate(n);
                    return Ok(buffer.freeze());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StreamError::LastOperationFailed(e.into())),
            }
        }
    }
}

#[async_trait]
impl Pollable for FileStream {
    /// A regular file is always ready: reads do not wait for a peer.
    async fn ready(&mut self) {}
}
