package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	"github.com/kubehandler/kubehandler"
	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
)

// The ring's timing in TestShardedReplicas: a killed replica's slots move
// after shardLeaseDuration.
const (
	shardSlots         = 16
	shardLeaseDuration = 4 * time.Second
	shardRenewDeadline = 2 * time.Second
	shardRetryPeriod   = 500 * time.Millisecond
)

// shardReplica is one replica of a ring, run as the controller binary.
type shardReplica struct {
	*process
	identity string
}

// startShardReplica launches the controller binary as replica i of ring,
// with its Leases in the namespace artifacts/deploy's RBAC gives it, and
// returns without waiting for it to be ready.
func startShardReplica(t *testing.T, ring string, i int) *shardReplica {
	t.Helper()
	identity := fmt.Sprintf("%s-replica-%d", ring, i)
	p := launchProcess(t, fmt.Sprintf("replica-%d", i),
		"--shard-ring", ring,
		"--shard-slots", strconv.Itoa(shardSlots),
		"--shard-namespace", leaseNamespace,
		"--shard-identity", identity,
		"--shard-lease-duration", shardLeaseDuration.String(),
		"--shard-renew-deadline", shardRenewDeadline.String(),
		"--shard-retry-period", shardRetryPeriod.String(),
		// The Foo handler logs each Deployment it creates or scales.
		"-v=2",
	)
	return &shardReplica{process: p, identity: identity}
}

