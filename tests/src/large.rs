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

/// What a child process did: its exit code, output, peak RSS and CPU time.
pub struct Measured {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// The largest resident set size it reached, in bytes: its `VmHWM`,
    /// sampled every few milliseconds while it runs. (`ru_maxrss` would
    /// not do: after a vfork-style spawn it starts from the parent's peak.)
    pub max_rss: u64,
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
}

/// Runs `command` to its end, with its output in temporary files (so a
/// chatty child never blocks on a full pipe), sampling its peak RSS, and
/// reads its CPU time from `wait4`.
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
    let status_path = format!("/proc/{pid}/status");
    let mut max_rss = 0;
    let mut status = 0;
    loop {
        if let Some(kib) = std::fs::read_to_string(&status_path)
            .ok()
            .and_then(|s| vm_hwm_kib(&s))
        {
            max_rss = max_rss.max(kib * 1024);
        }
        if exited(pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // SAFETY: `rusage` is plain data that wait4 fills; `pid` is our own
    // child, not reaped by anyone else (the `Child` is not waited on).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Measured {
        code,
        stdout: read(&out_path),
        stderr: read(&err_path),
        max_rss,
        cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
    }
}

fn seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// `VmHWM` of a `/proc/PID/status`, in KiB.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// True once `pid` (our child) has exited; it is left for `wait4` to reap.
fn exited(pid: libc::pid_t) -> bool {
    // SAFETY: `info` is plain data that waitid fills; WNOWAIT leaves the
    // child unreaped.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: si_pid is set when waitid reports a child.
    r == 0 && unsafe { info.si_pid() } == pid
}

/// The CPU time (user plus system) this process has used, in seconds.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: `usage` is plain data that getrusage fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
