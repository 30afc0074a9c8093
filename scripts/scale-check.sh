#!/usr/bin/env bash
# Scale check (a command, not a test): 1,000 DirectorySyncs (mode: DryRun, each with its own
# organization key, all reading one tiny slapd) on a local kube-apiserver, one controller.
# Reports the time until all are Ready, the controller's idle RSS (target < 30 MiB) and the
# latency from a spec change to the new status (target p99 < 1 s). See examples/scale_check.rs.
#
#   ./scripts/scale-check.sh            SCALE_COUNT=1000 SCALE_CHANGES=100 SCALE_CONCURRENCY=4
#   PROFILE=dev ./scripts/scale-check.sh   (a debug build; default: release)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dirsync-target}
PROFILE=${PROFILE:-release}
DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
cargo build --profile "$PROFILE" --bin dirsync --example scale_check >&2

# shellcheck source=scripts/lib/slapd.sh
. "$ROOT/scripts/lib/slapd.sh"
BASE="dc=scale,dc=example"
WORK=$(mktemp -d /tmp/dirsync-scale.XXXXXX)
python3 "$ROOT/scripts/gen-ldif.py" 20 "$BASE" > "$WORK.ldif"
slapd_start "$WORK/slapd" "$BASE" scale-password "$WORK.ldif"
rm -f "$WORK.ldif"

export KUBE_DIR=$WORK/kube
KUBE_PORT=$(free_port) KUBE_ETCD_PORT=$(free_port) KUBE_ETCD_PEER_PORT=$(free_port) "$ROOT/scripts/kube-env.sh" start >/dev/null
trap '"$ROOT/scripts/kube-env.sh" stop; slapd_stop; rm -rf "$WORK"' EXIT
export KUBECONFIG=$KUBE_DIR/admin.kubeconfig
kubectl create --validate=false -f "$ROOT/crds/directorysync.yaml" >/dev/null
kubectl wait --for=condition=Established crd/directorysyncs.dirsync.dev --timeout=60s >/dev/null

SCALE_LDAP_URL=ldap://127.0.0.1:$SLAPD_PORT SCALE_LDAP_BASE=$BASE SCALE_LDAP_PASSWORD=scale-password \
  DIRSYNC_BIN=$CARGO_TARGET_DIR/$DIR/dirsync "$CARGO_TARGET_DIR/$DIR/examples/scale_check"
