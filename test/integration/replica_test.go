package integration

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr/funcr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcoordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubehandler/kubehandler"
)

// replicaEnv selects the replica mode of this test binary: TestMain runs
// runReplica instead of the tests. The freeze test starts its replicas so,
// as child processes it can stop with SIGSTOP.
const replicaEnv = "KUBEHANDLER_TEST_REPLICA"

// replicaConfig is what a replica is told through its environment.
type replicaConfig struct {
	Kubeconfig, Namespace, Identity string
	Lease, Renew, Retry, Work       time.Duration
	Threadiness                     int
}

func (c replicaConfig) environ() []string {
	return append(os.Environ(),
		replicaEnv+"="+c.Identity,
		"REPLICA_KUBECONFIG="+c.Kubeconfig,
		"REPLICA_NAMESPACE="+c.Namespace,
		"REPLICA_TIMINGS="+fmt.Sprintf("%d,%d,%d,%d,%d", c.Lease, c.Renew, c.Retry, c.Work, c.Threadiness),
	)
}

func replicaConfigFromEnv() (replicaConfig, error) {
	c := replicaConfig{
		Identity:   os.Getenv(replicaEnv),
		Kubeconfig: os.Getenv("REPLICA_KUBECONFIG"),
		Namespace:  os.Getenv("REPLICA_NAMESPACE"),
	}
	var lease, renew, retry, work int64
	if _, err := fmt.Sscanf(os.Getenv("REPLICA_TIMINGS"), "%d,%d,%d,%d,%d", &lease, &renew, &retry, &work, &c.Threadiness); err != nil {
		return c, fmt.Errorf("REPLICA_TIMINGS: %w", err)
	}
	c.Lease, c.Renew, c.Retry, c.Work = time.Duration(lease), time.Duration(renew), time.Duration(retry), time.Duration(work)
	return c, nil
}

// reporter writes a replica's events to stdout, one line each, for the
// test to collect. Times are the wall clock's, in Unix nanoseconds: one
// clock for all the processes of the machine.
//
//	S <replica> <uid> <time> <live>   a handler call started; live is 1 if its context was not cancelled yet
//	E <replica> <uid> <time>          it returned
//	R <replica> <time> <holder>       a read of the Lease showed another holder (as the client received it)
//	D <replica> <time>                the loop logged its step-down
//	X <replica> <time> <error>        Run returned
type reporter struct {
	mu      sync.Mutex
	replica string
}

func (r *reporter) emit(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func now() int64 { return time.Now().UnixNano() }

// runReplica is one replica of the freeze test: a loop with leader election
// on the namespace's ConfigMaps whose handler works for a while (or until
// its context is cancelled) and reports each call. It returns the process's
// exit code.
func runReplica() int {
	cfg, err := replicaConfigFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rep := &reporter{replica: cfg.Identity}
	restCfg, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	restCfg.QPS, restCfg.Burst = 500, 1000
	client := kubernetes.NewForConfigOrDie(restCfg)

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(cfg.Namespace))
	informer := factory.Core().V1().ConfigMaps().Informer()
	factory.Start(ctx.Done())
	defer factory.Shutdown()

	// The loop's log goes to stderr; its step-down is reported as well.
	logger := funcr.New(func(prefix, args string) {
		if strings.Contains(args, `"msg"="Stepping down`) {
			rep.emit("D %s %d", cfg.Identity, now())
		}
		fmt.Fprintln(os.Stderr, prefix, args)
	}, funcr.Options{})
	loop := kubehandler.NewEventLoop("freeze",
		kubehandler.WithLogger(logger),
		kubehandler.WithLeaderElection(kubehandler.LeaderElection{
			Client:    &watchedLeases{LeasesGetter: client.CoordinationV1(), identity: cfg.Identity, rep: rep},
			Namespace: cfg.Namespace, Name: "freeze", Identity: cfg.Identity,
			LeaseDuration: cfg.Lease, RenewDeadline: cfg.Renew, RetryPeriod: cfg.Retry,
		}))
	h := &kubehandler.DefaultHandler{Informer: informer, Name: "configmaps"}
	loop.Register(&workHandler{DefaultHandler: h, work: cfg.Work, rep: rep, identity: cfg.Identity})
	err = loop.Run(ctx, cfg.Threadiness)
	rep.emit("X %s %d %s", cfg.Identity, now(), strconv.Quote(fmt.Sprint(err)))
	return 0
}

// workHandler handles a ConfigMap's events by working for a while, as a
// reconcile that calls the API server would; it stops early when its
// context is cancelled, as a handler should.
type workHandler struct {
	*kubehandler.DefaultHandler
	work     time.Duration
	rep      *reporter
	identity string
}

func (h *workHandler) AddFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, namespace, name)
}

func (h *workHandler) UpdateFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, namespace, name)
}

func (h *workHandler) handle(ctx context.Context, namespace, name string) error {
	start := now()
	live := 0
	if ctx.Err() == nil {
		live = 1
	}
	uid := name
	if obj, ok, _ := h.Informer.GetStore().GetByKey(namespace + "/" + name); ok {
		uid = string(obj.(metav1.Object).GetUID())
	}
	h.rep.emit("S %s %s %d %d", h.identity, uid, start, live)
	t := time.NewTimer(h.work)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	h.rep.emit("E %s %s %d", h.identity, uid, now())
	return nil
}

// watchedLeases is the replica's Lease client: it reports every read that
// shows another holder, at the moment the response arrived (before the loop
// sees it).
type watchedLeases struct {
	typedcoordinationv1.LeasesGetter
	identity string
	rep      *reporter
}

func (w *watchedLeases) Leases(namespace string) typedcoordinationv1.LeaseInterface {
	return &watchedLease{LeaseInterface: w.LeasesGetter.Leases(namespace), w: w}
}

type watchedLease struct {
	typedcoordinationv1.LeaseInterface
	w *watchedLeases
}

func (l *watchedLease) Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error) {
	lease, err := l.LeaseInterface.Get(ctx, name, opts)
	if err == nil {
		at := now()
		if h := lease.Spec.HolderIdentity; h != nil && *h != "" && *h != l.w.identity {
			l.w.rep.emit("R %s %d %s", l.w.identity, at, *h)
		}
	}
	return lease, err
}
