//! The compiled-code cache: a component compiled once is kept on disk, so
//! the next process start loads machine code instead of compiling.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The default cache folder: `$XDG_CACHE_HOME/smtp-mailer` or
/// `~/.cache/smtp-mailer`; none when neither is known.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("smtp-mailer"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".cache").join("smtp-mailer"))
}

/// Loads `wasm` compiled for `engine`, from `dir` when it holds a
/// compatible copy, compiling and storing it otherwise. A cache that
/// cannot be read or written only costs a compilation.
///
/// ```no_run
/// use smtp_mailer_host::{cache, COMPONENT};
///
/// let engine = wasmtime::Engine::new(wasmtime::Config::new().wasm_component_model(true))?;
/// let component = cache::load(&engine, COMPONENT, cache::default_dir().as_deref())?;
/// # Ok::<(), wasmtime::Error>(())
/// ```
pub fn load(engine: &Engine, wasm: &[u8], dir: Option<&Path>) -> wasmtime::Result<Component> {
    let Some(dir) = dir else {
        return Component::new(engine, wasm);
    };
    let path = dir.join(format!("{}.cwasm", key(engine, wasm)));
    if path.exists() {
        // SAFETY: the file was written by `Component::serialize` for an
        // engine with the same compatibility hash (part of its name), in a
        // folder owned by this user; a corrupt file is rejected by
        // wasmtime's header checks and then recompiled below.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(component);
        }
    }
    let component = Component::new(engine, wasm)?;
    if let Ok(bytes) = component.serialize() {
        let _ = store(dir, &path, &bytes);
    }
    Ok(component)
}

/// Writes through a temporary file and a rename, so that a concurrent
/// reader never sees half a file.
fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// The cache key: the component's hash and the engine's compatibility hash.
fn key(engine: &Engine, wasm: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let digest = Sha256::digest(wasm);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{hex}-{:016x}", engine_hash.finish())
}
