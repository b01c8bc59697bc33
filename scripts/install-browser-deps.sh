#!/usr/bin/env bash
# Install what the real-browser tests in tests/browser need:
#   - Debian's Chromium at /usr/bin/chromium (Playwright must never download its own browser:
#     only PyPI, npm and Debian's apt are reachable from our machines and CI);
#   - axe-core from the npm lockfile in tests/browser.
# Idempotent and fast when everything is already there, so .ci/run and `make test` can call it
# every time. Needs root (or sudo) only when Chromium is missing.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
browser_dir="${repo_root}/tests/browser"
chromium_bin="/usr/bin/chromium"

die() {
  echo "install-browser-deps: ERROR: $*" >&2
  exit 1
}

log() {
  echo "install-browser-deps: $*"
}

install_chromium() {
  if [[ -x "${chromium_bin}" ]]; then
    log "Chromium already installed (${chromium_bin})"
    return
  fi
  command -v apt-get >/dev/null 2>&1 \
    || die "${chromium_bin} is missing and apt-get is not available; install Debian's chromium package"
  local sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "${chromium_bin} is missing; run this script as root"
    sudo=(sudo)
  fi
  log "installing Debian's chromium (apt-get)"
  # No recommends: the headless tests need neither fonts-extra nor the desktop integration
  # that chromium recommends, and skipping them keeps CI's install short.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    || die "apt-get update failed"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends chromium \
    || die "apt-get install chromium failed"
  [[ -x "${chromium_bin}" ]] || die "chromium was installed but ${chromium_bin} does not exist"
  "${chromium_bin}" --version >/dev/null 2>&1 \
    || die "${chromium_bin} is installed but does not run (${chromium_bin} --version failed)"
  log "installed $("${chromium_bin}" --version)"
}

axe_is_current() {
  # Installed axe-core must be the version that package-lock.json pins: a bumped lockfile on a
  # machine that kept its old node_modules would otherwise test with the old axe rules.
  [[ -f "${browser_dir}/node_modules/axe-core/axe.min.js" ]] || return 1
  command -v node >/dev/null 2>&1 || return 1
  (cd "${browser_dir}" && node -e '
    const locked = require("./package-lock.json").packages["node_modules/axe-core"].version;
    const installed = require("./node_modules/axe-core/package.json").version;
    process.exit(locked === installed ? 0 : 1);
  ') 2>/dev/null
}

install_axe() {
  if axe_is_current; then
    log "axe-core already installed (tests/browser/node_modules)"
    return
  fi
  command -v npm >/dev/null 2>&1 || die "npm is not installed; it is needed for axe-core"
  [[ -f "${browser_dir}/package-lock.json" ]] \
    || die "tests/browser/package-lock.json is missing"
  log "installing axe-core (npm ci in tests/browser)"
  # --ignore-scripts: axe-core needs no install scripts, and none should run in CI.
  (cd "${browser_dir}" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
    || die "npm ci in tests/browser failed"
  axe_is_current \
    || die "npm ci finished but tests/browser/node_modules/axe-core is missing or not the locked version"
}

install_chromium
install_axe
log "browser test dependencies are ready"
