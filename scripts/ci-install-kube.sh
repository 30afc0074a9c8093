#!/usr/bin/env bash
# What the controller's integration tests need: kubectl, etcd, openssl and a kube-apiserver
# (v1.20.2, built once from Debian's source package by ../shared/tools/kube/build-apiserver.sh
# and cached in ~/.cache/dirsync-kube). Idempotent; skipped when KUBECONFIG names a cluster.
set -euo pipefail
[ -n "${KUBECONFIG:-}" ] && exit 0
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
need=()
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v etcd >/dev/null || need+=(etcd-server etcd-client)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cache=${DIRSYNC_KUBE_CACHE:-$HOME/.cache/dirsync-kube}
if [ -z "${KUBE_APISERVER:-}" ] && [ ! -x "$cache/bin/kube-apiserver" ]; then
  "$(dirname "$0")/../../shared/tools/kube/build-apiserver.sh" >/dev/null
fi
