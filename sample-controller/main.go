// Command sample-controller keeps, for each Foo (samplecontroller.kubehandler.dev/v1alpha1),
// a Deployment with the Foo's name and replicas, and deletes the Foo's
// dependent ConfigMaps when the Foo is deleted. See README.md.
//
// It runs until SIGINT or SIGTERM, then stops taking work, waits for the
// calls in flight (up to --drain-timeout) and exits; a second signal exits
// at once. With --leader-elect, replicas share the work through a Lease:
// one acts, the others stand by; a replica that loses the Lease exits 1.
// With --shard-ring, replicas split the Foos between them instead: each
// reconciles the Foos of the slots it holds, one Lease per slot.
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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/kubehandler/kubehandler"
	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/controller"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/generated/clientset/versioned"
)

type flags struct {
	kubeconfig      string
	threadiness     int
	metricsAddr     string
	probeAddr       string
	kubeAPIQPS      float64
	kubeAPIBurst    int
	handlerTimeout  time.Duration
	drainTimeout    time.Duration
	livenessTimeout time.Duration
	debugEndpoint   bool

	leaderElect   bool
	leaseName     string
	leaseNS       string
	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration

	shardRing          string
	shardSlots         int
	shardNS            string
	shardIdentity      string
	shardLeaseDuration time.Duration
	shardRenewDeadline time.Duration
	shardRetryPeriod   time.Duration
}

