#!/usr/bin/env bash
# End-to-end check of dirsync on ANY cluster, driven with kubectl only, as a user would:
# installs the CRD when it is absent, creates a namespace with the Secrets and a DirectorySync,
# waits for Ready, reads `kubectl get dsync` and `describe`, checks events, forces a sync with
# dirsync.dev/sync-now, suspends and resumes, deletes the resource, and removes its namespace.
# Every step must pass: anything missing fails the run loudly (nothing is skipped).
#
# Inputs (environment):
#   KUBECONFIG                   required: the cluster (its user must be able to create namespaces,
#                                Secrets and DirectorySyncs, and the CRD when it is absent)
#   E2E_LDAP_URL                 required: ldap(s):// URL of a directory, reachable from the controller
#   E2E_LDAP_ROOT                required: base DN (rootPath), e.g. dc=example,dc=com
#   E2E_LDAP_BIND_DN             required: bind DN
#   E2E_LDAP_BIND_PASSWORD       required: bind password
#   E2E_LDAP_USERS_PATH          users under the base (default ou=People)
#   E2E_LDAP_GROUPS_PATH         groups under the base (default ou=Groups)
#   E2E_LDAP_START_TLS           true for StartTLS on ldap:// (default false)
#   E2E_BITWARDEN_URL            required: Bitwarden server base URL (serverUrl), reachable from the controller
#   E2E_BITWARDEN_CLIENT_ID      required: organization API key client_id (organization.<uuid>)
#   E2E_BITWARDEN_CLIENT_SECRET  required: organization API key client_secret
#   E2E_EXPECT_USERS             optional: expected enabled users (the Users column)
#   E2E_EXPECT_GROUPS            optional: expected groups (the Groups column)
#   E2E_NAMESPACE                namespace to create and delete (default dirsync-e2e-<random>); must not exist
#   E2E_TIMEOUT                  seconds to wait for each status change (default 120)
#   E2E_START_CONTROLLER=1       start `dirsync controller` here (all namespaces) instead of expecting
#                                one in the cluster; then also:
#     DIRSYNC_BIN                the dirsync binary (default: dirsync on PATH)
#     E2E_CONTROLLER_KUBECONFIG  the controller's kubeconfig (default $KUBECONFIG)
#     E2E_METRICS_ADDR           its metrics address (default 127.0.0.1:18080); /metrics is checked
#   E2E_CRD                      CRD file to create when absent (default crds/directorysync.yaml)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
fail() { echo "e2e: FAIL: $*" >&2; exit 1; }
step() { echo "e2e: $*"; }

command -v kubectl >/dev/null || fail "kubectl not found on PATH"
for v in KUBECONFIG E2E_LDAP_URL E2E_LDAP_ROOT E2E_LDAP_BIND_DN E2E_LDAP_BIND_PASSWORD \
  E2E_BITWARDEN_URL E2E_BITWARDEN_CLIENT_ID E2E_BITWARDEN_CLIENT_SECRET; do
  [ -n "${!v:-}" ] || fail "$v is not set (see the top of $0)"
done
NS=${E2E_NAMESPACE:-dirsync-e2e-$(date +%s)-$RANDOM}
TIMEOUT=${E2E_TIMEOUT:-120}
CRD=${E2E_CRD:-$ROOT/crds/directorysync.yaml}
NAME=corp
k() { kubectl "$@"; }
kn() { kubectl -n "$NS" "$@"; }

k get --raw /readyz >/dev/null || fail "the cluster in $KUBECONFIG is not reachable"

CONTROLLER_PID=""
cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "e2e: --- state at failure ---" >&2
    kn get dsync -o yaml >&2 2>/dev/null || true
    kn get events >&2 2>/dev/null || true
    if [ -n "$CONTROLLER_PID" ]; then echo "e2e: --- controller log ---" >&2; tail -n 100 "$LOG" >&2 || true; fi
  fi
  if [ -n "$CONTROLLER_PID" ]; then
    kill "$CONTROLLER_PID" 2>/dev/null || true
    wait "$CONTROLLER_PID" 2>/dev/null || true
  fi
  # A cluster without a namespace controller (a bare apiserver) never finishes the deletion.
  kubectl delete namespace "$NS" --wait=false --ignore-not-found >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT

