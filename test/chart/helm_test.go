package chart

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// The release as docs/install.md installs it: its objects are then named as config/default names
// them (nomad-token-operator-<name> in nomad-operator-system).
const (
	releaseName      = "nomad-token-operator"
	releaseNamespace = "nomad-operator-system"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func chartDir(t *testing.T) string {
	return filepath.Join(repoRoot(t), "charts", "nomad-token-operator")
}

func helmBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("HELM_BIN")
	if bin == "" {
		t.Fatal("HELM_BIN is not set: run `make test-chart`, or HELM_BIN=$PWD/bin/helm-<version> go test ./test/chart/")
	}
	return bin
}

// helmTemplate runs `helm template` with the values files in testdata/ and the --set arguments,
// and returns its output, or its stderr as the error.
func helmTemplate(t *testing.T, valuesFiles []string, sets ...string) ([]byte, error) {
	t.Helper()
	args := []string{"template", releaseName, chartDir(t), "--namespace", releaseNamespace}
	for _, f := range valuesFiles {
		args = append(args, "--values", filepath.Join("testdata", f))
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helmBin(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// render is helmTemplate for value sets that must render, as objects.
func render(t *testing.T, valuesFiles []string, sets ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helmTemplate(t, valuesFiles, sets...)
	if err != nil {
		t.Fatalf("helm template %v %v: %v", valuesFiles, sets, err)
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatalf("helm template %v %v: %v", valuesFiles, sets, err)
	}
	return objs
}

// decode reads a multi-document YAML stream, skipping empty documents. Through JSON into
// Unstructured, so that integers are int64 as the API machinery wants them.
func decode(b []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(raw) == 0 || string(raw) == "null" || string(raw) == "{}" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			// Not an object with a kind: the rule groups of files/prometheus-rules.yaml.
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				return nil, err
			}
			u.Object = m
		}
		objs = append(objs, u)
	}
}

func readObjects(t *testing.T, paths ...string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		o, err := decode(b)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		objs = append(objs, o...)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, u := range objs {
		if u.GetKind() == kind && u.GetNamespace() == namespace && u.GetName() == name {
			return u
		}
	}
	return nil
}
