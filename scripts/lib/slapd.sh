# Shell helpers for the demo and the benchmarks: the size argument, free ports, and a throwaway
# slapd in a temp directory.
# Source it, then call `slapd_start WORK BASE_DN ROOT_PASSWORD LDIF`; it sets SLAPD_PORT and
# registers a trap that stops the server and removes WORK on exit.

# A directory size as the benchmarks take it: 100k, 1m or a plain number (default 100k).
user_count() {
  local n=${1:-100k}
  n=${n,,}
  n=${n/k/000}
  echo "${n/m/000000}"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

slapd_start() {
  local work=$1 base=$2 password=$3 ldif=$4
  SLAPD_WORK=$work
  trap 'slapd_stop' EXIT
  SLAPD_PORT=$(free_port)
  mkdir -p "$work/data"
  cat > "$work/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $work/slapd.pid
sizelimit unlimited
database mdb
maxsize 4294967296
suffix "$base"
rootdn "cn=admin,$base"
rootpw $password
directory $work/data
index objectClass eq
CONF
  /usr/sbin/slapadd -q -f "$work/slapd.conf" -l "$ldif"
  /usr/sbin/slapd -f "$work/slapd.conf" -h "ldap://127.0.0.1:$SLAPD_PORT/"
  for _ in $(seq 1 100); do
    ldapsearch -x -H "ldap://127.0.0.1:$SLAPD_PORT" -b "$base" -s base >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "slapd did not answer on port $SLAPD_PORT" >&2
  return 1
}

slapd_stop() {
  [ -n "${SLAPD_WORK:-}" ] || return 0
  [ -f "$SLAPD_WORK/slapd.pid" ] && kill "$(cat "$SLAPD_WORK/slapd.pid")" 2>/dev/null || true
  rm -rf "$SLAPD_WORK"
}
