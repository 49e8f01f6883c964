#!/usr/bin/env bash
# Builds the envtest control plane (etcd, kube-apiserver, kube-controller-manager and, on request, kubectl)
# from the Go module proxy
# and prints the directory that holds them, ready for KUBEBUILDER_ASSETS.
#
# Why build: setup-envtest downloads prebuilt binaries from the internet, which these machines cannot
# reach; the Go module proxy is reachable, so we compile the same programs from source.
#
# Binaries are kept in a per-user cache keyed by version, so every clone on this machine (CI's fresh
# clone included) reuses them, and linked into bin/k8s/<version>/ inside the project.
#
# Usage: hack/envtest-assets.sh [--with-kubectl]      (prints the assets directory on stdout)
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
STAGING_VERSION="0.${KUBE_VERSION#1.}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${NOMAD_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nomad-token-operator}/envtest/k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}"
link="$root/bin/k8s/${KUBE_VERSION}-etcd-${ETCD_VERSION}"

want_kubectl=false
[[ "${1:-}" == "--with-kubectl" ]] && want_kubectl=true

say() { echo "envtest-assets: $*" >&2; }

mkdir -p "$cache"
# Serialise concurrent callers (two make targets at once) so they do not build the same thing twice.
exec 9>"$cache/.lock"
flock 9

build_etcd() {
  [[ -x "$cache/etcd" ]] && return
  say "building etcd v${ETCD_VERSION} from the Go module proxy (about a minute, once per machine)..."
  local work; work="$(mktemp -d)"
  (
    cd "$work"
    go mod init envtest-etcd >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >/dev/null 2>&1
    go build -o "$cache/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "$cache/etcd.tmp" "$cache/etcd"
  rm -rf "$work"
}

# kube_module prepares a throwaway module that requires k8s.io/kubernetes with every staging module
# replaced by its published version (the kubernetes go.mod points them at ./staging, which a module
# download does not contain).
kube_module() {
  # The directory name changes whenever the list of commands below does, so an older cache re-tidies.
  local work="$cache/kube-module-apiserver-kcm-kubectl"
  if [[ ! -f "$work/go.sum" ]]; then
    rm -rf "$work"; mkdir -p "$work"
    local gomod
    gomod="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" \
      | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
    {
      echo "module envtest-kube"
      echo
      echo "go 1.25"
      echo
      echo "require k8s.io/kubernetes v${KUBE_VERSION}"
      echo
      echo "replace ("
      grep -oE '^[[:space:]]*k8s.io/[a-z0-9-]+ => ./staging/src/k8s.io/[a-z0-9-]+' "$gomod" \
        | awk -v v="v${STAGING_VERSION}" '{print "\t" $1 " => " $1 " " v}'
      echo ")"
    } >"$work/go.mod"
    cat >"$work/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
    (cd "$work" && go mod tidy >/dev/null 2>&1 || go mod tidy)
  fi
  echo "$work"
}

build_kube() {
  local name="$1"
  [[ -x "$cache/$name" ]] && return
  say "building $name v${KUBE_VERSION} from the Go module proxy (several minutes on 2 cores, once per machine)..."
  local work; work="$(kube_module)"
  (cd "$work" && go build -o "$cache/$name.tmp" "k8s.io/kubernetes/cmd/$name")
  mv "$cache/$name.tmp" "$cache/$name"
}

build_etcd
build_kube kube-apiserver
# The e2e suite runs the namespace and garbage-collector controllers: envtest alone runs none.
build_kube kube-controller-manager
$want_kubectl && build_kube kubectl

mkdir -p "$(dirname "$link")"
ln -sfn "$cache" "$link"
echo "$link"
