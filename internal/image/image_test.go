package image

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sluice-gw/sluice/internal/testkit/testlock"
)

// buildSluice builds the static sluice binary, with version, as the
// image builder does (cmd/sluice-image). The build takes the real-time lock:
// on a cold cache it compiles the whole tree, which would starve the chaos
// scenarios another test binary runs at the same time.
func buildSluice(t *testing.T, version string) []byte {
	t.Helper()
	testlock.Realtime(t)
	bin := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", bin, "github.com/sluice-gw/sluice/cmd/sluice")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImageArchivesRunSluice writes the image as an OCI archive and as a
// docker-load tarball, opens each file as a reader of that format would,
// and checks the entrypoint, the non-root user (in the config and in the
// image's /etc/passwd), the CA roots, and that /sluice taken out of the
// image's layers runs `sluice version`.
func TestImageArchivesRunSluice(t *testing.T) {
	const version = "9.8.7-test"
	bin := buildSluice(t, version)
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	img, err := Build(Options{Binary: bin, Version: version, CACerts: ca})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		open func(t *testing.T, path string) v1.Image
		save func(path string, img v1.Image, ref string) error
	}{
		{name: "oci", save: WriteOCIArchive, open: openOCIArchive},
		{name: "docker", save: WriteDockerArchive, open: func(t *testing.T, path string) v1.Image {
			img, err := tarball.ImageFromPath(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sluice.tar")
			if err := tc.save(path, img, "sluice:"+version); err != nil {
				t.Fatal(err)
			}
			checkImage(t, tc.open(t, path), version, ca)
		})
	}
}

func checkImage(t *testing.T, img v1.Image, version string, ca []byte) {
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/sluice" {
		t.Errorf("entrypoint %q, want /sluice", got)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cf.Config.User)
	}
	if cf.OS != "linux" || cf.Config.Labels["org.opencontainers.image.version"] != version {
		t.Errorf("os %q, labels %v", cf.OS, cf.Config.Labels)
	}
	files := extract(t, img)
	if !strings.Contains(string(files["etc/passwd"].data), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no user 65532:\n%s", files["etc/passwd"].data)
	}
	if !bytes.Equal(files["etc/ssl/certs/ca-certificates.crt"].data, ca) {
		t.Error("the CA bundle is not in the image")
	}
	sl, ok := files["sluice"]
	if !ok || sl.mode&0o7777 != 0o755 {
		t.Fatalf("/sluice: present %v, mode %o; want 0755", ok, sl.mode)
	}
	bin := filepath.Join(t.TempDir(), "sluice")
	if err := os.WriteFile(bin, sl.data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "sluice "+version {
		t.Errorf("/sluice version: %q, %v; want %q", out, err, "sluice "+version)
	}
}

type entry struct {
	mode int64
	data []byte
}

// extract reads the image's flattened file system.
func extract(t *testing.T, img v1.Image) map[string]entry {
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(h.Name, "/")] = entry{mode: h.Mode, data: data}
	}
}

// openOCIArchive unpacks an OCI archive and returns its one image.
func openOCIArchive(t *testing.T, path string) v1.Image {
	dir := t.TempDir()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("archive entry %q escapes the directory", h.Name)
		}
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		data, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 || m.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "sluice:9.8.7-test" {
		t.Fatalf("index: %+v, %v", m, err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestImageReproducible checks that the same inputs give the same digest.
func TestImageReproducible(t *testing.T) {
	digest := func() v1.Hash {
		img, err := Build(Options{Binary: []byte("#!/bin/true\n"), CACerts: []byte("ca")})
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if a, b := digest(), digest(); a != b {
		t.Errorf("two builds: %s and %s", a, b)
	}
}
