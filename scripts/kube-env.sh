#!/usr/bin/env bash
# A throwaway Kubernetes control plane on loopback for the tests (etcd + a real kube-apiserver),
# with its own state directory and ports, so several runs can coexist. Pods never run (no nodes):
# the controller runs as a local process.
#
#   kube-env.sh start     prints `export KUBECONFIG=...` (admin) on its last line
#   kube-env.sh stop      stops what `start` started in $KUBE_DIR (by recorded PIDs only)
#
#   KUBE_DIR             state directory (default ${TMPDIR:-/tmp}/dirsync-kube-env), wiped on start
#   KUBE_PORT            API port (default 17443); KUBE_ETCD_PORT / KUBE_ETCD_PEER_PORT (default
#                        KUBE_PORT-4064 / -4063)
#   KUBE_OWNER_PID       stop automatically when this process exits (the test harness sets it)
#   KUBE_APISERVER       a kube-apiserver binary; else the one scripts/build-kube-apiserver.sh
#                        builds once and caches (in $DIRSYNC_KUBE_CACHE, default ~/.cache/dirsync-kube)
# Writes $KUBE_DIR/admin.kubeconfig (system:masters) and $KUBE_DIR/user.kubeconfig (static token
# for user "tester", group "testers": no rights until bound).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KUBE_DIR=${KUBE_DIR:-${TMPDIR:-/tmp}/dirsync-kube-env}
PORT=${KUBE_PORT:-17443}
ETCD_PORT=${KUBE_ETCD_PORT:-$((PORT - 4064))}
ETCD_PEER=${KUBE_ETCD_PEER_PORT:-$((PORT - 4063))}
die() { echo "kube-env: $*" >&2; exit 1; }

stop() {
  for p in kube-apiserver etcd; do
    f=$KUBE_DIR/$p.pid; [ -f "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  if [ -f "$KUBE_DIR/watchdog.pid" ]; then
    w=$(cat "$KUBE_DIR/watchdog.pid"); rm -f "$KUBE_DIR/watchdog.pid"
    [ "$w" != "${BASHPID:-$$}" ] && kill "$w" 2>/dev/null || true
  fi
}

apiserver_bin() {
  if [ -n "${KUBE_APISERVER:-}" ]; then echo "$KUBE_APISERVER"; return; fi
  # Returns at once when the binary is cached; builds it otherwise (minutes, once).
  local dir
  dir=$("$HERE/build-kube-apiserver.sh") || die "no kube-apiserver: its build failed (see above); or set KUBE_APISERVER"
  echo "$dir/kube-apiserver"
}

start() {
  command -v kubectl >/dev/null || die "kubectl not found (apt-get install kubernetes-client)"
  command -v etcd >/dev/null || die "etcd not found (apt-get install etcd-server etcd-client)"
  command -v openssl >/dev/null || die "openssl not found"
  local bin; bin=$(apiserver_bin)
  [ -x "$bin" ] || die "kube-apiserver not executable: $bin"
  if [ -f "$KUBE_DIR/etcd.pid" ] && kill -0 "$(cat "$KUBE_DIR/etcd.pid")" 2>/dev/null; then
    die "already running in $KUBE_DIR (run '$0 stop' first)"; fi
  rm -rf "$KUBE_DIR"; mkdir -p "$KUBE_DIR/pki" "$KUBE_DIR/etcd"
  cd "$KUBE_DIR/pki"
  q() { "$@" >/dev/null 2>&1; }
  q openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=dirsync-test-ca" -keyout ca.key -out ca.crt
  q openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > apiserver.ext
  q openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile apiserver.ext -out apiserver.crt
  q openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=admin" -keyout admin.key -out admin.csr
  printf 'extendedKeyUsage=clientAuth\n' > client.ext
  q openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile client.ext -out admin.crt
  q openssl genrsa -out sa.key 2048; q openssl rsa -in sa.key -pubout -out sa.pub
  local token; token=$(openssl rand -hex 16)
  printf '%s,tester,1001,"testers"\n' "$token" > tokens.csv

  etcd --name test --data-dir "$KUBE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "test=http://127.0.0.1:$ETCD_PEER" > "$KUBE_DIR/etcd.log" 2>&1 &
  echo $! > "$KUBE_DIR/etcd.pid"
  for _ in $(seq 1 100); do
    ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$ETCD_PORT" endpoint health >/dev/null 2>&1 && break; sleep 0.1; done

  "$bin" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$PORT" --insecure-port=0 \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --tls-cert-file=apiserver.crt --tls-private-key-file=apiserver.key --client-ca-file=ca.crt \
    --token-auth-file=tokens.csv \
    --service-account-key-file=sa.pub --service-account-signing-key-file=sa.key \
    --service-account-issuer=https://kubernetes.default.svc --api-audiences=https://kubernetes.default.svc \
    --authorization-mode=RBAC --service-cluster-ip-range=10.0.0.0/24 --endpoint-reconciler-type=none \
    --enable-priority-and-fairness=false --cert-dir="$KUBE_DIR/pki" \
    > "$KUBE_DIR/kube-apiserver.log" 2>&1 &
  echo $! > "$KUBE_DIR/kube-apiserver.pid"

  mk() { local f=$1 u=$2; shift 2
    KUBECONFIG=$f kubectl config set-cluster test --server="https://127.0.0.1:$PORT" --certificate-authority="$KUBE_DIR/pki/ca.crt" --embed-certs=true >/dev/null
    KUBECONFIG=$f kubectl config set-credentials "$u" "$@" >/dev/null
    KUBECONFIG=$f kubectl config set-context test --cluster=test --user="$u" >/dev/null
    KUBECONFIG=$f kubectl config use-context test >/dev/null; }
  mk "$KUBE_DIR/admin.kubeconfig" admin --client-certificate="$KUBE_DIR/pki/admin.crt" --client-key="$KUBE_DIR/pki/admin.key" --embed-certs=true
  mk "$KUBE_DIR/user.kubeconfig" tester --token="$token"
  local ready=""
  for _ in $(seq 1 900); do
    if [ "$(kubectl --kubeconfig "$KUBE_DIR/admin.kubeconfig" get --raw /readyz 2>/dev/null)" = ok ]; then ready=1; break; fi
    kill -0 "$(cat "$KUBE_DIR/kube-apiserver.pid")" 2>/dev/null || { stop; die "kube-apiserver died; see $KUBE_DIR/kube-apiserver.log"; }
    sleep 0.1; done
  [ -n "$ready" ] || { stop; die "apiserver not ready after 90 s; see $KUBE_DIR/kube-apiserver.log"; }

  if [ -n "${KUBE_OWNER_PID:-}" ]; then
    # Stop the control plane when the owner (a test process) exits.
    ( trap '' HUP; while kill -0 "$KUBE_OWNER_PID" 2>/dev/null; do sleep 1; done; KUBE_DIR=$KUBE_DIR "$0" stop ) \
      </dev/null >/dev/null 2>&1 &
    echo $! > "$KUBE_DIR/watchdog.pid"
  fi
  echo "export KUBECONFIG=$KUBE_DIR/admin.kubeconfig"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
