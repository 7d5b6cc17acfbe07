// Command image builds the sample controller's container image without a
// Docker daemon and without pulling a base image, and pushes it.
//
//	go run ./hack/image build [--output DIR] [--arch ARCH] [--image NAME]
//	go run ./hack/image push [--output DIR] IMAGE
//
// build compiles the controller (CGO_ENABLED=0, -trimpath) for linux and
// writes an OCI image layout at DIR (default _output/image): one layer with
// the static binary at /sample-controller on an empty base, run as user
// 65532:65532, with the OCI labels org.opencontainers.image.source, .revision
// and .version. It prints the layout's path and the image's digest. The
// image is reproducible: every time and owner in it is fixed, its creation
// time is the last commit's (or $SOURCE_DATE_EPOCH), so the same sources
// give the same digest.
//
// push copies the image of the layout at DIR to IMAGE (registry/name:tag),
// with the credentials of the usual docker configuration
// ($DOCKER_CONFIG/config.json, ~/.docker/config.json and its credential
// helpers).
//
// Run it from the module's root: make image and make image-push do.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// binaryPath is where the binary lies in the image: its entrypoint.
	binaryPath = "/sample-controller"
	// user runs the binary: the "nonroot" user of distroless images, so
	// that runAsNonRoot admits it.
	user = "65532:65532"
	// defaultImage names the image in the layout; the Deployment in
	// artifacts/deploy names the same.
	defaultImage  = "kubehandler/sample-controller:dev"
	defaultSource = "https://github.com/kubehandler/kubehandler"

	// The OCI labels the image carries.
	labelSource   = "org.opencontainers.image.source"
	labelRevision = "org.opencontainers.image.revision"
	labelVersion  = "org.opencontainers.image.version"
	// refNameAnnotation names the image in the layout's index.
	refNameAnnotation = "org.opencontainers.image.ref.name"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  image build [--output DIR] [--arch ARCH] [--image NAME] [--source URL]
  image push [--output DIR] IMAGE`

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	output := fs.String("output", filepath.Join("_output", "image"), "Directory of the OCI image layout.")
	switch args[0] {
	case "build":
		arch := fs.String("arch", runtime.GOARCH, "GOARCH of the binary and the image.")
		image := fs.String("image", defaultImage, "Name of the image in the layout's index.")
		source := fs.String("source", defaultSource, "The image's "+labelSource+" label.")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return fmt.Errorf("build takes no arguments\n%s", usage)
		}
		digest, err := build(ctx, *output, *arch, *image, *source)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "image: %s\ndigest: %s\n", *output, digest)
		return nil
	case "push":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("push takes the image to push to\n%s", usage)
		}
		ref, err := name.ParseReference(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("IMAGE %q: %w", fs.Arg(0), err)
		}
		digest, err := push(ctx, *output, ref, authn.DefaultKeychain)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pushed: %s@%s\n", ref.Context(), digest)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}

// build compiles the controller and writes its image to a new OCI layout
// at dir, replacing what is there. It returns the image's digest.
func build(ctx context.Context, dir, arch, image, source string) (v1.Hash, error) {
	meta, err := sourceMetadata(ctx, source)
	if err != nil {
		return v1.Hash{}, err
	}
	tmp, err := os.MkdirTemp("", "sample-controller-image-")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "sample-controller")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return v1.Hash{}, fmt.Errorf("go build: %w", err)
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := newImage(binary, arch, meta)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := writeLayout(dir, img, image); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// metadata is what the image says of its sources.
type metadata struct {
	source, revision, version string
	created                   time.Time
}

// sourceMetadata reads the revision, version and time of the sources from
// git; outside a git checkout they are "unknown" and the Unix epoch.
// $SOURCE_DATE_EPOCH, when set, is the time.
func sourceMetadata(ctx context.Context, source string) (metadata, error) {
	m := metadata{source: source, revision: "unknown", version: "unknown", created: time.Unix(0, 0).UTC()}
	git := func(args ...string) (string, bool) {
		out, err := exec.CommandContext(ctx, "git", args...).Output()
		return strings.TrimSpace(string(out)), err == nil
	}
	if rev, ok := git("rev-parse", "HEAD"); ok {
		m.revision = rev
		if v, ok := git("describe", "--tags", "--always", "--dirty"); ok {
			m.version = v
		}
		if ct, ok := git("log", "-1", "--format=%ct"); ok {
			if sec, err := strconv.ParseInt(ct, 10, 64); err == nil {
				m.created = time.Unix(sec, 0).UTC()
			}
		}
	}
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return metadata{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", epoch, err)
		}
		m.created = time.Unix(sec, 0).UTC()
	}
	return m, nil
}

// newImage returns the image of binary: one layer on an empty base, OCI
// media types, and a configuration that depends on its arguments alone.
func newImage(binary []byte, arch string, m metadata) (v1.Image, error) {
	layerTar, err := binaryLayer(binary, m.created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: m.created}, CreatedBy: "hack/image: " + binaryPath},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture = arch
	cfg.OS = "linux"
	cfg.Created = v1.Time{Time: m.created}
	cfg.Config = v1.Config{
		User:       user,
		Entrypoint: []string{binaryPath},
		WorkingDir: "/",
		Labels: map[string]string{
			labelSource:   m.source,
			labelRevision: m.revision,
			labelVersion:  m.version,
		},
	}
	return mutate.ConfigFile(img, cfg)
}

// binaryLayer returns a tar holding binary at binaryPath, owned by root and
// executable by all, with the time modTime.
func binaryLayer(binary []byte, modTime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     strings.TrimPrefix(binaryPath, "/"),
		Mode:     0o755,
		Size:     int64(len(binary)),
		ModTime:  modTime,
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(binary); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeLayout writes img, named image, as the one image of a new OCI
// layout at dir.
func writeLayout(dir string, img v1.Image, image string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{refNameAnnotation: image}))
}

// readLayout returns the one image of the OCI layout at dir.
func readLayout(dir string) (v1.Image, error) {
	index, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the image layout (make image writes it): %w", err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(manifest.Manifests) != 1 {
		return nil, fmt.Errorf("the layout at %s holds %d images, want 1", dir, len(manifest.Manifests))
	}
	return index.Image(manifest.Manifests[0].Digest)
}

// push copies the image of the layout at dir to ref, and returns its digest.
func push(ctx context.Context, dir string, ref name.Reference, keychain authn.Keychain) (v1.Hash, error) {
	img, err := readLayout(dir)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain)); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing to %s: %w", ref, err)
	}
	return img.Digest()
}
