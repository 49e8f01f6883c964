#!/usr/bin/env bash
# Runs the demo (hack/demo/main.go): a local kube-apiserver + etcd, the NOMAD stand-in, the real
# manager binary and config/samples; proves the issued token works against NOMAD's API.
#
# Usage: hack/demo.sh [--once]     (`make demo` / `make demo-once`; both run `make build` first)
#   --once   exit after the proof: 0 on success, non-zero on any failure; everything is stopped.
#   without  keep running for kubectl (the demo prints how) until Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for bin in bin/manager bin/nomad-stub; do
  [[ -x "$bin" ]] || { echo "demo: $bin is missing; run 'make build' first (or 'make demo')" >&2; exit 1; }
done

# etcd, kube-apiserver and kubectl, built once per machine from the Go module proxy.
assets="$(hack/envtest-assets.sh --with-kubectl)"

# Built, then exec'ed rather than `go run`: Ctrl-C and SIGTERM then reach the demo itself, which
# stops everything it started (`go run` would die on SIGTERM and leave the demo running).
go build -o bin/demo ./hack/demo
exec bin/demo --assets "$assets" "$@"
