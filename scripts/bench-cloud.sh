#!/usr/bin/env bash
# Cloud source benchmark (a command, not a test): a provider's test double serving a company of
# 50,000 users and 2,000 groups with 20 ms per answer, and the release `dirsync test --json`
# against it: wall time, peak RSS and requests, as medians of RUNS (3) runs.
#
#   ./scripts/bench-cloud.sh PROVIDER [bench_cloud flags: --users N --groups N --latency-ms N]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dirsync-target}
[ $# -ge 1 ] || { echo "usage: $0 PROVIDER [flags]" >&2; exit 2; }
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
cd "$ROOT"
cargo build --release --quiet --bin dirsync --example bench_cloud
for run in $(seq 1 "${RUNS:-3}"); do
  echo "== run $run"
  "$CARGO_TARGET_DIR/release/examples/bench_cloud" "$@" --dirsync "$CARGO_TARGET_DIR/release/dirsync"
done
