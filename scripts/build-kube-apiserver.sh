#!/usr/bin/env bash
# Builds the kube-apiserver the controller tests run against (upstream v1.20.2) from Debian
# bookworm's `kubernetes` source package (1.20.5+really1.20.2: the whole v1.20.2 tree, vendor/
# included) with Debian's Go 1.19, offline once the source is downloaded. Debian ships no
# kube-apiserver binary, and the tests take their servers from Debian's archive alone.
#
#   scripts/build-kube-apiserver.sh     prints the directory holding kube-apiserver on stdout
#
#   DIRSYNC_KUBE_CACHE   cache directory (default ~/.cache/dirsync-kube); the binary is
#                        $DIRSYNC_KUBE_CACHE/bin/kube-apiserver, and once it is there the script
#                        prints the directory and returns at once.
#
# Progress goes to stderr, the tools' full output to $DIRSYNC_KUBE_CACHE/build.log; any failure
# stops the build with the step that failed and the end of that log. About 8-13 minutes on 2
# cores and 2-3 GB of temporary disk; only the binary (about 105 MB) is kept.
set -Eeuo pipefail # -E: the ERR trap below also fires inside functions

K8S_VERSION=v1.20.2
DEBIAN_SUITE=bookworm
CACHE=${DIRSYNC_KUBE_CACHE:-$HOME/.cache/dirsync-kube}
BIN_DIR=$CACHE/bin
WORK=$CACHE/work         # the source tree and Go's caches; removed once the binary is in place
DOWNLOADS=$CACHE/downloads
LOG=$CACHE/build.log

say() { echo "build-kube-apiserver: $*" >&2; }

if [ -x "$BIN_DIR/kube-apiserver" ]; then echo "$BIN_DIR"; exit 0; fi

on_error() {
  local code=$?
  say "FAILED (exit $code) while $STEP."
  if [ -s "$LOG" ]; then
    say "last lines of $LOG:"
    tail -n 25 "$LOG" | sed 's/^/    /' >&2
  fi
  say "fix the cause and run this script again (a completed download is kept in $DOWNLOADS)."
  exit "$code"
}
trap on_error ERR

STEP="creating $CACHE"
mkdir -p "$CACHE"
# Two callers at once (say, two test binaries) would build into the same tree: the second waits.
exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
  say "another build is running in $CACHE; waiting for it"
  flock 9
fi
if [ -x "$BIN_DIR/kube-apiserver" ]; then echo "$BIN_DIR"; exit 0; fi

step() { STEP=$1; say "$1"; echo "=== $1" >>"$LOG"; }
: >"$LOG"
STEP="preparing the build"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
APT=(apt-get -q -o DPkg::Lock::Timeout=600)

install_build_packages() {
  # golang-go: Go 1.19. The two -dev packages replace vendored libraries (see use_debian_json_libs).
  local wanted=(golang-go golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev ca-certificates)
  local missing=() p
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "installing ${missing[*]}"
  $SUDO "${APT[@]}" update >>"$LOG" 2>&1
  $SUDO env DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1
}

# The Debian mirror this machine already uses (deb822 .sources files or a classic sources.list),
# preferring an entry for the bookworm suite itself, never the security archive.
debian_mirror() {
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true
    echo
    # Classic one-line entries, rewritten as deb822 stanzas.
    { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
      sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\)[[:space:]]\+\([^[:space:]]\+\).*/URIs: \2\nSuites: \3\n/p'
  } | awk -v suite="$DEBIAN_SUITE" '
    function flush() {
      if (uri != "" && uri !~ /security/) {
        if (best == "" && (" " suites " ") ~ (" " suite " ")) best = uri
        if (any == "") any = uri
      }
      uri = ""; suites = ""
    }
    /^[[:space:]]*$/ { flush(); next }
    /^URIs:/   { uri = $2 }
    /^Suites:/ { $1 = ""; suites = $0 }
    END { flush(); print (best != "" ? best : any) }'
}

