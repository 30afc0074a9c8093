#!/usr/bin/env bash
# Regenerates the Entra test fixtures (test-only keys; never used elsewhere): the app
# registration's certificate and key (PKCS#8, and the same key as PKCS#1), an expired certificate
# of the same key, another key (a wrong one), and a key pair that plays a cluster's
# service-account issuer for federated tokens.
set -euo pipefail
cd "$(dirname "$0")"
openssl genrsa -out app.key 2048 2>/dev/null
openssl rsa -in app.key -traditional -out app-pkcs1.key 2>/dev/null
openssl req -x509 -key app.key -days 36500 -subj "/CN=dirsync test app" -out app.pem
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -new -key app.key -subj "/CN=dirsync test app (expired)" -out "$work/expired.csr"
mkdir -p "$work/db" && : > "$work/db/index.txt" && echo 01 > "$work/db/serial"
cat > "$work/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
database = $work/db/index.txt
serial = $work/db/serial
new_certs_dir = $work/db
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
CNF
openssl ca -batch -selfsign -config "$work/ca.cnf" -keyfile app.key -startdate 20200101000000Z \
  -enddate 20210101000000Z -in "$work/expired.csr" -out "$work/expired.full" -notext 2>/dev/null
openssl x509 -in "$work/expired.full" -out expired.pem
openssl genrsa -out other.key 2048 2>/dev/null
openssl genrsa -out issuer.key 2048 2>/dev/null
openssl rsa -in issuer.key -pubout -out issuer.pub 2>/dev/null
echo "wrote app.key app-pkcs1.key app.pem expired.pem other.key issuer.key issuer.pub"
