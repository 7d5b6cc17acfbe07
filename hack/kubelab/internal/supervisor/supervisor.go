// Package supervisor is the kubelab command without the Kubernetes
// components: it runs etcd in this process and the apiserver and controller
// manager as child processes (the same binary, with a hidden subcommand),
// and serves the control API. See the kubelab command's doc.
package supervisor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The hidden subcommands of the kubelab binary that run the child processes.
const (
	APIServerCommand         = "apiserver"
	ControllerManagerCommand = "controller-manager"
)

const (
	controlSocketName = "control.sock"
	kubeconfigName    = "kubeconfig"
	// maxSocketPath is the longest unix socket path we use; the kernel's
	// limit is 107 bytes (108 with the trailing NUL) on Linux.
	maxSocketPath = 104
	// readyTimeout bounds how long one start of the apiserver may take.
	readyTimeout = 2 * time.Minute
)

// supervisor owns etcd (in this process) and the apiserver and
// controller-manager processes.
type supervisor struct {
	dir    string
	self   string // this binary, run again for the child processes
	log    *log.Logger
	addr   string // 127.0.0.1:port of the apiserver, the same across restarts
	token  string // bearer token of a system:masters user
	client *http.Client

	apiserverArgs []string
	cmArgs        []string

	op sync.Mutex // serializes starting and stopping the apiserver

	mu        sync.Mutex // guards the fields below
	apiserver *child     // nil while stopped
	cm        *child     // nil while not running
}

// Run runs the lab until SIGINT or SIGTERM. Once the apiserver is ready it
// writes "KUBECONFIG=<path>" as one line to stdout.
func Run(c Config, stdout io.Writer) error {
	started := time.Now()
	dir := c.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "kl-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else {
		var err error
		if dir, err = filepath.Abs(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if n := len(filepath.Join(dir, controlSocketName)); n > maxSocketPath {
		return fmt.Errorf("--dir %s is too long for unix sockets in it (%d > %d bytes)", dir, n, maxSocketPath)
	}
	pidFile, err := lockPIDFile(dir)
	if err != nil {
		return err
	}
	defer pidFile.Close()

	logFile, err := os.OpenFile(filepath.Join(dir, "kubelab.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger := log.New(logFile, "", log.LstdFlags|log.Lmicroseconds)
	logger.Printf("kubelab pid %d in %s", os.Getpid(), dir)

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	p, err := newPKI(dir)
	if err != nil {
		return fmt.Errorf("writing certificates and keys: %w", err)
	}

	etcd, etcdURL, err := startEtcd(dir, filepath.Join(dir, "etcd.log"))
	if err != nil {
		return err
	}
	defer etcd.Close()
	logger.Printf("etcd ready at %s after %v", etcdURL, time.Since(started))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	s := &supervisor{
		dir:   dir,
		self:  self,
		log:   logger,
		addr:  ln.Addr().String(),
		token: p.token,
		client: &http.Client{
			Timeout: 5 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: pool},
				DisableKeepAlives: true, // nothing left behind between checks
			},
		},
	}
	kubeconfig := filepath.Join(dir, kubeconfigName)
	if err := writeKubeconfig(kubeconfig, "https://"+s.addr, p.caPEM, p.token); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(s.addr)
	s.apiserverArgs = []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + port, // informational: the apiserver serves on fd 3
		"--tls-cert-file=" + p.certFile,
		"--tls-private-key-file=" + p.keyFile,
		"--service-account-key-file=" + p.saKeyFile,
		"--service-account-signing-key-file=" + p.saKeyFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--endpoint-reconciler-type=none",
		"--token-auth-file=" + p.tokenFile,
		"--authorization-mode=RBAC",
		// On SIGTERM, end open watches instead of waiting for them (up
		// to a minute) before exiting.
		"--shutdown-watch-termination-grace-period=2s",
	}
	if c.FeatureGates != "" {
		s.apiserverArgs = append(s.apiserverArgs, "--feature-gates="+c.FeatureGates)
	}
	s.cmArgs = []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--controllers=garbagecollector,namespace,deployment,replicaset,serviceaccount",
		"--kube-api-qps=100",
		"--kube-api-burst=200",
	}

	defer s.stopAPIServer(false)
	if err := s.startAPIServer(ctx, ln); err != nil {
		return err
	}
	logger.Printf("apiserver ready at https://%s after %v", s.addr, time.Since(started))

	control, err := s.serveControl(filepath.Join(dir, controlSocketName))
	if err != nil {
		return err
	}
	defer control.Close()

	if c.ControllerManager {
		cmCtx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.superviseControllerManager(cmCtx)
		}()
		defer func() { // runs before the apiserver is stopped
			cancel()
			wg.Wait()
		}()
	}

	fmt.Fprintf(stdout, "KUBECONFIG=%s\n", kubeconfig)
	fmt.Fprintf(os.Stderr, "kubelab: ready after %v; logs in %s; stop with Ctrl-C or SIGTERM\n",
		time.Since(started).Round(time.Millisecond), dir)

	<-ctx.Done()
	stopSignals() // a second Ctrl-C kills us at once; the children die with us
	logger.Printf("shutting down")
	return nil
}

