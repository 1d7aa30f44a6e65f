// Shared by the build scripts of `host/` (the mailer component) and `serve/`
// (the Spin app's components), through `include!`: both build wasm32-wasip2
// code with a nested `cargo build`.

/// `cargo build` in `dir` into `target_dir` (`--offline` if this build is),
/// for the caller to add what to build: without the flags meant for the
/// host's own target, which must not reach a wasm32-wasip2 build.
fn wasm_cargo_build(dir: &std::path::Path, target_dir: &std::path::Path) -> std::process::Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(dir)
        .arg("build")
        .arg("--target-dir")
        .arg(target_dir);
    if std::env::var_os("CARGO_NET_OFFLINE").is_some() {
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

/// The workspace's root folder, from a member's `CARGO_MANIFEST_DIR`.
fn workspace_root() -> std::path::PathBuf {
    let manifest_dir =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    manifest_dir
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}