func main() {
	var f flags
	flag.StringVar(&f.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Without it: $KUBECONFIG, then ~/.kube/config, then the in-cluster configuration.")
	flag.IntVar(&f.threadiness, "threadiness", 2, "Number of Foos and Deployments handled at once.")
	flag.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", `Address to serve Prometheus metrics on, at /metrics; "0" disables it.`)
	flag.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", `Address to serve /healthz and /readyz on; "0" disables them.`)
	flag.Float64Var(&f.kubeAPIQPS, "kube-api-qps", 50, "Requests per second to the API server, on average.")
	flag.IntVar(&f.kubeAPIBurst, "kube-api-burst", 100, "Requests to the API server in a burst.")
	flag.DurationVar(&f.handlerTimeout, "handler-timeout", time.Minute, "Deadline of one handler call; a call that overruns is retried. 0: none.")
	flag.DurationVar(&f.drainTimeout, "drain-timeout", 25*time.Second, "On shutdown, how long to wait for the calls in flight. 0: as long as they take.")
	flag.DurationVar(&f.livenessTimeout, "liveness-timeout", 5*time.Minute, "/healthz fails while a handler call has run longer than this. 0: never.")
	flag.BoolVar(&f.debugEndpoint, "debug-endpoint", false, "Serve kubehandler's debug view (keys waiting, calls in flight, failing keys with their errors) at /debug/kubehandler on the probe port. Off by default: error texts may carry sensitive details, and the port is unauthenticated.")
	flag.BoolVar(&f.leaderElect, "leader-elect", false, "Elect a leader among replicas on a Lease: only the leader acts; the others keep their caches warm to take over.")
	flag.StringVar(&f.leaseName, "leader-elect-resource-name", controller.Name, "Name of the Lease.")
	flag.StringVar(&f.leaseNS, "leader-elect-resource-namespace", "", "Namespace of the Lease; in a Pod, its namespace by default.")
	flag.DurationVar(&f.leaseDuration, "leader-elect-lease-duration", kubehandler.DefaultLeaseDuration, "How long standbys wait after the leader's last renewal before they take over.")
	flag.DurationVar(&f.renewDeadline, "leader-elect-renew-deadline", kubehandler.DefaultRenewDeadline, "How long the leader tries to renew before it gives up; shorter than the lease duration.")
	flag.DurationVar(&f.retryPeriod, "leader-elect-retry-period", kubehandler.DefaultRetryPeriod, "Time between attempts to acquire or renew the Lease.")
	flag.StringVar(&f.shardRing, "shard-ring", "", "Name of the ring of replicas that split the Foos between them, in slots held on Leases named after it; every replica of the controller uses the same. Empty: no sharding. Excludes --leader-elect.")
	flag.IntVar(&f.shardSlots, "shard-slots", 16, "Number of slots of the ring: a power of two, the same on every replica, at least the number of replicas that should get work.")
	flag.StringVar(&f.shardNS, "shard-namespace", "", "Namespace of the ring's Leases; in a Pod, its namespace by default.")
	flag.StringVar(&f.shardIdentity, "shard-identity", "", "Name of this replica in the ring's Leases; unique per replica. Default: $POD_NAME, else the hostname, with a random suffix per process.")
	flag.DurationVar(&f.shardLeaseDuration, "shard-lease-duration", kubehandler.DefaultLeaseDuration, "How long after a replica's last renewal the others take over its slots, when it died rather than stopped: whole seconds.")
	flag.DurationVar(&f.shardRenewDeadline, "shard-renew-deadline", kubehandler.DefaultRenewDeadline, "How long a replica tries to renew a slot's Lease before it stops reconciling the slot; shorter than the lease duration.")
	flag.DurationVar(&f.shardRetryPeriod, "shard-retry-period", kubehandler.DefaultRetryPeriod, "Time between renewals of this replica's membership Lease, and attempts to take the slots it should hold.")
	klog.InitFlags(nil)
	flag.Parse()

	// The first SIGINT or SIGTERM cancels ctx: the controller drains and
	// exits. Signals are then no longer caught, so a second one kills it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	defer stop()

	if err := run(ctx, f); err != nil {
		if errors.Is(err, kubehandler.ErrLeaderElectionLost) {
			// Standing for election again takes a new process.
			klog.ErrorS(err, "Lost the lease; exiting so that a restart stands for election again")
		} else {
			klog.ErrorS(err, "Exiting")
		}
		klog.Flush()
		os.Exit(1)
	}
	klog.Info("Stopped")
	klog.Flush()
}

func run(ctx context.Context, f flags) error {
	logger := klog.FromContext(ctx)
	if f.debugEndpoint && f.probeAddr == "0" {
		return errors.New("--debug-endpoint is served on the probe port: it needs --health-probe-bind-address")
	}
	if f.leaderElect && f.shardRing != "" {
		return errors.New("--leader-elect and --shard-ring exclude each other: a ring shares the Foos between its replicas, leader election gives them all to one")
	}
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
	loopOptions := []kubehandler.Option{
		kubehandler.WithMetrics(registry),
		kubehandler.WithHandlerTimeout(f.handlerTimeout),
		kubehandler.WithDrainTimeout(f.drainTimeout),
		kubehandler.WithLivenessTimeout(f.livenessTimeout),
	}
	if f.leaderElect {
		le, err := leaderElection(f, kubeClient)
		if err != nil {
			return err
		}
		loopOptions = append(loopOptions, kubehandler.WithLeaderElection(le))
	}
	var shardingCfg *kubehandler.Sharding
	if f.shardRing != "" {
		s, err := sharding(f, kubeClient)
		if err != nil {
			return err
		}
		shardingCfg = &s
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := samplev1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	recorder, stopRecorder := kubehandler.NewEventRecorder(kubeClient.CoreV1(), scheme, controller.Name)
	defer stopRecorder() // after the controller has stopped: deferred first, runs last

	ctl, err := controller.New(controller.Config{
		KubeClient:    kubeClient,
		FooClient:     fooClient,
		DynamicClient: dynamicClient,
		LoopOptions:   loopOptions,
		EventRecorder: recorder,
		Sharding:      shardingCfg,
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
	probes := http.NewServeMux()
	probes.Handle("/healthz", kubehandler.ProbeHandler(ctl.Liveness))
	probes.Handle("/readyz", kubehandler.ProbeHandler(ctl.Readiness))
	if f.debugEndpoint {
		probes.Handle("/debug/kubehandler", ctl.DebugHandler())
	}
	if err := serve("health probes", f.probeAddr, probes); err != nil {
		return err
	}

	keysAndValues := []any{"threadiness", f.threadiness, "server", cfg.Host, "leaderElection", f.leaderElect}
	if shardingCfg != nil {
		keysAndValues = append(keysAndValues, "ring", shardingCfg.Namespace+"/"+shardingCfg.Name, "slots", shardingCfg.Slots, "identity", shardingCfg.Identity)
	}
	logger.Info("Starting", keysAndValues...)
	return ctl.Run(ctx, f.threadiness)
}

// leaderElection configures the Lease the replicas compete for.
func leaderElection(f flags, client kubernetes.Interface) (kubehandler.LeaderElection, error) {
	namespace := f.leaseNS
	if namespace == "" {
		var ok bool
		if namespace, ok = podNamespace(); !ok {
			return kubehandler.LeaderElection{}, errors.New("--leader-elect outside a Pod needs --leader-elect-resource-namespace")
		}
	}
	return kubehandler.LeaderElection{
		Client:        client.CoordinationV1(),
		Namespace:     namespace,
		Name:          f.leaseName,
		LeaseDuration: f.leaseDuration,
		RenewDeadline: f.renewDeadline,
		RetryPeriod:   f.retryPeriod,
	}, nil
}

// sharding configures the ring of replicas that split the Foos between
// them (--shard-*). controller.New makes the Deployment handler secondary.
func sharding(f flags, client kubernetes.Interface) (kubehandler.Sharding, error) {
	namespace := f.shardNS
	if namespace == "" {
		var ok bool
		if namespace, ok = podNamespace(); !ok {
			return kubehandler.Sharding{}, errors.New("--shard-ring outside a Pod needs --shard-namespace")
		}
	}
	identity := f.shardIdentity
	if identity == "" {
		// Unique per process, as leader election's default: a replica
		// restarted after a crash joins as a new member, and its
		// predecessor's slots move once their Leases expire.
		identity = os.Getenv("POD_NAME")
		if identity == "" {
			var err error
			if identity, err = os.Hostname(); err != nil {
				return kubehandler.Sharding{}, fmt.Errorf("--shard-ring without --shard-identity or $POD_NAME: %w", err)
			}
		}
		identity += "_" + rand.String(8)
	}
	return kubehandler.Sharding{
		Client:        client.CoordinationV1(),
		Namespace:     namespace,
		Name:          f.shardRing,
		Identity:      identity,
		Slots:         f.shardSlots,
		LeaseDuration: f.shardLeaseDuration,
		RenewDeadline: f.shardRenewDeadline,
		RetryPeriod:   f.shardRetryPeriod,
	}, nil
}

// podNamespace returns, in a Pod, the Pod's namespace, from its
// ServiceAccount's token mount.
func podNamespace() (string, bool) {
	data, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(data)), true
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