# --- the CRD ---------------------------------------------------------------------------------
if k get crd directorysyncs.dirsync.dev >/dev/null 2>&1; then
  step "CRD present"
else
  [ -f "$CRD" ] || fail "the CRD is not installed and $CRD does not exist"
  step "creating the CRD from $CRD"
  # --validate=false: kubectl's client-side validation of old clusters rejects CEL rules.
  k create --validate=false -f "$CRD" >/dev/null
fi
k wait --for=condition=Established crd/directorysyncs.dirsync.dev --timeout=60s >/dev/null
for _ in $(seq 1 100); do k get dsync -A >/dev/null 2>&1 && break; sleep 0.2; done
k get dsync -A >/dev/null || fail "kubectl get dsync does not work after the CRD was established"

# --- a controller ----------------------------------------------------------------------------
if [ "${E2E_START_CONTROLLER:-}" = 1 ]; then
  BIN=${DIRSYNC_BIN:-$(command -v dirsync || true)}
  [ -n "$BIN" ] && [ -x "$BIN" ] || fail "E2E_START_CONTROLLER=1 but no dirsync binary (set DIRSYNC_BIN)"
  ADDR=${E2E_METRICS_ADDR:-127.0.0.1:18080}
  LOG=$(mktemp -t dirsync-e2e-controller.XXXXXX)
  step "starting $BIN controller (all namespaces), log $LOG"
  KUBECONFIG=${E2E_CONTROLLER_KUBECONFIG:-$KUBECONFIG} "$BIN" controller --metrics-addr "$ADDR" >"$LOG" 2>&1 &
  CONTROLLER_PID=$!
  command -v curl >/dev/null || fail "curl not found (needed to check the controller's /healthz)"
  for _ in $(seq 1 100); do curl -sf "http://$ADDR/healthz" >/dev/null && break
    kill -0 "$CONTROLLER_PID" 2>/dev/null || fail "the controller exited: $(cat "$LOG")"; sleep 0.2; done
  curl -sf "http://$ADDR/healthz" >/dev/null || fail "the controller does not serve /healthz on $ADDR"
else
  step "expecting a dirsync controller in the cluster (E2E_START_CONTROLLER=1 starts one here)"
fi

# --- the resource ----------------------------------------------------------------------------
k get namespace "$NS" >/dev/null 2>&1 && fail "namespace $NS exists already: set E2E_NAMESPACE to a new one"
step "namespace $NS"
k create namespace "$NS" >/dev/null
kn create secret generic bitwarden-org-key \
  --from-literal=client_id="$E2E_BITWARDEN_CLIENT_ID" \
  --from-literal=client_secret="$E2E_BITWARDEN_CLIENT_SECRET" >/dev/null
kn create secret generic ldap-bind \
  --from-literal=username="$E2E_LDAP_BIND_DN" \
  --from-literal=password="$E2E_LDAP_BIND_PASSWORD" >/dev/null
kn apply -f - >/dev/null <<YAML
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata:
  name: $NAME
spec:
  bitwarden:
    serverUrl: $E2E_BITWARDEN_URL
    apiKeySecretRef: {name: bitwarden-org-key}
  source:
    ldap:
      url: $E2E_LDAP_URL
      startTls: ${E2E_LDAP_START_TLS:-false}
      rootPath: "$E2E_LDAP_ROOT"
      bindSecretRef: {name: ldap-bind}
      users: {path: "${E2E_LDAP_USERS_PATH:-ou=People}"}
      groups: {path: "${E2E_LDAP_GROUPS_PATH:-ou=Groups}"}
  sync:
    interval: 1h
YAML

status() { kn get dsync "$NAME" -o jsonpath="$1"; }
reason() { status '{.status.conditions[?(@.type=="Ready")].reason}'; }
# wait_until DESCRIPTION COMMAND...: polls COMMAND until it succeeds, up to $TIMEOUT seconds.
wait_until() {
  local what=$1; shift
  local end=$((SECONDS + TIMEOUT))
  until "$@"; do
    [ $SECONDS -lt $end ] || fail "timed out after ${TIMEOUT}s waiting for $what (reason: $(reason))"
    sleep 0.5
  done
}

