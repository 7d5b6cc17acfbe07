package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// ChildFlag is the flag of the bench's command that makes it measure one
// initial list and print the result (RunChild): the value is "impl:n".
const ChildFlag = "list-child"

// InitialListInChild is InitialList in a process of its own: it runs the
// bench's own executable with -list-child and reads the result. Each Impl
// then starts from a fresh heap, with no garbage, grown maps or GC pacing
// left behind by the Impl measured before it, and the heap it reports is
// its own alone, as a controller's would be.
func InitialListInChild(impl Impl, n int) (ListResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return ListResult{}, fmt.Errorf("finding the bench's executable: %w", err)
	}
	var stdout bytes.Buffer
	cmd := exec.Command(exe, "-"+ChildFlag, string(impl)+":"+strconv.Itoa(n))
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return ListResult{}, fmt.Errorf("initial list of %d for %s in a child process: %w", n, impl, err)
	}
	var r ListResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return ListResult{}, fmt.Errorf("reading the result of %s's child process: %w", impl, err)
	}
	return r, nil
}

// RunChild measures the initial list that value (the -list-child flag's,
// "impl:n") names and writes the result to w, for InitialListInChild.
func RunChild(value string, w io.Writer) error {
	i := strings.LastIndexByte(value, ':')
	if i < 0 {
		return fmt.Errorf("-%s %q: want impl:objects", ChildFlag, value)
	}
	impl := Impl(value[:i])
	n, err := strconv.Atoi(value[i+1:])
	if err != nil {
		return fmt.Errorf("-%s %q: %w", ChildFlag, value, err)
	}
	if !slices.Contains(BacklogImpls, impl) {
		return fmt.Errorf("-%s %q: want impl:objects, impl one of %v", ChildFlag, value, BacklogImpls)
	}
	return json.NewEncoder(w).Encode(InitialList(impl, n))
}
