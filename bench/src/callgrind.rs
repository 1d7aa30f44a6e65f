//! Instructions per message, counted by valgrind's callgrind.
//!
//! A worker process (this binary, `worker KIND COUNT [ADDRESS]`) sends
//! COUNT messages over one connection (or builds COUNT messages). It runs twice under callgrind, with N1
//! and N2 messages; the difference of the two totals divided by N2 - N1
//! is the cost of one message, with process start, component load,
//! connection and QUIT cancelled out. The same difference, function by
//! function, says where the instructions of one message go.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::BoxError;

/// One callgrind run's totals: the whole, and per function.
struct Profile {
    total: u64,
    functions: HashMap<String, u64>,
}

/// The instructions of one message, and where they go.
pub struct PerMessage {
    pub instructions: f64,
    /// Functions by instructions per message, most first.
    pub functions: Vec<(String, f64)>,
}

pub fn available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Counts `kind`'s instructions per message between `n1` and `n2` messages.
pub fn per_message(
    kind: &str,
    address: Option<SocketAddr>,
    n1: usize,
    n2: usize,
    dir: &Path,
) -> Result<PerMessage, BoxError> {
    let small = profile(kind, address, n1, dir)?;
    let large = profile(kind, address, n2, dir)?;
    let messages = (n2 - n1) as f64;
    let instructions = large.total.saturating_sub(small.total) as f64 / messages;
    let mut functions: Vec<(String, f64)> = large
        .functions
        .iter()
        .map(|(name, &ir)| {
            let base = small.functions.get(name).copied().unwrap_or(0);
            (name.clone(), (ir as f64 - base as f64) / messages)
        })
        .filter(|(_, ir)| *ir > 0.0)
        .collect();
    functions.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(PerMessage {
        instructions,
        functions,
    })
}

fn profile(
    kind: &str,
    address: Option<SocketAddr>,
    count: usize,
    dir: &Path,
) -> Result<Profile, BoxError> {
    let out: PathBuf = dir.join(format!("callgrind.{kind}.{count}.out"));
    let exe = std::env::current_exe()?;
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&exe)
        .args(["worker", kind, &count.to_string()])
        .args(address.map(|a| a.to_string()))
        .stdin(Stdio::null())
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "callgrind of the {kind} worker failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .join(" | ")
        )
        .into());
    }
    let text = std::fs::read_to_string(&out)?;
    let total = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .ok_or("no totals line in the callgrind output")?;
    Ok(Profile {
        total,
        functions: functions(&out)?,
    })
}

/// Self cost per function, from `callgrind_annotate`, with the source
/// file left out (inlined lines of one function are listed per file).
fn functions(out: &Path) -> Result<HashMap<String, u64>, BoxError> {
    let output = Command::new("callgrind_annotate")
        .args(["--threshold=100", "--inclusive=no", "--auto=no"])
        .arg(out)
        .stderr(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut functions = HashMap::new();
    for line in text.lines() {
        let line = line.trim_start();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(ir) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        // "1,234 (12.34%)  file:function [object]"
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('(') {
            Some(r) => r.split_once(')').map_or("", |(_, name)| name),
            None => rest,
        };
        let name = without_file(rest.trim());
        if name.is_empty() || name.starts_with("PROGRAM TOTALS") {
            continue;
        }
        *functions.entry(name.to_string()).or_insert(0) += ir;
    }
    Ok(functions)
}

/// `file:function [object]` without `file:`: the first colon that is not
/// part of a `::`.
fn without_file(entry: &str) -> &str {
    let bytes = entry.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b':' && bytes.get(i + 1) != Some(&b':') && (i == 0 || bytes[i - 1] != b':') {
            return &entry[i + 1..];
        }
    }
    entry
}

/// Where an instruction was spent, by the function's name and object.
pub fn bucket(function: &str) -> &'static str {
    if function.starts_with("0x") && function.ends_with("[???]") {
        "guest code: JIT-compiled wasm (core, mail-builder, driver, allocator)"
    } else if function.contains("wasmtime_wasi") {
        "wasmtime-wasi: WASI host calls (streams, TCP, poll, clocks, random)"
    } else if function.contains("wasmtime") || function.contains("cranelift") {
        "wasmtime runtime: calls in and out, lift/lower, resource table"
    } else if function.contains("libc.so") || function.contains("ld-linux") {
        "libc: memcpy/memset, malloc/free, syscall wrappers"
    } else if function.contains("smtp_mailer_host") {
        "host library: typed API conversions"
    } else if function.contains("tokio") || function.contains("mio::") {
        "tokio: wasmtime-wasi's async runtime"
    } else if function.contains("mail_builder") || function.contains("encodify") {
        "mail-builder (native)"
    } else if function.contains("smtp_mailer_core") || function.contains("base64") {
        "smtp-mailer-core (native): checks, base64, SMTP client"
    } else if function.contains("lettre") || function.contains("nom::") {
        "lettre (native)"
    } else {
        "other Rust: std, alloc, fmt, hashing"
    }
}

/// Instructions per message by bucket, most first.
pub fn buckets(profile: &PerMessage) -> Vec<(&'static str, f64)> {
    let mut sums: HashMap<&'static str, f64> = HashMap::new();
    for (name, ir) in &profile.functions {
        *sums.entry(bucket(name)).or_insert(0.0) += ir;
    }
    let mut sums: Vec<_> = sums.into_iter().collect();
    sums.sort_by(|a, b| b.1.total_cmp(&a.1));
    sums
}
