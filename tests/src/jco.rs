//! The second WASI 0.2 host: the component transpiled by jco and run by
//! Node with preview2-shim (`tests/jco/driver.mjs` drives it).
//!
//! The install script puts jco under `target/test-tools/jco`; the
//! transpiled module is written beside its `node_modules` (where Node finds
//! preview2-shim), once per component build.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::servers::{target_dir, workspace_root, INSTALL_SCRIPT};

/// The component transpiled by jco, ready for Node.
pub struct Jco {
    module: PathBuf,
}

impl Jco {
    /// The built-in component transpiled (once per process, and kept across
    /// runs for the same component). Panics with how to install jco when it
    /// is missing.
    pub fn get() -> &'static Jco {
        static JCO: OnceLock<Jco> = OnceLock::new();
        JCO.get_or_init(|| Jco::transpile(smtp_mailer_host::COMPONENT))
    }

    fn transpile(wasm: &[u8]) -> Jco {
        let tools = target_dir().join("test-tools/jco");
        let jco = tools.join("node_modules/.bin/jco");
        assert!(
            jco.exists() && which("node"),
            "jco or Node is missing ({} and `node`): run {INSTALL_SCRIPT} (as root), \
             which installs Node.js from Debian if needed and jco with npm",
            jco.display()
        );
        let digest = Sha256::digest(wasm);
        let name: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let out = tools.join(format!("out-{name}"));
        let module = out.join("mailer.js");
        if !module.exists() {
            let tmp = tools.join(format!("out-{name}.tmp{}", std::process::id()));
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir_all(&tmp).expect("a folder for jco's output");
            fs::write(tmp.join("mailer.wasm"), wasm).expect("the component written");
            let output = Command::new(&jco)
                .arg("transpile")
                .arg(tmp.join("mailer.wasm"))
                .args(["--name", "mailer", "-o"])
                .arg(&tmp)
                .output()
                .expect("jco runs");
            assert!(
                output.status.success(),
                "jco transpile failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            // Another test process may have finished first: either copy works.
            if fs::rename(&tmp, &out).is_err() {
                let _ = fs::remove_dir_all(&tmp);
            }
        }
        Jco { module }
    }

    /// Runs `plan` (see `tests/jco/driver.mjs`: `{op, server, messages}`
    /// in jco's mapping of the WIT types) in a new Node process, and returns
    /// its answer: `{ok: true, results}` or `{ok: false, error}`.
    pub fn run(&self, plan: &Value) -> Value {
        let driver = workspace_root().join("tests/jco/driver.mjs");
        let mut child = Command::new("node")
            .arg(&driver)
            .arg(&self.module)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(plan.to_string().as_bytes())
            .expect("the plan written to node");
        let output = child.wait_with_output().expect("node's output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "the driver's answer is not JSON ({e}): {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| Path::new(&dir).join(program).is_file())
    })
}
