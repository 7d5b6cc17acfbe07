package integration

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr/funcr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcoordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubehandler/kubehandler"
)

// replicaEnv selects the replica mode of this test binary: TestMain runs
// runReplica instead of the tests. The freeze test and the ring test start
// their replicas so, as child processes they can stop with SIGSTOP, SIGTERM
// or SIGKILL.
const replicaEnv = "KUBEHANDLER_TEST_REPLICA"

// replicaConfig is what a replica is told through its environment.
type replicaConfig struct {
	Kubeconfig, Namespace, Identity string
	Lease, Renew, Retry, Work       time.Duration
	Threadiness                     int
	// Ring, when set, makes the replica a member of the ring of this name
	// with Slots slots (WithSharding) instead of a candidate for leader
	// election.
	Ring      string
	Slots     int
	Formation time.Duration // Sharding.FormationDelay; 0: the default
	// Scale, when set, makes the replica one of the scale benchmark's
	// (scale_replica_test.go): its handler works 1 ms and writes an
	// annotation when it differs, it reports its readiness and memory,
	// and its informer is a ShardedInformer ("server") or a plain one
	// ("client").
	Scale string
}

func (c replicaConfig) environ() []string {
	return append(os.Environ(),
		replicaEnv+"="+c.Identity,
		"REPLICA_KUBECONFIG="+c.Kubeconfig,
		"REPLICA_NAMESPACE="+c.Namespace,
		"REPLICA_TIMINGS="+fmt.Sprintf("%d,%d,%d,%d,%d", c.Lease, c.Renew, c.Retry, c.Work, c.Threadiness),
		"REPLICA_RING="+fmt.Sprintf("%s,%d,%d", c.Ring, c.Slots, c.Formation),
		"REPLICA_SCALE="+c.Scale,
	)
}

func replicaConfigFromEnv() (replicaConfig, error) {
	c := replicaConfig{
		Identity:   os.Getenv(replicaEnv),
		Kubeconfig: os.Getenv("REPLICA_KUBECONFIG"),
		Namespace:  os.Getenv("REPLICA_NAMESPACE"),
		Scale:      os.Getenv("REPLICA_SCALE"),
	}
	var lease, renew, retry, work int64
	if _, err := fmt.Sscanf(os.Getenv("REPLICA_TIMINGS"), "%d,%d,%d,%d,%d", &lease, &renew, &retry, &work, &c.Threadiness); err != nil {
		return c, fmt.Errorf("REPLICA_TIMINGS: %w", err)
	}
	c.Lease, c.Renew, c.Retry, c.Work = time.Duration(lease), time.Duration(renew), time.Duration(retry), time.Duration(work)
	ring, slots, ok := strings.Cut(os.Getenv("REPLICA_RING"), ",")
	if !ok {
		return c, fmt.Errorf("REPLICA_RING: %q, want name,slots,formation", os.Getenv("REPLICA_RING"))
	}
	c.Ring = ring
	if ring != "" {
		var formation int64
		if _, err := fmt.Sscanf(slots, "%d,%d", &c.Slots, &formation); err != nil {
			return c, fmt.Errorf("REPLICA_RING: %w", err)
		}
		c.Formation = time.Duration(formation)
	}
	return c, nil
}

// reporter writes a replica's events to stdout, one line each, for the
// test to collect. Times are the wall clock's, in Unix nanoseconds: one
// clock for all the processes of the machine.
//
//	S <replica> <uid> <time> <live> <rv> <seq> [<written>]
//	                                  a handler call started; live is 1 if its context was not cancelled yet,
//	                                  rv is the resourceVersion of its Event's Object, seq numbers the
//	                                  replica's calls; the scale replica adds when the object's last change
//	                                  was written (its annotation, Unix nanoseconds; - if none)
//	E <replica> <uid> <time> <seq> <done>      call seq returned; done is 1 if it worked its full time (0: its
//	                                           context was cancelled first)
//	R <replica> <time> <holder>       a read of the Lease showed another holder (as the client received it)
//	D <replica> <time>                the loop logged its step-down
//	X <replica> <time> <error>        Run returned
//	Y <replica> <time>                the loop became ready (Readiness passed) for the first time (scale replica)
//	M <replica> <time> <what> <heap> <peak heap> <rss> <peak rss>
//	                                  memory (scale replica): what is base (before the informer started), tick
//	                                  (every second) or gc (after a GC, on SIGUSR1); heap is the bytes of heap
//	                                  objects, peak the highest sampled since the start, rss and peak rss
//	                                  are /proc's VmRSS and VmHWM, all in bytes
type reporter struct {
	mu      sync.Mutex
	replica string
	seq     atomic.Int64 // the last call's number
}

