#!/usr/bin/env bash
# Writes deploy/ (plain manifests for clusters without Helm) from charts/dirsync with its default
# values: deploy/dirsync.yaml and deploy/directorysync-crd.yaml. `--check` fails on drift instead.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" scripts/chart.py render-deploy "$@"
