package integration

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"os/signal"
	goruntime "runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
)

// The scale benchmark's replicas (scale_bench_test.go): replicaConfig.Scale
// says which informer they run.
const (
	scaleServerSide = "server" // a ShardedInformer: the server's shard selectors
	scaleClientSide = "client" // a plain informer of every object, filtered by the loop
)

// The annotations of the scale benchmark's ConfigMaps: the handler keeps
// digestAnnotation equal to the digest of the data (and writes only when it
// differs); every change the benchmark makes carries its write time in
// writtenAnnotation, so the handler can say how old the state it sees is.
const (
	digestAnnotation  = "bench.kubehandler.io/digest"
	writtenAnnotation = "bench.kubehandler.io/written-at"
)

// dataDigest is what the scale handler writes into digestAnnotation: the
// FNV-1a hash of the data, keys in order.
func dataDigest(data map[string]string) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := fnv.New64a()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, data[k])
	}
	return strconv.FormatUint(h.Sum64(), 16)
}

// newShardedConfigMapInformer returns a ShardedInformer of the ConfigMaps
// of ns, as a controller would build one.
func newShardedConfigMapInformer(client kubernetes.Interface, ns string) (*kubehandler.ShardedInformer, error) {
	cms := client.CoreV1().ConfigMaps(ns)
	return kubehandler.NewShardedInformer(kubehandler.ShardedInformerConfig{
		List:     func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return cms.List(ctx, o) },
		Watch:    func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return cms.Watch(ctx, o) },
		Client:   client,
		Object:   &corev1.ConfigMap{},
		Indexers: cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
	})
}

// scaleHandler is the scale benchmark's handler: it works for a while (1
// ms), then makes the object's digest annotation match its data, writing
// only when it differs, as a controller that records what it reconciled
// does. It reports each call as workHandler does, with the write time of
// the change it sees.
type scaleHandler struct {
	*kubehandler.DefaultHandler
	client   kubernetes.Interface
	work     time.Duration
	rep      *reporter
	identity string
}

func (h *scaleHandler) AddFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, namespace, name)
}

func (h *scaleHandler) UpdateFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, namespace, name)
}

func (h *scaleHandler) handle(ctx context.Context, namespace, name string) error {
	start, live := now(), liveFlag(ctx)
	cm, _ := callObject(ctx, h.Informer, namespace, name).(*corev1.ConfigMap)
	if cm == nil {
		return nil // gone
	}
	written := cm.Annotations[writtenAnnotation]
	if written == "" {
		written = "-"
	}
	seq := h.rep.seq.Add(1)
	h.rep.emit("S %s %s %d %d %s %d %s", h.identity, cm.UID, start, live, cm.ResourceVersion, seq, written)
	err := h.reconcile(ctx, cm)
	done := 1
	if err != nil || ctx.Err() != nil {
		done = 0
	}
	h.rep.emit("E %s %s %d %d %d", h.identity, cm.UID, now(), seq, done)
	return err
}

// reconcile works, then writes the digest if it differs. A conflict or a
// deleted object is no failure: a newer event comes, or none is needed.
func (h *scaleHandler) reconcile(ctx context.Context, cm *corev1.ConfigMap) error {
	t := time.NewTimer(h.work)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return nil
	}
	want := dataDigest(cm.Data)
	if cm.Annotations[digestAnnotation] == want {
		return nil
	}
	updated := cm.DeepCopy() // the cache's object is shared
	if updated.Annotations == nil {
		updated.Annotations = map[string]string{}
	}
	updated.Annotations[digestAnnotation] = want
	_, err := h.client.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, updated, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) || ctx.Err() != nil {
		return nil
	}
	return err
}

// reportReady reports the first time loop's readiness check passes.
func reportReady(ctx context.Context, loop kubehandler.EventLoop, rep *reporter, identity string) {
	ready := kubehandler.Readiness(loop)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if ready(nil) == nil {
			rep.emit("Y %s %d", identity, now())
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// memoryReporter samples the heap every 10 ms, keeping the highest, and
// reports it (M lines) with the process's RSS: once at the start, every
// second, and after a GC whenever the process gets SIGUSR1.
type memoryReporter struct {
	rep    *reporter
	cancel context.CancelFunc
	wg     sync.WaitGroup
	peak   uint64 // written by the sampler only
}

func startMemoryReporter(ctx context.Context, rep *reporter) *memoryReporter {
	ctx, cancel := context.WithCancel(ctx)
	m := &memoryReporter{rep: rep, cancel: cancel}
	m.peak = heapObjects()
	m.emit("base")
	gc := make(chan os.Signal, 1)
	signal.Notify(gc, syscall.SIGUSR1)
	m.wg.Go(func() {
		defer signal.Stop(gc)
		sample := time.NewTicker(10 * time.Millisecond)
		defer sample.Stop()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-sample.C:
				m.peak = max(m.peak, heapObjects())
			case <-tick.C:
				m.emit("tick")
			case <-gc:
				m.peak = max(m.peak, heapObjects())
				goruntime.GC()
				m.emit("gc")
			}
		}
	})
	return m
}

func (m *memoryReporter) emit(what string) {
	heap := heapObjects()
	rss, hwm := procMemory()
	m.rep.emit("M %s %d %s %d %d %d %d", m.rep.replica, now(), what, heap, max(m.peak, heap), rss, hwm)
}

func (m *memoryReporter) stop() {
	m.cancel()
	m.wg.Wait()
}

// heapObjects returns the bytes of heap objects, live or not yet swept
// (what hack/bench samples too).
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// procMemory returns this process's resident set and its peak, in bytes,
// 0 where /proc cannot tell.
func procMemory() (rss, hwm uint64) {
	return procStatusMemory(os.Getpid())
}

// procStatusMemory reads VmRSS and VmHWM of process pid from /proc.
func procStatusMemory(pid int) (rss, hwm uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm
}
