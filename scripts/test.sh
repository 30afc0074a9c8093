#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need (Debian packages for the real
# directory servers), then runs every test. Safe to run again; later runs skip installed packages.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dirsync-target}
for installer in scripts/ci-install-*.sh; do
  [ -e "$installer" ] && bash "$installer"
done
# Two tiers: the unit and HTTP-double tests need nothing installed (plain `cargo test`); the
# `test-servers` feature adds the tests against real slapd, Samba AD and kube-apiserver, which
# fail (never skip) when a server cannot start.
cargo test --all-targets --features test-servers --no-fail-fast "$@"
# The chart, manifests, alerts and Dockerfile, with Helm's SDK, kubernetes-validate, promtool and hadolint.
./scripts/test-chart.sh