// TestShardedReplicas runs three replicas of the controller binary in one
// ring (--shard-ring) over 48 Foos: the slots are balanced, every Foo gets
// its Deployment and status, and each replica reconciles some. One replica
// is killed with SIGKILL and every Foo is changed: once its Leases have
// expired the other two take its slots over and every Foo follows its
// spec. One of those two then stops with SIGTERM and releases its slots to
// the last one before it exits; the last one stops too and leaves every
// slot free. Deployments are watched in full by every replica (the
// Deployment handler is secondary), so a Deployment event reaches the Foo
// on whichever replica holds it.
func TestShardedReplicas(t *testing.T) {
	const n = 48
	c := newClients(t, labConfig())
	ns := newNamespace(t, c)
	ring := "e2e-" + rand.String(5)
	leases := c.kube.CoordinationV1().Leases(leaseNamespace)
	ringSelector := labels.Set{kubehandler.LabelShardRing: ring}.String()
	t.Cleanup(func() {
		// After the replicas are killed (cleanups run last first).
		err := leases.DeleteCollection(context.WithoutCancel(t.Context()), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: ringSelector})
		if err != nil {
			t.Errorf("deleting the ring's Leases: %v", err)
		}
	})
	// holders returns, by holder identity, how many of the ring's slot
	// Leases each holds ("" for free ones).
	holders := func() (map[string]int, error) {
		list, err := leases.List(t.Context(), metav1.ListOptions{LabelSelector: ringSelector + "," + kubehandler.LabelShardRole + "=" + kubehandler.ShardRoleSlot})
		if err != nil {
			return nil, err
		}
		held := map[string]int{}
		for _, l := range list.Items {
			held[holderIdentity(&l)]++
		}
		return held, nil
	}

	start := time.Now()
	replicas := make([]*shardReplica, 3)
	for i := range replicas {
		replicas[i] = startShardReplica(t, ring, i)
	}
	for _, r := range replicas {
		r.waitReady(t, timeout)
	}
	// balanced waits until the replicas' kubehandler_shard_slots add up to
	// the ring's slots, each within one slot of its share, and the slot
	// Leases agree, and returns what each holds.
	balanced := func(replicas ...*shardReplica) []int {
		t.Helper()
		counts := make([]int, len(replicas))
		poll(t, timeout, fmt.Sprintf("%d slots balanced over %d replicas", shardSlots, len(replicas)), func() (bool, error) {
			held, err := holders()
			if err != nil {
				return false, err
			}
			for i, r := range replicas {
				v, err := r.metric("kubehandler_shard_slots", "")
				if err != nil {
					return false, notYet(err.Error())
				}
				counts[i] = int(v)
				if counts[i] < shardSlots/len(replicas) || counts[i] > (shardSlots+len(replicas)-1)/len(replicas) {
					return false, notYetf("slots held %v", counts)
				}
				if held[r.identity] != counts[i] {
					return false, notYetf("%s: %d slots by its metric, %d slot Leases (Leases by holder: %v)", r.name, counts[i], held[r.identity], held)
				}
			}
			return true, nil
		})
		return counts
	}
	counts := balanced(replicas...)
	report(t, "3 replicas ready and balanced (slots %v) %s after the start", counts, time.Since(start).Round(time.Millisecond))

	created := time.Now()
	createFoos(t, c, ns, "foo", n)
	waitForAllReady(t, c, ns, n, 2*time.Minute)
	// Each replica created the Deployments of some of the Foos, and
	// together they created all (the API server lets each be created once).
	createdBy := make([]map[string]bool, len(replicas))
	creators := map[string]string{}
	calls := make([]int, len(replicas))
	for i, r := range replicas {
		createdBy[i] = r.loggedDeployments(t, ns, `"Created Deployment"`)
		for name := range createdBy[i] {
			creators[name] = r.name
		}
		v, err := r.metric("kubehandler_handler_calls_total", `handler="Foo"`)
		if err != nil {
			t.Fatal(err)
		}
		calls[i] = int(v)
		if len(createdBy[i]) == 0 {
			t.Errorf("%s, holding %d slots, created no Deployment", r.name, counts[i])
		}
	}
	if len(creators) != n {
		t.Errorf("the replicas' logs show %d Deployments created, want %d", len(creators), n)
	}
	report(t, "%d Foos all Ready %s after the first create; Deployments created by replica %d, %d, %d; Foo handler calls by replica %v (Foos of other tests' namespaces included)",
		n, time.Since(created).Round(time.Millisecond), len(createdBy[0]), len(createdBy[1]), len(createdBy[2]), calls)

	// SIGKILL: the killed replica's Leases stay held until they expire.
	killed, survivors := replicas[1], []*shardReplica{replicas[0], replicas[2]}
	killedAt := time.Now()
	killed.kill()
	foos := c.foo.SamplecontrollerV1alpha1().Foos(ns)
	for i := range n {
		updateFoo(t, c, &samplev1alpha1.Foo{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("foo-%d", i)}}, func(f *samplev1alpha1.Foo) {
			f.Spec.Replicas = ptr.To[int32](2)
		})
	}
	if _, err := foos.List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	counts = balanced(survivors...)
	takenOver := time.Since(killedAt)
	// The killed replica renewed its Leases at most a retry period before
	// the kill, and the others wait a lease duration from their first read
	// of that renewal: a take-over sooner would be two holders at once.
	if takenOver < shardLeaseDuration-shardRetryPeriod {
		t.Errorf("the killed replica's slots were taken over %s after the kill, before its Leases could expire (lease duration %s, retry period %s)", takenOver, shardLeaseDuration, shardRetryPeriod)
	}
	if held, err := holders(); err != nil || held[killed.identity] != 0 {
		t.Errorf("after the take-over the killed replica holds %d slot Leases (%v), want 0", held[killed.identity], err)
	}
	waitForAllReady(t, c, ns, n, 2*time.Minute)
	// The killed replica's Foos were scaled by the others.
	scaled := map[string]bool{}
	for _, r := range survivors {
		for name := range r.loggedDeployments(t, ns, `"Updating Deployment replicas"`, `replicas=2`) {
			scaled[name] = true
		}
	}
	for name := range createdBy[1] {
		if !scaled[name] {
			t.Errorf("Deployment %s, created by the killed replica, was not scaled by the others (their logs)", name)
		}
	}
	report(t, "killed %s: its slots taken over %s after the kill (lease duration %s; slots now %v), all %d Foos Ready at 2 replicas %s after the kill, its %d scaled by the others",
		killed.name, takenOver.Round(time.Millisecond), shardLeaseDuration, counts, n, time.Since(killedAt).Round(time.Millisecond), len(createdBy[1]))

	// SIGTERM: the replica drains, releases its slots and exits 0 (66 would
	// be a data race); the last one takes them over at once.
	leaver, last := survivors[0], survivors[1]
	stopped := time.Now()
	if code := leaver.terminate(t, 30*time.Second); code != 0 {
		t.Errorf("%s's exit code after SIGTERM: %d, want 0 (66: a data race)", leaver.name, code)
	}
	exited := time.Since(stopped)
	if held, err := holders(); err != nil || held[leaver.identity] != 0 {
		t.Errorf("after a graceful exit %s still holds %d slot Leases (%v), want them released", leaver.name, held[leaver.identity], err)
	}
	balanced(last)
	report(t, "%s exited %s after SIGTERM; %s held every slot %s after the SIGTERM",
		leaver.name, exited.Round(time.Millisecond), last.name, time.Since(stopped).Round(time.Millisecond))

	if code := last.terminate(t, 30*time.Second); code != 0 {
		t.Errorf("%s's exit code after SIGTERM: %d, want 0 (66: a data race)", last.name, code)
	}
	held, err := holders()
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[""] != shardSlots {
		t.Errorf("after the last replica exited, slot Leases by holder: %v; want all %d free", held, shardSlots)
	}
}

// loggedDeployments returns the names of the Deployments of namespace ns
// in the lines of the process's log that carry msg and every one of extra.
func (p *process) loggedDeployments(t *testing.T, ns, msg string, extra ...string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	prefix := `deployment="` + ns + `/`
	names := map[string]bool{}
	for line := range strings.Lines(string(data)) {
		if !strings.Contains(line, msg) || !containsAll(line, extra) {
			continue
		}
		_, rest, ok := strings.Cut(line, prefix)
		if !ok {
			continue
		}
		if name, _, ok := strings.Cut(rest, `"`); ok {
			names[name] = true
		}
	}
	return names
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func holderIdentity(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// metric returns the sum of the samples of the metric name on the
// process's /metrics whose labels contain match ("" matches all), and an
// error if there is none.
func (p *process) metric(name, match string) (float64, error) {
	code, body, err := get("http://" + p.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics of %s: %d", p.name, code)
	}
	var sum float64
	found := false
	scanner := bufio.NewScanner(strings.NewReader(body))
	for scanner.Scan() {
		line := scanner.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		series, value := line[:i], line[i+1:]
		metric, lbls, _ := strings.Cut(series, "{")
		if metric != name || !strings.Contains(lbls, match) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", p.name, line, err)
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("%s: no %s{%s} in its metrics", p.name, name, match)
	}
	return sum, nil
}
