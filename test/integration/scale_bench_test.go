package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kubehandler/kubehandler/internal/shard"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

// The workload of the ring scale benchmark (issue 19).
const (
	// scaleObjectsEnv scales the benchmark down for quick runs (make
	// bench-scale SCALE_N=5000); the default is scaleDefaultObjects.
	scaleObjectsEnv     = "SCALE_N"
	scaleDefaultObjects = 100_000
	scalePayload        = 300 // bytes of data per ConfigMap, beside its value
	scaleCreators       = 32  // parallel creates
	scaleSlots          = 16
	scaleWork           = time.Millisecond
	scaleThreadiness    = 4
	// The ring's Lease timings: the library's defaults, so that the Lease
	// writes at rest are what a user's ring costs.
	scaleLease, scaleRenew, scaleRetry = 15 * time.Second, 10 * time.Second, 2 * time.Second
	// scaleFormation is the ring's FormationDelay: the benchmark starts a
	// ring's processes within milliseconds of each other, so a quarter of
	// the default (RetryPeriod, 2 s) lets them find each other; the
	// default would add 1.5 s to every ring's start-up, of 1 replica and
	// of 4 alike.
	scaleFormation = 500 * time.Millisecond
	// scaleQuiet is how long no call must start before a ring is at rest;
	// scaleRest how long the Lease writes and LISTs are counted at rest.
	scaleQuiet = 3 * time.Second
	scaleRest  = 30 * time.Second
	// The rolling update: changes a second, and how long they run before
	// the first replica is replaced and after the last is ready.
	scaleChangeRate = 100
	scaleChangers   = 8
	scaleRollMargin = 5 * time.Second
	// scalePhase bounds every wait of the benchmark.
	scalePhase = 5 * time.Minute
)

var scaleRings = []int{1, 2, 4}

// scaleModes are the columns' modes, client-side first.
var scaleModes = []string{scaleClientSide, scaleServerSide}

func scaleObjects(b *testing.B) int {
	s := os.Getenv(scaleObjectsEnv)
	if s == "" {
		return scaleDefaultObjects
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 {
		b.Fatalf("%s=%q: want a number of objects, at least 100", scaleObjectsEnv, s)
	}
	return n
}

// scaleConfigMap is object i of the benchmark: a value, a payload, and the
// digest the handler would write, as if a controller had reconciled it
// before (a restart, a rolling update): the initial list costs a call per
// object and no write; a change costs a write of the digest and the call
// of that write's event.
func scaleConfigMap(ns string, i int) *corev1.ConfigMap {
	payload := strings.Repeat(fmt.Sprintf("%08x", i), scalePayload/8)
	data := map[string]string{"value": "0", "payload": payload}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: fmt.Sprint("cm-", i),
			Annotations: map[string]string{digestAnnotation: dataDigest(data)},
		},
		Data: data,
	}
}

