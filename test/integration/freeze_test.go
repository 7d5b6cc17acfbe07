package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kubehandler/kubehandler/kubelabtest"
)

// The scenario of the freeze test (issue "Never two leaders").
const (
	freezeLease       = 3 * time.Second
	freezeRenew       = 2 * time.Second
	freezeRetry       = 500 * time.Millisecond
	freezeObjects     = 300
	freezeWork        = 20 * time.Millisecond
	freezeThreadiness = 4
	freezeFor         = 5 * time.Second
	freezeReplicas    = 3
)

// call is one handler call of one replica, as it reported it.
type call struct {
	replica, uid string
	rv           string // the resourceVersion of the object it was called with
	start, end   int64  // Unix nanoseconds; end is MaxInt64 if it never reported one
	live         bool   // its context was not cancelled when it started
	done         bool   // it returned having worked its full time, its context not cancelled
	killed       bool   // it never returned: its replica was killed, at end
	written      int64  // when the change it saw was written (scale replicas; 0 if unknown)
}

// memory is a replica's M line: bytes of heap now and at most since its
// start, its RSS now and at most.
type memory struct {
	at                       int64
	heap, peakHeap, rss, hwm uint64
}

// events collects what the replicas report (see reporter in replica_test.go).
type events struct {
	mu    sync.Mutex
	calls []*call
	open  map[string]*call // replica/seq: the calls in flight
	reads map[string][]int64
	downs map[string][]int64
	exits map[string]string
	ready map[string]int64             // when each replica first reported ready
	mem   map[string]map[string]memory // by replica, the last M line of each kind
}

func newEvents() *events {
	return &events{open: map[string]*call{}, reads: map[string][]int64{}, downs: map[string][]int64{}, exits: map[string]string{},
		ready: map[string]int64{}, mem: map[string]map[string]memory{}}
}

func (ev *events) add(line string) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	replica := f[1]
	switch f[0] {
	case "S":
		if len(f) < 7 {
			return
		}
		t, _ := strconv.ParseInt(f[3], 10, 64)
		c := &call{replica: replica, uid: f[2], rv: f[5], start: t, end: math.MaxInt64, live: f[4] == "1"}
		if len(f) > 7 {
			c.written, _ = strconv.ParseInt(f[7], 10, 64)
		}
		ev.calls = append(ev.calls, c)
		ev.open[replica+"/"+f[6]] = c
	case "E":
		if len(f) < 6 {
			return
		}
		t, _ := strconv.ParseInt(f[3], 10, 64)
		if c := ev.open[replica+"/"+f[4]]; c != nil {
			c.end, c.done = t, f[5] == "1"
			delete(ev.open, replica+"/"+f[4])
		}
	case "R":
		t, _ := strconv.ParseInt(f[2], 10, 64)
		ev.reads[replica] = append(ev.reads[replica], t)
	case "D":
		t, _ := strconv.ParseInt(f[2], 10, 64)
		ev.downs[replica] = append(ev.downs[replica], t)
	case "X":
		ev.exits[replica] = strings.Join(f[3:], " ")
	case "Y":
		t, _ := strconv.ParseInt(f[2], 10, 64)
		ev.ready[replica] = t
	case "M":
		if len(f) < 8 {
			return
		}
		var m memory
		m.at, _ = strconv.ParseInt(f[2], 10, 64)
		for i, v := range []*uint64{&m.heap, &m.peakHeap, &m.rss, &m.hwm} {
			*v, _ = strconv.ParseUint(f[4+i], 10, 64)
		}
		if ev.mem[replica] == nil {
			ev.mem[replica] = map[string]memory{}
		}
		ev.mem[replica][f[3]] = m
	}
}

// started counts the calls replica started after t.
func (ev *events) started(replica string, after int64) int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := 0
	for _, c := range ev.calls {
		if c.replica == replica && c.start > after {
			n++
		}
	}
	return n
}

// killed ends the calls replica had in flight when it was killed, at the
// time at (when it was known dead): they never report their end.
func (ev *events) killed(replica string, at int64) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for k, c := range ev.open {
		if c.replica == replica {
			c.end, c.killed = at, true
			delete(ev.open, k)
		}
	}
}

