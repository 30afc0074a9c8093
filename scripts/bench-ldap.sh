#!/usr/bin/env bash
# LDAP benchmark (a command, not a test): generates a directory of N users and N/100 nested
# groups, loads it into a throwaway slapd with slapadd, then times, in turn and RUNS times each:
#   ldapsearch     the floor: `ldapsearch -E pr=1000/noprompt` dumping the same entries and
#                  attributes to a file
#   dirsync test   `dirsync test --json` to a file
#   dirsync sync   `dirsync sync`: plan and requests built and sent to a local stand-in for
#                  Bitwarden (scripts/bw-double.py, which reads every request body)
# and prints the median wall time and peak RSS of each (GNU time), and dirsync's wall time as a
# multiple of the floor measured in the same run.
#
#   ./scripts/bench-ldap.sh [100k|1m|N]        RUNS=3 (default)
#   BASELINE=/path/to/older/dirsync ./scripts/bench-ldap.sh 100k
#                                              also times that binary (before/after in one run)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dirsync-target}
# shellcheck source=scripts/lib/slapd.sh
. "$ROOT/scripts/lib/slapd.sh"
N=$(user_count "${1:-}")
RUNS=${RUNS:-3}
bash "$ROOT/scripts/ci-install-ldap.sh" >&2
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }

BASE="dc=bench,dc=example"
WORK=$(mktemp -d /tmp/dirsync-bench.XXXXXX)
echo "bench: generating $N users and $((N / 100)) nested groups" >&2
python3 "$ROOT/scripts/gen-ldif.py" "$N" "$BASE" > "$WORK.ldif"
start=$(date +%s.%N)
slapd_start "$WORK" "$BASE" bench-password "$WORK.ldif"
rm -f "$WORK.ldif"
echo "bench: slapadd and start took $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s" >&2
PORT=$SLAPD_PORT

python3 "$ROOT/scripts/bw-double.py" "$WORK/bw.port" &
BW_PID=$!
trap 'kill $BW_PID 2>/dev/null || true; slapd_stop' EXIT
for _ in $(seq 1 50); do [ -s "$WORK/bw.port" ] && break; sleep 0.1; done
BW_PORT=$(cat "$WORK/bw.port")

spec() { # bitwarden block
  cat <<YAML
apiVersion: v1
kind: Secret
metadata: {name: bw}
stringData: {client_id: organization.00000000-0000-0000-0000-000000000000, client_secret: bench-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: bind}
stringData: {username: "cn=admin,$BASE", password: bench-password}
---
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {name: bench}
spec:
  bitwarden: $1
  source:
    ldap:
      url: ldap://127.0.0.1:$PORT
      bindSecretRef: {name: bind}
      rootPath: "$BASE"
      users: {path: ou=people}
      groups: {path: ou=groups}
  sync: {largeImport: true}
YAML
}
spec "{apiKeySecretRef: {name: bw}}" > "$WORK/test.yaml"
spec "{serverUrl: \"http://127.0.0.1:$BW_PORT\", apiKeySecretRef: {name: bw}}" > "$WORK/sync.yaml"

echo "bench: building dirsync (release)" >&2
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN="$CARGO_TARGET_DIR/release/dirsync"

# One run: appends "label wall_seconds peak_kib output_bytes" to $WORK/runs.
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -v -o "$WORK/time.txt" "$@" > "$WORK/out.txt" 2> "$WORK/err.txt" || {
    echo "bench: $label failed:" >&2; cat "$WORK/err.txt" >&2; exit 1; }
  python3 - "$label" "$WORK/time.txt" "$(wc -c < "$WORK/out.txt")" >> "$WORK/runs" <<'PY'
import sys
label, path, size = sys.argv[1:]
wall = rss = None
for line in open(path):
    if "Elapsed (wall clock)" in line:
        parts = line.rsplit(" ", 1)[1].strip().split(":")
        wall = sum(float(p) * 60 ** i for i, p in enumerate(reversed(parts)))
    if "Maximum resident set size" in line:
        rss = int(line.rsplit(" ", 1)[1])
print(label, wall, rss, size)
PY
  tail -1 "$WORK/runs" | awk '{printf "bench:   %-13s %7.2f s  %7.1f MiB\n", $1, $2, $3 / 1024}' >&2
}

: > "$WORK/runs"
for round in $(seq 1 "$RUNS"); do
  echo "bench: round $round of $RUNS (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  measure ldapsearch ldapsearch -x -LLL -H "ldap://127.0.0.1:$PORT" -D "cn=admin,$BASE" -w bench-password \
    -b "$BASE" -E pr=1000/noprompt "(|(objectClass=inetOrgPerson)(objectClass=groupOfNames))" mail uid cn member
  measure dirsync-test "$BIN" test --json --log-level warn -f "$WORK/test.yaml"
  measure dirsync-sync "$BIN" sync --log-level warn -f "$WORK/sync.yaml"
  if [ -n "${BASELINE:-}" ]; then
    measure baseline-test "$BASELINE" test --json --log-level warn -f "$WORK/test.yaml"
    measure baseline-sync "$BASELINE" sync --log-level warn -f "$WORK/sync.yaml"
  fi
done

echo "== $N users, $((N / 100)) nested groups: medians of $RUNS runs"
python3 - "$WORK/runs" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, wall, rss, size = line.split()
    runs.setdefault(label, []).append((float(wall), int(rss), int(size)))
floor = statistics.median(w for w, _, _ in runs["ldapsearch"])
print(f"{'':14} {'wall s':>8} {'peak RSS MiB':>13} {'output MiB':>11} {'wall / ldapsearch':>18}")
for label, rows in runs.items():
    wall = statistics.median(w for w, _, _ in rows)
    rss = statistics.median(r for _, r, _ in rows) / 1024
    size = rows[-1][2] / 1048576
    print(f"{label:14} {wall:8.2f} {rss:13.1f} {size:11.1f} {wall / floor:18.2f}")
PY