// createScaleObjects creates n ConfigMaps in ns with scaleCreators at once,
// through a client of its own without client-side rate limit, and returns
// how long it took.
func createScaleObjects(b *testing.B, lab *kubelabtest.Lab, ns string, n int) time.Duration {
	b.Helper()
	cfg := lab.Config()
	cfg.QPS, cfg.Burst = 100_000, 100_000
	cfg.ContentType = runtime.ContentTypeProtobuf
	client := kubernetes.NewForConfigOrDie(cfg)
	cms := client.CoreV1().ConfigMaps(ns)
	began := time.Now()
	work := make(chan int)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range scaleCreators {
		wg.Go(func() {
			for i := range work {
				var err error
				for attempt := range 5 { // a busy server may time a request out
					_, err = cms.Create(b.Context(), scaleConfigMap(ns, i), metav1.CreateOptions{})
					if err == nil || apierrors.IsAlreadyExists(err) {
						err = nil
						break
					}
					time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
				}
				if err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("creating ConfigMaps: %v", firstErr)
	}
	return time.Since(began)
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// scaleObjectsIn lists the benchmark's ConfigMaps of ns: UID by name, and
// resourceVersion by UID.
func scaleObjectsIn(b *testing.B, client kubernetes.Interface, ns string) (uids map[string]string, rvs map[string]string) {
	b.Helper()
	l, err := client.CoreV1().ConfigMaps(ns).List(b.Context(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	uids, rvs = make(map[string]string, len(l.Items)), make(map[string]string, len(l.Items))
	for _, cm := range l.Items {
		if strings.HasPrefix(cm.Name, "cm-") {
			uids[cm.Name] = string(cm.UID)
			rvs[string(cm.UID)] = cm.ResourceVersion
		}
	}
	return uids, rvs
}

// requests is a scrape of the apiserver's apiserver_request_total, summed
// by resource and verb.
type requests map[[2]string]float64

// scrapeRequests reads the apiserver's own count of the requests it served.
func scrapeRequests(b *testing.B, client kubernetes.Interface) requests {
	b.Helper()
	raw, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(b.Context())
	if err != nil {
		b.Fatalf("scraping the apiserver's metrics: %v", err)
	}
	return parseRequests(raw)
}

// parseRequests sums apiserver_request_total by resource and verb, from
// the Prometheus text format.
func parseRequests(raw []byte) requests {
	out := requests{}
	s := bufio.NewScanner(bytes.NewReader(raw))
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		rest, ok := strings.CutPrefix(line, "apiserver_request_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		var resource, verb string
		for _, kv := range strings.Split(labels, ",") {
			k, val, _ := strings.Cut(kv, "=")
			val = strings.Trim(val, `"`)
			switch k {
			case "resource":
				resource = val
			case "verb":
				verb = val
			}
		}
		out[[2]string{resource, strings.ToUpper(verb)}] += v
	}
	return out
}

// rate returns the requests a second between two scrapes d apart, of
// resource ("" for all) with one of verbs.
func rate(before, after requests, d time.Duration, resource string, verbs ...string) float64 {
	n := 0.0
	for k, v := range after {
		if (resource == "" || k[0] == resource) && slices.Contains(verbs, k[1]) {
			n += v - before[k]
		}
	}
	return n / d.Seconds()
}

// Lease writes: the apiserver names a create POST, an update PUT.
var writeVerbs = []string{"POST", "PUT", "PATCH", "APPLY", "CREATE", "UPDATE"}

// scaleRun is what one ring of the benchmark measured.
type scaleRun struct {
	mode     string
	replicas int
	handled  time.Duration // from starting the processes until every object was handled once
	first    time.Duration // from starting the processes until the first call
	calls    int           // until the end of the rest
	// By replica: the memory before the informer started, the last sample
	// (its peaks cover start-up and rest), and after a GC at rest.
	base, last, gc []memory
	peakSlots      []int // the most slots each replica held at once
	// At rest, per second.
	leaseWrites, leaseLists, cmLists, lists float64
}

// runScaleRing starts a ring of n replicas of mode over the objects (rvs:
// resourceVersion by UID) in ns, measures it until it has been at rest for
// scaleRest, and returns its figures and the ring, still running.
func runScaleRing(b *testing.B, lab *kubelabtest.Lab, ns, mode string, n int, rvs map[string]string) (scaleRun, *ring) {
	b.Helper()
	r := newRing(b, lab, ns, fmt.Sprintf("scale-%s-%d", mode, n), replicaConfig{
		Lease: scaleLease, Renew: scaleRenew, Retry: scaleRetry, Work: scaleWork,
		Threadiness: scaleThreadiness, Slots: scaleSlots, Formation: scaleFormation, Scale: mode,
	})
	run := scaleRun{mode: mode, replicas: n}
	started := now()
	for range n {
		r.start()
	}
	// Polled once a second, not more: the check walks every call, on the
	// cores the ring runs on (the figure is the calls' own times).
	eventuallyEvery(b, scalePhase, time.Second, func() (bool, string) {
		var ok bool
		var dispatch time.Duration
		run.handled, dispatch, ok = r.ev.listed(rvs, started)
		run.first = run.handled - dispatch
		return ok, fmt.Sprintf("%d %s-side replicas: the initial list of %d objects not handled", n, mode, len(rvs))
	})
	r.waitBalanced(scalePhase)
	// At rest: balanced, and no call for a while.
	eventuallyEvery(b, scalePhase, time.Second, func() (bool, string) {
		last := r.ev.lastStart()
		return time.Since(time.Unix(0, last)) > scaleQuiet, "calls still start"
	})
	client := lab.Client()
	before := scrapeRequests(b, client)
	restFrom := time.Now()
	time.Sleep(scaleRest) // a measurement window at rest, not a synchronisation
	after := scrapeRequests(b, client)
	rest := time.Since(restFrom)
	run.leaseWrites = rate(before, after, rest, "leases", writeVerbs...)
	run.leaseLists = rate(before, after, rest, "leases", "LIST")
	run.cmLists = rate(before, after, rest, "configmaps", "LIST")
	run.lists = rate(before, after, rest, "", "LIST")

	// The heap after a GC, and the last sample of each replica.
	gcAt := now()
	for _, name := range r.live {
		_ = r.children[name].cmd.Process.Signal(syscall.SIGUSR1)
	}
	eventually(b, time.Minute, func() (bool, string) {
		for _, name := range r.live {
			if m, ok := r.ev.memoryOf(name, "gc"); !ok || m.at < gcAt {
				return false, fmt.Sprintf("%s did not report its heap after a GC", name)
			}
		}
		return true, ""
	})
	for _, name := range r.live {
		base, _ := r.ev.memoryOf(name, "base")
		last, _ := r.ev.memoryOf(name, "tick")
		gc, _ := r.ev.memoryOf(name, "gc")
		last.peakHeap, last.hwm = max(last.peakHeap, gc.peakHeap), max(last.hwm, gc.hwm)
		run.base, run.last, run.gc = append(run.base, base), append(run.last, last), append(run.gc, gc)
	}
	peak := r.slots.peakHeld()
	for _, name := range r.live {
		run.peakSlots = append(run.peakSlots, peak[name])
	}
	r.ev.mu.Lock()
	run.calls = len(r.ev.calls)
	r.ev.mu.Unlock()
	b.Logf("%d %s-side: every object handled after %s; %d calls; at rest %.2f Lease writes/s, %.2f LISTs/s",
		n, mode, run.handled.Round(time.Millisecond), run.calls, run.leaseWrites, run.lists)
	return run, r
}

// peakHeld returns, by holder, the most slots it held at once.
func (w *slotWatch) peakHeld() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	type edge struct {
		at     int64
		holder string
		delta  int
	}
	var edges []edge
	for _, h := range w.history {
		for i, x := range h {
			if x.holder == "" {
				continue
			}
			edges = append(edges, edge{x.at, x.holder, 1})
			if i+1 < len(h) {
				edges = append(edges, edge{h[i+1].at, x.holder, -1})
			}
		}
	}
	// At one instant, a slot leaves before it arrives elsewhere.
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].delta < edges[j].delta
	})
	held, peak := map[string]int{}, map[string]int{}
	for _, e := range edges {
		held[e.holder] += e.delta
		peak[e.holder] = max(peak[e.holder], held[e.holder])
	}
	return peak
}

// lastStart returns when the last call started (0: none).
func (ev *events) lastStart() int64 {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var last int64
	for _, c := range ev.calls {
		last = max(last, c.start)
	}
	return last
}

// memoryOf returns replica's last M line of kind what.
func (ev *events) memoryOf(replica, what string) (memory, bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	m, ok := ev.mem[replica][what]
	return m, ok
}

// readyAt returns when replica first reported ready.
func (ev *events) readyAt(replica string) (int64, bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	t, ok := ev.ready[replica]
	return t, ok
}

// change is one write of the rolling update's load.
type change struct {
	name    string
	written int64 // Unix nanoseconds, before the request was sent
}

// changer writes scaleChangeRate changes a second to random objects of
// ns, each carrying its write time, until stopped.
type changer struct {
	mu      sync.Mutex
	changes []change
	failed  int
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

func startChanger(client kubernetes.Interface, ns string, n int) *changer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &changer{stop: cancel}
	cms := client.CoreV1().ConfigMaps(ns)
	jobs := make(chan int)
	c.wg.Go(func() {
		defer close(jobs)
		t := time.NewTicker(time.Second / scaleChangeRate)
		defer t.Stop()
		for v := 1; ; v++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			select {
			case jobs <- v:
			default: // every changer busy: the rate drops, and says so
			}
		}
	})
	for range scaleChangers {
		c.wg.Go(func() {
			for v := range jobs {
				name := fmt.Sprint("cm-", rand.IntN(n))
				at := now()
				patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"%d"}},"data":{"value":"%d"}}`, writtenAnnotation, at, v)
				_, err := cms.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
				c.mu.Lock()
				if err == nil {
					c.changes = append(c.changes, change{name, at})
				} else if ctx.Err() == nil {
					c.failed++
				}
				c.mu.Unlock()
			}
		})
	}
	return c
}

func (c *changer) halt() []change {
	c.stop()
	c.wg.Wait()
	return c.changes
}

// latencies returns, for each change written in [from, to], the time from
// its write until the first call of its object that saw it or a later
// change, and how many changes no call saw.
func (ev *events) latencies(changes []change, uids map[string]string, from, to int64) (lat []time.Duration, unseen int) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	byUID := map[string][]*call{}
	for _, c := range ev.calls {
		if c.written > 0 {
			byUID[c.uid] = append(byUID[c.uid], c)
		}
	}
	for _, cs := range byUID {
		sort.Slice(cs, func(i, j int) bool { return cs[i].start < cs[j].start })
	}
	for _, ch := range changes {
		if ch.written < from || ch.written > to {
			continue
		}
		i := slices.IndexFunc(byUID[uids[ch.name]], func(c *call) bool { return c.written >= ch.written })
		if i < 0 {
			unseen++
			continue
		}
		lat = append(lat, time.Duration(byUID[uids[ch.name]][i].start-ch.written))
	}
	slices.Sort(lat)
	return lat, unseen
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(math.Ceil(p*float64(len(sorted))))-1)]
}

// rollResult is what the rolling update measured.
type rollResult struct {
	steps            []time.Duration // by replica replaced: SIGTERM until its replacement was ready
	took             time.Duration
	changes, failed  int
	rate             float64 // changes a second, achieved
	pairs            int     // overlapping calls for one UID
	firstOverlap     string
	notFinal         int
	notFinalExample  string
	p50, p99, maxLat time.Duration
	measured, unseen int
}

// roll replaces the replicas of r one at a time, as a Deployment's rolling
// update does (SIGTERM, start the replacement, wait until it is ready),
// under scaleChangeRate changes a second, and checks what it promises.
func roll(b *testing.B, lab *kubelabtest.Lab, r *ring, ns string, uids map[string]string) rollResult {
	b.Helper()
	client := lab.Client()
	ch := startChanger(client, ns, len(uids))
	defer ch.halt()
	time.Sleep(scaleRollMargin) // changes before the roll, handled by the old ring
	var res rollResult
	from := now()
	for _, old := range slices.Clone(r.live) {
		at := now()
		if err := r.children[old].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
		repl := r.start()
		eventually(b, scalePhase, func() (bool, string) {
			_, ready := r.ev.readyAt(repl)
			select {
			case <-r.children[old].done:
			default:
				return false, fmt.Sprintf("%s has not exited after SIGTERM", old)
			}
			return ready, fmt.Sprintf("%s, replacing %s, is not ready", repl, old)
		})
		r.wait(old, syscall.SIGTERM)
		step := time.Duration(now() - at)
		res.steps = append(res.steps, step)
		b.Logf("roll: %s replaced by %s in %s", old, repl, step.Round(time.Millisecond))
	}
	to := now()
	res.took = time.Duration(to - from)
	r.waitBalanced(scalePhase)
	time.Sleep(scaleRollMargin) // changes after the roll, on the new ring
	changes := ch.halt()
	res.changes, res.failed = len(changes), ch.failed
	if len(changes) > 0 {
		span := time.Duration(changes[len(changes)-1].written - changes[0].written)
		res.rate = float64(len(changes)) / span.Seconds()
	}

	// The final states are read again at every poll: the handler's own
	// writes (the digest of a change) come after the last change, and the
	// call of each write's event is the object's last.
	eventuallyEvery(b, scalePhase, 5*time.Second, func() (bool, string) {
		_, final := scaleObjectsIn(b, client, ns)
		res.notFinal, res.notFinalExample = r.ev.notFinal(final)
		return res.notFinal == 0, fmt.Sprintf("%d objects' last call did not see their final state, e.g. %s", res.notFinal, res.notFinalExample)
	})
	res.pairs, res.firstOverlap = r.ev.overlaps()
	lat, unseen := r.ev.latencies(changes, uids, from, to)
	res.measured, res.unseen = len(lat), unseen
	res.p50, res.p99 = percentile(lat, 0.50), percentile(lat, 0.99)
	if len(lat) > 0 {
		res.maxLat = lat[len(lat)-1]
	}
	return res
}

// kubelabMemory returns the RSS and peak RSS of the lab's processes: the
// supervisor (etcd runs in it) and its children (the apiserver).
func kubelabMemory(lab *kubelabtest.Lab) (etcd, apiserver memory) {
	b, err := os.ReadFile(filepath.Join(lab.Dir(), "kubelab.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return
	}
	etcd.rss, etcd.hwm = procStatusMemory(pid)
	// A child is listed under the thread that started it.
	var children []string
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		children = append(children, strings.Fields(string(b))...)
	}
	for _, f := range children {
		if c, err := strconv.Atoi(f); err == nil {
			rss, hwm := procStatusMemory(c)
			apiserver.rss += rss
			apiserver.hwm += hwm
		}
	}
	return etcd, apiserver
}

// commit names the code measured: the short commit, and whether the tree
// had changes.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if exec.Command("git", "diff", "--quiet", "HEAD", "--", "../..").Run() != nil {
		c += " (with uncommitted changes)"
	}
	return c
}

// BenchmarkRingScale is issue 19's ring scale benchmark (make
// bench-scale): SCALE_N ConfigMaps (100,000 by default, each with a few
// hundred bytes of data) on kubelab with the ShardedListAndWatch gate, a
// handler that works 1 ms and writes an annotation only when it differs,
// threadiness 4, 16 slots, replicas as child processes. Rings of 1, 2 and
// 4 replicas, with plain informers (client-side) and ShardedInformers
// (server-side), each measured from the processes' start until every
// object was handled once, then for 30 s at rest: each replica's memory,
// the Lease writes and LISTs a second as the apiserver counts them, calls
// per object. Then the 4-replica server-side ring is replaced one replica
// at a time under 100 changes a second. It prints the table and fails if
// a target was missed. It takes one iteration: run it with -benchtime=1x.
func BenchmarkRingScale(b *testing.B) {
	began := time.Now()
	n := scaleObjects(b)
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(b)
	created := createScaleObjects(b, lab, ns, n)
	uids, rvs := scaleObjectsIn(b, client, ns)
	if len(uids) != n {
		b.Fatalf("%d ConfigMaps listed, want %d", len(uids), n)
	}
	cms := client.CoreV1().ConfigMaps(ns)
	d, err := shard.Detect(b.Context(), cms.List)
	if err != nil {
		b.Fatal(err)
	}
	if !d.Honoured {
		b.Fatalf("the lab's apiserver ignores shard selectors (%s): run make bench-scale, or set %s=ShardedListAndWatch=true", d.Reason, labGatesEnv)
	}
	b.Logf("created %d ConfigMaps in %s (%.0f/s, %d at a time)", n, created.Round(time.Millisecond), float64(n)/created.Seconds(), scaleCreators)

	var runs []scaleRun
	var rolled rollResult
	for b.Loop() {
		for _, mode := range scaleModes {
			for _, replicas := range scaleRings {
				run, r := runScaleRing(b, lab, ns, mode, replicas, rvs)
				runs = append(runs, run)
				if mode == scaleServerSide && replicas == scaleRings[len(scaleRings)-1] {
					rolled = roll(b, lab, r, ns, uids)
				}
				r.stopAll()
			}
		}
	}
	etcd, apiserver := kubelabMemory(lab)

	rep := newScaleReport(n, created, runs, rolled)
	fmt.Printf("\nRing scale on kubelab (ShardedListAndWatch): %d ConfigMaps (%d B of data each), created in %s (%.0f/s, %d at a time); "+
		"%d slots, threadiness %d, a %s handler that writes an annotation only when it differs; "+
		"Lease timings %s/%s/%s, formation delay %s; ring of commit %s\n\n",
		n, scalePayload, created.Round(100*time.Millisecond), float64(n)/created.Seconds(), scaleCreators,
		scaleSlots, scaleThreadiness, scaleWork, scaleLease, scaleRenew, scaleRetry, scaleFormation, commit())
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	rep.print(w)
	w.Flush()
	fmt.Printf("\nkubelab at the end: etcd (in the supervisor) RSS %s MB, peak %s MB; kube-apiserver RSS %s MB, peak %s MB; the benchmark took %s\n",
		mb(etcd.rss), mb(etcd.hwm), mb(apiserver.rss), mb(apiserver.hwm), time.Since(began).Round(time.Second))
	b.ReportMetric(created.Seconds(), "create-s")
	b.ReportMetric(rep.speedup, "speedup-4-x")
	b.ReportMetric(rep.heapRatio, "heap-4-of-1-x")
	b.ReportMetric(rolled.p99.Seconds(), "roll-p99-s")
	b.ReportMetric(float64(rolled.pairs), "roll-overlaps")
	b.ReportMetric(0, "ns/op") // one iteration is the whole benchmark: not a figure
	if !rep.ok() {
		b.Error("a target was missed (see the rows marked MISSED)")
	}
}

func mb(n uint64) string { return fmt.Sprintf("%.0f", float64(n)/(1<<20)) }

// scaleReport is the benchmark's table, in the form make bench prints:
// a row per figure, a column per ring, and the target with ok or MISSED.
type scaleReport struct {
	columns   []string
	rows      []scaleRow
	speedup   float64
	heapRatio float64
}

type scaleRow struct {
	what   string
	values map[string]string // by column
	target string
	ok     bool
}

func column(mode string, replicas int) string { return fmt.Sprintf("%d %s", replicas, mode) }

func newScaleReport(n int, created time.Duration, runs []scaleRun, rolled rollResult) *scaleReport {
	r := &scaleReport{}
	byCol := map[string]scaleRun{}
	for _, run := range runs {
		c := column(run.mode, run.replicas)
		r.columns = append(r.columns, c)
		byCol[c] = run
	}
	each := func(f func(scaleRun) string) map[string]string {
		out := map[string]string{}
		for c, run := range byCol {
			out[c] = f(run)
		}
		return out
	}
	perReplica := func(f func(memory) uint64, of func(scaleRun) []memory) map[string]string {
		return each(func(run scaleRun) string {
			var s []string
			for _, m := range of(run) {
				s = append(s, mb(f(m)))
			}
			return strings.Join(s, " ")
		})
	}
	highest := func(ms []memory, f func(memory) uint64) uint64 {
		var h uint64
		for _, m := range ms {
			h = max(h, f(m))
		}
		return h
	}
	add := func(what string, values map[string]string, target string, ok bool) {
		r.rows = append(r.rows, scaleRow{what, values, target, ok})
	}
	one := func(mode string) scaleRun { return byCol[column(mode, 1)] }
	last := scaleRings[len(scaleRings)-1]
	server4, server1 := byCol[column(scaleServerSide, last)], one(scaleServerSide)

	add(fmt.Sprintf("start-up: process start until all %d objects handled once, s", n),
		each(func(run scaleRun) string { return fmt.Sprintf("%.1f", run.handled.Seconds()) }), "", true)
	add("  of which until the first call, s",
		each(func(run scaleRun) string { return fmt.Sprintf("%.1f", run.first.Seconds()) }), "", true)
	r.speedup = server1.handled.Seconds() / server4.handled.Seconds()
	add("  faster than 1 replica of its mode, x",
		each(func(run scaleRun) string {
			return fmt.Sprintf("%.2f", one(run.mode).handled.Seconds()/run.handled.Seconds())
		}), fmt.Sprintf("%d server >= 2.80", last), r.speedup >= 2.8)
	add("calls per object (start-up and rest)",
		each(func(run scaleRun) string { return fmt.Sprintf("%.2f", float64(run.calls)/float64(n)) }), "", true)
	add("peak heap per replica (start-up and rest), MB",
		perReplica(func(m memory) uint64 { return m.peakHeap }, func(run scaleRun) []memory { return run.last }), "", true)
	heapPeak := func(run scaleRun) uint64 { return highest(run.last, func(m memory) uint64 { return m.peakHeap }) }
	r.heapRatio = float64(heapPeak(server4)) / float64(heapPeak(server1))
	add("  highest, over 1 replica's of its mode, x",
		each(func(run scaleRun) string {
			return fmt.Sprintf("%.2f", float64(heapPeak(run))/float64(heapPeak(one(run.mode))))
		}), fmt.Sprintf("%d server <= 0.35", last), r.heapRatio <= 0.35)
	add("  most slots held at once, per replica",
		each(func(run scaleRun) string {
			var s []string
			for _, n := range run.peakSlots {
				s = append(s, fmt.Sprint(n))
			}
			return strings.Join(s, " ")
		}), "", true)
	add("heap after a GC at rest, per replica, MB",
		perReplica(func(m memory) uint64 { return m.heap }, func(run scaleRun) []memory { return run.gc }), "", true)
	add("peak RSS per replica, MB",
		perReplica(func(m memory) uint64 { return m.hwm }, func(run scaleRun) []memory { return run.last }), "", true)
	add("  of which before the informer started (heap, RSS), MB",
		each(func(run scaleRun) string {
			return fmt.Sprintf("%s, %s", mb(highest(run.base, func(m memory) uint64 { return m.heap })),
				mb(highest(run.base, func(m memory) uint64 { return m.rss })))
		}), "", true)
	add(fmt.Sprintf("at rest (%s): Lease writes/s", scaleRest),
		each(func(run scaleRun) string { return fmt.Sprintf("%.2f", run.leaseWrites) }), "", true)
	add("  Lease LISTs/s", each(func(run scaleRun) string { return fmt.Sprintf("%.2f", run.leaseLists) }), "", true)
	add("  ConfigMap LISTs/s", each(func(run scaleRun) string { return fmt.Sprintf("%.2f", run.cmLists) }), "", true)
	add("  LISTs/s, all resources", each(func(run scaleRun) string { return fmt.Sprintf("%.2f", run.lists) }), "", true)

	rc := column(scaleServerSide, last)
	only := func(v string) map[string]string { return map[string]string{rc: v} }
	steps := make([]string, len(rolled.steps))
	for i, s := range rolled.steps {
		steps[i] = fmt.Sprintf("%.1f", s.Seconds())
	}
	add(fmt.Sprintf("rolling update at %d changes/s: replica replaced and ready, s", scaleChangeRate), only(strings.Join(steps, " ")), "", true)
	add("  changes written (failed), per second", only(fmt.Sprintf("%d (%d), %.0f/s", rolled.changes, rolled.failed, rolled.rate)), "", true)
	overlaps := fmt.Sprint(rolled.pairs)
	add("  overlapping calls for one UID, pairs", only(overlaps), "0", rolled.pairs == 0)
	add("  every object's last call saw its final state", only(fmt.Sprint(rolled.notFinal == 0)), "true", rolled.notFinal == 0)
	add(fmt.Sprintf("  change-to-handled latency during the roll (%d changes, %d unseen): p50", rolled.measured, rolled.unseen),
		only(rolled.p50.Round(time.Millisecond).String()), "", true)
	add("  p99", only(rolled.p99.Round(time.Millisecond).String()), "<= 2s", rolled.p99 <= 2*time.Second && rolled.measured > 0)
	add("  max", only(rolled.maxLat.Round(time.Millisecond).String()), "", true)
	if rolled.pairs > 0 {
		fmt.Fprintf(os.Stderr, "first overlap: %s\n", rolled.firstOverlap)
	}
	if rolled.notFinal > 0 {
		fmt.Fprintf(os.Stderr, "not final, e.g. %s\n", rolled.notFinalExample)
	}
	return r
}

func (r *scaleReport) ok() bool {
	for _, row := range r.rows {
		if !row.ok {
			return false
		}
	}
	return true
}

func (r *scaleReport) print(w io.Writer) {
	fmt.Fprintf(w, "ring\t")
	for _, c := range r.columns {
		fmt.Fprintf(w, "%s\t", c)
	}
	fmt.Fprintf(w, "target\t\n")
	for _, row := range r.rows {
		status := ""
		if row.target != "" {
			status = "ok"
			if !row.ok {
				status = "MISSED"
			}
		}
		fmt.Fprintf(w, "%s\t", row.what)
		for _, c := range r.columns {
			fmt.Fprintf(w, "%s\t", row.values[c])
		}
		fmt.Fprintf(w, "%s %s\t\n", row.target, status)
	}
}
