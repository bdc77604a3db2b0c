// Package image builds Sluice's container image without a container
// daemon: a static binary on a minimal base made here (no base image is
// pulled), written as an OCI image archive or a docker-load tarball with
// go-containerregistry.
//
// The image has two layers. The base holds /etc/passwd and /etc/group
// with root and the non-root user nonroot (65532, distroless's), its home,
// a world-writable /tmp and, if the build machine has them, its CA roots
// at /etc/ssl/certs/ca-certificates.crt. The second holds the binary at
// /sluice. The image runs as 65532:65532 with ENTRYPOINT ["/sluice"].
// Every file time is Options.Created, so the same inputs give the same
// image digest.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user the image runs as.
const (
	UID  = 65532
	User = "65532:65532"
)

// Options describe the image.
type Options struct {
	Binary  []byte    // the static sluice binary for Arch
	Arch    string    // GOARCH of Binary; "" = this machine's
	Version string    // org.opencontainers.image.version label; "" = none
	CACerts []byte    // PEM bundle for /etc/ssl/certs/ca-certificates.crt; nil = none
	Created time.Time // image and file times; zero = the Unix epoch
}

// Build returns the image.
func Build(o Options) (v1.Image, error) {
	if len(o.Binary) == 0 {
		return nil, fmt.Errorf("image: no binary")
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0)
	}
	o.Created = o.Created.UTC()
	base, err := layer(o.Created, baseFiles(o.CACerts))
	if err != nil {
		return nil, err
	}
	app, err := layer(o.Created, []file{{name: "sluice", mode: 0o755, data: o.Binary}})
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{CreatedBy: "sluice-image: base (passwd, group, /tmp, CA roots)", Created: v1.Time{Time: o.Created}}},
		mutate.Addendum{Layer: app, History: v1.History{CreatedBy: "sluice-image: /sluice", Created: v1.Time{Time: o.Created}}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = o.Arch, "linux", v1.Time{Time: o.Created}
	cf.Config = v1.Config{
		Entrypoint:   []string{"/sluice"},
		Cmd:          []string{"run", "--config", "/etc/sluice/sluice.yaml"},
		User:         User,
		WorkingDir:   "/home/nonroot",
		Env:          []string{"PATH=/", "HOME=/home/nonroot", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9901/tcp": {}},
		Labels:       map[string]string{"org.opencontainers.image.title": "sluice", "org.opencontainers.image.source": "https://github.com/sluice-gw/sluice"},
	}
	if o.Version != "" {
		cf.Config.Labels["org.opencontainers.image.version"] = o.Version
	}
	return mutate.ConfigFile(img, cf)
}

// file is one entry of a layer: a directory when data is nil and mode has fs.ModeDir.
type file struct {
	name string
	mode fs.FileMode
	uid  int
	data []byte
}

func baseFiles(ca []byte) []file {
	files := []file{
		{name: "etc", mode: fs.ModeDir | 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "home", mode: fs.ModeDir | 0o755},
		{name: "home/nonroot", mode: fs.ModeDir | 0o700, uid: UID},
		{name: "tmp", mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}
	if len(ca) > 0 {
		files = append(files,
			file{name: "etc/ssl", mode: fs.ModeDir | 0o755},
			file{name: "etc/ssl/certs", mode: fs.ModeDir | 0o755},
			file{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca})
	}
	return files
}

// layer makes a gzipped tar of files, every time set to t.
func layer(t time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: int64(f.mode.Perm()), Uid: f.uid, Gid: f.uid, ModTime: t, Format: tar.FormatPAX}
		if f.mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		if f.mode.IsDir() {
			h.Typeflag, h.Name = tar.TypeDir, f.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// SystemCACerts returns the build machine's CA bundle, or nil.
func SystemCACerts() []byte {
	for _, p := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"} {
		if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
			return b
		}
	}
	return nil
}
