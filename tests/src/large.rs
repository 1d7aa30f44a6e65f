//! Large files for the streaming tests and bench: written piece by piece
//! (never held whole), with their SHA-256, and a child process's peak RSS.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sha2::{Digest, Sha256};

/// A file of `len` pseudo-random bytes (every byte value, no structure a
/// codec could cheat on) in `dir`; returns its path and SHA-256.
pub fn random_file(dir: &Path, name: &str, len: usize) -> (PathBuf, [u8; 32]) {
    let path = dir.join(name);
    let file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut hash = Sha256::new();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len());
        for word in block[..n].chunks_mut(8) {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let value = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            word.copy_from_slice(&value[..word.len()]);
        }
        hash.update(&block[..n]);
        out.write_all(&block[..n]).expect("write the test file");
        left -= n;
    }
    out.flush().expect("flush the test file");
    (path, hash.finalize().into())
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// What a child process did: its exit code, output, and peak RSS.
pub struct Measured {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// The largest resident set size it reached, in bytes (`ru_maxrss`).
    pub max_rss: u64,
}

/// Runs `command` to its end, with its output in temporary files (so a
/// chatty child never blocks on a full pipe), and reads its peak RSS from
/// `wait4`.
pub fn run_measured(mut command: Command) -> Measured {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let child: Child = command
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills; `pid` is our own
    // child, not reaped by anyone else (the `Child` is not waited on).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Measured {
        code,
        stdout: read(&out_path),
        stderr: read(&err_path),
        max_rss: usage.ru_maxrss as u64 * 1024,
    }
}
