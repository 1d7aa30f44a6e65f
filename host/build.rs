//! Compiles the guest component with plain `cargo build --target
//! wasm32-wasip2 --profile component` and hands its path to the crate, which embeds
//! it: one `cargo build` builds the host and the component it runs.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf();
    for watched in ["guest", "core", "json", "spin", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=SMTP_MAILER_GUEST_PROFILE");

    // A target directory of its own: the outer cargo holds a lock on its own.
    let target_dir = root.join("target").join("guest");
    let status = wasm_cargo_build(&root, &target_dir)
        .args(["--package", "smtp-mailer-guest"])
        .args(["--target", "wasm32-wasip2", "--profile", "component"])
        .status()
        .expect("cannot run cargo to build the guest component");
    if !status.success() {
        panic!(
            "building the guest component failed (see above). If the wasm32-wasip2 target is \
             missing, install it with: rustup target add wasm32-wasip2"
        );
    }
    build_spin_app(&root);
    let wasm = target_dir.join("wasm32-wasip2/component/smtp_mailer_guest.wasm");
    assert!(wasm.exists(), "the guest build left no {}", wasm.display());
    println!(
        "cargo:rustc-env=SMTP_MAILER_COMPONENT_PATH={}",
        wasm.display()
    );
}

/// Builds the Spin app's components (`spin/`, a workspace of its own) as
/// `spin build` does, into `target/spin`, and hands the HTTP component's
/// path to the crate (`smtp-mailer serve` embeds it).
fn build_spin_app(root: &Path) {
    let target_dir = root.join("target").join("spin");
    let status = wasm_cargo_build(&root.join("spin"), &target_dir)
        .args(["--target", "wasm32-wasip2", "--release"])
        .arg("--manifest-path")
        .arg(root.join("spin").join("Cargo.toml"))
        .status()
        .expect("cannot run cargo to build the Spin app's components");
    assert!(
        status.success(),
        "building the Spin app's components (spin/) failed (see above)"
    );
    for (name, file) in [
        ("HTTP", "smtp_mailer_spin_http.wasm"),
        ("REDIS", "smtp_mailer_spin_redis.wasm"),
    ] {
        let wasm = target_dir.join("wasm32-wasip2/release").join(file);
        assert!(
            wasm.exists(),
            "the Spin app's build left no {}",
            wasm.display()
        );
        println!(
            "cargo:rustc-env=SMTP_MAILER_SPIN_{name}_PATH={}",
            wasm.display()
        );
    }
}

/// `cargo build` in `dir` into `target_dir` (`--offline` if this build is),
/// for the caller to add what to build: without the flags meant for the
/// host's own target, which must not reach a wasm32-wasip2 build.
fn wasm_cargo_build(dir: &Path, target_dir: &Path) -> Command {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(dir)
        .arg("build")
        .arg("--target-dir")
        .arg(target_dir);
    if env::var_os("CARGO_NET_OFFLINE").is_some() {
        command.arg("--offline");
    }
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        command.env_remove(var);
    }
    command
}
