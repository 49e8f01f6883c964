# nomad-token-operator. `make demo` shows it working; `make test` runs every test.
# Everything installs from the Go module proxy; built tools are cached under bin/ (ignored by git).

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

CONTROLLER_TOOLS_VERSION ?= v0.23.0
LOCALBIN := $(CURDIR)/bin
CONTROLLER_GEN := $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
PROMTOOL_VERSION ?= v0.316.0
PROMTOOL := $(LOCALBIN)/promtool-$(PROMTOOL_VERSION)
HELM_VERSION ?= v3.22.0
# helm's own release builds stamp the Kubernetes version of its client-go (1.37 for v3.22.0) as the
# default that `helm template` and `helm lint` check kubeVersion and deprecated APIs against; a plain
# `go install` would leave it at 1.20.
HELM_KUBE_VERSION ?= 1.37
HELM := $(LOCALBIN)/helm-$(HELM_VERSION)
CHART := charts/nomad-token-operator
GINKGO_FLAGS ?=
GO_TEST_FLAGS ?= -count=1

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from the markers, and copy them (and the alerts) into the Helm chart.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/...;./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@# The Helm chart carries copies (test/chart fails on a stale one, `make verify` on an uncommitted one).
	rm -f $(CHART)/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART)/crds/
	cp config/rbac/role.yaml $(CHART)/files/manager-rbac.yaml
	go run ./test/monitoring/rulegroups config/prometheus/rules.yaml > $(CHART)/files/prometheus-rules.yaml

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

##@ Image (no container engine needed; the Dockerfile is the alternative where one runs)

IMAGE_ARCH ?= $(shell go env GOARCH)
IMAGE_NAME ?= nomad-token-operator:dev
IMAGE_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

.PHONY: image
image: ## The manager image as a docker-archive tarball, bin/image/nomad-token-operator.tar (README "Image" says how to push it).
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) go build -trimpath -ldflags="-s -w" -o $(LOCALBIN)/image/manager ./cmd/manager
	go run ./hack/image -binary $(LOCALBIN)/image/manager -out $(LOCALBIN)/image/nomad-token-operator.tar \
		-arch $(IMAGE_ARCH) -tag $(IMAGE_NAME) -version $(IMAGE_VERSION) -revision $(IMAGE_REVISION)

##@ Tests

.PHONY: envtest
envtest: ## Build (once, cached) the etcd, kube-apiserver and kube-controller-manager binaries the tests use.
	@hack/envtest-assets.sh >/dev/null

.PHONY: test
test: test-unit test-rules test-envtest test-e2e test-chaos demo-once ## Every test: unit, alert rules, envtest, e2e with the real binary, chaos, and the demo.

# The chart and the image, as their own prerequisite line so that other test targets merge beside it.
test: test-chart test-image

.PHONY: test-unit
test-unit: ## Unit tests (no control plane; the controllers' envtest specs skip themselves).
	go test $(GO_TEST_FLAGS) ./api/... ./internal/... ./controllers/... ./test/nomadstub/... ./test/harness/... ./test/bench/... ./test/monitoring/... ./cmd/...

# promtool reads plain rule files, not a PrometheusRule: the test runs on its spec.groups, written
# next to a copy of the test file so that the test's rule_files entry finds them.
.PHONY: test-rules
test-rules: $(PROMTOOL) ## The alerts of config/prometheus/rules.yaml: promtool check rules, and its unit tests (rules_test.yaml).
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	go run ./test/monitoring/rulegroups config/prometheus/rules.yaml > "$$tmp/rules.yaml"; \
	cp config/prometheus/rules_test.yaml "$$tmp/rules_test.yaml"; \
	$(PROMTOOL) check rules "$$tmp/rules.yaml"; \
	cd "$$tmp" && $(PROMTOOL) test rules rules_test.yaml

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
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" go test $(GO_TEST_FLAGS) -run '^TestControllers$$' ./controllers/... $(GINKGO_FLAGS)

.PHONY: test-e2e
test-e2e: envtest build ## The real manager binary against envtest and the stand-in binary.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" MANAGER_BIN=$(LOCALBIN)/manager STUB_BIN=$(LOCALBIN)/nomad-stub \
		PLUGIN_BIN=$(LOCALBIN)/kubectl-nomadtoken go test $(GO_TEST_FLAGS) -timeout 10m ./test/e2e/... $(GINKGO_FLAGS)

.PHONY: test-chart
test-chart: envtest $(HELM) ## helm lint; the chart rendered for several value sets and dry-run applied in restricted namespaces; its CRDs and RBAC equal the generated ones.
	$(HELM) lint --strict $(CHART)
	@set -e; for f in test/chart/testdata/values-*.yaml; do $(HELM) lint --strict $(CHART) --values $$f; done
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" HELM_BIN=$(HELM) go test $(GO_TEST_FLAGS) ./test/chart/...

.PHONY: test-image
test-image: image ## The image tarball: files, user, entrypoint, the binary runs; its build is reproducible.
	IMAGE_TAR=$(LOCALBIN)/image/nomad-token-operator.tar go test $(GO_TEST_FLAGS) ./test/image/... ./hack/image/...

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

$(PROMTOOL):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
	mv $(LOCALBIN)/promtool $(PROMTOOL)

.PHONY: helm
helm: $(HELM) ## Build (once, cached) the pinned helm into bin/.

$(HELM):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN)/helm-build go install -ldflags "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
		$(foreach pkg,pkg/chartutil pkg/lint/rules,-X helm.sh/helm/v3/$(pkg).k8sVersionMajor=$(word 1,$(subst ., ,$(HELM_KUBE_VERSION))) \
		-X helm.sh/helm/v3/$(pkg).k8sVersionMinor=$(word 2,$(subst ., ,$(HELM_KUBE_VERSION))))" \
		helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(LOCALBIN)/helm-build/helm $(HELM)
	rmdir $(LOCALBIN)/helm-build

$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)
