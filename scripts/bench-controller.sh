#!/usr/bin/env bash
# Controller memory (a command, not a test): the release controller on a local kube-apiserver,
# one DirectorySync reading N users (default 100k) from a throwaway slapd and sending them to a
# local Bitwarden stand-in (scripts/bw-double.py). Reports the controller's RSS when idle before
# any resource and after a sync of ten users, its peak, and its RSS 10 s after each of SYNCS syncs
# of the whole directory (forced with the dirsync.dev/sync-now annotation), split into anonymous
# memory and file-backed pages: the figures behind the chart's memory request and limit.
#
#   ./scripts/bench-controller.sh [100k|1m|N]      SYNCS=3 (default)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dirsync-target}
# shellcheck source=scripts/lib/slapd.sh
. "$ROOT/scripts/lib/slapd.sh"
N=$(user_count "${1:-}")
SYNCS=${SYNCS:-3}
bash "$ROOT/scripts/ci-install-ldap.sh" >&2
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin dirsync
BIN=$CARGO_TARGET_DIR/release/dirsync

BASE="dc=bench,dc=example"
WORK=$(mktemp -d /tmp/dirsync-bench-controller.XXXXXX)
echo "bench: $N users and $((N / 100)) nested groups into slapd" >&2
python3 "$ROOT/scripts/gen-ldif.py" "$N" "$BASE" > "$WORK.ldif"
slapd_start "$WORK/slapd" "$BASE" bench-password "$WORK.ldif"
rm -f "$WORK.ldif"

python3 "$ROOT/scripts/bw-double.py" "$WORK/bw.port" &
BW_PID=$!
CONTROLLER_PID=
export KUBE_DIR=$WORK/kube
KUBE_PORT=$(free_port) KUBE_ETCD_PORT=$(free_port) KUBE_ETCD_PEER_PORT=$(free_port) "$ROOT/scripts/kube-env.sh" start >/dev/null
cleanup() {
  [ -z "$CONTROLLER_PID" ] || kill "$CONTROLLER_PID" 2>/dev/null || true
  kill "$BW_PID" 2>/dev/null || true
  "$ROOT/scripts/kube-env.sh" stop || true
  slapd_stop
  rm -rf "$WORK"
}
trap cleanup EXIT
export KUBECONFIG=$KUBE_DIR/admin.kubeconfig
kubectl create --validate=false -f "$ROOT/crds/directorysync.yaml" >/dev/null
kubectl wait --for=condition=Established crd/directorysyncs.dirsync.dev --timeout=60s >/dev/null
for _ in $(seq 1 50); do [ -s "$WORK/bw.port" ] && break; sleep 0.1; done

METRICS_PORT=$(free_port)
DIRSYNC_LOG_LEVEL=${DIRSYNC_LOG_LEVEL:-warn} "$BIN" controller --metrics-addr "127.0.0.1:$METRICS_PORT" 2> "$WORK/controller.log" &
CONTROLLER_PID=$!
rss() { awk -v k="$1" '$1 == k ":" {printf "%.1f", $2 / 1024}' "/proc/$CONTROLLER_PID/status"; }
ready=
for _ in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$METRICS_PORT/healthz', timeout=1)" 2>/dev/null && { ready=1; break; }
  sleep 0.1
done
[ -n "$ready" ] || { echo "bench: the controller did not start:" >&2; cat "$WORK/controller.log" >&2; exit 1; }
sleep 5
echo "== controller, one DirectorySync of $N users and $((N / 100)) groups (release build)"
# RSS in parts: heap and stacks (anon), and the program's code and libraries read from disk as
# they are first run (file: clean pages, shared, the kernel may drop them; not freed memory).
parts() { echo "$(rss VmRSS) MiB (anon $(rss RssAnon), file $(rss RssFile))"; }
echo "idle, no resource:            $(parts)"

# The resource, first narrowed to ten users and one group: the controller's idle size once it has
# run a sync (its code paged in, its clients and caches made), apart from what a large directory
# leaves behind.
apply() { # users, groups (YAML)
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Secret
metadata: {name: bw, namespace: default}
stringData: {client_id: organization.00000000-0000-0000-0000-000000000000, client_secret: bench-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: bind, namespace: default}
stringData: {username: "cn=admin,$BASE", password: bench-password}
---
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {name: bench, namespace: default}
spec:
  bitwarden: {serverUrl: "http://127.0.0.1:$(cat "$WORK/bw.port")", apiKeySecretRef: {name: bw}}
  source:
    ldap:
      url: ldap://127.0.0.1:$SLAPD_PORT
      bindSecretRef: {name: bind}
      rootPath: "$BASE"
      users: $1
      groups: $2
  sync: {largeImport: true, interval: 24h}
YAML
}
# Waits for a sync after the one that ended at $last; sets now, took and reason.
wait_sync() {
  local started
  started=$(date +%s.%N)
  for _ in $(seq 1 1200); do
    now=$(kubectl get directorysync/bench -o jsonpath='{.status.lastSyncTime}' 2>/dev/null || true)
    [ -n "$now" ] && [ "$now" != "$last" ] && break
    sleep 0.25
  done
  [ -n "$now" ] && [ "$now" != "$last" ] || { echo "bench: the sync did not finish" >&2; cat "$WORK/controller.log" >&2; exit 1; }
  last=$now
  took=$(python3 -c "print(round($(date +%s.%N) - $started, 1))")
  reason=$(kubectl get directorysync/bench -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}')
  case $reason in Synced|Unchanged) ;; *)
    echo "bench: the sync ended $reason:" >&2
    kubectl get directorysync/bench -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}' >&2
    echo >&2; tail -20 "$WORK/controller.log" >&2; exit 1;;
  esac
}

last=
apply '{path: ou=people, filter: "(uid=user000000*)"}' '{path: ou=groups, filter: "(cn=group00000)"}'
wait_sync
sleep 10
echo "idle after a 10-user sync:     $(parts)  (peak so far $(rss VmHWM) MiB)"
apply '{path: ou=people}' '{path: ou=groups}'
for round in $(seq 1 "$SYNCS"); do
  if [ "$round" -gt 1 ]; then
    kubectl annotate --overwrite directorysync/bench "dirsync.dev/sync-now=round-$round" >/dev/null
  fi
  wait_sync
  sleep 10
  echo "after sync $round ($reason, ${took} s): $(parts)  (peak so far $(rss VmHWM) MiB)"
done
