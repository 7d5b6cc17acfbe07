package kubelabtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/connrotation"
)

// Options configure a lab.
type Options struct {
	// ControllerManager also runs kube-controller-manager with the garbage
	// collector and the namespace, deployment, replicaset and serviceaccount
	// controllers.
	ControllerManager bool
	// CRDs are CustomResourceDefinition manifests (YAML, several documents
	// allowed, or JSON) installed once, up front; see Lab.InstallCRDs.
	CRDs [][]byte
	// Setup, if set, is called by Main once the lab is ready (CRDs
	// installed) and before the tests run: to apply manifests, build a
	// binary the tests run, and the like. An error from it fails the test
	// binary as a lab that cannot start does. Start ignores it.
	Setup func(ctx context.Context, lab *Lab) error
	// FeatureGates are kube-apiserver's feature gates, as its
	// --feature-gates takes them (e.g. "ShardedListAndWatch=true"); empty
	// for the apiserver's defaults.
	FeatureGates string
}

// startTimeout bounds Start when its context has no deadline. It does not
// cover building the binary.
const startTimeout = 2 * time.Minute

// A Lab is a running kubelab: etcd, kube-apiserver and optionally
// kube-controller-manager in a process of its own. Its methods are safe for
// concurrent use. Call Stop when done.
type Lab struct {
	dir        string
	cmd        *exec.Cmd
	exited     chan struct{} // closed when the kubelab process has exited
	exitErr    error         // read after exited is closed
	stdoutDone chan struct{}

	base    *rest.Config
	dialer  *connrotation.Dialer // every client connection to the apiserver
	client  kubernetes.Interface
	dynamic dynamic.Interface
	control *http.Client // the control API on dir/control.sock

	stopOnce sync.Once
	stopErr  error
}

// Start starts a lab, building kubelab first if needed (see Binary), and
// returns once the apiserver's /readyz answers 200, with
// opts.ControllerManager once the controllers run (the default
// ServiceAccount of namespace default exists), and once opts.CRDs are
// installed. On error nothing is left running, and the error ends with the
// tail of the lab's logs.
func Start(ctx context.Context, opts Options) (*Lab, error) {
	removeStaleDirs()
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	// A short path: the lab's unix sockets live in it.
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	l, err := start(ctx, bin, dir, opts)
	if err != nil {
		err = fmt.Errorf("kubelab: %w\n%s", err, logTails(dir, 25))
		if l != nil {
			_ = l.Stop()
		} else {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	return l, nil
}

func start(ctx context.Context, bin, dir string, opts Options) (*Lab, error) {
	args := []string{"--dir", dir}
	if opts.ControllerManager {
		args = append(args, "--controller-manager")
	}
	if opts.FeatureGates != "" {
		args = append(args, "--feature-gates="+opts.FeatureGates)
	}
	stderr, err := os.Create(filepath.Join(dir, "kubelab.stderr"))
	if err != nil {
		return nil, err
	}
	defer stderr.Close() // the process has its own copy
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = stdoutW
	cmd.Stderr = stderr
	cmd.SysProcAttr = labProcAttr()
	err = cmd.Start()
	stdoutW.Close()
	if err != nil {
		stdoutR.Close()
		return nil, err
	}

	l := &Lab{
		dir:        dir,
		cmd:        cmd,
		exited:     make(chan struct{}),
		stdoutDone: make(chan struct{}),
		dialer:     connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext),
		control: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", filepath.Join(dir, "control.sock"))
			},
			DisableKeepAlives: true,
		}},
	}
	go func() {
		l.exitErr = cmd.Wait()
		close(l.exited)
	}()
	// The first line on stdout is KUBECONFIG=<path>, written once the
	// apiserver is ready; read it, then drain the pipe until the process exits.
	firstLine := make(chan string, 1)
	go func() {
		defer close(l.stdoutDone)
		defer stdoutR.Close()
		line, _ := bufio.NewReader(stdoutR).ReadString('\n')
		firstLine <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdoutR)
	}()

	var kubeconfig string
	select {
	case line := <-firstLine:
		var ok bool
		if kubeconfig, ok = strings.CutPrefix(line, "KUBECONFIG="); !ok {
			<-l.exited
			return l, fmt.Errorf("kubelab exited (%v) before it was ready", l.exitErr)
		}
	case <-ctx.Done():
		return l, fmt.Errorf("waiting for kubelab to be ready: %w", ctx.Err())
	}

	l.base, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return l, err
	}
	if l.client, err = kubernetes.NewForConfig(l.Config()); err != nil {
		return l, err
	}
	if l.dynamic, err = dynamic.NewForConfig(l.Config()); err != nil {
		return l, err
	}
	if opts.ControllerManager {
		if err := l.waitForControllers(ctx); err != nil {
			return l, err
		}
	}
	if err := l.InstallCRDs(ctx, opts.CRDs...); err != nil {
		return l, err
	}
	return l, nil
}

