// Package image checks the tarball `make image` writes ($IMAGE_TAR): the files, their modes and
// owners, the user, the entrypoint and the labels, and that the binary in it runs.
//
//	make test-image
package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestImageTarball(t *testing.T) {
	path := os.Getenv("IMAGE_TAR")
	if path == "" {
		t.Fatal("IMAGE_TAR is not set: run `make test-image`, or IMAGE_TAR=$PWD/bin/image/nomad-token-operator.tar go test ./test/image/")
	}
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform %s/%s, want linux/<arch>", cf.OS, cf.Architecture)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root, as the chart and config/manager run it)", cf.Config.User)
	}
	if strings.Join(cf.Config.Entrypoint, " ") != "/manager" || len(cf.Config.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want [/manager] and no cmd", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	for _, l := range []string{"org.opencontainers.image.source", "org.opencontainers.image.version", "org.opencontainers.image.revision"} {
		if cf.Config.Labels[l] == "" {
			t.Errorf("label %s is empty", l)
		}
	}
	if layers, err := img.Layers(); err != nil || len(layers) != 1 {
		t.Errorf("want exactly one layer on an empty base, got %d (%v)", len(layers), err)
	}

	files := map[string]*tar.Header{}
	var manager, certs, passwd []byte
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		files[name] = h
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch name {
		case "manager":
			manager = body
		case "etc/ssl/certs/ca-certificates.crt":
			certs = body
		case "etc/passwd":
			passwd = body
		}
	}
	for name, want := range map[string]int64{"manager": 0o755, "etc/ssl/certs/ca-certificates.crt": 0o644, "etc/passwd": 0o644} {
		h := files[name]
		if h == nil {
			t.Errorf("no /%s in the image", name)
			continue
		}
		if h.Typeflag != tar.TypeReg || h.Mode&0o7777 != want || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("/%s: type %c mode %o owner %d:%d, want a regular file, mode %o, owned by root (the user cannot change it)",
				name, h.Typeflag, h.Mode&0o7777, h.Uid, h.Gid, want)
		}
	}
	if !bytes.Contains(certs, []byte("BEGIN CERTIFICATE")) {
		t.Error("/etc/ssl/certs/ca-certificates.crt holds no certificate")
	}
	if !bytes.Contains(passwd, []byte(":65532:65532:")) {
		t.Error("/etc/passwd does not name uid 65532")
	}
	for name := range files {
		if name != "manager" && name != "tmp" && !strings.HasPrefix(name, "etc") {
			t.Errorf("unexpected /%s in the image: the base must be empty", name)
		}
	}

	if cf.Architecture != runtime.GOARCH {
		t.Skipf("the image is for %s, this machine is %s: cannot run its binary", cf.Architecture, runtime.GOARCH)
	}
	bin := filepath.Join(t.TempDir(), "manager")
	if err := os.WriteFile(bin, manager, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("/manager --help: %v\n%s", err, out)
	}
	for _, flag := range []string{"-leader-elect", "-metrics-bind-address", "-watch-namespaces"} {
		if !bytes.Contains(out, []byte(flag)) {
			t.Errorf("/manager --help does not list %s:\n%s", flag, out)
		}
	}
	// A static binary: it ran above from a directory with no libc, but only because this machine
	// has one; an ELF interpreter would need one in the empty image too.
	if bytes.Contains(manager[:min(len(manager), 4096)], []byte("/lib64/ld-linux")) || bytes.Contains(manager[:min(len(manager), 4096)], []byte("/lib/ld-")) {
		t.Error("/manager is dynamically linked: build it with CGO_ENABLED=0")
	}
}
