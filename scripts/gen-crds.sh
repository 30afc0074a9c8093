#!/usr/bin/env bash
# Regenerates the CRD from the Rust types (`dirsync crd`) into every place it is committed:
# crds/ (the source of truth), the chart's crds/ and deploy/. tests/crd.rs fails when they drift.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dirsync-target}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cargo run --quiet -- crd > "$tmp"
for out in crds/directorysync.yaml charts/dirsync/crds/directorysync.yaml deploy/directorysync-crd.yaml; do
  mkdir -p "$(dirname "$out")"
  cp "$tmp" "$out"
  echo "wrote $out"
done
