package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerfileCopiesEveryPackage: the Dockerfile's build stage copies the
// directory of every package the controller is built from that is not
// downloaded as a module: the sample's own, and the library's while go.mod
// replaces it with a directory (here, the repository around the sample).
// The build context is the library's directory then, as the Dockerfile
// says, and the module's own otherwise.
func TestDockerfileCopiesEveryPackage(t *testing.T) {
	sources, err := dockerfileCopySources("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	dirs, context := localPackageDirs(t)
	for _, dir := range dirs {
		rel, err := filepath.Rel(context, dir)
		if err != nil {
			t.Fatal(err)
		}
		if !copied(sources, filepath.ToSlash(rel)) {
			t.Errorf("the Dockerfile copies no source of package directory %s (build context %s); its COPY lines copy %q", rel, context, sources)
		}
	}
	if len(dirs) == 0 {
		t.Fatal("go list found no package of the controller")
	}
}

// copied reports whether one of the COPY sources holds the Go files of the
// directory dir, relative to the build context: dir or one around it
// ("internal/", "."), or a pattern for the files in dir ("*.go").
func copied(sources []string, dir string) bool {
	for _, src := range sources {
		src = path.Clean(src)
		if src == "." || src == dir || strings.HasPrefix(dir, src+"/") {
			return true
		}
		if ok, _ := path.Match(src, path.Join(dir, "x.go")); ok {
			return true
		}
	}
	return false
}

// dockerfileCopySources returns the sources of the COPY instructions that
// copy from the build context (not --from another stage).
func dockerfileCopySources(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var sources []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || !strings.EqualFold(fields[0], "COPY") {
			continue
		}
		args := fields[1:]
		fromStage := false
		for len(args) > 0 && strings.HasPrefix(args[0], "--") {
			fromStage = fromStage || strings.HasPrefix(args[0], "--from=")
			args = args[1:]
		}
		if !fromStage && len(args) >= 2 {
			sources = append(sources, args[:len(args)-1]...)
		}
	}
	return sources, sc.Err()
}

// localPackageDirs returns the directories of the packages the controller
// is built from that are not downloaded, and the build context.
func localPackageDirs(t *testing.T) (dirs []string, context string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-json=Dir,Standard,Module", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type module struct {
		Path, Dir string
		Main      bool
		Replace   *struct{ Dir, Version string }
	}
	context, err = os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			Dir      string
			Standard bool
			Module   *module
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		switch m := p.Module; {
		case p.Standard || m == nil:
		case m.Main:
			dirs = append(dirs, p.Dir)
		case m.Replace != nil && m.Replace.Version == "": // replaced with a directory
			dirs = append(dirs, p.Dir)
			context = m.Dir
		}
	}
	return dirs, context
}
