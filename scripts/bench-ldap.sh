#!/usr/bin/env bash
# LDAP benchmark (a command, not a test): generates a directory of N users and N/100 nested
# groups, loads it into a throwaway slapd with slapadd, then times `dirsync test --json` on it
# and, as the floor, `ldapsearch -E pr=1000/noprompt` dumping the same entries and attributes.
# Prints wall time and peak RSS of both (GNU time).
#
#   ./scripts/bench-ldap.sh [100k|N]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dirsync-target}
N=${1:-100k}
N=${N/k/000}
bash "$ROOT/scripts/ci-install-ldap.sh" >&2
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }

BASE="dc=bench,dc=example"
# shellcheck source=scripts/lib/slapd.sh
. "$ROOT/scripts/lib/slapd.sh"
WORK=$(mktemp -d /tmp/dirsync-bench.XXXXXX)
echo "bench: generating $N users and $((N / 100)) nested groups" >&2
python3 "$ROOT/scripts/gen-ldif.py" "$N" "$BASE" > "$WORK.ldif"
start=$(date +%s.%N)
slapd_start "$WORK" "$BASE" bench-password "$WORK.ldif"
rm -f "$WORK.ldif"
echo "bench: slapadd and start took $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s" >&2
PORT=$SLAPD_PORT

cat > "$WORK/bench.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: bw}
stringData: {client_id: organization.00000000-0000-0000-0000-000000000000, client_secret: unused}
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
  bitwarden: {apiKeySecretRef: {name: bw}}
  source:
    ldap:
      url: ldap://127.0.0.1:$PORT
      bindSecretRef: {name: bind}
      rootPath: "$BASE"
      users: {path: ou=people}
      groups: {path: ou=groups}
  sync: {largeImport: true}
YAML

echo "bench: building dirsync (release)" >&2
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN="$CARGO_TARGET_DIR/release/dirsync"

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -v -o "$WORK/time.txt" "$@" > "$WORK/out.txt"
  local wall rss
  wall=$(grep 'Elapsed (wall clock)' "$WORK/time.txt" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$WORK/time.txt" | awk '{print $NF}')
  printf '%-10s wall %8s   peak RSS %7.1f MiB   output %s bytes\n' "$label" "$wall" "$(echo "$rss / 1024" | bc -l)" "$(wc -c < "$WORK/out.txt")"
}

echo "== $N users, $((N / 100)) groups"
for round in 1 2; do
  measure ldapsearch ldapsearch -x -LLL -H "ldap://127.0.0.1:$PORT" -D "cn=admin,$BASE" -w bench-password \
    -b "$BASE" -E pr=1000/noprompt "(|(objectClass=inetOrgPerson)(objectClass=groupOfNames))" mail uid cn member
  measure dirsync "$BIN" test --json --log-level warn -f "$WORK/bench.yaml"
done
