package dashboards_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/dashboards"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// plannedMetrics are the metrics the dashboards show before the library
// registers them; Check fails once one is registered, so take it off then.
var plannedMetrics []string

// TestDashboardsMatchRegisteredMetrics runs an event loop with metrics and
// leader election over a real informer, and one with sharding, so that
// every collector of the library has a series, and checks every dashboard of this folder against
// what its registry gathers.
func TestDashboardsMatchRegisteredMetrics(t *testing.T) {
	families := runLoop(t)

	files, err := filepath.Glob("*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards found: %v", err)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			dashboard, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := dashboards.Check(dashboard, families, plannedMetrics); err != nil {
				t.Error(err)
			}
		})
	}

	// The same check fails on the dashboard with one metric misspelt.
	dashboard, err := os.ReadFile("kubehandler.json")
	if err != nil {
		t.Fatal(err)
	}
	misspelt := bytes.Replace(dashboard, []byte("workqueue_depth{"), []byte("workqueue_dept{"), 1)
	if bytes.Equal(misspelt, dashboard) {
		t.Fatal("kubehandler.json has no workqueue_depth selector to misspell")
	}
	err = dashboards.Check(misspelt, families, plannedMetrics)
	if err == nil || !strings.Contains(err.Error(), "workqueue_dept,") {
		t.Errorf("Check of a misspelt dashboard = %v, want an error naming workqueue_dept", err)
	}
}

// runLoop runs a loop whose handler fails one key once, and returns what
// its registry gathers once the calls, the retry and the lease show.
func runLoop(t *testing.T) []*dto.MetricFamily {
	source := kubehandlertest.NewSource(func() runtime.Object { return &corev1.ConfigMapList{} })
	informer := kubehandlertest.NewInformer(t, source, &corev1.ConfigMap{})

	reg := prometheus.NewPedanticRegistry()
	loop := kubehandler.NewEventLoop("dashboard",
		kubehandler.WithMetrics(reg),
		kubehandler.WithRateLimiter(workqueue.NewTypedItemExponentialFailureRateLimiter[kubehandler.Key](time.Millisecond, 10*time.Millisecond)),
		kubehandler.WithLeaderElection(kubehandler.LeaderElection{
			Client: fake.NewClientset().CoordinationV1(), Namespace: "ns", Name: "dashboard",
			LeaseDuration: time.Hour, RenewDeadline: 50 * time.Minute, RetryPeriod: 20 * time.Millisecond,
		}))
	h := kubehandlertest.NewRecorder(nil, informer, "configmaps")
	var failed sync.Once
	h.Fn = func(_ context.Context, ev kubehandler.Event) error {
		var err error
		if ev.Key.Name == "fails-once" {
			failed.Do(func() { err = errors.New("once") })
		}
		return err
	}
	loop.Register(h)
	kubehandlertest.Start(t, loop, 2)
	for _, name := range []string{"ok", "fails-once"} {
		source.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}})
	}

	// A ring of one replica: it holds every slot. Its Leases are served by a
	// Source, which keeps resourceVersions as the API server does.
	leases := kubehandlertest.NewSource(func() runtime.Object { return &coordinationv1.LeaseList{} })
	leaseClient := fake.NewClientset()
	leases.Serve(leaseClient, "leases")
	ring := kubehandler.NewEventLoop("dashboard-ring", kubehandler.WithMetrics(reg),
		kubehandler.WithSharding(kubehandler.Sharding{
			Client: leaseClient.CoordinationV1(), Namespace: "ns", Name: "dashboard", Identity: "a", Slots: 4,
			LeaseDuration: time.Hour, RenewDeadline: 50 * time.Minute, RetryPeriod: 20 * time.Millisecond,
		}))
	ring.Register(kubehandlertest.NewRecorder(nil, kubehandlertest.NewInformer(t, source, &corev1.ConfigMap{}), "configmaps"))
	kubehandlertest.Start(t, ring, 1)

	deadline := time.Now().Add(30 * time.Second)
	for {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if value(mfs, "kubehandler_leader") == 1 && value(mfs, "workqueue_retries_total") == 1 &&
			value(mfs, "kubehandler_handler_calls_total") == 5 && value(mfs, "kubehandler_shard_slots") == 4 && value(mfs, "kubehandler_shard_handovers_total") == 4 {
			return mfs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the leader, 5 calls, 1 retry, 4 slots held and 4 handed in; gathered %v", mfs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// value returns the sum of the counter or gauge series of family name.
func value(mfs []*dto.MetricFamily, name string) float64 {
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
