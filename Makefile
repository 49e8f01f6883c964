# nomad-token-operator. `make demo` shows it working; `make test` runs every test.
# Everything installs from the Go module proxy; built tools are cached under bin/ (ignored by git).

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

CONTROLLER_TOOLS_VERSION ?= v0.23.0
LOCALBIN := $(CURDIR)/bin
CONTROLLER_GEN := $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GINKGO_FLAGS ?=
GO_TEST_FLAGS ?= -count=1

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from the markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/...;./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## gofmt every Go file.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: verify
verify: ## Fail if generated files drift, code is not gofmt'ed, or go vet complains.
	hack/verify.sh

.PHONY: build
build: ## Build the manager, the NOMAD stand-in and the kubectl plugin (kubectl-nomadtoken) into bin/.
	go build -o $(LOCALBIN)/manager ./cmd/manager
	go build -o $(LOCALBIN)/nomad-stub ./cmd/nomad-stub
	go build -o $(LOCALBIN)/kubectl-nomadtoken ./cmd/kubectl-nomadtoken

##@ Tests

.PHONY: envtest
envtest: ## Build (once, cached) the etcd, kube-apiserver and kube-controller-manager binaries the tests use.
	@hack/envtest-assets.sh >/dev/null

.PHONY: test
test: test-unit test-envtest test-e2e test-chaos demo-once ## Every test: unit, envtest, e2e with the real binary, chaos, and the demo.

.PHONY: test-unit
test-unit: ## Unit tests (no control plane).
	go test $(GO_TEST_FLAGS) ./api/... ./internal/... ./test/nomadstub/... ./test/harness/... ./test/bench/... ./cmd/...

# go test -fuzz takes one target per package per run, so the targets run one after another. Their
# seed corpora already run in test-unit; new crashers land in testdata/fuzz/: add them as f.Add seeds.
FUZZTIME ?= 20s
FUZZ_PKGS ?= ./internal/nomad ./test/nomadstub

.PHONY: fuzz
fuzz: ## Fuzz the NOMAD client's decoding and the stand-in's request parsing, FUZZTIME per target.
	@set -e; for pkg in $(FUZZ_PKGS); do \
		for t in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; \
			go test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
		done; \
	done

.PHONY: test-envtest
test-envtest: envtest ## Controller tests against a real kube-apiserver + etcd and the NOMAD stand-in.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" go test $(GO_TEST_FLAGS) ./controllers/... $(GINKGO_FLAGS)

.PHONY: test-e2e
test-e2e: envtest build ## The real manager binary against envtest and the stand-in binary.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" MANAGER_BIN=$(LOCALBIN)/manager STUB_BIN=$(LOCALBIN)/nomad-stub \
		PLUGIN_BIN=$(LOCALBIN)/kubectl-nomadtoken go test $(GO_TEST_FLAGS) -timeout 10m ./test/e2e/... $(GINKGO_FLAGS)

CHAOS_KILLS ?= 20
CHAOS_SEED ?=

.PHONY: test-chaos
test-chaos: envtest build ## The real manager killed with -9 at 5 seeded random moments while tokens rotate, and two managers with leader election.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" MANAGER_BIN=$(LOCALBIN)/manager STUB_BIN=$(LOCALBIN)/nomad-stub \
		CHAOS_KILLS=5 CHAOS_SEED=$(CHAOS_SEED) go test $(GO_TEST_FLAGS) -v -timeout 15m ./test/chaos/... $(GINKGO_FLAGS)

.PHONY: chaos
chaos: envtest build ## test-chaos with CHAOS_KILLS kills (default 20) and every kill printed; CHAOS_SEED=<seed> replays a schedule.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" MANAGER_BIN=$(LOCALBIN)/manager STUB_BIN=$(LOCALBIN)/nomad-stub \
		CHAOS_KILLS=$(CHAOS_KILLS) CHAOS_SEED=$(CHAOS_SEED) go test $(GO_TEST_FLAGS) -v -timeout 40m ./test/chaos/... -ginkgo.v $(GINKGO_FLAGS)

##@ Benchmark (not part of `make test`; docs/performance-figures.md explains the figures)

BENCH_FLAGS ?=

.PHONY: bench
bench: envtest build ## Load figures (burst of 10,000 tokens over 10 connections, floor, steady, restart, isolation, unrelated Secrets, renewal storm) into bench/results.md; BENCH_FLAGS="-n 500 -c 5 -scenarios burst,floor" for less.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" go run ./test/bench $(BENCH_FLAGS)

.PHONY: bench-smoke
bench-smoke: envtest build ## The benchmark at N=200, C=2 with short windows: checks only that every figure is produced and NOMAD creates equal N.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" go run ./test/bench -smoke -n 200 -c 2 -steady 20s -settle 5s \
		-unrelated 200 -isolation-tokens 1 -out bin/bench-smoke.md $(BENCH_FLAGS)

##@ Demo

.PHONY: demo
demo: build ## Run the operator on a local control plane with the NOMAD stand-in; Ctrl-C stops it.
	hack/demo.sh

.PHONY: demo-once
demo-once: build ## The demo, then exit 0 after the proof (non-zero on failure), cleaning up.
	hack/demo.sh --once

$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)
