// Command image builds the manager's container image without a container engine: a static binary
// and the build machine's CA certificates on an empty base, written as a docker-archive tarball
// (the `docker save` format, which `crane push`, `docker load`, `podman load`, `kind load
// image-archive` and skopeo read as it is). `make image` runs it; README "Image" says how to push.
//
// The image is reproducible: every file and the config carry the same fixed time, so the same
// binary and certificates give the same digest.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image's user: "nonroot" of distroless images, which config/manager and the chart run as.
const uid = 65532

// epoch is the time of every file and of the image config: reproducible builds need a fixed one.
var epoch = time.Unix(0, 0).UTC()

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/image/manager", "The statically linked manager (CGO_ENABLED=0) to put at /manager.")
	flag.StringVar(&o.caCerts, "ca-certificates", "/etc/ssl/certs/ca-certificates.crt",
		"CA bundle to put at /etc/ssl/certs/ca-certificates.crt (Debian's ca-certificates package has it).")
	flag.StringVar(&o.out, "out", "bin/image/nomad-token-operator.tar", "Tarball to write.")
	flag.StringVar(&o.tag, "tag", "nomad-token-operator:dev", "Name the tarball gives the image (docker load uses it).")
	flag.StringVar(&o.arch, "arch", "amd64", "GOARCH the binary was built for.")
	flag.StringVar(&o.version, "version", "dev", "org.opencontainers.image.version label.")
	flag.StringVar(&o.revision, "revision", "", "org.opencontainers.image.revision label (git commit).")
	flag.StringVar(&o.source, "source", "https://github.com/nomad-operator/nomad-token-operator", "org.opencontainers.image.source label.")
	flag.Parse()
	if err := build(o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

type options struct {
	binary, caCerts, out, tag, arch, version, revision, source string
}

func build(o options) error {
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return fmt.Errorf("the manager binary: %w (make image builds it)", err)
	}
	certs, err := os.ReadFile(o.caCerts)
	if err != nil {
		return fmt.Errorf("CA certificates: %w (install Debian's ca-certificates package, or pass -ca-certificates)", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		b, err := layerTar(bin, certs)
		return io.NopCloser(bytes.NewReader(b)), err
	})
	if err != nil {
		return err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: epoch}, CreatedBy: "hack/image", Comment: "manager and CA certificates",
	}})
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", o.arch
	cf.Created = v1.Time{Time: epoch}
	cf.Config.User = fmt.Sprintf("%d:%d", uid, uid)
	cf.Config.Entrypoint = []string{"/manager"}
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.source":   o.source,
		"org.opencontainers.image.version":  o.version,
		"org.opencontainers.image.revision": o.revision,
		"org.opencontainers.image.title":    "nomad-token-operator",
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	ref, err := name.NewTag(o.tag)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	tmp := o.out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return err
	}
	if err := os.Rename(tmp, o.out); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("image: wrote %s (%s, linux/%s, %s)\n", o.out, ref, o.arch, digest)
	return nil
}

// layerTar is the image's only layer: the directories, the binary, the CA bundle and an
// /etc/passwd and /etc/group that name uid 65532, all owned by root and read-only to the user.
func layerTar(bin, certs []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		name string
		mode int64
		body []byte
	}{
		{"etc/", 0o755, nil},
		{"etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{"etc/ssl/", 0o755, nil},
		{"etc/ssl/certs/", 0o755, nil},
		{"etc/ssl/certs/ca-certificates.crt", 0o644, certs},
		{"manager", 0o755, bin},
		{"tmp/", 0o1777, nil},
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: epoch, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
		if e.body == nil {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), tw.Close()
}
