#!/usr/bin/env bash
# Regenerates test-only keys (they sign nothing real): an EC P-256 key (PKCS#8), which the
# RS256-only sources (Google, Entra) must refuse, and keys that `net::jwt` refuses: RSA keys under
# 2048 and over 4096 bits (ring signs with 2048 to 4096), and an EC P-256 key in SEC1 form
# (BEGIN EC PRIVATE KEY) instead of PKCS#8.
set -euo pipefail
cd "$(dirname "$0")"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa-1024.key 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4608 -out rsa-4608.key 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec-p256.key
openssl ecparam -name prime256v1 -genkey -noout -out ec-sec1.key
echo "wrote ec-p256.key rsa-1024.key rsa-4608.key ec-sec1.key"
