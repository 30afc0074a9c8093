#!/usr/bin/env bash
# The local demo: installs and starts a throwaway OpenLDAP server with a small sample company
# (examples/demo/company.ldif), runs `dirsync test` against it and prints what a sync would send
# to Bitwarden, then stops the server. Nothing is sent anywhere.
#
#   ./scripts/demo.sh            readable output
#   ./scripts/demo.sh --json     the JSON `bwdc test` would print (add --pretty to indent it)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dirsync-target}
bash "$ROOT/scripts/ci-install-ldap.sh" >&2

# shellcheck source=scripts/lib/slapd.sh
. "$ROOT/scripts/lib/slapd.sh"
WORK=$(mktemp -d /tmp/dirsync-demo.XXXXXX)
slapd_start "$WORK" dc=corp,dc=example demo-password "$ROOT/examples/demo/company.ldif"
PORT=$SLAPD_PORT
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