func (r *reporter) emit(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func now() int64 { return time.Now().UnixNano() }

// runReplica is one replica of the freeze test or the ring test: a loop on
// the namespace's ConfigMaps, with leader election or (cfg.Ring) in a ring
// of WithSharding, whose handler works for a while (or until its context is
// cancelled) and reports each call. It returns the process's exit code.
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
	var mem *memoryReporter
	if cfg.Scale != "" {
		// What the process costs before its cache.
		mem = startMemoryReporter(ctx, rep)
		defer mem.stop()
	}
	var informer cache.SharedIndexInformer
	if cfg.Scale == scaleServerSide {
		sharded, err := newShardedConfigMapInformer(client, cfg.Namespace)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		var informers sync.WaitGroup
		informers.Go(func() { sharded.RunWithContext(ctx) })
		defer informers.Wait()
		informer = sharded
	} else {
		factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(cfg.Namespace))
		informer = factory.Core().V1().ConfigMaps().Informer()
		factory.Start(ctx.Done())
		defer factory.Shutdown()
	}

	// The loop's log goes to stderr; its step-down is reported as well.
	logger := funcr.New(func(prefix, args string) {
		if strings.Contains(args, `"msg"="Stepping down`) {
			rep.emit("D %s %d", cfg.Identity, now())
		}
		fmt.Fprintln(os.Stderr, prefix, args)
	}, funcr.Options{})
	name, coordination := "freeze", kubehandler.WithLeaderElection(kubehandler.LeaderElection{
		Client:    &watchedLeases{LeasesGetter: client.CoordinationV1(), identity: cfg.Identity, rep: rep},
		Namespace: cfg.Namespace, Name: "freeze", Identity: cfg.Identity,
		LeaseDuration: cfg.Lease, RenewDeadline: cfg.Renew, RetryPeriod: cfg.Retry,
	})
	if cfg.Ring != "" {
		// A ring reads many Leases held by others: no R lines.
		name, coordination = "ring", kubehandler.WithSharding(kubehandler.Sharding{
			Client: client.CoordinationV1(), Namespace: cfg.Namespace, Name: cfg.Ring,
			Identity: cfg.Identity, Slots: cfg.Slots,
			LeaseDuration: cfg.Lease, RenewDeadline: cfg.Renew, RetryPeriod: cfg.Retry,
			FormationDelay: cfg.Formation,
		})
	}
	loop := kubehandler.NewEventLoop(name, kubehandler.WithLogger(logger), coordination)
	h := &kubehandler.DefaultHandler{Informer: informer, Name: "configmaps"}
	if cfg.Scale != "" {
		loop.Register(&scaleHandler{DefaultHandler: h, client: client, work: cfg.Work, rep: rep, identity: cfg.Identity})
		go reportReady(ctx, loop, rep, cfg.Identity)
	} else {
		loop.Register(&workHandler{DefaultHandler: h, work: cfg.Work, rep: rep, identity: cfg.Identity})
	}
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
	start, live := now(), liveFlag(ctx)
	obj, _ := callObject(ctx, h.Informer, namespace, name).(metav1.Object)
	uid, rv := name, "-"
	if obj != nil {
		uid, rv = string(obj.GetUID()), obj.GetResourceVersion()
	}
	seq := h.rep.seq.Add(1)
	h.rep.emit("S %s %s %d %d %s %d", h.identity, uid, start, live, rv, seq)
	done := 1
	t := time.NewTimer(h.work)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		done = 0
	}
	h.rep.emit("E %s %s %d %d %d", h.identity, uid, now(), seq, done)
	return nil
}

// liveFlag is a call's live field in its S line: 1 if its context was not
// cancelled when it started.
func liveFlag(ctx context.Context) int {
	if ctx.Err() == nil {
		return 1
	}
	return 0
}

// callObject returns the object a call of the handler over informer is for:
// its Event's (the state it handles), else the cache's; nil if neither.
func callObject(ctx context.Context, informer cache.SharedInformer, namespace, name string) interface{} {
	if ev, ok := kubehandler.EventFromContext(ctx); ok && ev.Object != nil {
		return ev.Object
	}
	if cached, ok, _ := informer.GetStore().GetByKey(namespace + "/" + name); ok {
		return cached
	}
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