// waitForControllers waits until the serviceaccount controller has created
// the default ServiceAccount in namespace default: then the controller
// manager is up and its controllers run.
func (l *Lab) waitForControllers(ctx context.Context) error {
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := l.client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("waiting for the controller manager to create ServiceAccount default/default: %w", err)
	}
	return nil
}

// Stop stops the lab and waits for it to exit (SIGTERM; SIGKILL after 30s),
// closes every client connection made through Config, and removes the lab's
// directory. Stop is idempotent; later calls return the first call's result.
// Clients made from Config fail from then on.
func (l *Lab) Stop() error {
	return l.stop("")
}

// stop is Stop; if logs is not "", the lab's logs are copied into it
// before the lab's directory is removed.
func (l *Lab) stop(logs string) error {
	l.stopOnce.Do(func() {
		select {
		case <-l.exited:
			l.stopErr = fmt.Errorf("kubelab had exited (%v) before Stop\n%s", l.exitErr, logTails(l.dir, 25))
		default:
			_ = l.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-l.exited:
			case <-time.After(30 * time.Second):
				_ = l.cmd.Process.Kill()
				<-l.exited
				l.stopErr = errors.New("kubelab did not stop within 30s of SIGTERM; killed it")
			}
		}
		<-l.stdoutDone
		l.dialer.CloseAll()
		l.control.CloseIdleConnections()
		if logs != "" {
			if err := copyLogs(l.dir, logs); err != nil && l.stopErr == nil {
				l.stopErr = err
			}
		}
		if err := os.RemoveAll(l.dir); err != nil && l.stopErr == nil {
			l.stopErr = err
		}
	})
	return l.stopErr
}

// Config returns a new copy of the configuration for a client of the lab's
// apiserver, as a user in the group system:masters. Rate limits are raised
// (QPS 500, burst 1000) so tests are not throttled on the client side.
// The connections of clients made from it are closed by Stop.
func (l *Lab) Config() *rest.Config {
	cfg := rest.CopyConfig(l.base)
	cfg.QPS = 500
	cfg.Burst = 1000
	cfg.Dial = l.dialer.DialContext
	return cfg
}

// KubeconfigPath returns the path of a kubeconfig file for the lab, for
// tools and clients that read one. It is removed by Stop.
func (l *Lab) KubeconfigPath() string {
	return filepath.Join(l.dir, "kubeconfig")
}

// Dir returns the lab's directory: kubeconfig, logs (*.log), control
// socket. Files a test writes there (a binary it builds, a kubeconfig) are
// removed with it by Stop.
func (l *Lab) Dir() string {
	return l.dir
}

// Client returns a clientset for the lab, shared by all callers.
func (l *Lab) Client() kubernetes.Interface {
	return l.client
}

// Dynamic returns a dynamic client for the lab, shared by all callers.
func (l *Lab) Dynamic() dynamic.Interface {
	return l.dynamic
}

// copyLogs copies the log files of the lab directory dir into to.
func copyLogs(dir, to string) error {
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range append(files, filepath.Join(dir, "kubelab.stderr")) {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// logTails returns the last n lines of each log file in dir, for error messages.
func logTails(dir string, n int) string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	files = append(files, filepath.Join(dir, "kubelab.stderr"))
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		fmt.Fprintf(&b, "--- last lines of %s ---\n%s\n", filepath.Base(f), tail(string(data), n))
	}
	return b.String()
}
