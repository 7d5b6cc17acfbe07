package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// lab is a running hack/kubelab: etcd, kube-apiserver and
// kube-controller-manager (garbage collector, namespace, deployment,
// replicaset and serviceaccount controllers), no scheduler and no kubelet.
type lab struct {
	cmd        *exec.Cmd
	exited     chan struct{}
	kubeconfig string
	stderr     *bytes.Buffer
}

// startLab starts kubelab with the controller manager, its files in dir
// (kubeconfig, logs, data; kept when it stops), and returns once it has
// printed its kubeconfig, which it does once the apiserver is ready. The
// binary is $KUBELAB_BIN, or the one hack/build-kubelab.sh builds (the first
// build on a machine takes minutes).
func startLab(ctx context.Context, dir string) (*lab, error) {
	bin, err := kubelabBinary(ctx)
	if err != nil {
		return nil, err
	}
	stdout, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	l := &lab{cmd: exec.Command(bin, "--controller-manager", "--dir", dir), exited: make(chan struct{}), stderr: &bytes.Buffer{}}
	l.cmd.Stdout = w
	l.cmd.Stderr = l.stderr
	// If this process dies without stopping it, the kernel stops the lab,
	// and kubelab removes its temporary directory.
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	err = l.cmd.Start()
	w.Close()
	if err != nil {
		stdout.Close()
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		defer close(l.exited)
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
		stdout.Close()
		_ = l.cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	select {
	case line := <-lines:
		if kubeconfig, ok := strings.CutPrefix(line, "KUBECONFIG="); ok {
			l.kubeconfig = kubeconfig
			return l, nil
		}
		<-l.exited
		return nil, fmt.Errorf("kubelab exited before it was ready: %v\n%s", l.cmd.ProcessState, l.stderr)
	case <-ctx.Done():
		_ = l.stop()
		return nil, fmt.Errorf("waiting for kubelab: %w\n%s", ctx.Err(), l.stderr)
	}
}

// stop stops the lab (SIGTERM, SIGKILL after 30s) and waits for it to exit.
func (l *lab) stop() error {
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = l.cmd.Process.Kill()
		<-l.exited
		return errors.New("kubelab did not stop within 30s of SIGTERM; killed it")
	}
}

// kubelabBinary returns $KUBELAB_BIN, or builds kubelab with the
// repository's hack/build-kubelab.sh and returns its path.
func kubelabBinary(ctx context.Context) (string, error) {
	if bin := os.Getenv("KUBELAB_BIN"); bin != "" {
		return bin, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	fmt.Fprintln(os.Stderr, "e2e: building kubelab (hack/build-kubelab.sh; minutes the first time on a machine)")
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "build-kubelab.sh"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/build-kubelab.sh: %w\n%s", err, stderr.String())
	}
	fields := strings.Fields(stdout.String())
	if len(fields) == 0 {
		return "", errors.New("hack/build-kubelab.sh printed no path")
	}
	return fields[len(fields)-1], nil
}

// repoRoot finds the kubehandler repository around this module: the first
// directory above the working directory with hack/build-kubelab.sh.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "build-kubelab.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no hack/build-kubelab.sh above the working directory; set KUBELAB_BIN")
		}
		dir = parent
	}
}