// startAPIServer starts the apiserver process unless it is running, and
// waits until its /readyz answers 200. ln, if not nil, is the listener to
// hand over; otherwise the apiserver's address is bound again.
func (s *supervisor) startAPIServer(ctx context.Context, ln net.Listener) error {
	s.op.Lock()
	defer s.op.Unlock()

	s.mu.Lock()
	c := s.apiserver
	s.mu.Unlock()
	if c != nil && !c.exited() {
		if ln != nil {
			ln.Close()
		}
		return s.waitReady(ctx, c)
	}

	if ln == nil {
		var err error
		if ln, err = listenAgain(ctx, s.addr); err != nil {
			return err
		}
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close() // f is a duplicate; closing ln leaves the socket listening
	if err != nil {
		return err
	}
	c, err = startChild(s.self, APIServerCommand, s.apiserverArgs, filepath.Join(s.dir, "apiserver.log"), f)
	f.Close() // the child has its own copy
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.apiserver = c
	s.mu.Unlock()
	s.log.Printf("apiserver started, pid %d", c.cmd.Process.Pid)
	return s.waitReady(ctx, c)
}

// listenAgain binds addr again. The old socket's connections may linger in
// TIME_WAIT, which SO_REUSEADDR (set by Go on listeners) allows; a port
// briefly held by some other socket is retried for a while.
func listenAgain(ctx context.Context, addr string) (net.Listener, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return ln, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitReady polls /readyz until it answers 200, the process exits, or
// readyTimeout passes.
func (s *supervisor) waitReady(ctx context.Context, c *child) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.ready(ctx) {
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("apiserver exited (%v); see %s", c.err, filepath.Join(s.dir, "apiserver.log"))
		case <-ctx.Done():
			return fmt.Errorf("apiserver not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func (s *supervisor) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+s.addr+"/readyz", nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stopAPIServer stops the apiserver process, if running, and returns once it
// has exited: with SIGTERM (a graceful shutdown), or with kill, SIGKILL (a
// crash: every connection is reset at once). etcd keeps the data.
func (s *supervisor) stopAPIServer(kill bool) {
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	c := s.apiserver
	s.apiserver = nil
	s.mu.Unlock()
	if c == nil {
		return
	}
	start := time.Now()
	if kill {
		c.stop(syscall.SIGKILL, 10*time.Second)
	} else {
		c.stop(syscall.SIGTERM, 30*time.Second)
	}
	s.log.Printf("apiserver stopped (kill=%t) after %v: %v", kill, time.Since(start), c.err)
}

// superviseControllerManager runs the controller-manager process until ctx
// is done, restarting it a second after it exits on its own.
func (s *supervisor) superviseControllerManager(ctx context.Context) {
	logPath := filepath.Join(s.dir, "controller-manager.log")
	for {
		c, err := startChild(s.self, ControllerManagerCommand, s.cmArgs, logPath)
		if err != nil {
			s.log.Printf("%v", err)
		} else {
			s.log.Printf("controller manager started, pid %d", c.cmd.Process.Pid)
			s.mu.Lock()
			s.cm = c
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				c.stop(syscall.SIGTERM, 10*time.Second)
				s.log.Printf("controller manager stopped")
				return
			case <-c.done:
				s.log.Printf("controller manager exited (%v); restarting in 1s", c.err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// componentStatus is one process in GET /status.
type componentStatus struct {
	Running bool `json:"running"`
	PID     int  `json:"pid,omitempty"`
}

// labStatus is the body of GET /status.
type labStatus struct {
	PID               int              `json:"pid"`
	Dir               string           `json:"dir"`
	Kubeconfig        string           `json:"kubeconfig"`
	Server            string           `json:"server"`
	APIServer         componentStatus  `json:"apiserver"`
	ControllerManager *componentStatus `json:"controllerManager,omitempty"`
}

func (s *supervisor) status() labStatus {
	st := labStatus{
		PID:        os.Getpid(),
		Dir:        s.dir,
		Kubeconfig: filepath.Join(s.dir, kubeconfigName),
		Server:     "https://" + s.addr,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.APIServer = processStatus(s.apiserver)
	if s.cmArgs != nil && s.cm != nil {
		cm := processStatus(s.cm)
		st.ControllerManager = &cm
	}
	return st
}

func processStatus(c *child) componentStatus {
	if c == nil || c.exited() {
		return componentStatus{}
	}
	return componentStatus{Running: true, PID: c.cmd.Process.Pid}
}

// parseBool reads an optional boolean query parameter.
func parseBool(v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	return strconv.ParseBool(v)
}
