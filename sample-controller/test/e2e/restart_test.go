package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubehandler/kubehandler"
	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
)

// process is the sample controller binary, run by a test.
type process struct {
	name      string
	cmd       *exec.Cmd
	exited    chan struct{}
	log       string
	probeAddr string
	metrics   string
}

// startProcess runs the controller binary built by TestMain against the lab,
// as the ServiceAccount of artifacts/deploy with its RBAC, with leader
// election and flags added to the usual ones, and waits until /readyz
// answers 200. It is killed when the test ends.
func startProcess(t *testing.T, name string, flags ...string) *process {
	t.Helper()
	p := launchProcess(t, name, append([]string{
		// Leader election on the Lease of artifacts/deploy's RBAC, with
		// short durations: a killed leader's lease expires in 3s.
		"--leader-elect",
		"--leader-elect-resource-namespace", leaseNamespace,
		"--leader-elect-lease-duration=3s",
		"--leader-elect-renew-deadline=2s",
		"--leader-elect-retry-period=500ms",
	}, flags...)...)
	p.waitReady(t, timeout)
	return p
}

// launchProcess runs the controller binary as startProcess does, with only
// the usual flags and these, and returns at once. It is killed when the
// test ends.
func launchProcess(t *testing.T, name string, flags ...string) *process {
	t.Helper()
	probeAddr, metrics := freeAddr(t), freeAddr(t)
	return launchBinary(t, name, controllerBin, probeAddr, metrics, append([]string{
		"--kubeconfig", controllerKubeconfig,
		"--threadiness", "4",
		"--health-probe-bind-address", probeAddr,
		"--metrics-bind-address", metrics,
	}, flags...))
}

// launchBinary runs bin with args, which make it serve its probes on
// probeAddr and its metrics on metrics, and returns at once. It is killed
// when the test ends; its log is in the test's output if the test failed.
func launchBinary(t *testing.T, name, bin, probeAddr, metrics string, args []string) *process {
	t.Helper()
	p := &process{
		name:      name,
		exited:    make(chan struct{}),
		log:       filepath.Join(t.TempDir(), name+".log"),
		probeAddr: probeAddr,
		metrics:   metrics,
	}
	out, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	// The race detector's runtime sleeps a second before exiting, which
	// would count as shutdown time.
	p.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			data, _ := os.ReadFile(p.log)
			t.Logf("%s's log:\n%s", name, tail(string(data), 40))
		}
	})
	return p
}

// waitReady waits until the process's /readyz answers 200, and fails the
// test if it exits first or that takes longer than timeout.
func (p *process) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	poll(t, timeout, p.name+" ready", func() (bool, error) {
		select {
		case <-p.exited:
			return false, fmt.Errorf("exited: %v", p.cmd.ProcessState)
		default:
		}
		code, _, err := get("http://" + p.probeAddr + "/readyz")
		if err != nil {
			return false, notYet(err.Error())
		}
		return code == http.StatusOK, nil
	})
}

// kill kills the process with SIGKILL and waits for it to exit.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// terminate sends SIGTERM and returns the exit code, or fails the test if
// the process has not exited within the timeout.
func (p *process) terminate(t *testing.T, timeout time.Duration) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("the controller had not exited %s after SIGTERM", timeout)
		return -1
	}
}

// leaseNamespace is the namespace of the controller's Lease: that of
// artifacts/deploy, where its RBAC lets it have one.
const leaseNamespace = "sample-controller"

