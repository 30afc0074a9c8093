#!/usr/bin/env bash
# What the controller's integration tests need: kubectl, etcd, openssl and a kube-apiserver
# (v1.20.2, built once from Debian's source package by scripts/build-kube-apiserver.sh and cached
# in ~/.cache/dirsync-kube). Idempotent; skipped when KUBECONFIG names a cluster.
set -euo pipefail
[ -n "${KUBECONFIG:-}" ] && exit 0
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
need=()
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v etcd >/dev/null || need+=(etcd-server etcd-client)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The build script returns at once when the binary is already cached.
if [ -z "${KUBE_APISERVER:-}" ]; then
  "$(dirname "$0")/build-kube-apiserver.sh" >/dev/null
fi
