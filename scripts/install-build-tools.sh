#!/usr/bin/env bash
# Installs what building the component needs, and nothing that is already
# there: the wasm32-wasip2 Rust target (rustup) and clang, which the ring
# crate (rustls' crypto) needs to compile its C and assembly for wasm32.
# Quiet on success; on failure says what failed and how to fix it.
set -euo pipefail

fail() {
    echo "install-build-tools: $*" >&2
    exit 1
}

command -v rustup >/dev/null || fail "rustup is missing; install Rust with rustup (https://rustup.rs)"
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2 >/dev/null 2>&1 || fail "rustup target add wasm32-wasip2 failed"
fi

if ! command -v clang >/dev/null; then
    if [[ $(id -u) != 0 ]]; then
        fail "clang is missing (ring needs it to build for wasm32-wasip2); install it: sudo apt-get install clang"
    fi
    command -v apt-get >/dev/null || fail "clang is missing and this is not a Debian system: install clang and llvm-ar"
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang llvm; } >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        fail "apt-get install clang llvm failed"
    fi
fi
command -v llvm-ar >/dev/null || ls /usr/bin/llvm-ar-* >/dev/null 2>&1 ||
    fail "llvm-ar is missing (ring's build archives with it): apt-get install llvm"