func (ev *events) exited(replica string) (string, bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	e, ok := ev.exits[replica]
	return e, ok
}

// keepPatching patches the ConfigMaps cm-0 to cm-<objects-1> of ns, one
// after another, every few milliseconds, until the function it returns is
// called; that one returns once the writes stopped, and may be called
// again.
func keepPatching(client kubernetes.Interface, ns string, objects int) (stop func()) {
	cms := client.CoreV1().ConfigMaps(ns)
	ctx, cancel := context.WithCancel(context.Background())
	var writers sync.WaitGroup
	writers.Go(func() {
		for v := 1; ctx.Err() == nil; v++ {
			patch := fmt.Sprintf(`{"data":{"value":%q}}`, strconv.Itoa(v))
			_, _ = cms.Patch(ctx, fmt.Sprint("cm-", v%objects), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			time.Sleep(3 * time.Millisecond) // a write rate, not a synchronisation
		}
	})
	return func() {
		cancel()
		writers.Wait()
	}
}

// child is a replica process.
type child struct {
	name     string
	cmd      *exec.Cmd
	stderr   string // its log file
	done     chan struct{}
	exitedAt int64 // when it was reaped (Unix nanoseconds); read after done
}

func startChild(t testing.TB, cfg replicaConfig, ev *events) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = cfg.environ()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), cfg.Identity+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{name: cfg.Identity, cmd: cmd, stderr: logPath, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			ev.add(s.Text())
		}
		_ = cmd.Wait()
		c.exitedAt = now()
		logFile.Close()
	}()
	t.Cleanup(func() {
		// Resumed, asked to stop, killed if it does not.
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("log of %s (tail):\n%s", c.name, tailLines(b, 30))
		}
	})
	return c
}

func tailLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

