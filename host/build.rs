//! Compiles the guest component with plain `cargo build --target
//! wasm32-wasip2 --profile component` and hands its path to the crate, which
//! embeds it: one `cargo build` builds the host and the component it runs.

include!("../build-support/wasm_cargo_build.rs");

fn main() {
    let root = workspace_root();
    for watched in ["guest", "core", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

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
    let wasm = target_dir.join("wasm32-wasip2/component/smtp_mailer_guest.wasm");
    assert!(wasm.exists(), "the guest build left no {}", wasm.display());
    println!(
        "cargo:rustc-env=SMTP_MAILER_COMPONENT_PATH={}",
        wasm.display()
    );
}
