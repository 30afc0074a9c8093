#!/usr/bin/env bash
# Regenerates the TLS fixtures of tests/support/tls.rs (test-only keys; never used elsewhere):
# a CA, and server certificates it signs: for localhost/127.0.0.1, expired, for another name.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj "/CN=dirsync test TLS CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$work/ca.key" -out ca.pem 2>/dev/null
openssl genrsa -out server.key 2048 2>/dev/null
sign() { # name san startdate enddate
  openssl req -new -key server.key -subj "/CN=$1" -out "$work/$1.csr"
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
copy_extensions = none
[any]
commonName = supplied
[ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $2
CNF
  openssl ca -batch -config "$work/ca.cnf" -cert ca.pem -keyfile "$work/ca.key" -extensions ext \
    -startdate "$3" -enddate "$4" -in "$work/$1.csr" -out "$work/$1.full" -notext 2>/dev/null
  openssl x509 -in "$work/$1.full" -out "$1.pem"
}
sign localhost "DNS:localhost,IP:127.0.0.1" 20250101000000Z 21250101000000Z
sign expired "DNS:localhost,IP:127.0.0.1" 20200101000000Z 20210101000000Z
sign other-name "DNS:other.example" 20250101000000Z 21250101000000Z
echo "wrote ca.pem server.key localhost.pem expired.pem other-name.pem"