download_source() {
  if ls "$DOWNLOADS"/kubernetes_*.orig.tar.* >/dev/null 2>&1; then return 0; fi
  step "downloading Debian's kubernetes source package (through a private apt configuration)"
  local mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg apt_dir=$CACHE/apt
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || { say "no Debian mirror found in /etc/apt/sources.list{,.d}"; false; }
  say "mirror: $mirror"
  # Only our own source list, lists and caches: the system's apt configuration is left as it is.
  rm -rf "$apt_dir"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d" "$DOWNLOADS"
  local signed_by=
  [ -f "$keyring" ] && signed_by="[signed-by=$keyring] "
  echo "deb-src $signed_by$mirror $DEBIAN_SUITE main" >"$apt_dir/sources.list"
  local private=(-o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
  "${APT[@]}" "${private[@]}" update >>"$LOG" 2>&1
  # A local directory the _apt sandbox user may write to when we are root.
  chmod 755 "$DOWNLOADS"
  (cd "$DOWNLOADS" && "${APT[@]}" "${private[@]}" source --download-only "kubernetes/$DEBIAN_SUITE" >>"$LOG" 2>&1)
  rm -rf "$apt_dir"
  # 1.20.5+really1.20.2: Debian's version for the upstream v1.20.2 tree.
  ls "$DOWNLOADS"/kubernetes_*"${K8S_VERSION#v}".orig.tar.* >/dev/null 2>&1 ||
    { say "apt-get source brought no kubernetes_*${K8S_VERSION#v}.orig.tar.* (see $DOWNLOADS)"; false; }
}

# GOPATH mode, as Kubernetes 1.20's own build does: the tree is k8s.io/kubernetes and its vendor/
# holds every dependency (staging repositories are symlinks into staging/src).
export GOPATH=$WORK/gopath GOCACHE=$WORK/gocache
export GO111MODULE=off GOFLAGS='' GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0
TREE=$GOPATH/src/k8s.io/kubernetes

unpack_tree() {
  step "unpacking the source tree"
  rm -rf "$WORK"
  mkdir -p "$TREE"
  tar -xf "$DOWNLOADS"/kubernetes_*.orig.tar.* -C "$TREE" --strip-components=1
  [ -d "$TREE/vendor/k8s.io/kube-openapi/cmd/openapi-gen" ] ||
    { say "the source tree has no vendored openapi-gen"; false; }
}

use_debian_json_libs() {
  # The vendored github.com/modern-go/reflect2 1.0.1 reads Go runtime internals that changed in
  # Go 1.18: the server dies ("fatal error: fault") on the first custom object it decodes.
  # Debian's reflect2 1.0.2 fixes that; json-iterator moves with it to Debian's matching version.
  step "replacing vendored reflect2 and json-iterator with Debian's packaged sources"
  local lib from to
  for lib in github.com/modern-go/reflect2 github.com/json-iterator/go; do
    from=/usr/share/gocode/src/$lib
    to=$TREE/vendor/$lib
    [ -d "$from" ] || { say "$from is missing (Debian's package for $lib)"; false; }
    rm -rf "$to"
    mkdir -p "$to"
    # The package itself: its .go files, without tests (they import more than vendor/ holds).
    find -L "$from" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
      -exec cp {} "$to/" \;
  done
}

generate_openapi() {
  # The tarball lacks pkg/generated/openapi (made by `make generated_files` upstream). Generate it
  # with the vendored openapi-gen over every package that carries a +k8s:openapi-gen= tag, as the
  # upstream Makefile does (the code generator's and sample-apiserver's own examples excluded).
  step "generating pkg/generated/openapi with the vendored openapi-gen"
  cd "$TREE"
  go build -o "$WORK/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen >>"$LOG" 2>&1
  # Staging repositories are compiled as vendor/k8s.io/..., so their packages are named that way.
  local tagged=$WORK/openapi-packages.txt
  find . -path ./vendor -prune -o -path './_*' -prune -o -path './.*' -prune -o \
    -type f -name '*.go' ! -name '*_test.go' -print0 >"$WORK/go-files"
  # grep exits 1 for a batch without a match: the list is checked just below instead.
  xargs -0 grep -l -e '+k8s:openapi-gen=' <"$WORK/go-files" >"$WORK/tagged-files" || true
  sed -e 's|^\./staging/src/|vendor/|' -e 's|^\./||' "$WORK/tagged-files" |
    grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' |
    xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' >"$tagged"
  grep -qx 'k8s.io/kubernetes/vendor/k8s.io/apimachinery/pkg/apis/meta/v1' "$tagged" ||
    { say "the +k8s:openapi-gen= search found no meta/v1 ($(wc -l <"$tagged") packages)"; false; }
  say "$(wc -l <"$tagged") packages ask for OpenAPI definitions"
  local packages
  packages=$(paste -sd, "$tagged")
  "$WORK/openapi-gen" --logtostderr \
    --input-dirs "$packages" \
    --output-package k8s.io/kubernetes/pkg/generated/openapi \
    --output-file-base zz_generated.openapi \
    --go-header-file vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    --report-filename "$WORK/openapi-rule-violations.txt" >>"$LOG" 2>&1
  [ -s pkg/generated/openapi/zz_generated.openapi.go ] ||
    { say "openapi-gen wrote no pkg/generated/openapi/zz_generated.openapi.go"; false; }
}

compile_apiserver() {
  step "compiling kube-apiserver $K8S_VERSION (the long part: several minutes)"
  cd "$TREE"
  # The version the server reports (/version, --version): what upstream's hack/lib/version.sh sets.
  local ldflags="-s -w" pkg minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    pkg=k8s.io/kubernetes/vendor/$pkg
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=archive"
  done
  mkdir -p "$BIN_DIR"
  go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/kube-apiserver.partial" ./cmd/kube-apiserver >>"$LOG" 2>&1
  local reported
  reported=$("$BIN_DIR/kube-apiserver.partial" --version 2>&1 || true)
  [ "$reported" = "Kubernetes $K8S_VERSION" ] ||
    { say "the new binary reports '$reported', not 'Kubernetes $K8S_VERSION'"; false; }
  mv "$BIN_DIR/kube-apiserver.partial" "$BIN_DIR/kube-apiserver"
}

started=$SECONDS
install_build_packages
say "$(go version)"
download_source
unpack_tree
use_debian_json_libs
generate_openapi
compile_apiserver
step "cleaning up the build tree"
cd "$CACHE"
rm -rf "$WORK" "$DOWNLOADS"
say "built $BIN_DIR/kube-apiserver in $((SECONDS - started)) s"
echo "$BIN_DIR"
