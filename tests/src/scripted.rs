//! A scripted SMTP server for faults that real servers do not produce on
//! demand: silence at a given step, dropped connections, odd replies.
//!
//! The script is a closure that receives the accepted connection; it says
//! lines and reads the client's, and whatever the client wrote is returned
//! by [`Scripted::finish`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

/// A one-connection server on 127.0.0.1 running a script.
pub struct Scripted {
    port: u16,
    thread: JoinHandle<Vec<u8>>,
}

impl Scripted {
    /// Listens on a free port and runs `script` on the first connection.
    pub fn start(script: impl FnOnce(&mut Conversation) + Send + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("bound").port();
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("the client connects");
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .expect("read timeout");
            let mut conversation = Conversation {
                reader: BufReader::new(stream.try_clone().expect("clone")),
                stream,
                heard: Vec::new(),
            };
            script(&mut conversation);
            conversation.heard
        });
        Scripted { port, thread }
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for the script to end; returns every byte the client wrote
    /// that the script read.
    pub fn finish(self) -> Vec<u8> {
        self.thread.join().expect("the script does not panic")
    }
}

/// The server's side of one connection.
pub struct Conversation {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    heard: Vec<u8>,
}

impl Conversation {
    /// Writes `text` (CRLF line endings included by the caller).
    pub fn say(&mut self, text: &str) {
        let _ = self.stream.write_all(text.as_bytes());
    }

    /// Writes raw bytes.
    pub fn say_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Reads whatever the client sent in its next segment.
    pub fn hear_some(&mut self) -> Vec<u8> {
        let bytes = match self.reader.fill_buf() {
            Ok(buf) => buf.to_vec(),
            Err(_) => Vec::new(),
        };
        self.reader.consume(bytes.len());
        self.heard.extend_from_slice(&bytes);
        bytes
    }

    /// Reads one line from the client, CRLF included; empty at the end.
    pub fn hear_line(&mut self) -> String {
        let mut line = Vec::new();
        let _ = self.reader.read_until(b'\n', &mut line);
        self.heard.extend_from_slice(&line);
        String::from_utf8_lossy(&line).into_owned()
    }

    /// Reads `n` lines.
    pub fn hear_lines(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.hear_line()).collect()
    }

    /// Reads the content up to and including the `.` line.
    pub fn hear_data(&mut self) -> Vec<u8> {
        let mut data = Vec::new();
        loop {
            let line = self.hear_line();
            if line.is_empty() || line == ".\r\n" {
                return data;
            }
            data.extend_from_slice(line.as_bytes());
        }
    }

    /// Reads the content after a 354 exactly as it crosses the wire,
    /// dot-stuffing included, up to and including the first end-of-data
    /// mark a server would see: `CRLF.CRLF`, or `.CRLF` as the very first
    /// line. At the end of the stream, returns what there was.
    pub fn hear_raw_data(&mut self) -> Vec<u8> {
        let mut data = Vec::new();
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(buf) if !buf.is_empty() => buf,
                _ => break,
            };
            let mut used = 0;
            let mut ended = false;
            for &byte in buf {
                data.push(byte);
                used += 1;
                if data == b".\r\n" || data.ends_with(b"\r\n.\r\n") {
                    ended = true;
                    break;
                }
            }
            self.reader.consume(used);
            if ended {
                break;
            }
        }
        self.heard.extend_from_slice(&data);
        data
    }

    /// The usual opening: greeting, then EHLO answered with PIPELINING.
    pub fn open(&mut self) {
        self.say("220 scripted.test ESMTP\r\n");
        self.hear_line();
        self.say("250-scripted.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
    }

    /// Stays silent for `duration`, then closes.
    pub fn hang(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }

    /// Reads whatever the client still sends until it closes.
    pub fn drain(&mut self) {
        let mut rest = Vec::new();
        let _ = self.reader.read_to_end(&mut rest);
        self.heard.extend_from_slice(&rest);
    }

    /// Writes `bytes`; false once the client is gone. A write blocked for
    /// 10 s also counts as gone, so a script never waits forever on a
    /// client that stopped reading.
    pub fn try_say_bytes(&mut self, bytes: &[u8]) -> bool {
        let _ = self.stream.set_write_timeout(Some(Duration::from_secs(10)));
        self.stream.write_all(bytes).is_ok()
    }

    /// Writes `text` one byte per TCP segment (Nagle off), pausing after
    /// each byte; stops early and returns false once the client is gone.
    pub fn drip(&mut self, text: &str, pause: Duration) -> bool {
        let _ = self.stream.set_nodelay(true);
        for byte in text.as_bytes() {
            if !self.try_say_bytes(std::slice::from_ref(byte)) {
                return false;
            }
            std::thread::sleep(pause);
        }
        true
    }
}
