// Package chart tests the Helm chart in charts/nomad-token-operator with the real helm binary
// ($HELM_BIN, built by `make helm`): that what it renders for several value sets is accepted by a
// real kube-apiserver (server-side dry-run) in a namespace that enforces Pod Security "restricted",
// with no warning; that its CRDs, RBAC and alerts equal the generated and the kustomize ones; and
// that its values schema refuses what it should.
//
//	make test-chart
//	KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) HELM_BIN=$PWD/bin/helm-v3.22.0 go test ./test/chart/
package chart
