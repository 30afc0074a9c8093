#!/usr/bin/env bash
# The local demo: installs and starts a throwaway OpenLDAP server with a small sample company
# (examples/demo/company.ldif), runs `dirsync test` against it and prints what a sync would send
# to Bitwarden, then stops the server. Nothing is sent anywhere.
#
#   ./scripts/demo.sh            readable output
#   ./scripts/demo.sh --json     the JSON `bwdc test` would print
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dirsync-target}
bash "$ROOT/scripts/ci-install-ldap.sh" >&2

WORK=$(mktemp -d /tmp/dirsync-demo.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
  [ -f "$WORK/slapd.pid" ] && kill "$(cat "$WORK/slapd.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/data"
cat > "$WORK/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $WORK/slapd.pid
database mdb
maxsize 104857600
suffix "dc=corp,dc=example"
rootdn "cn=admin,dc=corp,dc=example"
rootpw demo-password
directory $WORK/data
CONF
/usr/sbin/slapadd -q -f "$WORK/slapd.conf" -l "$ROOT/examples/demo/company.ldif"
/usr/sbin/slapd -f "$WORK/slapd.conf" -h "ldap://127.0.0.1:$PORT/"
for _ in $(seq 1 50); do
  ldapsearch -x -H "ldap://127.0.0.1:$PORT" -b dc=corp,dc=example -s base >/dev/null 2>&1 && break
  sleep 0.1
done
echo "demo: slapd with the sample company on ldap://127.0.0.1:$PORT" >&2

cat > "$WORK/demo.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: bitwarden-org-key, namespace: demo}
stringData:
  client_id: organization.00000000-0000-0000-0000-000000000000   # placeholder: test sends nothing
  client_secret: placeholder
---
apiVersion: v1
kind: Secret
metadata: {name: ldap-bind, namespace: demo}
stringData:
  username: cn=admin,dc=corp,dc=example
  password: demo-password
---
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {name: corp-ldap, namespace: demo}
spec:
  bitwarden:
    apiKeySecretRef: {name: bitwarden-org-key}
  source:
    ldap:
      url: ldap://127.0.0.1:$PORT
      bindSecretRef: {name: ldap-bind}
      rootPath: dc=corp,dc=example
      users: {path: ou=people, filter: "(!(employeeType=former))"}
      groups: {path: ou=groups}
  mode: DryRun
YAML

echo "demo: building dirsync" >&2
cargo build --quiet --manifest-path "$ROOT/Cargo.toml"
echo "demo: dirsync test -f demo.yaml $*" >&2
"$CARGO_TARGET_DIR/debug/dirsync" test -f "$WORK/demo.yaml" "$@"
