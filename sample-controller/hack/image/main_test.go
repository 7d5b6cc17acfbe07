package main

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testMeta = metadata{
	source:   "https://example.com/src",
	revision: "0123456789abcdef",
	version:  "v1.2.3",
	created:  time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC),
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestImageIsReproducible: the same binary and metadata give the same
// digest, through a layout written and read back too; any change to them
// gives another.
func TestImageIsReproducible(t *testing.T) {
	binary := []byte("\x7fELF a static binary")
	first, err := newImage(binary, "amd64", testMeta)
	if err != nil {
		t.Fatal(err)
	}
	want := digestOf(t, first)
	dir := filepath.Join(t.TempDir(), "layout")
	for i := range 2 {
		img, err := newImage(binary, "amd64", testMeta)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeLayout(dir, img, defaultImage); err != nil {
			t.Fatal(err)
		}
		back, err := readLayout(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := digestOf(t, back); got != want {
			t.Errorf("build %d: digest %s, want %s", i, got, want)
		}
	}

	later := testMeta
	later.created = later.created.Add(time.Second)
	otherRev := testMeta
	otherRev.revision = "fedcba"
	for what, build := range map[string]func() (v1.Image, error){
		"another binary":   func() (v1.Image, error) { return newImage([]byte("another"), "amd64", testMeta) },
		"another arch":     func() (v1.Image, error) { return newImage(binary, "arm64", testMeta) },
		"another time":     func() (v1.Image, error) { return newImage(binary, "amd64", later) },
		"another revision": func() (v1.Image, error) { return newImage(binary, "amd64", otherRev) },
	} {
		img, err := build()
		if err != nil {
			t.Fatal(err)
		}
		if digestOf(t, img) == want {
			t.Errorf("%s: the same digest %s", what, want)
		}
	}
}

// TestImageHoldsTheBinary reads the image back: OCI media types, the
// configuration a Deployment relies on, and one layer with the binary alone.
func TestImageHoldsTheBinary(t *testing.T) {
	binary := []byte("\x7fELF a static binary")
	img, err := newImage(binary, "arm64", testMeta)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := writeLayout(dir, img, "example.com/ctl:v1"); err != nil {
		t.Fatal(err)
	}
	img, err = readLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	if mt != types.OCIManifestSchema1 {
		t.Errorf("media type %s, want %s", mt, types.OCIManifestSchema1)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		User:       "65532:65532",
		Entrypoint: []string{"/sample-controller"},
		WorkingDir: "/",
		Labels: map[string]string{
			"org.opencontainers.image.source":   testMeta.source,
			"org.opencontainers.image.revision": testMeta.revision,
			"org.opencontainers.image.version":  testMeta.version,
		},
	}
	if diff := cmp.Diff(want, cfg.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if cfg.OS != "linux" || cfg.Architecture != "arm64" || !cfg.Created.Time.Equal(testMeta.created) {
		t.Errorf("os/arch %s/%s created %s, want linux/arm64 %s", cfg.OS, cfg.Architecture, cfg.Created.Time, testMeta.created)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Name != "sample-controller" || hdr.Mode != 0o755 || hdr.Uid != 0 || !hdr.ModTime.Equal(testMeta.created) {
		t.Errorf("file %s mode %o uid %d time %s, want sample-controller 755 0 %s", hdr.Name, hdr.Mode, hdr.Uid, hdr.ModTime, testMeta.created)
	}
	got, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, binary) {
		t.Errorf("the file holds %q, want %q", got, binary)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("a second file in the layer (%v), want none", err)
	}
}

// TestPush pushes a layout's image to a registry (one in this process)
// and reads it back by its tag.
func TestPush(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	img, err := newImage([]byte("binary"), "amd64", testMeta)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := writeLayout(dir, img, defaultImage); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(reg.URL, "http://") + "/team/ctl:v1")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"push", "--output", dir, ref.String()}, &out); err != nil {
		t.Fatal(err)
	}
	want := digestOf(t, img)
	if got, wantOut := out.String(), "pushed: "+ref.Context().String()+"@"+want.String()+"\n"; got != wantOut {
		t.Errorf("push printed %q, want %q", got, wantOut)
	}
	pulled, err := remote.Image(ref, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		t.Fatal(err)
	}
	if got := digestOf(t, pulled); got != want {
		t.Errorf("the registry's image has digest %s, want %s", got, want)
	}
}

// TestRunRejectsBadUsage: misuse gets an error that says what is wrong.
func TestRunRejectsBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage:"},
		{[]string{"deploy"}, `unknown command "deploy"`},
		{[]string{"build", "extra"}, "build takes no arguments"},
		{[]string{"push"}, "push takes the image to push to"},
		{[]string{"push", "Not A Reference"}, `IMAGE "Not A Reference"`},
		{[]string{"push", "--output", filepath.Join(t.TempDir(), "none"), "example.com/a:b"}, "make image writes it"},
	} {
		err := run(t.Context(), tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}
