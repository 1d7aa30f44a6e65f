#!/usr/bin/env bash
# Installs what the end-to-end tests need, and nothing that is already there:
#   - the wasm32-wasip2 Rust target (rustup);
#   - Python 3's aiosmtpd, pinned (pip);
#   - Debian's exim4-daemon-light, unpacked (not installed) under
#     ${CARGO_TARGET_DIR:-target}/test-tools/exim, the shared libraries it
#     links to, and the user Debian-exim that it runs as.
# Exim is unpacked rather than installed because it conflicts with any other
# MTA package, and the tests run their own instance anyway.
#
# Quiet on success; on failure says what failed and exits non-zero.
# Needs root for the Exim part (apt-get, useradd), as on CI.
# Environment: SMTP_MAILER_PYTHON (default python3), CARGO_TARGET_DIR.
set -euo pipefail

AIOSMTPD_VERSION=1.4.6
EXIM_PACKAGE=exim4-daemon-light

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
tools=$target/test-tools
python=${SMTP_MAILER_PYTHON:-python3}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

fail() {
    echo "install-test-tools: $*" >&2
    if [[ -s $log ]]; then
        echo "--- output of the failed step:" >&2
        tail -n 40 "$log" >&2
    fi
    exit 1
}

# Runs a command with its output kept in $log, shown only if it fails.
quiet() {
    "$@" >"$log" 2>&1
}

need_root() {
    [[ $(id -u) == 0 ]] || fail "$1 needs root; run this script as root (or with sudo)"
}

apt_updated=false
apt_update_once() {
    if ! $apt_updated; then
        quiet apt-get update || fail "apt-get update failed"
        apt_updated=true
    fi
}

# Runs an apt-get command; on failure refreshes the package lists once and retries.
apt_retry() {
    if ! quiet "$@"; then
        $apt_updated && fail "$* failed"
        apt_update_once
        quiet "$@" || fail "$* failed"
    fi
}

install_wasm_target() {
    command -v rustup >/dev/null || fail "rustup is not installed; install Rust with rustup first"
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
        quiet rustup target add wasm32-wasip2 || fail "rustup target add wasm32-wasip2 failed"
    fi
}

install_aiosmtpd() {
    command -v "$python" >/dev/null || fail "$python is not installed; install Python 3 (Debian: apt-get install python3 python3-pip)"
    if "$python" - "$AIOSMTPD_VERSION" 2>/dev/null <<'PY'
import sys, aiosmtpd
sys.exit(aiosmtpd.__version__ != sys.argv[1])
PY
    then
        return
    fi
    "$python" -m pip --version >/dev/null 2>&1 || fail "pip is missing for $python (Debian: apt-get install python3-pip)"
    local pip=("$python" -m pip install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION")
    if ! quiet "${pip[@]}"; then
        # Debian's own python3 refuses pip installs outside a venv (PEP 668).
        if grep -q externally-managed-environment "$log"; then
            quiet "${pip[@]}" --break-system-packages || fail "pip install aiosmtpd==$AIOSMTPD_VERSION failed"
        else
            fail "pip install aiosmtpd==$AIOSMTPD_VERSION failed"
        fi
    fi
    "$python" -c 'import aiosmtpd' 2>/dev/null || fail "aiosmtpd was installed but $python cannot import it"
}

install_exim() {
    local dir=$tools/exim
    local exim=$dir/usr/sbin/exim4

    if [[ ! -x $exim ]]; then
        need_root "unpacking exim"
        command -v apt-get >/dev/null || fail "apt-get not found: the Exim fixture needs Debian's $EXIM_PACKAGE"
        local download
        download=$(mktemp -d)
        # apt's sandbox user cannot write to a root-only temporary directory.
        (cd "$download" && apt_retry apt-get download -o APT::Sandbox::User=root "$EXIM_PACKAGE") \
            || { rm -rf "$download"; exit 1; }
        local deb
        deb=$(ls "$download"/"$EXIM_PACKAGE"_*.deb)
        rm -rf "$dir.tmp"
        mkdir -p "$dir.tmp"
        quiet dpkg-deb -x "$deb" "$dir.tmp" || fail "dpkg-deb -x $deb failed"
        dpkg-deb -f "$deb" Version >"$dir.tmp/VERSION"
        dpkg-deb -f "$deb" Depends >"$dir.tmp/DEPENDS"
        rm -rf "$dir" "$download"
        mv "$dir.tmp" "$dir"
    fi

    # Shared libraries: install the package's library dependencies if any is missing.
    if ldd "$exim" | grep -q 'not found'; then
        need_root "installing exim's libraries"
        local libs
        libs=$(tr ',' '\n' <"$dir/DEPENDS" | sed -E 's/\(.*\)//; s/\|.*//; s/[[:space:]]//g' | grep '^lib' | sort -u)
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt_retry apt-get install -y --no-install-recommends $libs
        if ldd "$exim" | grep -q 'not found'; then
            fail "exim still lacks libraries: $(ldd "$exim" | grep 'not found' | tr -s ' \t\n' ' ')"
        fi
    fi

    # Debian's build looks its user up by name at start (EXIM_USER=ref:Debian-exim).
    if ! getent passwd Debian-exim >/dev/null; then
        need_root "creating the user Debian-exim"
        quiet useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin Debian-exim || fail "useradd Debian-exim failed"
    fi

    quiet "$exim" -C /dev/null -bV || fail "$exim does not run"
}

install_wasm_target
install_aiosmtpd
install_exim
