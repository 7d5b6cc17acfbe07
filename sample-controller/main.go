// Command sample-controller keeps, for each Foo (samplecontroller.kubehandler.dev/v1alpha1),
// a Deployment with the Foo's name and replicas, and deletes the Foo's
// dependent ConfigMaps when the Foo is deleted. See README.md.
//
// It runs until SIGINT or SIGTERM, then stops taking work, waits for the
// calls in flight and exits; a second signal exits at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/controller"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/generated/clientset/versioned"
)

type flags struct {
	kubeconfig   string
	threadiness  int
	metricsAddr  string
	probeAddr    string
	kubeAPIQPS   float64
	kubeAPIBurst int
	// Leader election: kubehandler's WithLeaderElection is not released
	// yet (issue 6). Until it is, run one replica; its flags go here.
}

func main() {
	var f flags
	flag.StringVar(&f.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Without it: $KUBECONFIG, then ~/.kube/config, then the in-cluster configuration.")
	flag.IntVar(&f.threadiness, "threadiness", 2, "Number of Foos and Deployments handled at once.")
	flag.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", `Address to serve Prometheus metrics on, at /metrics; "0" disables it.`)
	flag.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", `Address to serve /healthz and /readyz on; "0" disables them.`)
	flag.Float64Var(&f.kubeAPIQPS, "kube-api-qps", 50, "Requests per second to the API server, on average.")
	flag.IntVar(&f.kubeAPIBurst, "kube-api-burst", 100, "Requests to the API server in a burst.")
	klog.InitFlags(nil)
	flag.Parse()

	// The first SIGINT or SIGTERM cancels ctx: the controller drains and
	// exits. Signals are then no longer caught, so a second one kills it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	defer stop()

	if err := run(ctx, f); err != nil {
		klog.ErrorS(err, "Exiting")
		klog.Flush()
		os.Exit(1)
	}
	klog.Info("Stopped")
	klog.Flush()
}

func run(ctx context.Context, f flags) error {
	logger := klog.FromContext(ctx)
	cfg, err := restConfig(f)
	if err != nil {
		return err
	}
	kubeClient, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	fooClient, err := versioned.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dynamicClient, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ctl, err := controller.New(controller.Config{
		KubeClient:    kubeClient,
		FooClient:     fooClient,
		DynamicClient: dynamicClient,
		LoopOptions:   []kubehandler.Option{kubehandler.WithMetrics(registry)},
	})
	if err != nil {
		return err
	}

	var servers []*http.Server
	var serving sync.WaitGroup
	serve := func(what, addr string, handler http.Handler) error {
		if addr == "0" || addr == "" {
			return nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("serving %s: %w", what, err)
		}
		logger.Info("Serving "+what, "address", ln.Addr().String())
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		serving.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error(err, "Serving "+what)
			}
		})
		return nil
	}
	defer func() {
		// The controller has stopped: the endpoints go last.
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			_ = srv.Shutdown(shutdownCtx)
		}
		serving.Wait()
	}()

	metrics := http.NewServeMux()
	metrics.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	if err := serve("metrics", f.metricsAddr, metrics); err != nil {
		return err
	}
	if err := serve("health probes", f.probeAddr, probes(ctl)); err != nil {
		return err
	}

	logger.Info("Starting", "threadiness", f.threadiness, "server", cfg.Host)
	return ctl.Run(ctx, f.threadiness)
}

// probes serves /healthz (the process answers) and /readyz (the informers
// have synced).
func probes(ctl *controller.Controller) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ctl.HasSynced() {
			http.Error(w, "informers have not synced", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// restConfig loads the client configuration: --kubeconfig, $KUBECONFIG,
// ~/.kube/config or, in a Pod, the in-cluster configuration.
func restConfig(f flags) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the client configuration: %w", err)
	}
	cfg.QPS = float32(f.kubeAPIQPS)
	cfg.Burst = f.kubeAPIBurst
	return rest.AddUserAgent(cfg, controller.Name), nil
}
