//! Compiles the test components of `tests/guests/` (each a crate with a
//! workspace and a Cargo.lock of its own) with plain `cargo build --target
//! wasm32-wasip2 --release`, and hands each one's path to the tests as
//! `SMTP_MAILER_TEST_GUEST_<NAME>` (for `guests/hostile`:
//! `SMTP_MAILER_TEST_GUEST_HOSTILE`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// The guests, by folder name under `tests/guests/`.
const GUESTS: &[&str] = &["hostile"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf();
    // The guests' own sources and locks, and the WIT they export; their
    // build output lives outside these folders.
    for watched in [manifest_dir.join("guests"), root.join("wit")] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }

    // A target directory of its own: the outer cargo holds a lock on its own.
    let target_dir = root.join("target").join("test-guests");
    for guest in GUESTS {
        let manifest = manifest_dir.join("guests").join(guest).join("Cargo.toml");
        let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(manifest.parent().expect("a guest folder"))
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target_dir);
        if env::var_os("CARGO_NET_OFFLINE").is_some() {
            command.arg("--offline");
        }
        // Flags meant for the tests' own target must not reach the guests.
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
        let status = command
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build the {guest} test guest: {e}"));
        if !status.success() {
            panic!(
                "building the {guest} test guest failed (see above). If the wasm32-wasip2 \
                 target is missing, install it with: rustup target add wasm32-wasip2"
            );
        }
        let file = format!("smtp_mailer_{guest}_guest.wasm").replace('-', "_");
        let wasm = target_dir.join("wasm32-wasip2/release").join(file);
        assert!(
            wasm.exists(),
            "the {guest} guest build left no {}",
            wasm.display()
        );
        println!(
            "cargo:rustc-env=SMTP_MAILER_TEST_GUEST_{}={}",
            guest.to_uppercase().replace('-', "_"),
            wasm.display()
        );
    }
}
