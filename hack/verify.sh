#!/usr/bin/env bash
# Fails when generated files (CRDs, RBAC, deepcopy, and their copies in the Helm chart) drift from
# the markers, when the install manifests no longer fit the generated RBAC, when Go code is not gofmt'ed, when go.mod/go.sum are
# untidy, or when go vet complains. CI runs it on every change.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

make --no-print-directory generate manifests >/dev/null
if ! git diff --exit-code --stat -- api config charts/nomad-token-operator/crds charts/nomad-token-operator/files; then
  echo "verify: generated files drifted; run 'make generate manifests' and commit the result" >&2
  exit 1
fi
untracked=$(git ls-files --others --exclude-standard -- api config/crd config/rbac charts/nomad-token-operator/crds)
if [[ -n "$untracked" ]]; then
  echo "verify: generated files not committed: $untracked" >&2
  exit 1
fi

# Both install modes from the regenerated RBAC: manager-role names only namespaced resources (so
# config/namespaced can grant it as a Role), config/namespaced's Roles match it and its
# --watch-namespaces, config/default binds every generated ClusterRole. No cluster needed.
if ! out=$(go test -count=1 -run '^TestConfig' ./test/harness/ 2>&1); then
  echo "$out" >&2
  echo "verify: the install manifests (config/default, config/namespaced) do not fit the generated RBAC" >&2
  exit 1
fi

unformatted=$(gofmt -l $(git ls-files '*.go'))
if [[ -n "$unformatted" ]]; then
  echo "verify: not gofmt'ed: $unformatted" >&2
  exit 1
fi

cp go.mod /tmp/verify-go.mod.$$; cp go.sum /tmp/verify-go.sum.$$
go mod tidy
if ! git diff --exit-code --stat -- go.mod go.sum; then
  echo "verify: go.mod/go.sum are not tidy; run 'go mod tidy' and commit" >&2
  mv /tmp/verify-go.mod.$$ go.mod; mv /tmp/verify-go.sum.$$ go.sum
  exit 1
fi
rm -f /tmp/verify-go.mod.$$ /tmp/verify-go.sum.$$

go vet ./...
echo "verify: OK"
