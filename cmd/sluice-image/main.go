// Command sluice-image builds Sluice's container image without a container
// daemon or a base image to pull: the static binary, a non-root user and CA
// roots (package internal/image), written as an image archive.
//
//	go run ./cmd/sluice-image                         # sluice-image.tar (OCI archive), sluice:dev
//	go run ./cmd/sluice-image -version 1.2.0 -arch arm64 -o sluice-arm64.tar
//	go run ./cmd/sluice-image -format docker -o sluice.tar && docker load -i sluice.tar
//
// Without -binary it builds ./cmd/sluice itself (CGO_ENABLED=0, -trimpath),
// so run it from the repository root.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/sluice-gw/sluice/internal/image"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("sluice-image", flag.ContinueOnError)
	out := fl.String("o", "sluice-image.tar", "the image archive to write")
	format := fl.String("format", "oci", "oci (an OCI image layout in a tar) or docker (docker save's format)")
	version := fl.String("version", "dev", "the version: main.version of the binary built, the image tag and label")
	tag := fl.String("tag", "", `the image name; "" = sluice:VERSION`)
	arch := fl.String("arch", runtime.GOARCH, "GOARCH of the image")
	binary := fl.String("binary", "", `a static linux sluice binary to use; "" = build ./cmd/sluice`)
	noCA := fl.Bool("no-ca-certs", false, "leave out the build machine's CA roots")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *format != "oci" && *format != "docker" {
		return fmt.Errorf("-format %q: oci or docker", *format)
	}
	if *tag == "" {
		*tag = "sluice:" + *version
	}
	bin, err := binaryFor(*binary, *arch, *version)
	if err != nil {
		return err
	}
	o := image.Options{Binary: bin, Arch: *arch, Version: *version, Created: created()}
	if !*noCA {
		o.CACerts = image.SystemCACerts()
	}
	img, err := image.Build(o)
	if err != nil {
		return err
	}
	write := image.WriteOCIArchive
	if *format == "docker" {
		write = image.WriteDockerArchive
	}
	if err := write(*out, img, *tag); err != nil {
		return err
	}
	d, _ := img.Digest()
	fmt.Printf("%s: %s image %s (%s), user %s, entrypoint /sluice, CA roots %t\n", *out, *format, *tag, d, image.User, len(o.CACerts) > 0)
	return nil
}

// binaryFor reads path, or builds ./cmd/sluice for linux/arch.
func binaryFor(path, arch, version string) ([]byte, error) {
	if path != "" {
		return os.ReadFile(path)
	}
	dir, err := os.MkdirTemp("", "sluice-image-bin-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "sluice")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", bin, "./cmd/sluice")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/sluice: %w", err)
	}
	return os.ReadFile(bin)
}

// created is SOURCE_DATE_EPOCH (reproducible builds), or the Unix epoch.
func created() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0)
		}
	}
	return time.Unix(0, 0)
}
