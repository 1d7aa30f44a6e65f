//! Builds the Spin app's components (`spin/`, a workspace of its own) as
//! `spin build` does, into `target/spin`, and hands their paths to the crate,
//! which embeds them.

include!("../build-support/wasm_cargo_build.rs");

fn main() {
    let root = workspace_root();
    for watched in ["spin", "json", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = root.join("target").join("spin");
    let status = wasm_cargo_build(&root.join("spin"), &target_dir)
        .args(["--target", "wasm32-wasip2", "--release"])
        .arg("--manifest-path")
        .arg(root.join("spin").join("Cargo.toml"))
        .status()
        .expect("cannot run cargo to build the Spin app's components");
    assert!(
        status.success(),
        "building the Spin app's components (spin/) failed (see above). If the wasm32-wasip2 \
         target is missing, install it with: rustup target add wasm32-wasip2"
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