func leaseHolder(ctx context.Context, client kubernetes.Interface, ns string) string {
	l, err := client.CoordinationV1().Leases(ns).Get(ctx, "freeze", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// A leader frozen (SIGSTOP) for longer than its lease, with two standbys
// and 300 ConfigMaps changing (the scenario of the issue "Never two
// leaders"): a standby takes over; when the old leader resumes it steps
// down, starts no call after its first read of the new holder and none with
// a live context after its step-down, and Run returns ErrLeaderElectionLost.
// The calls of two replicas that overlap for one object are only those the
// old leader had in flight when it froze: at most one per worker. On the
// code before the change (workers stopped only when client-go's elector
// returned) the old leader went on starting calls for its renew deadline.
func TestFrozenLeaderStepsDown(t *testing.T) {
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	ctx := t.Context()

	cms := client.CoreV1().ConfigMaps(ns)
	for i := range freezeObjects {
		if _, err := cms.Create(ctx, configMap(ns, fmt.Sprint("cm-", i), 0), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Every object keeps changing, one write every few milliseconds.
	stopWriting := keepPatching(client, ns, freezeObjects)
	defer stopWriting()

	ev := newEvents()
	children := map[string]*child{}
	for i := range freezeReplicas {
		name := fmt.Sprint("replica-", i)
		children[name] = startChild(t, replicaConfig{
			Kubeconfig: lab.KubeconfigPath(), Namespace: ns, Identity: name,
			Lease: freezeLease, Renew: freezeRenew, Retry: freezeRetry, Work: freezeWork,
			Threadiness: freezeThreadiness,
		}, ev)
	}

	// One replica leads and dispatches.
	var leader string
	eventually(t, 60*time.Second, func() (bool, string) {
		leader = leaseHolder(ctx, client, ns)
		return leader != "" && ev.started(leader, 0) >= 100, "no replica leads and dispatches"
	})
	old := children[leader]

	// Freeze it for longer than the lease.
	frozeAt := now()
	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var newLeader string
	eventually(t, 60*time.Second, func() (bool, string) {
		newLeader = leaseHolder(ctx, client, ns)
		return newLeader != "" && newLeader != leader && ev.started(newLeader, frozeAt) > 0,
			"no standby took over from the frozen leader"
	})
	eventually(t, 60*time.Second, func() (bool, string) {
		return time.Since(time.Unix(0, frozeAt)) >= freezeFor, "the freeze is not over"
	})
	resumedAt := now()
	if err := old.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s frozen for %s; %s took over", leader, time.Duration(resumedAt-frozeAt).Round(time.Millisecond), newLeader)

	// The old leader finds out and its Run returns; the new one goes on.
	eventually(t, 60*time.Second, func() (bool, string) {
		_, ok := ev.exited(leader)
		return ok, "the old leader's Run did not return after it resumed"
	})
	exit, _ := ev.exited(leader)
	if !strings.Contains(exit, "leader election lost") {
		t.Errorf("the old leader's Run returned %s, want ErrLeaderElectionLost", exit)
	}
	eventually(t, 60*time.Second, func() (bool, string) {
		return ev.started(newLeader, resumedAt) >= 200, "the new leader does not dispatch after the resume"
	})
	stopWriting()
	for _, c := range children {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range children {
		select {
		case <-c.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("replica %s did not exit", c.name)
		}
	}

	checkFreeze(t, ev, leader, frozeAt, resumedAt)
}

// checkFreeze counts the overlaps and checks the promises of the test.
func checkFreeze(t *testing.T, ev *events, leader string, frozeAt, resumedAt int64) {
	t.Helper()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ms := func(ns int64) string { return time.Duration(ns).Round(time.Millisecond).String() }

	var firstRead, down int64 = math.MaxInt64, math.MaxInt64
	for _, r := range ev.reads[leader] {
		if r > resumedAt && r < firstRead {
			firstRead = r
		}
	}
	for _, d := range ev.downs[leader] {
		if d > frozeAt && d < down {
			down = d
		}
	}

	// Overlaps: calls of different replicas for one object that ran at the
	// same time.
	byUID := map[string][]*call{}
	for _, c := range ev.calls {
		byUID[c.uid] = append(byUID[c.uid], c)
	}
	pairs := 0
	overlapping := map[*call]bool{}
	for _, cs := range byUID {
		sort.Slice(cs, func(i, j int) bool { return cs[i].start < cs[j].start })
		for i, a := range cs {
			for _, b := range cs[i+1:] {
				if b.start >= a.end {
					break
				}
				if a.replica != b.replica {
					pairs++
					overlapping[a], overlapping[b] = true, true
				}
			}
		}
	}
	var oldOverlapping, inFlightAtFreeze, afterResume, liveAfterResume, afterRead, liveAfterDown int
	for _, c := range ev.calls {
		if c.replica != leader {
			continue
		}
		if overlapping[c] {
			oldOverlapping++
		}
		if c.start < frozeAt && c.end > frozeAt {
			inFlightAtFreeze++
		}
		if c.start > resumedAt {
			afterResume++
			if c.live {
				liveAfterResume++
			}
		}
		if c.start > firstRead {
			afterRead++
		}
		if c.start > down && c.live {
			liveAfterDown++
		}
	}
	stepDown := "never"
	if down != math.MaxInt64 {
		stepDown = ms(down-resumedAt) + " after the resume"
	}
	read := "never"
	if firstRead != math.MaxInt64 {
		read = ms(firstRead-resumedAt) + " after the resume"
	}
	t.Logf("%d calls; old leader %s: %d in flight at the freeze, %d started after the resume (%d with a live context), "+
		"%d after its first read of the new holder (%s), stepped down: %s",
		len(ev.calls), leader, inFlightAtFreeze, afterResume, liveAfterResume, afterRead, read, stepDown)
	t.Logf("overlaps: %d pairs of calls for one object on two replicas; %d calls of the old leader overlap one of another replica",
		pairs, oldOverlapping)

	if down == math.MaxInt64 {
		t.Error("the old leader never logged its step-down")
	}
	if liveAfterDown > 0 {
		t.Errorf("%d calls started on the old leader with a live context after it stepped down", liveAfterDown)
	}
	if afterRead > 0 {
		t.Errorf("%d calls started on the old leader after it read the new holder", afterRead)
	}
	// Only calls in flight when the leader froze may overlap: at most one
	// per worker (a worker frozen between taking an entry and the handler's
	// first line reports its call's start after the resume).
	if oldOverlapping > freezeThreadiness {
		t.Errorf("%d calls of the old leader overlap the new leader's, more than the %d that can be in flight at the freeze",
			oldOverlapping, freezeThreadiness)
	}
}