// TestKillAndRestart runs the controller binary, kills it with SIGKILL while
// it works through 100 new Foos, changes Foos and Deployments while it is
// down, and starts it again: it converges with nothing lost, once the killed
// leader's Lease has expired. It also checks the binary's endpoints, and its
// graceful exit on SIGTERM, which releases the Lease.
func TestKillAndRestart(t *testing.T) {
	c := newClients(t, labConfig())
	ns := newNamespace(t, c)
	first := startProcess(t, "first")

	t.Run("endpoints", func(t *testing.T) {
		poll(t, timeout, "the leader metric", func() (bool, error) {
			_, body, err := get("http://" + first.metrics + "/metrics")
			return strings.Contains(body, `kubehandler_leader{name="sample-controller"} 1`), err
		})
		for _, url := range []string{"http://" + first.probeAddr + "/healthz", "http://" + first.probeAddr + "/readyz", "http://" + first.metrics + "/metrics"} {
			code, body, err := get(url)
			if err != nil || code != http.StatusOK {
				t.Errorf("GET %s: %d, %v", url, code, err)
			}
			if strings.HasSuffix(url, "/metrics") && !strings.Contains(body, "workqueue_depth{name=\"sample-controller\"}") {
				t.Errorf("GET %s: no workqueue_depth of queue sample-controller in:\n%s", url, tail(body, 20))
			}
		}
		// The debug endpoint is off unless --debug-endpoint asks for it.
		if code, _, err := get("http://" + first.probeAddr + "/debug/kubehandler"); err != nil || code != http.StatusNotFound {
			t.Errorf("GET /debug/kubehandler without --debug-endpoint: %d, %v; want 404", code, err)
		}
	})

	const n = 100
	createFoos(t, c, ns, "foo", n)
	poll(t, timeout, "a quarter of the Foos Ready", func() (bool, error) {
		ready, err := countReady(t, c, ns)
		return ready >= n/4, err
	})
	first.kill()
	ready, err := countReady(t, c, ns)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "killed the controller with %d of %d Foos Ready", ready, n)

	// While it is down: change replicas of some Foos, delete some
	// Deployments, create more Foos.
	foos := c.foo.SamplecontrollerV1alpha1().Foos(ns)
	for i := range 20 {
		updateFoo(t, c, &samplev1alpha1.Foo{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("foo-%d", i)}}, func(f *samplev1alpha1.Foo) {
			f.Spec.Replicas = ptr.To[int32](3)
		})
	}
	list, err := c.kube.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list.Items {
		if err := c.kube.AppsV1().Deployments(ns).Delete(t.Context(), d.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createFoos(t, c, ns, "more", 20)
	if _, err := foos.List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}

	restarted := time.Now()
	second := startProcess(t, "second", "--debug-endpoint")
	waitForAllReady(t, c, ns, n+20, 2*time.Minute)
	report(t, "restarted: all %d Foos Ready %s after the start", n+20, time.Since(restarted).Round(time.Millisecond))
	t.Run("debug endpoint", func(t *testing.T) {
		checkDebugEndpoint(t, "http://"+second.probeAddr+"/debug/kubehandler")
	})

	stopped := time.Now()
	if code := second.terminate(t, 30*time.Second); code != 0 {
		data, _ := os.ReadFile(second.log)
		t.Errorf("exit code after SIGTERM: %d, want 0 (66: a data race)\n%s", code, tail(string(data), 40))
	}
	report(t, "exited %s after SIGTERM", time.Since(stopped).Round(time.Millisecond))
	lease, err := c.kube.CoordinationV1().Leases(leaseNamespace).Get(t.Context(), "sample-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("after a graceful exit the Lease is held by %q, want it released", *h)
	}
}

// checkDebugEndpoint checks that url serves the debug view of the
// controller's loop: its three handlers, dispatching, as JSON and HTML.
func checkDebugEndpoint(t *testing.T, url string) {
	code, body, err := get(url + "?format=json")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s?format=json: %d, %v", url, code, err)
	}
	var rep kubehandler.DebugReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("decoding the report: %v\n%s", err, body)
	}
	var names []string
	for _, h := range rep.Handlers {
		names = append(names, h.Name)
	}
	if rep.Queue != "sample-controller" || rep.State != "dispatching" || strings.Join(names, ",") != "Deployment,Foo,FooDependents" {
		t.Errorf("report: queue %q, state %q, handlers %v; want sample-controller, dispatching, [Deployment Foo FooDependents]", rep.Queue, rep.State, names)
	}
	code, body, err = get(url)
	if err != nil || code != http.StatusOK || !strings.Contains(body, "<h2>Handler Foo</h2>") {
		t.Errorf("GET %s: %d, %v:\n%s", url, code, err, tail(body, 20))
	}
}

// countReady returns the number of Foos in ns that are Ready at their
// generation.
func countReady(t *testing.T, c clients, ns string) (int, error) {
	list, err := c.foo.SamplecontrollerV1alpha1().Foos(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	ready := 0
	for i := range list.Items {
		if ok, _ := isReady(&list.Items[i], list.Items[i].Generation); ok {
			ready++
		}
	}
	return ready, nil
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var httpClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(url string) (int, string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, err = io.Copy(&body, resp.Body)
	return resp.StatusCode, body.String(), err
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
