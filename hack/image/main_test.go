package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The same inputs give the same image digest: nothing of the build's time or machine gets in.
func TestBuildIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "manager")
	certs := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(bin, []byte("#!not really a binary\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certs, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	digest := func(out string) string {
		t.Helper()
		o := options{binary: bin, caCerts: certs, out: out, tag: "nomad-token-operator:test", arch: "amd64", version: "v0", revision: "abc", source: "src"}
		if err := build(o); err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(out, nil)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	first := digest(filepath.Join(dir, "a.tar"))
	// Other file times and modes on the build machine must not matter.
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(bin, time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
		t.Fatal(err)
	}
	if second := digest(filepath.Join(dir, "b.tar")); first != second {
		t.Errorf("two builds of the same inputs: %s and %s", first, second)
	}
}

func TestBuildFailsClearlyWithoutCACertificates(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "manager")
	if err := os.WriteFile(bin, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := build(options{binary: bin, caCerts: filepath.Join(dir, "missing.crt"), out: filepath.Join(dir, "x.tar"), tag: "x:y", arch: "amd64"})
	if err == nil || !contains(err.Error(), "ca-certificates") {
		t.Errorf("want an error naming the ca-certificates package, got %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