step "waiting for Ready"
kn wait --for=condition=Ready "dsync/$NAME" --timeout="${TIMEOUT}s" >/dev/null \
  || fail "not Ready: $(status '{.status.conditions[?(@.type=="Ready")].message}')"
case "$(reason)" in Synced|Unchanged) ;; *) fail "Ready with reason $(reason), want Synced";; esac

step "kubectl get dsync"
out=$(kn get dsync "$NAME")
echo "$out"
header=$(echo "$out" | head -n 1)
for col in NAME SOURCE READY REASON USERS GROUPS "LAST SYNC" AGE; do
  [[ "$header" == *"$col"* ]] || fail "column $col missing from kubectl get dsync"
done
read -r -a row <<<"$(echo "$out" | sed -n 2p)"
[ "${row[0]}" = "$NAME" ] && [ "${row[1]}" = ldap ] && [ "${row[2]}" = True ] \
  || fail "unexpected row: ${row[*]}"
if [ -n "${E2E_EXPECT_USERS:-}" ]; then
  [ "${row[4]}" = "$E2E_EXPECT_USERS" ] || fail "Users column ${row[4]}, want $E2E_EXPECT_USERS"; fi
if [ -n "${E2E_EXPECT_GROUPS:-}" ]; then
  [ "${row[5]}" = "$E2E_EXPECT_GROUPS" ] || fail "Groups column ${row[5]}, want $E2E_EXPECT_GROUPS"; fi
[ -n "${row[6]:-}" ] && [ "${row[6]}" != "<none>" ] || fail "no Last Sync: ${row[*]}"

step "kubectl describe dsync"
desc=$(kn describe dsync "$NAME")
for want in "Type:  *Ready" "Type:  *SourceReachable" "Type:  *BitwardenReachable" "Last Successful Sync Time"; do
  grep -Eq "$want" <<<"$desc" || fail "describe lacks '$want':
$desc"
done

step "a Normal Synced event"
end=$((SECONDS + 30))
until kn get events --field-selector reason=Synced,type=Normal -o name | grep -q .; do
  [ $SECONDS -lt $end ] || fail "no Normal Synced event: $(kn get events)"; sleep 0.5; done

step "dirsync.dev/sync-now"
token=e2e-$(date +%s%N)
kn annotate dsync "$NAME" "dirsync.dev/sync-now=$token" --overwrite >/dev/null
handled() { [ "$(status '{.status.syncNowHandled}')" = "$token" ]; }
wait_until "the sync-now annotation to be handled" handled
[ "$(status '{.status.conditions[?(@.type=="Ready")].status}')" = True ] || fail "not Ready after sync-now: $(reason)"

step "suspend"
kn patch dsync "$NAME" --type merge -p '{"spec":{"suspend":true}}' >/dev/null
is_reason() { [ "$(reason)" = "$1" ]; }
wait_until "reason Suspended" is_reason Suspended
kn patch dsync "$NAME" --type merge -p '{"spec":{"suspend":false}}' >/dev/null
resumed() { case "$(reason)" in Synced|Unchanged) return 0;; *) return 1;; esac; }
wait_until "a sync after resuming" resumed

if [ -n "$CONTROLLER_PID" ]; then
  step "metrics"
  m=$(curl -sf "http://$ADDR/metrics") || fail "no /metrics"
  grep -q "dirsync_ready{namespace=\"$NS\",name=\"$NAME\",provider=\"ldap\"} 1" <<<"$m" || fail "no dirsync_ready series"
fi

step "delete"
kn delete dsync "$NAME" --timeout=60s >/dev/null
kn get dsync "$NAME" >/dev/null 2>&1 && fail "the DirectorySync still exists"
if [ -n "$CONTROLLER_PID" ]; then
  gone() { ! curl -sf "http://$ADDR/metrics" | grep -q "namespace=\"$NS\",name=\"$NAME\""; }
  wait_until "the deleted resource's metric series to go" gone
fi
step "PASS"
